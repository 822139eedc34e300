// SPDX-License-Identifier: Apache-2.0
// Read-only figures for the admin's commands (`status`, `unmapped`): read from a database file
// that is never created, migrated or written.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "clinical/normalized.hpp"

namespace labwatch::storage {

struct IntakeStatus {
  std::optional<std::string> last_file;  // name of the file committed last; none before the first
  std::string last_outcome;              // accepted, partial or refused
  clinical::UnixSeconds last_ingested_at = 0;
  int accepted = 0;  // files committed at or after `since`, by outcome
  int partial = 0;
  int refused = 0;
  int outbox_pending = 0;  // mail waiting to be sent (pending, or being sent)
  int outbox_failed = 0;   // mail given up on (a permanent failure)
};

// The intake and outbox figures of the database at `path`, with file counts since `since`.
// Throws SQLite::Exception (a std::runtime_error) when it cannot be opened or read.
IntakeStatus read_intake_status(const std::string& path, clinical::UnixSeconds since);

// A code seen in results that maps to no analyte, per facility.
struct UnmappedCode {
  std::string facility;
  std::string code;
  std::string name;  // the test name the lab sent with it last ('' when none, or before version 9)
  std::string unit;  // the unit it came with last, as sent
  std::int64_t count = 0;
  clinical::UnixSeconds first_seen = 0;
  clinical::UnixSeconds last_seen = 0;
  std::string last_file;  // name of the file it was last seen in
};

// Every unmapped code of the database at `path`, most results first. Throws SQLite::Exception.
std::vector<UnmappedCode> read_unmapped_codes(const std::string& path);

// The schema version of the database at `path` and the one this labwatch writes, read without
// migrating anything. Throws SQLite::Exception.
struct SchemaVersions {
  int database = 0;
  int latest = 0;
};
SchemaVersions read_schema_versions(const std::string& path);

}  // namespace labwatch::storage

namespace labwatch::storage {

// Sets aside the verdict of the refused or partly refused file committed with these bytes (hex
// SHA-256), so that `labwatch reprocess` can ingest them again under the current config: its row
// and refusals stay, as history, under the key "SHA256:set-aside:FILE_ID". Returns false, changing
// nothing, when no such file was committed or it was accepted. Throws SQLite::Exception.
bool set_aside_file_verdict(const std::string& path, const std::string& sha256);

}  // namespace labwatch::storage
