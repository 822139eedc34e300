// SPDX-License-Identifier: Apache-2.0
// The spellings of outbox item states.
#include "storage/outbox_state.hpp"

namespace labwatch::storage {

std::string_view to_string(OutboxState state) noexcept {
  switch (state) {
    case OutboxState::pending:
      return "pending";
    case OutboxState::sending:
      return "sending";
    case OutboxState::sent:
      return "sent";
    case OutboxState::failed:
      return "failed";
  }
  return "pending";
}

std::optional<OutboxState> parse_outbox_state(std::string_view text) noexcept {
  for (const OutboxState state : kOutboxStates) {
    if (text == to_string(state)) {
      return state;
    }
  }
  return std::nullopt;
}

}  // namespace labwatch::storage
