// SPDX-License-Identifier: Apache-2.0
// The states of an outbox item: one typed vocabulary, with the spellings the database stores
// (outbox.state) and `labwatch outbox` prints.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace labwatch::storage {

// Where one mail of the outbox stands: pending -> sending (claimed) -> sent | failed, or back to
// pending for a retry, after a crash, or by `labwatch outbox --retry`. Not clinical::AlertStatus,
// whose pending, sent and failed say what became of an alert's mail.
enum class OutboxState : std::uint8_t {
  pending,  // queued: due at the later of its collect wait and its retry time
  sending,  // claimed by the dispatcher: a send is in flight (or a crash interrupted it)
  sent,     // the relay accepted it
  failed,   // failed permanently (a 5xx, an unrenderable message)
};

// Every state, in declaration order.
inline constexpr std::array kOutboxStates = {OutboxState::pending, OutboxState::sending,
                                             OutboxState::sent, OutboxState::failed};

// The spelling stored in outbox.state and printed by `labwatch outbox`: the enumerator's name
// ("pending", "sending", "sent", "failed"). Stored data and the SQL of storage/ depend on it:
// never change one.
std::string_view to_string(OutboxState state) noexcept;
// The inverse of to_string; nullopt for any other text (case-sensitive, no trimming).
std::optional<OutboxState> parse_outbox_state(std::string_view text) noexcept;

}  // namespace labwatch::storage
