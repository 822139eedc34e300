// SPDX-License-Identifier: Apache-2.0
// sql: the one interface storage writes its statements against, so that the same reconciliation,
// ledger and outbox code runs on SQLite (the embedded default) and on PostgreSQL (several sites on
// one server). A backend runs the statements; what they mean stays in storage, and what to decide
// stays in clinical.
//
// Statements are written once, in the SQL both engines accept: `?` and `?N` placeholders (numbered
// from 1), ON CONFLICT upserts, RETURNING, COALESCE, NULLS FIRST/LAST. The PostgreSQL backend
// rewrites the placeholders to `$N`; nothing else is translated behind the caller's back.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace labwatch::storage::sql {

enum class Dialect { sqlite, postgresql };

// What a write transaction waits for before it begins. SQLite has one writer at a time whatever
// is asked. On PostgreSQL a `writer` transaction takes labwatch's advisory lock first, so that the
// writers of all sites take turns (ingest, identity review, silences); a `rows` transaction takes
// only the row locks its statements take (claiming due mail with FOR UPDATE SKIP LOCKED), so mail
// goes out while another site commits a large file.
enum class Lock { writer, rows };

// Why a statement failed, as far as the caller's next step depends on it.
enum class Failure {
  other,       // a broken statement or database: not retried
  busy,        // another writer held the data past the timeout, or a serialization conflict
  connection,  // the server is unreachable or went away mid-transaction
};

// A failure of the PostgreSQL backend (the SQLite backend throws SQLite::Exception, also a
// std::runtime_error). The message is the server's; labwatch binds values as parameters and never
// prints them, so it holds no patient data.
class Error : public std::runtime_error {
 public:
  Error(const std::string& what, Failure failure, std::string sqlstate = {})
      : std::runtime_error(what), failure_(failure), sqlstate_(std::move(sqlstate)) {}
  [[nodiscard]] Failure failure() const noexcept { return failure_; }
  // The five-character SQLSTATE, or empty when the failure was not the server's answer.
  [[nodiscard]] const std::string& sqlstate() const noexcept { return sqlstate_; }

 private:
  Failure failure_;
  std::string sqlstate_;
};

// How a backend executes one statement. Statement is its only user.
class StatementBackend {
 public:
  virtual ~StatementBackend() = default;
  StatementBackend() = default;
  StatementBackend(const StatementBackend&) = delete;
  StatementBackend& operator=(const StatementBackend&) = delete;
  StatementBackend(StatementBackend&&) = delete;
  StatementBackend& operator=(StatementBackend&&) = delete;

  virtual void bind_int64(int index, std::int64_t value) = 0;
  virtual void bind_double(int index, double value) = 0;
  virtual void bind_text(int index, std::string_view value) = 0;
  // `value` outlives every step of the current binding (a literal, or a string the caller keeps).
  virtual void bind_static_text(int index, const char* value) = 0;
  virtual void bind_null(int index) = 0;
  virtual bool step() = 0;
  virtual int exec() = 0;
  [[nodiscard]] virtual bool is_null(int column) const = 0;
  [[nodiscard]] virtual std::int64_t int64(int column) const = 0;
  [[nodiscard]] virtual double real(int column) const = 0;
  [[nodiscard]] virtual std::string_view text(int column) const = 0;
  virtual void reset() = 0;
  virtual void try_reset() noexcept = 0;
};

class Statement;

// One column of the row a statement stands on; valid until the statement steps or resets.
class Column {
 public:
  Column(const StatementBackend& statement, int index) noexcept
      : statement_(&statement), index_(index) {}

  [[nodiscard]] bool is_null() const { return statement_->is_null(index_); }
  [[nodiscard]] std::int64_t as_int64() const { return statement_->int64(index_); }
  [[nodiscard]] int as_int() const { return static_cast<int>(statement_->int64(index_)); }
  [[nodiscard]] double as_double() const { return statement_->real(index_); }
  // Empty for NULL.
  [[nodiscard]] std::string_view as_text() const { return statement_->text(index_); }
  [[nodiscard]] std::string as_string() const { return std::string(statement_->text(index_)); }
  // The first character of the text, '\0' for an empty text or NULL.
  [[nodiscard]] char as_char() const {
    const std::string_view text = statement_->text(index_);
    return text.empty() ? '\0' : text.front();
  }

 private:
  const StatementBackend* statement_;
  int index_;
};

class Database;

