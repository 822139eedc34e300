// SPDX-License-Identifier: Apache-2.0
// The per-test PostgreSQL database of tests/support/pg_database.hpp, in the throwaway cluster.
#include "support/pg_database.hpp"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>

namespace {

using labwatch::testing::pg_connect;
using labwatch::testing::pg_exec;
using labwatch::testing::pg_value;
using labwatch::testing::PgDatabase;

// How many databases of that name the cluster holds (0 or 1), asked through `admin_uri`.
std::string count_databases(const std::string& admin_uri, const std::string& name) {
  const auto admin = pg_connect(admin_uri);
  return pg_value(admin.get(), "SELECT count(*) FROM pg_database WHERE datname = '" + name + "'");
}

}  // namespace

TEST_CASE("PgDatabase creates a fresh empty database and drops it", "[storage][pg]") {
  if (!PgDatabase::available()) {
    WARN("no throwaway PostgreSQL cluster (LABWATCH_TEST_PG_STATE unset): skipped");
    return;
  }
  std::optional<PgDatabase> db(std::in_place);
  const std::string name = db->name();
  CHECK(name.rfind("labwatch_t_", 0) == 0);
  CHECK(db->uri() == db->cluster_uri(name));

  const auto connection = pg_connect(db->uri());
  CHECK(pg_value(connection.get(), "SELECT current_database()") == name);
  CHECK(pg_value(connection.get(), "SELECT current_user") == "labwatch_test");
  CHECK(pg_value(connection.get(),
                 "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN "
                 "('pg_catalog', 'information_schema')") == "0");
  pg_exec(connection.get(), "CREATE TABLE results (analyte text, value numeric)");
  pg_exec(connection.get(), "INSERT INTO results VALUES ('HBA1C', 6.4)");
  CHECK(pg_value(connection.get(), "SELECT value FROM results WHERE analyte = 'HBA1C'") == "6.4");

  SECTION("a second one is another, empty database") {
    const PgDatabase other;
    CHECK(other.name() != name);
    const auto other_connection = pg_connect(other.uri());
    CHECK(pg_value(other_connection.get(), "SELECT to_regclass('results') IS NULL") == "t");
  }
  SECTION("the destructor drops it, even while a connection to it is still open") {
    const std::string admin_uri = db->cluster_uri("postgres");
    REQUIRE(count_databases(admin_uri, name) == "1");
    db.reset();
    CHECK(count_databases(admin_uri, name) == "0");
    CHECK(PQstatus(connection.get()) == CONNECTION_OK);  // libpq notices only at the next call
    CHECK_THROWS_AS(pg_exec(connection.get(), "SELECT 1"), std::runtime_error);
  }
}

TEST_CASE("PgDatabase names the state file it cannot read", "[storage]") {
  const std::filesystem::path missing =
      std::filesystem::temp_directory_path() / "labwatch-no-such-pg-state";
  CHECK_THROWS_WITH(PgDatabase(missing), Catch::Contains(missing.string()));
}

TEST_CASE("PgDatabase reports libpq's message when no server answers", "[storage]") {
  // A state file that names a directory without a server socket in it.
  const std::filesystem::path dir = std::filesystem::temp_directory_path();
  const std::filesystem::path state =
      dir / ("labwatch-pg-database-test-" + std::to_string(::getpid()) + ".state");
  {
    std::ofstream out(state);
    out << (dir / "labwatch-pg-no-server").string() << '\n';
  }
  CHECK_THROWS_WITH(PgDatabase(state), Catch::StartsWith("PQconnectdb postgresql:///postgres?") &&
                                           Catch::Contains("labwatch-pg-no-server/.s.PGSQL"));
  std::filesystem::remove(state);
}
