// SPDX-License-Identifier: Apache-2.0
// Silences: the state of an alert, and whether a silence covers a new one.
#include "clinical/silence.hpp"

#include "clinical/lab_range.hpp"
#include "clinical/rules.hpp"

namespace labwatch::clinical {

std::optional<AlertState> silenced_alert_state(std::span<const SilencedAlert> alerts) {
  std::optional<AlertState> set_for;
  for (const SilencedAlert& alert : alerts) {
    if (alert.collected_at != alerts.front().collected_at) {
      break;  // only the latest draw's alerts
    }
    if (set_for && alert.rule.is_trend()) {
      continue;  // a trend alert is taken only when the draw has no other
    }
    set_for =
        alert_state_of(alert.rule, alert.value, alert.target_low, alert.target_high, alert.flags);
    if (!alert.rule.is_trend()) {
      break;
    }
  }
  return set_for;
}

AlertState alert_state_of(const RuleRef& rule, double value, std::optional<double> target_low,
                          std::optional<double> target_high, std::string_view flags) {
  AlertState state;
  if (rule.is_trend()) {
    state.tier = AlertTier::trend;
    // A fall or a run of declines is about the low side; a run away from, or toward an edge of,
    // the band reads its side from where the value lies in the band the rule judged.
    if (rule.is_fall()) {
      state.side = AlertSide::below;
    } else if (target_low && target_high) {
      const double middle = *target_low + (*target_high - *target_low) / 2.0;
      state.side = value < middle ? AlertSide::below : AlertSide::above;
    } else if (target_low) {
      state.side = AlertSide::below;
    } else if (target_high) {
      state.side = AlertSide::above;
    }
    return state;
  }
  if (rule.source == RuleRef::Source::lab_flag) {
    state.tier = AlertTier::lab;
    const LabFlag flag = read_lab_flag(flags);
    state.side = flag == LabFlag::low    ? AlertSide::below
                 : flag == LabFlag::high ? AlertSide::above
                                         : AlertSide::unknown;
    return state;
  }
  state.tier = rule.source == RuleRef::Source::lab_range ? AlertTier::lab
               : rule.ideal                              ? AlertTier::ideal
                                                         : AlertTier::hard;
  // A value on a gt/lt bound is outside it, so "not above the low bound" is the low side.
  if (target_low && value <= *target_low) {
    state.side = AlertSide::below;
  } else if (target_high && value >= *target_high) {
    state.side = AlertSide::above;
  }
  return state;
}

bool silence_covers(const Silence& silence, const AlertState& alert, UnixSeconds now) noexcept {
  if (now >= silence.until) {
    return false;
  }
  if (!silence.set_for) {
    return true;
  }
  const AlertState& was = *silence.set_for;
  const bool other_side =
      alert.side != AlertSide::unknown && was.side != AlertSide::unknown && alert.side != was.side;
  return !other_side && alert.tier <= was.tier;
}

MailVerdict apply_silence(MailVerdict verdict, std::span<const Silence> silences,
                          const AlertState& alert, UnixSeconds now) noexcept {
  if (verdict != MailVerdict::mail && verdict != MailVerdict::preliminary) {
    return verdict;
  }
  for (const Silence& silence : silences) {
    if (silence_covers(silence, alert, now)) {
      return MailVerdict::silenced;
    }
  }
  return verdict;
}

std::string_view to_string(AlertSide side) noexcept {
  switch (side) {
    case AlertSide::below:
      return "below";
    case AlertSide::above:
      return "above";
    case AlertSide::unknown:
      return "unknown";
  }
  return "unknown";
}

std::string_view to_string(AlertTier tier) noexcept {
  switch (tier) {
    case AlertTier::trend:
      return "trend";
    case AlertTier::ideal:
      return "ideal";
    case AlertTier::lab:
      return "lab";
    case AlertTier::hard:
      return "hard";
  }
  return "hard";
}

std::optional<AlertSide> read_alert_side(std::string_view text) noexcept {
  for (const AlertSide side : {AlertSide::unknown, AlertSide::below, AlertSide::above}) {
    if (text == to_string(side)) {
      return side;
    }
  }
  return std::nullopt;
}

std::optional<AlertTier> read_alert_tier(std::string_view text) noexcept {
  for (const AlertTier tier :
       {AlertTier::trend, AlertTier::ideal, AlertTier::lab, AlertTier::hard}) {
    if (text == to_string(tier)) {
      return tier;
    }
  }
  return std::nullopt;
}

}  // namespace labwatch::clinical
