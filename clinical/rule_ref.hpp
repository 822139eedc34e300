// SPDX-License-Identifier: Apache-2.0
// Which rule an alert names, as a type: the decisions that follow an alert (its tier and side, its
// wording, its mail) read this instead of the rule's text.
#pragma once

#include <cstdint>
#include <string_view>

namespace labwatch::clinical {

// The kinds of an optimal-rule clause (clinical/rules.hpp, RuleClause): ge:X gt:X le:X lt:X
// range:A-B within_ref ref_upper_third ref_lower_half ref_upper_half.
enum class ClauseKind : std::uint8_t {
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

// The kinds of a trend rule (clinical/rules.hpp, TrendRule): trend:falling:F,
// trend:falling:PCT:DAYS (falling_within), trend:away:N, trend:consecutive:N, trend:toward:PCT.
enum class TrendKind : std::uint8_t { falling, away, falling_within, consecutive, toward };

// The rule an alert names. Decisions carry it (clinical::evaluate, evaluate_trend); an alert read
// back from storage gets it from its stored rule name by rule_ref, once.
struct RuleRef {
  enum class Source : std::uint8_t {
    unknown,    // a name no rule of this version writes (an alert stored by a later version)
    clause,     // a clause of the analyte's optimal rule
    lab_range,  // the value lies outside the lab's printed range (kLabRangeRule)
    lab_flag,   // the lab flagged the value (kLabFlagRule)
    trend,      // a trend rule over the person's results
  };
  Source source = Source::unknown;
  ClauseKind clause = ClauseKind::ge;    // Source::clause
  bool ideal = false;                    // Source::clause: a clause of the softer, ideal tier
  TrendKind trend = TrendKind::falling;  // Source::trend

  bool operator==(const RuleRef&) const = default;

  [[nodiscard]] bool is_trend() const noexcept { return source == Source::trend; }
  // The lab's own witness (its range or its flag) rather than a rule of ours.
  [[nodiscard]] bool is_lab() const noexcept {
    return source == Source::lab_range || source == Source::lab_flag;
  }
  // A fall or a run of declines: about the low side, and its threshold derives from the patient's
  // own earlier value (so minimal-PHI mail does not show it).
  [[nodiscard]] bool is_fall() const noexcept {
    return source == Source::trend &&
           (trend == TrendKind::falling || trend == TrendKind::falling_within ||
            trend == TrendKind::consecutive);
  }
  // A bound the value must lie strictly beyond (gt:X, lt:X): a value on it violates the clause.
  [[nodiscard]] bool strict_low() const noexcept {
    return source == Source::clause && clause == ClauseKind::gt;
  }
  [[nodiscard]] bool strict_high() const noexcept {
    return source == Source::clause && clause == ClauseKind::lt;
  }
};

// The reference of a rule name as alerts store it: a clause text ("ge:50", "ideal:gt:70",
// "ref_upper_third"), "lab_range", "lab_flag", or a trend clause ("trend:falling:30:365"). A name
// that is none of these (a later version's rule) is Source::unknown.
RuleRef rule_ref(std::string_view rule);

}  // namespace labwatch::clinical
