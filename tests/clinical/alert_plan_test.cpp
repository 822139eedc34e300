// SPDX-License-Identifier: Apache-2.0
#include "clinical/alert_plan.hpp"

#include <catch2/catch.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "clinical/rules.hpp"

using labwatch::clinical::AlertPlan;
using labwatch::clinical::AlertSide;
using labwatch::clinical::AlertState;
using labwatch::clinical::AlertStatus;
using labwatch::clinical::AlertTier;
using labwatch::clinical::Audience;
using labwatch::clinical::ClosingCause;
using labwatch::clinical::Decision;
using labwatch::clinical::EarlierAlert;
using labwatch::clinical::MailVerdict;
using labwatch::clinical::NoticeKind;
using labwatch::clinical::plan_alerts;
using labwatch::clinical::plan_closing;
using labwatch::clinical::plan_promotion;
using labwatch::clinical::plan_rejudged_trend;
using labwatch::clinical::rule_ref;
using labwatch::clinical::Silence;
using labwatch::clinical::SlotFacts;
using Raise = AlertPlan::Raise;

namespace {

// A violated decision of `rule` for a value below a low bound of 50 ("" : within target).
Decision decision_of(std::string_view rule, double value = 40) {
  Decision d;
  d.value = value;
  if (!rule.empty()) {
    d.violated = true;
    d.rule = rule;
    d.ref = rule_ref(rule);
    d.target_low = 50;
  }
  return d;
}

AlertPlan new_alert(AlertStatus state, std::optional<NoticeKind> notice = std::nullopt,
                    Audience audience = Audience::nobody) {
  AlertPlan plan;
  plan.raise = Raise::insert;
  plan.state = state;
  plan.notice = notice;
  plan.audience = audience;
  return plan;
}

}  // namespace

TEST_CASE("plan_alerts decides each slot of a new current version", "[clinical][alert_plan]") {
  struct Case {
    std::string_view name;
    std::string_view rule;  // the new decision's violated rule, "" inside target
    std::optional<EarlierAlert> earlier;
    bool corrected;
    MailVerdict verdict;
    AlertPlan expected;
  };
  AlertPlan resolve;
  resolve.earlier_notice = NoticeKind::resolution;
  resolve.earlier_audience = Audience::told;
  resolve.earlier_notice_shows_its_value = true;
  resolve.take_back_unsent = true;
  resolve.earlier_to = AlertStatus::resolved;

  AlertPlan take_over_sent = new_alert(AlertStatus::sent);
  take_over_sent.take_over_notices = true;
  take_over_sent.earlier_to = AlertStatus::superseded;
  AlertPlan take_over_pending = take_over_sent;
  take_over_pending.state = AlertStatus::pending;

  AlertPlan after_held_mail = new_alert(AlertStatus::pending, NoticeKind::alert, Audience::report);
  after_held_mail.earlier_to = AlertStatus::superseded;
  AlertPlan after_held_historical = new_alert(AlertStatus::historical);
  after_held_historical.earlier_to = AlertStatus::superseded;

  AlertPlan correction_mailed =
      new_alert(AlertStatus::pending, NoticeKind::correction, Audience::report_and_told);
  correction_mailed.notice_shows_earlier_value = true;
  correction_mailed.take_back_unsent = true;
  correction_mailed.earlier_to = AlertStatus::superseded;
  AlertPlan correction_to_told = correction_mailed;
  correction_to_told.state = AlertStatus::unmailed;
  correction_to_told.audience = Audience::told;
  AlertPlan correction_historical = correction_to_told;
  correction_historical.state = AlertStatus::historical;

  const std::vector<Case> cases = {
      {"inside target, nothing before", "", std::nullopt, false, MailVerdict::mail, AlertPlan{}},
      {"inside target resolves the earlier alert", "", EarlierAlert{"ge:50", AlertStatus::sent},
       false, MailVerdict::mail, resolve},
      {"a correction back inside target resolves too", "",
       EarlierAlert{"ge:50", AlertStatus::pending}, true, MailVerdict::mail, resolve},
      {"a new alert is mailed", "ge:50", std::nullopt, false, MailVerdict::mail,
       new_alert(AlertStatus::pending, NoticeKind::alert, Audience::report)},
      {"a new alert without recipient is recorded", "ge:50", std::nullopt, false,
       MailVerdict::no_recipient, new_alert(AlertStatus::unmailed)},
      {"an old result's alert is history", "ge:50", std::nullopt, false, MailVerdict::historical,
       new_alert(AlertStatus::historical)},
      {"a preliminary's alert is held", "ge:50", std::nullopt, false, MailVerdict::preliminary,
       new_alert(AlertStatus::preliminary)},
      {"a resend of a mailed alert takes its place, mails nothing", "ge:50",
       EarlierAlert{"ge:50", AlertStatus::sent}, false, MailVerdict::mail, take_over_sent},
      {"a final over a queued alert takes over the queued mail", "ge:50",
       EarlierAlert{"ge:50", AlertStatus::pending}, false, MailVerdict::mail, take_over_pending},
      {"a final over a held preliminary alert is mailed as new", "ge:50",
       EarlierAlert{"ge:50", AlertStatus::preliminary}, false, MailVerdict::mail, after_held_mail},
      {"a value over a silenced alert decides anew", "ge:50",
       EarlierAlert{"ge:50", AlertStatus::silenced}, false, MailVerdict::historical,
       after_held_historical},
      {"a correction of a mailed alert tells both", "ge:50",
       EarlierAlert{"ge:50", AlertStatus::sent}, true, MailVerdict::mail, correction_mailed},
      {"another clause violated is a correction", "ideal:gt:70",
       EarlierAlert{"ge:50", AlertStatus::sent}, false, MailVerdict::mail, correction_mailed},
      {"a correction of an old result tells only who was told", "ge:50",
       EarlierAlert{"ge:50", AlertStatus::sent}, true, MailVerdict::historical,
       correction_historical},
      {"a correction without recipients still tells who was told", "lab_range",
       EarlierAlert{"ge:50", AlertStatus::unmailed}, false, MailVerdict::no_recipient,
       correction_to_told},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    SlotFacts facts;
    facts.earlier = c.earlier;
    facts.corrected = c.corrected;
    facts.verdict = c.verdict;
    const AlertPlan plan = plan_alerts(decision_of(c.rule), facts);
    CHECK(plan == c.expected);
  }
}

