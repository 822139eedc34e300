// SPDX-License-Identifier: Apache-2.0
// A fresh PostgreSQL database per test, in the throwaway cluster that tests/support/pg-cluster
// runs.
#pragma once

#include <libpq-fe.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>

namespace labwatch::testing {

// The role that pg-cluster's initdb creates (trust authentication over the cluster's socket).
inline constexpr std::string_view kPgTestUser = "labwatch_test";
// CTest sets it (to the state file of the `pg` fixture) for the tests that require the cluster.
inline constexpr const char* kPgStateVariable = "LABWATCH_TEST_PG_STATE";

struct PgConnectionCloser {
  void operator()(PGconn* connection) const noexcept { PQfinish(connection); }
};
struct PgResultClearer {
  void operator()(PGresult* result) const noexcept { PQclear(result); }
};
using PgConnection = std::unique_ptr<PGconn, PgConnectionCloser>;
using PgResult = std::unique_ptr<PGresult, PgResultClearer>;

// libpq's message without its trailing newline, for an exception's text.
inline std::string pg_message(const char* message) {
  std::string text = message == nullptr ? "" : message;
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) {
    text.pop_back();
  }
  return text;
}

// The libpq URI of database `dbname` in the cluster whose socket lies in `cluster_dir`; the same
// form as `pg-cluster uri`. The directory is mktemp's /tmp/labwatch-pg-XXXXXX: nothing to escape.
inline std::string pg_cluster_uri(const std::string& cluster_dir, std::string_view dbname) {
  return "postgresql:///" + std::string(dbname) + "?host=" + cluster_dir +
         "&user=" + std::string(kPgTestUser);
}

// Connects to `uri`; throws std::runtime_error with libpq's message when it cannot.
inline PgConnection pg_connect(const std::string& uri) {
  PgConnection connection(PQconnectdb(uri.c_str()));
  if (connection == nullptr) {
    throw std::runtime_error("PQconnectdb " + uri + ": out of memory");
  }
  if (PQstatus(connection.get()) != CONNECTION_OK) {
    throw std::runtime_error("PQconnectdb " + uri + ": " +
                             pg_message(PQerrorMessage(connection.get())));
  }
  return connection;
}

// Runs one SQL statement without parameters and returns its result; throws std::runtime_error
// with the statement and libpq's message when it fails.
inline PgResult pg_exec(PGconn* connection, const std::string& sql) {
  PgResult result(PQexec(connection, sql.c_str()));
  const ExecStatusType status = PQresultStatus(result.get());  // PGRES_FATAL_ERROR for nullptr
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    throw std::runtime_error(sql + ": " + pg_message(PQerrorMessage(connection)));
  }
  return result;
}

// Runs a query that yields one row of one column and returns that value as text ("" for NULL).
inline std::string pg_value(PGconn* connection, const std::string& sql) {
  const PgResult result = pg_exec(connection, sql);
  if (PQntuples(result.get()) != 1 || PQnfields(result.get()) != 1) {
    throw std::runtime_error(sql + ": expected one value, got " +
                             std::to_string(PQntuples(result.get())) + " rows of " +
                             std::to_string(PQnfields(result.get())) + " columns");
  }
  return PQgetvalue(result.get(), 0, 0);
}

// An empty database of its own for one test: created in the constructor, dropped in the
// destructor. Tests that share the cluster never see each other's tables, and a test that fails
// leaves nothing behind but its database until the cluster is thrown away.
class PgDatabase {
 public:
  // Whether the cluster is there: LABWATCH_TEST_PG_STATE is set and names an existing file.
  // Tests return early with a WARN when it is not (a build without LABWATCH_POSTGRES_TESTS).
  static bool available() {
    const std::string path = state_file_from_environment();
    std::error_code error;
    return !path.empty() && std::filesystem::is_regular_file(path, error);
  }

  // Creates the database in the cluster named by LABWATCH_TEST_PG_STATE. Throws
  // std::runtime_error when the variable or its file is missing, or with libpq's message.
  PgDatabase() : PgDatabase(state_file_from_environment()) {}

  // The same in the cluster whose state file (written by `pg-cluster start`) is `state_file`.
  explicit PgDatabase(const std::filesystem::path& state_file)
      : cluster_dir_(read_cluster_dir(state_file)), name_(unique_name()) {
    const PgConnection admin = pg_connect(pg_cluster_uri(cluster_dir_, "postgres"));
    pg_exec(admin.get(), "CREATE DATABASE " + name_);
    uri_ = pg_cluster_uri(cluster_dir_, name_);
  }

  // FORCE ends connections a test left open (PostgreSQL 13+); a failure only leaves a database in
  // a cluster that is thrown away anyway, so it is ignored.
  ~PgDatabase() {
    try {
      const PgConnection admin = pg_connect(pg_cluster_uri(cluster_dir_, "postgres"));
      pg_exec(admin.get(), "DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
    } catch (...) {  // NOLINT(bugprone-empty-catch): see above
    }
  }

  PgDatabase(const PgDatabase&) = delete;
  PgDatabase& operator=(const PgDatabase&) = delete;
  PgDatabase(PgDatabase&&) = delete;
  PgDatabase& operator=(PgDatabase&&) = delete;

  // The libpq URI of this database: postgresql:///NAME?host=DIR&user=labwatch_test.
  const std::string& uri() const noexcept { return uri_; }
  // The database's name, labwatch_t_<pid>_<counter>_<random>.
  const std::string& name() const noexcept { return name_; }
  // The libpq URI of another database of the same cluster (e.g. "postgres", to look around).
  std::string cluster_uri(std::string_view dbname) const {
    return pg_cluster_uri(cluster_dir_, dbname);
  }

 private:
  static std::string state_file_from_environment() {
    // NOLINTNEXTLINE(concurrency-mt-unsafe): read on the test's thread, nobody sets it meanwhile
    const char* value = std::getenv(kPgStateVariable);
    return value == nullptr ? std::string() : std::string(value);
  }

  static std::string read_cluster_dir(const std::filesystem::path& state_file) {
    if (state_file.empty()) {
      throw std::runtime_error(std::string(kPgStateVariable) +
                               " is not set (CTest sets it for tests with FIXTURES_REQUIRED pg)");
    }
    std::ifstream in(state_file);
    std::string dir;
    if (!in || !std::getline(in, dir) || dir.empty()) {
      throw std::runtime_error("cannot read the cluster directory from " + state_file.string() +
                               " (written by tests/support/pg-cluster start)");
    }
    return dir;
  }

  // Unique among parallel test processes (pid), among the databases of one process (counter),
  // and against a database left by an earlier process of the same pid (random). Lower case
  // letters, digits and underscores only, so the name needs no quoting in SQL.
  static std::string unique_name() {
    static std::atomic<unsigned> counter{0};
    std::random_device device;
    const unsigned random = std::uniform_int_distribution<unsigned>(0, 0xffffff)(device);
    return "labwatch_t_" + std::to_string(::getpid()) + "_" + std::to_string(++counter) + "_" +
           std::to_string(random);
  }

  std::string cluster_dir_;
  std::string name_;
  std::string uri_;
};

}  // namespace labwatch::testing
