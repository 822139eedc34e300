// SPDX-License-Identifier: Apache-2.0
// The spellings of alert statuses, and which are active.
#include "clinical/alert_status.hpp"

namespace labwatch::clinical {

std::string_view to_string(AlertStatus status) noexcept {
  switch (status) {
    case AlertStatus::unmailed:
      return "unmailed";
    case AlertStatus::historical:
      return "historical";
    case AlertStatus::preliminary:
      return "preliminary";
    case AlertStatus::silenced:
      return "silenced";
    case AlertStatus::pending:
      return "pending";
    case AlertStatus::sent:
      return "sent";
    case AlertStatus::failed:
      return "failed";
    case AlertStatus::resolved:
      return "resolved";
    case AlertStatus::superseded:
      return "superseded";
    case AlertStatus::withdrawn:
      return "withdrawn";
  }
  return "unmailed";
}

std::optional<AlertStatus> parse_alert_status(std::string_view text) noexcept {
  for (const AlertStatus status : kAlertStatuses) {
    if (text == to_string(status)) {
      return status;
    }
  }
  return std::nullopt;
}

bool is_active(AlertStatus status) noexcept {
  switch (status) {
    case AlertStatus::unmailed:
    case AlertStatus::historical:
    case AlertStatus::preliminary:
    case AlertStatus::silenced:
    case AlertStatus::pending:
    case AlertStatus::sent:
    case AlertStatus::failed:
      return true;
    case AlertStatus::resolved:
    case AlertStatus::superseded:
    case AlertStatus::withdrawn:
      return false;
  }
  return false;
}

}  // namespace labwatch::clinical
