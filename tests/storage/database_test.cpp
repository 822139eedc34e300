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
#include "storage/store_fixture.hpp"

namespace {

namespace fs = std::filesystem;
using labwatch::storage::Migration;
using labwatch::storage::testing::TempDir;

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
          "[storage][sqlite][database]") {
  const TempDir dir;
  const std::string path = dir.file("labwatch.db");
  REQUIRE(labwatch::storage::latest_schema_version() == 13);
  {
    SQLite::Database db = labwatch::storage::open_database(path, {});
    CHECK(labwatch::storage::schema_version(db) == labwatch::storage::latest_schema_version());
    CHECK(db.execAndGet("PRAGMA page_size").getInt() == 16384);
    CHECK(table_names(db) ==
          std::vector<std::string>{"alerts", "files", "identifiers", "identity_audit",
                                   "intake_attempts", "match_candidates", "messages",
                                   "not_performed", "notices", "outbox", "persons", "refusals",
                                   "results", "silences", "unmapped_codes"});
    db.exec(
        "INSERT INTO files (sha256, name, source, size, ingested_at, outcome) "
        "VALUES ('abc', 'a.hl7', '', 3, 0, 'accepted')");
  }
  SQLite::Database again = labwatch::storage::open_database(path, {});
  CHECK(labwatch::storage::schema_version(again) == labwatch::storage::latest_schema_version());
  CHECK(again.execAndGet("SELECT name FROM files WHERE sha256 = 'abc'").getString() == "a.hl7");
}

TEST_CASE("open_database sets WAL, synchronous FULL, foreign keys, busy timeout and cache size",
          "[storage][sqlite][database]") {
  const TempDir dir;
  labwatch::storage::StoreOptions options;
  options.busy_timeout_ms = 1234;
  SECTION("the default cache of 32 MiB") {}
  SECTION("a cache of 4 MiB") { options.cache_kib = 4096; }
  SQLite::Database db = labwatch::storage::open_database(dir.file("labwatch.db"), options);
  CHECK(db.execAndGet("PRAGMA journal_mode").getString() == "wal");
  CHECK(db.execAndGet("PRAGMA synchronous").getInt() == 2);  // FULL
  CHECK(db.execAndGet("PRAGMA foreign_keys").getInt() == 1);
  CHECK(db.execAndGet("PRAGMA busy_timeout").getInt() == 1234);
  CHECK(db.execAndGet("PRAGMA cache_size").getInt() == -options.cache_kib);  // negative: KiB
  // Foreign keys are enforced: a message of an unknown file is refused.
  CHECK_THROWS_AS(db.exec("INSERT INTO messages (file_id, facility, control_id, message_time, "
                          "person_id, patient_key) VALUES (99, 'X', '1', 0, 98, 'A|1')"),
                  SQLite::Exception);
}

TEST_CASE("open_store creates the database, WAL and SHM files with mode 0600",
          "[storage][sqlite][database]") {
  mode_t mask = 022;
  SECTION("umask 022") { mask = 022; }
  SECTION("umask 000") { mask = 0; }
  SECTION("umask 277 (no owner write)") { mask = 0277; }
  const TempDir dir;
  const std::string path = dir.file("labwatch.db");
  const UmaskScope umask_scope(mask);

  auto store = labwatch::storage::open_store(path);
  labwatch::storage::FileRecord file;
  file.sha256 = "00";
  file.name = "a.csv";
  auto tx = store->begin_file(file, labwatch::storage::AlertPolicy{});
  tx->commit();  // a write: the WAL now exists next to the open database

  CHECK(mode_of(path) == 0600);
  CHECK(mode_of(path + "-wal") == 0600);
  CHECK(mode_of(path + "-shm") == 0600);
}

TEST_CASE("open_database refuses a database written by a newer labwatch",
          "[storage][sqlite][database]") {
  const TempDir dir;
  const std::string path = dir.file("labwatch.db");
  {
    SQLite::Database db = labwatch::storage::open_database(path, {});
    db.exec("PRAGMA user_version = 14");
  }
  CHECK_THROWS_WITH(labwatch::storage::open_database(path, {}),
                    "database schema version 14 is newer than this labwatch supports (13); use a "
                    "newer labwatch");
  CHECK_THROWS_AS(labwatch::storage::open_store(path), std::runtime_error);
  SQLite::Database untouched(path);
  CHECK(labwatch::storage::schema_version(untouched) == 14);
}

