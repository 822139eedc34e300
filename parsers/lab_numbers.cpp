// SPDX-License-Identifier: Apache-2.0
// Numbers as labs print them: decimal marks, digit grouping, and the evidence a file gives of both.
#include "parsers/lab_numbers.hpp"

#include <array>
#include <charconv>
#include <cstddef>
#include <system_error>

#include "parsers/text.hpp"

namespace labwatch::parsers {

namespace {

constexpr std::size_t kGroup = 3;            // digits in every group after the first
constexpr std::size_t kMaxNumberBytes = 64;  // a lab value is short; longer text is not one

bool is_separator(char c) noexcept { return c == '.' || c == ','; }

// The shape of a run of digits and separators, without its sign.
struct Shape {
  std::size_t commas = 0;
  std::size_t points = 0;
  std::size_t last_separator = std::string_view::npos;
};

Shape shape_of(std::string_view body) noexcept {
  Shape shape;
  for (std::size_t i = 0; i < body.size(); ++i) {
    if (body[i] == ',') {
      ++shape.commas;
      shape.last_separator = i;
    } else if (body[i] == '.') {
      ++shape.points;
      shape.last_separator = i;
    }
  }
  return shape;
}

// True when `integer` is a valid grouped integer with separator `group`: a first group of 1-3
// digits not starting with 0, then groups of exactly three ("1,234,567"). Without any separator,
// any run of digits is valid.
bool valid_grouping(std::string_view integer, char group) noexcept {
  std::size_t first = integer.find(group);
  if (first == std::string_view::npos) {
    return !integer.empty();
  }
  if (first == 0 || first > kGroup || integer.front() == '0') {
    return false;
  }
  std::size_t at = first;
  while (at != std::string_view::npos) {
    const std::size_t next = integer.find(group, at + 1);
    const std::size_t end = next == std::string_view::npos ? integer.size() : next;
    if (end - at - 1 != kGroup) {
      return false;
    }
    at = next;
  }
  return true;
}

// A lone separator at `at` that could be a thousands separator: three digits after it, a first
// group of 1-3 digits without a leading zero before it ("1,234", "12.345"; not "0,123", "1234,5").
bool could_group(std::string_view body, std::size_t at) noexcept {
  return at >= 1 && at <= kGroup && body.front() != '0' && body.size() - at - 1 == kGroup;
}

// Which mark a run of digits and separators proves, if any.
DecimalMark proven_mark(std::string_view body) noexcept {
  const Shape shape = shape_of(body);
  if (shape.commas == 0 && shape.points == 0) {
    return DecimalMark::unknown;
  }
  const char last = body[shape.last_separator];
  // Only a number that is well formed tells anything: "2025.03.04" is a date, not a grouping.
  if (shape.commas > 0 && shape.points > 0) {
    // "1,234.5": the separator that comes last, once, is the decimal mark.
    const std::size_t count = last == ',' ? shape.commas : shape.points;
    const bool grouped =
        valid_grouping(body.substr(0, shape.last_separator), last == ',' ? '.' : ',');
    if (count != 1 || !grouped) {
      return DecimalMark::unknown;
    }
    return last == ',' ? DecimalMark::comma : DecimalMark::point;
  }
  if (shape.commas + shape.points > 1) {
    // "1,234,567": the repeated separator groups, so the other one would be the decimal mark.
    if (!valid_grouping(body, last)) {
      return DecimalMark::unknown;
    }
    return last == ',' ? DecimalMark::point : DecimalMark::comma;
  }
  if (could_group(body, shape.last_separator)) {
    return DecimalMark::unknown;
  }
  return last == ',' ? DecimalMark::comma : DecimalMark::point;
}

}  // namespace

void MarkEvidence::add(std::string_view text) noexcept {
  std::size_t i = 0;
  while (i < text.size()) {
    if (!is_digit(text[i]) && !is_separator(text[i])) {
      ++i;
      continue;
    }
    std::size_t end = i;
    while (end < text.size() && (is_digit(text[end]) || is_separator(text[end]))) {
      ++end;
    }
    std::string_view run = text.substr(i, end - i);
    // A separator at either end belongs to the surrounding text ("5.", "Ref.: 13,0-150,0").
    while (!run.empty() && is_separator(run.back())) {
      run.remove_suffix(1);
    }
    while (!run.empty() && is_separator(run.front())) {
      run.remove_prefix(1);
    }
    if (!run.empty()) {
      switch (proven_mark(run)) {
        case DecimalMark::point:
          point_ = true;
          break;
        case DecimalMark::comma:
          comma_ = true;
          break;
        case DecimalMark::unknown:
          break;
      }
    }
    i = end;
  }
}

void MarkEvidence::add(const MarkEvidence& other) noexcept {
  point_ = point_ || other.point_;
  comma_ = comma_ || other.comma_;
}

DecimalMark MarkEvidence::mark() const noexcept {
  if (point_ == comma_) {
    return DecimalMark::unknown;
  }
  return point_ ? DecimalMark::point : DecimalMark::comma;
}

NumberReading read_lab_number(std::string_view text, DecimalMark mark,
                              bool point_is_standard) noexcept {
  NumberReading reading;
  bool negative = false;
  if (!text.empty() && (text.front() == '+' || text.front() == '-')) {
    negative = text.front() == '-';
    text.remove_prefix(1);
  }
  if (text.empty() || text.size() > kMaxNumberBytes) {
    return reading;
  }
  for (const char c : text) {
    if (!is_digit(c) && !is_separator(c)) {
      return reading;  // a space, a letter, an exponent, a second sign
    }
  }
  const Shape shape = shape_of(text);
  // Decide which separator, if any, is the decimal mark; the other one may only group.
  char decimal = 0;
  char group = 0;
  if (shape.commas > 0 && shape.points > 0) {
    decimal = text[shape.last_separator];
    group = decimal == ',' ? '.' : ',';
    if ((decimal == ',' ? shape.commas : shape.points) != 1) {
      return reading;  // "1.234,5,6"
    }
  } else if (shape.commas + shape.points > 1) {
    group = shape.commas > 0 ? ',' : '.';  // "1,234,567"
  } else if (shape.commas + shape.points == 1) {
    const char separator = text[shape.last_separator];
    if (!could_group(text, shape.last_separator)) {
      decimal = separator;  // "45,2", "0.123", "1234,5", ",5"
    } else if (mark == DecimalMark::unknown) {
      if (separator == ',' || !point_is_standard) {
        reading.problem = NumberProblem::ambiguous;
        return reading;
      }
      decimal = separator;
    } else {
      const char marked = mark == DecimalMark::comma ? ',' : '.';
      (separator == marked ? decimal : group) = separator;
    }
  }
  const std::size_t decimal_at = decimal != 0 ? text.rfind(decimal) : std::string_view::npos;
  const std::string_view integer = text.substr(0, decimal_at);
  const std::string_view fraction =
      decimal_at == std::string_view::npos ? std::string_view{} : text.substr(decimal_at + 1);
  if (integer.empty() && fraction.empty()) {
    return reading;  // "." alone
  }
  if (group != 0 && !valid_grouping(integer, group)) {
    return reading;  // "1,23,4", "0,123,456"
  }
  // A grouping that the known mark contradicts is not re-read another way.
  const char marked = mark == DecimalMark::comma ? ',' : (mark == DecimalMark::point ? '.' : 0);
  if (marked != 0 && group == marked) {
    reading.problem = NumberProblem::ambiguous;
    return reading;
  }
  // A clean copy that from_chars reads exactly: '-'?, digits, '.'?, digits.
  std::array<char, kMaxNumberBytes + 4> buffer{};  // sign, '0', '.', '0' added
  std::size_t size = 0;
  if (negative) {
    buffer[size++] = '-';
  }
  buffer[size++] = '0';  // ".5" and "5." read alike
  for (const char c : integer) {
    if (c != group) {
      buffer[size++] = c;
    }
  }
  buffer[size++] = '.';
  for (const char c : fraction) {
    buffer[size++] = c;
  }
  buffer[size++] = '0';
  double value = 0;
  const char* const end = buffer.data() + size;
  const auto [stop, error] = std::from_chars(buffer.data(), end, value, std::chars_format::fixed);
  if (error != std::errc{} || stop != end) {
    return reading;
  }
  reading.number = LabNumber{value, static_cast<int>(fraction.size())};
  return reading;
}

}  // namespace labwatch::parsers
