// SPDX-License-Identifier: Apache-2.0
// The mail outbox model: who gets told what about which alerts. Rows live in the DB, written in the
// same transaction as the results they are about, so a crash can delay mail but never lose it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "clinical/alert_policy.hpp"
#include "clinical/normalized.hpp"
#include "clinical/notice_kind.hpp"
#include "storage/outbox_state.hpp"

namespace labwatch::storage {

using Recipient = clinical::Recipient;
using Routing = clinical::Routing;

struct HistoryPoint {
  clinical::UnixSeconds collected_at = 0;
  double value = 0;
  std::string comparator;
  int shown_decimals = -1;  // the lab's precision in the canonical unit (-1 unknown)
};

// One line of a mail. alert/correction: about the alert of a new version (value = its value).
// resolution: about the earlier alert (rule, targets), with the new value inside target (value) and
// the alerted one (previous_value). retraction: about the withdrawn alert and its value.
struct Notice {
  std::int64_t alert_id = 0;
  clinical::NoticeKind kind = clinical::NoticeKind::alert;
  std::string analyte;
  double value = 0;
  std::string comparator;
  std::string unit;
  clinical::UnixSeconds collected_at = 0;
  std::string rule;
  std::optional<double> target_low;
  std::optional<double> target_high;
  std::optional<double> ref_low;  // the lab's printed range, canonical unit, only when usable
  std::optional<double> ref_high;
  std::string raw_range;
  std::string raw_unit;  // the value's unit as sent: the unit of raw_range
  // Why ref_low/ref_high is not the lab's printed range (none: it is), the lab's flags, and the
  // decimals the value is shown with (-1 unknown): what the mail says of the range and tier.
  clinical::RangeProblem range_problem = clinical::RangeProblem::not_printed;
  std::string flags;
  int shown_decimals = -1;
  std::optional<double> previous_value;  // correction/resolution: the alerted value it replaces
  // The Message-ID of the mail that told this recipient about the earlier alert (or may have:
  // it was attempted), else empty.
  std::string previous_message_id;
  std::vector<HistoryPoint> history;  // the last 5 current values of this analyte, oldest first
  // A trend alert: the results it rests on (clinical::Decision::evidence), oldest first.
  std::vector<clinical::TrendPoint> evidence;
};

// One e-mail to one recipient about one patient, claimed by the dispatcher.
struct OutboxItem {
  std::int64_t id = 0;
  std::string message_id;  // fixed when queued, reused on every retry: "<32 hex>@labwatch", no <>
  Recipient recipient;
  std::int64_t person_id = 0;
  std::string patient_key;
  std::string family;
  std::string given;
  std::string birth_date;
  // The reports the notices came from: control ids, else order ids, else the file name, joined by
  // ", " (safe to show at minimal PHI).
  std::string report_ref;
  int attempts = 0;  // delivery attempts including the one it was claimed for (1 the first time)
  std::vector<Notice> notices;  // in the order they were queued
};

// One outbox item as `labwatch` diagnostics list it (no patient data).
struct OutboxRow {
  std::int64_t id = 0;
  std::int64_t person_id = 0;  // the person number the mail is about
  std::string email;
  OutboxState state = OutboxState::pending;
  int attempts = 0;
  std::string last_error;
  std::string message_id;
  clinical::UnixSeconds due_at = 0;  // when it is (or was) next due: the later of the collect wait
                                     // and the retry time
  std::optional<clinical::UnixSeconds> sent_at;
  int alerts = 0;  // notices in it
};

}  // namespace labwatch::storage
