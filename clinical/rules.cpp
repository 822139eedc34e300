// SPDX-License-Identifier: Apache-2.0
// Optimal-target rules: parsing the optimal_rule grammar and judging one result against it.
#include "clinical/rules.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

#include "clinical/lab_range.hpp"
#include "clinical/normalize.hpp"
#include "clinical/wording.hpp"
#include "parsers/text.hpp"

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

using parsers::trim;

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
// count as equal, so a value at a bound is judged as being at it. An infinite end of an interval
// is never at a bound.
bool nearly_equal(double x, double y) noexcept {
  constexpr double kRelativeTolerance = 1e-9;
  if (!std::isfinite(x) || !std::isfinite(y)) {
    return false;
  }
  return std::fabs(x - y) <= kRelativeTolerance * std::max(std::fabs(x), std::fabs(y));
}
bool below(double v, double bound) noexcept { return v < bound && !nearly_equal(v, bound); }
bool above(double v, double bound) noexcept { return v > bound && !nearly_equal(v, bound); }

// What a result says of the true value: a point when it was printed in the canonical unit, the
// half-digit band around it when it was converted, a half line when it was censored ("<1.0").
struct Interval {
  double lo = 0;
  double hi = 0;
  bool lo_open = false;  // lo itself is not possible ("> 2000")
  bool hi_open = false;
};

// A censored value's open side ends where the analyte's possible values end ("<0.3" of a
// concentration is 0 to 0.3, not below 0).
Interval interval_of(double value, std::string_view comparator, double tolerance,
                     const Analyte& analyte) noexcept {
  constexpr double kInfinity = std::numeric_limits<double>::infinity();
  if (comparator == "<" || comparator == "<=") {
    return {analyte.plausible_low.value_or(0.0), value + tolerance, false,
            comparator == "<" && tolerance == 0};
  }
  if (comparator == ">" || comparator == ">=") {
    return {value - tolerance, analyte.plausible_high.value_or(kInfinity),
            comparator == ">" && tolerance == 0, false};
  }
  return {value - tolerance, value + tolerance, false, false};
}

enum class Fit : std::uint8_t { inside, outside, straddles };

// The interval against "v >= bound" (strict: "v > bound").
Fit fit_low(const Interval& v, double bound, bool strict) noexcept {
  if (above(v.lo, bound) || (nearly_equal(v.lo, bound) && (!strict || v.lo_open))) {
    return Fit::inside;
  }
  if (below(v.hi, bound) || (nearly_equal(v.hi, bound) && (strict || v.hi_open))) {
    return Fit::outside;
  }
  return Fit::straddles;
}

// The interval against "v <= bound" (strict: "v < bound").
Fit fit_high(const Interval& v, double bound, bool strict) noexcept {
  if (below(v.hi, bound) || (nearly_equal(v.hi, bound) && (!strict || v.hi_open))) {
    return Fit::inside;
  }
  if (above(v.lo, bound) || (nearly_equal(v.lo, bound) && (strict || v.lo_open))) {
    return Fit::outside;
  }
  return Fit::straddles;
}

Fit worse(Fit a, Fit b) noexcept {
  if (a == Fit::outside || b == Fit::outside) {
    return Fit::outside;
  }
  return a == Fit::straddles || b == Fit::straddles ? Fit::straddles : Fit::inside;
}

struct Outcome {
  Fit fit = Fit::inside;
  std::optional<double> low;  // the band the clause demanded
  std::optional<double> high;
  bool strict_low = false;  // gt: the low bound itself misses
  bool strict_high = false;
};

Outcome band(const Interval& v, std::optional<double> low, std::optional<double> high,
             bool strict_low = false, bool strict_high = false) {
  Fit fit = Fit::inside;
  if (low) {
    fit = worse(fit, fit_low(v, *low, strict_low));
  }
  if (high) {
    fit = worse(fit, fit_high(v, *high, strict_high));
  }
  return {fit, low, high, strict_low, strict_high};
}

