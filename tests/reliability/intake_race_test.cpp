// SPDX-License-Identifier: Apache-2.0
// Never half-read, never move unread: stalled writers, names reused during a move, files linked in.
#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "reliability/lab_feed.hpp"
#include "reliability/probes.hpp"
#include "reliability/scenario.hpp"
#include "support/daemon_harness.hpp"

namespace {

using namespace labwatch::test;

// A producer that writes a file in place and stalls midway, holding it open for writing.
class StalledWriter {
 public:
  // Creates `path` holding the first half of `bytes`, dated `age` ago, and keeps it open.
  StalledWriter(const fs::path& path, std::string bytes, std::chrono::seconds age)
      : bytes_(std::move(bytes)) {
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) {
      throw errno_error("open " + path.string());
    }
    write_part(0, bytes_.size() / 2);
    std::timespec past{};
    ::clock_gettime(CLOCK_REALTIME, &past);
    past.tv_sec -= age.count();
    const std::array<std::timespec, 2> times{past, past};
    if (::futimens(fd_, times.data()) != 0) {
      throw errno_error("futimens");
    }
  }
  ~StalledWriter() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  StalledWriter(const StalledWriter&) = delete;
  StalledWriter& operator=(const StalledWriter&) = delete;
  StalledWriter(StalledWriter&&) = delete;
  StalledWriter& operator=(StalledWriter&&) = delete;

  // Writes the rest and closes the file.
  void finish() {
    write_part(bytes_.size() / 2, bytes_.size());
    if (::close(fd_) != 0) {
      throw errno_error("close");
    }
    fd_ = -1;
  }

 private:
  void write_part(std::size_t from, std::size_t to) {
    while (from < to) {
      const ssize_t n = ::write(fd_, bytes_.data() + from, to - from);
      if (n < 0) {
        throw errno_error("write");
      }
      from += static_cast<std::size_t>(n);
    }
  }

  std::string bytes_;
  int fd_ = -1;
};

// Results stored, from the database (0 before it exists).
std::int64_t stored_results(const Layout& layout) {
  const fs::path db = layout.root() / "labwatch.db";
  return fs::exists(db) ? Database(db).count("SELECT count(*) FROM results") : 0;
}

// While `writer` stalls for 2 s (20 settle times): nothing is read, nothing moves.
void check_untouched_while_stalled(const Layout& layout, const std::string& name) {
  const auto until = std::chrono::steady_clock::now() + 2s;
  bool untouched = true;
  while (untouched && std::chrono::steady_clock::now() < until) {
    untouched = fs::exists(layout.inbox() / name) && count_entries(layout.processed()) == 0 &&
                count_entries(layout.failed()) == 0 && stored_results(layout) == 0;
    std::this_thread::sleep_for(50ms);
  }
  INFO(layout.daemon_log());
  CHECK(untouched);
}

// The race of a name reused while the daemon moves the file it read, widened: every renameat2 of
// the daemon waits 300 ms before it starts. Each of `rounds` files is replaced under its name as
// soon as its transaction has committed, i.e. during the daemon's claim of it. Both files of each
// name must be read: the first's results and the second's are stored, and the second is what
// ends in processed/ under the name.
void replace_during_move(const Layout& layout, int rounds, const fs::path& processed,
                         const fs::path& failed) {
  std::vector<FeedFile> firsts;
  std::vector<FeedFile> seconds;
  std::size_t rows = 0;
  for (int i = 0; i < rounds; ++i) {
    firsts.push_back(make_feed_file(100 + 2 * i, FeedKind::csv_single));
    seconds.push_back(make_feed_file(101 + 2 * i, FeedKind::csv_single));
    rows += firsts.back().rows.size() + seconds.back().rows.size();
  }
  const fs::path trace = layout.root() / "race.trace";
  NotifySocket notify(layout.notify_path());
  Wrapped daemon(
      strace_run_argv(layout, trace,
                      {"-e", "trace=renameat2", "-e", "inject=renameat2:delay_enter=300000"}),
      layout.log(), {notify.env()});
  REQUIRE(notify.wait_for("READY=1", kReadyTimeout));
  const fs::path db = layout.root() / "labwatch.db";
  for (int i = 0; i < rounds; ++i) {
    const std::string name = "gen_race_" + std::to_string(i) + ".csv";
    layout.drop(name, firsts[static_cast<std::size_t>(i)].bytes);
    REQUIRE(wait_until(
        [&] {
          return Database(db).count("SELECT count(*) FROM files WHERE outcome <> 'open'") ==
                 2 * i + 1;
        },
        10s, 2ms));
    layout.drop(name, seconds[static_cast<std::size_t>(i)].bytes);
    INFO(layout.daemon_log());
    REQUIRE(wait_until(
        [&] {
          // (Across file systems a copy is made under a work name first.)
          return count_entries(layout.inbox()) == 0 && fs::exists(processed / name) &&
                 !fs::exists(processed / ".labwatch-copy.tmp");
        },
        10s, 10ms));
    CHECK(read_file(processed / name) == seconds[static_cast<std::size_t>(i)].bytes);
  }
  INFO(layout.daemon_log());
  CHECK(layout.daemon_log().find("replaced or changed under its name after it was read") !=
        std::string::npos);
  daemon.signal(SIGTERM);
  REQUIRE(daemon.wait_exit(20s) == 0);
  CHECK(count_entries(processed) == static_cast<std::size_t>(rounds));
  CHECK(count_entries(failed) == 0);
  const Database database(db);
  CHECK(database.count("SELECT count(*) FROM files") == 2 * rounds);
  CHECK(database.count("SELECT count(*) FROM results") == static_cast<std::int64_t>(rows));
}

}  // namespace

