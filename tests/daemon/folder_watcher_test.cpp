// SPDX-License-Identifier: Apache-2.0
// FolderWatcher: real inotify in a temp dir, driven by io_context::run_for.
#include "daemon/folder_watcher.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "ingest/claimed_file.hpp"
#include "support/daemon_harness.hpp"

namespace {

using labwatch::daemon::FolderWatcher;
using labwatch::daemon::is_ignored_name;
using namespace labwatch::test;

struct Recorder {
  std::vector<std::string> ready;
  std::vector<Clock::time_point> at;
  int overflows = 0;
  int lost = 0;

  FolderWatcher::Handlers handlers() {
    FolderWatcher::Handlers h;
    h.ready = [this](const std::string& name) {
      ready.push_back(name);
      at.push_back(Clock::now());
    };
    h.overflow = [this] { ++overflows; };
    h.lost = [this](std::error_code) { ++lost; };
    return h;
  }
};

// Runs the loop in short slices until `done` holds or `timeout` passes.
template <class Predicate>
bool run_until(boost::asio::io_context& io, Predicate done, std::chrono::milliseconds timeout) {
  const Clock::time_point end = Clock::now() + timeout;
  while (!done() && Clock::now() < end) {
    io.run_for(10ms);
  }
  return done();
}

void set_mtime_ago(const fs::path& path, std::chrono::seconds ago) {
  std::array<timespec, 2> times{};  // access and modification time
  ::clock_gettime(CLOCK_REALTIME, &times[0]);
  times[0].tv_sec -= ago.count();
  times[1] = times[0];
  REQUIRE(::utimensat(AT_FDCWD, path.c_str(), times.data(), 0) == 0);
}

}  // namespace

TEST_CASE("is_ignored_name skips dotfiles and temporary upload names", "[daemon][watcher]") {
  CHECK(is_ignored_name(""));
  CHECK(is_ignored_name(".hidden.hl7"));
  CHECK(is_ignored_name("."));
  CHECK(is_ignored_name("result.hl7.tmp"));
  CHECK(is_ignored_name("result.hl7.TMP"));
  CHECK(is_ignored_name("result.csv.part"));
  CHECK(is_ignored_name("result.csv.Part"));
  CHECK_FALSE(is_ignored_name("result.hl7"));
  CHECK_FALSE(is_ignored_name("tmp"));
  CHECK_FALSE(is_ignored_name("part.csv"));
  CHECK_FALSE(is_ignored_name("result.tmp.csv"));
}

TEST_CASE("FolderWatcher reports a renamed file at once and a closed one after it settles",
          "[daemon][watcher]") {
  const TempDir dir;
  const fs::path inbox = dir.path() / "inbox";
  fs::create_directory(inbox);
  boost::asio::io_context io;
  Recorder r;
  FolderWatcher watcher(io, inbox, 300ms, r.handlers());
  watcher.start();
  CHECK(watcher.scan().empty());

  write_file(dir.path() / "renamed.hl7", "MSH|");
  const Clock::time_point renamed_at = Clock::now();
  fs::rename(dir.path() / "renamed.hl7", inbox / "renamed.hl7");
  REQUIRE(run_until(
      io, [&] { return r.ready.size() == 1; }, 2s));
  CHECK(r.ready[0] == "renamed.hl7");
  CHECK(r.at[0] - renamed_at < 250ms);

  const Clock::time_point written_at = Clock::now();
  write_file(inbox / "written.csv", "a,b\n1,2\n");
  write_file(inbox / ".dotfile", "x");
  write_file(inbox / "upload.csv.part", "x");
  write_file(dir.path() / "hidden.tmp", "x");
  fs::rename(dir.path() / "hidden.tmp", inbox / "hidden.tmp");
  REQUIRE(run_until(
      io, [&] { return r.ready.size() == 2; }, 3s));
  CHECK(r.ready[1] == "written.csv");
  CHECK(r.at[1] - written_at >= 300ms);
  io.run_for(500ms);
  CHECK(r.ready.size() == 2);
  CHECK(watcher.settling() == 0);
  CHECK(r.overflows == 0);
}

