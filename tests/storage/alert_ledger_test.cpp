// SPDX-License-Identifier: Apache-2.0
// Tests of the alert ledger: routing, collecting a panel, supersession-aware mail, trend rules.
#include "storage/alert_ledger.hpp"

#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cstddef>
#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "storage/store_fixture.hpp"

namespace {

using labwatch::clinical::AlertStatus;
using labwatch::clinical::NormalizedReport;
using labwatch::clinical::NormalizedResult;
using labwatch::clinical::NoticeKind;
using labwatch::clinical::ResultStatus;
using labwatch::storage::AlertPolicy;
using labwatch::storage::IngestSummary;
using labwatch::storage::OutboxItem;
using labwatch::storage::Recipient;
using labwatch::storage::Store;
using labwatch::storage::testing::default_targets;
using labwatch::storage::testing::Fixture;
using labwatch::storage::testing::from_now;
using labwatch::storage::testing::ingest;
using labwatch::storage::testing::kT0;
using labwatch::storage::testing::person;
using labwatch::storage::testing::report;
using labwatch::storage::testing::result;

constexpr std::int64_t kHour = 3600;
constexpr std::int64_t kDay = 86400;
constexpr std::int64_t kWait = 600;

const auto kHana = person("SGH", "SGH1", "EXAMPLAR", "HANA J", "1994-06-08", 'F');
const auto kOmar = person("SGH", "SGH2", "SAMPLE", "OMAR", "1971-02-03", 'M');

Recipient recipient(std::string email, std::string practitioner_id = "", bool full_phi = false) {
  Recipient r;
  r.email = std::move(email);
  r.practitioner_id = std::move(practitioner_id);
  r.name = r.practitioner_id.empty() ? std::string() : "Dr " + r.practitioner_id;
  r.full_phi = full_phi;
  return r;
}

// The catalogue's rules; ordering provider P100 -> dr.a, facility SGH -> dr.b, else the desk.
AlertPolicy routed() {
  AlertPolicy targets = default_targets();
  targets.routing.by_provider["P100"] = {recipient("dr.a@clinic.example", "a", true)};
  targets.routing.by_facility["SGH"] = {recipient("dr.b@clinic.example", "b")};
  targets.routing.fallback = {recipient("desk@clinic.example")};
  targets.routing.collect_wait_seconds = kWait;
  return targets;
}

NormalizedReport sgh(const std::string& control_id, std::int64_t message_time,
                     std::vector<NormalizedResult> results) {
  return report("SGH", control_id, message_time, kHana, std::move(results));
}

NormalizedResult ferritin(double value, ResultStatus status = ResultStatus::final,
                          const std::string& order = "S1", std::int64_t collected_at = kT0) {
  return result("ferritin", value, "ng/mL", order, status, collected_at);
}

std::vector<OutboxItem> claim_all(Store& store) {
  return store.claim_due_mail(from_now(365 * kDay), 100);
}

// Claims everything queued and records it as delivered.
std::vector<OutboxItem> send_all(Store& store) {
  std::vector<OutboxItem> items = claim_all(store);
  for (const OutboxItem& item : items) {
    store.mark_mail_sent(item.id, from_now(0));
  }
  return items;
}

// (analyte, value, rule, state) of the alerts, in the store's order.
std::vector<std::tuple<std::string, double, std::string, std::string>> alert_list(Store& store,
                                                                                  bool all) {
  std::vector<std::tuple<std::string, double, std::string, std::string>> out;
  for (const auto& a : store.alerts(all)) {
    out.emplace_back(a.analyte, a.value, a.rule, to_string(a.state));
  }
  return out;
}

}  // namespace

TEST_CASE("AlertLedger routes by ordering provider and by facility, else to the fallback",
          "[storage][ledger]") {
  Fixture f;
  auto by_provider = sgh("M1", kT0, {ferritin(40)});
  by_provider.ordering_provider_id = "P100";
  auto unknown_provider =
      report("SGH", "M2", kT0, kOmar, {ferritin(41, ResultStatus::final, "S2")});
  unknown_provider.ordering_provider_id = "P999";
  const auto elsewhere =
      report("QDX", "Q1", kT0, person("QDX", "Q9", "Zed", "Al", "1960-05-05", 'M'),
             {result("zinc", 50, "ug/dL", "Q-O1")});

  SECTION("with routing, one mail per recipient and person") {
    const IngestSummary summary =
        ingest(*f.store, "a.hl7", {by_provider, unknown_provider, elsewhere}, routed());
    CHECK(summary.alerts == 3);
    // Hana's report was ordered by P100 (dr.a) and comes from SGH (dr.b): a provider match does
    // not hide the facility's practitioner.
    CHECK(summary.notices == 4);
    const auto rows = f.store->outbox(false);
    REQUIRE(rows.size() == 4);
    CHECK(rows[0].email == "dr.a@clinic.example");
    CHECK(rows[1].email == "dr.b@clinic.example");
    CHECK(rows[2].email == "dr.b@clinic.example");
    CHECK(rows[3].email == "desk@clinic.example");
    for (const auto& row : rows) {
      CHECK(row.state == labwatch::storage::OutboxState::pending);
      CHECK(row.attempts == 0);
      CHECK(row.alerts == 1);
    }
    for (const auto& alert : f.store->alerts(false)) {
      CHECK(alert.state == AlertStatus::pending);
    }
    const auto items = claim_all(*f.store);
    REQUIRE(items.size() == 4);
    CHECK(items[0].recipient.practitioner_id == "a");
    CHECK(items[0].recipient.name == "Dr a");
    CHECK(items[0].recipient.full_phi);
    CHECK_FALSE(items[1].recipient.full_phi);
    CHECK(items[0].patient_key == items[1].patient_key);
    CHECK(items[2].patient_key != items[1].patient_key);
    CHECK(items[3].patient_key == "QDX|Q9");
  }
  SECTION("a recipient listed twice gets one notice") {
    AlertPolicy targets = routed();
    targets.routing.by_facility["SGH"].push_back(recipient("dr.b@clinic.example", "b2"));
    ingest(*f.store, "a.hl7", {unknown_provider}, targets);
    const auto rows = f.store->outbox(false);
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].alerts == 1);
  }
  SECTION("without recipients, alerts are recorded unmailed") {
    const IngestSummary summary =
        ingest(*f.store, "a.hl7", {by_provider, unknown_provider, elsewhere}, default_targets());
    CHECK(summary.alerts == 3);
    CHECK(summary.notices == 0);
    CHECK(f.store->outbox(true).empty());
    CHECK_FALSE(f.store->next_mail_due().has_value());
    const auto alerts = f.store->alerts(false);
    REQUIRE(alerts.size() == 3);
    for (const auto& alert : alerts) {
      CHECK(alert.state == AlertStatus::unmailed);
    }
  }
}

