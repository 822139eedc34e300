// SPDX-License-Identifier: Apache-2.0
// Commit before move, seen in the daemon's system calls; disk errors (EIO, EFBIG) keep the file.
#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <string>
#include <vector>

#include "reliability/lab_feed.hpp"
#include "reliability/probes.hpp"
#include "reliability/scenario.hpp"
#include "support/daemon_harness.hpp"

namespace {

using namespace labwatch::test;

// The position of the first call at or after `from` that `match` accepts; calls.size() if none.
template <class Match>
std::size_t find_call(const std::vector<TraceCall>& calls, std::size_t from, Match match) {
  for (std::size_t i = from; i < calls.size(); ++i) {
    if (match(calls[i])) {
      return i;
    }
  }
  return calls.size();
}

bool is_sync(const TraceCall& call) { return call.name == "fsync" || call.name == "fdatasync"; }

// A successful fsync/fdatasync of the descriptor strace -y shows as `path`.
bool syncs(const TraceCall& call, const fs::path& path) {
  return is_sync(call) && call.result == "0" && call.args.ends_with("<" + path.string() + ">");
}

}  // namespace

TEST_CASE(
    "run_service makes each file's transaction durable before moving it, then syncs the "
    "directories",
    "[reliability][durability]") {
  const Layout layout(TempDir::default_base(), 100);
  std::vector<FeedFile> feed;
  for (int i = 0; i < 40; ++i) {
    if (feed_kind(i) != FeedKind::copy) {  // a copy commits nothing: it is already known
      feed.push_back(make_feed_file(i, feed_kind(i)));
    }
  }
  for (const FeedFile& f : feed) {
    write_file(layout.stage() / f.name, f.bytes);
  }
  const fs::path trace = layout.root() / "durability.trace";
  {
    NotifySocket notify(layout.notify_path());
    Wrapped daemon(
        strace_run_argv(layout, trace,
                        {"-e", "trace=fsync,fdatasync,rename,renameat,renameat2,openat"}),
        layout.log(), {notify.env()});
    REQUIRE(notify.wait_for("READY=1", kReadyTimeout));
    for (const FeedFile& f : feed) {
      fs::rename(layout.stage() / f.name, layout.inbox() / f.name);
    }
    REQUIRE(wait_until([&] { return count_entries(layout.inbox()) == 0; }, 60s, 20ms));
    daemon.signal(SIGTERM);
    REQUIRE(daemon.wait_exit(10s) == 0);
  }
  check_outcome(layout, feed);

  const std::vector<TraceCall> calls = read_trace(trace);
  const fs::path root = fs::canonical(layout.root());
  const fs::path wal = root / "labwatch.db-wal";
  for (const FeedFile& f : feed) {
    INFO(f.name);
    const std::string source = "\"" + (layout.inbox() / f.name).string() + "\"";
    const std::size_t opened = find_call(calls, 0, [&](const TraceCall& c) {
      return c.name == "openat" && c.args.find(source) != std::string::npos &&
             !c.result.starts_with("-");
    });
    const std::size_t moved = find_call(calls, 0, [&](const TraceCall& c) {
      return c.name.starts_with("rename") && c.args.find(source) != std::string::npos &&
             c.result == "0";
    });
    REQUIRE(opened < calls.size());
    REQUIRE(moved < calls.size());
    CHECK(opened < moved);
    // Between reading the file and moving it, its transaction committed: the WAL was synced.
    const std::size_t committed =
        find_call(calls, opened, [&](const TraceCall& c) { return syncs(c, wal); });
    CHECK(committed < moved);
    // After the move, the directories it changed are synced.
    const fs::path to = root / (f.whole ? "processed" : "failed");
    CHECK(find_call(calls, moved, [&](const TraceCall& c) { return syncs(c, to); }) < calls.size());
    CHECK(find_call(calls, moved, [&](const TraceCall& c) { return syncs(c, root / "inbox"); }) <
          calls.size());
    if (!f.whole) {
      // A refused file's reason is written, synced and renamed into place before the file moves:
      // failed/ never shows a file without its reason.
      const std::size_t reason_synced = find_call(
          calls, opened, [&](const TraceCall& c) { return syncs(c, to / ".labwatch-reason.tmp"); });
      const std::string reason_name = "\"" + f.name + ".reason.txt\"";
      const std::size_t reason_placed = find_call(calls, opened, [&](const TraceCall& c) {
        return c.name.starts_with("rename") && c.args.find(reason_name) != std::string::npos &&
               c.result == "0";
      });
      CHECK(reason_synced < reason_placed);
      CHECK(reason_placed < moved);
    }
  }
}

