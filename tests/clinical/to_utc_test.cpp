// SPDX-License-Identifier: Apache-2.0
// Tests of to_utc: sender offsets, naive local times in IANA zones with DST, and what is refused.
#include <catch2/catch.hpp>
#include <optional>

#include "clinical/normalize.hpp"

namespace {

using labwatch::clinical::to_utc;
using labwatch::clinical::UnixSeconds;
using labwatch::parsers::DateTime;

DateTime naive(int year, int month, int day, int hour, int minute, int second = 0) {
  DateTime t;
  t.year = year;
  t.month = month;
  t.day = day;
  t.hour = hour;
  t.minute = minute;
  t.second = second;
  t.precision = DateTime::Precision::second;
  return t;
}

DateTime with_offset(DateTime t, int offset_minutes) {
  t.has_offset = true;
  t.offset_minutes = offset_minutes;
  return t;
}

// Seconds of a UTC reading; relies on the offset path, which the first case pins to literals.
UnixSeconds utc(int year, int month, int day, int hour, int minute, int second = 0) {
  const auto seconds = to_utc(with_offset(naive(year, month, day, hour, minute, second), 0), "");
  REQUIRE(seconds.has_value());
  return *seconds;
}

}  // namespace

TEST_CASE("to_utc applies the time's own offset", "[clinical][time]") {
  CHECK(to_utc(with_offset(naive(1970, 1, 1, 0, 0), 0), "") == 0);
  CHECK(to_utc(with_offset(naive(2000, 2, 29, 23, 59, 59), 0), "") == 951868799);
  // 20240921081500-0400 (a_qdx_01.hl7 OBR-7) is 2024-09-21T12:15:00Z.
  CHECK(to_utc(with_offset(naive(2024, 9, 21, 8, 15), -240), "") == 1726920900);
  CHECK(to_utc(with_offset(naive(2024, 9, 21, 17, 45), 330), "") == 1726920900);     // +0530
  CHECK(to_utc(with_offset(naive(2024, 9, 22, 1, 15), 13 * 60), "") == 1726920900);  // +1300
  // The offset wins over the zone, which is then not even looked up.
  CHECK(to_utc(with_offset(naive(2024, 9, 21, 8, 15), -240), "Europe/Berlin") == 1726920900);
  CHECK(to_utc(with_offset(naive(2024, 9, 21, 8, 15), -240), "Not/AZone") == 1726920900);
  // +-18:00 is the widest offset accepted.
  CHECK(to_utc(with_offset(naive(2024, 9, 21, 12, 15), 18 * 60), "") == 1726920900 - 18 * 3600);
  CHECK_FALSE(to_utc(with_offset(naive(2024, 9, 21, 12, 15), 18 * 60 + 1), "").has_value());
  CHECK_FALSE(to_utc(with_offset(naive(2024, 9, 21, 12, 15), -18 * 60 - 1), "").has_value());
}

TEST_CASE("to_utc reads a naive time as local time in the sender's IANA zone", "[clinical][time]") {
  SECTION("America/New_York in winter is UTC-5, in summer UTC-4") {
    CHECK(to_utc(naive(2025, 1, 15, 8, 30), "America/New_York") == utc(2025, 1, 15, 13, 30));
    CHECK(to_utc(naive(2025, 7, 15, 8, 30), "America/New_York") == utc(2025, 7, 15, 12, 30));
  }
  SECTION("Europe/Berlin is UTC+1 in winter and UTC+2 in summer") {
    CHECK(to_utc(naive(2025, 1, 20, 8, 0), "Europe/Berlin") == utc(2025, 1, 20, 7, 0));
    CHECK(to_utc(naive(2024, 10, 9, 11, 30), "Europe/Berlin") == utc(2024, 10, 9, 9, 30));
  }
  SECTION("America/Phoenix keeps UTC-7 all year") {
    CHECK(to_utc(naive(2025, 1, 15, 8, 30), "America/Phoenix") == utc(2025, 1, 15, 15, 30));
    CHECK(to_utc(naive(2025, 7, 15, 8, 30), "America/Phoenix") == utc(2025, 7, 15, 15, 30));
  }
  SECTION("America/Chicago, America/Denver and Europe/London of the corpus") {
    CHECK(to_utc(naive(2025, 3, 15, 8, 30), "America/Chicago") == utc(2025, 3, 15, 13, 30));
    CHECK(to_utc(naive(2025, 5, 31, 8, 10), "America/Denver") == utc(2025, 5, 31, 14, 10));
    CHECK(to_utc(naive(2025, 6, 1, 10, 0), "Europe/London") == utc(2025, 6, 1, 9, 0));
    CHECK(to_utc(naive(2025, 12, 1, 10, 0), "Europe/London") == utc(2025, 12, 1, 10, 0));
  }
  SECTION("UTC and a link name") {
    CHECK(to_utc(naive(2025, 7, 15, 8, 30), "UTC") == utc(2025, 7, 15, 8, 30));
    CHECK(to_utc(naive(2025, 7, 15, 8, 30), "US/Eastern") == utc(2025, 7, 15, 12, 30));
  }
}