TEST_CASE("AlertLedger collects a person's alerts within the wait into one mail",
          "[storage][ledger]") {
  Fixture f;
  const std::int64_t before = from_now(0);
  ingest(*f.store, "1.hl7", {sgh("M1", kT0, {ferritin(40)})}, routed());
  ingest(*f.store, "2.hl7", {sgh("M2", kT0, {result("zinc", 50, "ug/dL", "S2")})}, routed());
  ingest(*f.store, "3.hl7",
         {report("SGH", "M3", kT0, kOmar, {ferritin(30, ResultStatus::final, "S3")})}, routed());
  const std::int64_t after = from_now(0);

  const auto rows = f.store->outbox(false);
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].alerts == 2);
  CHECK(rows[1].alerts == 1);
  CHECK(rows[0].due_at >= before + kWait);
  CHECK(rows[0].due_at <= after + kWait);
  CHECK(f.store->next_mail_due() == rows[0].due_at);
  CHECK(rows[0].message_id != rows[1].message_id);
  for (const auto& row : rows) {
    INFO(row.message_id);
    REQUIRE(row.message_id.size() == 41);
    CHECK(row.message_id.substr(32) == "@labwatch");
    CHECK(row.message_id.find_first_not_of("0123456789abcdef") == 32);
  }

  const auto items = claim_all(*f.store);
  REQUIRE(items.size() == 2);
  const OutboxItem& hana = items[0];
  CHECK(hana.message_id == rows[0].message_id);
  CHECK(hana.recipient.email == "dr.b@clinic.example");
  CHECK(hana.patient_key == "SGH|SGH1");
  CHECK(hana.family == "EXAMPLAR");
  CHECK(hana.given == "HANA J");
  CHECK(hana.birth_date == "1994-06-08");
  CHECK(hana.report_ref == "M1, M2");
  CHECK(hana.attempts == 1);
  REQUIRE(hana.notices.size() == 2);
  const auto& first = hana.notices[0];
  CHECK(first.kind == NoticeKind::alert);
  CHECK(first.analyte == "ferritin");
  CHECK(first.value == 40);
  CHECK(first.unit == "ng/mL");
  CHECK(first.rule == "ge:50");
  CHECK(first.target_low == 50);
  CHECK_FALSE(first.target_high.has_value());
  // The result printed no range: the notice carries none, and says why (the mail then shows the
  // catalogue's, saying so).
  CHECK_FALSE(first.ref_low.has_value());
  CHECK_FALSE(first.ref_high.has_value());
  CHECK(first.range_problem == labwatch::clinical::RangeProblem::not_printed);
  CHECK(first.raw_unit == "ng/mL");
  CHECK(first.collected_at == kT0);
  CHECK_FALSE(first.previous_value.has_value());
  CHECK(first.previous_message_id.empty());
  REQUIRE(first.history.size() == 1);
  CHECK(first.history[0].value == 40);
  CHECK(hana.notices[1].analyte == "zinc");
  CHECK(hana.notices[1].rule == "within_ref");

  // Once claimed, the mail is closed: the next alert about Hana starts a new one.
  ingest(*f.store, "4.hl7", {sgh("M4", kT0, {result("iron", 30, "ug/dL", "S4")})}, routed());
  const auto later = f.store->outbox(false);
  REQUIRE(later.size() == 3);
  CHECK(later[2].alerts == 1);
  CHECK(later[2].message_id != hana.message_id);
}