TEST_CASE("migrate applies each step in its own transaction and stops at a failing one",
          "[storage][sqlite][database]") {
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

TEST_CASE("migrate refuses a negative schema version", "[storage][sqlite][database]") {
  SQLite::Database db(":memory:", SQLite::OPEN_READWRITE);
  db.exec("PRAGMA user_version = -1");
  const std::array steps = {Migration{1, "CREATE TABLE a (x)"}};
  CHECK_THROWS_WITH(labwatch::storage::migrate(db, steps),
                    "database schema version -1 was not written by labwatch");
  CHECK(table_names(db).empty());
}

TEST_CASE("migrate rejects steps that are not numbered from 1", "[storage][sqlite][database]") {
  SQLite::Database db(":memory:", SQLite::OPEN_READWRITE);
  const std::array gap = {Migration{1, "CREATE TABLE a (x)"}, Migration{3, "CREATE TABLE b (y)"}};
  CHECK_THROWS_AS(labwatch::storage::migrate(db, gap), std::logic_error);
  CHECK(labwatch::storage::schema_version(db) == 0);
}

TEST_CASE("open_database without create refuses a missing file and creates nothing",
          "[storage][sqlite][database]") {
  const TempDir dir;
  const std::string path = dir.file("missing.db");
  labwatch::storage::StoreOptions options;
  options.create = false;
  CHECK_THROWS_AS(labwatch::storage::open_database(path, options), SQLite::Exception);
  CHECK_FALSE(fs::exists(path));
}

TEST_CASE("open_database names the failed call when the file cannot be created",
          "[storage][sqlite][database]") {
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
          "[storage][sqlite][database]") {
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
  CHECK(labwatch::storage::schema_version(db) == labwatch::storage::latest_schema_version());
  CHECK(db.execAndGet("SELECT group_concat(state, ',') FROM (SELECT state FROM alerts "
                      "ORDER BY alert_id)")
            .getString() == "unmailed,superseded");
  CHECK(db.execAndGet("SELECT count(*) FROM outbox").getInt() == 0);
}

namespace {

// The indexes of the results table and of refusals, as "name: columns" (a partial index with its
// condition), in name order.
std::vector<std::string> result_indexes(SQLite::Database& db) {
  std::vector<std::string> out;
  SQLite::Statement query(db,
                          "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND "
                          "tbl_name IN ('results', 'refusals') AND sql IS NOT NULL ORDER BY name");
  while (query.executeStep()) {
    const std::string sql = query.getColumn(1).getString();
    out.push_back(query.getColumn(0).getString() + ":" + sql.substr(sql.find('(') - 1));
  }
  return out;
}

}  // namespace

TEST_CASE("open_database upgrades version 2 to one person index in time order and keeps the rows",
          "[storage][sqlite][database]") {
  const TempDir dir;
  const std::string path = dir.file("labwatch.db");
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    labwatch::storage::migrate(db, labwatch::storage::schema_migrations().first(2));
    REQUIRE(labwatch::storage::schema_version(db) == 2);
    db.exec(
        "INSERT INTO files (sha256, name, source, size, ingested_at, outcome) "
        "VALUES ('abc', 'a.csv', '', 3, 0, 'refused');"
        "INSERT INTO refusals (file_id, level, reason, detail, segment_id, pos_column, "
        "patient_key, code, analyte, collected_at, result_status) "
        "VALUES (1, 'file', 'empty_file', 'no data', '', '', '', '', '', '', '');"
        "INSERT INTO results (message_id, person_id, order_id, analyte, code, value, unit, "
        "comparator, raw_value, raw_unit, raw_range, flags, status, collected_at, notes, state) "
        "VALUES (1, 7, NULL, 'ferritin', 'x', 40, 'ng/mL', '', '40', 'ng/mL', '', '', 'final', "
        "100, '', 'current'), (1, 7, 'O1', 'zinc', 'y', 90, 'ug/dL', '', '90', 'ug/dL', '', '', "
        "'final', 100, '', 'current')");
  }
  SQLite::Database db = labwatch::storage::open_database(path, {});
  CHECK(labwatch::storage::schema_version(db) == labwatch::storage::latest_schema_version());
  CHECK(db.execAndGet("PRAGMA page_size").getInt() == 4096);  // an existing file keeps its pages
  CHECK(result_indexes(db) ==
        std::vector<std::string>{
            "refusals_by_file: (file_id)",
            "results_by_order: (order_id) WHERE order_id IS NOT NULL",
            "results_by_person_time_analyte: (person_id, collected_at, analyte)"});
  CHECK(db.execAndGet("SELECT count(*) FROM results WHERE person_id = 7 AND collected_at = 100")
            .getInt() == 2);
  CHECK(db.execAndGet("SELECT reason FROM refusals WHERE file_id = 1").getString() == "empty_file");
  // The queries of a person's results and of a CSV report's versions use the new index.
  const auto plan = [&db](const std::string& sql) {
    SQLite::Statement explain(db, "EXPLAIN QUERY PLAN " + sql);
    std::string details;
    while (explain.executeStep()) {
      details += explain.getColumn(3).getString() + "\n";
    }
    return details;
  };
  // The trend judge's read of one analyte's history: the person's index entries, the analyte
  // checked in the index, so only that analyte's rows are read.
  CHECK(plan("SELECT result_id, collected_at, value, ref_low, ref_high FROM results WHERE "
             "person_id = 7 AND analyte = 'ferritin' AND state = 'current' "
             "ORDER BY collected_at, result_id")
            .find("USING INDEX results_by_person_time_analyte (person_id=?)") != std::string::npos);
  CHECK(plan("SELECT result_id FROM results WHERE person_id = 7 AND collected_at = 100 AND "
             "order_id IS NULL")
            .find("USING INDEX results_by_person_time_analyte (person_id=? AND collected_at=?)") !=
        std::string::npos);
  CHECK(plan("SELECT refusal_id FROM refusals WHERE file_id = 1 ORDER BY refusal_id")
            .find("INDEX refusals_by_file (file_id=?)") != std::string::npos);
}

