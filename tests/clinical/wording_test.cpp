// SPDX-License-Identifier: Apache-2.0
// Tests of results written for people: targets, ranges, findings and shown numbers.
#include "clinical/wording.hpp"

#include <catch2/catch.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "clinical/analyte_catalogue.hpp"
#include "clinical/rules.hpp"

namespace {

using labwatch::clinical::Analyte;
using labwatch::clinical::AnalyteCatalogue;
using labwatch::clinical::describe_finding;
using labwatch::clinical::describe_range;
using labwatch::clinical::describe_target;
using labwatch::clinical::FindingFacts;
using labwatch::clinical::format_shown;
using labwatch::clinical::OptimalRule;
using labwatch::clinical::parse_optimal_rule;
using labwatch::clinical::RangeFacts;
using labwatch::clinical::RangeProblem;

OptimalRule rule(std::string_view text) {
  auto parsed = parse_optimal_rule(text);
  INFO(text);
  REQUIRE(parsed.has_value());
  return std::move(parsed).value();
}

const Analyte& analyte(std::string_view key) {
  const Analyte* found = AnalyteCatalogue::builtin().by_key(key);
  REQUIRE(found != nullptr);
  return *found;
}

}  // namespace

TEST_CASE("format_shown rounds to the lab's precision and never shows noise",
          "[clinical][wording]") {
  struct Case {
    double value;
    int decimals;
    std::string_view expected;
  };
  const Case cases[] = {
      {878.27976, 0, "878"}, {878.27976, 1, "878.3"},       {0.125, 2, "0.13"}, {2.5, 0, "3"},
      {-2.5, 0, "-3"},       {-0.0001, 2, "0.00"},          {0.25, -1, "0.25"}, {80.0, -1, "80"},
      {1.0, 1, "1.0"},       {12.3456789, -1, "12.345679"},
  };
  for (const Case& c : cases) {
    INFO(c.value << " at " << c.decimals);
    CHECK(format_shown(c.value, c.decimals) == c.expected);
  }
}

TEST_CASE("describe_target writes every rule kind for people", "[clinical][wording]") {
  struct Case {
    std::string_view rule;
    std::string_view analyte;
    std::string_view unit;
    std::optional<double> ref_low;
    std::optional<double> ref_high;
    int decimals;
    std::string_view expected;
  };
  const Case cases[] = {
      {"ge:50;ideal:gt:70", "ferritin", "ng/mL", 16, 232, 0, ">= 50 ng/mL, ideally > 70"},
      {"range:40-60", "vitamin_d_25oh", "ng/mL", 30, 100, 0, "40-60 ng/mL"},
      {"lt:1.0", "hs_crp", "mg/L", std::nullopt, 3.0, 1, "< 1.0 mg/L"},
      {"le:5", "hs_crp", "mg/L", {}, {}, -1, "<= 5 mg/L"},
      {"ge:50;le:100", "ferritin", "ng/mL", {}, {}, 0, ">= 50 ng/mL, <= 100"},
      {"ideal:gt:70", "ferritin", "ng/mL", {}, {}, 0, "ideally > 70 ng/mL"},
      {"range:-2-2", "ferritin", "mmol/L", {}, {}, 0, "-2-2 mmol/L"},
      // The lab's printed range when usable, else the catalogue's (4.2-6.8), said which.
      {"ref_upper_third", "rbc_magnesium", "mg/dL", 4.2, 6.8, 1,
       "upper third of the lab's range: >= 5.93 mg/dL"},
      {"ref_upper_third",
       "rbc_magnesium",
       "mg/dL",
       {},
       {},
       1,
       "upper third of the catalogue's range: >= 5.93 mg/dL"},
      // A one-sided printed range takes its missing bound from the catalogue.
      {"ref_upper_third",
       "rbc_magnesium",
       "mg/dL",
       4.0,
       {},
       1,
       "upper third of the catalogue's range: >= 5.87 mg/dL"},
      {"ref_upper_half", "rbc_magnesium", "mg/dL", 4.0, 6.0, 1,
       "upper half of the lab's range: >= 5.00 mg/dL"},
      {"ref_lower_half",
       "hs_crp",
       "mg/L",
       {},
       3.0,
       1,
       "lower half of the lab's range: <= 1.50 mg/L"},
      {"within_ref", "vitamin_b12", "pg/mL", 200.6, 834.9, 0,
       "within the lab's range: 201-835 pg/mL"},
      {"within_ref",
       "vitamin_b12",
       "pg/mL",
       {},
       {},
       0,
       "within the catalogue's range: 232-1245 pg/mL"},
      {"within_ref;ideal:ge:500",
       "vitamin_b12",
       "pg/mL",
       {},
       {},
       0,
       "within the catalogue's range: 232-1245 pg/mL, ideally >= 500"},
      {"", "ferritin", "ng/mL", {}, {}, 0, ""},
      {"ge:7.2", "ferritin", "1", {}, {}, 1, ">= 7.2"},  // unitless: no "1"
  };
  for (const Case& c : cases) {
    INFO(c.rule << " " << c.analyte);
    CHECK(describe_target(rule(c.rule), analyte(c.analyte), c.unit, c.ref_low, c.ref_high,
                          c.decimals) == c.expected);
  }
}

