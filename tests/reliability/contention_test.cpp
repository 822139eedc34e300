// SPDX-License-Identifier: Apache-2.0
// Never fall over: a database held by another writer, a config that is no regular file.
#include <SQLiteCpp/Database.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "reliability/lab_feed.hpp"
#include "reliability/probes.hpp"
#include "reliability/scenario.hpp"
#include "storage/database.hpp"
#include "support/daemon_harness.hpp"

namespace {

using namespace labwatch::test;

// Another writer: a connection that holds the write lock (BEGIN IMMEDIATE) until it is destroyed,
// like a long `labwatch ingest` or an admin's sqlite3 session.
class WriteLock {
 public:
  explicit WriteLock(const fs::path& path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
      const std::string error = sqlite3_errmsg(db_);
      sqlite3_close(db_);
      throw std::runtime_error("open " + path.string() + ": " + error);
    }
    sqlite3_busy_timeout(db_, 10000);
    exec("BEGIN IMMEDIATE");
  }
  ~WriteLock() {
    sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
    sqlite3_close(db_);
  }
  WriteLock(const WriteLock&) = delete;
  WriteLock& operator=(const WriteLock&) = delete;
  WriteLock(WriteLock&&) = delete;
  WriteLock& operator=(WriteLock&&) = delete;

 private:
  void exec(const char* sql) {
    if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
      throw std::runtime_error(std::string(sql) + ": " + sqlite3_errmsg(db_));
    }
  }
  sqlite3* db_ = nullptr;
};

