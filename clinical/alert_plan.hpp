// SPDX-License-Identifier: Apache-2.0
// The alert policy's decisions for one change of a result's current set: which alert is raised,
// kept, resolved, superseded or withdrawn, and who is told what. Pure: the ledger
// (storage/alert_ledger) loads the facts, asks for a plan and applies it, as storage applies
// clinical::plan_version.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "clinical/alert_status.hpp"
#include "clinical/mail_policy.hpp"
#include "clinical/normalized.hpp"
#include "clinical/notice_kind.hpp"
#include "clinical/rule_ref.hpp"
#include "clinical/silence.hpp"

namespace labwatch::clinical {

struct Decision;

// An alert that already stands in the slot a plan is about: the alert of the same slot (the
// optimal target, or one trend rule) on the version the new one replaces, or a trend alert of a
// result whose trend is judged again.
struct EarlierAlert {
  std::string_view rule;  // its rule name as stored
  AlertStatus state = AlertStatus::unmailed;
};

// Who hears of a notice. `report`: the recipients of the report being stored (recipients_for);
// `told`: whoever may have been told about the earlier alert (a mail of it sent, or attempted and
// not failed permanently: a timeout after the final dot may have delivered it).
enum class Audience : std::uint8_t { nobody, report, told, report_and_told };

// What to do in one slot. Applied in this order: the new alert is raised (or the earlier one
// reopened) and its notice queued; the earlier alert's notice is queued; the earlier alert's
// unsent notices are taken back; the earlier alert moves to its new state.
struct AlertPlan {
  // The new alert: none, a new row, or the earlier (inactive) alert reopened with the decision's
  // values.
  enum class Raise : std::uint8_t { none, insert, reopen };
  Raise raise = Raise::none;
  // Its state; AlertStatus::pending instead when its notice goes to anyone.
  AlertStatus state = AlertStatus::unmailed;
  // It takes the earlier alert's place in the mail already queued or sent (its notices move to it,
  // so a queued mail shows the new value), and nothing more is mailed.
  bool take_over_notices = false;
  std::optional<NoticeKind> notice;  // queued about the new alert (alert, correction)
  Audience audience = Audience::nobody;
  // A correction names the value it corrects: the earlier alert's.
  bool notice_shows_earlier_value = false;

  // The earlier alert: its notice (resolution, retraction, or the alert of a promoted value), to
  // whom, and whether that notice shows the earlier alert's value as the one left behind.
  std::optional<NoticeKind> earlier_notice;
  Audience earlier_audience = Audience::nobody;
  bool earlier_notice_shows_its_value = false;
  // Its notices still queued and never attempted are taken back (the mail item goes when nothing
  // else is left in it).
  bool take_back_unsent = false;
  std::optional<AlertStatus> earlier_to;  // its new state; nullopt: unchanged

  bool operator==(const AlertPlan&) const = default;
};

// What the plan for a new current version's decision is made from.
struct SlotFacts {
  std::optional<EarlierAlert> earlier;              // the replaced version's alert of the same slot
  bool corrected = false;                           // the new version corrects the value (OBX-11 C)
  MailVerdict verdict = MailVerdict::no_recipient;  // clinical::decide_mail for the new version
  std::span<const Silence> silences = {};           // in force for the person and analyte
  std::string_view flags;  // the new version's lab flags (the side of a lab-flag alert)
  UnixSeconds now = 0;
};

// The plan for `decision`, one rule's judgement of a new current version, against the alert of
// the same slot on the version it replaces:
// - inside target: the earlier alert is resolved, and whoever may have been told gets a
//   resolution showing the value they were told of; its unsent notices are taken back;
// - the same rule violated again, not a correction, the earlier alert held (preliminary or
//   silenced, so nothing was queued for it): a new alert decided by its own verdict (mailed to the
//   report's recipients when it says so); the earlier one is superseded;
// - the same rule violated again, not a correction, otherwise: the new alert takes over the
//   earlier one's state and notices (a queued mail now shows the new value), nothing more is
//   mailed; the earlier one is superseded;
// - otherwise a new alert: a correction when it replaces an alert (to the report's recipients if
//   the verdict mails, and to whoever may have been told, since what they were told is no longer
//   true), else a plain alert to the report's recipients if the verdict mails; the earlier one's
//   unsent notices are taken back and it is superseded.
// The verdict of a new alert passes the silences first (apply_silence).
AlertPlan plan_alerts(const Decision& decision, const SlotFacts& facts);

// Why an active alert leaves without a judgement in its slot.
enum class ClosingCause : std::uint8_t {
  withdrawn_by_lab,  // its result was cancelled (X, W, D): whoever may have been told hears so
  superseded,        // its version left the current set, or its rule is no longer configured
};
// Closes an active alert: withdrawn (a retraction to whoever may have been told) or superseded
// (silently). Its unsent notices are taken back either way.
AlertPlan plan_closing(ClosingCause cause);

// A preliminary value made final in place (OBX-11 U): an alert held as preliminary is decided
// anew by the final value's verdict `final_verdict`, under the silences (the earlier alert's own
// rule, value and band, as `held` and `state_of` give them); mailed to the report's recipients
// when the verdict mails. An alert in any other state is left as it is.
AlertPlan plan_promotion(const EarlierAlert& held, const AlertState& state_of,
                         MailVerdict final_verdict, std::span<const Silence> silences,
                         UnixSeconds now);

// An alert queued for mail when a silence came to cover it after it was raised (a merge brought
// the silences of another identity of the person): while none of its mail has been attempted
// (`all_unsent`), it is held as silenced and its notices are taken back; a mail already attempted
// may have arrived, so the alert is left as it is. Alerts in other states are left as they are.
AlertPlan plan_new_silence(const EarlierAlert& alert, const AlertState& state_of,
                           std::span<const Silence> silences, UnixSeconds now, bool all_unsent);

// A trend judged again on a later result (its run now includes a changed point): the result is
// not new, so nothing is mailed about it. Violated: a new alert is raised unmailed, as history, or
// an inactive one is reopened; an active one is kept. Not violated: an active alert is resolved,
// with a resolution to whoever may have been told.
AlertPlan plan_rejudged_trend(bool violated, const std::optional<EarlierAlert>& existing);

}  // namespace labwatch::clinical
