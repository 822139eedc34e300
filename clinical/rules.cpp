// SPDX-License-Identifier: Apache-2.0
// Optimal-target rules: parsing the optimal_rule grammar and judging one result against it.
#include "clinical/rules.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>

#include "clinical/normalize.hpp"

namespace labwatch::clinical {

namespace {

using Kind = RuleClause::Kind;

constexpr std::string_view kIdealPrefix = "ideal:";

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

}  // namespace

parsers::Expected<OptimalRule, std::string> parse_optimal_rule(std::string_view text) {
  OptimalRule rule;
  text = trim(text);
  rule.text = text;
  if (text.empty()) {
    return rule;  // no target: nothing is ever violated
  }
  std::size_t number = 1;
  while (true) {
    const std::size_t semicolon = text.find(';');
    const std::string_view written = trim(text.substr(0, semicolon));
    if (written.empty()) {
      return parsers::unexpected("clause " + std::to_string(number) + " is empty");
    }
    auto clause = parse_clause(written);
    if (!clause) {
      return parsers::unexpected("clause " + std::to_string(number) + " '" + std::string(written) +
                                 "': " + clause.error());
    }
    rule.clauses.push_back(std::move(clause).value());
    if (semicolon == std::string_view::npos) {
      return rule;
    }
    text.remove_prefix(semicolon + 1);
    ++number;
  }
}

Decision evaluate(const NormalizedResult& result, const OptimalRule& rule, const Analyte& analyte) {
  Decision decision;
  decision.value = result.value;
  // The range printed on the report is used as a whole: ">5.4" means no upper limit, not "the
  // catalogue's upper limit". The catalogue's range stands in only when the report printed none.
  if (result.ref_low || result.ref_high) {
    decision.ref_low = result.ref_low;
    decision.ref_high = result.ref_high;
  } else {
    decision.ref_low = analyte.ref_low;
    decision.ref_high = analyte.ref_high;
  }
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

}  // namespace labwatch::clinical
