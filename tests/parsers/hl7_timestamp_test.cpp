// SPDX-License-Identifier: Apache-2.0
// Tests of parse_hl7_timestamp (HL7 TS/DTM) and looks_like_hl7.
#include <catch2/catch.hpp>
#include <optional>
#include <string_view>

#include "parsers/hl7_parser.hpp"

namespace {

using labwatch::parsers::DateTime;
using labwatch::parsers::parse_hl7_timestamp;
using P = DateTime::Precision;

DateTime make(int y, int mo, int d, int h, int mi, int s, int ns, P p) {
  DateTime t;
  t.year = y;
  t.month = mo;
  t.day = d;
  t.hour = h;
  t.minute = mi;
  t.second = s;
  t.nanosecond = ns;
  t.precision = p;
  return t;
}

DateTime with_offset(DateTime t, int minutes) {
  t.has_offset = true;
  t.offset_minutes = minutes;
  return t;
}

}  // namespace

TEST_CASE("parse_hl7_timestamp reads every precision", "[parsers][hl7][time]") {
  CHECK(parse_hl7_timestamp("2024") == make(2024, 1, 1, 0, 0, 0, 0, P::year));
  CHECK(parse_hl7_timestamp("202403") == make(2024, 3, 1, 0, 0, 0, 0, P::month));
  CHECK(parse_hl7_timestamp("20240315") == make(2024, 3, 15, 0, 0, 0, 0, P::day));
  CHECK(parse_hl7_timestamp("2024031508") == make(2024, 3, 15, 8, 0, 0, 0, P::hour));
  CHECK(parse_hl7_timestamp("202403150830") == make(2024, 3, 15, 8, 30, 0, 0, P::minute));
  CHECK(parse_hl7_timestamp("20240315083012") == make(2024, 3, 15, 8, 30, 12, 0, P::second));
  CHECK(parse_hl7_timestamp("20240315083012.5") ==
        make(2024, 3, 15, 8, 30, 12, 500'000'000, P::fraction));
  CHECK(parse_hl7_timestamp("20240315083012.1234") ==
        make(2024, 3, 15, 8, 30, 12, 123'400'000, P::fraction));
  CHECK(parse_hl7_timestamp("20240315083012.123456789") ==
        make(2024, 3, 15, 8, 30, 12, 123'456'789, P::fraction));
  CHECK(parse_hl7_timestamp(" 20240315 ") == make(2024, 3, 15, 0, 0, 0, 0, P::day));
}

TEST_CASE("parse_hl7_timestamp keeps an offset and leaves naive times naive",
          "[parsers][hl7][time]") {
  const auto naive = parse_hl7_timestamp("20250315083000");
  REQUIRE(naive);
  CHECK_FALSE(naive->has_offset);
  CHECK(naive->offset_minutes == 0);
  CHECK(parse_hl7_timestamp("20240921081500-0400") ==
        with_offset(make(2024, 9, 21, 8, 15, 0, 0, P::second), -240));
  CHECK(parse_hl7_timestamp("20240921081500+0530") ==
        with_offset(make(2024, 9, 21, 8, 15, 0, 0, P::second), 330));
  CHECK(parse_hl7_timestamp("20240921081500.25-0000") ==
        with_offset(make(2024, 9, 21, 8, 15, 0, 250'000'000, P::fraction), 0));
  CHECK(parse_hl7_timestamp("202409210815-0700") ==
        with_offset(make(2024, 9, 21, 8, 15, 0, 0, P::minute), -420));
  CHECK(parse_hl7_timestamp("20240921+0100") ==
        with_offset(make(2024, 9, 21, 0, 0, 0, 0, P::day), 60));
}

TEST_CASE("parse_hl7_timestamp refuses what is not a real time", "[parsers][hl7][time]") {
  const std::string_view bad[] = {
      "",
      "   ",
      "202",
      "20240",
      "2024031",
      "20241301",
      "20240001",
      "20240230",
      "19000229",
      "20240431",
      "2024031524",
      "202403150860",
      "20240315083061",
      "20240315.5",
      "20240315083012.",
      "20240315083012.1234567890",
      "20240315083000-04",
      "20240315083000-04000",
      "20240315083000+1500",
      "20240315083000-0460",
      "20240315083000Z",
      "2024-03-15",
      "2024031508300x",
      "x2024",
      "20240315083000 -0400",
  };
  for (const std::string_view text : bad) {
    CAPTURE(text);
    CHECK_FALSE(parse_hl7_timestamp(text).has_value());
  }
  CHECK(parse_hl7_timestamp("20240229") == make(2024, 2, 29, 0, 0, 0, 0, P::day));
  CHECK(parse_hl7_timestamp("20000229") == make(2000, 2, 29, 0, 0, 0, 0, P::day));
  CHECK(parse_hl7_timestamp("20161231235960") == make(2016, 12, 31, 23, 59, 60, 0, P::second));
}

TEST_CASE("looks_like_hl7 recognises the start of an HL7 file", "[parsers][hl7]") {
  using labwatch::parsers::looks_like_hl7;
  CHECK(looks_like_hl7("MSH|^~\\&|LAB"));
  CHECK(looks_like_hl7("\xEF\xBB\xBFMSH|^~\\&"));
  CHECK(looks_like_hl7("\x0bMSH|^~\\&"));
  CHECK(looks_like_hl7("\r\n\r\nMSH$"));
  CHECK(looks_like_hl7("FHS|^~\\&|LIS"));
  CHECK(looks_like_hl7("BHS|^~\\&|LIS"));
  CHECK_FALSE(looks_like_hl7(""));
  CHECK_FALSE(looks_like_hl7("MSH"));
  CHECK_FALSE(looks_like_hl7("MSHX|"));
  CHECK_FALSE(looks_like_hl7("PID|1"));
  CHECK_FALSE(looks_like_hl7("patient_id,last_name\n"));
  CHECK_FALSE(looks_like_hl7("msh|^~\\&"));
}
