// SPDX-License-Identifier: Apache-2.0
// Optimal-target rules: parsing the optimal_rule grammar and judging one result against it.
#include "clinical/rules.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

#include "clinical/normalize.hpp"

namespace labwatch::clinical {

namespace {

using Kind = RuleClause::Kind;

constexpr std::string_view kIdealPrefix = "ideal:";
constexpr std::string_view kTrendPrefix = "trend:";

struct KindName {
  std::string_view name;
  Kind kind;
  bool has_argument;
};
constexpr std::array<KindName, 9> kKinds = {{
    {"ge", Kind::ge, true},
    {"gt", Kind::gt, true},
    {"le", Kind::le, true},
    {"lt", Kind::lt, true},
    {"range", Kind::range, true},
    {"within_ref", Kind::within_ref, false},
    {"ref_upper_third", Kind::ref_upper_third, false},
    {"ref_lower_half", Kind::ref_lower_half, false},
    {"ref_upper_half", Kind::ref_upper_half, false},
}};

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

// Reads one clause ("ideal:gt:70", "range:6-8", "within_ref"); the error says why it is wrong.
parsers::Expected<RuleClause, std::string> parse_clause(std::string_view text) {
  RuleClause clause;
  clause.text = text;
  if (text.substr(0, kIdealPrefix.size()) == kIdealPrefix) {
    clause.ideal = true;
    text.remove_prefix(kIdealPrefix.size());
  }
  const std::size_t colon = text.find(':');
  const std::string_view name = text.substr(0, colon);
  const std::string_view argument =
      colon == std::string_view::npos ? std::string_view{} : text.substr(colon + 1);
  const auto* known =
      std::find_if(kKinds.begin(), kKinds.end(), [&](const KindName& k) { return k.name == name; });
  if (known == kKinds.end()) {
    return parsers::unexpected("'" + std::string(name) + "' is not a rule kind");
  }
  clause.kind = known->kind;
  if (!known->has_argument) {
    if (colon != std::string_view::npos) {
      return parsers::unexpected(std::string(name) + " takes no argument");
    }
    return clause;
  }
  if (clause.kind == Kind::range) {
    // A-B; either bound may carry a sign, so the separator is the first '-' after the first byte.
    const std::size_t dash = argument.find('-', 1);
    const auto low = dash == std::string_view::npos
                         ? std::nullopt
                         : parse_decimal(argument.substr(0, dash), false);
    const auto high = dash == std::string_view::npos
                          ? std::nullopt
                          : parse_decimal(argument.substr(dash + 1), false);
    if (!low || !high) {
      return parsers::unexpected("range needs two numbers as A-B, not '" + std::string(argument) +
                                 "'");
    }
    if (*low > *high) {
      return parsers::unexpected("range " + std::string(argument) +
                                 " has its low bound above its high one");
    }
    clause.a = *low;
    clause.b = *high;
    return clause;
  }
  const auto threshold = parse_decimal(argument, false);
  if (!threshold) {
    return parsers::unexpected(std::string(name) + " needs a number, not '" +
                               std::string(argument) + "'");
  }
  clause.a = *threshold;
  return clause;
}

// Values that differ only by the noise of a unit conversion (13.6 mg/L * 100 is not exactly 1360)
// count as equal, so a value at a bound is judged as being at it.
bool nearly_equal(double x, double y) noexcept {
  constexpr double kRelativeTolerance = 1e-9;
  return std::fabs(x - y) <= kRelativeTolerance * std::max(std::fabs(x), std::fabs(y));
}
bool below(double v, double bound) noexcept { return v < bound && !nearly_equal(v, bound); }
bool above(double v, double bound) noexcept { return v > bound && !nearly_equal(v, bound); }

struct Outcome {
  bool violated = false;
  std::optional<double> low;  // the band the clause demanded
  std::optional<double> high;
};

Outcome band(double v, std::optional<double> low, std::optional<double> high) {
  const bool violated = (low && below(v, *low)) || (high && above(v, *high));
  return {violated, low, high};
}

// Judges v by one clause. `ref_low`/`ref_high` is the reference range in force; a relative clause
// that needs a bound the range does not have cannot be judged and is not violated.
Outcome judge(const RuleClause& clause, double v, std::optional<double> ref_low,
              std::optional<double> ref_high) {
  switch (clause.kind) {
    case Kind::ge:
      return band(v, clause.a, std::nullopt);
    case Kind::gt:
      return {!above(v, clause.a), clause.a, std::nullopt};
    case Kind::le:
      return band(v, std::nullopt, clause.a);
    case Kind::lt:
      return {!below(v, clause.a), std::nullopt, clause.a};
    case Kind::range:
      return band(v, clause.a, clause.b);
    case Kind::within_ref:
      return band(v, ref_low, ref_high);
    case Kind::ref_upper_third:
      if (!ref_low || !ref_high) {
        return {};
      }
      return band(v, *ref_low + (*ref_high - *ref_low) * 2.0 / 3.0, ref_high);
    case Kind::ref_upper_half:
      if (!ref_low || !ref_high) {
        return {};
      }
      return band(v, *ref_low + (*ref_high - *ref_low) / 2.0, ref_high);
    case Kind::ref_lower_half: {
      if (!ref_high) {
        return {};
      }
      // "<=1.5" prints no low bound: the lower half of 0-1.5.
      const double low = ref_low.value_or(0.0);
      return band(v, std::nullopt, low + (*ref_high - low) / 2.0);
    }
  }
  return {};
}

// The reference range a result is judged by: the one printed on the report when it has either
// bound (a one-sided range stays one-sided), else the catalogue's.
std::pair<std::optional<double>, std::optional<double>> range_in_force(
    std::optional<double> printed_low, std::optional<double> printed_high, const Analyte& analyte) {
  if (printed_low || printed_high) {
    return {printed_low, printed_high};
  }
  return {analyte.ref_low, analyte.ref_high};
}

// Reads the argument of trend:falling / trend:away into `rule`; the error says why it is wrong.
std::optional<std::string> read_trend_argument(std::string_view argument, TrendRule& rule) {
  if (rule.kind == TrendRule::Kind::falling) {
    const auto fraction = parse_decimal(argument, false);
    if (!fraction || !(*fraction > 0.0 && *fraction < 1.0)) {
      return "trend:falling needs a fraction between 0 and 1 (exclusive), not '" +
             std::string(argument) + "'";
    }
    rule.fraction = *fraction;
    return std::nullopt;
  }
  int count = 0;
  const char* end = argument.data() + argument.size();
  const auto [ptr, ec] = std::from_chars(argument.data(), end, count);
  if (argument.empty() || ec != std::errc() || ptr != end || count < 2 || count > kMaxTrendRun) {
    return "trend:away needs a whole number of results from 2 to " + std::to_string(kMaxTrendRun) +
           ", not '" + std::string(argument) + "'";
  }
  rule.count = count;
  return std::nullopt;
}

// Parses the clauses of "A; B; C" (each trimmed) with `parse_one`, appending them to `out`. An
// empty clause, or one `parse_one` refuses, is an error naming its 1-based number and its text.
template <class Parse, class Item>
std::optional<std::string> parse_clauses(std::string_view text, Parse parse_one,
                                         std::vector<Item>& out) {
  std::size_t number = 1;
  while (true) {
    const std::size_t semicolon = text.find(';');
    const std::string_view written = trim(text.substr(0, semicolon));
    if (written.empty()) {
      return "clause " + std::to_string(number) + " is empty";
    }
    auto parsed = parse_one(written);
    if (!parsed) {
      return "clause " + std::to_string(number) + " '" + std::string(written) +
             "': " + parsed.error();
    }
    out.push_back(std::move(parsed).value());
    if (semicolon == std::string_view::npos) {
      return std::nullopt;
    }
    text.remove_prefix(semicolon + 1);
    ++number;
  }
}

}  // namespace

parsers::Expected<OptimalRule, std::string> parse_optimal_rule(std::string_view text) {
  OptimalRule rule;
  text = trim(text);
  rule.text = text;
  if (text.empty()) {
    return rule;  // no target: nothing is ever violated
  }
  if (auto error = parse_clauses(text, parse_clause, rule.clauses)) {
    return parsers::unexpected(std::move(*error));
  }
  return rule;
}

Decision evaluate(const NormalizedResult& result, const OptimalRule& rule, const Analyte& analyte) {
  Decision decision;
  decision.value = result.value;
  // The range printed on the report is used as a whole: ">5.4" means no upper limit, not "the
  // catalogue's upper limit". The catalogue's range stands in only when the report printed none.
  std::tie(decision.ref_low, decision.ref_high) =
      range_in_force(result.ref_low, result.ref_high, analyte);
  // A cancelled result has no value to judge. A censored one ("<5") is judged by its bound: the
  // lab says no more than that, and reporting the bound is what a reader of the alert can check.
  if (result.status == ResultStatus::cancelled) {
    return decision;
  }
  for (const bool ideal_tier : {false, true}) {
    for (const RuleClause& clause : rule.clauses) {
      if (clause.ideal != ideal_tier) {
        continue;
      }
      const Outcome outcome = judge(clause, result.value, decision.ref_low, decision.ref_high);
      if (outcome.violated) {
        decision.violated = true;
        decision.rule = clause.text;
        decision.target_low = outcome.low;
        decision.target_high = outcome.high;
        return decision;
      }
    }
  }
  return decision;
}

std::size_t TrendRule::window() const noexcept {
  return kind == Kind::falling ? 2 : static_cast<std::size_t>(count);
}

parsers::Expected<TrendRule, std::string> parse_trend_rule(std::string_view text) {
  text = trim(text);
  if (text.substr(0, kTrendPrefix.size()) != kTrendPrefix) {
    return parsers::unexpected("'" + std::string(text) +
                               "' is not a trend rule (trend:falling:F or trend:away:N)");
  }
  TrendRule rule;
  rule.text = text;
  const std::string_view rest = text.substr(kTrendPrefix.size());
  const std::size_t colon = rest.find(':');
  const std::string_view name = rest.substr(0, colon);
  if (name == "falling") {
    rule.kind = TrendRule::Kind::falling;
  } else if (name == "away") {
    rule.kind = TrendRule::Kind::away;
  } else {
    return parsers::unexpected("'" + std::string(name) + "' is not a trend kind (falling, away)");
  }
  const std::string_view argument =
      colon == std::string_view::npos ? std::string_view{} : rest.substr(colon + 1);
  if (auto error = read_trend_argument(argument, rule)) {
    return parsers::unexpected(std::move(*error));
  }
  return rule;
}

parsers::Expected<std::vector<TrendRule>, std::string> parse_trend_rules(std::string_view text) {
  std::vector<TrendRule> rules;
  text = trim(text);
  if (text.empty()) {
    return rules;
  }
  if (auto error = parse_clauses(text, parse_trend_rule, rules)) {
    return parsers::unexpected(std::move(*error));
  }
  return rules;
}

double TargetBand::distance(double value) const noexcept {
  if (low && below(value, *low)) {
    return *low - value;
  }
  if (high && above(value, *high)) {
    return value - *high;
  }
  return 0.0;
}

TargetBand target_band(const OptimalRule& rule, const Analyte& analyte, const TrendPoint& point) {
  const auto [ref_low, ref_high] = range_in_force(point.ref_low, point.ref_high, analyte);
  TargetBand band;
  for (const RuleClause& clause : rule.clauses) {
    // What a clause demands does not depend on the value judged; only `violated` does.
    const Outcome demanded = judge(clause, 0.0, ref_low, ref_high);
    if (demanded.low) {
      band.low = band.low ? std::max(*band.low, *demanded.low) : *demanded.low;
    }
    if (demanded.high) {
      band.high = band.high ? std::min(*band.high, *demanded.high) : *demanded.high;
    }
  }
  return band;
}

Decision evaluate_trend(std::span<const TrendPoint> history, const TrendRule& trend,
                        const OptimalRule& rule, const Analyte& analyte) {
  Decision decision;
  if (history.empty()) {
    return decision;
  }
  const TrendPoint& last = history.back();
  decision.value = last.value;
  std::tie(decision.ref_low, decision.ref_high) =
      range_in_force(last.ref_low, last.ref_high, analyte);
  if (history.size() < trend.window()) {
    return decision;
  }
  const std::span<const TrendPoint> run = history.last(trend.window());
  switch (trend.kind) {
    case TrendRule::Kind::falling: {
      // "Fell by more than F" is "ended below (1 - F) of where it was"; a relative fall from zero
      // or from a negative value means nothing, so such a pair is not judged.
      const double before = run[0].value;
      if (!(before > 0.0)) {
        return decision;
      }
      const double threshold = before * (1.0 - trend.fraction);
      decision.target_low = threshold;
      decision.violated = below(last.value, threshold);
      break;
    }
    case TrendRule::Kind::away: {
      // Each step must move measurably further out: a value that only conversion noise moves is
      // at the same distance, and a run that starts inside the band starts at distance 0.
      const TargetBand last_band = target_band(rule, analyte, last);
      decision.target_low = last_band.low;
      decision.target_high = last_band.high;
      double previous = target_band(rule, analyte, run[0]).distance(run[0].value);
      bool further = true;
      for (std::size_t i = 1; i < run.size() && further; ++i) {
        const double distance = target_band(rule, analyte, run[i]).distance(run[i].value);
        further = above(distance, previous);
        previous = distance;
      }
      decision.violated = further;
      break;
    }
  }
  if (decision.violated) {
    decision.rule = trend.text;
  }
  return decision;
}

}  // namespace labwatch::clinical
