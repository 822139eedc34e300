// SPDX-License-Identifier: Apache-2.0
// Tests of parse_hl7_timestamp (HL7 TS/DTM) and looks_like_hl7.
#include <array>
#include <catch2/catch.hpp>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

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

TEST_CASE("parse_hl7_timestamp agrees with a digit-by-digit reading on near-valid times",
          "[parsers][hl7][time]") {
  // The usual 14-digit form is read eight digits at a time; this reads digit by digit.
  const auto reference = [](std::string_view t) -> std::optional<DateTime> {
    while (!t.empty() && t.front() == ' ') {
      t.remove_prefix(1);
    }
    while (!t.empty() && t.back() == ' ') {
      t.remove_suffix(1);
    }
    const auto digit = [&t](std::size_t i) { return i < t.size() && t[i] >= '0' && t[i] <= '9'; };
    const auto number = [&t](std::size_t at) { return (t[at] - '0') * 10 + (t[at + 1] - '0'); };
    std::size_t n = 0;
    while (digit(n)) {
      ++n;
    }
    if (n < 4 || n > 14 || n % 2 != 0) {
      return std::nullopt;
    }
    DateTime d = make(number(0) * 100 + number(2), n > 4 ? number(4) : 1, n > 6 ? number(6) : 1,
                      n > 8 ? number(8) : 0, n > 10 ? number(10) : 0, n > 12 ? number(12) : 0, 0,
                      static_cast<P>(static_cast<int>(P::year) + static_cast<int>(n - 4) / 2));
    const bool leap = (d.year % 4 == 0 && d.year % 100 != 0) || d.year % 400 == 0;
    const std::array<int, 12> days = {31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (d.month < 1 || d.month > 12 || d.day < 1 ||
        d.day > days[static_cast<std::size_t>(d.month - 1)] || d.hour > 23 || d.minute > 59 ||
        d.second > 60) {
      return std::nullopt;
    }
    std::size_t pos = n;
    if (pos < t.size() && t[pos] == '.') {
      std::size_t k = 0;
      while (digit(pos + 1 + k)) {
        ++k;
      }
      if (n != 14 || k == 0 || k > 9) {
        return std::nullopt;
      }
      int nanos = 0;
      for (std::size_t i = 0; i < 9; ++i) {
        nanos = nanos * 10 + (i < k ? t[pos + 1 + i] - '0' : 0);
      }
      d.nanosecond = nanos;
      d.precision = P::fraction;
      pos += 1 + k;
    }
    if (pos < t.size() && (t[pos] == '+' || t[pos] == '-')) {
      if (t.size() != pos + 5 || !digit(pos + 1) || !digit(pos + 2) || !digit(pos + 3) ||
          !digit(pos + 4) || number(pos + 1) > 14 || number(pos + 3) > 59) {
        return std::nullopt;
      }
      d = with_offset(d, (t[pos] == '-' ? -1 : 1) * (number(pos + 1) * 60 + number(pos + 3)));
      pos = t.size();
    }
    return pos == t.size() ? std::optional<DateTime>(d) : std::nullopt;
  };
  // Parts at and around their limits, a stray byte anywhere, and every kind of suffix.
  using List = std::vector<std::string_view>;
  const List years = {"2024", "1900", "2000", "2023", "0000", "9999"};
  const List months = {"00", "01", "02", "09", "10", "12", "13", "99"};
  const List days = {"00", "01", "28", "29", "30", "31", "32"};
  const List hours = {"00", "09", "23", "24"};
  const List sixty = {"00", "30", "59", "60", "61"};
  const List suffixes = {"",       ".5",    ".123456789", ".1234567890", ".",
                         "-0500",  "+1400", "+1500",      "-0460",       "-05",
                         "-05000", "1",     "x",          " ",           "Z"};
  const std::string_view strays = "0/:9a \x80";
  std::mt19937 rng(1303);
  const auto pick = [&rng](const List& list) { return std::string(list[rng() % list.size()]); };
  for (int round = 0; round < 20000; ++round) {
    std::string t =
        pick(years) + pick(months) + pick(days) + pick(hours) + pick(sixty) + pick(sixty);
    t.resize(rng() % 4 == 0 ? 4 + 2 * (rng() % 6) : 14);  // every precision
    if (rng() % 3 == 0) {
      t[rng() % t.size()] = strays[rng() % strays.size()];
    }
    t += pick(suffixes);
    // Alone in a buffer of its exact size: a sanitizer build catches a read past the end.
    const std::vector<char> buffer(t.begin(), t.end());
    const std::string_view text(buffer.data(), buffer.size());
    CAPTURE(t);
    REQUIRE(parse_hl7_timestamp(text) == reference(text));
  }
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
