// SPDX-License-Identifier: Apache-2.0
// PostgresDatabase: storage/sql.hpp over libpq. Values travel as text parameters of
// PQexecParams, typed by the server from the statement: no value is ever spliced into SQL.
#include "storage/sql_postgres.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace labwatch::storage::sql {

namespace {

// What a failed result means for the caller: SQLSTATE class 08 and the shutdown states are the
// server going away; serialization failures, deadlocks and lock timeouts are busy.
Failure classify(const PGconn* conn, std::string_view sqlstate) {
  if (PQstatus(conn) == CONNECTION_BAD || sqlstate.starts_with("08") || sqlstate == "57P01" ||
      sqlstate == "57P02" || sqlstate == "57P03") {
    return Failure::connection;
  }
  if (sqlstate == "40001" || sqlstate == "40P01" || sqlstate == "55P03") {
    return Failure::busy;
  }
  return Failure::other;
}

std::string trimmed(const char* text) {
  std::string out = text != nullptr ? text : "";
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) {
    out.pop_back();
  }
  return out;
}

// Owns one PGresult.
struct ResultDeleter {
  void operator()(PGresult* result) const noexcept { PQclear(result); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

// Throws Error unless `result` is a success.
void check(PGconn* conn, const Result& result) {
  const ExecStatusType status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_EMPTY_QUERY) {
    return;
  }
  const char* state = result ? PQresultErrorField(result.get(), PG_DIAG_SQLSTATE) : nullptr;
  const std::string sqlstate = state != nullptr ? state : "";
  std::string message = result ? trimmed(PQresultErrorMessage(result.get())) : "";
  if (message.empty()) {
    message = trimmed(PQerrorMessage(conn));
  }
  throw Error("PostgreSQL: " + message, classify(conn, sqlstate), sqlstate);
}

void quiet_notices(void* /*arg*/, const char* /*message*/) {}

class PostgresStatement final : public StatementBackend {
 public:
  PostgresStatement(PostgresDatabase& db, std::string_view sql) : db_(db), conn_(db.native()) {
    int parameters = 0;
    sql_ = to_postgresql_placeholders(sql, &parameters);
    values_.resize(static_cast<std::size_t>(parameters));
    pointers_.resize(static_cast<std::size_t>(parameters), nullptr);
  }

  void bind_int64(int index, std::int64_t value) override {
    char buffer[24];
    const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
    set(index, std::string(buffer, end));
  }
  void bind_double(int index, double value) override {
    if (std::isnan(value)) {
      set(index, "NaN");
      return;
    }
    if (std::isinf(value)) {
      set(index, value > 0 ? "Infinity" : "-Infinity");
      return;
    }
    char buffer[32];
    const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);  // round-trips
    set(index, std::string(buffer, end));
  }
  void bind_text(int index, std::string_view value) override { set(index, std::string(value)); }
  void bind_static_text(int index, const char* value) override { set(index, std::string(value)); }
  void bind_null(int index) override { slot(index) = std::nullopt; }

  bool step() override {
    if (!result_) {
      run();
      row_ = 0;
    } else {
      ++row_;
    }
    return row_ < PQntuples(result_.get());
  }

  int exec() override {
    run();
    row_ = PQntuples(result_.get());
    const char* changed = PQcmdTuples(result_.get());
    return changed != nullptr && *changed != '\0' ? std::atoi(changed) : 0;
  }

  [[nodiscard]] bool is_null(int column) const override {
    check_column(column);
    return PQgetisnull(result_.get(), row_, column) != 0;
  }

