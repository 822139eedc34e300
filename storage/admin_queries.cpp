// SPDX-License-Identifier: Apache-2.0
// Read-only queries for `labwatch status` and `labwatch unmapped`.
#include "storage/admin_queries.hpp"

#include <SQLiteCpp/SQLiteCpp.h>

#include "storage/database.hpp"
#include "storage/sql_values.hpp"

namespace labwatch::storage {
namespace {

SQLite::Database open_read_only(const std::string& path) {
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  db.setBusyTimeout(5000);
  return db;
}

}  // namespace

IntakeStatus read_intake_status(const std::string& path, clinical::UnixSeconds since) {
  SQLite::Database db = open_read_only(path);
  IntakeStatus status;
  SQLite::Statement last(db,
                         "SELECT name, outcome, ingested_at FROM files WHERE outcome <> 'open' "
                         "ORDER BY file_id DESC LIMIT 1");
  if (last.executeStep()) {
    status.last_file = last.getColumn(0).getString();
    status.last_outcome = last.getColumn(1).getString();
    status.last_ingested_at = last.getColumn(2).getInt64();
  }
  SQLite::Statement counts(
      db, "SELECT outcome, count(*) FROM files WHERE ingested_at >= ? GROUP BY outcome");
  counts.bind(1, static_cast<std::int64_t>(since));
  while (counts.executeStep()) {
    const std::string outcome = counts.getColumn(0).getString();
    const int n = counts.getColumn(1).getInt();
    if (outcome == "accepted") {
      status.accepted = n;
    } else if (outcome == "partial") {
      status.partial = n;
    } else if (outcome == "refused") {
      status.refused = n;
    }
  }
  SQLite::Statement outbox(db, "SELECT state, count(*) FROM outbox GROUP BY state");
  while (outbox.executeStep()) {
    const OutboxState state = read_outbox_state(outbox.getColumn(0));
    const int n = outbox.getColumn(1).getInt();
    switch (state) {
      case OutboxState::pending:
      case OutboxState::sending:
        status.outbox_pending += n;
        break;
      case OutboxState::failed:
        status.outbox_failed += n;
        break;
      case OutboxState::sent:
        break;
    }
  }
  return status;
}

SchemaVersions read_schema_versions(const std::string& path) {
  SQLite::Database db = open_read_only(path);
  return {schema_version(db), latest_schema_version()};
}

std::vector<UnmappedCode> read_unmapped_codes(const std::string& path) {
  SQLite::Database db = open_read_only(path);
  SQLite::Statement query(db,
                          "SELECT u.facility, u.code, u.count, u.first_seen, u.last_seen, "
                          "coalesce(f.name, ''), u.name, u.unit FROM unmapped_codes u "
                          "LEFT JOIN files f ON f.file_id = u.last_file_id "
                          "ORDER BY u.count DESC, u.facility, u.code");
  std::vector<UnmappedCode> out;
  while (query.executeStep()) {
    UnmappedCode row;
    row.facility = query.getColumn(0).getString();
    row.code = query.getColumn(1).getString();
    row.count = query.getColumn(2).getInt64();
    row.first_seen = query.getColumn(3).getInt64();
    row.last_seen = query.getColumn(4).getInt64();
    row.last_file = query.getColumn(5).getString();
    row.name = query.getColumn(6).getString();
    row.unit = query.getColumn(7).getString();
    out.push_back(std::move(row));
  }
  return out;
}

}  // namespace labwatch::storage

namespace labwatch::storage {

bool set_aside_file_verdict(const std::string& path, const std::string& sha256) {
  SQLite::Database db(path, SQLite::OPEN_READWRITE);
  db.setBusyTimeout(5000);
  SQLite::Statement update(db,
                           "UPDATE files SET sha256 = sha256 || ':set-aside:' || file_id "
                           "WHERE sha256 = ? AND outcome IN ('refused', 'partial')");
  update.bind(1, sha256);
  return update.exec() == 1;
}

}  // namespace labwatch::storage