TEST_CASE(
    "run_service keeps a file whose commit fails with EIO, exits 1, and a restart ingests "
    "it once",
    "[reliability][durability]") {
  const Layout layout(TempDir::default_base(), 100);
  const FeedFile file = make_feed_file(12, FeedKind::csv_single);
  layout.drop(file.name, file.bytes);
  const fs::path wal = layout.root() / "labwatch.db-wal";
  const fs::path trace = layout.root() / "eio.trace";
  {
    // The first sync of the write-ahead log, the commit of this file, fails with EIO.
    Wrapped daemon(strace_run_argv(layout, trace,
                                   {"-P", wal.string(), "-e", "trace=fsync,fdatasync", "-e",
                                    "inject=fsync,fdatasync:error=EIO:when=1"}),
                   layout.log());
    const std::optional<int> code = daemon.wait_exit(30s);
    INFO(layout.daemon_log());
    CHECK(code.value_or(-1) == 1);
  }
  const std::string log = layout.daemon_log();
  CHECK(log.find("<3>" + file.name + ": not ingested, left in the inbox") != std::string::npos);
  CHECK(read_file(trace).find("EIO (Input/output error) (INJECTED)") != std::string::npos);
  CHECK(entry_names(layout.inbox()) == Strings{file.name});
  CHECK(entry_names(layout.processed()) == Strings{});

  drain(layout);
  check_outcome(layout, {file});
}

// SIGXFSZ is ignored: past the limit a write fails with EFBIG, which the daemon logs before it
// exits 1, instead of dying of the signal (exit 153) without a word.
TEST_CASE(
    "run_service keeps a file that exceeds the file size limit, exits 1, and a restart "
    "ingests it once",
    "[reliability][durability]") {
  const Layout layout(TempDir::default_base(), 100);
  const FeedFile small = make_feed_file(13, FeedKind::csv_single);
  const FeedFile bulk = make_bulk_file(14, 2000);
  // Room for the shared-memory index and a small transaction, not for 2,000 results.
  const std::uintmax_t limit =
      std::max<std::uintmax_t>(fs::file_size(layout.root() / "labwatch.db"), 32768) + 131072;
  {
    NotifySocket notify(layout.notify_path());
    Process daemon({"/usr/bin/prlimit", "--fsize=" + std::to_string(limit), "--core=0",
                    LABWATCH_BINARY, "run", "--config", layout.config().string()},
                   layout.log(), layout.log(), {notify.env()});
    REQUIRE(notify.wait_for("READY=1", kReadyTimeout));
    layout.drop(small.name, small.bytes);
    REQUIRE(wait_until([&] { return fs::exists(layout.processed() / small.name); }, 15s));
    layout.drop(bulk.name, bulk.bytes);
    const std::optional<int> code = daemon.wait_exit(30s);
    INFO(layout.daemon_log());
    // The write fails with EFBIG and the daemon says so; it is not killed by SIGXFSZ.
    CHECK(code.value_or(-1) == 1);
    CHECK(notify.count("STOPPING=1") == 1);
  }
  CHECK(layout.daemon_log().find("<3>" + bulk.name + ": not ingested, left in the inbox") !=
        std::string::npos);
  CHECK(entry_names(layout.inbox()) == Strings{bulk.name});

  drain(layout);
  check_outcome(layout, {small, bulk});
}
