// SPDX-License-Identifier: Apache-2.0
// The dispatcher's side of the SQLite outbox: claiming due mail and recording what became of it.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "clinical/normalized.hpp"
#include "storage/outbox.hpp"
#include "storage/sql.hpp"

namespace labwatch::storage {

// The MailOutbox of a Store on one connection. Each call is one transaction; SQLite errors
// throw SQLite::Exception. Item states: pending -> sending (claimed) -> sent | failed, or back to
// pending for a retry or after a crash.
class MailQueue {
 public:
  explicit MailQueue(sql::Database& db) : db_(db) {}

  // MailOutbox::claim_due_mail. `max` <= 0 claims nothing.
  std::vector<OutboxItem> claim_due(clinical::UnixSeconds now, int max);
  // MailOutbox::mark_mail_sent.
  void mark_sent(std::int64_t outbox_id, clinical::UnixSeconds now);
  // MailOutbox::mark_mail_retry. A sent or failed item is left as it is.
  void mark_retry(std::int64_t outbox_id, clinical::UnixSeconds next_attempt,
                  std::string_view error);
  // MailOutbox::mark_mail_failed. A sent item is left as it is.
  void mark_failed(std::int64_t outbox_id, std::string_view error);
  // MailOutbox::reset_interrupted_mail.
  int reset_interrupted();
  // MailOutbox::next_mail_due.
  std::optional<clinical::UnixSeconds> next_due();
  // MailOutbox::outbox.
  std::vector<OutboxRow> rows(bool all);
  // MailOutbox::retry_failed_mail.
  int retry_failed(std::optional<std::int64_t> outbox_id, clinical::UnixSeconds now);

 private:
  sql::Database& db_;
};

}  // namespace labwatch::storage
