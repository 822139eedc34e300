// SPDX-License-Identifier: Apache-2.0
// Tests of opening the database: file modes, pragmas, migrations and refusing a newer schema.
#include "storage/database.hpp"

#include <SQLiteCpp/SQLiteCpp.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <array>
#include <catch2/catch.hpp>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "storage/store.hpp"

namespace {

namespace fs = std::filesystem;
using labwatch::storage::Migration;

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "labwatch-database-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw std::system_error(errno, std::generic_category(), "mkdtemp");
    }
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  TempDir(TempDir&&) = delete;
  TempDir& operator=(TempDir&&) = delete;

  [[nodiscard]] std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

// Sets the process umask for one scope.
class UmaskScope {
 public:
  explicit UmaskScope(mode_t mask) : previous_(::umask(mask)) {}
  ~UmaskScope() { ::umask(previous_); }
  UmaskScope(const UmaskScope&) = delete;
  UmaskScope& operator=(const UmaskScope&) = delete;
  UmaskScope(UmaskScope&&) = delete;
  UmaskScope& operator=(UmaskScope&&) = delete;

 private:
  mode_t previous_;
};

mode_t mode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

std::vector<std::string> table_names(SQLite::Database& db) {
  std::vector<std::string> names;
  SQLite::Statement query(db, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name");
  while (query.executeStep()) {
    names.push_back(query.getColumn(0).getString());
  }
  return names;
}

}  // namespace

TEST_CASE("open_database migrates an empty file to the latest schema and reopens it",
          "[storage][database]") {
  const TempDir dir;
  const std::string path = dir.file("labwatch.db");
  REQUIRE(labwatch::storage::latest_schema_version() == 2);
  {
    SQLite::Database db = labwatch::storage::open_database(path, {});
    CHECK(labwatch::storage::schema_version(db) == 2);
    CHECK(table_names(db) == std::vector<std::string>{"alerts", "files", "identifiers", "messages",
                                                      "notices", "outbox", "persons", "refusals",
                                                      "results", "unmapped_codes"});
    db.exec(
        "INSERT INTO files (sha256, name, source, size, ingested_at, outcome) "
        "VALUES ('abc', 'a.hl7', '', 3, 0, 'accepted')");
  }
  SQLite::Database again = labwatch::storage::open_database(path, {});
  CHECK(labwatch::storage::schema_version(again) == 2);
  CHECK(again.execAndGet("SELECT name FROM files WHERE sha256 = 'abc'").getString() == "a.hl7");
}

TEST_CASE("open_database sets WAL, synchronous FULL, foreign keys and the busy timeout",
          "[storage][database]") {
  const TempDir dir;
  labwatch::storage::StoreOptions options;
  options.busy_timeout_ms = 1234;
  SQLite::Database db = labwatch::storage::open_database(dir.file("labwatch.db"), options);
  CHECK(db.execAndGet("PRAGMA journal_mode").getString() == "wal");
  CHECK(db.execAndGet("PRAGMA synchronous").getInt() == 2);  // FULL
  CHECK(db.execAndGet("PRAGMA foreign_keys").getInt() == 1);
  CHECK(db.execAndGet("PRAGMA busy_timeout").getInt() == 1234);
  // Foreign keys are enforced: a message of an unknown file is refused.
  CHECK_THROWS_AS(db.exec("INSERT INTO messages (file_id, facility, control_id, message_time, "
                          "person_id, patient_key) VALUES (99, 'X', '1', 0, 98, 'A|1')"),
                  SQLite::Exception);
}

TEST_CASE("open_sqlite_store creates the database, WAL and SHM files with mode 0600",
          "[storage][database]") {
  mode_t mask = 022;
  SECTION("umask 022") { mask = 022; }
  SECTION("umask 000") { mask = 0; }
  SECTION("umask 277 (no owner write)") { mask = 0277; }
  const TempDir dir;
  const std::string path = dir.file("labwatch.db");
  const UmaskScope umask_scope(mask);

  auto store = labwatch::storage::open_sqlite_store(path);
  labwatch::storage::FileRecord file;
  file.sha256 = "00";
  file.name = "a.csv";
  auto tx = store->begin_file(file, labwatch::storage::Targets{});
  tx->commit();  // a write: the WAL now exists next to the open database

  CHECK(mode_of(path) == 0600);
  CHECK(mode_of(path + "-wal") == 0600);
  CHECK(mode_of(path + "-shm") == 0600);
}

