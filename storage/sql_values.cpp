// SPDX-License-Identifier: Apache-2.0
// How model values are written to and read from SQLite columns.
#include "storage/sql_values.hpp"

#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string_view>

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

clinical::ResultStatus read_status(const SQLite::Column& column) {
  const std::string_view text = column.getText();
  if (const auto status = clinical::parse_result_status(text)) {
    return *status;
  }
  throw std::runtime_error("results.status holds an unknown value '" + std::string(text) + "'");
}

clinical::ResultState read_state(const SQLite::Column& column) {
  const std::string_view text = column.getText();
  if (const auto state = clinical::parse_result_state(text)) {
    return *state;
  }
  throw std::runtime_error("results.state holds an unknown value '" + std::string(text) + "'");
}

void bind_optional(SQLite::Statement& statement, int index, const std::optional<double>& value) {
  if (value) {
    statement.bind(index, *value);
  } else {
    statement.bind(index);
  }
}

void bind_position(SQLite::Statement& statement, int index, int position) {
  if (position >= 0) {
    statement.bind(index, position);
  } else {
    statement.bind(index);
  }
}

void bind_offset(SQLite::Statement& statement, int index, std::size_t offset) {
  if (offset != static_cast<std::size_t>(-1)) {
    statement.bind(index, static_cast<std::int64_t>(offset));
  } else {
    statement.bind(index);
  }
}

std::optional<double> read_optional(const SQLite::Column& column) {
  if (column.isNull()) {
    return std::nullopt;
  }
  return column.getDouble();
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

char known_sex(char sex) noexcept { return sex == 'F' || sex == 'M' ? sex : 'U'; }

std::int64_t unix_now() noexcept {
  const auto since_epoch = std::chrono::system_clock::now().time_since_epoch();
  return std::chrono::duration_cast<std::chrono::seconds>(since_epoch).count();
}

}  // namespace labwatch::storage