TEST_CASE("FolderWatcher restarts the settle time while a writer keeps appending",
          "[daemon][watcher]") {
  const TempDir dir;
  boost::asio::io_context io;
  Recorder r;
  FolderWatcher watcher(io, dir.path(), 200ms, r.handlers());
  watcher.start();

  // Eight pieces, closed after each, 100 ms apart (< 200 ms settle): one report, after the last.
  Clock::time_point last_close;
  for (int i = 0; i < 8; ++i) {
    write_file(dir.path() / "slow.hl7", "OBX|" + std::to_string(i) + "\r", O_APPEND);
    last_close = Clock::now();
    io.run_for(100ms);
    REQUIRE(r.ready.empty());
  }
  REQUIRE(run_until(
      io, [&] { return !r.ready.empty(); }, 2s));
  CHECK(r.ready == std::vector<std::string>{"slow.hl7"});
  CHECK(r.at[0] - last_close >= 200ms);
  io.run_for(400ms);
  CHECK(r.ready.size() == 1);
}

TEST_CASE("FolderWatcher::scan returns quiet files sorted and lets fresh ones settle first",
          "[daemon][watcher]") {
  const TempDir dir;
  for (const char* name : {"c.hl7", "a.hl7", "b.csv"}) {
    write_file(dir.path() / name, "x");
    set_mtime_ago(dir.path() / name, 60s);
  }
  write_file(dir.path() / "fresh.csv", "x");
  write_file(dir.path() / ".hidden", "x");
  set_mtime_ago(dir.path() / ".hidden", 60s);
  fs::create_symlink("/etc/passwd",
                     dir.path() / "link.hl7");  // not a regular file: complete as it is

  boost::asio::io_context io;
  Recorder r;
  FolderWatcher watcher(io, dir.path(), 300ms, r.handlers());
  watcher.start();
  const Clock::time_point scanned_at = Clock::now();
  CHECK(watcher.scan() == std::vector<std::string>{"a.hl7", "b.csv", "c.hl7", "link.hl7"});
  CHECK(watcher.settling() == 1);
  // A second scan skips what is settling already.
  CHECK(watcher.scan() == std::vector<std::string>{"a.hl7", "b.csv", "c.hl7", "link.hl7"});
  REQUIRE(run_until(
      io, [&] { return !r.ready.empty(); }, 2s));
  CHECK(r.ready == std::vector<std::string>{"fresh.csv"});
  CHECK(r.at[0] - scanned_at <= 400ms);
}

TEST_CASE(
    "FolderWatcher drops a settling file that disappears and reports it lost when the dir goes",
    "[daemon][watcher]") {
  const TempDir dir;
  const fs::path inbox = dir.path() / "inbox";
  fs::create_directory(inbox);
  boost::asio::io_context io;
  Recorder r;
  FolderWatcher watcher(io, inbox, 100ms, r.handlers());
  watcher.start();

  write_file(inbox / "gone.csv", "x");
  io.run_for(30ms);
  CHECK(watcher.settling() == 1);
  fs::remove(inbox / "gone.csv");
  io.run_for(300ms);
  CHECK(r.ready.empty());
  CHECK(watcher.settling() == 0);

  fs::remove(inbox);
  REQUIRE(run_until(
      io, [&] { return r.lost == 1; }, 2s));
  watcher.close();
  io.run_for(50ms);
  CHECK(r.lost == 1);
}

TEST_CASE("FolderWatcher::start throws naming the call when the directory is missing",
          "[daemon][watcher]") {
  const TempDir dir;
  boost::asio::io_context io;
  Recorder r;
  FolderWatcher watcher(io, dir.path() / "missing", 100ms, r.handlers());
  try {
    watcher.start();
    FAIL("start() did not throw");
  } catch (const std::system_error& e) {
    CHECK(e.code() == std::errc::no_such_file_or_directory);
    CHECK(std::string(e.what()).find("inotify_add_watch") != std::string::npos);
  }
}

TEST_CASE("open_writers tells a file held open for writing from one nobody writes",
          "[daemon][watcher]") {
  using labwatch::daemon::open_writers;
  using labwatch::daemon::Writers;
  const TempDir dir;
  const fs::path file = dir.path() / "a.csv";
  write_file(file, "x");
  CHECK(open_writers(file) == Writers::none);
  {
    const int fd = ::open(file.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    REQUIRE(fd >= 0);
    CHECK(open_writers(file) == Writers::some);
    ::close(fd);
  }
  CHECK(open_writers(file) == Writers::none);
  // Never opened: a FIFO (opening one could block or consume), a symlink, nothing at all.
  REQUIRE(::mkfifo((dir.path() / "f.csv").c_str(), 0600) == 0);
  CHECK(open_writers(dir.path() / "f.csv") == Writers::unknown);
  fs::create_symlink(file, dir.path() / "s.csv");
  CHECK(open_writers(dir.path() / "s.csv") == Writers::unknown);
  CHECK(open_writers(dir.path() / "missing.csv") == Writers::unknown);
}
