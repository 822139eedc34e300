// SPDX-License-Identifier: Apache-2.0
// The SQLite backend of storage/sql.hpp: statements run through SQLiteCpp on one connection.
#pragma once

#include <SQLiteCpp/Database.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "storage/sql.hpp"

namespace labwatch::storage::sql {

class SqliteDatabase final : public Database {
 public:
  explicit SqliteDatabase(SQLite::Database db) : db_(std::move(db)) {}

  [[nodiscard]] Dialect dialect() const noexcept override { return Dialect::sqlite; }
  std::unique_ptr<StatementBackend> prepare(std::string_view sql) override;
  void exec(std::string_view sql) override;
  void begin(Lock lock) override;
  void commit() override;
  void rollback() noexcept override;
  [[nodiscard]] std::string returning(std::string_view /*id_column*/) const override { return {}; }
  std::int64_t last_insert_id() override { return db_.getLastInsertRowid(); }

  // The connection itself, for what only SQLite has (pragmas, its schema's SQL functions).
  SQLite::Database& native() noexcept { return db_; }

 private:
  SQLite::Database db_;
};

}  // namespace labwatch::storage::sql
