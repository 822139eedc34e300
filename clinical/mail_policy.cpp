// SPDX-License-Identifier: Apache-2.0
// The mail decision of a new alert: age, suppression, routing, preliminary status.
#include "clinical/mail_policy.hpp"

namespace labwatch::clinical {

MailVerdict decide_mail(const MailFacts& facts, const MailPolicy& policy) noexcept {
  // Why age comes first: an import of two years of history would otherwise mail every old
  // deficiency as news; a practitioner reads them in `labwatch alerts` and the report instead.
  if (facts.now - facts.collected_at > policy.max_age_seconds) {
    return MailVerdict::historical;
  }
  if (policy.suppressed || !facts.has_recipients) {
    return MailVerdict::no_recipient;
  }
  if (facts.status == ResultStatus::preliminary && !policy.mail_preliminary) {
    return MailVerdict::preliminary;
  }
  return MailVerdict::mail;
}

AlertStatus alert_status(MailVerdict verdict) noexcept {
  switch (verdict) {
    case MailVerdict::mail:
      return AlertStatus::pending;
    case MailVerdict::no_recipient:
      return AlertStatus::unmailed;
    case MailVerdict::historical:
      return AlertStatus::historical;
    case MailVerdict::preliminary:
      return AlertStatus::preliminary;
    case MailVerdict::silenced:
      return AlertStatus::silenced;
  }
  return AlertStatus::unmailed;
}

}  // namespace labwatch::clinical
