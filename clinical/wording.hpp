// SPDX-License-Identifier: Apache-2.0
// Results written for people: numbers at the lab's precision, ranges, and where a value lies.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "clinical/analyte_catalogue.hpp"
#include "clinical/normalized.hpp"
#include "clinical/rules.hpp"

namespace labwatch::clinical {

// `value` with `decimals` decimals (rounded half away from zero), or with -1 (unknown) as a plain
// decimal of at most 6 decimals, trailing zeros dropped. Never an exponent, never "-0".
// format_shown(878.27976, 0) == "878"; format_shown(0.25, -1) == "0.25".
std::string format_shown(double value, int decimals);

// What a result's reference range is, for people: the lab's printed range in the canonical unit
// at the value's precision, with the lab's own text beside it when it reads otherwise ("66-274
// pg/mL (lab: 148-616 pmol/L)"); without a usable printed range, the catalogue's, said so, with
// why the lab's was not used ("30-100 ng/mL (catalogue range; lab range 4.2-6.8 unusable: the
// printed range is in another unit than the value)"). "" when there is neither.
struct RangeFacts {
  std::optional<double> ref_low;  // the usable printed range, canonical unit
  std::optional<double> ref_high;
  RangeProblem problem = RangeProblem::not_printed;
  std::string_view raw_range;  // as printed
  std::string_view raw_unit;   // the value's unit as sent
  std::string_view unit;       // canonical
  int decimals = -1;           // the value's shown decimals
};
std::string describe_range(const RangeFacts& facts, const Analyte& analyte);

// Where an alerted value lies, said plainly for its tier: "below the minimum of 50", "above the
// minimum, below the ideal of 70", "above the maximum of 1.0", "below the optimal range 40-60",
// "outside the lab's range 16-232 ng/mL", "flagged high by the lab", "below the upper third of the
// lab's range (>= 5.93)". `rule` is the alert's rule (a clause text, kLabRangeRule, kLabFlagRule);
// `configured` the analyte's optimal rule in force (nullptr: none), whose clause of that text
// gives the tier. A clause it no longer holds gives "outside the optimal target". A trend rule
// names the results it rests on (`evidence`, oldest first, each with its draw date as the caller
// writes it, "" to leave dates out): "fell 35 % within 365 days: 120 ng/mL (2026-01-02) to 78
// ng/mL (2026-05-03)", "3 declines in a row: ...", "moving toward the lower edge of the optimal
// band 40-60 ng/mL: ..."; without evidence, only the kind of trend.
struct EvidencePoint {
  double value = 0;
  std::string when;  // the draw date for people, or "" (minimal PHI)
};
struct FindingFacts {
  std::string_view rule;
  double value = 0;
  std::optional<double> target_low;  // the band the violated clause demanded
  std::optional<double> target_high;
  std::string_view flags;  // the lab's flags as sent
  std::string_view unit;
  int decimals = -1;
  std::span<const EvidencePoint> evidence = {};
};
std::string describe_finding(const FindingFacts& facts, const OptimalRule* configured);

// The tier of an alert's rule: "target" (a hard clause of the optimal rule), "ideal" (an ideal
// clause: the softer second tier), "lab" (kLabRangeRule, kLabFlagRule), "trend" (a trend clause),
// or "target" for a clause `configured` no longer holds.
std::string_view alert_tier(std::string_view rule, const OptimalRule* configured);

}  // namespace labwatch::clinical
