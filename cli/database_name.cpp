// SPDX-License-Identifier: Apache-2.0
// How the commands name their database, and the one-line failure of a PostgreSQL one.
#include "cli/database_name.hpp"

#include <stdexcept>
#include <string>

#include "storage/admin_queries.hpp"
#include "storage/sql.hpp"
#include "storage/sql_postgres.hpp"

namespace labwatch::daemon {

bool is_database_url(const std::string& database) {
  return storage::sql::is_postgresql_url(database);
}

std::string shown_database(const std::string& database) {
  return storage::sql::redact_postgresql_url(database);
}

std::string database_reason(const std::string& database, const std::exception& e) {
  const std::string shown = shown_database(database);
  std::string reason = e.what();
  if (is_database_url(database)) {
    // The backend names the URL itself ("PostgreSQL: cannot connect to URL: why"): once is enough.
    for (const std::string& prefix :
         {"PostgreSQL: cannot connect to " + shown + ": ", std::string("PostgreSQL: ")}) {
      if (reason.starts_with(prefix)) {
        reason.erase(0, prefix.size());
        break;
      }
    }
  }
  std::string line;
  bool line_start = false;
  for (const char c : reason) {
    if (c == '\n' || c == '\r') {
      line_start = true;
    } else if (line_start && (c == ' ' || c == '\t')) {
      continue;  // libpq indents its hint lines with a tab
    } else {
      line += line_start ? "; " : "";
      line += c;
      line_start = false;
    }
  }
  return line;
}

std::string database_failure(const std::string& database, const std::exception& e) {
  return std::string("cannot open the ") + (is_database_url(database) ? "PostgreSQL " : "") +
         "database " + shown_database(database) + ": " + database_reason(database, e);
}

void require_postgresql_schema(const std::string& url) {
  storage::SchemaVersions versions;
  try {
    versions = storage::read_schema_versions(url);
  } catch (const std::exception& e) {
    throw std::runtime_error(database_failure(url, e));
  }
  if (versions.database == 0) {
    throw std::runtime_error("the PostgreSQL database " + shown_database(url) +
                             " holds no labwatch schema yet (run `labwatch init DIR --db URL` or "
                             "`labwatch ingest --db URL` first)");
  }
}

}  // namespace labwatch::daemon
