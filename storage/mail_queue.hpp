// SPDX-License-Identifier: Apache-2.0
// The dispatcher's side of the SQLite outbox: claiming due mail and recording what became of it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "clinical/normalized.hpp"
#include "storage/outbox.hpp"
#include "storage/sql.hpp"

namespace labwatch::storage {

// The MailOutbox of a Store on one connection. Each call is one transaction; SQLite errors
// throw SQLite::Exception, PostgreSQL errors sql::Error. Item states: pending -> sending (claimed,
// with a lease) -> sent | failed, or back to pending for a retry, after a crash of its own site,
// or when its lease ends. Daemons of several sites may share the outbox (PostgreSQL): a claim
// takes only items no other transaction holds (FOR UPDATE SKIP LOCKED), and the ledger locks the
// items it adds notices to or takes notices from, so no notice joins or leaves a mail being sent.
class MailQueue {
 public:
  // How long a claimed item stays its claimer's: longer than any one delivery takes (the SMTP
  // client's own timeouts are far shorter), short enough that a site's mail is not held long by
  // a daemon that died while sending it.
  static constexpr clinical::UnixSeconds kLeaseSeconds = 600;

  MailQueue(sql::Database& db, std::string site) : db_(db), site_(std::move(site)) {}

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
  std::string site_;
};

}  // namespace labwatch::storage