  [[nodiscard]] std::int64_t int64(int column) const override {
    const std::string_view value = text(column);
    if (value == "t") {
      return 1;  // a boolean
    }
    std::int64_t out = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), out);
    if (ec == std::errc() && end == value.data() + value.size()) {
      return out;
    }
    if (value.empty() || value == "f") {
      return 0;
    }
    return static_cast<std::int64_t>(real(column));  // a numeric or float read as an integer
  }

  [[nodiscard]] double real(int column) const override {
    const std::string_view value = text(column);
    if (value.empty()) {
      return 0.0;
    }
    const std::string copy(value);  // NUL-terminated for strtod, which reads NaN and Infinity
    return std::strtod(copy.c_str(), nullptr);
  }

  [[nodiscard]] std::string_view text(int column) const override {
    check_column(column);
    const char* value = PQgetvalue(result_.get(), row_, column);
    return {value, static_cast<std::size_t>(PQgetlength(result_.get(), row_, column))};
  }

  void reset() override {
    result_.reset();
    row_ = -1;
  }
  void try_reset() noexcept override {
    result_.reset();
    row_ = -1;
  }

 private:
  std::optional<std::string>& slot(int index) {
    if (index < 1 || static_cast<std::size_t>(index) > values_.size()) {
      throw Error("bind index " + std::to_string(index) + " is out of range (the statement has " +
                      std::to_string(values_.size()) + " parameters)",
                  Failure::other);
    }
    return values_[static_cast<std::size_t>(index - 1)];
  }
  void set(int index, std::string value) { slot(index) = std::move(value); }

  void run() {
    db_.ensure_connected();
    for (std::size_t i = 0; i < values_.size(); ++i) {
      pointers_[i] = values_[i] ? values_[i]->c_str() : nullptr;
    }
    result_.reset(PQexecParams(conn_, sql_.c_str(), static_cast<int>(values_.size()), nullptr,
                               pointers_.data(), nullptr, nullptr, 0));
    check(conn_, result_);
  }

  void check_column(int column) const {
    if (!result_ || row_ < 0 || row_ >= PQntuples(result_.get()) || column < 0 ||
        column >= PQnfields(result_.get())) {
      throw Error("no such column " + std::to_string(column) + " on the current row",
                  Failure::other);
    }
  }

  PostgresDatabase& db_;
  PGconn* conn_;  // the same object across a reconnection (PQreset)
  std::string sql_;
  std::vector<std::optional<std::string>> values_;
  std::vector<const char*> pointers_;
  Result result_;
  int row_ = -1;
};

}  // namespace

PostgresDatabase::PostgresDatabase(const std::string& url) {
  if (const std::string problem = check_postgresql_url(url); !problem.empty()) {
    throw Error(problem, Failure::other);
  }
  conn_ = PQconnectdb(with_default_tls(url).c_str());
  if (conn_ == nullptr) {
    throw Error("PostgreSQL: out of memory while connecting", Failure::connection);
  }
  if (PQstatus(conn_) != CONNECTION_OK) {
    const std::string message = trimmed(PQerrorMessage(conn_));
    PQfinish(conn_);
    conn_ = nullptr;
    throw Error("PostgreSQL: cannot connect to " + redact_postgresql_url(url) + ": " + message,
                Failure::connection);
  }
  PQsetNoticeProcessor(conn_, quiet_notices, nullptr);
  set_up_session();
}

void PostgresDatabase::set_up_session() {
  // Text the labs send is stored byte for byte as UTF-8, times as Unix seconds: nothing depends
  // on the server's zone or locale.
  const Result result(PQexec(conn_, "SET client_encoding = 'UTF8'; SET TIME ZONE 'UTC'"));
  check(conn_, result);
}

void PostgresDatabase::ensure_connected() {
  if (PQstatus(conn_) == CONNECTION_OK) {
    return;
  }
  if (in_transaction_) {
    throw Error("PostgreSQL: the connection was lost during a transaction", Failure::connection);
  }
  PQreset(conn_);
  if (PQstatus(conn_) != CONNECTION_OK) {
    throw Error("PostgreSQL: cannot reconnect: " + trimmed(PQerrorMessage(conn_)),
                Failure::connection);
  }
  set_up_session();
}

PostgresDatabase::~PostgresDatabase() {
  if (conn_ != nullptr) {
    PQfinish(conn_);
  }
}

