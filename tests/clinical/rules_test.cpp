// SPDX-License-Identifier: Apache-2.0
// Tests of optimal-target and trend rules: the grammars, every clause at and around its bounds.
#include "clinical/rules.hpp"

#include <array>
#include <catch2/catch.hpp>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "clinical/analyte_catalogue.hpp"

namespace {

using labwatch::clinical::Analyte;
using labwatch::clinical::AnalyteCatalogue;
using labwatch::clinical::Decision;
using labwatch::clinical::evaluate;
using labwatch::clinical::NormalizedResult;
using labwatch::clinical::OptimalRule;
using labwatch::clinical::parse_optimal_rule;
using labwatch::clinical::ResultStatus;
using Kind = labwatch::clinical::RuleClause::Kind;

OptimalRule rule(std::string_view text) {
  auto parsed = parse_optimal_rule(text);
  INFO(text);
  REQUIRE(parsed.has_value());
  return std::move(parsed).value();
}

std::string rule_error(std::string_view text) {
  auto parsed = parse_optimal_rule(text);
  REQUIRE_FALSE(parsed.has_value());
  return parsed.error();
}

// An analyte without a catalogue range unless one is given.
Analyte analyte_with(std::optional<double> low = std::nullopt,
                     std::optional<double> high = std::nullopt) {
  Analyte a;
  a.key = "test";
  a.canonical_unit = "u";
  a.ref_low = low;
  a.ref_high = high;
  return a;
}

NormalizedResult result_of(double value, std::optional<double> low = std::nullopt,
                           std::optional<double> high = std::nullopt) {
  NormalizedResult r;
  r.value = value;
  r.ref_low = low;
  r.ref_high = high;
  return r;
}

// The violated clause's text, or "" when the value is within target.
std::string violated(std::string_view text, double value, std::optional<double> low = std::nullopt,
                     std::optional<double> high = std::nullopt) {
  const Decision d = evaluate(result_of(value, low, high), rule(text), analyte_with());
  return d.violated ? d.rule : std::string();
}

}  // namespace

TEST_CASE("parse_optimal_rule reads every clause kind", "[clinical][rules]") {
  const OptimalRule r = rule(
      "ge:50;gt:-1.5;le:7;lt:1.0;range:6-8;within_ref;ref_upper_third;ref_lower_half;"
      "ref_upper_half;ideal:gt:70;ideal:range:-2--1");
  REQUIRE(r.clauses.size() == 11);
  CHECK(r.text ==
        "ge:50;gt:-1.5;le:7;lt:1.0;range:6-8;within_ref;ref_upper_third;ref_lower_half;"
        "ref_upper_half;ideal:gt:70;ideal:range:-2--1");
  const std::array kinds = {Kind::ge,
                            Kind::gt,
                            Kind::le,
                            Kind::lt,
                            Kind::range,
                            Kind::within_ref,
                            Kind::ref_upper_third,
                            Kind::ref_lower_half,
                            Kind::ref_upper_half,
                            Kind::gt,
                            Kind::range};
  for (std::size_t i = 0; i < r.clauses.size(); ++i) {
    CAPTURE(i);
    CHECK(r.clauses[i].kind == kinds[i]);
    CHECK(r.clauses[i].ideal == (i >= 9));
  }
  CHECK(r.clauses[0].a == 50.0);
  CHECK(r.clauses[1].a == -1.5);
  CHECK(r.clauses[3].a == 1.0);
  CHECK(r.clauses[4].a == 6.0);
  CHECK(r.clauses[4].b == 8.0);
  CHECK(r.clauses[9].text == "ideal:gt:70");
  CHECK(r.clauses[10].a == -2.0);
  CHECK(r.clauses[10].b == -1.0);
  CHECK(r.clauses[5].text == "within_ref");
}

TEST_CASE("parse_optimal_rule trims clauses and accepts an empty rule", "[clinical][rules]") {
  const OptimalRule r = rule("  ge:50 ;  ideal:gt:70 ");
  REQUIRE(r.clauses.size() == 2);
  CHECK(r.text == "ge:50 ;  ideal:gt:70");
  CHECK(r.clauses[0].text == "ge:50");
  CHECK(r.clauses[1].text == "ideal:gt:70");
  CHECK(rule("").clauses.empty());
  CHECK(rule("   ").clauses.empty());
}

TEST_CASE("parse_optimal_rule says which clause is wrong and why", "[clinical][rules]") {
  CHECK(rule_error("gx:5") == "clause 1 'gx:5': 'gx' is not a rule kind");
  CHECK(rule_error("ge:50;;lt:3") == "clause 2 is empty");
  CHECK(rule_error("ge:50;") == "clause 2 is empty");
  CHECK(rule_error("ge:") == "clause 1 'ge:': ge needs a number, not ''");
  CHECK(rule_error("ge") == "clause 1 'ge': ge needs a number, not ''");
  CHECK(rule_error("lt:1,0") == "clause 1 'lt:1,0': lt needs a number, not '1,0'");
  CHECK(rule_error("ge: 50") == "clause 1 'ge: 50': ge needs a number, not ' 50'");
  CHECK(rule_error("range:6") == "clause 1 'range:6': range needs two numbers as A-B, not '6'");
  CHECK(rule_error("range:6-") == "clause 1 'range:6-': range needs two numbers as A-B, not '6-'");
  CHECK(rule_error("range:8-6") ==
        "clause 1 'range:8-6': range 8-6 has its low bound above its high one");
  CHECK(rule_error("within_ref:5") == "clause 1 'within_ref:5': within_ref takes no argument");
  CHECK(rule_error("ideal:ideal:gt:5") ==
        "clause 1 'ideal:ideal:gt:5': 'ideal' is not a rule kind");
  CHECK(rule_error("GE:50") == "clause 1 'GE:50': 'GE' is not a rule kind");
}