TEST_CASE("to_utc resolves a DST gap and overlap as date::choose::earliest", "[clinical][time]") {
  SECTION("New York spring forward, 2025-03-09 02:00 EST -> 03:00 EDT: the gap is the change") {
    CHECK(to_utc(naive(2025, 3, 9, 1, 59), "America/New_York") == utc(2025, 3, 9, 6, 59));
    CHECK(to_utc(naive(2025, 3, 9, 2, 0), "America/New_York") == utc(2025, 3, 9, 7, 0));
    CHECK(to_utc(naive(2025, 3, 9, 2, 30), "America/New_York") == utc(2025, 3, 9, 7, 0));
    CHECK(to_utc(naive(2025, 3, 9, 2, 59, 59), "America/New_York") == utc(2025, 3, 9, 7, 0));
    CHECK(to_utc(naive(2025, 3, 9, 3, 0), "America/New_York") == utc(2025, 3, 9, 7, 0));
    CHECK(to_utc(naive(2025, 3, 9, 3, 30), "America/New_York") == utc(2025, 3, 9, 7, 30));
  }
  SECTION("New York fall back, 2025-11-02 02:00 EDT -> 01:00 EST: the first 01:30 is taken") {
    CHECK(to_utc(naive(2025, 11, 2, 0, 59), "America/New_York") == utc(2025, 11, 2, 4, 59));
    CHECK(to_utc(naive(2025, 11, 2, 1, 30), "America/New_York") == utc(2025, 11, 2, 5, 30));
    CHECK(to_utc(naive(2025, 11, 2, 2, 0), "America/New_York") == utc(2025, 11, 2, 7, 0));
  }
  SECTION("Europe/Berlin, 2025-03-30 02:30 does not exist and 2025-10-26 02:30 happens twice") {
    CHECK(to_utc(naive(2025, 3, 30, 2, 30), "Europe/Berlin") == utc(2025, 3, 30, 1, 0));
    CHECK(to_utc(naive(2025, 10, 26, 2, 30), "Europe/Berlin") == utc(2025, 10, 26, 0, 30));
  }
}

TEST_CASE("to_utc refuses a naive time without a known zone and an impossible date",
          "[clinical][time]") {
  CHECK_FALSE(to_utc(naive(2025, 1, 15, 8, 30), "").has_value());
  CHECK_FALSE(to_utc(naive(2025, 1, 15, 8, 30), "Mars/Olympus_Mons").has_value());
  CHECK_FALSE(to_utc(naive(2025, 1, 15, 8, 30), "america/new_york").has_value());
  CHECK_FALSE(to_utc(naive(2025, 1, 15, 8, 30), "EST5EDT,M3.2.0,M11.1.0").has_value());
  CHECK_FALSE(to_utc(DateTime{}, "UTC").has_value());  // empty
  for (const DateTime& bad :
       {naive(2025, 2, 29, 8, 0), naive(2025, 2, 30, 8, 0), naive(2025, 4, 31, 8, 0),
        naive(2025, 13, 1, 8, 0), naive(2025, 0, 1, 8, 0), naive(2025, 1, 0, 8, 0),
        naive(2025, 1, 1, 24, 0), naive(2025, 1, 1, 8, 60), naive(2025, 1, 1, 8, 0, 61),
        naive(0, 1, 1, 8, 0), naive(10000, 1, 1, 8, 0), naive(-1, 1, 1, 0, 0)}) {
    CAPTURE(bad.year, bad.month, bad.day, bad.hour, bad.minute, bad.second);
    CHECK_FALSE(to_utc(with_offset(bad, 0), "").has_value());
    CHECK_FALSE(to_utc(bad, "UTC").has_value());
  }
}

TEST_CASE("to_utc keeps a leap second and reads partial precision as the start of the period",
          "[clinical][time]") {
  CHECK(to_utc(with_offset(naive(2016, 12, 31, 23, 59, 60), 0), "") == utc(2017, 1, 1, 0, 0));
  CHECK(to_utc(naive(2024, 2, 29, 0, 0), "UTC") == utc(2024, 2, 29, 0, 0));
  DateTime day_only = naive(2024, 5, 3, 0, 0);
  day_only.precision = DateTime::Precision::day;
  CHECK(to_utc(day_only, "Europe/Berlin") == utc(2024, 5, 2, 22, 0));
  DateTime with_fraction = naive(2024, 5, 3, 10, 0, 5);
  with_fraction.nanosecond = 999'999'999;
  with_fraction.precision = DateTime::Precision::fraction;
  CHECK(to_utc(with_fraction, "UTC") == utc(2024, 5, 3, 10, 0, 5));  // fractions are dropped
}