std::unique_ptr<StatementBackend> PostgresDatabase::prepare(std::string_view sql) {
  return std::make_unique<PostgresStatement>(*this, sql);
}

void PostgresDatabase::exec(std::string_view sql) {
  ensure_connected();
  const Result result(PQexec(conn_, std::string(sql).c_str()));
  check(conn_, result);
}

void PostgresDatabase::begin(Lock lock) {
  ensure_connected();
  // Every write transaction of labwatch but a mail claim takes the same advisory lock first, so
  // the writers of all sites take turns as SQLite's do: matching a patient, placing a version and
  // judging a trend each see every site's committed work, and no two sites create one patient
  // twice. The lock ends with the transaction (a killed daemon's with its connection).
  const std::string sql = lock == Lock::rows ? std::string("BEGIN")
                                             : "BEGIN; SELECT pg_advisory_xact_lock(" +
                                                   std::to_string(kWriterLockKey) + ")";
  try {
    exec(sql);
  } catch (...) {
    rollback();  // a BEGIN whose lock failed leaves no transaction open behind it
    throw;
  }
  in_transaction_ = true;
}

void PostgresDatabase::commit() {
  // Whatever COMMIT answers, the transaction is over; a connection lost during it leaves unknown
  // whether it was committed: the caller does the work again, and a file's digest makes a second
  // commit of it report already_known instead of storing it twice.
  in_transaction_ = false;
  const Result result(PQexec(conn_, "COMMIT"));
  check(conn_, result);
  // COMMIT of a transaction a failed statement aborted answers ROLLBACK, not an error.
  if (std::strcmp(PQcmdStatus(result.get()), "ROLLBACK") == 0) {
    throw Error("PostgreSQL: the transaction was rolled back (a statement in it failed)",
                Failure::other);
  }
}

void PostgresDatabase::rollback() noexcept {
  in_transaction_ = false;
  if (PQtransactionStatus(conn_) != PQTRANS_IDLE) {
    PQclear(PQexec(conn_, "ROLLBACK"));
  }
}

std::int64_t PostgresDatabase::last_insert_id() {
  throw std::logic_error("PostgreSQL gives an inserted id through RETURNING (see inserted_id)");
}

// The value of the query parameter `name` of a URL, or "" when it has none.
std::string url_parameter(std::string_view url, std::string_view name) {
  const std::size_t query = url.find('?');
  if (query == std::string_view::npos) {
    return {};
  }
  std::size_t at = query + 1;
  while (at < url.size()) {
    const std::size_t end = std::min(url.find('&', at), url.size());
    const std::string_view pair = url.substr(at, end - at);
    if (pair.size() > name.size() && pair.starts_with(name) && pair[name.size()] == '=') {
      return std::string(pair.substr(name.size() + 1));
    }
    at = end + 1;
  }
  return {};
}

// The host a PostgreSQL URL names (its authority's, else its host= parameter), "" for libpq's
// default: the local socket.
std::string postgresql_host(std::string_view url) {
  const std::size_t start = url.find("://") + 3;
  std::string_view authority = url.substr(start, url.find_first_of("/?", start) - start);
  if (const std::size_t at = authority.rfind('@'); at != std::string_view::npos) {
    authority.remove_prefix(at + 1);
  }
  if (authority.starts_with('[')) {  // [::1]:5432: the address keeps its colons
    authority = authority.substr(0, authority.find(']') + 1);
  } else {
    authority = authority.substr(0, authority.find(':'));
  }
  return authority.empty() ? url_parameter(url, "host") : std::string(authority);
}

// Whether `host` is this machine: a socket directory (a path, or one percent-encoded) or loopback.
bool is_local_host(std::string_view host) {
  return host.empty() || host.starts_with('/') || host.starts_with("%2F") ||
         host.starts_with("%2f") || host == "localhost" || host == "127.0.0.1" || host == "::1" ||
         host.starts_with("[::1]");
}

