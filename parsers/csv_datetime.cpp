// SPDX-License-Identifier: Apache-2.0
// read_csv_datetime: the date and time shapes of lab exports, validated field by field.
#include <array>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <system_error>
#include <utility>

#include "parsers/csv_fields.hpp"
#include "parsers/csv_parser.hpp"
#include "parsers/hl7_parser.hpp"
#include "parsers/text.hpp"

namespace labwatch::parsers {
namespace {

using Precision = DateTime::Precision;

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

// After a date: nothing, or (T| +) a 24-hour HH:MM[:SS[.f]] and an optional offset.
std::optional<DateTime> read_time_of_day(DateCursor& in, DateTime t, bool allow_t) noexcept {
  if (in.done()) {
    return checked(t);
  }
  if (!(allow_t && in.eat('T')) && !in.spaces()) {
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

// Year first, which no convention reads otherwise: YYYY-MM-DD (ISO 8601), YYYY/MM/DD or
// YYYY.MM.DD, each with an optional time of day and offset. ISO wants two-digit month and day.
std::optional<DateTime> parse_year_first(std::string_view text, char separator) noexcept {
  DateCursor in(text);
  DateTime t;
  const std::size_t min_digits = separator == '-' ? 2 : 1;
  if (!in.number(4, 4, t.year) || !in.eat(separator) || !in.number(min_digits, 2, t.month) ||
      !in.eat(separator) || !in.number(min_digits, 2, t.day)) {
    return std::nullopt;
  }
  t.precision = Precision::day;
  return read_time_of_day(in, t, true);
}

// YYYYMMDD, then the rest of an HL7 TS (YYYYMMDDHHMM[SS][+-ZZZZ]), an ISO 8601 basic time
// ("T0830", "T083000Z") or a separated time of day (" HH:MM", "T10:05:00Z").
std::optional<DateTime> parse_compact(std::string_view text) noexcept {
  DateCursor in(text);
  DateTime t;
  if (!in.number(4, 4, t.year) || !in.number(2, 2, t.month) || !in.number(2, 2, t.day)) {
    return std::nullopt;
  }
  t.precision = Precision::day;
  if (!in.done() && is_digit(text[8])) {
    const std::optional<DateTime> ts = parse_hl7_timestamp(text);
    if (!ts || ts->precision < Precision::minute) {
      return std::nullopt;
    }
    return checked(*ts);
  }
  // ISO 8601 basic format: 20250304T0830[00][Z|+-hh[mm]].
  if (text.size() > 11 && text[8] == 'T' && is_digit(text[11])) {
    in.eat('T');
    if (!in.number(2, 2, t.hour) || !in.number(2, 2, t.minute)) {
      return std::nullopt;
    }
    t.precision = Precision::minute;
    if (in.number(2, 2, t.second)) {
      t.precision = Precision::second;
    }
    if (!in.done() && !read_offset(in, t)) {
      return std::nullopt;
    }
    return in.done() ? checked(t) : std::nullopt;
  }
  return read_time_of_day(in, t, true);
}

// The date and optional 24-hour time shared by the day-first and slashed shapes: `a` SEP `b` SEP
// YYYY, each of one or two digits, then " H:MM[:SS]". `in` is left after what was read; nullopt
// when the text is not of this shape. The date fields are not checked yet.
struct ShortDate {
  int a = 0;
  int b = 0;
  DateTime t;  // year and time of day
};
std::optional<ShortDate> read_short_date(DateCursor& in, char separator) noexcept {
  ShortDate d;
  DateTime& t = d.t;
  if (!in.number(1, 2, d.a) || !in.eat(separator) || !in.number(1, 2, d.b) || !in.eat(separator) ||
      !in.number(4, 4, t.year)) {
    return std::nullopt;
  }
  t.precision = Precision::day;
  if (!in.done() && (!in.spaces() || !read_time(in, 1, false, t))) {
    return std::nullopt;
  }
  return d;
}

// dd.mm.yyyy[ HH:MM[:SS]] (German); day, month and hour may have one digit.
std::optional<DateTime> parse_dotted(std::string_view text) noexcept {
  DateCursor in(text);
  std::optional<ShortDate> d = read_short_date(in, '.');
  if (!d || !in.done()) {
    return std::nullopt;
  }
  d->t.day = d->a;
  d->t.month = d->b;
  return checked(d->t);
}

// NN/NN/YYYY with a 24-hour time, or a 12-hour one with AM/PM; the date fields not yet assigned.
std::optional<ShortDate> read_slashed(std::string_view text) noexcept {
  DateCursor in(text);
  std::optional<ShortDate> read = read_short_date(in, '/');
  if (!read) {
    return std::nullopt;
  }
  if (in.done()) {
    return read;
  }
  DateTime& t = read->t;
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
  return read;
}

// The slashed date read month first or day first; nullopt when that reading is no real date.
std::optional<DateTime> slashed_as(const ShortDate& d, DateOrder order) noexcept {
  DateTime t = d.t;
  t.month = order == DateOrder::dmy ? d.b : d.a;
  t.day = order == DateOrder::dmy ? d.a : d.b;
  return checked(t);
}

enum class Shape : std::uint8_t { none, year_first, compact, dotted, slashed };

// The first separator tells the shape: year first "YYYY-", "YYYY/", "YYYY.", compact "YYYYMMDD",
// German "d.", slashed "n/".
Shape shape_of(std::string_view text, char& separator) noexcept {
  std::size_t digits = 0;
  while (digits < text.size() && is_digit(text[digits])) {
    ++digits;
  }
  separator = digits < text.size() ? text[digits] : '\0';
  if (digits == 4 && (separator == '-' || separator == '/' || separator == '.')) {
    return Shape::year_first;
  }
  if (digits >= 8) {
    return Shape::compact;
  }
  if (digits >= 1 && digits <= 2 && separator == '.') {
    return Shape::dotted;
  }
  if (digits >= 1 && digits <= 2 && separator == '/') {
    return Shape::slashed;
  }
  return Shape::none;
}

}  // namespace

Expected<DateTime, DateErrc> read_csv_datetime(std::string_view text, DateOrder order) noexcept {
  text = trim_csv_blanks(text);
  char separator = '\0';
  std::optional<DateTime> t;
  switch (shape_of(text, separator)) {
    case Shape::year_first:
      t = parse_year_first(text, separator);
      break;
    case Shape::compact:
      t = parse_compact(text);
      break;
    case Shape::dotted:
      t = parse_dotted(text);
      break;
    case Shape::slashed: {
      const std::optional<ShortDate> d = read_slashed(text);
      if (!d) {
        break;
      }
      if (order != DateOrder::unknown) {
        t = slashed_as(*d, order);
        break;
      }
      // Why: 03/04/2025 is 4 March in the US and 3 April in most other places. Without a
      // configured order only a date that has one reading is read (13/04: the 13th; 04/13: the
      // 13th too); two readings of different days are refused, never guessed.
      const std::optional<DateTime> mdy = slashed_as(*d, DateOrder::mdy);
      const std::optional<DateTime> dmy = slashed_as(*d, DateOrder::dmy);
      if (mdy && dmy && *mdy != *dmy) {
        return unexpected(DateErrc::ambiguous);
      }
      t = mdy ? mdy : dmy;
      break;
    }
    case Shape::none:
      break;
  }
  if (!t) {
    return unexpected(DateErrc::invalid);
  }
  return *t;
}

std::optional<DateTime> parse_csv_datetime(std::string_view text, DateOrder order) noexcept {
  Expected<DateTime, DateErrc> t = read_csv_datetime(text, order);
  return t ? std::optional<DateTime>(*t) : std::nullopt;
}

std::optional<DateTime> read_datetime_in_any_order(std::string_view text) noexcept {
  text = trim_csv_blanks(text);
  char separator = '\0';
  if (shape_of(text, separator) != Shape::slashed) {
    return parse_csv_datetime(text, DateOrder::unknown);
  }
  const std::optional<ShortDate> d = read_slashed(text);
  if (!d) {
    return std::nullopt;
  }
  const std::optional<DateTime> mdy = slashed_as(*d, DateOrder::mdy);
  const std::optional<DateTime> dmy = slashed_as(*d, DateOrder::dmy);
  if (!mdy && !dmy) {
    return std::nullopt;
  }
  DateTime t = mdy ? *mdy : *dmy;
  if (mdy && dmy) {
    t.slashed = SlashedDate::both;
  } else {
    t.slashed = mdy ? SlashedDate::month_first : SlashedDate::day_first;
  }
  return t;
}

Expected<DateTime, DateErrc> in_date_order(DateTime t, DateOrder order) noexcept {
  const SlashedDate slashed = t.slashed;
  t.slashed = SlashedDate::none;
  switch (slashed) {
    case SlashedDate::none:
      break;
    case SlashedDate::month_first:
      if (order == DateOrder::dmy) {
        return unexpected(DateErrc::invalid);
      }
      break;
    case SlashedDate::day_first:
      if (order == DateOrder::mdy) {
        return unexpected(DateErrc::invalid);
      }
      break;
    case SlashedDate::both:
      // As read_csv_datetime: two readings of different days are refused, never guessed.
      if (order == DateOrder::dmy) {
        std::swap(t.month, t.day);
      } else if (order == DateOrder::unknown && t.month != t.day) {
        return unexpected(DateErrc::ambiguous);
      }
      break;
  }
  return t;
}

DateOrder date_order_evidence(std::string_view text) noexcept {
  text = trim_csv_blanks(text);
  char separator = '\0';
  if (shape_of(text, separator) != Shape::slashed) {
    return DateOrder::unknown;
  }
  const std::optional<ShortDate> d = read_slashed(text);
  if (!d) {
    return DateOrder::unknown;
  }
  const bool mdy = slashed_as(*d, DateOrder::mdy).has_value();
  const bool dmy = slashed_as(*d, DateOrder::dmy).has_value();
  if (mdy == dmy) {
    return DateOrder::unknown;
  }
  return mdy ? DateOrder::mdy : DateOrder::dmy;
}

}  // namespace labwatch::parsers