// The reference range a result is judged by, and where it came from.
struct RangeInForce {
  std::optional<double> low;
  std::optional<double> high;
  bool from_catalogue = false;  // a bound, or both, are the catalogue's
};

// The range printed on the report when it has either bound (a one-sided range stays one-sided:
// ">5.4" means no upper limit, not "the catalogue's"), else the catalogue's.
RangeInForce range_in_force(std::optional<double> printed_low, std::optional<double> printed_high,
                            const Analyte& analyte) {
  if (printed_low || printed_high) {
    return {printed_low, printed_high, false};
  }
  return {analyte.ref_low, analyte.ref_high, analyte.ref_low || analyte.ref_high};
}

// The whole range a position within it ("the upper third") is taken of. A one-sided printed
// range never switches such a clause off: its missing bound is the catalogue's, when the two
// make a range at all.
RangeInForce whole_range(const RangeInForce& range, const Analyte& analyte) {
  RangeInForce whole = range;
  if (!whole.low && analyte.ref_low && whole.high && *analyte.ref_low < *whole.high) {
    whole.low = analyte.ref_low;
    whole.from_catalogue = true;
  }
  if (!whole.high && analyte.ref_high && whole.low && *whole.low < *analyte.ref_high) {
    whole.high = analyte.ref_high;
    whole.from_catalogue = true;
  }
  return whole;
}

// What a result says of the true value when it is held against the lab's own range: the lab
// printed the value and the range in one unit, and both were converted by the same factor, so the
// value is judged as printed (a censored one still as its half line).
Interval as_printed(const NormalizedResult& result, const Analyte& analyte) noexcept {
  return interval_of(result.value, result.comparator, 0.0, analyte);
}

// Judges one clause: `v` against our own thresholds and catalogue bounds (the lab's precision
// counts), `printed` against bounds taken wholly from the lab's printed range (see as_printed). A
// relative clause that still lacks a bound it needs cannot be judged and is not violated;
// `used_catalogue` is set when it judged by a catalogue bound.
Outcome judge(const RuleClause& clause, const Interval& v, const Interval& printed,
              const RangeInForce& range, const Analyte& analyte, bool& used_catalogue) {
  switch (clause.kind) {
    case Kind::ge:
      return band(v, clause.a, std::nullopt);
    case Kind::gt:
      return band(v, clause.a, std::nullopt, true);
    case Kind::le:
      return band(v, std::nullopt, clause.a);
    case Kind::lt:
      return band(v, std::nullopt, clause.a, false, true);
    case Kind::range:
      return band(v, clause.a, clause.b);
    case Kind::within_ref:
      used_catalogue = used_catalogue || range.from_catalogue;
      return band(range.from_catalogue ? v : printed, range.low, range.high);
    case Kind::ref_upper_third:
    case Kind::ref_upper_half: {
      const RangeInForce whole = whole_range(range, analyte);
      if (!whole.low || !whole.high) {
        return {};
      }
      used_catalogue = used_catalogue || whole.from_catalogue;
      const double part = clause.kind == Kind::ref_upper_third ? 2.0 / 3.0 : 1.0 / 2.0;
      return band(whole.from_catalogue ? v : printed,
                  *whole.low + (*whole.high - *whole.low) * part, whole.high);
    }
    case Kind::ref_lower_half: {
      // "<=1.5" prints no low bound: the lower half of 0-1.5.
      const RangeInForce whole = range.high ? range : whole_range(range, analyte);
      if (!whole.high) {
        return {};
      }
      used_catalogue = used_catalogue || whole.from_catalogue;
      const double low = whole.low.value_or(0.0);
      return band(whole.from_catalogue ? v : printed, std::nullopt,
                  low + (*whole.high - low) / 2.0);
    }
  }
  return {};
}

