// SPDX-License-Identifier: Apache-2.0
// What a mail says about one alert: the kinds of notice the alert policy queues.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace labwatch::clinical {

// What a mail says about one alert.
enum class NoticeKind : std::uint8_t {
  alert,       // a value outside its target
  correction,  // a new version of an alerted result, still outside target: corrected (C), or
               // violating another clause than the version it replaces
  resolution,  // a new version back inside its target (or a trend that no longer holds): the
               // earlier alert is resolved
  retraction,  // the lab cancelled (X) an alerted result: its alert is withdrawn
};
// "alert", "correction", "resolution", "retraction" (also the text stored in the database).
std::string_view to_string(NoticeKind kind) noexcept;
// The inverse of to_string; nullopt for any other text.
std::optional<NoticeKind> parse_notice_kind(std::string_view text) noexcept;

}  // namespace labwatch::clinical