// A statement of `db`, bound by 1-based index, stepped row by row. Bindings stay across reset(),
// as in SQLite.
class Statement {
 public:
  Statement(Database& db, std::string_view sql);

  void bind(int index, int value) { backend_->bind_int64(index, value); }
  void bind(int index, long value) { backend_->bind_int64(index, value); }
  void bind(int index, long long value) { backend_->bind_int64(index, value); }
  void bind(int index, unsigned value) { backend_->bind_int64(index, value); }
  void bind(int index, unsigned long value) {
    backend_->bind_int64(index, static_cast<std::int64_t>(value));
  }
  void bind(int index, double value) { backend_->bind_double(index, value); }
  void bind(int index, std::string_view value) { backend_->bind_text(index, value); }
  void bind(int index, const std::string& value) { backend_->bind_text(index, value); }
  void bind(int index, const char* value) { backend_->bind_text(index, value); }
  // `value` is not copied: it must outlive every step of this binding.
  void bind_no_copy(int index, const char* value) { backend_->bind_static_text(index, value); }
  void bind_no_copy(int index, const std::string& value) {
    backend_->bind_static_text(index, value.c_str());
  }
  void bind_null(int index) { backend_->bind_null(index); }

  // Steps to the next row; false when there is none (or the statement writes and is done).
  bool step() { return backend_->step(); }
  // Runs a statement that returns no rows to its end; returns the rows it changed.
  int exec() { return backend_->exec(); }
  [[nodiscard]] Column column(int index) const { return Column(*backend_, index); }
  // Makes the statement ready to run again with its bindings. reset() throws the error of a failed
  // step; try_reset() does not.
  void reset() { backend_->reset(); }
  void try_reset() noexcept { backend_->try_reset(); }

 private:
  std::unique_ptr<StatementBackend> backend_;
};

// One connection to a database. Used by one thread at a time.
class Database {
 public:
  virtual ~Database() = default;
  Database() = default;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  Database(Database&&) = delete;
  Database& operator=(Database&&) = delete;

  [[nodiscard]] virtual Dialect dialect() const noexcept = 0;
  virtual std::unique_ptr<StatementBackend> prepare(std::string_view sql) = 0;
  // Runs one or more statements without parameters.
  virtual void exec(std::string_view sql) = 0;
  // Begins a write transaction: SQLite takes the write lock at once (BEGIN IMMEDIATE), so that two
  // writers queue instead of failing half-way; PostgreSQL begins READ COMMITTED.
  virtual void begin(Lock lock) = 0;
  virtual void commit() = 0;
  virtual void rollback() noexcept = 0;
  // The first column of the first row of `sql` (no parameters); 0 when it returns no row.
  std::int64_t query_int64(std::string_view sql);
  // How an INSERT gives back the id it made: PostgreSQL appends " RETURNING <id_column>" and
  // steps; SQLite appends nothing and asks the connection (a RETURNING clause makes SQLite write a
  // statement journal for every row: 80 writes per message of a batch file). See inserted_id.
  [[nodiscard]] virtual std::string returning(std::string_view id_column) const = 0;
  // The rowid of the last INSERT on this connection (SQLite only).
  virtual std::int64_t last_insert_id() = 0;
};

// A write transaction: begun at construction, rolled back at destruction unless committed.
class Transaction {
 public:
  explicit Transaction(Database& db, Lock lock = Lock::writer) : db_(db) { db_.begin(lock); }
  ~Transaction() {
    if (!done_) {
      db_.rollback();
    }
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  Transaction(Transaction&&) = delete;
  Transaction& operator=(Transaction&&) = delete;

  void commit() {
    db_.commit();
    done_ = true;
  }

 private:
  Database& db_;
  bool done_ = false;
};

inline Statement::Statement(Database& db, std::string_view sql) : backend_(db.prepare(sql)) {}

inline std::int64_t Database::query_int64(std::string_view sql) {
  Statement query(*this, sql);
  return query.step() ? query.column(0).as_int64() : 0;
}

// True when `url` names a PostgreSQL database ("postgresql://..." or "postgres://...").
bool is_postgresql_url(std::string_view url) noexcept;

// Rewrites `?` and `?N` placeholders to PostgreSQL's `$N`, leaving string literals, quoted
// identifiers and comments alone. Sets *parameters to the highest parameter number.
std::string to_postgresql_placeholders(std::string_view sql, int* parameters = nullptr);

}  // namespace labwatch::storage::sql