// A whole number from `text`, or nullopt when it is not one (empty, a sign, a fraction, junk).
std::optional<int> parse_count(std::string_view text) {
  int count = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, count);
  if (text.empty() || text.front() == '-' || ec != std::errc() || ptr != end) {
    return std::nullopt;
  }
  return count;
}

// Reads the argument of a trend clause of `rule.kind` into `rule`; the error says why it is wrong.
std::optional<std::string> read_trend_argument(std::string_view argument, TrendRule& rule) {
  const std::string written(argument);
  switch (rule.kind) {
    case TrendRule::Kind::falling:
    case TrendRule::Kind::falling_within: {
      const std::size_t colon = argument.find(':');
      if (colon == std::string_view::npos) {
        const auto fraction = parse_decimal(argument, false);
        if (!fraction || !(*fraction > 0.0 && *fraction < 1.0)) {
          return "trend:falling needs a fraction between 0 and 1 (exclusive), or PCT:DAYS, not '" +
                 written + "'";
        }
        rule.kind = TrendRule::Kind::falling;
        rule.fraction = *fraction;
        return std::nullopt;
      }
      const auto percent = parse_decimal(argument.substr(0, colon), false);
      const auto days = parse_count(argument.substr(colon + 1));
      if (!percent || !(*percent > 0.0 && *percent < 100.0)) {
        return "trend:falling:PCT:DAYS needs a percentage between 0 and 100 (exclusive), not '" +
               written + "'";
      }
      if (!days || *days < 1 || *days > kMaxTrendDays) {
        return "trend:falling:PCT:DAYS needs a whole number of days from 1 to " +
               std::to_string(kMaxTrendDays) + ", not '" + written + "'";
      }
      rule.kind = TrendRule::Kind::falling_within;
      rule.fraction = *percent / 100.0;
      rule.days = *days;
      return std::nullopt;
    }
    case TrendRule::Kind::away: {
      const auto count = parse_count(argument);
      if (!count || *count < 2 || *count > kMaxTrendRun) {
        return "trend:away needs a whole number of results from 2 to " +
               std::to_string(kMaxTrendRun) + ", not '" + written + "'";
      }
      rule.count = *count;
      return std::nullopt;
    }
    case TrendRule::Kind::consecutive: {
      const auto count = parse_count(argument);
      if (!count || *count < 1 || *count > kMaxTrendRun - 1) {
        return "trend:consecutive needs a whole number of declines from 1 to " +
               std::to_string(kMaxTrendRun - 1) + ", not '" + written + "'";
      }
      rule.count = *count;
      return std::nullopt;
    }
    case TrendRule::Kind::toward: {
      const auto percent = parse_decimal(argument, false);
      if (!percent || !(*percent > 0.0 && *percent <= 50.0)) {
        return "trend:toward needs a percentage of the band's width above 0, at most 50, not '" +
               written + "'";
      }
      rule.fraction = *percent / 100.0;
      return std::nullopt;
    }
  }
  return "unknown trend kind";
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
  const RangeInForce range = range_in_force(result.ref_low, result.ref_high, analyte);
  decision.ref_low = range.low;
  decision.ref_high = range.high;
  if (result.status == ResultStatus::cancelled) {
    return decision;  // nothing to judge: it only withdraws
  }
  // Why an interval: a censored value ("<1.0") says only on which side of its bound the value lies,
  // and a converted one is only as exact as the digit the lab printed. A bound the interval
  // straddles cannot be judged: no alert, and the result is shown as indeterminate.
  // The lab's own range is the exception: it is compared with the value as printed.
  const Interval value = interval_of(result.value, result.comparator, result.tolerance, analyte);
  const Interval printed = as_printed(result, analyte);
  bool straddles = false;
  bool used_catalogue = false;
  auto violated = [&](std::string rule_name, RuleRef ref, const Outcome& outcome) {
    decision.violated = true;
    decision.rule = std::move(rule_name);
    decision.ref = ref;
    decision.target_low = outcome.low;
    decision.target_high = outcome.high;
    decision.range_from_catalogue = used_catalogue;
    return decision;
  };
  auto tier = [&](bool ideal) -> std::optional<Decision> {
    for (const RuleClause& clause : rule.clauses) {
      if (clause.ideal != ideal) {
        continue;
      }
      bool clause_used_catalogue = false;
      const Outcome outcome = judge(clause, value, printed, range, analyte, clause_used_catalogue);
      if (outcome.fit == Fit::outside) {
        used_catalogue = clause_used_catalogue;
        return violated(clause.text, clause.ref(), outcome);
      }
      straddles = straddles || outcome.fit == Fit::straddles;
      used_catalogue = used_catalogue || clause_used_catalogue;
    }
    return std::nullopt;
  };
  if (auto hard = tier(false)) {
    return *hard;
  }
  // Optimal, not just normal: outside the lab's own range, or flagged by the lab, is always worth
  // a look, even where the optimal target alone would pass (a ferritin of 850 against 16-232).
  if (result.range_problem == RangeProblem::none && (result.ref_low || result.ref_high)) {
    const Outcome lab = band(printed, result.ref_low, result.ref_high);
    if (lab.fit == Fit::outside) {
      used_catalogue = false;
      return violated(std::string(kLabRangeRule), {RuleRef::Source::lab_range}, lab);
    }
    straddles = straddles || lab.fit == Fit::straddles;
  }
  // A flag that only repeats a censored value's side (L on "<0.3", H on ">2000") is about the
  // censoring: many systems flag every value beyond the instrument's range. The range above judged
  // what it says; only a flag that tells more raises an alert of its own.
  const LabFlag flag = read_lab_flag(result.flags);
  const char censored = result.comparator.empty() ? '\0' : result.comparator.front();
  const bool repeats_censoring =
      (flag == LabFlag::low && censored == '<') || (flag == LabFlag::high && censored == '>');
  if (!repeats_censoring &&
      (flag == LabFlag::low || flag == LabFlag::high || flag == LabFlag::abnormal)) {
    used_catalogue = false;
    return violated(std::string(kLabFlagRule), {RuleRef::Source::lab_flag},
                    Outcome{Fit::outside, result.ref_low, result.ref_high});
  }
  if (auto ideal = tier(true)) {
    return *ideal;
  }
  decision.indeterminate = straddles;
  decision.range_from_catalogue = used_catalogue;
  return decision;
}

