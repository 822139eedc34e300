// SPDX-License-Identifier: Apache-2.0
// The lifecycle states of a stored alert: one typed vocabulary, with the spellings the database
// stores and `labwatch alerts` prints.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace labwatch::clinical {

// Where a stored alert stands. Not clinical::AlertState (silence.hpp), which is the side and tier
// of a value outside its target.
enum class AlertStatus : std::uint8_t {
  // Active: the alert stands for a current result.
  unmailed,     // no mail queued: no recipient, `ingest --no-mail`, or a trend re-judged
  historical,   // collected before the mail age limit: recorded, never mailed
  preliminary,  // held until the lab makes the value final, then mailed
  silenced,     // a practitioner's silence kept it from being mailed
  pending,      // a notice is queued
  sent,         // the relay accepted the mail
  failed,       // the mail failed permanently
  // History: the alert no longer stands.
  resolved,    // a new version (or a re-judged trend) is back inside its target
  superseded,  // a new version took its place, or its rule is no longer configured
  withdrawn,   // the lab cancelled its result
};

// Every status, active ones first, in declaration order.
inline constexpr std::array kAlertStatuses = {AlertStatus::unmailed,    AlertStatus::historical,
                                              AlertStatus::preliminary, AlertStatus::silenced,
                                              AlertStatus::pending,     AlertStatus::sent,
                                              AlertStatus::failed,      AlertStatus::resolved,
                                              AlertStatus::superseded,  AlertStatus::withdrawn};

// The spelling stored in alerts.state and printed by `labwatch alerts`: the enumerator's name
// ("unmailed", ..., "withdrawn"). Stored data depends on it: never change one.
std::string_view to_string(AlertStatus status) noexcept;
// The inverse of to_string; nullopt for any other text (case-sensitive, no trimming).
std::optional<AlertStatus> parse_alert_status(std::string_view text) noexcept;
// Whether an alert in `status` stands for a current result: unmailed, historical, preliminary,
// silenced, pending, sent and failed are active; resolved, superseded and withdrawn are history.
bool is_active(AlertStatus status) noexcept;

}  // namespace labwatch::clinical
