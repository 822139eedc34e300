// SPDX-License-Identifier: Apache-2.0
// The database the commands name: a SQLite file or a postgresql:// URL, as messages show it.
#pragma once

#include <exception>
#include <string>

namespace labwatch::daemon {

// True when `database` is a PostgreSQL URL rather than the path of a SQLite file.
bool is_database_url(const std::string& database);

// `database` as a message names it: a URL with any password replaced by "***", a path as it is.
std::string shown_database(const std::string& database);

// Why `e` failed to open or use `database`, in one line: libpq's reason may span lines (one per
// address tried, a hint); they are joined with "; ". The URL the backend repeats is left out.
std::string database_reason(const std::string& database, const std::exception& e);

// One line for a failure `e` to open or use `database`: the database (shown_database) and the
// reason (database_reason).
std::string database_failure(const std::string& database, const std::exception& e);

// Throws std::runtime_error (database_failure) unless the PostgreSQL database at `url` answers and
// holds labwatch's schema: the PostgreSQL counterpart of a SQLite file that must exist. Reads
// only; migrates nothing.
void require_postgresql_schema(const std::string& url);

}  // namespace labwatch::daemon
