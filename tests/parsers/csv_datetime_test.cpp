// SPDX-License-Identifier: Apache-2.0
// Tests of parse_csv_datetime: every accepted shape, 12-hour clock edges, offsets, invalid dates.
#include <catch2/catch.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "parsers/csv_parser.hpp"

namespace Catch {
template <>
struct StringMaker<labwatch::parsers::DateTime> {
  static std::string convert(const labwatch::parsers::DateTime& t) {
    using std::to_string;
    return to_string(t.year) + '-' + to_string(t.month) + '-' + to_string(t.day) + ' ' +
           to_string(t.hour) + ':' + to_string(t.minute) + ':' + to_string(t.second) + '.' +
           to_string(t.nanosecond) + " precision " + to_string(static_cast<int>(t.precision)) +
           (t.has_offset ? " offset " + to_string(t.offset_minutes) : " naive");
  }
};
}  // namespace Catch

namespace labwatch::parsers {
namespace {

using P = DateTime::Precision;

DateTime date(int year, int month, int day) {
  DateTime t;
  t.year = year;
  t.month = month;
  t.day = day;
  t.precision = P::day;
  return t;
}

DateTime at(DateTime t, int hour, int minute, std::optional<int> second = std::nullopt) {
  t.hour = hour;
  t.minute = minute;
  t.precision = P::minute;
  if (second) {
    t.second = *second;
    t.precision = P::second;
  }
  return t;
}

DateTime offset(DateTime t, int minutes) {
  t.has_offset = true;
  t.offset_minutes = minutes;
  return t;
}

std::optional<DateTime> parse(std::string_view text) { return parse_csv_datetime(text); }

std::optional<DateTime> us(std::string_view text) {
  return parse_csv_datetime(text, DateOrder::mdy);
}

}  // namespace

TEST_CASE("parse_csv_datetime reads ISO 8601 dates and times", "[parsers][csv]") {
  CHECK(parse("1956-03-06") == date(1956, 3, 6));
  CHECK(parse("2024-12-26 06:10") == at(date(2024, 12, 26), 6, 10));
  CHECK(parse("2024-12-26T06:10") == at(date(2024, 12, 26), 6, 10));
  CHECK(parse("2024-12-26  06:10:59") == at(date(2024, 12, 26), 6, 10, 59));
  CHECK(parse(" 2024-12-26T06:10:00 ") == at(date(2024, 12, 26), 6, 10, 0));
  CHECK(parse("2016-12-31T23:59:60Z") == offset(at(date(2016, 12, 31), 23, 59, 60), 0));

  DateTime fraction = offset(at(date(2025, 1, 2), 3, 4, 5), 0);
  fraction.nanosecond = 250'000'000;
  fraction.precision = P::fraction;
  CHECK(parse("2025-01-02T03:04:05.25Z") == fraction);
  fraction.nanosecond = 123'456'789;
  CHECK(parse("2025-01-02T03:04:05,123456789Z") == fraction);
}

TEST_CASE("parse_csv_datetime reads ISO 8601 offsets and Z", "[parsers][csv]") {
  CHECK(parse("2024-11-19T10:50:00-07:00") == offset(at(date(2024, 11, 19), 10, 50, 0), -420));
  CHECK(parse("2024-10-05T10:40:00Z") == offset(at(date(2024, 10, 5), 10, 40, 0), 0));
  CHECK(parse("2024-10-05T10:40z") == offset(at(date(2024, 10, 5), 10, 40), 0));
  CHECK(parse("2024-10-05 10:40+0530") == offset(at(date(2024, 10, 5), 10, 40), 330));
  CHECK(parse("2024-10-05T10:40:00+05") == offset(at(date(2024, 10, 5), 10, 40, 0), 300));
  CHECK(parse("2024-10-05T10:40-00:00") == offset(at(date(2024, 10, 5), 10, 40), 0));
  CHECK(parse("2024-10-05T10:40+14:00") == offset(at(date(2024, 10, 5), 10, 40), 840));
  CHECK(parse("2024-10-05T10:40-09:30") == offset(at(date(2024, 10, 5), 10, 40), -570));
}

TEST_CASE("parse_csv_datetime reads German dd.mm.yyyy dates and times", "[parsers][csv]") {
  CHECK(parse("15.04.1991") == date(1991, 4, 15));
  CHECK(parse("09.10.2024 11:30") == at(date(2024, 10, 9), 11, 30));
  CHECK(parse("09.10.2024 11:30:15") == at(date(2024, 10, 9), 11, 30, 15));
  CHECK(parse("1.2.2024 7:05") == at(date(2024, 2, 1), 7, 5));
  CHECK(parse("31.12.2025 23:59") == at(date(2025, 12, 31), 23, 59));
}

TEST_CASE("parse_csv_datetime reads MM/DD/YYYY month first with 12- and 24-hour times",
          "[parsers][csv]") {
  CHECK(us("04/19/1983") == date(1983, 4, 19));
  CHECK(us("4/9/1983") == date(1983, 4, 9));
  CHECK(us("10/25/2024 10:10 AM") == at(date(2024, 10, 25), 10, 10));
  CHECK(us("10/25/2024 10:10:30 PM") == at(date(2024, 10, 25), 22, 10, 30));
  CHECK(us("10/25/2024 7:05PM") == at(date(2024, 10, 25), 19, 5));
  CHECK(us("10/25/2024 07:05 pm") == at(date(2024, 10, 25), 19, 5));
  CHECK(us("07/16/2025 18:45") == at(date(2025, 7, 16), 18, 45));
  CHECK(us("07/16/2025 00:05:09") == at(date(2025, 7, 16), 0, 5, 9));

  SECTION("12 AM is midnight and 12 PM is noon") {
    CHECK(us("01/01/2025 12:00 AM") == at(date(2025, 1, 1), 0, 0));
    CHECK(us("01/01/2025 12:59 AM") == at(date(2025, 1, 1), 0, 59));
    CHECK(us("01/01/2025 1:00 AM") == at(date(2025, 1, 1), 1, 0));
    CHECK(us("01/01/2025 11:59 AM") == at(date(2025, 1, 1), 11, 59));
    CHECK(us("01/01/2025 12:00 PM") == at(date(2025, 1, 1), 12, 0));
    CHECK(us("01/01/2025 12:30 PM") == at(date(2025, 1, 1), 12, 30));
    CHECK(us("01/01/2025 01:00 PM") == at(date(2025, 1, 1), 13, 0));
    CHECK(us("01/01/2025 11:59 PM") == at(date(2025, 1, 1), 23, 59));
  }
  SECTION("a 12-hour time outside 1-12 is refused") {
    CHECK_FALSE(us("01/01/2025 00:30 AM"));
    CHECK_FALSE(us("01/01/2025 13:00 PM"));
    CHECK_FALSE(us("01/01/2025 0:00 PM"));
  }
}

TEST_CASE("parse_csv_datetime validates leap years and days of month", "[parsers][csv]") {
  CHECK(parse("2024-02-29") == date(2024, 2, 29));
  CHECK(parse("2000-02-29") == date(2000, 2, 29));
  CHECK(parse("29.02.2024") == date(2024, 2, 29));
  CHECK(parse("02/29/2024") == date(2024, 2, 29));  // 29 is no month: one reading
  CHECK_FALSE(parse("2025-02-29"));
  CHECK_FALSE(parse("1900-02-29"));
  CHECK_FALSE(parse("2024-02-30"));
  CHECK_FALSE(parse("2024-04-31"));
  CHECK_FALSE(parse("31.04.2024"));
  CHECK_FALSE(us("04/31/2024"));
  CHECK_FALSE(parse("2024-12-32"));
  CHECK(parse("2024-12-31") == date(2024, 12, 31));
}

TEST_CASE("parse_csv_datetime refuses impossible fields and unknown shapes", "[parsers][csv]") {
  const std::string_view text =
      GENERATE(as<std::string_view>{},
               // out of range
               "2024-13-01", "2024-00-10", "2024-01-00", "0000-01-01", "2024-01-01T24:00",
               "2024-01-01T10:60", "2024-01-01T10:00:61", "13.13.2024", "00.01.2024", "13/13/2024",
               "12/00/2024", "00/13/2024", "09.10.2024 24:00", "07/16/2025 25:00",
               // offsets
               "2024-01-01T10:00+15:00", "2024-01-01T10:00+05:60", "2024-01-01T10:00+5",
               "2024-01-01T10:00+05:3", "2024-01-01T10:00 Z", "2024-01-01T10:00ZZ",
               // shapes
               "", "   ", "pending", "2024-1-05", "24-01-05", "2024-01-05T", "2024-01-05 10",
               "2024-01-05T10:5", "2024-01-05T1:05", "2024-01-05x", "2024010", "202401051",
               "2024010510", "20241305", "2024/1/5/", "2024.01", "2024/01/05 7:05", "01/02/24",
               "1.2.24", "123.01.2024", "10/25/2024 10:10 XM", "10/25/2024 10:10 A",
               "10/25/2024 10:10 AMX", "10/25/2024AM", "09.10.2024 11:30 PM", "09.10.2024 11:30Z",
               "2024-01-05T10:05:06.", "2024-01-05T10:05:06.1234567890", "-2024-01-05");
  CAPTURE(text);
  CHECK_FALSE(parse(text).has_value());
}

}  // namespace labwatch::parsers