TEST_CASE("evaluate judges ge, gt, le and lt at and around their threshold", "[clinical][rules]") {
  CHECK(violated("ge:50", 49.99) == "ge:50");
  CHECK(violated("ge:50", 50) == "");
  CHECK(violated("ge:50", 50.01) == "");
  CHECK(violated("gt:70", 69.99) == "gt:70");
  CHECK(violated("gt:70", 70) == "gt:70");
  CHECK(violated("gt:70", 70.01) == "");
  CHECK(violated("le:7", 6.99) == "");
  CHECK(violated("le:7", 7) == "");
  CHECK(violated("le:7", 7.01) == "le:7");
  CHECK(violated("lt:1.0", 0.99) == "");
  CHECK(violated("lt:1.0", 1.0) == "lt:1.0");
  CHECK(violated("lt:1.0", 1.01) == "lt:1.0");
  CHECK(violated("ge:0", 0) == "");
}

TEST_CASE("evaluate judges range:A-B inclusive at both ends", "[clinical][rules]") {
  CHECK(violated("range:6-8", 5.99) == "range:6-8");
  CHECK(violated("range:6-8", 6) == "");
  CHECK(violated("range:6-8", 7) == "");
  CHECK(violated("range:6-8", 8) == "");
  CHECK(violated("range:6-8", 8.01) == "range:6-8");
  CHECK(violated("range:-2--1", -2.5) == "range:-2--1");
  CHECK(violated("range:-2--1", -1.5) == "");
  const Decision d = evaluate(result_of(9.5), rule("range:6-8"), analyte_with());
  CHECK(d.violated);
  CHECK(d.target_low == 6.0);
  CHECK(d.target_high == 8.0);
  CHECK(d.value == 9.5);
}

TEST_CASE("evaluate judges within_ref against each bound that exists", "[clinical][rules]") {
  CHECK(violated("within_ref", 69.9, 70, 99) == "within_ref");
  CHECK(violated("within_ref", 70, 70, 99) == "");
  CHECK(violated("within_ref", 99, 70, 99) == "");
  CHECK(violated("within_ref", 99.1, 70, 99) == "within_ref");
  // ">5.4": no high bound, so nothing is too high.
  CHECK(violated("within_ref", 5.3, 5.4, std::nullopt) == "within_ref");
  CHECK(violated("within_ref", 5.4, 5.4, std::nullopt) == "");
  CHECK(violated("within_ref", 1e9, 5.4, std::nullopt) == "");
  // "<3.0": no low bound.
  CHECK(violated("within_ref", 0, std::nullopt, 3.0) == "");
  CHECK(violated("within_ref", 3.0, std::nullopt, 3.0) == "");
  CHECK(violated("within_ref", 3.1, std::nullopt, 3.0) == "within_ref");
  // No range at all, here or in the catalogue: nothing to check.
  CHECK(violated("within_ref", -5) == "");
}

TEST_CASE("evaluate judges ref_upper_third as low+2/3(high-low) <= v <= high",
          "[clinical][rules]") {
  // 4.2-6.8: the upper third starts at 5.9333...
  CHECK(violated("ref_upper_third", 5.93, 4.2, 6.8) == "ref_upper_third");
  CHECK(violated("ref_upper_third", 5.94, 4.2, 6.8) == "");
  CHECK(violated("ref_upper_third", 6.8, 4.2, 6.8) == "");
  CHECK(violated("ref_upper_third", 6.81, 4.2, 6.8) == "ref_upper_third");
  // 0-3: exactly 2 is on the bound.
  CHECK(violated("ref_upper_third", 1.999, 0, 3) == "ref_upper_third");
  CHECK(violated("ref_upper_third", 2, 0, 3) == "");
  CHECK(violated("ref_upper_third", 3, 0, 3) == "");
  const Decision d = evaluate(result_of(5.0, 4.0, 7.0), rule("ref_upper_third"), analyte_with());
  CHECK(d.violated);
  CHECK(d.target_low == 6.0);
  CHECK(d.target_high == 7.0);
  CHECK(d.ref_low == 4.0);
  CHECK(d.ref_high == 7.0);
  // A bound missing everywhere: cannot be judged, so not violated.
  CHECK(violated("ref_upper_third", 1, 5.0, std::nullopt) == "");
  CHECK(violated("ref_upper_third", 1, std::nullopt, 5.0) == "");
}

TEST_CASE("evaluate judges ref_upper_half as low+1/2(high-low) <= v <= high", "[clinical][rules]") {
  CHECK(violated("ref_upper_half", 1196.4, 822, 1571) == "ref_upper_half");
  CHECK(violated("ref_upper_half", 1196.5, 822, 1571) == "");
  CHECK(violated("ref_upper_half", 1571, 822, 1571) == "");
  CHECK(violated("ref_upper_half", 1571.1, 822, 1571) == "ref_upper_half");
  CHECK(violated("ref_upper_half", 10, std::nullopt, 20) == "");  // no low bound: not judged
}

