// SPDX-License-Identifier: Apache-2.0
// Whether a new alert is mailed: the facts of one alert at ingest and the clinic's policy in, a
// verdict out (no storms from old results, no mail about a value the lab has not made final).
#pragma once

#include <cstdint>

#include "clinical/alert_status.hpp"
#include "clinical/normalized.hpp"

namespace labwatch::clinical {

inline constexpr std::int64_t kSecondsPerDay = 86'400;

// The clinic's policy (<alerts mail-max-age-days mail-preliminary>, `ingest --no-mail`).
struct MailPolicy {
  // Results collected more than this before the ingest are history: alerted, never mailed.
  std::int64_t max_age_seconds = 30 * kSecondsPerDay;
  bool mail_preliminary = false;  // mail a preliminary value at once instead of at its final
  bool suppressed = false;        // this ingest queues no mail at all (`ingest --no-mail`)
};

// What is known of one new alert when it is raised.
struct MailFacts {
  UnixSeconds collected_at = 0;  // of the result the alert is about
  UnixSeconds now = 0;           // the ingest's time
  ResultStatus status = ResultStatus::final;
  bool has_recipients = false;  // routing names someone for the report
};

enum class MailVerdict : std::uint8_t {
  mail,          // queue a notice to the report's recipients
  no_recipient,  // nobody to tell (no mail configured, no route), or this ingest mails nothing
  historical,    // the result is older than max_age_seconds: recorded, never mailed
  preliminary,   // held until the lab makes the value final, then mailed
  silenced,      // a practitioner's silence covers it (clinical/silence.hpp): recorded, not mailed
};

// The verdict for one new alert. Order: an old result is historical whatever else holds (a bulk
// import of history must not mail); then a suppressed ingest or no recipient; then a preliminary
// value is held unless the policy mails preliminaries; else mail. A collection time in the future
// (a skewed lab clock) counts as fresh.
MailVerdict decide_mail(const MailFacts& facts, const MailPolicy& policy) noexcept;

// The status a verdict records for a new alert: pending (mail), unmailed, historical, preliminary,
// silenced.
AlertStatus alert_status(MailVerdict verdict) noexcept;

}  // namespace labwatch::clinical
