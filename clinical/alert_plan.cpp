// SPDX-License-Identifier: Apache-2.0
// The alert policy's decisions for one change of a result's current set.
#include "clinical/alert_plan.hpp"

#include "clinical/rules.hpp"

namespace labwatch::clinical {

namespace {

// An alert held back from mail (preliminary, silenced): nothing was queued for it.
bool held(AlertStatus state) noexcept {
  return state == alert_status(MailVerdict::preliminary) ||
         state == alert_status(MailVerdict::silenced);
}

}  // namespace

AlertPlan plan_alerts(const Decision& decision, const SlotFacts& facts) {
  AlertPlan plan;
  const std::optional<EarlierAlert>& earlier = facts.earlier;
  if (!decision.violated) {
    if (earlier) {
      plan.earlier_notice = NoticeKind::resolution;
      plan.earlier_audience = Audience::told;
      plan.earlier_notice_shows_its_value = true;
      plan.take_back_unsent = true;
      plan.earlier_to = AlertStatus::resolved;
    }
    return plan;
  }
  MailVerdict verdict = facts.verdict;
  if (!facts.silences.empty()) {
    verdict = apply_silence(verdict, facts.silences,
                            alert_state_of(decision.ref, decision.value, decision.target_low,
                                           decision.target_high, facts.flags),
                            facts.now);
  }
  const bool mails = verdict == MailVerdict::mail;
  plan.raise = AlertPlan::Raise::insert;
  plan.state = alert_status(verdict);
  const bool same_rule = earlier && earlier->rule == decision.rule && !facts.corrected;
  if (same_rule && held(earlier->state)) {
    // Nothing was queued for a held or silenced alert: the new version decides anew (a value that
    // crossed to another state under a silence is mailed).
    if (mails) {
      plan.notice = NoticeKind::alert;
      plan.audience = Audience::report;
    }
    plan.earlier_to = AlertStatus::superseded;
    return plan;
  }
  if (same_rule) {
    plan.state = earlier->state;
    plan.take_over_notices = true;
    plan.earlier_to = AlertStatus::superseded;
    return plan;
  }
  if (earlier) {
    plan.notice = NoticeKind::correction;
    plan.audience = mails ? Audience::report_and_told : Audience::told;
    plan.notice_shows_earlier_value = true;
    plan.take_back_unsent = true;
    plan.earlier_to = AlertStatus::superseded;
  } else if (mails) {
    plan.notice = NoticeKind::alert;
    plan.audience = Audience::report;
  }
  return plan;
}

AlertPlan plan_closing(ClosingCause cause) {
  AlertPlan plan;
  plan.take_back_unsent = true;
  if (cause == ClosingCause::withdrawn_by_lab) {
    plan.earlier_notice = NoticeKind::retraction;
    plan.earlier_audience = Audience::told;
    plan.earlier_to = AlertStatus::withdrawn;
  } else {
    plan.earlier_to = AlertStatus::superseded;
  }
  return plan;
}

AlertPlan plan_promotion(const EarlierAlert& held_alert, const AlertState& state_of,
                         MailVerdict final_verdict, std::span<const Silence> silences,
                         UnixSeconds now) {
  AlertPlan plan;
  if (held_alert.state != alert_status(MailVerdict::preliminary)) {
    return plan;
  }
  const MailVerdict verdict = apply_silence(final_verdict, silences, state_of, now);
  plan.earlier_to = alert_status(verdict);
  if (verdict == MailVerdict::mail) {
    plan.earlier_notice = NoticeKind::alert;
    plan.earlier_audience = Audience::report;
  }
  return plan;
}

AlertPlan plan_new_silence(const EarlierAlert& alert, const AlertState& state_of,
                           std::span<const Silence> silences, UnixSeconds now, bool all_unsent) {
  AlertPlan plan;
  if (alert.state != alert_status(MailVerdict::mail) || !all_unsent ||
      apply_silence(MailVerdict::mail, silences, state_of, now) != MailVerdict::silenced) {
    return plan;
  }
  plan.take_back_unsent = true;
  plan.earlier_to = alert_status(MailVerdict::silenced);
  return plan;
}

AlertPlan plan_rejudged_trend(bool violated, const std::optional<EarlierAlert>& existing) {
  AlertPlan plan;
  const bool active = existing && is_active(existing->state);
  if (violated) {
    if (!existing) {
      plan.raise = AlertPlan::Raise::insert;
    } else if (!active) {
      plan.raise = AlertPlan::Raise::reopen;
    }
    plan.state = AlertStatus::unmailed;
  } else if (active) {
    plan.earlier_notice = NoticeKind::resolution;
    plan.earlier_audience = Audience::told;
    plan.take_back_unsent = true;
    plan.earlier_to = AlertStatus::resolved;
  }
  return plan;
}

}  // namespace labwatch::clinical