TEST_CASE("run_service leaves a file found at start-up alone while its writer holds it open",
          "[reliability][intake]") {
  const Layout layout(TempDir::default_base(), 100);
  const FeedFile file = make_bulk_file(7, 40);
  // Dated 10 s ago: by its age alone it would count as settled.
  StalledWriter writer(layout.inbox() / file.name, file.bytes, 10s);
  NotifySocket notify(layout.notify_path());
  auto daemon = layout.start({notify.env()});
  REQUIRE(notify.wait_for("READY=1", kReadyTimeout));
  check_untouched_while_stalled(layout, file.name);
  writer.finish();
  INFO(layout.daemon_log());
  REQUIRE(wait_until([&] { return fs::exists(layout.processed() / file.name); }, 10s));
  daemon->signal(SIGTERM);
  REQUIRE(daemon->wait_exit(10s) == 0);
  check_outcome(layout, {file});
}

TEST_CASE(
    "run_service as an unprivileged user (no CAP_LEASE) leaves a file it owns alone while its "
    "writer holds it open",
    "[reliability][intake]") {
  // The lease needs CAP_LEASE or the file's owner; the daemon runs as its own user. Only root can
  // make the daemon another user here (setpriv).
  if (::geteuid() != 0) {
    WARN("not root: the daemon cannot be run as another user here; skipped");
    return;
  }
  const struct passwd* nobody = ::getpwnam("nobody");
  if (nobody == nullptr) {
    WARN("no user nobody; skipped");
    return;
  }
  const std::vector<std::string> as_nobody = {
      "/usr/bin/setpriv", "--reuid=" + std::to_string(nobody->pw_uid),
      "--regid=" + std::to_string(nobody->pw_gid), "--clear-groups", "--inh-caps=-all"};
  std::vector<std::string> probe = as_nobody;
  probe.insert(probe.end(), {"/usr/bin/test", "-x", LABWATCH_BINARY});
  if (run_program(probe, 10s).exit_code != 0) {
    WARN("setpriv is missing, or nobody cannot run " << LABWATCH_BINARY << "; skipped");
    return;
  }
  const Layout layout(TempDir::default_base(), 100);
  const FeedFile file = make_bulk_file(9, 40);
  // Dated 10 s ago: by its age alone it would count as settled. Its writer (this process) keeps it
  // open; like the whole layout, it belongs to the daemon's user.
  StalledWriter writer(layout.inbox() / file.name, file.bytes, 10s);
  const fs::path top = layout.root().parent_path();
  REQUIRE(::lchown(top.c_str(), nobody->pw_uid, nobody->pw_gid) == 0);
  for (const fs::directory_entry& entry : fs::recursive_directory_iterator(top)) {
    REQUIRE(::lchown(entry.path().c_str(), nobody->pw_uid, nobody->pw_gid) == 0);
  }
  std::vector<std::string> argv = as_nobody;
  const std::vector<std::string> run = labwatch_argv({"run", "--config", layout.config().string()});
  argv.insert(argv.end(), run.begin(), run.end());
  Process daemon(argv, layout.log(), layout.log(), {layout.journal_env()});
  REQUIRE(wait_until([&] { return layout.daemon_log().find("ready: ") != std::string::npos; }, 30s,
                     20ms));
  check_untouched_while_stalled(layout, file.name);
  writer.finish();
  INFO(layout.daemon_log());
  REQUIRE(wait_until([&] { return fs::exists(layout.processed() / file.name); }, 10s));
  struct stat st {};
  REQUIRE(::stat((layout.processed() / file.name).c_str(), &st) == 0);
  CHECK(st.st_uid == nobody->pw_uid);
  daemon.signal(SIGTERM);
  REQUIRE(daemon.wait_exit(10s) == 0);
  check_outcome(layout, {file});
}