TEST_CASE("describe_range shows the canonical range with the lab's text, or why it is not used",
          "[clinical][wording]") {
  struct Case {
    std::string_view analyte;
    std::optional<double> low;
    std::optional<double> high;
    RangeProblem problem;
    std::string_view raw_range;
    std::string_view raw_unit;
    std::string_view unit;
    int decimals;
    std::string_view expected;
  };
  const Case cases[] = {
      {"vitamin_b12", 200.59476, 834.90792, RangeProblem::none, "148-616", "pmol/L", "pg/mL", 0,
       "201-835 pg/mL (lab: 148-616 pmol/L)"},
      {"ferritin", 16, 232, RangeProblem::none, "16-232", "ng/mL", "ng/mL", 0, "16-232 ng/mL"},
      {"ferritin", 16, 232, RangeProblem::none, "16 - 232", "ng/mL", "ng/mL", 0, "16-232 ng/mL"},
      {"rbc_magnesium",
       4.0,
       {},
       RangeProblem::none,
       ">=4.0",
       "mg/dL",
       "mg/dL",
       1,
       ">= 4.0 mg/dL"},  // reads the same: no second copy
      {"rbc_magnesium",
       {},
       {},
       RangeProblem::does_not_fit,
       "4.2-6.8",
       "mmol/L",
       "mg/dL",
       1,
       "4.2-6.8 mg/dL (catalogue range; lab range 4.2-6.8 mmol/L unusable: the printed range's "
       "magnitude does not fit the value's unit)"},
      {"ferritin",
       {},
       {},
       RangeProblem::not_printed,
       "",
       "ng/mL",
       "ng/mL",
       0,
       "13-150 ng/mL (catalogue range; the lab printed none)"},
      {"ferritin",
       {},
       {},
       RangeProblem::sex_unknown,
       "M: 30-400 F: 15-150",
       "ng/mL",
       "ng/mL",
       0,
       "13-150 ng/mL (catalogue range; lab range M: 30-400 F: 15-150 ng/mL unusable: "
       "the printed range is sex-specific, and none is for the patient's sex)"},
  };
  for (const Case& c : cases) {
    INFO(c.raw_range);
    const RangeFacts facts{c.low, c.high, c.problem, c.raw_range, c.raw_unit, c.unit, c.decimals};
    CHECK(describe_range(facts, analyte(c.analyte)) == c.expected);
  }
  SECTION("an analyte without a catalogue range says only why the lab's was not used") {
    Analyte bare;
    bare.key = "x";
    const RangeFacts none{{}, {}, RangeProblem::not_printed, "", "", "U/L", 0};
    CHECK(describe_range(none, bare).empty());
    const RangeFacts bad{{}, {}, RangeProblem::unit_mismatch, "1-2 g/L", "U/L", "U/L", 0};
    CHECK(describe_range(bad, bare) ==
          "lab range 1-2 g/L unusable: the printed range is in another unit than the value");
  }
}