namespace {

// A threshold as the rule wrote it ("1.0" of "lt:1.0"), else as a number.
std::string written_threshold(const RuleClause& clause, bool second) {
  std::string_view argument = clause.text;
  argument.remove_prefix(std::min(argument.size(), argument.rfind(':') + 1));
  if (clause.kind == Kind::range) {
    const std::size_t dash = argument.find('-', 1);
    if (dash == std::string_view::npos) {
      return format_shown(second ? clause.b : clause.a, -1);
    }
    argument = second ? argument.substr(dash + 1) : argument.substr(0, dash);
  }
  return argument.empty() ? format_shown(clause.a, -1) : std::string(argument);
}

// The words of one clause, without its unit: ">= 50", "40-60", "upper third of the lab's range:
// >= 5.93". Empty for a relative clause without the bounds it needs.
std::string describe_clause(const RuleClause& clause, const RangeInForce& range,
                            const Analyte& analyte, int decimals) {
  const int derived = decimals < 0 ? 2 : decimals + 1;
  const auto whose = [](const RangeInForce& r) {
    return std::string(r.from_catalogue ? "the catalogue's range" : "the lab's range");
  };
  switch (clause.kind) {
    case Kind::ge:
      return ">= " + written_threshold(clause, false);
    case Kind::gt:
      return "> " + written_threshold(clause, false);
    case Kind::le:
      return "<= " + written_threshold(clause, false);
    case Kind::lt:
      return "< " + written_threshold(clause, false);
    case Kind::range:
      return written_threshold(clause, false) + "-" + written_threshold(clause, true);
    case Kind::within_ref:
      if (range.low && range.high) {
        return "within " + whose(range) + ": " + format_shown(*range.low, decimals) + "-" +
               format_shown(*range.high, decimals);
      }
      if (range.low) {
        return "within " + whose(range) + ": >= " + format_shown(*range.low, decimals);
      }
      if (range.high) {
        return "within " + whose(range) + ": <= " + format_shown(*range.high, decimals);
      }
      return "";
    case Kind::ref_upper_third:
    case Kind::ref_upper_half:
    case Kind::ref_lower_half: {
      bool used_catalogue = false;
      const Outcome demanded =
          judge(clause, Interval{}, Interval{}, range, analyte, used_catalogue);
      RangeInForce source = range;
      source.from_catalogue = range.from_catalogue || used_catalogue;
      const std::string part = clause.kind == Kind::ref_upper_third  ? "upper third of "
                               : clause.kind == Kind::ref_upper_half ? "upper half of "
                                                                     : "lower half of ";
      if (clause.kind == Kind::ref_lower_half) {
        return demanded.high
                   ? part + whose(source) + ": <= " + format_shown(*demanded.high, derived)
                   : std::string();
      }
      return demanded.low ? part + whose(source) + ": >= " + format_shown(*demanded.low, derived)
                          : std::string();
    }
  }
  return "";
}

}  // namespace