TEST_CASE("evaluate judges ref_lower_half as v <= low+1/2(high-low), low defaulting to 0",
          "[clinical][rules]") {
  CHECK(violated("ref_lower_half", 0.75, 0, 1.5) == "");
  CHECK(violated("ref_lower_half", 0.76, 0, 1.5) == "ref_lower_half");
  CHECK(violated("ref_lower_half", 0, 0, 1.5) == "");  // no lower limit in the lower half
  // "<=1.50": the low bound is 0.
  CHECK(violated("ref_lower_half", 0.75, std::nullopt, 1.5) == "");
  CHECK(violated("ref_lower_half", 0.751, std::nullopt, 1.5) == "ref_lower_half");
  // 1-3: the midpoint is 2.
  CHECK(violated("ref_lower_half", 2, 1, 3) == "");
  CHECK(violated("ref_lower_half", 2.01, 1, 3) == "ref_lower_half");
  CHECK(violated("ref_lower_half", 99, 1, std::nullopt) == "");  // no high bound: not judged
  const Decision d =
      evaluate(result_of(1.0, std::nullopt, 1.5), rule("ref_lower_half"), analyte_with());
  CHECK(d.violated);
  CHECK_FALSE(d.target_low.has_value());
  CHECK(d.target_high == 0.75);
}

TEST_CASE("evaluate uses the report's range, else the catalogue's", "[clinical][rules]") {
  const Analyte catalogue_range = analyte_with(4.2, 6.8);
  const OptimalRule upper_third = rule("ref_upper_third");

  // 6.0 is in the upper third of 4.2-6.8 (from 5.93) but not of 3.6-7.5 (from 6.2).
  const Decision from_catalogue = evaluate(result_of(6.0), upper_third, catalogue_range);
  CHECK_FALSE(from_catalogue.violated);
  CHECK(from_catalogue.ref_low == 4.2);
  CHECK(from_catalogue.ref_high == 6.8);

  const Decision from_report = evaluate(result_of(6.0, 3.6, 7.5), upper_third, catalogue_range);
  CHECK(from_report.violated);
  CHECK(from_report.ref_low == 3.6);
  CHECK(from_report.ref_high == 7.5);

  // A one-sided printed range never switches a position rule off: its open side is the
  // catalogue's (3.6-6.8: the upper third starts at 5.47), and the decision says so.
  const Decision one_sided =
      evaluate(result_of(5.0, 3.6, std::nullopt), upper_third, catalogue_range);
  CHECK(one_sided.violated);
  CHECK(one_sided.range_from_catalogue);
  CHECK(one_sided.target_low == Approx(3.6 + (6.8 - 3.6) * 2.0 / 3.0));
  CHECK(one_sided.ref_low == 3.6);
  CHECK_FALSE(one_sided.ref_high.has_value());

  const Analyte& folate = *AnalyteCatalogue::builtin().by_key("serum_folate");  // 3.0 to (none)
  CHECK(evaluate(result_of(2.9), rule(folate.optimal_rule), folate).rule == "within_ref");
  CHECK_FALSE(evaluate(result_of(250), rule(folate.optimal_rule), folate).violated);
}

TEST_CASE("evaluate checks hard clauses before ideal ones, in written order", "[clinical][rules]") {
  const OptimalRule ferritin = rule("ge:50;ideal:gt:70");
  const Analyte none = analyte_with();
  CHECK(evaluate(result_of(49), ferritin, none).rule == "ge:50");
  CHECK(evaluate(result_of(50), ferritin, none).rule == "ideal:gt:70");
  CHECK(evaluate(result_of(70), ferritin, none).rule == "ideal:gt:70");
  CHECK_FALSE(evaluate(result_of(70.5), ferritin, none).violated);

  // An ideal clause written first is still judged after every hard clause.
  const OptimalRule ideal_first = rule("ideal:gt:70;ge:50;le:400");
  CHECK(evaluate(result_of(45), ideal_first, none).rule == "ge:50");
  CHECK(evaluate(result_of(450), ideal_first, none).rule == "le:400");
  CHECK(evaluate(result_of(60), ideal_first, none).rule == "ideal:gt:70");

  // Within a tier, the first clause as written wins.
  const OptimalRule two_hard = rule("lt:10;range:2-3");
  CHECK(evaluate(result_of(12), two_hard, none).rule == "lt:10");
  CHECK(evaluate(result_of(5), two_hard, none).rule == "range:2-3");
  const OptimalRule two_ideal = rule("ideal:range:2-3;ideal:lt:10");
  CHECK(evaluate(result_of(12), two_ideal, none).rule == "ideal:range:2-3");

  const Decision d = evaluate(result_of(60), ferritin, none);
  CHECK(d.target_low == 70.0);
  CHECK_FALSE(d.target_high.has_value());
}

TEST_CASE("evaluate judges a censored value by its bound and never a cancelled one",
          "[clinical][rules]") {
  NormalizedResult below_five = result_of(5.0);
  below_five.comparator = "<";
  CHECK(evaluate(below_five, rule("ge:50"), analyte_with()).rule == "ge:50");
  CHECK_FALSE(evaluate(below_five, rule("le:5"), analyte_with()).violated);
  NormalizedResult above_thousand = result_of(1000.0);
  above_thousand.comparator = ">";
  CHECK_FALSE(evaluate(above_thousand, rule("ge:50;ideal:gt:70"), analyte_with()).violated);

  NormalizedResult cancelled = result_of(0.0);
  cancelled.status = ResultStatus::cancelled;
  CHECK_FALSE(evaluate(cancelled, rule("ge:50"), analyte_with()).violated);
  NormalizedResult empty_rule = result_of(-1.0);
  CHECK_FALSE(evaluate(empty_rule, rule(""), analyte_with()).violated);
}