TEST_CASE("describe_finding says the tier plainly", "[clinical][wording]") {
  const OptimalRule ferritin = rule("ge:50;ideal:gt:70");
  const OptimalRule crp = rule("lt:1.0");
  const OptimalRule crp_ideal = rule("le:3;ideal:lt:1.0");
  const OptimalRule vitamin_d = rule("range:40-60");
  const OptimalRule magnesium = rule("ref_upper_third");
  struct Case {
    const OptimalRule* rule;
    std::string_view clause;
    double value;
    std::optional<double> low;
    std::optional<double> high;
    std::string_view flags;
    std::string_view unit;
    int decimals;
    std::string_view expected;
  };
  const Case cases[] = {
      {&ferritin, "ge:50", 30, 50, {}, "", "ng/mL", 0, "below the minimum of 50"},
      {&ferritin,
       "ideal:gt:70",
       60,
       70,
       {},
       "",
       "ng/mL",
       0,
       "above the minimum, below the ideal of 70"},
      {&crp, "lt:1.0", 2.5, {}, 1.0, "", "mg/L", 1, "above the maximum of 1.0"},
      {&crp_ideal,
       "ideal:lt:1.0",
       2.5,
       {},
       1.0,
       "",
       "mg/L",
       1,
       "below the maximum, above the ideal of 1.0"},
      {&vitamin_d, "range:40-60", 30, 40, 60, "", "ng/mL", 0, "below the optimal range 40-60"},
      {&vitamin_d, "range:40-60", 80, 40, 60, "", "ng/mL", 0, "above the optimal range 40-60"},
      {&magnesium, "ref_upper_third", 5.0, 5.9333, 6.8, "", "mg/dL", 1,
       "below the upper third of the reference range (>= 5.93 mg/dL)"},
      {&ferritin, "lab_range", 850, 16, 232, "", "ng/mL", 0,
       "outside the lab's range 16-232 ng/mL"},
      {&ferritin, "lab_flag", 60, 16, 232, "H", "ng/mL", 0, "flagged high by the lab"},
      {&ferritin, "lab_flag", 60, 16, 232, "LL", "ng/mL", 0, "flagged low by the lab"},
      {&ferritin, "lab_flag", 60, 16, 232, "A", "ng/mL", 0, "flagged abnormal by the lab"},
      {&ferritin, "ge:40", 30, 40, {}, "", "ng/mL", 0, "outside the optimal target"},
      {nullptr, "ge:50", 30, 50, {}, "", "ng/mL", 0, "outside the optimal target"},
      // A trend rule says what kind of trend (its values, when given: see the next test).
      {&ferritin, "trend:falling:0.2", 30, 40, {}, "", "ng/mL", 0, "fell by more than 20 %"},
      {&ferritin, "trend:rising:2", 30, 40, {}, "", "ng/mL", 0, "outside the optimal target"},
  };
  for (const Case& c : cases) {
    INFO(c.clause << " " << c.value);
    const FindingFacts facts{c.clause, c.value, c.low, c.high, c.flags, c.unit, c.decimals};
    CHECK(describe_finding(facts, c.rule) == c.expected);
  }
}

TEST_CASE("alert_tier names the tier of an alert's rule", "[clinical][wording]") {
  using labwatch::clinical::alert_tier;
  const OptimalRule ferritin = rule("ge:50;ideal:gt:70");
  CHECK(alert_tier("ge:50", &ferritin) == "target");
  CHECK(alert_tier("ideal:gt:70", &ferritin) == "ideal");
  CHECK(alert_tier(labwatch::clinical::kLabRangeRule, &ferritin) == "lab");
  CHECK(alert_tier(labwatch::clinical::kLabFlagRule, nullptr) == "lab");
  CHECK(alert_tier("trend:falling:0.2", &ferritin) == "trend");
  // A clause the rule in force no longer holds keeps what its text says.
  CHECK(alert_tier("ideal:gt:80", &ferritin) == "ideal");
  CHECK(alert_tier("le:1.0", nullptr) == "target");
}

TEST_CASE("describe_finding names the results a trend alert rests on", "[clinical][wording]") {
  using labwatch::clinical::EvidencePoint;
  struct Case {
    std::string_view rule;
    std::vector<EvidencePoint> evidence;
    std::optional<double> low;
    std::optional<double> high;
    std::string_view expected;
  };
  const std::vector<Case> cases = {
      {"trend:falling:30:365",
       {{120, "2026-01-02"}, {78, "2026-05-03"}},
       84,
       {},
       "fell 35 % within 365 days: 120 ng/mL (2026-01-02) to 78 ng/mL (2026-05-03)"},
      {"trend:falling:0.2",
       {{100, "2026-01-02"}, {70, "2026-02-02"}},
       80,
       {},
       "fell by more than 20 %: 100 ng/mL (2026-01-02) to 70 ng/mL (2026-02-02)"},
      {"trend:consecutive:2",
       {{90, "d1"}, {80, "d2"}, {70, "d3"}},
       {},
       {},
       "2 declines in a row: 90 ng/mL (d1), 80 ng/mL (d2), 70 ng/mL (d3)"},
      {"trend:toward:10",
       {{50, ""}, {41, ""}},
       40,
       60,
       "moving toward the lower edge of the optimal band 40-60 ng/mL: 50 ng/mL to 41 ng/mL"},
      {"trend:falling:30:365", {}, 84, {}, "fell by at least 30 % within 365 days"},
  };
  for (const Case& c : cases) {
    INFO(c.rule);
    FindingFacts facts{c.rule, 0, c.low, c.high, "", "ng/mL", 0};
    facts.evidence = c.evidence;
    CHECK(describe_finding(facts, nullptr) == c.expected);
  }
}