TEST_CASE("open_database upgrades version 6 to identity review and gives identifiers their names",
          "[storage][sqlite][database][identity]") {
  const TempDir dir;
  const std::string path = dir.file("labwatch.db");
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    labwatch::storage::migrate(db, labwatch::storage::schema_migrations().first(6));
    db.exec(
        "INSERT INTO persons (family, given, birth_date, sex, match_key, created_at) "
        "VALUES ('Novak', 'Hana', '1970-03-12', 'F', 'novak|hana|1970-03-12|F', 0);"
        "INSERT INTO identifiers (authority, mrn, person_id) VALUES ('LABA', '1', 1)");
  }
  SQLite::Database db = labwatch::storage::open_database(path, {});
  CHECK(labwatch::storage::schema_version(db) == labwatch::storage::latest_schema_version());
  CHECK(db.execAndGet("SELECT family || ' ' || given || ' ' || birth_date || ' ' || sex "
                      "FROM identifiers WHERE mrn = '1'")
            .getString() == "Novak Hana 1970-03-12 F");
  CHECK(db.execAndGet("SELECT count(*) FROM persons WHERE merged_into IS NULL").getInt() == 1);
  // One match key may now stand for two persons (two identifiers of one authority).
  db.exec(
      "INSERT INTO persons (family, given, birth_date, sex, match_key, created_at) "
      "VALUES ('Novak', 'Hana', '1970-03-12', 'F', 'novak|hana|1970-03-12|F', 0)");
  CHECK(db.execAndGet("SELECT count(*) FROM persons").getInt() == 2);
}

TEST_CASE("open_database upgrades version 7 by giving every person its demographic key",
          "[storage][sqlite][database][identity]") {
  const TempDir dir;
  const std::string path = dir.file("labwatch.db");
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    labwatch::storage::migrate(db, labwatch::storage::schema_migrations().first(7));
    db.exec(
        "INSERT INTO persons (family, given, birth_date, sex, match_key, created_at) VALUES "
        "('Smith-Jones', 'Mary Ann', '1970-03-12', 'F', NULL, 0), "
        "('O''Brien', '', '1970-03-12', 'M', NULL, 0)");
  }
  SQLite::Database db = labwatch::storage::open_database(path, {});
  CHECK(labwatch::storage::schema_version(db) == labwatch::storage::latest_schema_version());
  CHECK(db.execAndGet("SELECT demographic_key FROM persons WHERE person_id = 1").getString() ==
        "smithjones|mary|1970-03-12");
  // Without a given name there is nothing to agree on: matched by identifier only.
  CHECK(db.execAndGet("SELECT demographic_key IS NULL FROM persons WHERE person_id = 2").getInt() ==
        1);
}

