// SPDX-License-Identifier: Apache-2.0
// The SQLite database: creating the file 0600, connection pragmas, and the versioned schema.
#pragma once

#include <SQLiteCpp/Database.h>

#include <span>
#include <string>

#include "storage/store.hpp"

namespace labwatch::storage {

// One step of the schema: the SQL that takes `PRAGMA user_version` from `version - 1` to `version`.
struct Migration {
  int version = 0;
  const char* sql = "";  // one or more statements
};

// Installs the SQL functions labwatch's schema and statements use (labwatch_demographic_key) on
// `db`; migrate and open_database do it.
void install_sql_functions(SQLite::Database& db);

// The schema of this release, oldest step first. Steps are only ever appended.
std::span<const Migration> schema_migrations() noexcept;

// The user_version a database has after every step of schema_migrations().
int latest_schema_version() noexcept;

// Reads `PRAGMA user_version`.
int schema_version(SQLite::Database& db);

// Applies the steps of `steps` above the database's user_version, each in its own IMMEDIATE
// transaction that also sets user_version, so a failed step leaves the previous version whole.
// Throws std::runtime_error when the database is newer than the last step (written by a later
// labwatch) or has a negative version, SQLite::Exception when a step fails.
void migrate(SQLite::Database& db, std::span<const Migration> steps);

// Opens `path` read-write and prepares it for labwatch: when it is missing and options.create is
// set, creates the file with mode 0600 first (SQLite gives its -wal and -shm files the same mode);
// then busy_timeout, WAL, synchronous=FULL, foreign keys on, the page cache size, and migrates to
// the latest schema.
// ":memory:" opens an in-memory database (no WAL). Throws std::system_error naming the failed
// call, SQLite::Exception, or std::runtime_error (a newer schema, or no WAL on this file system).
SQLite::Database open_database(const std::string& path, const StoreOptions& options);

}  // namespace labwatch::storage
