// SPDX-License-Identifier: Apache-2.0
// Optimal-target rules: the grammar of analytes.csv `optimal_rule` and the decision for one result.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "clinical/analyte_catalogue.hpp"
#include "clinical/normalized.hpp"
#include "clinical/rule_ref.hpp"
#include "parsers/expected.hpp"

namespace labwatch::clinical {

// One clause of a rule: ge:X gt:X le:X lt:X range:A-B within_ref ref_upper_third ref_lower_half
// ref_upper_half; `ideal` marks a softer second tier ("ideal:gt:70").
struct RuleClause {
  using Kind = ClauseKind;
  Kind kind = Kind::ge;
  double a = 0;  // threshold, or range low
  double b = 0;  // range high
  bool ideal = false;
  std::string text;  // the clause as written, e.g. "ideal:gt:70" (the rule name in alerts)

  [[nodiscard]] RuleRef ref() const noexcept { return {RuleRef::Source::clause, kind, ideal}; }
};

struct OptimalRule {
  std::vector<RuleClause> clauses;  // all must hold; hard clauses are checked before ideal ones
  std::string text;
};

// Parses "ge:50;ideal:gt:70" (clauses trimmed; numbers with '.'; range bounds may be negative).
// An empty text is a rule without clauses. Error text says which clause is wrong and why.
parsers::Expected<OptimalRule, std::string> parse_optimal_rule(std::string_view text);

// One result of a trend: its value (a censored one by its bound) and its reference range as
// printed, in the canonical unit, and when it was collected.
struct TrendPoint {
  double value = 0;
  std::optional<double> ref_low;
  std::optional<double> ref_high;
  UnixSeconds collected_at = 0;
};

// The decision for one result: the first violated clause (hard before ideal), with what it used,
// so that an alert can be explained. `violated` false means within target.
struct Decision {
  bool violated = false;
  // Not violated, but not within either: a censored or converted value straddles a bound
  // ("<10" against 6-8). No alert; shown as indeterminate.
  bool indeterminate = false;
  // The violated rule's name as alerts store it: the clause text ("ge:50", "ref_upper_third"),
  // kLabRangeRule, kLabFlagRule or the trend clause; `ref` says which rule it is, as a type.
  std::string rule;
  RuleRef ref;
  std::optional<double> target_low;  // the target band actually applied, canonical unit
  std::optional<double> target_high;
  std::optional<double> ref_low;  // the reference range used (the report's, else the catalogue's)
  std::optional<double> ref_high;
  bool range_from_catalogue = false;  // the judgement used a bound of the catalogue's range
  double value = 0;
  // A violated trend rule: the results it rests on, oldest first (the judged one last); else
  // empty. The mail names them (describe_finding).
  std::vector<TrendPoint> evidence;
};

// The rules an alert names when the lab's own witnesses say more than the optimal target: the
// value lies outside the lab's printed range, or the lab flagged it (H, L, A, ...).
inline constexpr std::string_view kLabRangeRule = "lab_range";
inline constexpr std::string_view kLabFlagRule = "lab_flag";

// Evaluates a result against a rule and the lab's own witnesses. The order: hard clauses, then
// the lab's printed range (kLabRangeRule: only a usable one, RangeProblem::none), then the lab's
// flag (kLabFlagRule), then ideal clauses; the first violated one is the decision's rule.
// Reference-relative clauses use the result's own range when it has either bound, else the
// catalogue's (range_from_catalogue); within_ref does not check a missing bound, and a position
// within a range ("upper third") takes a one-sided range's missing bound from the catalogue. The
// value is an interval: a censored one ("<5") is the half line, a converted one +- its tolerance;
// it violates a clause only when wholly outside it, and one that straddles a bound is
// indeterminate. The tolerance is for our own thresholds and the catalogue's bounds only: against
// the lab's printed range (and positions within it), which came in the value's own unit and was
// converted by the same factor, the value is compared as printed (616 pmol/L is within 148-616). A
// cancelled result is never violated. Values within 1e-9 (relative) of a bound count as on it.
Decision evaluate(const NormalizedResult& result, const OptimalRule& rule, const Analyte& analyte);

// The target of `rule` written for people, in `unit`: hard clauses first, then the ideal ones
// after "ideally"; the unit once, after the first number. Thresholds are shown as the rule writes
// them; bounds taken from a range (a position within it) with one decimal more than `decimals`
// (the result's shown precision; -1 unknown: at most 2). Reference-relative clauses use the
// result's usable printed range (ref_low/ref_high) when it has either bound, else the catalogue's,
// and say which. ">= 50 ng/mL, ideally > 70"; "40-60 ng/mL"; "upper third of the lab's range:
// >= 5.93 mg/dL"; "< 1.0 mg/L". A rule without clauses gives "".
std::string describe_target(const OptimalRule& rule, const Analyte& analyte, std::string_view unit,
                            std::optional<double> ref_low, std::optional<double> ref_high,
                            int decimals = -1);

// ---- Trend rules -------------------------------------------------------------------------------

// A rule over one person's current results of one analyte, oldest first, judged at the last one:
//   trend:falling:F        the value fell by more than the fraction F (0 < F < 1) from the result
//                          before;
//   trend:falling:PCT:DAYS the value has fallen by at least PCT % (0 < PCT < 100) from the highest
//                          value collected within the DAYS days (1 <= DAYS <= 3660) before it;
//   trend:away:N           each of the last N results (2 <= N <= 20) lies further from the optimal
//                          band than the one before it;
//   trend:consecutive:N    N declines in a row (1 <= N <= 19): N + 1 results, each lower than the
//                          one before it;
//   trend:toward:PCT       the value lies inside the optimal band, within PCT % (0 < PCT <= 50) of
//                          the band's width from one of its edges, and moved toward that edge since
//                          the result before.
struct TrendRule {
  using Kind = TrendKind;
  Kind kind = Kind::falling;
  double fraction = 0;  // falling: the relative drop that must be exceeded; falling_within: that
                        // must be reached (PCT / 100); toward: the margin (PCT / 100 of the width)
  int count = 0;        // away: the number of results in the run; consecutive: the declines
  int days = 0;         // falling_within: how far back the highest value is looked for
  std::string text;     // the clause as written, e.g. "trend:falling:0.2" (the rule name in alerts)

