// SPDX-License-Identifier: Apache-2.0
// Read-only queries for `labwatch status` and `labwatch unmapped`.
#include "storage/admin_queries.hpp"

#include <memory>

#include "storage/connect.hpp"
#include "storage/sql_values.hpp"

namespace labwatch::storage {

IntakeStatus read_intake_status(const std::string& path, clinical::UnixSeconds since) {
  const std::unique_ptr<sql::Database> owned = open_existing(path, Access::read_only);
  sql::Database& db = *owned;
  IntakeStatus status;
  sql::Statement last(db,
                      "SELECT name, outcome, ingested_at FROM files WHERE outcome <> 'open' "
                      "ORDER BY file_id DESC LIMIT 1");
  if (last.step()) {
    status.last_file = last.column(0).as_string();
    status.last_outcome = last.column(1).as_string();
    status.last_ingested_at = last.column(2).as_int64();
  }
  sql::Statement counts(
      db, "SELECT outcome, count(*) FROM files WHERE ingested_at >= ? GROUP BY outcome");
  counts.bind(1, static_cast<std::int64_t>(since));
  while (counts.step()) {
    const std::string outcome = counts.column(0).as_string();
    const int n = counts.column(1).as_int();
    if (outcome == "accepted") {
      status.accepted = n;
    } else if (outcome == "partial") {
      status.partial = n;
    } else if (outcome == "refused") {
      status.refused = n;
    }
  }
  sql::Statement outbox(db, "SELECT state, count(*) FROM outbox GROUP BY state");
  while (outbox.step()) {
    const OutboxState state = read_outbox_state(outbox.column(0));
    const int n = outbox.column(1).as_int();
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
  const std::unique_ptr<sql::Database> owned = open_existing(path, Access::read_only);
  sql::Database& db = *owned;
  return {stored_schema_version(db), release_schema_version()};
}

std::vector<UnmappedCode> read_unmapped_codes(const std::string& path) {
  const std::unique_ptr<sql::Database> owned = open_existing(path, Access::read_only);
  sql::Database& db = *owned;
  sql::Statement query(db,
                       "SELECT u.facility, u.code, u.count, u.first_seen, u.last_seen, "
                       "coalesce(f.name, ''), u.name, u.unit FROM unmapped_codes u "
                       "LEFT JOIN files f ON f.file_id = u.last_file_id "
                       "ORDER BY u.count DESC, u.facility, u.code");
  std::vector<UnmappedCode> out;
  while (query.step()) {
    UnmappedCode row;
    row.facility = query.column(0).as_string();
    row.code = query.column(1).as_string();
    row.count = query.column(2).as_int64();
    row.first_seen = query.column(3).as_int64();
    row.last_seen = query.column(4).as_int64();
    row.last_file = query.column(5).as_string();
    row.name = query.column(6).as_string();
    row.unit = query.column(7).as_string();
    out.push_back(std::move(row));
  }
  return out;
}

}  // namespace labwatch::storage

namespace labwatch::storage {

bool set_aside_file_verdict(const std::string& path, const std::string& sha256) {
  const std::unique_ptr<sql::Database> owned = open_existing(path, Access::read_write);
  sql::Database& db = *owned;
  sql::Statement update(db,
                        "UPDATE files SET sha256 = sha256 || ':set-aside:' || file_id "
                        "WHERE sha256 = ? AND outcome IN ('refused', 'partial')");
  update.bind(1, sha256);
  return update.exec() == 1;
}

}  // namespace labwatch::storage
