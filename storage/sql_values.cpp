// SPDX-License-Identifier: Apache-2.0
// How model values are written to and read from SQLite columns.
#include "storage/sql_values.hpp"

#include <charconv>
#include <chrono>
#include <cstdio>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <system_error>

namespace labwatch::storage {

const char* sql_text(clinical::ResultStatus status) noexcept {
  switch (status) {
    case clinical::ResultStatus::final:
      return "final";
    case clinical::ResultStatus::corrected:
      return "corrected";
    case clinical::ResultStatus::preliminary:
      return "preliminary";
    case clinical::ResultStatus::cancelled:
      return "cancelled";
  }
  return "final";
}

const char* sql_text(clinical::ResultState state) noexcept {
  switch (state) {
    case clinical::ResultState::current:
      return "current";
    case clinical::ResultState::superseded:
      return "superseded";
    case clinical::ResultState::withdrawn:
      return "withdrawn";
    case clinical::ResultState::cancelled:
      return "cancelled";
  }
  return "current";
}

const char* sql_text(clinical::RangeProblem problem) noexcept {
  // The keys are string literals, so the view's data is terminated.
  return clinical::to_key(problem).data();
}

const char* sql_text(FileVerdict verdict) noexcept {
  switch (verdict) {
    case FileVerdict::accepted:
      return "accepted";
    case FileVerdict::partial:
      return "partial";
    case FileVerdict::refused:
      return "refused";
  }
  return "accepted";
}

clinical::ResultStatus read_status(const sql::Column& column) {
  const std::string_view text = column.as_text();
  if (const auto status = clinical::parse_result_status(text)) {
    return *status;
  }
  throw std::runtime_error("results.status holds an unknown value '" + std::string(text) + "'");
}

clinical::ResultState read_state(const sql::Column& column) {
  const std::string_view text = column.as_text();
  if (const auto state = clinical::parse_result_state(text)) {
    return *state;
  }
  throw std::runtime_error("results.state holds an unknown value '" + std::string(text) + "'");
}

clinical::AlertStatus read_alert_status(const sql::Column& column) {
  const std::string_view text = column.as_text();
  if (const auto status = clinical::parse_alert_status(text)) {
    return *status;
  }
  throw std::runtime_error("alerts.state holds an unknown value '" + std::string(text) + "'");
}

OutboxState read_outbox_state(const sql::Column& column) {
  const std::string_view text = column.as_text();
  if (const auto state = parse_outbox_state(text)) {
    return *state;
  }
  throw std::runtime_error("outbox.state holds an unknown value '" + std::string(text) + "'");
}

std::string active_alert_condition(std::string_view column) {
  std::string sql = "(";
  for (const clinical::AlertStatus status : clinical::kAlertStatuses) {
    if (!clinical::is_active(status)) {
      continue;
    }
    if (sql.size() > 1) {
      sql += " OR ";
    }
    sql += column;
    sql += " = '";
    sql += clinical::to_string(status);
    sql += '\'';
  }
  sql += ')';
  return sql;
}

FileVerdict read_verdict(const sql::Column& column) {
  const std::string_view text = column.as_text();
  for (const FileVerdict verdict :
       {FileVerdict::accepted, FileVerdict::partial, FileVerdict::refused}) {
    if (text == sql_text(verdict)) {
      return verdict;
    }
  }
  throw std::runtime_error("files.outcome holds an unexpected value '" + std::string(text) + "'");
}

void bind_optional(sql::Statement& statement, int index, const std::optional<double>& value) {
  if (value) {
    statement.bind(index, *value);
  } else {
    statement.bind_null(index);
  }
}

void bind_position(sql::Statement& statement, int index, int position) {
  if (position >= 0) {
    statement.bind(index, position);
  } else {
    statement.bind_null(index);
  }
}

void bind_offset(sql::Statement& statement, int index, std::size_t offset) {
  if (offset != static_cast<std::size_t>(-1)) {
    statement.bind(index, static_cast<std::int64_t>(offset));
  } else {
    statement.bind_null(index);
  }
}

std::optional<double> read_optional(const sql::Column& column) {
  if (column.is_null()) {
    return std::nullopt;
  }
  return column.as_double();
}

int read_position(const sql::Column& column) { return column.is_null() ? -1 : column.as_int(); }

std::size_t read_offset(const sql::Column& column) {
  const std::int64_t offset = column.is_null() ? -1 : column.as_int64();
  return offset >= 0 ? static_cast<std::size_t>(offset) : static_cast<std::size_t>(-1);
}

std::string format_datetime(const parsers::DateTime& time) {
  using Precision = parsers::DateTime::Precision;
  if (time.empty()) {
    return {};
  }
  char buffer[48];  // NOLINT(modernize-avoid-c-arrays): snprintf target
  int n = 0;
  switch (time.precision) {
    case Precision::year:
      n = std::snprintf(buffer, sizeof buffer, "%04d", time.year);
      break;
    case Precision::month:
      n = std::snprintf(buffer, sizeof buffer, "%04d-%02d", time.year, time.month);
      break;
    case Precision::day:
      n = std::snprintf(buffer, sizeof buffer, "%04d-%02d-%02d", time.year, time.month, time.day);
      break;
    case Precision::hour:
    case Precision::minute:
      n = std::snprintf(buffer, sizeof buffer, "%04d-%02d-%02dT%02d:%02d", time.year, time.month,
                        time.day, time.hour, time.minute);
      break;
    case Precision::second:
    case Precision::fraction:
    case Precision::none:
      n = std::snprintf(buffer, sizeof buffer, "%04d-%02d-%02dT%02d:%02d:%02d", time.year,
                        time.month, time.day, time.hour, time.minute, time.second);
      break;
  }
  std::string text(buffer, n > 0 ? static_cast<std::size_t>(n) : 0);
  if (time.has_offset && time.precision >= Precision::hour) {
    const int minutes = time.offset_minutes < 0 ? -time.offset_minutes : time.offset_minutes;
    n = std::snprintf(buffer, sizeof buffer, "%c%02d:%02d", time.offset_minutes < 0 ? '-' : '+',
                      minutes / 60, minutes % 60);
    text.append(buffer, n > 0 ? static_cast<std::size_t>(n) : 0);
  }
  return text;
}

namespace {

// The number held by text[at, at + digits), all of it decimal digits; nullopt otherwise.
std::optional<int> digits_at(std::string_view text, std::size_t at, std::size_t digits) noexcept {
  if (at > text.size() || text.size() - at < digits) {
    return std::nullopt;
  }
  const std::string_view part = text.substr(at, digits);
  for (const char c : part) {
    if (c < '0' || c > '9') {
      return std::nullopt;  // from_chars would also take a sign
    }
  }
  int value = 0;
  const auto [end, error] = std::from_chars(part.data(), part.data() + part.size(), value);
  if (error != std::errc() || end != part.data() + part.size()) {
    return std::nullopt;
  }
  return value;
}

bool char_at(std::string_view text, std::size_t at, char expected) noexcept {
  return at < text.size() && text[at] == expected;
}

}  // namespace

// The layouts of format_datetime: YYYY, YYYY-MM, YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS][+HH:MM].
parsers::DateTime parse_datetime(std::string_view text) noexcept {
  using Precision = parsers::DateTime::Precision;
  parsers::DateTime time;
  const auto year = digits_at(text, 0, 4);
  if (!year) {
    return {};
  }
  time.year = *year;
  time.precision = Precision::year;
  if (text.size() == 4) {
    return time;
  }
  const auto month = digits_at(text, 5, 2);
  if (!char_at(text, 4, '-') || !month) {
    return {};
  }
  time.month = *month;
  time.precision = Precision::month;
  if (text.size() == 7) {
    return time;
  }
  const auto day = digits_at(text, 8, 2);
  if (!char_at(text, 7, '-') || !day) {
    return {};
  }
  time.day = *day;
  time.precision = Precision::day;
  if (text.size() == 10) {
    return time;
  }
  const auto hour = digits_at(text, 11, 2);
  const auto minute = digits_at(text, 14, 2);
  if (!char_at(text, 10, 'T') || !hour || !char_at(text, 13, ':') || !minute) {
    return {};
  }
  time.hour = *hour;
  time.minute = *minute;
  time.precision = Precision::minute;
  std::size_t at = 16;
  if (char_at(text, at, ':')) {
    const auto second = digits_at(text, at + 1, 2);
    if (!second) {
      return {};
    }
    time.second = *second;
    time.precision = Precision::second;
    at += 3;
  }
  if (at == text.size()) {
    return time;
  }
  const bool east = char_at(text, at, '+');
  const auto offset_hours = digits_at(text, at + 1, 2);
  const auto offset_minutes = digits_at(text, at + 4, 2);
  if ((!east && !char_at(text, at, '-')) || !offset_hours || !char_at(text, at + 3, ':') ||
      !offset_minutes || text.size() != at + 6) {
    return {};
  }
  const int minutes = *offset_hours * 60 + *offset_minutes;
  time.has_offset = true;
  time.offset_minutes = east ? minutes : -minutes;
  return time;
}

char known_sex(char sex) noexcept { return sex == 'F' || sex == 'M' ? sex : 'U'; }

std::int64_t unix_now() noexcept {
  const auto since_epoch = std::chrono::system_clock::now().time_since_epoch();
  return std::chrono::duration_cast<std::chrono::seconds>(since_epoch).count();
}

std::int64_t inserted_id(sql::Database& db, sql::Statement& insert) {
  if (db.dialect() == sql::Dialect::sqlite) {
    insert.exec();
    return db.last_insert_id();
  }
  if (!insert.step()) {
    throw std::logic_error("an INSERT ... RETURNING returned no row");
  }
  const std::int64_t id = insert.column(0).as_int64();
  insert.reset();
  return id;
}

}  // namespace labwatch::storage