TEST_CASE("evaluate counts a value that only conversion noise moves off a bound as on it",
          "[clinical][rules]") {
  // 68 mg/L x 0.1 is 6.800000000000001 in binary, not 6.8; 0.57 x 100 is 56.99999999999999.
  REQUIRE(68 * 0.1 != 6.8);
  REQUIRE(0.57 * 100 != 57.0);
  CHECK(violated("le:6.8", 68 * 0.1) == "");
  CHECK(violated("within_ref", 68 * 0.1, 4.2, 6.8) == "");
  CHECK(violated("ge:57", 0.57 * 100) == "");
  CHECK(violated("gt:57", 0.57 * 100) == "gt:57");
  CHECK(violated("lt:6.8", 68 * 0.1) == "lt:6.8");
  CHECK(violated("ge:57.001", 57.0) == "ge:57.001");  // a real difference still counts
}

namespace {

using labwatch::clinical::evaluate_trend;
using labwatch::clinical::parse_trend_rule;
using labwatch::clinical::parse_trend_rules;
using labwatch::clinical::target_band;
using labwatch::clinical::TrendPoint;
using labwatch::clinical::TrendRule;

TrendRule trend(std::string_view text) {
  auto parsed = parse_trend_rule(text);
  INFO(text);
  REQUIRE(parsed.has_value());
  return std::move(parsed).value();
}

std::string trend_error(std::string_view text) {
  auto parsed = parse_trend_rules(text);
  REQUIRE_FALSE(parsed.has_value());
  return parsed.error();
}

std::vector<TrendPoint> points(std::initializer_list<double> values) {
  std::vector<TrendPoint> out;
  for (const double v : values) {
    out.push_back({v, std::nullopt, std::nullopt});
  }
  return out;
}

// The violated trend clause's text for `values` (oldest first), or "" when it holds.
std::string trend_violated(std::string_view trend_text, std::string_view target,
                           std::initializer_list<double> values) {
  const std::vector<TrendPoint> history = points(values);
  const Decision d = evaluate_trend(history, trend(trend_text), rule(target), analyte_with());
  return d.violated ? d.rule : std::string();
}

}  // namespace

TEST_CASE("parse_trend_rule reads trend:falling:F and trend:away:N", "[clinical][rules][trend]") {
  const TrendRule falling = trend(" trend:falling:0.2 ");
  CHECK(falling.kind == TrendRule::Kind::falling);
  CHECK(falling.fraction == 0.2);
  CHECK(falling.text == "trend:falling:0.2");
  CHECK(falling.window() == 2);
  const TrendRule away = trend("trend:away:3");
  CHECK(away.kind == TrendRule::Kind::away);
  CHECK(away.count == 3);
  CHECK(away.text == "trend:away:3");
  CHECK(away.window() == 3);
  CHECK(trend("trend:away:20").window() == 20);

  const auto both = parse_trend_rules("trend:falling:0.25; trend:away:2");
  REQUIRE(both.has_value());
  REQUIRE(both.value().size() == 2);
  CHECK(both.value()[0].text == "trend:falling:0.25");
  CHECK(both.value()[1].text == "trend:away:2");
  const auto none = parse_trend_rules("  ");
  REQUIRE(none.has_value());
  CHECK(none.value().empty());
}

TEST_CASE("parse_trend_rules says which clause is wrong and why", "[clinical][rules][trend]") {
  CHECK(trend_error("ge:50") ==
        "clause 1 'ge:50': 'ge:50' is not a trend rule (trend:falling:F, trend:falling:PCT:DAYS, "
        "trend:away:N, trend:consecutive:N or trend:toward:PCT)");
  CHECK(trend_error("trend:rising:0.2") ==
        "clause 1 'trend:rising:0.2': 'rising' is not a trend kind (falling, away, consecutive, "
        "toward)");
  CHECK(trend_error("trend:falling:0.2;;trend:away:3") == "clause 2 is empty");
  CHECK(trend_error("trend:falling:0") ==
        "clause 1 'trend:falling:0': trend:falling needs a fraction between 0 and 1 "
        "(exclusive), or PCT:DAYS, not '0'");
  CHECK(trend_error("trend:falling:1") ==
        "clause 1 'trend:falling:1': trend:falling needs a fraction between 0 and 1 "
        "(exclusive), or PCT:DAYS, not '1'");
  CHECK(trend_error("trend:falling:20%") ==
        "clause 1 'trend:falling:20%': trend:falling needs a fraction between 0 and 1 "
        "(exclusive), or PCT:DAYS, not '20%'");
  CHECK(trend_error("trend:falling") ==
        "clause 1 'trend:falling': trend:falling needs a fraction between 0 and 1 (exclusive), "
        "or PCT:DAYS, not ''");
  CHECK(trend_error("trend:away:1") ==
        "clause 1 'trend:away:1': trend:away needs a whole number of results from 2 to 20, not "
        "'1'");
  CHECK(trend_error("trend:away:21") ==
        "clause 1 'trend:away:21': trend:away needs a whole number of results from 2 to 20, not "
        "'21'");
  CHECK(trend_error("trend:away:2.5") ==
        "clause 1 'trend:away:2.5': trend:away needs a whole number of results from 2 to 20, "
        "not '2.5'");
}

