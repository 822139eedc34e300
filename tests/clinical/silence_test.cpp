// SPDX-License-Identifier: Apache-2.0
#include "clinical/silence.hpp"

#include <catch2/catch.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "clinical/mail_policy.hpp"
#include "clinical/rules.hpp"

using labwatch::clinical::alert_state_of;
using labwatch::clinical::AlertSide;
using labwatch::clinical::AlertState;
using labwatch::clinical::AlertTier;
using labwatch::clinical::apply_silence;
using labwatch::clinical::MailVerdict;
using labwatch::clinical::Silence;
using labwatch::clinical::silence_covers;

TEST_CASE("alert_state_of reads the side and tier of an alert", "[clinical][silence]") {
  struct Case {
    std::string_view rule;
    double value;
    std::optional<double> low;
    std::optional<double> high;
    std::string_view flags;
    AlertState expected;
  };
  const std::vector<Case> cases = {
      {"ge:50", 40, 50, std::nullopt, "", {AlertSide::below, AlertTier::hard}},
      {"ideal:gt:70", 60, 70, std::nullopt, "", {AlertSide::below, AlertTier::ideal}},
      {"ideal:gt:70", 70, 70, std::nullopt, "", {AlertSide::below, AlertTier::ideal}},
      {"le:1.0", 2, std::nullopt, 1.0, "", {AlertSide::above, AlertTier::hard}},
      {"range:40-60", 30, 40, 60, "", {AlertSide::below, AlertTier::hard}},
      {"range:40-60", 70, 40, 60, "", {AlertSide::above, AlertTier::hard}},
      {"lab_range", 200, 13, 150, "", {AlertSide::above, AlertTier::lab}},
      {"lab_flag", 100, std::nullopt, std::nullopt, "L", {AlertSide::below, AlertTier::lab}},
      {"lab_flag", 100, std::nullopt, std::nullopt, "A", {AlertSide::unknown, AlertTier::lab}},
      {"trend:falling:30:365", 60, 70, std::nullopt, "", {AlertSide::below, AlertTier::trend}},
      {"trend:consecutive:3",
       5,
       std::nullopt,
       std::nullopt,
       "",
       {AlertSide::below, AlertTier::trend}},
      {"trend:toward:10", 59, 40, 60, "", {AlertSide::above, AlertTier::trend}},
      {"trend:toward:10", 41, 40, 60, "", {AlertSide::below, AlertTier::trend}},
  };
  for (const Case& c : cases) {
    INFO(c.rule << " " << c.value);
    CHECK(alert_state_of(labwatch::clinical::rule_ref(c.rule), c.value, c.low, c.high, c.flags) ==
          c.expected);
  }
}