std::string describe_target(const OptimalRule& rule, const Analyte& analyte, std::string_view unit,
                            std::optional<double> ref_low, std::optional<double> ref_high,
                            int decimals) {
  const RangeInForce range = range_in_force(ref_low, ref_high, analyte);
  const bool unitless = unit.empty() || unit == "1";
  bool unit_shown = unitless;
  std::string hard;
  std::string ideal;
  for (const bool is_ideal : {false, true}) {
    std::string& out = is_ideal ? ideal : hard;
    for (const RuleClause& clause : rule.clauses) {
      if (clause.ideal != is_ideal) {
        continue;
      }
      std::string words = describe_clause(clause, range, analyte, decimals);
      if (words.empty()) {
        continue;
      }
      if (!unit_shown) {
        words += " " + std::string(unit);
        unit_shown = true;
      }
      out += (out.empty() ? "" : (is_ideal ? " and " : ", ")) + words;
    }
  }
  if (ideal.empty()) {
    return hard;
  }
  return hard.empty() ? "ideally " + ideal : hard + ", ideally " + ideal;
}

std::size_t TrendRule::window() const noexcept {
  switch (kind) {
    case Kind::falling:
    case Kind::falling_within:
    case Kind::toward:
      return 2;
    case Kind::away:
      return static_cast<std::size_t>(count);
    case Kind::consecutive:
      return static_cast<std::size_t>(count) + 1;
  }
  return 2;
}

std::int64_t TrendRule::span_seconds() const noexcept {
  return kind == Kind::falling_within ? static_cast<std::int64_t>(days) * 86'400 : 0;
}