TEST_CASE("The match candidates of a person are read through indexes, newest first, unsorted",
          "[storage][sqlite][database][identity]") {
  // Each read is bounded by clinical::kCandidateWindow: walking an index backwards stops there,
  // where a sort would read every person with the same name or birth date first.
  const TempDir dir;
  SQLite::Database db = labwatch::storage::open_database(dir.file("labwatch.db"), {});
  const auto plan = [&db](const std::string& sql) {
    SQLite::Statement explain(db, "EXPLAIN QUERY PLAN " + sql);
    std::string details;
    while (explain.executeStep()) {
      details += explain.getColumn(3).getString() + "\n";
    }
    return details;
  };
  const std::string by_key = plan(
      "SELECT person_id, family, given, birth_date, sex FROM persons "
      "WHERE demographic_key = ? AND merged_into IS NULL ORDER BY person_id DESC LIMIT ?");
  INFO(by_key);
  CHECK(by_key.find("USING INDEX persons_by_demographic_key (demographic_key=?)") !=
        std::string::npos);
  CHECK(by_key.find("TEMP B-TREE") == std::string::npos);
  const std::string by_date = plan(
      "SELECT person_id, family, given, birth_date, sex FROM persons "
      "WHERE birth_date = ? AND merged_into IS NULL ORDER BY person_id DESC LIMIT ?");
  INFO(by_date);
  CHECK(by_date.find("USING INDEX persons_by_birth_date (birth_date=?)") != std::string::npos);
  CHECK(by_date.find("TEMP B-TREE") == std::string::npos);
}

TEST_CASE("open_database upgrades version 9 to silences and trend evidence",
          "[storage][sqlite][database][silence]") {
  const TempDir dir;
  const std::string path = dir.file("labwatch.db");
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    labwatch::storage::migrate(db, labwatch::storage::schema_migrations().first(9));
    db.exec(
        "INSERT INTO alerts (result_id, rule, state, value, created_at, updated_at) "
        "VALUES (1, 'trend:falling:0.2', 'sent', 40, 0, 0)");
  }
  SQLite::Database db = labwatch::storage::open_database(path, {});
  CHECK(labwatch::storage::schema_version(db) == labwatch::storage::latest_schema_version());
  // An alert of before has no evidence recorded; silences start empty.
  CHECK(db.execAndGet("SELECT evidence FROM alerts WHERE result_id = 1").getString().empty());
  CHECK(db.execAndGet("SELECT count(*) FROM silences").getInt() == 0);
}

TEST_CASE("open_database upgrades version 11 by marking the messages that were timed by arrival",
          "[storage][sqlite][database][versions]") {
  const TempDir dir;
  const std::string path = dir.file("labwatch.db");
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    labwatch::storage::migrate(db, labwatch::storage::schema_migrations().first(11));
    // Before version 12 a message without MSH-7 and OBR-22 was stored with its file's ingest time.
    db.exec(
        "INSERT INTO files (sha256, name, source, size, ingested_at, outcome) "
        "VALUES ('aa', 'a.hl7', 'LAB', 1, 1800000000, 'accepted');"
        "INSERT INTO persons (family, given, birth_date, sex, match_key, created_at) "
        "VALUES ('Novak', 'Hana', '1970-03-12', 'F', NULL, 0);"
        "INSERT INTO messages (file_id, facility, control_id, raw_digest, message_time, "
        "person_id, patient_key) VALUES "
        "(1, 'LAB', 'M1', 'd1', 1800000000, 1, 'LAB|1'), "
        "(1, 'LAB', 'M2', 'd2', 1799990000, 1, 'LAB|1'), "
        "(1, 'LAB', '', '', 0, 1, 'LAB|1')");
  }
  SQLite::Database db = labwatch::storage::open_database(path, {});
  CHECK(labwatch::storage::schema_version(db) == labwatch::storage::latest_schema_version());
  CHECK(db.execAndGet("SELECT group_concat(control_id || '=' || time_from_arrival, ',') FROM "
                      "(SELECT control_id, time_from_arrival FROM messages ORDER BY message_id)")
            .getString() == "M1=1,M2=0,=0");
}