namespace labwatch::parsers {

TEST_CASE("parse_csv_datetime reads every year-first shape with an optional time and offset",
          "[parsers][csv]") {
  for (const std::string_view text :
       {"2025-03-04", "2025/03/04", "2025.03.04", "20250304", "2025/3/4", "2025.3.4"}) {
    CAPTURE(text);
    CHECK(parse(text) == date(2025, 3, 4));
  }
  CHECK(parse("2025/03/04 08:30") == at(date(2025, 3, 4), 8, 30));
  CHECK(parse("2025.03.04T08:30:15") == at(date(2025, 3, 4), 8, 30, 15));
  CHECK(parse("20250304 08:30") == at(date(2025, 3, 4), 8, 30));
  CHECK(parse("20250304T083000Z") == offset(at(date(2025, 3, 4), 8, 30, 0), 0));  // ISO basic
  CHECK(parse("20250304T0830+0100") == offset(at(date(2025, 3, 4), 8, 30), 60));
  CHECK_FALSE(parse("20250304T08300"));
  CHECK(parse("20250304T08:30:00Z") == offset(at(date(2025, 3, 4), 8, 30, 0), 0));
  CHECK(parse("2025/03/04 08:30+01:00") == offset(at(date(2025, 3, 4), 8, 30), 60));
  CHECK(parse("2025-03-04 08:30:00 ").has_value());
  SECTION("the HL7 TS shape, down to the minute") {
    CHECK(parse("202503040830") == at(date(2025, 3, 4), 8, 30));
    CHECK(parse("20250304083015-0500") == offset(at(date(2025, 3, 4), 8, 30, 15), -300));
  }
}

TEST_CASE("read_csv_datetime reads NN/NN/YYYY in the order given, and refuses two readings",
          "[parsers][csv]") {
  SECTION("a configured order decides") {
    CHECK(parse_csv_datetime("03/04/2025", DateOrder::mdy) == date(2025, 3, 4));
    CHECK(parse_csv_datetime("03/04/2025", DateOrder::dmy) == date(2025, 4, 3));
    CHECK(parse_csv_datetime("03/04/2025 14:05", DateOrder::dmy) == at(date(2025, 4, 3), 14, 5));
    CHECK(parse_csv_datetime("03/04/2025 2:05 PM", DateOrder::dmy) == at(date(2025, 4, 3), 14, 5));
    CHECK_FALSE(parse_csv_datetime("10/25/2024", DateOrder::dmy));  // no 25th month
    CHECK_FALSE(parse_csv_datetime("25/10/2024", DateOrder::mdy));
  }
  SECTION("without one, only a date with one reading is read") {
    CHECK(parse("10/25/2024") == date(2024, 10, 25));
    CHECK(parse("25/10/2024 10:10") == at(date(2024, 10, 25), 10, 10));
    CHECK(parse("05/05/2025") == date(2025, 5, 5));  // both readings are the same day
    const auto ambiguous = read_csv_datetime("03/04/2025", DateOrder::unknown);
    REQUIRE_FALSE(ambiguous.has_value());
    CHECK(ambiguous.error() == DateErrc::ambiguous);
    CHECK(read_csv_datetime("03/04/2025 10:10 AM", DateOrder::unknown).error() ==
          DateErrc::ambiguous);
    CHECK(read_csv_datetime("13/13/2025", DateOrder::unknown).error() == DateErrc::invalid);
    CHECK(read_csv_datetime("pending", DateOrder::unknown).error() == DateErrc::invalid);
  }
}

TEST_CASE("date_order_evidence says which order a date proves by itself", "[parsers][csv]") {
  CHECK(date_order_evidence("10/25/2024 10:10 AM") == DateOrder::mdy);
  CHECK(date_order_evidence("04/19/1983") == DateOrder::mdy);
  CHECK(date_order_evidence("25/10/2024") == DateOrder::dmy);
  CHECK(date_order_evidence("03/04/2025") == DateOrder::unknown);
  CHECK(date_order_evidence("05/05/2025") == DateOrder::unknown);
  CHECK(date_order_evidence("2025-10-25") == DateOrder::unknown);
  CHECK(date_order_evidence("25.10.2025") == DateOrder::unknown);
  CHECK(date_order_evidence("13/13/2025") == DateOrder::unknown);
}

}  // namespace labwatch::parsers