TEST_CASE("AlertLedger never raises a second alert or queues mail again for resent reports",
          "[storage][ledger]") {
  Fixture f;
  const auto first = sgh("M1", kT0, {ferritin(40)});
  CHECK(ingest(*f.store, "a.hl7", {first}, routed()).notices == 1);

  const IngestSummary same_file = ingest(*f.store, "a.hl7", {first}, routed());
  CHECK(same_file.already_known);
  const IngestSummary same_message = ingest(*f.store, "b.hl7", {first}, routed());
  CHECK(same_message.duplicate_messages == 1);
  CHECK(same_message.alerts == 0);
  CHECK(same_message.notices == 0);
  const IngestSummary new_control_id =
      ingest(*f.store, "c.hl7", {sgh("M2", kT0, {ferritin(40)})}, routed());
  CHECK(new_control_id.duplicates == 1);
  CHECK(new_control_id.notices == 0);
  // Sent again later: a new version with the same decision, so nothing new to tell.
  const IngestSummary resent =
      ingest(*f.store, "d.hl7", {sgh("M3", kT0 + kHour, {ferritin(40)})}, routed());
  CHECK(resent.superseded == 1);
  CHECK(resent.notices == 0);
  auto rows = f.store->outbox(true);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].alerts == 1);

  send_all(*f.store);
  const IngestSummary after_mail =
      ingest(*f.store, "e.hl7", {sgh("M4", kT0 + 2 * kHour, {ferritin(40)})}, routed());
  CHECK(after_mail.notices == 0);
  rows = f.store->outbox(true);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].state == labwatch::storage::OutboxState::sent);
  const auto current = alert_list(*f.store, false);
  REQUIRE(current.size() == 1);
  CHECK(std::get<3>(current[0]) == "sent");
  CHECK(f.count("SELECT count(*) FROM alerts") == 3);  // one per version: M1, M3, M4
  CHECK(f.count("SELECT count(*) FROM alerts WHERE state = 'superseded'") == 2);
}

TEST_CASE("AlertLedger keeps a final that confirms its preliminary silent, with its mail",
          "[storage][ledger]") {
  Fixture f;
  ingest(*f.store, "p.hl7", {sgh("M1", kT0, {ferritin(40, ResultStatus::preliminary)})}, routed());
  const auto fin = sgh("M2", kT0 + kHour, {ferritin(45)});

  SECTION("while the mail is still queued, it now shows the final value") {
    const IngestSummary summary = ingest(*f.store, "f.hl7", {fin}, routed());
    CHECK(summary.notices == 0);
    const auto items = claim_all(*f.store);
    REQUIRE(items.size() == 1);
    REQUIRE(items[0].notices.size() == 1);
    CHECK(items[0].notices[0].kind == NoticeKind::alert);
    CHECK(items[0].notices[0].value == 45);
    CHECK(items[0].report_ref == "M1");
    const auto alerts = f.store->alerts(false);
    REQUIRE(alerts.size() == 1);
    CHECK(alerts[0].state == AlertStatus::pending);
    CHECK(items[0].notices[0].alert_id == alerts[0].alert_id);
    f.store->mark_mail_sent(items[0].id, from_now(0));
    CHECK(std::get<3>(alert_list(*f.store, false).at(0)) == "sent");
  }
  SECTION("after the mail went out, the final is sent too") {
    send_all(*f.store);
    const IngestSummary summary = ingest(*f.store, "f.hl7", {fin}, routed());
    CHECK(summary.notices == 0);
    CHECK(f.store->outbox(false).empty());
    CHECK(alert_list(*f.store, false) ==
          std::vector<std::tuple<std::string, double, std::string, std::string>>{
              {"ferritin", 45, "ge:50", "sent"}});
  }
  CHECK(alert_list(*f.store, true).at(0) == std::make_tuple(std::string("ferritin"), 40.0,
                                                            std::string("ge:50"),
                                                            std::string("superseded")));
}

TEST_CASE("AlertLedger mails a correction with the earlier value and the earlier Message-ID",
          "[storage][ledger]") {
  Fixture f;
  ingest(*f.store, "f.hl7", {sgh("M1", kT0, {ferritin(40)})}, routed());

  SECTION("the first mail went out") {
    const auto sent = send_all(*f.store);
    REQUIRE(sent.size() == 1);
    const IngestSummary summary =
        ingest(*f.store, "c.hl7", {sgh("M2", kT0 + kHour, {ferritin(45, ResultStatus::corrected)})},
               routed());
    CHECK(summary.notices == 1);
    const auto items = claim_all(*f.store);
    REQUIRE(items.size() == 1);
    CHECK(items[0].message_id != sent[0].message_id);
    REQUIRE(items[0].notices.size() == 1);
    const auto& notice = items[0].notices[0];
    CHECK(notice.kind == NoticeKind::correction);
    CHECK(notice.value == 45);
    CHECK(notice.previous_value == 40);
    CHECK(notice.previous_message_id == sent[0].message_id);
    CHECK(notice.rule == "ge:50");
  }
  SECTION("the first mail is still queued: the correction replaces its notice") {
    const auto queued = f.store->outbox(false);
    REQUIRE(queued.size() == 1);
    ingest(*f.store, "c.hl7", {sgh("M2", kT0 + kHour, {ferritin(45, ResultStatus::corrected)})},
           routed());
    const auto items = claim_all(*f.store);
    REQUIRE(items.size() == 1);
    CHECK(items[0].message_id == queued[0].message_id);
    REQUIRE(items[0].notices.size() == 1);
    CHECK(items[0].notices[0].kind == NoticeKind::correction);
    CHECK(items[0].notices[0].value == 45);
    CHECK(items[0].notices[0].previous_value == 40);
    CHECK(items[0].notices[0].previous_message_id.empty());
  }
  SECTION("a new version that violates another clause is a correction too") {
    const auto sent = send_all(*f.store);
    ingest(*f.store, "f2.hl7", {sgh("M2", kT0 + kHour, {ferritin(60)})}, routed());
    const auto items = claim_all(*f.store);
    REQUIRE(items.size() == 1);
    REQUIRE(items[0].notices.size() == 1);
    CHECK(items[0].notices[0].kind == NoticeKind::correction);
    CHECK(items[0].notices[0].rule == "ideal:gt:70");
    CHECK(items[0].notices[0].target_low == 70);
    CHECK(items[0].notices[0].previous_message_id == sent[0].message_id);
  }
  const auto alerts = f.store->alerts(false);
  REQUIRE(alerts.size() == 1);
  CHECK(alerts[0].state == AlertStatus::pending);  // claimed, not yet sent
}