TEST_CASE("open_database refuses a database written by a newer labwatch", "[storage][database]") {
  const TempDir dir;
  const std::string path = dir.file("labwatch.db");
  {
    SQLite::Database db = labwatch::storage::open_database(path, {});
    db.exec("PRAGMA user_version = 3");
  }
  CHECK_THROWS_WITH(labwatch::storage::open_database(path, {}),
                    "database schema version 3 is newer than this labwatch supports (2); use a "
                    "newer labwatch");
  CHECK_THROWS_AS(labwatch::storage::open_sqlite_store(path), std::runtime_error);
  SQLite::Database untouched(path);
  CHECK(labwatch::storage::schema_version(untouched) == 3);
}

TEST_CASE("migrate applies each step in its own transaction and stops at a failing one",
          "[storage][database]") {
  SQLite::Database db(":memory:", SQLite::OPEN_READWRITE);
  const std::array broken = {Migration{1, "CREATE TABLE a (x)"},
                             Migration{2, "CREATE TABLE b (y); INSERT INTO missing VALUES (1)"}};
  CHECK_THROWS_AS(labwatch::storage::migrate(db, broken), SQLite::Exception);
  CHECK(labwatch::storage::schema_version(db) == 1);
  CHECK(table_names(db) == std::vector<std::string>{"a"});  // step 2 left nothing behind

  const std::array fixed = {Migration{1, "CREATE TABLE a (x)"}, Migration{2, "CREATE TABLE b (y)"}};
  labwatch::storage::migrate(db, fixed);
  CHECK(labwatch::storage::schema_version(db) == 2);
  CHECK(table_names(db) == std::vector<std::string>{"a", "b"});
  labwatch::storage::migrate(db, fixed);  // nothing left to do
  CHECK(labwatch::storage::schema_version(db) == 2);
}

TEST_CASE("migrate refuses a negative schema version", "[storage][database]") {
  SQLite::Database db(":memory:", SQLite::OPEN_READWRITE);
  db.exec("PRAGMA user_version = -1");
  const std::array steps = {Migration{1, "CREATE TABLE a (x)"}};
  CHECK_THROWS_WITH(labwatch::storage::migrate(db, steps),
                    "database schema version -1 was not written by labwatch");
  CHECK(table_names(db).empty());
}

TEST_CASE("migrate rejects steps that are not numbered from 1", "[storage][database]") {
  SQLite::Database db(":memory:", SQLite::OPEN_READWRITE);
  const std::array gap = {Migration{1, "CREATE TABLE a (x)"}, Migration{3, "CREATE TABLE b (y)"}};
  CHECK_THROWS_AS(labwatch::storage::migrate(db, gap), std::logic_error);
  CHECK(labwatch::storage::schema_version(db) == 0);
}

TEST_CASE("open_database without create refuses a missing file and creates nothing",
          "[storage][database]") {
  const TempDir dir;
  const std::string path = dir.file("missing.db");
  labwatch::storage::StoreOptions options;
  options.create = false;
  CHECK_THROWS_AS(labwatch::storage::open_database(path, options), SQLite::Exception);
  CHECK_FALSE(fs::exists(path));
}

TEST_CASE("open_database names the failed call when the file cannot be created",
          "[storage][database]") {
  const TempDir dir;
  try {
    labwatch::storage::open_database(dir.file("no-such-dir/labwatch.db"), {});
    FAIL("open_database did not throw");
  } catch (const std::system_error& e) {
    CHECK(e.code() == std::error_code(ENOENT, std::generic_category()));
    CHECK(std::string(e.what()).rfind("open", 0) == 0);
  }
}

TEST_CASE("open_database upgrades a version 1 database without mailing its old alerts",
          "[storage][database]") {
  const TempDir dir;
  const std::string path = dir.file("labwatch.db");
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    labwatch::storage::migrate(db, labwatch::storage::schema_migrations().first(1));
    REQUIRE(labwatch::storage::schema_version(db) == 1);
    db.exec(
        "INSERT INTO alerts (result_id, rule, state, value, created_at, updated_at) VALUES "
        "(1, 'ge:50', 'pending', 40, 0, 0), (2, 'ge:50', 'superseded', 41, 0, 0)");
  }
  SQLite::Database db = labwatch::storage::open_database(path, {});
  CHECK(labwatch::storage::schema_version(db) == 2);
  CHECK(db.execAndGet("SELECT group_concat(state, ',') FROM (SELECT state FROM alerts "
                      "ORDER BY alert_id)")
            .getString() == "unmailed,superseded");
  CHECK(db.execAndGet("SELECT count(*) FROM outbox").getInt() == 0);
  CHECK(db.execAndGet("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND "
                      "name = 'results_by_person_analyte'")
            .getInt() == 1);
}
