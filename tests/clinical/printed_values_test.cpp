// SPDX-License-Identifier: Apache-2.0
// Tests of how config numbers, printed reference ranges and the lab's flags are read.
#include <catch2/catch.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "clinical/lab_range.hpp"
#include "clinical/normalize.hpp"

namespace {

using labwatch::clinical::LabFlag;
using labwatch::clinical::parse_decimal;
using labwatch::clinical::RangeProblem;
using labwatch::clinical::read_lab_flag;
using labwatch::clinical::read_printed_range;
using labwatch::parsers::DecimalMark;

constexpr double kAbsent = -999;

// {low, high} (kAbsent for an absent bound), or the problem when the text is not a usable range.
struct Read {
  double low = kAbsent;
  double high = kAbsent;
  std::string unit;
  RangeProblem problem = RangeProblem::none;
  friend bool operator==(const Read&, const Read&) = default;
};

Read range_of(std::string_view text, char sex = 'F', DecimalMark mark = DecimalMark::point) {
  const auto reading = read_printed_range(text, mark, true, sex);
  if (!reading.range) {
    return Read{kAbsent, kAbsent, "", reading.problem};
  }
  return Read{reading.range->low.value_or(kAbsent), reading.range->high.value_or(kAbsent),
              reading.range->unit, RangeProblem::none};
}

Read bounds(double low, double high, std::string unit = "") {
  return Read{low, high, std::move(unit), RangeProblem::none};
}
Read problem(RangeProblem why) { return Read{kAbsent, kAbsent, "", why}; }

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
  CHECK_FALSE(parse_decimal(std::string(70, '9'), false).has_value());
  CHECK_FALSE(parse_decimal("7,5", false).has_value());
  for (const char* bad : {"", "+", "-", ".", "1e3", "inf", "nan", "0x10", "1.2.3", "1,2.3", " 1",
                          "1 ", "--1", "+-1", "1-"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_decimal(bad, true).has_value());
  }
}

TEST_CASE("read_printed_range reads every printed shape", "[clinical][values]") {
  CHECK(range_of("13-150") == bounds(13, 150));
  CHECK(range_of("30 - 400") == bounds(30, 400));
  CHECK(range_of("0.00-1.50") == bounds(0, 1.5));
  CHECK(range_of("13,0-150,0", 'F', DecimalMark::comma) == bounds(13, 150));
  CHECK(range_of("-1.0-2.0") == bounds(-1, 2));
  CHECK(range_of("-3--1") == bounds(-3, -1));
  CHECK(range_of("4.2\xE2\x80\x93"
                 "6.8") == bounds(4.2, 6.8));  // en dash
  CHECK(range_of("4.2 \xE2\x80\x93 6.8") == bounds(4.2, 6.8));
  CHECK(range_of("5-5") == bounds(5, 5));
  CHECK(range_of(" 16-232 ") == bounds(16, 232));
  CHECK(range_of("4.3 to 6.2") == bounds(4.3, 6.2));
  CHECK(range_of("4.3 TO 6.2") == bounds(4.3, 6.2));
  CHECK(range_of("(13-150)") == bounds(13, 150));
  CHECK(range_of("4.0-6.4 mg/dL") == bounds(4.0, 6.4, "mg/dL"));
  CHECK(range_of("822-1,571") == bounds(822, 1571));
  CHECK(range_of(">5.4") == bounds(5.4, kAbsent));
  CHECK(range_of(">= 906") == bounds(906, kAbsent));
  CHECK(range_of("\xE2\x89\xA5"
                 "4.0") == bounds(4.0, kAbsent));  // ≥
  CHECK(range_of("<11.4") == bounds(kAbsent, 11.4));
  CHECK(range_of("<=2.20") == bounds(kAbsent, 2.2));
  CHECK(range_of("<0.50 IU/mL") == bounds(kAbsent, 0.5, "IU/mL"));
  CHECK(range_of("< 3,0", 'F', DecimalMark::comma) == bounds(kAbsent, 3));
}

TEST_CASE("read_printed_range picks a sex-specific range by the patient's sex",
          "[clinical][values]") {
  CHECK(range_of("F: 822-1571", 'F') == bounds(822, 1571));
  CHECK(range_of("F: 822-1571", 'M') == problem(RangeProblem::sex_unknown));
  CHECK(range_of("M: 70-380 F: 15-150", 'M') == bounds(70, 380));
  CHECK(range_of("M: 70-380 F: 15-150", 'F') == bounds(15, 150));
  CHECK(range_of("M: 70-380; F: 15-150", 'F') == bounds(15, 150));
  CHECK(range_of("Male: 70-380 Female: 15-150", 'F') == bounds(15, 150));
  CHECK(range_of("M: 70-380~F: 15-150", 'M') == bounds(70, 380));
  CHECK(range_of("M: 70-380 F: 15-150", 'U') == problem(RangeProblem::sex_unknown));
  CHECK(range_of("adult M: 70-380", 'M') == problem(RangeProblem::not_a_range));
  CHECK(range_of("13-150~13-150") == bounds(13, 150));
  CHECK(range_of("13-150~20-200") == problem(RangeProblem::not_a_range));
}

TEST_CASE("read_printed_range refuses an empty, garbled or ambiguous range", "[clinical][values]") {
  CHECK(range_of("") == problem(RangeProblem::not_printed));
  CHECK(range_of("  ") == problem(RangeProblem::not_printed));
  for (const char* bad : {"see note", "13-", "-150", "13 150", "13--150", "150-13", "13-150-200",
                          ">", "<=", "> x", "1.2.3-4", "13-150)", "Negative"}) {
    CAPTURE(bad);
    CHECK(range_of(bad) == problem(RangeProblem::not_a_range));
  }
  CHECK(range_of("822-1,571", 'F', DecimalMark::unknown) ==
        problem(RangeProblem::ambiguous_number));
}

TEST_CASE("read_lab_flag reads table 0078 and the words exports print", "[clinical][values]") {
  CHECK(read_lab_flag("") == LabFlag::none);
  CHECK(read_lab_flag("N") == LabFlag::normal);
  for (const char* low : {"L", "LL", "<", "low", "Low", "LU"}) {
    CAPTURE(low);
    CHECK(read_lab_flag(low) == LabFlag::low);
  }
  for (const char* high : {"H", "HH", ">", "HIGH", "HU", " H "}) {
    CAPTURE(high);
    CHECK(read_lab_flag(high) == LabFlag::high);
  }
  CHECK(read_lab_flag("A") == LabFlag::abnormal);
  CHECK(read_lab_flag("AA") == LabFlag::abnormal);
  CHECK(read_lab_flag("L~H") == LabFlag::abnormal);
  CHECK(read_lab_flag("H~A") == LabFlag::high);
  CHECK(read_lab_flag("S") == LabFlag::none);  // susceptible: nothing of the value's side
  CHECK(read_lab_flag("POS") == LabFlag::none);
}
