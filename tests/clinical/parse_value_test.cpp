// SPDX-License-Identifier: Apache-2.0
// Tests of how printed numbers, censored values and reference ranges are read.
#include <catch2/catch.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "clinical/normalize.hpp"

namespace {

using labwatch::clinical::parse_decimal;
using labwatch::clinical::parse_reference_range;
using labwatch::clinical::parse_value;

// {value, comparator}, or {-999, "none"} when the text is not a value.
std::pair<double, std::string> value_of(std::string_view text) {
  const auto parsed = parse_value(text);
  if (!parsed) {
    return {-999, "none"};
  }
  return {parsed->value, parsed->comparator};
}

// The bounds, -999 for an absent one; {-1000, -1000} when the text is not a range.
std::pair<double, double> range_of(std::string_view text) {
  const auto range = parse_reference_range(text);
  if (!range) {
    return {-1000, -1000};
  }
  return {range->low.value_or(-999), range->high.value_or(-999)};
}

}  // namespace

TEST_CASE("parse_decimal reads one plain number exactly", "[clinical][values]") {
  CHECK(parse_decimal("7.5", false) == 7.5);
  CHECK(parse_decimal("-12", false) == -12.0);
  CHECK(parse_decimal("+3", false) == 3.0);
  CHECK(parse_decimal(".5", false) == 0.5);
  CHECK(parse_decimal("5.", false) == 5.0);
  CHECK(parse_decimal("0.445038", false) == 0.445038);
  CHECK(parse_decimal("7,5", true) == 7.5);
  CHECK(parse_decimal(std::string(60, '9'), false) == Approx(1e60));
  CHECK_FALSE(parse_decimal(std::string(70, '9'), false).has_value());  // longer than any value
  CHECK_FALSE(parse_decimal("7,5", false).has_value());
  for (const char* bad : {"", "+", "-", ".", "1e3", "inf", "nan", "0x10", "1.2.3", "1,2.3", " 1",
                          "1 ", "--1", "+-1", "1-"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_decimal(bad, true).has_value());
  }
}

TEST_CASE("parse_value reads numbers with a point or a comma", "[clinical][values]") {
  CHECK(value_of("80") == std::pair<double, std::string>{80, ""});
  CHECK(value_of("7.5") == std::pair<double, std::string>{7.5, ""});
  CHECK(value_of("7,5") == std::pair<double, std::string>{7.5, ""});
  CHECK(value_of("0,57") == std::pair<double, std::string>{0.57, ""});
  CHECK(value_of("  13.6 ") == std::pair<double, std::string>{13.6, ""});
  CHECK(value_of("+5") == std::pair<double, std::string>{5, ""});
  CHECK(value_of("-12") == std::pair<double, std::string>{-12, ""});      // read; refused later
  CHECK(value_of("1,234") == std::pair<double, std::string>{1.234, ""});  // a lone comma is decimal
  // Precision is kept: the double nearest the decimal text, not a rounded one.
  CHECK(parse_value("0.1234567890123")->value == 0.1234567890123);
  CHECK(parse_value("1,1")->value == 1.1);
}

TEST_CASE("parse_value reads a leading comparator, with or without a space", "[clinical][values]") {
  CHECK(value_of("<5") == std::pair<double, std::string>{5, "<"});
  CHECK(value_of(">2000") == std::pair<double, std::string>{2000, ">"});
  CHECK(value_of("<0.2") == std::pair<double, std::string>{0.2, "<"});
  CHECK(value_of("<0,2") == std::pair<double, std::string>{0.2, "<"});
  CHECK(value_of("<=3.0") == std::pair<double, std::string>{3, "<="});
  CHECK(value_of(">=906") == std::pair<double, std::string>{906, ">="});
  CHECK(value_of("< 5") == std::pair<double, std::string>{5, "<"});
  CHECK(value_of(">= 1000") == std::pair<double, std::string>{1000, ">="});
  CHECK(value_of("\xE2\x89\xA4"
                 "1.5") == std::pair<double, std::string>{1.5, "<="});  // ≤1.5
  CHECK(value_of("\xE2\x89\xA5"
                 "7") == std::pair<double, std::string>{7, ">="});  // ≥7
}

TEST_CASE("parse_value refuses what is not one number", "[clinical][values]") {
  for (const char* bad :
       {"",         "   ", "TNP", "pending",  "5-10", "1,234.5", "1.234,5", "1.234.567",
        "1 234",    "<",   "< ",  "<<5",      "=5",   "5<",      "5 mg",    "~5",
        "positive", "1e3", "NaN", "Infinity", "<>5",  "> = 5"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_value(bad).has_value());
  }
}

TEST_CASE("parse_reference_range reads every printed shape", "[clinical][values]") {
  CHECK(range_of("13-150") == std::pair<double, double>{13, 150});
  CHECK(range_of("30 - 400") == std::pair<double, double>{30, 400});
  CHECK(range_of("0.00-1.50") == std::pair<double, double>{0, 1.5});
  CHECK(range_of("13,0-150,0") == std::pair<double, double>{13, 150});
  CHECK(range_of("-1.0-2.0") == std::pair<double, double>{-1, 2});
  CHECK(range_of("-3--1") == std::pair<double, double>{-3, -1});
  CHECK(range_of("4.2\xE2\x80\x93"
                 "6.8") == std::pair<double, double>{4.2, 6.8});  // en dash
  CHECK(range_of("4.2 \xE2\x80\x93 6.8") == std::pair<double, double>{4.2, 6.8});
  CHECK(range_of("5-5") == std::pair<double, double>{5, 5});
  CHECK(range_of(" 16-232 ") == std::pair<double, double>{16, 232});
  CHECK(range_of(">5.4") == std::pair<double, double>{5.4, -999});
  CHECK(range_of(">= 906") == std::pair<double, double>{906, -999});
  CHECK(range_of("> 340") == std::pair<double, double>{340, -999});
  CHECK(range_of("<11.4") == std::pair<double, double>{-999, 11.4});
  CHECK(range_of("<=2.20") == std::pair<double, double>{-999, 2.2});
  CHECK(range_of("< 3,0") == std::pair<double, double>{-999, 3});
}

TEST_CASE("parse_reference_range refuses an empty or garbled range", "[clinical][values]") {
  for (const char* bad :
       {"", "  ", "see note", "13-", "-150", "13 150", "13--150", "150-13", "13-150-200",
        "13 to 150", ">", "<=", "> x", "13-150 ng/mL", "1.2.3-4", "(13-150)", "13-150)"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_reference_range(bad).has_value());
  }
}