TEST_CASE("a silence covers the same state until its date and a different state still mails",
          "[clinical][silence]") {
  constexpr labwatch::clinical::UnixSeconds kUntil = 1'000'000;
  const AlertState below_ideal{AlertSide::below, AlertTier::ideal};
  const AlertState below_hard{AlertSide::below, AlertTier::hard};
  const AlertState above_hard{AlertSide::above, AlertTier::hard};
  const AlertState above_lab{AlertSide::above, AlertTier::lab};
  const AlertState falling{AlertSide::below, AlertTier::trend};
  const AlertState unknown_lab{AlertSide::unknown, AlertTier::lab};
  struct Case {
    std::string_view what;
    std::optional<AlertState> set_for;
    AlertState alert;
    labwatch::clinical::UnixSeconds now;
    bool covered;
  };
  const std::vector<Case> cases = {
      {"same low hard miss again", below_hard, below_hard, 10, true},
      {"a milder miss on the same side", below_hard, below_ideal, 10, true},
      {"a falling trend on the low side", below_hard, falling, 10, true},
      {"crossed from below to above", below_hard, above_hard, 10, false},
      {"crossed to above the lab's range", below_ideal, above_lab, 10, false},
      {"hard-tier miss under an ideal-tier silence", below_ideal, below_hard, 10, false},
      {"lab flag under an ideal-tier silence", below_ideal, unknown_lab, 10, false},
      {"a flag without side under a hard silence", below_hard, unknown_lab, 10, true},
      {"the last second before the date", below_hard, below_hard, kUntil - 1, true},
      {"at the date: expired", below_hard, below_hard, kUntil, false},
      {"after the date", below_hard, below_hard, kUntil + 86'400, false},
      {"set while no alert was active: covers all", std::nullopt, above_hard, 10, true},
      {"set while no alert was active, expired", std::nullopt, above_hard, kUntil, false},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    const Silence silence{7, kUntil, c.set_for};
    CHECK(silence_covers(silence, c.alert, c.now) == c.covered);
  }
}

TEST_CASE("apply_silence turns only mail and held verdicts into silenced", "[clinical][silence]") {
  const AlertState low{AlertSide::below, AlertTier::hard};
  const std::vector<Silence> silence = {Silence{1, 100, low}};
  const std::vector<Silence> none;
  CHECK(apply_silence(MailVerdict::mail, silence, low, 5) == MailVerdict::silenced);
  CHECK(apply_silence(MailVerdict::preliminary, silence, low, 5) == MailVerdict::silenced);
  CHECK(apply_silence(MailVerdict::historical, silence, low, 5) == MailVerdict::historical);
  CHECK(apply_silence(MailVerdict::no_recipient, silence, low, 5) == MailVerdict::no_recipient);
  CHECK(apply_silence(MailVerdict::mail, none, low, 5) == MailVerdict::mail);
  CHECK(apply_silence(MailVerdict::mail, silence, {AlertSide::above, AlertTier::hard}, 5) ==
        MailVerdict::mail);
  CHECK(apply_silence(MailVerdict::mail, silence, low, 100) == MailVerdict::mail);
  // Two silences: one that covers is enough.
  const std::vector<Silence> both = {Silence{1, 100, AlertState{AlertSide::above, AlertTier::hard}},
                                     Silence{2, 100, low}};
  CHECK(apply_silence(MailVerdict::mail, both, low, 5) == MailVerdict::silenced);
  CHECK(to_string(labwatch::clinical::alert_status(MailVerdict::silenced)) == "silenced");
}

TEST_CASE("alert sides and tiers read back what they write", "[clinical][silence]") {
  for (const AlertSide side : {AlertSide::unknown, AlertSide::below, AlertSide::above}) {
    CHECK(labwatch::clinical::read_alert_side(to_string(side)) == side);
  }
  for (const AlertTier tier :
       {AlertTier::trend, AlertTier::ideal, AlertTier::lab, AlertTier::hard}) {
    CHECK(labwatch::clinical::read_alert_tier(to_string(tier)) == tier);
  }
  CHECK_FALSE(labwatch::clinical::read_alert_side("low"));
  CHECK_FALSE(labwatch::clinical::read_alert_tier(""));
}

TEST_CASE("silenced_alert_state takes the latest draw's alert, a trend alert only when it is alone",
          "[clinical][silence]") {
  using labwatch::clinical::rule_ref;
  using labwatch::clinical::silenced_alert_state;
  using labwatch::clinical::SilencedAlert;
  const auto alert = [](std::string_view rule, double value, std::optional<double> low,
                        std::optional<double> high, std::int64_t collected_at,
                        std::string flags = {}) {
    SilencedAlert a;
    a.rule = rule_ref(rule);
    a.value = value;
    a.target_low = low;
    a.target_high = high;
    a.flags = std::move(flags);
    a.collected_at = collected_at;
    return a;
  };
  const AlertState below_hard{AlertSide::below, AlertTier::hard};
  const AlertState below_trend{AlertSide::below, AlertTier::trend};
  const AlertState above_lab{AlertSide::above, AlertTier::lab};

  CHECK_FALSE(silenced_alert_state({}).has_value());
  // The first alert of the latest draw that is not a trend alert, whatever follows.
  const std::vector<SilencedAlert> target_first = {alert("ge:50", 40, 50, std::nullopt, 200),
                                                   alert("trend:falling:30:365", 40, 50, {}, 200),
                                                   alert("lab_flag", 40, {}, {}, 200, "H")};
  CHECK(silenced_alert_state(target_first) == below_hard);
  // A trend alert raised first gives way to the draw's other alert.
  const std::vector<SilencedAlert> trend_first = {alert("trend:falling:30:365", 40, 50, {}, 200),
                                                  alert("lab_flag", 40, {}, {}, 200, "H")};
  CHECK(silenced_alert_state(trend_first) == above_lab);
  // A trend alert alone on the latest draw is the one; an earlier draw's alerts are not looked at.
  const std::vector<SilencedAlert> trend_alone = {alert("trend:falling:30:365", 40, 50, {}, 200),
                                                  alert("ge:50", 30, 50, std::nullopt, 100)};
  CHECK(silenced_alert_state(trend_alone) == below_trend);
}
