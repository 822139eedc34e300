// SPDX-License-Identifier: Apache-2.0
// Commit before move, seen in the daemon's system calls; failed reads and writes keep the file.
#include <array>
#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <utility>
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

// One HL7 file of `messages` ORU^R01 messages, those of feed files first .. first + messages - 1
// of kind hl7_panel, with the results they store: each message its own draw time and order.
FeedFile make_bulk_hl7_file(int first, int messages) {
  FeedFile file;
  std::array<char, 32> name{};
  std::snprintf(name.data(), name.size(), "gen_%05d_bulk.hl7", first);
  file.name = name.data();
  file.kind = FeedKind::hl7_panel;
  for (int i = first; i < first + messages; ++i) {
    FeedFile one = make_feed_file(i, FeedKind::hl7_panel);
    file.bytes += one.bytes;
    for (ExpectedRow& row : one.rows) {
      row.source_file = file.name;
      file.rows.push_back(std::move(row));
    }
  }
  return file;
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
      // The first rename claims the file into the inbox's claim directory; from there it moves on
      // into failed/, after its reason.
      const std::string claimed = ".labwatch-claim>, \"" + f.name + "\", ";
      const std::size_t moved_on = find_call(calls, moved, [&](const TraceCall& c) {
        return c.name.starts_with("rename") && c.args.find(claimed) != std::string::npos &&
               c.args.find("<" + to.string() + ">") != std::string::npos && c.result == "0";
      });
      CHECK(reason_synced < reason_placed);
      CHECK(reason_placed < moved_on);
      CHECK(moved_on < calls.size());
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
                   layout.log(), {layout.journal_env()});
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
                   layout.log(), layout.log(), {notify.env(), layout.journal_env()});
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

TEST_CASE(
    "run_service keeps a large file whose read fails with EIO mid-file, exits 1, and a restart "
    "ingests it once",
    "[reliability][durability]") {
  // More than 3 MiB: the file is read on the pipeline's reader thread, in 1 MiB chunks, while the
  // daemon's thread stores the reports of the chunks before. Its fourth pread (4 KiB to tell the
  // format, then the chunks) is the chunk at 2 MiB: the handoff holds only a few batches, so by
  // then most reports of the first two chunks are in the file's transaction, which must roll back.
  const Layout layout(TempDir::default_base(), 100);
  const FeedFile file = make_bulk_hl7_file(0, 8500);
  REQUIRE(file.bytes.size() > (3u << 20));
  layout.drop(file.name, file.bytes);
  const fs::path source = fs::canonical(layout.inbox() / file.name);
  const fs::path trace = layout.root() / "read-eio.trace";
  {
    Wrapped daemon(strace_run_argv(layout, trace,
                                   {"-P", source.string(), "-e", "trace=pread64", "-e",
                                    "inject=pread64:error=EIO:when=4"}),
                   layout.log(), {layout.journal_env()});
    const std::optional<int> code = daemon.wait_exit(60s);
    INFO(layout.daemon_log());
    CHECK(code.value_or(-1) == 1);
  }
  const std::vector<TraceCall> calls = read_trace(trace);
  const std::size_t failed = find_call(calls, 0, [](const TraceCall& c) {
    return c.name == "pread64" && c.result.starts_with("-1 EIO") &&
           c.result.find("(INJECTED)") != std::string::npos;
  });
  REQUIRE(failed < calls.size());
  // pread64(fd<path>, buffer, count, offset): the chunk at 2 MiB of this very file.
  CHECK(calls[failed].args.find("<" + source.string() + ">") != std::string::npos);
  CHECK(calls[failed].args.ends_with(", 1048576, 2097152"));
  const std::string log = layout.daemon_log();
  CHECK(
      log.find("<3>" + file.name + ": not ingested, left in the inbox (failure 1 of 3): pread: ") !=
      std::string::npos);
  CHECK(entry_names(layout.inbox()) == Strings{file.name});
  CHECK(entry_names(layout.processed()) == Strings{});
  CHECK(entry_names(layout.failed()) == Strings{});
  {
    const Database db(layout.root() / "labwatch.db");
    CHECK(db.count("SELECT count(*) FROM results") == 0);
    CHECK(db.count("SELECT count(*) FROM files") == 0);
  }

  drain(layout);
  check_outcome(layout, {file});
}