TEST_CASE("run_service leaves a file renamed in or rescanned alone while its writer holds it open",
          "[reliability][intake]") {
  const Layout layout(TempDir::default_base(), 100);
  // Rescans every second, on top of the events.
  std::string config = read_file(layout.config());
  const std::string intake = "<intake settle-ms=\"100\"/>";
  REQUIRE(config.find(intake) != std::string::npos);
  config.replace(config.find(intake), intake.size(),
                 "<intake settle-ms=\"100\" rescan-seconds=\"1\"/>");
  write_file(layout.config(), config);
  NotifySocket notify(layout.notify_path());
  auto daemon = layout.start({notify.env()});
  REQUIRE(notify.wait_for("READY=1", kReadyTimeout));
  const FeedFile file = make_bulk_file(8, 40);
  StalledWriter writer(layout.stage() / file.name, file.bytes, 10s);
  fs::rename(layout.stage() / file.name, layout.inbox() / file.name);
  check_untouched_while_stalled(layout, file.name);
  writer.finish();
  INFO(layout.daemon_log());
  REQUIRE(wait_until([&] { return fs::exists(layout.processed() / file.name); }, 10s));
  daemon->signal(SIGTERM);
  REQUIRE(daemon->wait_exit(10s) == 0);
  check_outcome(layout, {file});
}

TEST_CASE(
    "run_service moves only the file it read: one put under the same name during the move is "
    "read on its own",
    "[reliability][intake]") {
  const Layout layout(TempDir::default_base(), 100);
  replace_during_move(layout, 4, layout.processed(), layout.failed());
}

TEST_CASE(
    "run_service moves only the file it read across file systems: the copy is of the claimed file",
    "[reliability][intake]") {
  const TempDir elsewhere(TempDir::fast_base());
  const Layout layout(TempDir::default_base(), 100);
  struct stat here {};
  struct stat there {};
  REQUIRE(::stat(layout.root().c_str(), &here) == 0);
  REQUIRE(::stat(elsewhere.path().c_str(), &there) == 0);
  if (here.st_dev == there.st_dev) {
    WARN("no second file system (/dev/shm) for processed/: skipped");
    return;
  }
  fs::create_directories(elsewhere.path() / "processed");
  fs::create_directories(elsewhere.path() / "failed");
  layout.write_config(100, {},
                      "  <paths inbox=\"inbox\" processed=\"" +
                          (elsewhere.path() / "processed").string() + "\" failed=\"" +
                          (elsewhere.path() / "failed").string() +
                          "\" database=\"labwatch.db\"/>\n");
  replace_during_move(layout, 3, elsewhere.path() / "processed", elsewhere.path() / "failed");
}

TEST_CASE(
    "run_service picks up files published by a hard link or an O_TMPFILE linked in, without a "
    "restart",
    "[reliability][intake]") {
  const Layout layout(TempDir::default_base(), 100);
  NotifySocket notify(layout.notify_path());
  auto daemon = layout.start({notify.env()});
  REQUIRE(notify.wait_for("READY=1", kReadyTimeout));
  // A hard link from the staging directory, whose own name then goes.
  const FeedFile linked = make_feed_file(12, FeedKind::csv_single);
  write_file(layout.stage() / linked.name, linked.bytes);
  fs::create_hard_link(layout.stage() / linked.name, layout.inbox() / linked.name);
  fs::remove(layout.stage() / linked.name);
  // An unnamed file written in the inbox, then given its name (linkat of /proc/self/fd/N).
  const FeedFile unnamed = make_feed_file(13, FeedKind::csv_single);
  {
    const int fd = ::open(layout.inbox().c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(::write(fd, unnamed.bytes.data(), unnamed.bytes.size()) ==
            static_cast<ssize_t>(unnamed.bytes.size()));
    const std::string proc = "/proc/self/fd/" + std::to_string(fd);
    REQUIRE(::linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, (layout.inbox() / unnamed.name).c_str(),
                     AT_SYMLINK_FOLLOW) == 0);
    ::close(fd);
  }
  INFO(layout.daemon_log());
  CHECK(wait_until([&] { return count_entries(layout.processed()) == 2; }, 5s));
  CHECK(layout.daemon_log().find("rescan 60 s") != std::string::npos);  // the safety net's default
  daemon->signal(SIGTERM);
  REQUIRE(daemon->wait_exit(10s) == 0);
  check_outcome(layout, {linked, unnamed});
}