TEST_CASE("AlertLedger resolves an alert whose new version is inside target", "[storage][ledger]") {
  Fixture f;
  const auto corrected = sgh("M2", kT0 + kHour, {ferritin(80, ResultStatus::corrected)});

  SECTION("whoever was mailed gets a resolution") {
    ingest(*f.store, "f.hl7", {sgh("M1", kT0, {ferritin(40)})}, routed());
    const auto sent = send_all(*f.store);
    const IngestSummary summary = ingest(*f.store, "c.hl7", {corrected}, routed());
    CHECK(summary.notices == 1);
    CHECK(summary.alerts == 0);
    const auto all = f.store->alerts(true);
    REQUIRE(all.size() == 1);
    CHECK(all[0].state == AlertStatus::resolved);
    const auto items = claim_all(*f.store);
    REQUIRE(items.size() == 1);
    REQUIRE(items[0].notices.size() == 1);
    const auto& notice = items[0].notices[0];
    CHECK(notice.kind == NoticeKind::resolution);
    CHECK(notice.alert_id == all[0].alert_id);
    CHECK(notice.value == 80);
    CHECK(notice.previous_value == 40);
    CHECK(notice.previous_message_id == sent[0].message_id);
    CHECK(notice.rule == "ge:50");
    f.store->mark_mail_sent(items[0].id, from_now(0));
    CHECK(f.store->alerts(true).at(0).state ==
          AlertStatus::resolved);  // a notice does not reopen it
  }
  SECTION("a notice still queued is taken back, and its mail with it") {
    ingest(*f.store, "f.hl7", {sgh("M1", kT0, {ferritin(40)})}, routed());
    const IngestSummary summary = ingest(*f.store, "c.hl7", {corrected}, routed());
    CHECK(summary.notices == 0);
    CHECK(f.store->outbox(true).empty());
    CHECK(f.count("SELECT count(*) FROM notices") == 0);
    CHECK(f.store->alerts(true).at(0).state == AlertStatus::resolved);
  }
  SECTION("the rest of a queued mail stays") {
    ingest(*f.store, "f.hl7", {sgh("M1", kT0, {ferritin(40), result("zinc", 50, "ug/dL", "S1")})},
           routed());
    ingest(*f.store, "c.hl7", {corrected}, routed());
    const auto items = claim_all(*f.store);
    REQUIRE(items.size() == 1);
    REQUIRE(items[0].notices.size() == 1);
    CHECK(items[0].notices[0].analyte == "zinc");
  }
  CHECK(f.store->alerts(false).size() <= 1);
  for (const auto& alert : f.store->alerts(false)) {
    CHECK(alert.analyte == "zinc");
  }
}

TEST_CASE("AlertLedger withdraws a cancelled result's alert and retracts it where it was mailed",
          "[storage][ledger]") {
  Fixture f;
  const auto cancel = sgh("M2", kT0 + kHour, {ferritin(0, ResultStatus::cancelled)});

  SECTION("mailed: a retraction naming the mail") {
    ingest(*f.store, "f.hl7", {sgh("M1", kT0, {ferritin(40)})}, routed());
    const auto sent = send_all(*f.store);
    const IngestSummary summary = ingest(*f.store, "x.hl7", {cancel}, routed());
    CHECK(summary.withdrawn == 1);
    CHECK(summary.notices == 1);
    CHECK(f.store->alerts(false).empty());
    CHECK(f.store->alerts(true).at(0).state == AlertStatus::withdrawn);
    const auto items = claim_all(*f.store);
    REQUIRE(items.size() == 1);
    REQUIRE(items[0].notices.size() == 1);
    CHECK(items[0].notices[0].kind == NoticeKind::retraction);
    CHECK(items[0].notices[0].value == 40);
    CHECK(items[0].notices[0].previous_message_id == sent[0].message_id);
    CHECK(items[0].notices[0].history.empty());  // no current ferritin is left
  }
  SECTION("queued and unsent: only its notice is dropped") {
    ingest(*f.store, "f.hl7", {sgh("M1", kT0, {ferritin(40), result("zinc", 50, "ug/dL", "S1")})},
           routed());
    const IngestSummary summary = ingest(*f.store, "x.hl7", {cancel}, routed());
    CHECK(summary.notices == 0);
    const auto items = claim_all(*f.store);
    REQUIRE(items.size() == 1);
    REQUIRE(items[0].notices.size() == 1);
    CHECK(items[0].notices[0].analyte == "zinc");
    CHECK(items[0].notices[0].kind == NoticeKind::alert);
  }
  SECTION("attempted and waiting for a retry: it may have arrived, so a retraction follows") {
    ingest(*f.store, "f.hl7", {sgh("M1", kT0, {ferritin(40)})}, routed());
    const auto tried = claim_all(*f.store);
    REQUIRE(tried.size() == 1);
    f.store->mark_mail_retry(tried[0].id, from_now(kHour), "timeout after the final dot");
    ingest(*f.store, "x.hl7", {cancel}, routed());
    const auto rows = f.store->outbox(false);
    REQUIRE(rows.size() == 2);
    CHECK(rows[0].alerts == 1);  // the retry still carries what was attempted
    const auto items = claim_all(*f.store);
    REQUIRE(items.size() == 2);
    CHECK(items[0].id == rows[1].id);  // the retraction is due first (collect wait < retry)
    CHECK(items[0].notices.at(0).kind == NoticeKind::retraction);
    CHECK(items[0].notices.at(0).previous_message_id == tried[0].message_id);
  }
}