// Replaces the layout's database with one a schema step behind this labwatch (an upgrade): the
// daemon's start-up must write (migrate) before it can run.
void make_database_one_step_behind(const fs::path& path) {
  for (const char* suffix : {"", "-wal", "-shm"}) {
    fs::remove(path.string() + suffix);
  }
  SQLite::Database db(path.string(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  db.exec("PRAGMA journal_mode = WAL");
  const auto steps = labwatch::storage::schema_migrations();
  labwatch::storage::migrate(db, steps.first(steps.size() - 1));
}

}  // namespace

TEST_CASE(
    "run_service waits at start-up while another writer holds the database it must migrate, then "
    "ingests",
    "[reliability][contention]") {
  const Layout layout(TempDir::default_base(), 100);
  const fs::path path = layout.root() / "labwatch.db";
  make_database_one_step_behind(path);
  const auto behind = labwatch::storage::latest_schema_version() - 1;
  NotifySocket notify(layout.notify_path());
  std::unique_ptr<Process> daemon;
  {
    const auto locked_at = std::chrono::steady_clock::now();
    const WriteLock lock(path);
    daemon = layout.start({notify.env()});
    // Past the 5 s busy timeout: it says so and waits, not ready, not gone.
    REQUIRE(wait_until(
        [&] { return layout.daemon_log().find("waiting for the database ") != std::string::npos; },
        12s, 50ms));
    INFO(layout.daemon_log());
    CHECK(daemon->running());
    std::this_thread::sleep_until(locked_at + 8s);
    CHECK(daemon->running());
    CHECK_FALSE(notify.wait_for("READY=1", 0ms));
    CHECK(Database(path).count("PRAGMA user_version") == behind);
  }
  // The lock is gone: it migrates, gets ready and ingests.
  REQUIRE(notify.wait_for("READY=1", 20s));
  const FeedFile file = make_feed_file(12, FeedKind::csv_single);
  layout.drop(file.name, file.bytes);
  INFO(layout.daemon_log());
  CHECK(wait_until([&] { return fs::exists(layout.processed() / file.name); }, 15s, 50ms));
  CHECK(layout.daemon_log().find("the database is free again; starting") != std::string::npos);
  daemon->signal(SIGTERM);
  REQUIRE(daemon->wait_exit(10s) == 0);
  CHECK(Database(path).count("PRAGMA user_version") == behind + 1);
  check_outcome(layout, {file});
}

TEST_CASE(
    "run_service with mail waits at start-up for another writer, and stops cleanly on SIGTERM "
    "meanwhile",
    "[reliability][contention]") {
  // An up-to-date database, but mail on: start-up requeues mail a crash left half-sent, a write
  // at every start.
  const Layout layout(TempDir::default_base(), 100);
  layout.write_config(100,
                      "  <mail smtp=\"smtp://127.0.0.1:9\" allow-plaintext=\"true\" "
                      "from=\"labwatch@clinic.example.org\" "
                      "default-recipient=\"results@clinic.example.org\"/>\n");
  const fs::path path = layout.root() / "labwatch.db";
  const WriteLock lock(path);
  auto daemon = layout.start();
  REQUIRE(wait_until(
      [&] { return layout.daemon_log().find("waiting for the database ") != std::string::npos; },
      12s, 50ms));
  INFO(layout.daemon_log());
  CHECK(daemon->running());
  CHECK(layout.daemon_log().find("started:") == std::string::npos);
  daemon->signal(SIGTERM);
  // At most one busy timeout (5 s) inside SQLite before the signal is seen.
  CHECK(daemon->wait_exit(8s) == 0);
  CHECK(layout.daemon_log().find("stopped while waiting for the database") != std::string::npos);
}

TEST_CASE(
    "run_service waits out another writer holding the database for 30 s, the file staying in "
    "the inbox",
    "[reliability][contention]") {
  const Layout layout(TempDir::default_base(), 100);
  NotifySocket notify(layout.notify_path());
  auto daemon = layout.start({notify.env()});
  REQUIRE(notify.wait_for("READY=1", kReadyTimeout));
  const FeedFile first = make_feed_file(12, FeedKind::csv_single);
  const FeedFile second = make_feed_file(13, FeedKind::csv_single);
  {
    const WriteLock lock(layout.root() / "labwatch.db");
    layout.drop(first.name, first.bytes);
    layout.drop(second.name, second.bytes);
    // Past the 5 s busy timeout, again and again: running, and both files still in the inbox.
    const auto until = std::chrono::steady_clock::now() + 30s;
    bool kept = true;
    while (std::chrono::steady_clock::now() < until && kept) {
      kept = daemon->running() && fs::exists(layout.inbox() / first.name) &&
             fs::exists(layout.inbox() / second.name);
      std::this_thread::sleep_for(250ms);
    }
    INFO(layout.daemon_log());
    REQUIRE(kept);
    CHECK(layout.daemon_log().find(first.name + ": the database is held by another writer") !=
          std::string::npos);
  }
  // The lock is gone: both files are ingested, in order, at the next try.
  INFO(layout.daemon_log());
  CHECK(wait_until([&] { return count_entries(layout.processed()) == 2; }, 30s, 50ms));
  CHECK(layout.daemon_log().find("the database is free again; intake resumes") !=
        std::string::npos);
  CHECK(daemon->running());
  daemon->signal(SIGTERM);
  REQUIRE(daemon->wait_exit(10s) == 0);
  check_outcome(layout, {first, second});
}

TEST_CASE(
    "labwatch refuses a FIFO, a device or an oversized file as its config with exit 78, and a "
    "reload to one keeps the old config",
    "[reliability][config]") {
  const Layout layout(TempDir::default_base(), 100);
  const fs::path fifo = layout.root() / "fifo.xml";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  const fs::path big = layout.root() / "big.xml";
  write_file(big, "<labwatch/>" + std::string(std::size_t{2} << 20, ' '));
  for (const fs::path& config : {fifo, fs::path("/dev/zero"), big}) {
    INFO(config);
    for (const char* command : {"check-config", "run"}) {
      INFO(command);
      const auto started = std::chrono::steady_clock::now();
      const CommandResult r = run_labwatch({command, "--config", config.string()}, 20s);
      CHECK(r.exit_code == 78);
      CHECK(std::chrono::steady_clock::now() - started < 10s);
      CHECK((r.err.find("not a regular file") != std::string::npos ||
             r.err.find("too large") != std::string::npos));
    }
  }

  // A running daemon asked to reload a config that became a FIFO, then /dev/zero: refused, and it
  // keeps ingesting on the old one.
  NotifySocket notify(layout.notify_path());
  auto daemon = layout.start({notify.env()});
  REQUIRE(notify.wait_for("READY=1", kReadyTimeout));
  const fs::path saved = layout.root() / "saved.xml";
  fs::rename(layout.config(), saved);
  REQUIRE(::mkfifo(layout.config().c_str(), 0600) == 0);
  daemon->signal(SIGHUP);
  CHECK(wait_until([&] { return layout.daemon_log().find("reload refused") != std::string::npos; },
                   10s));
  fs::remove(layout.config());
  fs::create_symlink("/dev/zero", layout.config());
  daemon->signal(SIGHUP);
  CHECK(wait_until(
      [&] {
        const std::string log = layout.daemon_log();
        const std::size_t first = log.find("reload refused");
        return first != std::string::npos &&
               log.find("reload refused", first + 1) != std::string::npos;
      },
      10s));
  const FeedFile file = make_feed_file(12, FeedKind::csv_single);
  layout.drop(file.name, file.bytes);
  INFO(layout.daemon_log());
  CHECK(wait_until([&] { return fs::exists(layout.processed() / file.name); }, 15s));
  CHECK(daemon->running());
  daemon->signal(SIGTERM);
  REQUIRE(daemon->wait_exit(10s) == 0);
  fs::remove(layout.config());
  fs::rename(saved, layout.config());
}
