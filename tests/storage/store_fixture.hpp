// SPDX-License-Identifier: Apache-2.0
// Shared fixtures of the storage tests: a temporary store and builders of normalized reports.
#pragma once

#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "clinical/rules.hpp"
#include "storage/connect.hpp"
#include "storage/sql.hpp"
#include "storage/store.hpp"
#include "support/pg_database.hpp"

namespace labwatch::storage::testing {

namespace fs = std::filesystem;
using clinical::NormalizedReport;
using clinical::NormalizedResult;
using clinical::PersonIdentity;
using clinical::ResultStatus;

inline constexpr std::int64_t kT0 = 1735689600;  // 2025-01-01T00:00:00Z

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "labwatch-store-XXXXXX").string();
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

// The backend the storage suite runs on: SQLite, unless LABWATCH_TEST_STORE_PG names the state
// file of a throwaway PostgreSQL cluster (tests/support/pg-cluster); then each fixture gets a
// fresh database of that cluster. CTest runs the suite both ways (tests/CMakeLists.txt); cases
// about SQLite's file itself carry the tag [sqlite] and run on SQLite only.
inline std::optional<fs::path> postgresql_state_file() {
  const char* state = std::getenv("LABWATCH_TEST_STORE_PG");
  if (state == nullptr || *state == '\0') {
    return std::nullopt;
  }
  return fs::path(state);
}

// A temporary database with its store, plus fresh connections for checks.
struct Fixture {
  TempDir dir;
  std::unique_ptr<labwatch::testing::PgDatabase> pg = fresh_postgresql_database();
  // The database as open_store takes it: a SQLite file's path or a PostgreSQL URL.
  std::string path = pg ? pg->uri() : dir.file("labwatch.db");
  std::unique_ptr<Store> store = open_store(path);

  // A new connection to the same database (read-write: a test may edit it as a person would).
  [[nodiscard]] std::unique_ptr<sql::Database> reader() const {
    return open_existing(path, Access::read_write);
  }
  // One integer from a query on a fresh connection.
  [[nodiscard]] std::int64_t count(const std::string& sql) const {
    return open_existing(path, Access::read_only)->query_int64(sql);
  }
  // One text from a query on a fresh connection ("" when it returns no row).
  [[nodiscard]] std::string text(const std::string& sql) const {
    const std::unique_ptr<sql::Database> db = open_existing(path, Access::read_only);
    sql::Statement query(*db, sql);
    return query.step() ? query.column(0).as_string() : std::string();
  }

 private:
  static std::unique_ptr<labwatch::testing::PgDatabase> fresh_postgresql_database() {
    if (const std::optional<fs::path> state = postgresql_state_file()) {
      return std::make_unique<labwatch::testing::PgDatabase>(*state);
    }
    return nullptr;
  }
};

inline PersonIdentity person(std::string authority, std::string mrn, std::string family,
                             std::string given, std::string birth_date, char sex) {
  PersonIdentity p;
  p.authority = std::move(authority);
  p.mrn = std::move(mrn);
  p.family = std::move(family);
  p.given = std::move(given);
  p.birth_date = std::move(birth_date);
  p.sex = sex;
  return p;
}

inline NormalizedResult result(std::string analyte, double value, std::string unit,
                               std::string order_id, ResultStatus status = ResultStatus::final,
                               std::int64_t collected_at = kT0) {
  NormalizedResult r;
  r.analyte = std::move(analyte);
  r.value = value;
  r.unit = std::move(unit);
  r.raw_value = std::to_string(value);
  r.raw_unit = r.unit;
  r.order_id = std::move(order_id);
  r.status = status;
  r.collected_at = collected_at;
  r.code = "2276-4";
  return r;
}

inline NormalizedReport report(std::string facility, std::string control_id,
                               std::int64_t message_time, PersonIdentity patient,
                               std::vector<NormalizedResult> results) {
  NormalizedReport r;
  r.facility = std::move(facility);
  r.control_id = control_id;
  r.message_time = message_time;
  r.raw_digest = control_id.empty() ? std::string() : "digest-" + control_id;
  r.patient = std::move(patient);
  r.results = std::move(results);
  return r;
}

inline FileRecord file_named(const std::string& name) {
  FileRecord f;
  f.sha256 = "sha-" + name;
  f.name = name;
  f.size = 100;
  return f;
}

// The default optimal rules of the built-in catalogue.
inline AlertPolicy default_targets() {
  AlertPolicy targets;
  for (const auto& analyte : targets.catalogue->analytes()) {
    auto rule = labwatch::clinical::parse_optimal_rule(analyte.optimal_rule);
    REQUIRE(rule.has_value());
    targets.by_analyte.emplace(analyte.key, std::move(rule).value());
  }
  // These tests are about the ledger, on results of 2025: every alert is mailed whatever its age
  // or status, as before <alerts> existed. The mail policy's own tests set it themselves.
  targets.mail_policy.max_age_seconds = std::numeric_limits<std::int64_t>::max() / 2;
  targets.mail_policy.mail_preliminary = true;
  return targets;
}

// Ingests `reports` as one file named `name` under `targets` (default: the catalogue's rules).
inline IngestSummary ingest(Store& store, const std::string& name,
                            const std::vector<NormalizedReport>& reports,
                            const AlertPolicy& targets = default_targets()) {
  auto tx = store.begin_file(file_named(name), targets);
  for (const NormalizedReport& r : reports) {
    tx->add_report(r);
  }
  return tx->commit();
}

// Unix seconds `seconds` from now: claims "far in the future" take every queued mail.
inline std::int64_t from_now(std::int64_t seconds) {
  const auto since_epoch = std::chrono::system_clock::now().time_since_epoch();
  return std::chrono::duration_cast<std::chrono::seconds>(since_epoch).count() + seconds;
}

}  // namespace labwatch::storage::testing
