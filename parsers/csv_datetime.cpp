// SPDX-License-Identifier: Apache-2.0
// parse_csv_datetime: the date and time shapes of lab CSV exports, validated field by field.
#include <array>
#include <charconv>
#include <cstddef>
#include <optional>
#include <string_view>
#include <system_error>

#include "parsers/csv_fields.hpp"
#include "parsers/csv_parser.hpp"

namespace labwatch::parsers {
namespace {

using Precision = DateTime::Precision;

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

// A cursor over the trimmed text; every read checks the bounds first.
class DateCursor {
 public:
  explicit DateCursor(std::string_view text) noexcept : text_(text) {}

  [[nodiscard]] bool done() const noexcept { return pos_ == text_.size(); }

  // Reads min_digits..max_digits ASCII digits; stops after max_digits even if more follow.
  bool number(std::size_t min_digits, std::size_t max_digits, int& out) noexcept {
    std::size_t count = 0;
    while (count < max_digits && pos_ + count < text_.size() && is_digit(text_[pos_ + count])) {
      ++count;
    }
    if (count < min_digits) {
      return false;
    }
    const char* first = text_.data() + pos_;
    const char* last = first + count;
    const auto [ptr, ec] = std::from_chars(first, last, out);
    if (ec != std::errc{} || ptr != last) {
      return false;
    }
    pos_ += count;
    return true;
  }

  // Fractional seconds of 1..9 digits as nanoseconds.
  bool fraction(int& nanoseconds) noexcept {
    const std::size_t before = pos_;
    int digits = 0;
    if (!number(1, 9, digits)) {
      return false;
    }
    for (std::size_t scale = pos_ - before; scale < 9; ++scale) {
      digits *= 10;
    }
    nanoseconds = digits;
    return true;
  }

