// SPDX-License-Identifier: Apache-2.0
// SqliteDatabase: storage/sql.hpp over SQLiteCpp.
#include "storage/sql_sqlite.hpp"

#include <SQLiteCpp/Exception.h>
#include <SQLiteCpp/Statement.h>
#include <sqlite3.h>

#include <cstdint>
#include <string>

namespace labwatch::storage::sql {

namespace {

class SqliteStatement final : public StatementBackend {
 public:
  SqliteStatement(SQLite::Database& db, std::string_view sql) : statement_(db, std::string(sql)) {}

  void bind_int64(int index, std::int64_t value) override { statement_.bind(index, value); }
  void bind_double(int index, double value) override { statement_.bind(index, value); }
  void bind_text(int index, std::string_view value) override {
    statement_.bind(index, std::string(value));
  }
  void bind_static_text(int index, const char* value) override {
    statement_.bindNoCopy(index, value);
  }
  void bind_null(int index) override { statement_.bind(index); }
  bool step() override { return statement_.executeStep(); }
  int exec() override { return statement_.exec(); }
  [[nodiscard]] bool is_null(int column) const override { return statement_.isColumnNull(column); }
  [[nodiscard]] std::int64_t int64(int column) const override {
    return statement_.getColumn(column).getInt64();
  }
  [[nodiscard]] double real(int column) const override {
    return statement_.getColumn(column).getDouble();
  }
  [[nodiscard]] std::string_view text(int column) const override {
    const SQLite::Column value = statement_.getColumn(column);
    const char* text = value.getText();  // "" for NULL
    return {text, static_cast<std::size_t>(value.getBytes())};
  }
  void reset() override { statement_.reset(); }
  void try_reset() noexcept override { statement_.tryReset(); }

 private:
  SQLite::Statement statement_;
};

}  // namespace

std::unique_ptr<StatementBackend> SqliteDatabase::prepare(std::string_view sql) {
  return std::make_unique<SqliteStatement>(db_, sql);
}

void SqliteDatabase::exec(std::string_view sql) { db_.exec(std::string(sql)); }

void SqliteDatabase::begin(Lock /*lock*/) { db_.exec("BEGIN IMMEDIATE"); }

void SqliteDatabase::commit() { db_.exec("COMMIT"); }

void SqliteDatabase::rollback() noexcept {
  // After a failed statement SQLite may already have rolled back; a ROLLBACK then fails, and the
  // transaction is over either way.
  try {
    db_.exec("ROLLBACK");
  } catch (const SQLite::Exception&) {
  }
}

}  // namespace labwatch::storage::sql