TEST_CASE("plan_alerts holds a new alert under a silence that covers it",
          "[clinical][alert_plan]") {
  const std::vector<Silence> silenced_below = {
      {1, 2'000, AlertState{AlertSide::below, AlertTier::hard}}};
  SlotFacts facts;
  facts.verdict = MailVerdict::mail;
  facts.silences = silenced_below;
  facts.now = 1'000;
  // Below its minimum: covered, recorded as silenced, nothing queued.
  CHECK(plan_alerts(decision_of("ge:50"), facts) == new_alert(AlertStatus::silenced));
  // Above a maximum: the other side, still mailed.
  Decision above = decision_of("le:100", 120);
  above.target_low.reset();
  above.target_high = 100;
  CHECK(plan_alerts(above, facts) ==
        new_alert(AlertStatus::pending, NoticeKind::alert, Audience::report));
  // After the silence's end: mailed.
  facts.now = 2'000;
  CHECK(plan_alerts(decision_of("ge:50"), facts) ==
        new_alert(AlertStatus::pending, NoticeKind::alert, Audience::report));
}

TEST_CASE("plan_closing withdraws with a retraction and supersedes silently",
          "[clinical][alert_plan]") {
  const AlertPlan withdrawn = plan_closing(ClosingCause::withdrawn_by_lab);
  CHECK(withdrawn.raise == Raise::none);
  CHECK(withdrawn.earlier_notice == NoticeKind::retraction);
  CHECK(withdrawn.earlier_audience == Audience::told);
  CHECK_FALSE(withdrawn.earlier_notice_shows_its_value);
  CHECK(withdrawn.take_back_unsent);
  CHECK(withdrawn.earlier_to == AlertStatus::withdrawn);
  const AlertPlan superseded = plan_closing(ClosingCause::superseded);
  CHECK(superseded.raise == Raise::none);
  CHECK_FALSE(superseded.earlier_notice.has_value());
  CHECK(superseded.take_back_unsent);
  CHECK(superseded.earlier_to == AlertStatus::superseded);
}

TEST_CASE("plan_promotion mails a held preliminary alert once its value is final",
          "[clinical][alert_plan]") {
  const AlertState below{AlertSide::below, AlertTier::hard};
  struct Case {
    std::string_view name;
    AlertStatus state;
    MailVerdict final_verdict;
    bool silenced;
    std::optional<AlertStatus> to;
    bool mailed;
  };
  const std::vector<Case> cases = {
      {"held, now mailed", AlertStatus::preliminary, MailVerdict::mail, false, AlertStatus::pending,
       true},
      {"held, no recipient", AlertStatus::preliminary, MailVerdict::no_recipient, false,
       AlertStatus::unmailed, false},
      {"held, now old", AlertStatus::preliminary, MailVerdict::historical, false,
       AlertStatus::historical, false},
      {"held, silenced meanwhile", AlertStatus::preliminary, MailVerdict::mail, true,
       AlertStatus::silenced, false},
      {"already mailed: left as it is", AlertStatus::sent, MailVerdict::mail, false, std::nullopt,
       false},
      {"unmailed: left as it is", AlertStatus::unmailed, MailVerdict::mail, false, std::nullopt,
       false},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    std::vector<Silence> silences;
    if (c.silenced) {
      silences.push_back({1, 5'000, std::nullopt});
    }
    const AlertPlan plan =
        plan_promotion({"ge:50", c.state}, below, c.final_verdict, silences, 1'000);
    CHECK(plan.raise == Raise::none);
    CHECK(plan.earlier_to == c.to);
    CHECK(plan.earlier_notice.has_value() == c.mailed);
    if (c.mailed) {
      CHECK(plan.earlier_notice == NoticeKind::alert);
      CHECK(plan.earlier_audience == Audience::report);
    }
    CHECK_FALSE(plan.take_back_unsent);
  }
}

TEST_CASE("plan_rejudged_trend raises history, reopens, keeps or resolves",
          "[clinical][alert_plan]") {
  struct Case {
    std::string_view name;
    bool violated;
    std::optional<AlertStatus> existing;
    Raise raise;
    std::optional<AlertStatus> earlier_to;
  };
  const std::vector<Case> cases = {
      {"violated, none yet: raised unmailed", true, std::nullopt, Raise::insert, std::nullopt},
      {"violated, resolved before: reopened", true, AlertStatus::resolved, Raise::reopen,
       std::nullopt},
      {"violated, standing: kept", true, AlertStatus::sent, Raise::none, std::nullopt},
      {"no longer violated: resolved", false, AlertStatus::sent, Raise::none,
       AlertStatus::resolved},
      {"no longer violated, already resolved: nothing", false, AlertStatus::resolved, Raise::none,
       std::nullopt},
      {"never violated: nothing", false, std::nullopt, Raise::none, std::nullopt},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    std::optional<EarlierAlert> existing;
    if (c.existing) {
      existing = EarlierAlert{"trend:falling:30:365", *c.existing};
    }
    const AlertPlan plan = plan_rejudged_trend(c.violated, existing);
    CHECK(plan.raise == c.raise);
    CHECK(plan.earlier_to == c.earlier_to);
    CHECK_FALSE(plan.notice.has_value());  // a re-judged history is never mailed as new
    if (plan.raise != Raise::none) {
      CHECK(plan.state == AlertStatus::unmailed);
    }
    CHECK(plan.earlier_notice.has_value() == (c.earlier_to == AlertStatus::resolved));
  }
}

TEST_CASE("plan_new_silence holds a queued alert a silence now covers, unless its mail was tried",
          "[clinical][alert_plan]") {
  using labwatch::clinical::plan_new_silence;
  const AlertState below{AlertSide::below, AlertTier::hard};
  const AlertState above{AlertSide::above, AlertTier::hard};
  const std::vector<Silence> silenced_below = {
      {1, 5'000, AlertState{AlertSide::below, AlertTier::hard}}};
  AlertPlan held;
  held.take_back_unsent = true;
  held.earlier_to = AlertStatus::silenced;
  struct Case {
    std::string_view name;
    AlertStatus state;
    AlertState state_of;
    bool all_unsent;
    labwatch::clinical::UnixSeconds now;
    AlertPlan expected;
  };
  const std::vector<Case> cases = {
      {"queued, covered: held", AlertStatus::pending, below, true, 1'000, held},
      {"queued, mail already tried: left", AlertStatus::pending, below, false, 1'000, AlertPlan{}},
      {"queued, other side: still mailed", AlertStatus::pending, above, true, 1'000, AlertPlan{}},
      {"queued, silence over: still mailed", AlertStatus::pending, below, true, 5'000, AlertPlan{}},
      {"sent: left", AlertStatus::sent, below, true, 1'000, AlertPlan{}},
      {"unmailed: left", AlertStatus::unmailed, below, true, 1'000, AlertPlan{}},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    CHECK(plan_new_silence({"ge:50", c.state}, c.state_of, silenced_below, c.now, c.all_unsent) ==
          c.expected);
  }
  CHECK(plan_new_silence({"ge:50", AlertStatus::pending}, below, {}, 1'000, true) == AlertPlan{});
}