TEST_CASE("AlertLedger mails nothing for an older version arriving after a newer one",
          "[storage][ledger]") {
  Fixture f;
  ingest(*f.store, "f.hl7", {sgh("M2", kT0 + kHour, {ferritin(45)})}, routed());
  const IngestSummary late = ingest(
      *f.store, "p.hl7", {sgh("M1", kT0, {ferritin(40, ResultStatus::preliminary)})}, routed());
  CHECK(late.results_stored == 1);
  CHECK(late.alerts == 0);
  CHECK(late.notices == 0);
  send_all(*f.store);
  ingest(*f.store, "c.hl7", {sgh("M3", kT0 + 2 * kHour, {ferritin(30, ResultStatus::corrected)})},
         routed());
  const auto correction = send_all(*f.store);
  REQUIRE(correction.size() == 1);
  const IngestSummary older =
      ingest(*f.store, "f2.hl7", {sgh("M2b", kT0 + 90 * 60, {ferritin(47)})}, routed());
  CHECK(older.results_stored == 1);
  CHECK(older.notices == 0);
  CHECK(f.store->outbox(false).empty());
  CHECK(alert_list(*f.store, false) ==
        std::vector<std::tuple<std::string, double, std::string, std::string>>{
            {"ferritin", 30, "ge:50", "sent"}});
}

TEST_CASE("AlertLedger leaves the same current alerts in every arrival order",
          "[storage][ledger]") {
  using Versions = std::vector<NormalizedReport>;
  const Versions corrected_low = {
      sgh("M1", kT0, {ferritin(40, ResultStatus::preliminary)}),
      sgh("M2", kT0 + kHour, {ferritin(45)}),
      sgh("M3", kT0 + 2 * kHour, {ferritin(60, ResultStatus::corrected)})};
  const Versions corrected_fine = {
      sgh("M1", kT0, {ferritin(40, ResultStatus::preliminary)}),
      sgh("M2", kT0 + kHour, {ferritin(45)}),
      sgh("M3", kT0 + 2 * kHour, {ferritin(80, ResultStatus::corrected)})};
  const Versions cancelled = {sgh("M1", kT0, {ferritin(40)}),
                              sgh("M2", kT0 + kHour, {ferritin(0, ResultStatus::cancelled)}),
                              sgh("M3", kT0 + kHour, {result("zinc", 50, "ug/dL", "S9")})};
  const auto [versions, expected] = GENERATE_COPY(table<Versions, std::set<std::string>>({
      {corrected_low, {"ferritin 60 ideal:gt:70"}},
      {corrected_fine, {}},
      {cancelled, {"zinc 50 within_ref"}},
  }));
  std::array<std::size_t, 3> order = {0, 1, 2};
  do {
    Fixture f;
    for (const std::size_t i : order) {
      ingest(*f.store, "file" + std::to_string(i), {versions[i]}, routed());
    }
    std::set<std::string> got;
    for (const auto& a : f.store->alerts(false)) {
      got.insert(a.analyte + " " + std::to_string(static_cast<int>(a.value)) + " " + a.rule);
    }
    INFO("order " << order[0] << order[1] << order[2]);
    CHECK(got == expected);
  } while (std::next_permutation(order.begin(), order.end()));
}

