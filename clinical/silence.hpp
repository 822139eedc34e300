// SPDX-License-Identifier: Apache-2.0
// Silences: a practitioner treating a known deficiency asks not to be mailed at every new draw of
// one analyte of one patient until a date. Whether a new alert falls under a silence is decided
// here, from plain facts; storage only loads the silence and applies the verdict.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "clinical/mail_policy.hpp"
#include "clinical/normalized.hpp"
#include "clinical/rule_ref.hpp"

namespace labwatch::clinical {

// Where an alerted value lies against what its rule demanded.
enum class AlertSide : std::uint8_t {
  unknown,  // the rule cannot tell (a lab flag without direction, a band without the crossed bound)
  below,
  above,
};

// How much an alert says, least first: a trend rule, an ideal-tier miss, the lab's own flag or
// range, a hard-tier miss (below the minimum, above the maximum, outside a hard band).
enum class AlertTier : std::uint8_t { trend, ideal, lab, hard };

// The state of one alert: which side of its target, at which tier.
struct AlertState {
  AlertSide side = AlertSide::unknown;
  AlertTier tier = AlertTier::hard;
  bool operator==(const AlertState&) const = default;
};

// The state of an alert of rule `rule` for `value` against the band it was judged by
// (target_low/target_high; a lab-range alert's band is the lab's range). A trend rule is below
// when it is about a fall or a decline; a lab flag reads its direction from `flags` (L, LL, H,
// HH, ...), else unknown. A rule of unknown source counts as a hard-tier one.
AlertState alert_state_of(const RuleRef& rule, double value, std::optional<double> target_low,
                          std::optional<double> target_high, std::string_view flags = {});

// An active alert on a current result of the analyte a practitioner silences.
struct SilencedAlert {
  RuleRef rule;
  double value = 0;
  std::optional<double> target_low;
  std::optional<double> target_high;
  std::string flags;  // the result's abnormal flags (a lab_flag alert's direction)
  UnixSeconds collected_at = 0;
};

// The state of the alert a new silence is set against: the alert the practitioner is looking
// at, on the latest draw of the analyte. Of that draw's alerts (`alerts`, newest draw first, in
// the order the ledger raised them within a draw) the first that is not a trend alert; a trend
// alert only when the draw has no other. nullopt when no alert is active.
std::optional<AlertState> silenced_alert_state(std::span<const SilencedAlert> alerts);

// A silence in force for one person and analyte: until when, and the state of the alert it was
// set against (nullopt: no alert was active when it was set).
struct Silence {
  std::int64_t silence_id = 0;
  UnixSeconds until = 0;  // mail resumes at this time
  std::optional<AlertState> set_for;
};

// Whether `silence` keeps a new alert of state `alert` from being mailed at `now`. Not after its
// end. A silence set against an alert covers alerts on the same side (or whose side is unknown)
// at the same or a lesser tier; an alert on the other side, or at a higher tier (a hard-tier miss
// under a silence set for an ideal-tier one), still mails. A silence set while no alert was active
// covers every alert of the analyte.
bool silence_covers(const Silence& silence, const AlertState& alert, UnixSeconds now) noexcept;

// The verdict of a new alert under the silences of its person and analyte (none: the verdict as
// given): a verdict that would mail it, or hold it until final, becomes MailVerdict::silenced
// when one of them covers it. Historical, suppressed or unrouted alerts keep their verdict (they
// are not mailed anyway).
MailVerdict apply_silence(MailVerdict verdict, std::span<const Silence> silences,
                          const AlertState& alert, UnixSeconds now) noexcept;

// "below", "above", "unknown"; "trend", "ideal", "lab", "hard": how the state is stored. The
// readers return nullopt for any other text.
std::string_view to_string(AlertSide side) noexcept;
std::string_view to_string(AlertTier tier) noexcept;
std::optional<AlertSide> read_alert_side(std::string_view text) noexcept;
std::optional<AlertTier> read_alert_tier(std::string_view text) noexcept;

}  // namespace labwatch::clinical