  // How many results, ending at the judged one, the rule needs at least (and looks at, when it
  // looks back by count): 2 for falling, falling_within and toward, N for away, N + 1 for
  // consecutive. falling_within looks back by time (span_seconds), over any number of results.
  [[nodiscard]] std::size_t window() const noexcept;
  // How far back in time the rule looks (falling_within: DAYS days), else 0 (by count only).
  [[nodiscard]] std::int64_t span_seconds() const noexcept;
  [[nodiscard]] RuleRef ref() const noexcept {
    return {RuleRef::Source::trend, ClauseKind::ge, false, kind};
  }
};

// The largest N of trend:away:N (and N + 1 of trend:consecutive:N).
inline constexpr int kMaxTrendRun = 20;
// The largest DAYS of trend:falling:PCT:DAYS (ten years).
inline constexpr int kMaxTrendDays = 3660;

// Parses one trend clause ("trend:falling:0.2", "trend:falling:30:365", "trend:away:3",
// "trend:consecutive:3", "trend:toward:10"), trimmed. The error says why the text is not one: an
// unknown kind, a fraction outside (0, 1), a percentage or a count out of its bounds.
parsers::Expected<TrendRule, std::string> parse_trend_rule(std::string_view text);

// Parses ';'-separated trend clauses ("trend:falling:0.2;trend:away:3"); an empty text is no rule.
// The error names the clause by number, as parse_optimal_rule does.
parsers::Expected<std::vector<TrendRule>, std::string> parse_trend_rules(std::string_view text);

// The band every clause of `rule` accepts for one result, and how far a value lies outside it.
// Reference-relative clauses use the point's range when it has either bound, else the catalogue's
// (as evaluate does); a bound that no clause sets is open. gt/lt bounds count as ge/le here.
// This is the one place a target band is computed: alerts, trends, the report and mail use it.
struct TargetBand {
  std::optional<double> low;
  std::optional<double> high;
  // 0 inside the band (or on a bound, within 1e-9 relative), else the distance to it.
  [[nodiscard]] double distance(double value) const noexcept;
};
// Which clauses make the band: all of them, or the hard ones only (the report shades the band a
// value must be in; the ideal tier is written beside it).
enum class BandTiers : std::uint8_t { all, hard };
TargetBand target_band(const OptimalRule& rule, const Analyte& analyte, const TrendPoint& point,
                       BandTiers tiers = BandTiers::all);

// Judges `history` (current results, ordered by collection time, the judged one last) by a trend
// rule. falling needs two results and a positive earlier value; its target_low is the value below
// which the fall counts. falling_within needs a positive highest value collected within DAYS days
// before the last (a result collected at the same time as the last does not count); its
// target_low is the value at or below which the fall counts. away needs N results and a target
// (`rule`) with a bound; its target band is the last result's. consecutive needs N + 1 results,
// each lower than the one before (measurably: not within 1e-9 relative). toward needs two results
// and a target band with both bounds (the last result's); its target band is that band. Fewer
// results than window() are never violated. decision.rule is the trend clause text,
// decision.value the last value, ref_low/ref_high the last result's range, and
// decision.evidence the results a violation rests on, oldest first.
Decision evaluate_trend(std::span<const TrendPoint> history, const TrendRule& trend,
                        const OptimalRule& rule, const Analyte& analyte);

}  // namespace labwatch::clinical
