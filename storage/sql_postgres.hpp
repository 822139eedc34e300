// SPDX-License-Identifier: Apache-2.0
// The PostgreSQL backend of storage/sql.hpp: one libpq connection.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "storage/sql.hpp"

struct pg_conn;

namespace labwatch::storage::sql {

// The key of the advisory lock each write transaction takes first (pg_advisory_xact_lock).
inline constexpr long long kWriterLockKey = 0x6C61627761746368;  // "labwatch"

class PostgresDatabase final : public Database {
 public:
  // Connects to `url` (a libpq URI or key=value string). Throws Error, with Failure::connection
  // when the server cannot be reached; the message names no password (libpq reads one from the
  // passfile, never from the URL: see check_postgresql_url).
  explicit PostgresDatabase(const std::string& url);
  ~PostgresDatabase() override;

  [[nodiscard]] Dialect dialect() const noexcept override { return Dialect::postgresql; }
  std::unique_ptr<StatementBackend> prepare(std::string_view sql) override;
  void exec(std::string_view sql) override;
  void begin(Lock lock) override;
  void commit() override;
  void rollback() noexcept override;
  [[nodiscard]] std::string returning(std::string_view id_column) const override {
    return " RETURNING " + std::string(id_column);
  }
  std::int64_t last_insert_id() override;

  pg_conn* native() noexcept { return conn_; }

  // Before a statement runs: a connection lost outside a transaction (the server restarted, the
  // network dropped) is opened again, so the daemon goes on once the server is back. One lost
  // inside a transaction is not: that transaction's work is gone, and the caller, told by an
  // Error of Failure::connection, does it again from its start (the file stays in the inbox).
  void ensure_connected();

 private:
  void set_up_session();

  pg_conn* conn_ = nullptr;
  bool in_transaction_ = false;
};

// Refuses a PostgreSQL URL that carries a password (in its user part or as password=): the
// password belongs in a passfile (the libpq `passfile` parameter, or ~/.pgpass), never in a config
// file or a command line that logs and `ps` show. Returns an error text, empty when the URL is
// fine.
std::string check_postgresql_url(std::string_view url);

// The value of the query parameter `name` of a URL, or "" when it has none.
std::string url_parameter(std::string_view url, std::string_view name);

// The host a PostgreSQL URL names (its authority's, else its host= parameter), "" for libpq's
// default: the local socket.
std::string postgresql_host(std::string_view url);

// Whether `host` is this machine: a socket directory (a path, or one percent-encoded) or loopback.
bool is_local_host(std::string_view host);

// The URL labwatch connects with: a server on another host gets sslmode=verify-full unless the
// URL names a mode itself. libpq's own default (prefer) falls back to a plain connection when the
// server offers no TLS and checks no certificate; patient data must not cross a network that way.
std::string with_default_tls(std::string_view url);

// The URL with any password replaced by "***", fit for a log line.
std::string redact_postgresql_url(std::string_view url);

}  // namespace labwatch::storage::sql
