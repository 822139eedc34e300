// SPDX-License-Identifier: Apache-2.0
// Tests of the shared text helpers.
#include "parsers/text.hpp"

#include <catch2/catch.hpp>

using namespace labwatch::parsers;

TEST_CASE("trim takes spaces and tabs off both ends and nothing else", "[parsers][text]") {
  CHECK(trim(" \t 12.5 \t") == "12.5");
  CHECK(trim("a b") == "a b");
  CHECK(trim(" \t ").empty());
  CHECK(trim("\r12\n") == "\r12\n");  // line ends are the parsers' business, not blanks
  static_assert(trim("  x ") == "x");
}

TEST_CASE("lower_ascii and upper_ascii change A-Z only", "[parsers][text]") {
  CHECK(lower_ascii("MR MÜLLER-Ø 1") == "mr mÜller-Ø 1");
  CHECK(upper_ascii("mr müller 1") == "MR MüLLER 1");
  CHECK(lower_ascii("").empty());
}

TEST_CASE("is_leap_year follows the Gregorian calendar", "[parsers][text]") {
  CHECK(is_leap_year(2024));
  CHECK_FALSE(is_leap_year(2023));
  CHECK_FALSE(is_leap_year(1900));
  CHECK(is_leap_year(2000));
}

TEST_CASE("days_in_month knows February of leap years", "[parsers][text]") {
  CHECK(days_in_month(2024, 2) == 29);
  CHECK(days_in_month(1900, 2) == 28);
  CHECK(days_in_month(2026, 4) == 30);
  CHECK(days_in_month(2026, 12) == 31);
}
