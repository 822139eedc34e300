// SPDX-License-Identifier: Apache-2.0
// decide_mail: the mail verdict of a new alert, table-driven, without a database.
#include "clinical/mail_policy.hpp"

#include <catch2/catch.hpp>

using labwatch::clinical::alert_status;
using labwatch::clinical::decide_mail;
using labwatch::clinical::kSecondsPerDay;
using labwatch::clinical::MailFacts;
using labwatch::clinical::MailPolicy;
using labwatch::clinical::MailVerdict;
using labwatch::clinical::ResultStatus;

namespace {

constexpr std::int64_t kNow = 1'796'000'000;  // 2026-11-29

struct Row {
  const char* what;
  std::int64_t age_days;
  ResultStatus status;
  bool recipients;
  bool suppressed;
  bool mail_preliminary;
  std::int64_t max_age_days;
  MailVerdict expected;
};

}  // namespace

TEST_CASE("decide_mail holds back old, suppressed, unrouted and preliminary alerts",
          "[clinical][mail_policy]") {
  using enum MailVerdict;
  const ResultStatus fin = ResultStatus::final;
  const ResultStatus pre = ResultStatus::preliminary;
  const ResultStatus cor = ResultStatus::corrected;
  const Row rows[] = {
      {"a fresh final value is mailed", 0, fin, true, false, false, 30, mail},
      {"30 days old is still mailed", 30, fin, true, false, false, 30, mail},
      {"31 days old is history", 31, fin, true, false, false, 30, historical},
      {"two years old is history", 730, fin, true, false, false, 30, historical},
      {"the age limit is the policy's", 31, fin, true, false, false, 60, mail},
      {"a zero age limit makes yesterday history", 1, fin, true, false, false, 0, historical},
      {"a corrected fresh value is mailed", 2, cor, true, false, false, 30, mail},
      {"no recipient: unmailed", 0, fin, false, false, false, 30, no_recipient},
      {"--no-mail: unmailed", 0, fin, true, true, false, 30, no_recipient},
      {"old and unrouted: history first", 400, fin, false, false, false, 30, historical},
      {"old and suppressed: history first", 400, fin, true, true, false, 30, historical},
      {"a preliminary waits for its final", 0, pre, true, false, false, 30, preliminary},
      {"unless preliminaries are mailed", 0, pre, true, false, true, 30, mail},
      {"an old preliminary is history", 90, pre, true, false, true, 30, historical},
      {"an unrouted preliminary is unmailed", 0, pre, false, false, false, 30, no_recipient},
      {"a draw dated in the future counts as fresh", -2, fin, true, false, false, 30, mail},
  };
  for (const Row& row : rows) {
    INFO(row.what);
    MailFacts facts;
    facts.now = kNow;
    facts.collected_at = kNow - row.age_days * kSecondsPerDay;
    facts.status = row.status;
    facts.has_recipients = row.recipients;
    MailPolicy policy;
    policy.max_age_seconds = row.max_age_days * kSecondsPerDay;
    policy.suppressed = row.suppressed;
    policy.mail_preliminary = row.mail_preliminary;
    CHECK(decide_mail(facts, policy) == row.expected);
  }
}

TEST_CASE("decide_mail counts the age limit in seconds, to the second", "[clinical][mail_policy]") {
  MailFacts facts;
  facts.now = kNow;
  facts.has_recipients = true;
  MailPolicy policy;  // default: 30 days
  facts.collected_at = kNow - 30 * kSecondsPerDay;
  CHECK(decide_mail(facts, policy) == MailVerdict::mail);
  facts.collected_at -= 1;
  CHECK(decide_mail(facts, policy) == MailVerdict::historical);
}

TEST_CASE("alert_status names the status each verdict records", "[clinical][mail_policy]") {
  CHECK(to_string(alert_status(MailVerdict::mail)) == "pending");
  CHECK(to_string(alert_status(MailVerdict::no_recipient)) == "unmailed");
  CHECK(to_string(alert_status(MailVerdict::historical)) == "historical");
  CHECK(to_string(alert_status(MailVerdict::preliminary)) == "preliminary");
}