TEST_CASE("evaluate_trend falling alerts on a drop of more than F from the result before",
          "[clinical][rules][trend]") {
  CHECK(trend_violated("trend:falling:0.2", "", {100, 79.9}) == "trend:falling:0.2");
  CHECK(trend_violated("trend:falling:0.2", "", {100, 80}) == "");  // exactly 20%: not more
  CHECK(trend_violated("trend:falling:0.2", "", {100, 120}) == "");
  // Only the result before counts: a slow slide of 15% a step never alerts at 0.2.
  CHECK(trend_violated("trend:falling:0.2", "", {100, 85, 72.25, 61.4}) == "");
  CHECK(trend_violated("trend:falling:0.2", "", {50, 100, 60}) == "trend:falling:0.2");
  CHECK(trend_violated("trend:falling:0.2", "", {79}) == "");     // nothing before it
  CHECK(trend_violated("trend:falling:0.2", "", {0, -5}) == "");  // no relative fall from 0

  const std::vector<TrendPoint> history = points({120, 60});
  const Decision d =
      evaluate_trend(history, trend("trend:falling:0.25"), rule("ge:50"), analyte_with(13, 150));
  CHECK(d.violated);
  CHECK(d.rule == "trend:falling:0.25");
  CHECK(d.value == 60);
  CHECK(d.target_low == 90);
  CHECK_FALSE(d.target_high.has_value());
  CHECK(d.ref_low == 13);
  CHECK(d.ref_high == 150);
}

TEST_CASE("evaluate_trend away alerts when each of the last N results is further from the band",
          "[clinical][rules][trend]") {
  // range:6-8: 9, 10, 11 move away above; 5, 4, 3 below; the run may start inside the band.
  CHECK(trend_violated("trend:away:3", "range:6-8", {9, 10, 11}) == "trend:away:3");
  CHECK(trend_violated("trend:away:3", "range:6-8", {5, 4, 3}) == "trend:away:3");
  CHECK(trend_violated("trend:away:3", "range:6-8", {7, 8.5, 9}) == "trend:away:3");
  CHECK(trend_violated("trend:away:3", "range:6-8", {9, 11, 10}) == "");  // turned back
  CHECK(trend_violated("trend:away:3", "range:6-8", {9, 9, 10}) == "");   // not further each time
  CHECK(trend_violated("trend:away:3", "range:6-8", {6, 7, 8}) == "");    // inside throughout
  CHECK(trend_violated("trend:away:3", "range:6-8", {10, 11}) == "");     // too few results
  // Only the last N count: an earlier return into the band does not matter.
  CHECK(trend_violated("trend:away:2", "range:6-8", {12, 7, 8.5}) == "trend:away:2");
  // The distance is absolute: from 1 below to 3 above is further.
  CHECK(trend_violated("trend:away:2", "range:6-8", {5, 11}) == "trend:away:2");
  // No target: there is no band to move away from.
  CHECK(trend_violated("trend:away:2", "", {1, 100}) == "");
  // Every clause bounds the band, ideal ones too: ferritin ge:50;ideal:gt:70 is 70 and above.
  CHECK(trend_violated("trend:away:3", "ge:50;ideal:gt:70", {69, 65, 60}) == "trend:away:3");
}

TEST_CASE("evaluate_trend away uses each result's own reference range",
          "[clinical][rules][trend]") {
  // ref_upper_third of 0-3 is 2-3 and of 0-6 is 4-6: 1.9 then 3.0 moves further out (0.1, 1.0)
  // although the value rises.
  std::vector<TrendPoint> history = {{1.9, 0.0, 3.0}, {3.0, 0.0, 6.0}};
  const Decision d =
      evaluate_trend(history, trend("trend:away:2"), rule("ref_upper_third"), analyte_with());
  CHECK(d.violated);
  CHECK(d.target_low == 4.0);
  CHECK(d.target_high == 6.0);
  // Conversion noise at a bound is distance 0, not a step away from it.
  history = {{6.8, std::nullopt, std::nullopt}, {68 * 0.1, std::nullopt, std::nullopt}};
  CHECK_FALSE(
      evaluate_trend(history, trend("trend:away:2"), rule("le:6.8"), analyte_with()).violated);
}

TEST_CASE("target_band intersects the bands of every clause", "[clinical][rules][trend]") {
  const TrendPoint point{0, 4.0, 7.0};
  const auto band = target_band(rule("ge:5;le:6.8;ref_upper_third"), analyte_with(), point);
  CHECK(band.low == 6.0);
  CHECK(band.high == 6.8);
  CHECK(band.distance(5.5) == Approx(0.5));
  CHECK(band.distance(6.5) == 0);
  CHECK(band.distance(7.0) == Approx(0.2));
  const auto open = target_band(rule("ref_upper_third"), analyte_with(), TrendPoint{0, {}, {}});
  CHECK_FALSE(open.low.has_value());
  CHECK_FALSE(open.high.has_value());
  CHECK(open.distance(-1e9) == 0);
}