  bool eat(char c) noexcept {
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  // At least one space.
  bool spaces() noexcept {
    if (!eat(' ')) {
      return false;
    }
    while (eat(' ')) {
    }
    return true;
  }

  // "AM" or "PM" in any case; sets `pm`.
  bool meridiem(bool& pm) noexcept {
    if (text_.size() - pos_ < 2) {
      return false;
    }
    const char first = static_cast<char>(text_[pos_] | 0x20);
    const char second = static_cast<char>(text_[pos_ + 1] | 0x20);
    if ((first != 'a' && first != 'p') || second != 'm') {
      return false;
    }
    pm = first == 'p';
    pos_ += 2;
    return true;
  }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
};

bool is_leap_year(int year) noexcept {
  return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

int days_in_month(int year, int month) noexcept {
  constexpr std::array<int, 12> kDays = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month == 2 && is_leap_year(year)) {
    return 29;
  }
  return kDays[static_cast<std::size_t>(month - 1)];
}

std::optional<DateTime> checked(const DateTime& t) noexcept {
  if (t.year < 1 || t.month < 1 || t.month > 12 || t.day < 1 ||
      t.day > days_in_month(t.year, t.month)) {
    return std::nullopt;
  }
  // A leap second (:60) is kept as written, as DateTime allows.
  if (t.hour > 23 || t.minute > 59 || t.second > 60) {
    return std::nullopt;
  }
  return t;
}

// HH:MM[:SS[(.|,)fraction]] with 1..2 hour digits where the shape allows them.
bool read_time(DateCursor& in, std::size_t min_hour_digits, bool allow_fraction,
               DateTime& t) noexcept {
  if (!in.number(min_hour_digits, 2, t.hour) || !in.eat(':') || !in.number(2, 2, t.minute)) {
    return false;
  }
  t.precision = Precision::minute;
  if (!in.eat(':')) {
    return true;
  }
  if (!in.number(2, 2, t.second)) {
    return false;
  }
  t.precision = Precision::second;
  if (allow_fraction && (in.eat('.') || in.eat(','))) {
    if (!in.fraction(t.nanosecond)) {
      return false;
    }
    t.precision = Precision::fraction;
  }
  return true;
}

// ISO 8601 offset: Z, +HH, +HHMM or +HH:MM. Real offsets lie within +-14:00.
bool read_offset(DateCursor& in, DateTime& t) noexcept {
  if (in.eat('Z') || in.eat('z')) {
    t.has_offset = true;
    t.offset_minutes = 0;
    return true;
  }
  int sign = 0;
  if (in.eat('+')) {
    sign = 1;
  } else if (in.eat('-')) {
    sign = -1;
  } else {
    return false;
  }
  int hours = 0;
  int minutes = 0;
  if (!in.number(2, 2, hours)) {
    return false;
  }
  if (in.eat(':')) {
    if (!in.number(2, 2, minutes)) {
      return false;
    }
  } else if (!in.done() && !in.number(2, 2, minutes)) {
    return false;
  }
  if (minutes > 59 || hours * 60 + minutes > 14 * 60) {
    return false;
  }
  t.has_offset = true;
  t.offset_minutes = sign * (hours * 60 + minutes);
  return true;
}

// YYYY-MM-DD[(T| )HH:MM[:SS[.f]][Z|+-HH[:]MM]]
std::optional<DateTime> parse_iso(std::string_view text) noexcept {
  DateCursor in(text);
  DateTime t;
  if (!in.number(4, 4, t.year) || !in.eat('-') || !in.number(2, 2, t.month) || !in.eat('-') ||
      !in.number(2, 2, t.day)) {
    return std::nullopt;
  }
  t.precision = Precision::day;
  if (in.done()) {
    return checked(t);
  }
  if (!in.eat('T') && !in.spaces()) {
    return std::nullopt;
  }
  if (!read_time(in, 2, true, t)) {
    return std::nullopt;
  }
  if (!in.done() && !read_offset(in, t)) {
    return std::nullopt;
  }
  return in.done() ? checked(t) : std::nullopt;
}

// The date and optional 24-hour time shared by the German and US shapes: `first` SEP `second` SEP
// YYYY, day/month of one or two digits, then " H:MM[:SS]". `in` is left after what was read;
// nullopt when the text is not of this shape.
std::optional<DateTime> read_short_date(DateCursor& in, char separator, bool day_first) noexcept {
  DateTime t;
  int& first = day_first ? t.day : t.month;
  int& second = day_first ? t.month : t.day;
  if (!in.number(1, 2, first) || !in.eat(separator) || !in.number(1, 2, second) ||
      !in.eat(separator) || !in.number(4, 4, t.year)) {
    return std::nullopt;
  }
  t.precision = Precision::day;
  if (!in.done() && (!in.spaces() || !read_time(in, 1, false, t))) {
    return std::nullopt;
  }
  return t;
}

// dd.mm.yyyy[ HH:MM[:SS]] (German); day, month and hour may have one digit.
std::optional<DateTime> parse_dotted(std::string_view text) noexcept {
  DateCursor in(text);
  const std::optional<DateTime> t = read_short_date(in, '.', /*day_first=*/true);
  return t && in.done() ? checked(*t) : std::nullopt;
}

// MM/DD/YYYY[ hh:mm[:ss] AM|PM] or MM/DD/YYYY HH:MM[:SS] (US); month, day, hour may have one digit.
std::optional<DateTime> parse_slashed(std::string_view text) noexcept {
  DateCursor in(text);
  std::optional<DateTime> read = read_short_date(in, '/', /*day_first=*/false);
  if (!read) {
    return std::nullopt;
  }
  DateTime& t = *read;
  if (in.done()) {
    return checked(t);
  }
  in.spaces();
  bool pm = false;
  if (!in.meridiem(pm) || !in.done()) {
    return std::nullopt;
  }
  // 12-hour clock: hours run 12, 1, ..., 11; 12 AM is midnight and 12 PM is noon.
  if (t.hour < 1 || t.hour > 12) {
    return std::nullopt;
  }
  t.hour = (t.hour % 12) + (pm ? 12 : 0);
  return checked(t);
}

}  // namespace

std::optional<DateTime> parse_csv_datetime(std::string_view text) noexcept {
  text = trim_csv_blanks(text);
  std::size_t digits = 0;
  while (digits < text.size() && is_digit(text[digits])) {
    ++digits;
  }
  // The first separator tells the shape: ISO starts "YYYY-", German "d.", US "m/".
  const char separator = digits < text.size() ? text[digits] : '\0';
  if (digits == 4 && separator == '-') {
    return parse_iso(text);
  }
  if (digits >= 1 && digits <= 2 && separator == '.') {
    return parse_dotted(text);
  }
  if (digits >= 1 && digits <= 2 && separator == '/') {
    return parse_slashed(text);
  }
  return std::nullopt;
}

}  // namespace labwatch::parsers