parsers::Expected<TrendRule, std::string> parse_trend_rule(std::string_view text) {
  text = trim(text);
  if (text.substr(0, kTrendPrefix.size()) != kTrendPrefix) {
    return parsers::unexpected("'" + std::string(text) +
                               "' is not a trend rule (trend:falling:F, trend:falling:PCT:DAYS, "
                               "trend:away:N, trend:consecutive:N or trend:toward:PCT)");
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
  } else if (name == "consecutive") {
    rule.kind = TrendRule::Kind::consecutive;
  } else if (name == "toward") {
    rule.kind = TrendRule::Kind::toward;
  } else {
    return parsers::unexpected("'" + std::string(name) +
                               "' is not a trend kind (falling, away, consecutive, toward)");
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

TargetBand target_band(const OptimalRule& rule, const Analyte& analyte, const TrendPoint& point,
                       BandTiers tiers) {
  const RangeInForce range = range_in_force(point.ref_low, point.ref_high, analyte);
  TargetBand band;
  const Interval any{};
  for (const RuleClause& clause : rule.clauses) {
    if (clause.ideal && tiers == BandTiers::hard) {
      continue;
    }
    // What a clause demands does not depend on the value judged; only the fit does.
    bool used_catalogue = false;
    const Outcome demanded = judge(clause, any, any, range, analyte, used_catalogue);
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
  const RangeInForce range = range_in_force(last.ref_low, last.ref_high, analyte);
  decision.ref_low = range.low;
  decision.ref_high = range.high;
  if (history.size() < trend.window()) {
    return decision;
  }
  const std::span<const TrendPoint> run =
      trend.kind == TrendRule::Kind::falling_within ? history : history.last(trend.window());
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
      if (decision.violated) {
        decision.evidence.assign(run.begin(), run.end());
      }
      break;
    }
    case TrendRule::Kind::falling_within: {
      // The highest value collected within DAYS before the judged one (strictly earlier: a value
      // of the same draw is no history); the earliest of equal highs, so the fall names its start.
      const TrendPoint* highest = nullptr;
      const std::int64_t since = last.collected_at - trend.span_seconds();
      for (std::size_t i = 0; i + 1 < history.size(); ++i) {
        const TrendPoint& p = history[i];
        if (p.collected_at < since || p.collected_at >= last.collected_at) {
          continue;
        }
        if (highest == nullptr || p.value > highest->value) {
          highest = &p;
        }
      }
      if (highest == nullptr || !(highest->value > 0.0)) {
        return decision;
      }
      // "Fallen by at least PCT %": at or below (1 - PCT/100) of the highest.
      const double threshold = highest->value * (1.0 - trend.fraction);
      decision.target_low = threshold;
      decision.violated = !above(last.value, threshold);
      if (decision.violated) {
        decision.evidence = {*highest, last};
      }
      break;
    }
    case TrendRule::Kind::consecutive: {
      bool declining = true;
      for (std::size_t i = 1; i < run.size() && declining; ++i) {
        declining = below(run[i].value, run[i - 1].value);
      }
      decision.violated = declining;
      if (declining) {
        decision.evidence.assign(run.begin(), run.end());
      }
      break;
    }
    case TrendRule::Kind::toward: {
      // Inside the band, in its outer PCT % at one edge, and closer to that edge than before.
      const TargetBand band = target_band(rule, analyte, last);
      decision.target_low = band.low;
      decision.target_high = band.high;
      if (!band.low || !band.high || !(*band.high > *band.low) ||
          band.distance(last.value) != 0.0) {
        return decision;
      }
      const double margin = (*band.high - *band.low) * trend.fraction;
      const double before = run[0].value;
      const bool near_low = !above(last.value, *band.low + margin) && below(last.value, before);
      const bool near_high = !below(last.value, *band.high - margin) && above(last.value, before);
      decision.violated = near_low || near_high;
      if (decision.violated) {
        decision.evidence.assign(run.begin(), run.end());
      }
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
      if (further) {
        decision.evidence.assign(run.begin(), run.end());
      }
      break;
    }
  }
  if (decision.violated) {
    decision.rule = trend.text;
    decision.ref = trend.ref();
  }
  return decision;
}

RuleRef rule_ref(std::string_view rule) {
  if (rule == kLabRangeRule) {
    return {RuleRef::Source::lab_range};
  }
  if (rule == kLabFlagRule) {
    return {RuleRef::Source::lab_flag};
  }
  if (rule.starts_with(kTrendPrefix)) {
    const auto trend = parse_trend_rule(rule);
    return trend ? trend.value().ref() : RuleRef{};
  }
  const auto clause = parse_clause(trim(rule));
  return clause ? clause.value().ref() : RuleRef{};
}

}  // namespace labwatch::clinical
