// SPDX-License-Identifier: Apache-2.0
// Tests of reading numbers as labs print them: decimal marks, grouping, and a file's evidence.
#include "parsers/lab_numbers.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <string_view>

namespace {

using labwatch::parsers::DecimalMark;
using labwatch::parsers::MarkEvidence;
using labwatch::parsers::NumberProblem;
using labwatch::parsers::read_lab_number;

struct Case {
  const char* text;
  DecimalMark mark;
  bool point_is_standard;
  double value;  // when read
  int decimals;
};

DecimalMark evidence_of(std::initializer_list<std::string_view> texts) {
  MarkEvidence evidence;
  for (const std::string_view text : texts) {
    evidence.add(text);
  }
  return evidence.mark();
}

}  // namespace

TEST_CASE("read_lab_number reads plain, grouped and censored-free numbers", "[parsers][numbers]") {
  constexpr DecimalMark U = DecimalMark::unknown;
  constexpr DecimalMark P = DecimalMark::point;
  constexpr DecimalMark C = DecimalMark::comma;
  const Case cases[] = {
      {"80", U, false, 80, 0},
      {"7.5", U, false, 7.5, 1},
      {"7,5", U, false, 7.5, 1},
      {"0,57", U, false, 0.57, 2},
      {"+5", U, false, 5, 0},
      {"-12", U, false, -12, 0},
      {".5", U, false, 0.5, 1},
      {"5.", U, false, 5, 0},
      {"1,050", P, false, 1050, 0},
      {"1,050", C, false, 1.05, 3},
      {"1.050", C, false, 1050, 0},
      {"1.050", P, false, 1.05, 3},
      {"1.050", U, true, 1.05, 3},
      {"1,234.5", U, false, 1234.5, 1},
      {"1.234,5", U, false, 1234.5, 1},
      {"1,234,567", U, false, 1234567, 0},
      {"1.234.567", U, false, 1234567, 0},
      {"0,123", U, false, 0.123, 3},
      {"1234,567", U, false, 1234.567, 3},
      {"12,3456", U, false, 12.3456, 4},
      {"0.1234567890123", U, false, 0.1234567890123, 13},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    const auto reading = read_lab_number(c.text, c.mark, c.point_is_standard);
    REQUIRE(reading.number.has_value());
    CHECK(reading.number->value == c.value);
    CHECK(reading.number->decimals == c.decimals);
  }
}

TEST_CASE("read_lab_number refuses what is ambiguous or not a number", "[parsers][numbers]") {
  for (const char* ambiguous : {"1,050", "12,345", "999,999"}) {
    CAPTURE(ambiguous);
    CHECK(read_lab_number(ambiguous, DecimalMark::unknown, true).problem ==
          NumberProblem::ambiguous);
  }
  CHECK(read_lab_number("1.050", DecimalMark::unknown, false).problem == NumberProblem::ambiguous);
  CHECK(read_lab_number("1,234.5", DecimalMark::comma, false).problem == NumberProblem::ambiguous);
  CHECK(read_lab_number("1.234,5", DecimalMark::point, false).problem == NumberProblem::ambiguous);
  CHECK(read_lab_number("1,234,567", DecimalMark::comma, false).problem ==
        NumberProblem::ambiguous);
  for (const char* bad :
       {"",       "   ",       "TNP",       "pending", "5-10", "1 234", "<5",
        "=5",     "5<",        "5 mg",      "~5",      "1e3",  "NaN",   "Infinity",
        "1,23,4", "0,123,456", "1.234,5,6", "--1",     "+-1",  ".",     ","}) {
    CAPTURE(bad);
    const auto reading = read_lab_number(bad, DecimalMark::point, true);
    CHECK_FALSE(reading.number.has_value());
    CHECK(reading.problem == NumberProblem::not_a_number);
  }
  const std::string too_long(70, '9');  // longer than any lab value
  CHECK_FALSE(read_lab_number(too_long, DecimalMark::point, true).number.has_value());
}

TEST_CASE("MarkEvidence learns the decimal mark only from numbers read one way",
          "[parsers][numbers]") {
  CHECK(evidence_of({"45,2"}) == DecimalMark::comma);
  CHECK(evidence_of({"13,0-150,0"}) == DecimalMark::comma);
  CHECK(evidence_of({"45.2"}) == DecimalMark::point);
  CHECK(evidence_of({"1,234.5"}) == DecimalMark::point);
  CHECK(evidence_of({"1.234,5"}) == DecimalMark::comma);
  CHECK(evidence_of({"1,234,567"}) == DecimalMark::point);
  CHECK(evidence_of({"1,234", "1.234", "80", "822-1,571"}) == DecimalMark::unknown);
  CHECK(evidence_of({"45,2", "45.2"}) == DecimalMark::unknown);  // contradicts itself
  CHECK(evidence_of({"2025.03.04"}) == DecimalMark::unknown);    // a date groups nothing
  CHECK(evidence_of({"Ref.: 13,0-150,0."}) == DecimalMark::comma);
  CHECK(evidence_of({"0.123"}) == DecimalMark::point);
}