TEST_CASE("AlertLedger judges trend:falling for each new current result and its successors",
          "[storage][ledger][trend]") {
  Fixture f;
  AlertPolicy targets = routed();
  targets.by_analyte.insert_or_assign("ferritin",
                                      labwatch::clinical::parse_optimal_rule("ge:10").value());
  targets.trends["ferritin"] = {labwatch::clinical::parse_trend_rule("trend:falling:0.2").value()};
  const auto at = [](double value, int day) {
    return sgh("M" + std::to_string(day), kT0 + day * kDay,
               {ferritin(value, ResultStatus::final, "O" + std::to_string(day), kT0 + day * kDay)});
  };
  const auto trend_alerts = [&f] {
    std::vector<std::pair<std::int64_t, std::string>> out;  // (day, state)
    for (const auto& a : f.store->alerts(false)) {
      CHECK(a.rule == "trend:falling:0.2");
      out.emplace_back((a.collected_at - kT0) / kDay, to_string(a.state));
    }
    return out;
  };
  using Alerts = std::vector<std::pair<std::int64_t, std::string>>;

  SECTION("in order: the fall is mailed") {
    ingest(*f.store, "1", {at(100, 1)}, targets);
    const IngestSummary fall = ingest(*f.store, "2", {at(75, 2)}, targets);
    CHECK(fall.alerts == 1);
    CHECK(fall.notices == 1);
    CHECK(trend_alerts() == Alerts{{2, "pending"}});
    const auto items = claim_all(*f.store);
    REQUIRE(items.size() == 1);
    REQUIRE(items[0].notices.size() == 1);
    CHECK(items[0].notices[0].rule == "trend:falling:0.2");
    CHECK(items[0].notices[0].value == 75);
    CHECK(items[0].notices[0].target_low == Approx(80));
    REQUIRE(items[0].notices[0].history.size() == 2);
    CHECK(items[0].notices[0].history[0].value == 100);
  }
  SECTION("out of order: the same alert, recorded as history") {
    ingest(*f.store, "2", {at(75, 2)}, targets);
    const IngestSummary earlier = ingest(*f.store, "1", {at(100, 1)}, targets);
    CHECK(earlier.alerts == 1);
    CHECK(earlier.notices == 0);
    CHECK(trend_alerts() == Alerts{{2, "unmailed"}});
  }
  SECTION("a result arriving in between resolves a fall that no longer holds") {
    ingest(*f.store, "1", {at(100, 1)}, targets);
    ingest(*f.store, "3", {at(78, 3)}, targets);
    CHECK(trend_alerts() == Alerts{{3, "pending"}});
    ingest(*f.store, "2", {at(80, 2)}, targets);  // 100 -> 80 is 20%, not more; 80 -> 78 is 2.5%
    CHECK(trend_alerts().empty());
    CHECK(f.store->outbox(true).empty());  // the queued notice was taken back
    CHECK(f.store->alerts(true).at(0).state == AlertStatus::resolved);
  }
  SECTION("withdrawing the result in between raises the fall it hid") {
    ingest(*f.store, "1", {at(100, 1)}, targets);
    ingest(*f.store, "2", {at(60, 2)}, targets);
    ingest(*f.store, "3", {at(55, 3)}, targets);
    CHECK(trend_alerts() == Alerts{{2, "pending"}});
    ingest(
        *f.store, "x",
        {sgh("X2", kT0 + 3 * kDay, {ferritin(0, ResultStatus::cancelled, "O2", kT0 + 2 * kDay)})},
        targets);
    CHECK(trend_alerts() == Alerts{{3, "unmailed"}});  // 100 -> 55 now
  }
  SECTION("a correction of the fall is mailed as one") {
    ingest(*f.store, "1", {at(100, 1)}, targets);
    ingest(*f.store, "2", {at(75, 2)}, targets);
    const auto sent = send_all(*f.store);
    ingest(
        *f.store, "2c",
        {sgh("M2c", kT0 + 3 * kDay, {ferritin(70, ResultStatus::corrected, "O2", kT0 + 2 * kDay)})},
        targets);
    const auto items = claim_all(*f.store);
    REQUIRE(items.size() == 1);
    CHECK(items[0].notices.at(0).kind == NoticeKind::correction);
    CHECK(items[0].notices.at(0).previous_value == 75);
    CHECK(items[0].notices.at(0).previous_message_id == sent.at(0).message_id);
    CHECK(trend_alerts() == Alerts{{2, "pending"}});
  }
}

// The ledger keeps each trend history it read for the rest of its file (so that a file with many
// results of one person's analyte reads it once). Whatever the file boundaries, the alerts must be
// the ones judged result by result from the database: here the same messages, in the same
// shuffled order (corrections, a cancellation and a resend among them), go in one file per
// message, in one file, and half and half.
TEST_CASE("AlertLedger judges trends alike whether results come one file each or all in one",
          "[storage][ledger][trend]") {
  AlertPolicy targets = routed();
  targets.trends["ferritin"] = {
      labwatch::clinical::parse_trend_rule("trend:falling:30:365").value(),
      labwatch::clinical::parse_trend_rule("trend:consecutive:3").value(),
      labwatch::clinical::parse_trend_rule("trend:toward:20").value()};
  const auto seed = GENERATE(1U, 2U, 3U, 4U);
  std::mt19937 rng(seed);
  std::vector<NormalizedReport> messages;
  for (const auto& who : {kHana, kOmar}) {
    for (int draw = 0; draw < 12; ++draw) {
      const std::string id = who.mrn + "-" + std::to_string(draw);
      const std::int64_t day = static_cast<std::int64_t>(rng() % 700);
      const double value = 20 + static_cast<double>(rng() % 180);
      const std::int64_t collected = kT0 + day * kDay;
      NormalizedReport message =
          report("SGH", "M" + id, collected + kHour, who,
                 {ferritin(value, ResultStatus::final, "O" + id, collected),
                  result("zinc", 60 + static_cast<double>(rng() % 60), "ug/dL", "Z" + id,
                         ResultStatus::final, collected)});
      if (draw == 3) {  // corrected later under the same order
        messages.push_back(
            report("SGH", "C" + id, collected + 2 * kHour, who,
                   {ferritin(value / 2, ResultStatus::corrected, "O" + id, collected)}));
      }
      if (draw == 5) {  // cancelled later
        messages.push_back(report("SGH", "X" + id, collected + 2 * kHour, who,
                                  {ferritin(0, ResultStatus::cancelled, "O" + id, collected)}));
      }
      if (draw == 7) {
        messages.push_back(message);  // resent as it was
      }
      messages.push_back(std::move(message));
    }
  }
  std::shuffle(messages.begin(), messages.end(), rng);

  using Row = std::tuple<std::int64_t, std::string, std::int64_t, double, std::string, std::string>;
  const auto alerts_after = [&](std::size_t one_file_from) {
    Fixture f;
    for (std::size_t i = 0; i < one_file_from && i < messages.size(); ++i) {
      ingest(*f.store, "single-" + std::to_string(i), {messages[i]}, targets);
    }
    if (one_file_from < messages.size()) {
      ingest(*f.store, "batch",
             std::vector<NormalizedReport>(
                 messages.begin() + static_cast<std::ptrdiff_t>(one_file_from), messages.end()),
             targets);
    }
    std::multiset<Row> rows;
    for (const auto& a : f.store->alerts(true)) {
      rows.emplace(a.person_id, a.analyte, a.collected_at, a.value, a.rule, to_string(a.state));
    }
    return rows;
  };
  const std::multiset<Row> one_by_one = alerts_after(messages.size());
  INFO("seed " << seed);
  CHECK(std::count_if(one_by_one.begin(), one_by_one.end(),
                      [](const Row& row) { return std::get<4>(row).starts_with("trend:"); }) > 0);
  CHECK(alerts_after(0) == one_by_one);
  CHECK(alerts_after(messages.size() / 2) == one_by_one);
}

