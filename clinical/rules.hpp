// SPDX-License-Identifier: Apache-2.0
// Optimal-target rules: the grammar of analytes.csv `optimal_rule` and the decision for one result.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "clinical/analyte_catalogue.hpp"
#include "clinical/normalized.hpp"
#include "parsers/expected.hpp"

namespace labwatch::clinical {

// One clause of a rule: ge:X gt:X le:X lt:X range:A-B within_ref ref_upper_third ref_lower_half
// ref_upper_half; `ideal` marks a softer second tier ("ideal:gt:70").
struct RuleClause {
  enum class Kind {
    ge,
    gt,
    le,
    lt,
    range,
    within_ref,
    ref_upper_third,
    ref_lower_half,
    ref_upper_half
  };
  Kind kind = Kind::ge;
  double a = 0;  // threshold, or range low
  double b = 0;  // range high
  bool ideal = false;
  std::string text;  // the clause as written, e.g. "ideal:gt:70" (the rule name in alerts)
};

struct OptimalRule {
  std::vector<RuleClause> clauses;  // all must hold; hard clauses are checked before ideal ones
  std::string text;
};

// Parses "ge:50;ideal:gt:70" (clauses trimmed; numbers with '.'; range bounds may be negative).
// An empty text is a rule without clauses. Error text says which clause is wrong and why.
parsers::Expected<OptimalRule, std::string> parse_optimal_rule(std::string_view text);

// The decision for one result: the first violated clause (hard before ideal), with what it used,
// so that an alert can be explained. `violated` false means within target.
struct Decision {
  bool violated = false;
  std::string rule;                  // clause text, e.g. "ge:50" or "ref_upper_third"
  std::optional<double> target_low;  // the target band actually applied, canonical unit
  std::optional<double> target_high;
  std::optional<double> ref_low;  // the reference range used (the report's, else the catalogue's)
  std::optional<double> ref_high;
  double value = 0;
};

// Evaluates a result against a rule. Reference-relative clauses use the result's own range when it
// has either bound, else the analyte's catalogue range; a missing bound is not checked, and a
// relative clause that needs it is not violated. A censored value ("<5") is judged by its bound; a
// cancelled result is never violated. Values within 1e-9 (relative) of a bound count as on it.
Decision evaluate(const NormalizedResult& result, const OptimalRule& rule, const Analyte& analyte);

}  // namespace labwatch::clinical