TEST_CASE("target_band with the hard tiers only is the band a report shades",
          "[clinical][rules][trend]") {
  const auto& catalogue = labwatch::clinical::AnalyteCatalogue::builtin();
  const auto* ferritin = catalogue.by_key("ferritin");
  const auto* rbc_mg = catalogue.by_key("rbc_magnesium");
  const auto* figlu = catalogue.by_key("figlu");
  REQUIRE(ferritin != nullptr);
  REQUIRE(rbc_mg != nullptr);
  REQUIRE(figlu != nullptr);
  using labwatch::clinical::BandTiers;
  const auto hard = [](const char* text, const labwatch::clinical::Analyte& analyte,
                       std::optional<double> low, std::optional<double> high) {
    return target_band(rule(text), analyte, TrendPoint{0, low, high}, BandTiers::hard);
  };

  const auto ge = hard("ge:50;ideal:gt:70", *ferritin, {}, {});
  CHECK(ge.low.value() == 50);
  CHECK_FALSE(ge.high.has_value());
  // With every tier, the ideal clause raises the low bound.
  CHECK(target_band(rule("ge:50;ideal:gt:70"), *ferritin, TrendPoint{0, {}, {}}).low.value() == 70);

  const auto third = hard("ref_upper_third", *rbc_mg, 4.2, 6.8);
  CHECK(third.low.value() == Approx(4.2 + 2.0 / 3.0 * 2.6));
  CHECK(third.high.value() == Approx(6.8));
  // Without a range on the result, the catalogue's range applies.
  const auto fallback = hard("ref_upper_third", *rbc_mg, {}, {});
  REQUIRE(rbc_mg->ref_low.has_value());
  REQUIRE(rbc_mg->ref_high.has_value());
  CHECK(fallback.low.value() ==
        Approx(*rbc_mg->ref_low + 2.0 / 3.0 * (*rbc_mg->ref_high - *rbc_mg->ref_low)));

  const auto lower = hard("ref_lower_half", *figlu, {}, 2.2);
  CHECK_FALSE(lower.low.has_value());
  CHECK(lower.high.value() == Approx(1.1));

  const auto range = hard("range:6-8", *ferritin, {}, {});
  CHECK(range.low.value() == 6);
  CHECK(range.high.value() == 8);
}

// ---- trend:falling:PCT:DAYS, trend:consecutive:N, trend:toward:PCT ----------------------------

namespace {

constexpr std::int64_t kDay = 86'400;

// Points at the given days (since an epoch) with the given values, oldest first.
std::vector<TrendPoint> dated(std::initializer_list<std::pair<int, double>> day_values) {
  std::vector<TrendPoint> out;
  for (const auto& [day, value] : day_values) {
    out.push_back({value, std::nullopt, std::nullopt, kDay * day});
  }
  return out;
}

}  // namespace

TEST_CASE("parse_trend_rule reads falling:PCT:DAYS, consecutive:N and toward:PCT",
          "[clinical][rules][trend]") {
  const TrendRule within = trend("trend:falling:30:365");
  CHECK(within.kind == TrendRule::Kind::falling_within);
  CHECK(within.fraction == Approx(0.30));
  CHECK(within.days == 365);
  CHECK(within.window() == 2);
  CHECK(within.span_seconds() == 365 * kDay);
  const TrendRule consecutive = trend("trend:consecutive:3");
  CHECK(consecutive.kind == TrendRule::Kind::consecutive);
  CHECK(consecutive.count == 3);
  CHECK(consecutive.window() == 4);
  CHECK(consecutive.span_seconds() == 0);
  const TrendRule toward = trend("trend:toward:10");
  CHECK(toward.kind == TrendRule::Kind::toward);
  CHECK(toward.fraction == Approx(0.10));
  CHECK(toward.window() == 2);
  // The old grammar keeps its meaning next to the new.
  CHECK(trend("trend:falling:0.2").kind == TrendRule::Kind::falling);
  CHECK(trend("trend:away:3").kind == TrendRule::Kind::away);
}

TEST_CASE("parse_trend_rules refuses malformed new trend clauses, naming the clause",
          "[clinical][rules][trend]") {
  struct Case {
    std::string_view text;
    std::string_view error;
  };
  const std::vector<Case> cases = {
      {"trend:falling:0:365",
       "clause 1 'trend:falling:0:365': trend:falling:PCT:DAYS needs a percentage between 0 and "
       "100 (exclusive), not '0:365'"},
      {"trend:falling:100:365",
       "clause 1 'trend:falling:100:365': trend:falling:PCT:DAYS needs a percentage between 0 "
       "and 100 (exclusive), not '100:365'"},
      {"trend:falling:30:0",
       "clause 1 'trend:falling:30:0': trend:falling:PCT:DAYS needs a whole number of days from 1 "
       "to 3660, not '30:0'"},
      {"trend:falling:30:",
       "clause 1 'trend:falling:30:': trend:falling:PCT:DAYS needs a whole number of days from 1 "
       "to 3660, not '30:'"},
      {"trend:falling:30:1.5",
       "clause 1 'trend:falling:30:1.5': trend:falling:PCT:DAYS needs a whole number of days "
       "from 1 to 3660, not '30:1.5'"},
      {"trend:falling:30:4000",
       "clause 1 'trend:falling:30:4000': trend:falling:PCT:DAYS needs a whole number of days "
       "from 1 to 3660, not '30:4000'"},
      {"trend:consecutive:0",
       "clause 1 'trend:consecutive:0': trend:consecutive needs a whole number of declines from "
       "1 to 19, not '0'"},
      {"trend:consecutive:20",
       "clause 1 'trend:consecutive:20': trend:consecutive needs a whole number of declines from "
       "1 to 19, not '20'"},
      {"trend:consecutive:-2",
       "clause 1 'trend:consecutive:-2': trend:consecutive needs a whole number of declines from "
       "1 to 19, not '-2'"},
      {"trend:toward:0",
       "clause 1 'trend:toward:0': trend:toward needs a percentage of the band's width above 0, "
       "at most 50, not '0'"},
      {"trend:toward:51",
       "clause 1 'trend:toward:51': trend:toward needs a percentage of the band's width above 0, "
       "at most 50, not '51'"},
      {"trend:away:3;trend:toward:x",
       "clause 2 'trend:toward:x': trend:toward needs a percentage of the band's width above 0, "
       "at most 50, not 'x'"},
  };
  for (const Case& c : cases) {
    INFO(c.text);
    CHECK(trend_error(c.text) == c.error);
  }
}

