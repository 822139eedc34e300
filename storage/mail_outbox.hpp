// SPDX-License-Identifier: Apache-2.0
// MailOutbox: the dispatcher's side of a store's mail outbox (storage/outbox.hpp holds the model).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "clinical/normalized.hpp"
#include "storage/outbox.hpp"

namespace labwatch::storage {

// The mail outbox, as the dispatcher and `labwatch outbox` use it. Each call is one transaction.
// An item's states (OutboxState): pending -> sending (claimed) -> sent | failed, or back to
// pending for a retry, after a crash, or when a failed one is retried.
class MailOutbox {
 public:
  virtual ~MailOutbox() = default;
  MailOutbox() = default;
  MailOutbox(const MailOutbox&) = delete;
  MailOutbox& operator=(const MailOutbox&) = delete;
  MailOutbox(MailOutbox&&) = delete;
  MailOutbox& operator=(MailOutbox&&) = delete;

  // Claims up to `max` outbox items due at `now` (pending, due_at <= now, next_attempt_at <= now),
  // oldest due first: marks them 'sending', counts the attempt, and returns them with their
  // notices, each with the last 5 current values of its person and analyte.
  virtual std::vector<OutboxItem> claim_due_mail(clinical::UnixSeconds now, int max) = 0;
  // The relay accepted item `outbox_id`: it is 'sent', and so are the active alerts it carried.
  virtual void mark_mail_sent(std::int64_t outbox_id, clinical::UnixSeconds now) = 0;
  // A transient failure: the item is pending again, due at `next_attempt`; no notice joins it now.
  virtual void mark_mail_retry(std::int64_t outbox_id, clinical::UnixSeconds next_attempt,
                               std::string_view error) = 0;
  // A permanent failure (5xx, unrenderable): the item is 'failed', and so are its pending alerts
  // that no other item still carries. A sent item stays sent.
  virtual void mark_mail_failed(std::int64_t outbox_id, std::string_view error) = 0;
  // At start-up: items left 'sending' by a crash become pending again (delivery is at least
  // once). Returns how many.
  virtual int reset_interrupted_mail() = 0;
  // When the earliest pending item is due (the later of its due_at and next_attempt_at); nullopt
  // when nothing is pending.
  virtual std::optional<clinical::UnixSeconds> next_mail_due() = 0;
  // Outbox items by id: those not sent (pending, sending, failed); `all` adds the sent ones.
  virtual std::vector<OutboxRow> outbox(bool all) = 0;
  // Puts failed items back in the queue, due at `now` (attempts and last error kept): item
  // `outbox_id` only when given, else every failed one; their failed alerts are pending again.
  // Returns how many items were failed and now are pending (0 for an id that is not failed).
  virtual int retry_failed_mail(std::optional<std::int64_t> outbox_id,
                                clinical::UnixSeconds now) = 0;
};

}  // namespace labwatch::storage