TEST_CASE("AlertLedger judges trend:falling:PCT:DAYS over time and stores what it rests on",
          "[storage][ledger][trend]") {
  Fixture f;
  AlertPolicy targets = routed();
  targets.by_analyte.insert_or_assign("ferritin",
                                      labwatch::clinical::parse_optimal_rule("ge:10").value());
  targets.trends["ferritin"] = {
      labwatch::clinical::parse_trend_rule("trend:falling:30:365").value()};
  const auto at = [](double value, int day) {
    return sgh("M" + std::to_string(day), kT0 + day * kDay,
               {ferritin(value, ResultStatus::final, "O" + std::to_string(day), kT0 + day * kDay)});
  };
  const auto trend_alerts = [&f] {
    std::vector<std::pair<std::int64_t, std::string>> out;  // (day, state)
    for (const auto& a : f.store->alerts(false)) {
      CHECK(a.rule == "trend:falling:30:365");
      out.emplace_back((a.collected_at - kT0) / kDay, to_string(a.state));
    }
    return out;
  };
  using Alerts = std::vector<std::pair<std::int64_t, std::string>>;

  SECTION("in order: the fall from the year's high is mailed, naming the high and the value") {
    ingest(*f.store, "1", {at(100, 1)}, targets);
    ingest(*f.store, "2", {at(80, 200)}, targets);  // 20 %: not yet
    CHECK(trend_alerts().empty());
    const IngestSummary fall = ingest(*f.store, "3", {at(65, 300)}, targets);  // 35 % below 100
    CHECK(fall.notices == 1);
    CHECK(trend_alerts() == Alerts{{300, "pending"}});
    const auto items = claim_all(*f.store);
    REQUIRE(items.size() == 1);
    REQUIRE(items[0].notices.size() == 1);
    const auto& evidence = items[0].notices[0].evidence;
    REQUIRE(evidence.size() == 2);
    CHECK(evidence[0].value == 100);
    CHECK(evidence[0].collected_at == kT0 + 1 * kDay);
    CHECK(evidence[1].value == 65);
    CHECK(evidence[1].collected_at == kT0 + 300 * kDay);
    CHECK(items[0].notices[0].target_low == Approx(70));
  }
  SECTION("a high older than the window does not count") {
    ingest(*f.store, "1", {at(100, 1)}, targets);
    ingest(*f.store, "2", {at(65, 400)}, targets);
    CHECK(trend_alerts().empty());
  }
  SECTION("a high arriving late is seen by every later result within DAYS, not only the next") {
    ingest(*f.store, "2", {at(80, 200)}, targets);
    ingest(*f.store, "3", {at(65, 300)}, targets);  // 19 % below 80: no alert
    CHECK(trend_alerts().empty());
    const IngestSummary late = ingest(*f.store, "1", {at(100, 1)}, targets);
    CHECK(late.notices == 0);
    CHECK(trend_alerts() == Alerts{{300, "unmailed"}});
  }
}

TEST_CASE("AlertLedger judges trend:away against each result's optimal band",
          "[storage][ledger][trend]") {
  Fixture f;
  AlertPolicy targets = default_targets();  // homocysteine range:6-8
  targets.trends["homocysteine"] = {labwatch::clinical::parse_trend_rule("trend:away:3").value()};
  const auto at = [](double value, int day) {
    return sgh("H" + std::to_string(day), kT0 + day * kDay,
               {result("homocysteine", value, "umol/L", "H" + std::to_string(day),
                       ResultStatus::final, kT0 + day * kDay)});
  };
  ingest(*f.store, "1", {at(9, 1)}, targets);
  ingest(*f.store, "2", {at(10, 2)}, targets);
  CHECK(ingest(*f.store, "3", {at(11, 3)}, targets).alerts == 2);  // range and trend
  ingest(*f.store, "4", {at(10.5, 4)}, targets);                   // turned back
  std::vector<std::pair<std::int64_t, std::string>> rules;
  for (const auto& a : f.store->alerts(false)) {
    rules.emplace_back((a.collected_at - kT0) / kDay, a.rule);
  }
  CHECK(rules == std::vector<std::pair<std::int64_t, std::string>>{{1, "range:6-8"},
                                                                   {2, "range:6-8"},
                                                                   {3, "range:6-8"},
                                                                   {3, "trend:away:3"},
                                                                   {4, "range:6-8"}});
  const auto trend = f.store->alerts(false).at(3);
  CHECK(trend.target_low == 6);
  CHECK(trend.target_high == 8);
}

TEST_CASE("new_message_id makes 128 random bits in hex at labwatch", "[storage][ledger]") {
  const std::string a = labwatch::storage::new_message_id();
  const std::string b = labwatch::storage::new_message_id();
  CHECK(a.size() == 41);
  CHECK(a.find_first_not_of("0123456789abcdef") == 32);
  CHECK(a.substr(32) == "@labwatch");
  CHECK(a != b);
}