TEST_CASE("evaluate_trend falling:PCT:DAYS measures the fall from the highest value within DAYS",
          "[clinical][rules][trend]") {
  struct Case {
    std::vector<TrendPoint> history;
    bool violated;
    std::vector<double> evidence;  // values of the points named
  };
  const std::vector<Case> cases = {
      // 100 -> 70 is a fall of exactly 30 %: "at least" counts it.
      {dated({{0, 100}, {200, 70}}), true, {100, 70}},
      {dated({{0, 100}, {200, 70.1}}), false, {}},
      // The highest within the window, not the one before: 120 (day 100), then 90, then 80.
      {dated({{100, 120}, {200, 90}, {300, 80}}), true, {120, 80}},
      // The high lies more than 365 days back: only 90 counts, and 80 is not 30 % below it.
      {dated({{0, 120}, {300, 90}, {400, 80}}), false, {}},
      // On the window's first day: counted.
      {dated({{0, 120}, {365, 80}}), true, {120, 80}},
      // One result alone, or only a draw at the same time, is no trend.
      {dated({{0, 120}}), false, {}},
      {dated({{5, 120}, {5, 10}}), false, {}},
      // A fall from zero means nothing.
      {dated({{0, 0}, {10, -1}}), false, {}},
  };
  const TrendRule rule_30_365 = trend("trend:falling:30:365");
  for (std::size_t i = 0; i < cases.size(); ++i) {
    INFO("case " << i);
    const Decision d = evaluate_trend(cases[i].history, rule_30_365, rule(""), analyte_with());
    CHECK(d.violated == cases[i].violated);
    std::vector<double> named;
    for (const TrendPoint& p : d.evidence) {
      named.push_back(p.value);
    }
    CHECK(named == cases[i].evidence);
    if (d.violated) {
      CHECK(d.rule == "trend:falling:30:365");
      CHECK(d.evidence.back().collected_at == cases[i].history.back().collected_at);
    }
  }
}

TEST_CASE("evaluate_trend consecutive:N needs N declines in a row", "[clinical][rules][trend]") {
  struct Case {
    std::string_view rule;
    std::vector<double> values;
    bool violated;
  };
  const std::vector<Case> cases = {
      {"trend:consecutive:3", {6.0, 5.8, 5.5, 5.1}, true},
      {"trend:consecutive:3", {7.0, 6.0, 5.8, 5.5, 5.1}, true},  // a longer run counts too
      {"trend:consecutive:3", {5.8, 5.5, 5.1}, false},           // only 2 declines
      {"trend:consecutive:3", {6.0, 5.8, 5.8, 5.1}, false},      // a flat step breaks it
      {"trend:consecutive:3", {6.0, 5.5, 5.8, 5.1}, false},      // a rise breaks it
      {"trend:consecutive:3", {5.1, 5.5, 5.8, 6.0}, false},      // rising
      {"trend:consecutive:1", {5.0, 4.9}, true},
  };
  for (const Case& c : cases) {
    INFO(c.rule);
    std::vector<TrendPoint> history;
    for (const double v : c.values) {
      history.push_back({v, std::nullopt, std::nullopt});
    }
    const TrendRule rule_n = trend(c.rule);
    const Decision d = evaluate_trend(history, rule_n, rule(""), analyte_with());
    CHECK(d.violated == c.violated);
    CHECK(d.evidence.size() == (c.violated ? rule_n.window() : 0));
  }
}

TEST_CASE("evaluate_trend toward:PCT alerts inside the band near an edge, moving toward it",
          "[clinical][rules][trend]") {
  struct Case {
    std::vector<double> values;
    bool violated;
  };
  // range:40-60, 10 % of the width is 2: the outer margins are 40-42 and 58-60.
  const std::vector<Case> cases = {
      {{50, 41.5}, true},   // fell into the low margin
      {{50, 42}, true},     // on the margin's edge
      {{50, 42.5}, false},  // not yet in it
      {{41, 41.5}, false},  // in the margin but moving away from the edge
      {{50, 59}, true},     // rose into the high margin
      {{59.5, 59}, false},  // moving back inside
      {{50, 39}, false},    // already outside: the target alert speaks, not the trend
      {{41.5}, false},      // one result is no movement
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    INFO("case " << i);
    std::vector<TrendPoint> history;
    for (const double v : cases[i].values) {
      history.push_back({v, std::nullopt, std::nullopt});
    }
    const Decision d =
        evaluate_trend(history, trend("trend:toward:10"), rule("range:40-60"), analyte_with());
    CHECK(d.violated == cases[i].violated);
    if (d.violated) {
      CHECK(d.rule == "trend:toward:10");
      CHECK(d.target_low == 40);
      CHECK(d.target_high == 60);
      CHECK(d.evidence.size() == 2);
    }
  }
  // A band without both bounds has no width: never violated.
  CHECK(trend_violated("trend:toward:10", "ge:50", {60, 50.5}) == "");
}

