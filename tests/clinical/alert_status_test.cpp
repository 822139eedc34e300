// SPDX-License-Identifier: Apache-2.0
// Tests of the alert status and notice kind vocabularies: the spellings the database stores and
// `labwatch alerts` prints, their round trips, and which statuses are active.
#include "clinical/alert_status.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <string_view>

#include "clinical/mail_policy.hpp"
#include "clinical/notice_kind.hpp"

namespace {

using labwatch::clinical::AlertStatus;
using labwatch::clinical::is_active;
using labwatch::clinical::kAlertStatuses;
using labwatch::clinical::NoticeKind;
using labwatch::clinical::parse_alert_status;
using labwatch::clinical::parse_notice_kind;

struct StatusRow {
  AlertStatus status;
  std::string_view spelling;  // stored in alerts.state: must never change
  bool active;
};

// Every status with its stored spelling and whether it stands for a current result.
constexpr StatusRow kStatuses[] = {
    {AlertStatus::unmailed, "unmailed", true},       {AlertStatus::historical, "historical", true},
    {AlertStatus::preliminary, "preliminary", true}, {AlertStatus::silenced, "silenced", true},
    {AlertStatus::pending, "pending", true},         {AlertStatus::sent, "sent", true},
    {AlertStatus::failed, "failed", true},           {AlertStatus::resolved, "resolved", false},
    {AlertStatus::superseded, "superseded", false},  {AlertStatus::withdrawn, "withdrawn", false},
};

struct KindRow {
  NoticeKind kind;
  std::string_view spelling;  // stored in notices.kind: must never change
};

constexpr KindRow kKinds[] = {
    {NoticeKind::alert, "alert"},
    {NoticeKind::correction, "correction"},
    {NoticeKind::resolution, "resolution"},
    {NoticeKind::retraction, "retraction"},
};

}  // namespace

TEST_CASE("to_string spells every alert status as the database stores it",
          "[clinical][alert_status]") {
  for (const StatusRow& row : kStatuses) {
    CAPTURE(row.spelling);
    CHECK(to_string(row.status) == row.spelling);
  }
}

TEST_CASE("parse_alert_status reads back every spelling to_string writes",
          "[clinical][alert_status]") {
  for (const StatusRow& row : kStatuses) {
    CAPTURE(row.spelling);
    REQUIRE(parse_alert_status(row.spelling).has_value());
    CHECK(*parse_alert_status(row.spelling) == row.status);
    CHECK(parse_alert_status(to_string(row.status)) == row.status);
  }
}

TEST_CASE("parse_alert_status refuses any other text", "[clinical][alert_status]") {
  for (const std::string_view text : {"", "Pending", "PENDING", " pending", "pending ", "sending",
                                      "current", "active", "mail", "alert", "resolve"}) {
    CAPTURE(std::string(text));
    CHECK_FALSE(parse_alert_status(text).has_value());
  }
  CHECK_FALSE(parse_alert_status(std::string_view("sent\0", 5)).has_value());
}

TEST_CASE("is_active holds for the statuses of alerts that stand for a current result",
          "[clinical][alert_status]") {
  for (const StatusRow& row : kStatuses) {
    CAPTURE(row.spelling);
    CHECK(is_active(row.status) == row.active);
  }
}

TEST_CASE("kAlertStatuses lists every status once, active ones first", "[clinical][alert_status]") {
  REQUIRE(kAlertStatuses.size() == std::size(kStatuses));
  for (std::size_t i = 0; i < kAlertStatuses.size(); ++i) {
    CHECK(kAlertStatuses[i] == kStatuses[i].status);
  }
}

TEST_CASE("alert_status gives the status each mail verdict records", "[clinical][alert_status]") {
  using labwatch::clinical::alert_status;
  using labwatch::clinical::MailVerdict;
  CHECK(alert_status(MailVerdict::mail) == AlertStatus::pending);
  CHECK(alert_status(MailVerdict::no_recipient) == AlertStatus::unmailed);
  CHECK(alert_status(MailVerdict::historical) == AlertStatus::historical);
  CHECK(alert_status(MailVerdict::preliminary) == AlertStatus::preliminary);
  CHECK(alert_status(MailVerdict::silenced) == AlertStatus::silenced);
}

TEST_CASE("to_string and parse_notice_kind name each notice kind", "[clinical][notice_kind]") {
  for (const KindRow& row : kKinds) {
    CAPTURE(row.spelling);
    CHECK(to_string(row.kind) == row.spelling);
    CHECK(parse_notice_kind(row.spelling) == row.kind);
  }
  for (const std::string_view text : {"", "Alert", "alerts", "resolved", "withdrawn"}) {
    CAPTURE(std::string(text));
    CHECK_FALSE(parse_notice_kind(text).has_value());
  }
}
