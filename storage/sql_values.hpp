// SPDX-License-Identifier: Apache-2.0
// How model values are written to and read from SQLite columns: enums as text, unknowns as NULL.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "clinical/alert_status.hpp"
#include "clinical/normalized.hpp"
#include "clinical/reconcile.hpp"
#include "parsers/lab_report.hpp"
#include "storage/outbox_state.hpp"
#include "storage/sql.hpp"
#include "storage/store.hpp"

namespace labwatch::storage {

// The stored text of a status / state / file verdict (a NUL-terminated literal, safe for
// bindNoCopy).
const char* sql_text(clinical::ResultStatus status) noexcept;
const char* sql_text(clinical::ResultState state) noexcept;
const char* sql_text(FileVerdict verdict) noexcept;
const char* sql_text(clinical::RangeProblem problem) noexcept;  // clinical::to_key, for binding

// Read back a stored status / state. Throws std::runtime_error on text labwatch never writes
// (a database edited by hand).
clinical::ResultStatus read_status(const sql::Column& column);
clinical::ResultState read_state(const sql::Column& column);
// alerts.state (clinical::to_string of an AlertStatus). Throws std::runtime_error on text labwatch
// never writes (a database edited by hand, or written by a later version).
clinical::AlertStatus read_alert_status(const sql::Column& column);
// outbox.state (to_string of an OutboxState). Throws std::runtime_error on text labwatch never
// writes (a database edited by hand, or written by a later version).
OutboxState read_outbox_state(const sql::Column& column);
// The SQL condition "an alert is active" on the alerts.state column `column` (e.g. "a.state"):
// "(a.state = 'unmailed' OR ... OR a.state = 'failed')", the statuses clinical::is_active holds
// for. ORs, not IN: see the CHECKs of storage/database.cpp.
std::string active_alert_condition(std::string_view column);
// files.outcome of a committed file; throws std::runtime_error on any other text ('open' included:
// no committed file keeps it).
FileVerdict read_verdict(const sql::Column& column);

// NULL for an absent value.
void bind_optional(sql::Statement& statement, int index, const std::optional<double>& value);
// NULL for an unknown (negative) position.
void bind_position(sql::Statement& statement, int index, int position);
// NULL for an unknown offset (SIZE_MAX).
void bind_offset(sql::Statement& statement, int index, std::size_t offset);
// nullopt for NULL.
std::optional<double> read_optional(const sql::Column& column);
// The inverses of bind_position and bind_offset: NULL reads as unknown (-1, SIZE_MAX).
int read_position(const sql::Column& column);
std::size_t read_offset(const sql::Column& column);

// A sender's time as written, in ISO 8601 to its precision: "2025-03-09", "2025-03-09T13:00",
// "2025-03-09T13:00:05-05:00". Empty when the time is empty.
std::string format_datetime(const parsers::DateTime& time);
// Reads format_datetime's text back, to the precision it kept (an hour reads back as a minute, a
// fraction as a second). Empty for empty text or any text it never writes.
parsers::DateTime parse_datetime(std::string_view text) noexcept;

// 'F' or 'M', anything else 'U'.
char known_sex(char sex) noexcept;

// Now, in Unix seconds.
std::int64_t unix_now() noexcept;

// Runs an INSERT prepared with db.returning(<id column>) at its end, and returns the id it made.
std::int64_t inserted_id(sql::Database& db, sql::Statement& insert);

// A prepared statement made ready to be bound anew. sqlite3_reset reports the error of a failed
// previous step again; after a failed file the next one must start clean, so the reset is not
// checked.
inline sql::Statement& fresh(sql::Statement& statement) noexcept {
  statement.try_reset();
  return statement;
}

// Resets a statement when the scope ends, so that no read cursor (and no WAL snapshot) stays open
// after an early return or an exception.
class ResetOnExit {
 public:
  explicit ResetOnExit(sql::Statement& statement) noexcept : statement_(statement) {}
  ~ResetOnExit() { statement_.try_reset(); }
  ResetOnExit(const ResetOnExit&) = delete;
  ResetOnExit& operator=(const ResetOnExit&) = delete;
  ResetOnExit(ResetOnExit&&) = delete;
  ResetOnExit& operator=(ResetOnExit&&) = delete;

 private:
  sql::Statement& statement_;
};

}  // namespace labwatch::storage
