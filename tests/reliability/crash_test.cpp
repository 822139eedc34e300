// SPDX-License-Identifier: Apache-2.0
// Crash at any point: `labwatch run` SIGKILLed at random moments and at chosen system calls.
#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "reliability/lab_feed.hpp"
#include "reliability/probes.hpp"
#include "reliability/scenario.hpp"
#include "support/daemon_harness.hpp"

namespace {

using namespace labwatch::test;

// Moves staged files into the inbox: renamed in (complete at once), or, for every third one,
// written in place and closed (complete once it settles).
void drop_staged(const Layout& layout, const std::vector<FeedFile>& feed,
                 const std::vector<std::size_t>& order, std::size_t from, std::size_t to) {
  for (std::size_t i = from; i < to; ++i) {
    const FeedFile& f = feed[order[i]];
    if (i % 3 == 2) {
      write_file(layout.inbox() / f.name, f.bytes);
      fs::remove(layout.stage() / f.name);
    } else {
      fs::rename(layout.stage() / f.name, layout.inbox() / f.name);
    }
  }
}

// How many runs of the daemon have logged their start so far.
std::size_t runs_started(const Layout& layout) {
  const std::string log = layout.daemon_log();
  std::size_t n = 0;
  for (std::size_t at = log.find("<6>started:"); at != std::string::npos;
       at = log.find("<6>started:", at + 1)) {
    ++n;
  }
  return n;
}

// The scenario: `files` generated files reach the inbox in rounds while the daemon is
// SIGKILLed `kills` times, once in each run, and started again.
void run_random_kills(unsigned seed, int files, int kills) {
  const Layout layout(TempDir::fast_base(), 100);
  const std::vector<FeedFile> feed = make_feed(files);
  for (const FeedFile& f : feed) {
    write_file(layout.stage() / f.name, f.bytes);
  }
  std::mt19937 random(seed);
  std::vector<std::size_t> order(feed.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::shuffle(order.begin(), order.end(), random);
  // Start-up (exec, config, catalogue, database, scan) takes tens of milliseconds and a file
  // about one. One kill in five lands anywhere in start-up; the others land within the first
  // files of the run once it has started.
  std::uniform_int_distribution<int> startup_ms(0, 50);
  std::uniform_int_distribution<int> working_ms(0, 12);

  std::size_t next = 0;
  int in_startup = 0;
  int mid_stream = 0;
  for (int k = 0; k < kills; ++k) {
    const std::size_t round_end =
        feed.size() * static_cast<std::size_t>(k + 1) / static_cast<std::size_t>(kills);
    // Part of the round is waiting when the daemon starts (the start-up scan), the rest arrives
    // while it runs (inotify).
    const std::size_t before = next + random() % (round_end - next + 1);
    drop_staged(layout, feed, order, next, before);
    const std::size_t started_before = runs_started(layout);
    auto daemon = layout.start();
    drop_staged(layout, feed, order, before, round_end);
    next = round_end;
    if (k % 5 == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(startup_ms(random)));
    } else {
      REQUIRE(wait_until([&] { return runs_started(layout) > started_before; }, 30s, 1ms));
      std::this_thread::sleep_for(std::chrono::milliseconds(working_ms(random)));
    }
    const bool started = runs_started(layout) > started_before;
    const bool work_left = count_entries(layout.inbox()) > 0;
    daemon->signal(SIGKILL);
    REQUIRE(daemon->wait_exit(10s) == kKilled);
    in_startup += started ? 0 : 1;
    mid_stream += started && work_left ? 1 : 0;
  }
  drain(layout);
  INFO("seed " << seed << ": " << in_startup << " kills in start-up, " << mid_stream << " of "
               << kills << " with files left to ingest");
  // The kills must hit start-up and work in progress, or this test proves little.
  CHECK(in_startup >= 1);
  CHECK(mid_stream >= kills / 2);
  check_outcome(layout, feed);
}

// The daemon under strace, killed (SIGKILL, the call not made) at the first call that `inject`
// selects; then started again normally. `file` was waiting in the inbox.
void crash_at(const Layout& layout, const FeedFile& file, const std::vector<std::string>& inject) {
  layout.drop(file.name, file.bytes);
  const fs::path trace = layout.root() / "crash.trace";
  Wrapped daemon(strace_run_argv(layout, trace, inject), layout.log());
  const std::optional<int> code = daemon.wait_exit(30s);
  INFO(layout.daemon_log());
  REQUIRE(code.value_or(-1) == kKilled);
  drain(layout);
}

// Where a run is killed: at the first call of `calls` on `path`.
struct CrashPoint {
  enum class Path { inbox_file, wal, destination, reason_dir };
  std::string what;
  Path path = Path::inbox_file;
  std::string calls;
};

}  // namespace

TEST_CASE("run_service SIGKILLed at 50 random moments ingests 500 files exactly once",
          "[reliability][crash][slow]") {
  const unsigned seed = GENERATE(1U, 2U, 3U);
  run_random_kills(seed, scaled(500, 100), scaled(50, 10));
}

TEST_CASE("run_service killed at each step of ingesting a file stores and moves it exactly once",
          "[reliability][crash]") {
  // A file ingested whole goes to processed/; one partly or wholly refused goes to failed/.
  const FeedFile file =
      GENERATE(make_feed_file(12, FeedKind::csv_single), make_feed_file(21, FeedKind::csv_partial),
               make_feed_file(40, FeedKind::garbage));
  const CrashPoint point = GENERATE(values<CrashPoint>({
      {"while reading it", CrashPoint::Path::inbox_file, "pread64,read"},
      {"before its transaction is durable", CrashPoint::Path::wal, "fsync,fdatasync"},
      {"after its transaction commits, before the move", CrashPoint::Path::inbox_file,
       "rename,renameat,renameat2"},
      {"after the move, before the directories are synced", CrashPoint::Path::destination,
       "fsync,fdatasync"},
      // A refused file's reason file is written under a work name, synced, renamed into place
      // (renameat), and only then is the file moved (renameat2).
      {"after its reason file is written, before it is in place", CrashPoint::Path::reason_dir,
       "renameat"},
      {"after its reason file is in place, before the move", CrashPoint::Path::reason_dir,
       "renameat2"},
  }));
  if (point.path == CrashPoint::Path::reason_dir && file.whole) {
    return;  // a file ingested whole has no reason file
  }
  INFO(file.name << " killed " << point.what);
  const Layout layout(TempDir::default_base(), 100);
  fs::path path;
  switch (point.path) {
    case CrashPoint::Path::inbox_file:
      path = layout.inbox() / file.name;
      break;
    case CrashPoint::Path::wal:
      path = layout.root() / "labwatch.db-wal";
      break;
    case CrashPoint::Path::destination:
      path = file.whole ? layout.processed() : layout.failed();
      break;
    case CrashPoint::Path::reason_dir:
      path = layout.failed();
      break;
  }
  crash_at(layout, file,
           {"-P", path.string(), "-e", "trace=" + point.calls, "-e",
            "inject=" + point.calls + ":error=EIO:signal=KILL"});
  check_outcome(layout, {file});
}
