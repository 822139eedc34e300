// SPDX-License-Identifier: Apache-2.0
// connect: one database connection by its name in the config or on the command line: a
// "postgresql://" URL opens PostgreSQL, anything else is the path of a SQLite file.
#pragma once

#include <memory>
#include <span>
#include <string>

#include "storage/database.hpp"
#include "storage/sql.hpp"
#include "storage/store.hpp"

namespace labwatch::storage {

// Opens `database` and brings its schema to this release's version (SQLite: open_database;
// PostgreSQL: migrate_postgresql). Throws what they throw.
std::unique_ptr<sql::Database> connect(const std::string& database, const StoreOptions& options);

// Opens an existing `database` as it is, migrating nothing and creating nothing (for status
// queries, which must not wait for a migration or write a file): read-only or read-write, with a
// busy timeout of 5 s on SQLite.
enum class Access { read_only, read_write };
std::unique_ptr<sql::Database> open_existing(const std::string& database, Access access);

// The schema version `db` is at (SQLite: user_version; PostgreSQL: table labwatch_schema, 0 when
// it has none), and the version this release migrates to.
int stored_schema_version(sql::Database& db);
int release_schema_version() noexcept;

// The PostgreSQL schema of this release, oldest step first; its versions are those of the SQLite
// schema (storage/database.hpp), so both backends of one release have the same tables. Its first
// step is the SQLite schema of version 12, whole.
std::span<const Migration> postgresql_migrations() noexcept;

// Applies the steps above the database's version (table labwatch_schema), each in a transaction
// that holds labwatch's advisory lock, so that daemons of several sites starting together apply
// each step once. Throws std::runtime_error for a newer schema, sql::Error when a step fails.
void migrate_postgresql(sql::Database& db, std::span<const Migration> steps);

}  // namespace labwatch::storage