TEST_CASE("rule_ref reads each stored rule name as the rule it is", "[clinical][rules]") {
  using labwatch::clinical::ClauseKind;
  using labwatch::clinical::rule_ref;
  using labwatch::clinical::RuleRef;
  using labwatch::clinical::TrendKind;
  using Source = RuleRef::Source;
  struct Case {
    std::string_view name;
    RuleRef expected;
  };
  const std::vector<Case> cases = {
      {"ge:50", {Source::clause, ClauseKind::ge, false}},
      {"gt:-1.5", {Source::clause, ClauseKind::gt, false}},
      {"ideal:gt:70", {Source::clause, ClauseKind::gt, true}},
      {"le:7", {Source::clause, ClauseKind::le, false}},
      {"lt:1.0", {Source::clause, ClauseKind::lt, false}},
      {"range:6-8", {Source::clause, ClauseKind::range, false}},
      {"ideal:range:40-60", {Source::clause, ClauseKind::range, true}},
      {"within_ref", {Source::clause, ClauseKind::within_ref, false}},
      {"ref_upper_third", {Source::clause, ClauseKind::ref_upper_third, false}},
      {"ref_lower_half", {Source::clause, ClauseKind::ref_lower_half, false}},
      {"ref_upper_half", {Source::clause, ClauseKind::ref_upper_half, false}},
      {"lab_range", {Source::lab_range}},
      {"lab_flag", {Source::lab_flag}},
      {"trend:falling:0.2", {Source::trend, ClauseKind::ge, false, TrendKind::falling}},
      {"trend:falling:30:365", {Source::trend, ClauseKind::ge, false, TrendKind::falling_within}},
      {"trend:away:3", {Source::trend, ClauseKind::ge, false, TrendKind::away}},
      {"trend:consecutive:4", {Source::trend, ClauseKind::ge, false, TrendKind::consecutive}},
      {"trend:toward:10", {Source::trend, ClauseKind::ge, false, TrendKind::toward}},
      // Names no rule of this version writes: never taken for a rule of ours.
      {"", {}},
      {"ge", {}},
      {"trend:sideways:3", {}},
      {"ideal:lab_range", {}},
      {"lab_range;ge:50", {}},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    CHECK(rule_ref(c.name) == c.expected);
  }
  CHECK(rule_ref("trend:falling:30:365").is_fall());
  CHECK(rule_ref("trend:consecutive:4").is_fall());
  CHECK_FALSE(rule_ref("trend:toward:10").is_fall());
  CHECK(rule_ref("gt:70").strict_low());
  CHECK_FALSE(rule_ref("ge:70").strict_low());
  CHECK(rule_ref("lt:1.0").strict_high());
  CHECK(rule_ref("lab_flag").is_lab());
}

TEST_CASE("a decision names its rule as a type that its stored name reads back as",
          "[clinical][rules]") {
  using labwatch::clinical::rule_ref;
  using Source = labwatch::clinical::RuleRef::Source;
  // Hard clause, ideal clause, the lab's range, the lab's flag.
  const Decision hard = evaluate(result_of(40), rule("ge:50;ideal:gt:70"), analyte_with());
  CHECK(hard.ref.source == Source::clause);
  CHECK(hard.ref.clause == Kind::ge);
  CHECK_FALSE(hard.ref.ideal);
  const Decision ideal = evaluate(result_of(60), rule("ge:50;ideal:gt:70"), analyte_with());
  CHECK(ideal.ref.clause == Kind::gt);
  CHECK(ideal.ref.ideal);
  NormalizedResult outside = result_of(300, 16, 232);
  outside.range_problem = labwatch::clinical::RangeProblem::none;
  const Decision lab = evaluate(outside, rule("ge:50"), analyte_with());
  CHECK(lab.ref.source == Source::lab_range);
  NormalizedResult flagged = result_of(100, 16, 232);
  flagged.flags = "H";
  const Decision flag = evaluate(flagged, rule("ge:50"), analyte_with());
  CHECK(flag.ref.source == Source::lab_flag);
  const Decision within = evaluate(result_of(100, 16, 232), rule("ge:50"), analyte_with());
  CHECK_FALSE(within.violated);
  CHECK(within.ref.source == Source::unknown);
  for (const Decision* d : {&hard, &ideal, &lab, &flag}) {
    INFO(d->rule);
    CHECK(rule_ref(d->rule) == d->ref);
  }
  std::vector<TrendPoint> history = {{6.0, std::nullopt, std::nullopt},
                                     {5.8, std::nullopt, std::nullopt},
                                     {5.5, std::nullopt, std::nullopt},
                                     {5.1, std::nullopt, std::nullopt}};
  const Decision run =
      evaluate_trend(history, trend("trend:consecutive:3"), rule(""), analyte_with());
  REQUIRE(run.violated);
  CHECK(run.ref.source == Source::trend);
  CHECK(run.ref.trend == labwatch::clinical::TrendKind::consecutive);
  CHECK(rule_ref(run.rule) == run.ref);
}