std::string with_default_tls(std::string_view url) {
  std::string out(url);
  if (is_local_host(postgresql_host(url)) || !url_parameter(url, "sslmode").empty()) {
    return out;
  }
  out += url.find('?') == std::string_view::npos ? '?' : '&';
  out += "sslmode=verify-full";
  return out;
}

bool is_postgresql_url(std::string_view url) noexcept {
  return url.starts_with("postgresql://") || url.starts_with("postgres://");
}

std::string to_postgresql_placeholders(std::string_view sql, int* parameters) {
  std::string out;
  out.reserve(sql.size() + 16);
  int next = 0;
  int highest = 0;
  std::size_t i = 0;
  while (i < sql.size()) {
    const char c = sql[i];
    if (c == '\'' || c == '"') {  // a literal or a quoted identifier, doubled quotes included
      const std::size_t end = sql.find(c, i + 1);
      const std::size_t stop = end == std::string_view::npos ? sql.size() : end + 1;
      out.append(sql.substr(i, stop - i));
      i = stop;
    } else if (c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') {
      const std::size_t end = sql.find('\n', i);
      const std::size_t stop = end == std::string_view::npos ? sql.size() : end;
      out.append(sql.substr(i, stop - i));
      i = stop;
    } else if (c == '?') {
      std::size_t j = i + 1;
      int number = 0;
      while (j < sql.size() && sql[j] >= '0' && sql[j] <= '9') {
        number = number * 10 + (sql[j] - '0');
        ++j;
      }
      if (j == i + 1) {
        number = ++next;
      } else {
        next = number;  // SQLite: a bare ? after ?N is N+1
      }
      highest = std::max(highest, number);
      out += '$';
      out += std::to_string(number);
      i = j;
    } else {
      out += c;
      ++i;
    }
  }
  if (parameters != nullptr) {
    *parameters = highest;
  }
  return out;
}

namespace {

// The span of the password in a URI's user part (between the ':' after the user and the '@'),
// or npos.
std::pair<std::size_t, std::size_t> uri_password(std::string_view url) {
  const std::size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) {
    return {std::string_view::npos, 0};
  }
  const std::size_t start = scheme + 3;
  const std::size_t slash = url.find_first_of("/?", start);
  const std::string_view authority =
      url.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
  const std::size_t at = authority.rfind('@');
  if (at == std::string_view::npos) {
    return {std::string_view::npos, 0};
  }
  const std::size_t colon = authority.substr(0, at).find(':');
  if (colon == std::string_view::npos) {
    return {std::string_view::npos, 0};
  }
  return {start + colon + 1, at - colon - 1};
}

// The span of the value of a `password=` query parameter, or npos.
std::pair<std::size_t, std::size_t> query_password(std::string_view url) {
  const std::size_t query = url.find('?');
  if (query == std::string_view::npos) {
    return {std::string_view::npos, 0};
  }
  std::size_t at = query + 1;
  while (at < url.size()) {
    const std::size_t end = std::min(url.find('&', at), url.size());
    if (url.substr(at, end - at).starts_with("password=")) {
      return {at + 9, end - at - 9};
    }
    at = end + 1;
  }
  return {std::string_view::npos, 0};
}

}  // namespace

std::string check_postgresql_url(std::string_view url) {
  if (uri_password(url).first != std::string_view::npos ||
      query_password(url).first != std::string_view::npos) {
    return "the PostgreSQL URL carries a password; give it in a passfile instead (the URL's "
           "passfile= parameter, or ~/.pgpass of the service user) so that no config file, "
           "command line or log holds it";
  }
  return {};
}

std::string redact_postgresql_url(std::string_view url) {
  std::string out(url);
  for (auto span : {query_password(out), uri_password(out)}) {
    if (span.first != std::string_view::npos) {
      out.replace(span.first, span.second, "***");
    }
  }
  return out;
}

}  // namespace labwatch::storage::sql