namespace {

// routed(), under the shipped mail policy: results older than 30 days before now are history, and
// preliminaries wait for their final.
AlertPolicy policed() {
  AlertPolicy targets = routed();
  targets.mail_policy = labwatch::clinical::MailPolicy{};
  return targets;
}

std::int64_t days_ago(std::int64_t days) { return from_now(-days * kDay); }

}  // namespace

TEST_CASE("AlertLedger records alerts on old results as historical and mails none",
          "[storage][ledger][mail_policy]") {
  Fixture f;
  const auto old_draw =
      sgh("M1", days_ago(400), {ferritin(40, ResultStatus::final, "S1", days_ago(400))});
  const IngestSummary summary = ingest(*f.store, "old.hl7", {old_draw}, policed());
  CHECK(summary.alerts == 1);
  CHECK(summary.notices == 0);
  CHECK(f.store->outbox(true).empty());
  CHECK(alert_list(*f.store, false) ==
        std::vector<std::tuple<std::string, double, std::string, std::string>>{
            {"ferritin", 40, "ge:50", "historical"}});

  SECTION("a later value of an old draw (a correction) is history too") {
    const auto corrected =
        sgh("M2", days_ago(399), {ferritin(30, ResultStatus::corrected, "S1", days_ago(400))});
    CHECK(ingest(*f.store, "c.hl7", {corrected}, policed()).notices == 0);
    CHECK(f.store->outbox(true).empty());
    CHECK(std::get<3>(alert_list(*f.store, false).at(0)) == "historical");
  }
  SECTION("a fresh draw of the same person is mailed") {
    const auto fresh =
        sgh("M3", days_ago(1), {ferritin(41, ResultStatus::final, "S2", days_ago(1))});
    CHECK(ingest(*f.store, "new.hl7", {fresh}, policed()).notices == 1);
    const auto items = claim_all(*f.store);
    REQUIRE(items.size() == 1);
    REQUIRE(items[0].notices.size() == 1);
    CHECK(items[0].notices[0].value == 41);
  }
}

TEST_CASE("AlertLedger holds a preliminary alert until the final, then mails it once",
          "[storage][ledger][mail_policy]") {
  Fixture f;
  const std::int64_t drawn = days_ago(2);
  const auto prelim = sgh("M1", drawn, {ferritin(40, ResultStatus::preliminary, "S1", drawn)});
  CHECK(ingest(*f.store, "p.hl7", {prelim}, policed()).notices == 0);
  CHECK(f.store->outbox(true).empty());
  CHECK(std::get<3>(alert_list(*f.store, false).at(0)) == "preliminary");

  SECTION("a final value: mailed as a plain alert with the final value") {
    const auto fin = sgh("M2", drawn + kHour, {ferritin(42, ResultStatus::final, "S1", drawn)});
    CHECK(ingest(*f.store, "f.hl7", {fin}, policed()).notices == 1);
    const auto items = claim_all(*f.store);
    REQUIRE(items.size() == 1);
    REQUIRE(items[0].notices.size() == 1);
    CHECK(items[0].notices[0].kind == NoticeKind::alert);
    CHECK(items[0].notices[0].value == 42);
    CHECK(std::get<3>(alert_list(*f.store, false).at(0)) == "pending");
    // The final sent again changes nothing: mailed once.
    f.store->mark_mail_sent(items[0].id, from_now(0));
    CHECK(ingest(*f.store, "f2.hl7",
                 {sgh("M3", drawn + 2 * kHour, {ferritin(42, ResultStatus::final, "S1", drawn)})},
                 policed())
              .notices == 0);
  }
  SECTION("a second preliminary still waits") {
    const auto again =
        sgh("M2", drawn + kHour, {ferritin(39, ResultStatus::preliminary, "S1", drawn)});
    CHECK(ingest(*f.store, "p2.hl7", {again}, policed()).notices == 0);
    CHECK(std::get<3>(alert_list(*f.store, false).at(0)) == "preliminary");
  }
  SECTION("OBX-11 U makes it final in place, and mails it") {
    auto promote = ferritin(0, ResultStatus::final, "S1", drawn);
    promote.promote_only = true;
    CHECK(ingest(*f.store, "u.hl7", {sgh("M2", drawn + kHour, {promote})}, policed()).notices == 1);
    const auto items = claim_all(*f.store);
    REQUIRE(items.size() == 1);
    CHECK(items[0].notices.at(0).value == 40);
    CHECK(std::get<3>(alert_list(*f.store, false).at(0)) == "pending");
  }
  SECTION("with mail-preliminary, the preliminary itself was mailed") {
    Fixture g;
    AlertPolicy targets = policed();
    targets.mail_policy.mail_preliminary = true;
    CHECK(ingest(*g.store, "p.hl7", {prelim}, targets).notices == 1);
    CHECK(std::get<3>(alert_list(*g.store, false).at(0)) == "pending");
  }
}

TEST_CASE("AlertLedger queues no mail when the ingest is told not to",
          "[storage][ledger][mail_policy]") {
  Fixture f;
  AlertPolicy targets = policed();
  targets.mail_policy.suppressed = true;
  const auto fresh = sgh("M1", days_ago(1), {ferritin(40, ResultStatus::final, "S1", days_ago(1))});
  const IngestSummary summary = ingest(*f.store, "n.hl7", {fresh}, targets);
  CHECK(summary.alerts == 1);
  CHECK(summary.notices == 0);
  CHECK(f.store->outbox(true).empty());
  CHECK(std::get<3>(alert_list(*f.store, false).at(0)) == "unmailed");
}
