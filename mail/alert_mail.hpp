// SPDX-License-Identifier: Apache-2.0
// Alert mail: one outbox item (one patient, one recipient) as the e-mail that tells about it.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "clinical/analyte_catalogue.hpp"
#include "clinical/normalized.hpp"
#include "clinical/rules.hpp"
#include "mail/mail_message.hpp"
#include "present/trend_report.hpp"
#include "storage/outbox.hpp"

namespace labwatch::daemon {

// What a mail takes from the configuration to word its findings for people.
struct MailWording {
  // The optimal rules in force (config targets), analyte -> rule: the target and the tier in
  // words. nullptr, or an alert whose clause the rule no longer holds: the alert's own band.
  const std::map<std::string, clinical::OptimalRule, std::less<>>* targets = nullptr;
  std::string timezone;  // IANA zone of the times shown (<mail timezone>); empty: the machine's
};

// The e-mail for `item`: From `from_address` (config mail.from), To the item's recipient, the
// item's own Message-ID (fixed when queued), References/In-Reply-To naming the earlier mails its
// corrections refer to, dated `date`, with a plain text and an HTML body listing every notice.
// How much of the patient it shows follows recipient.full_phi: minimal = initials and the report
// reference only (no name, birth date, dates or values); full = name, birth date, patient key,
// values, collection times and recent history. Notices are grouped by analyte (in the order the
// analytes first appear), each group in collection order; a full-PHI item says its draw's time in
// `wording.timezone`, a minimal one its position ("most recent of 3 draws"). Each says the value at
// the lab's precision, the target and the tier in words, and the lab's range in the canonical unit
// with the lab's text (or the catalogue's, and why). Analyte names come from `catalogue`. With a
// `report` (the patient's trend report) and a full-PHI recipient, the HTML body carries the report
// after the notices, in the same document, and the text body says so; a minimal-PHI recipient
// never gets it. No header carries patient data (see alert_subject). Never fails: text from the
// database that could not go into a header (control characters, invalid UTF-8) is cleaned first.
// Whether the addresses and Message-IDs are valid is checked by render_mime.
MailMessage compose_alert_mail(const storage::OutboxItem& item, std::string_view from_address,
                               const clinical::AnalyteCatalogue& catalogue,
                               clinical::UnixSeconds date, const ReportInput* report = nullptr,
                               const MailWording& wording = {});

// The subject alone, the same at every PHI level: "labwatch: 3 results outside optimal target
// (person 12)", where 12 is labwatch's own person id (what `labwatch report --patient` takes).
// Mail headers are logged and shown by every relay, so it never names the patient, their
// initials, identifiers, birth date, collection dates, report or accession numbers, or values.
std::string alert_subject(const storage::OutboxItem& item);

// "J.D." for given "John", family "Doe": the first letter or digit of each, ASCII upper-cased,
// non-ASCII kept whole ("Ä."). A name without one contributes nothing; both empty give "".
std::string patient_initials(std::string_view given, std::string_view family);

// `text` as one clean line: invalid UTF-8 bytes become U+FFFD, control characters (CR, LF, TAB,
// NUL, DEL, C1) become spaces, runs of spaces collapse to one, and the ends are trimmed.
std::string single_line(std::string_view text);

}  // namespace labwatch::daemon
