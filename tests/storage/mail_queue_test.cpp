// SPDX-License-Identifier: Apache-2.0
// Tests of the outbox's dispatcher side: claim, sent, retry, failed, reset after a crash, history.
#include "storage/mail_queue.hpp"

#include <catch2/catch.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "storage/outbox.hpp"
#include "storage/store_fixture.hpp"

namespace {

using labwatch::clinical::NormalizedReport;
using labwatch::clinical::NormalizedResult;
using labwatch::clinical::NoticeKind;
using labwatch::clinical::ResultStatus;
using labwatch::storage::AlertPolicy;
using labwatch::storage::OutboxItem;
using labwatch::storage::OutboxState;
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

constexpr std::int64_t kWait = 600;
constexpr std::int64_t kDay = 86400;

const auto kHana = person("SGH", "SGH1", "EXAMPLAR", "HANA J", "1994-06-08", 'F');

// Facility SGH -> the listed addresses, collected for kWait seconds.
AlertPolicy routed_to(const std::vector<std::string>& emails) {
  AlertPolicy targets = default_targets();
  for (const std::string& email : emails) {
    Recipient r;
    r.email = email;
    targets.routing.by_facility["SGH"].push_back(r);
  }
  targets.routing.collect_wait_seconds = kWait;
  return targets;
}

NormalizedReport sgh(const std::string& control_id, std::vector<NormalizedResult> results) {
  return report("SGH", control_id, kT0, kHana, std::move(results));
}

std::string alert_state(Store& store, const std::string& analyte) {
  for (const auto& alert : store.alerts(false)) {
    if (alert.analyte == analyte) {
      return std::string(to_string(alert.state));
    }
  }
  return "none";
}

}  // namespace

TEST_CASE("Store mail items move pending, sending, pending again, sent or failed",
          "[storage][outbox]") {
  Fixture f;
  const AlertPolicy targets = routed_to({"dr.b@clinic.example"});
  const std::int64_t before = from_now(0);
  ingest(*f.store, "1.hl7", {sgh("M1", {result("ferritin", 40, "ng/mL", "S1")})}, targets);
  const auto queued = f.store->outbox(false);
  REQUIRE(queued.size() == 1);
  const std::int64_t due = queued[0].due_at;
  CHECK(due >= before + kWait);
  CHECK(f.store->next_mail_due() == due);

  // Not due yet: the collect wait has not passed.
  CHECK(f.store->claim_due_mail(due - 1, 10).empty());
  CHECK(f.store->claim_due_mail(due, 0).empty());

  auto claimed = f.store->claim_due_mail(due, 10);
  REQUIRE(claimed.size() == 1);
  const std::int64_t ferritin_item = claimed[0].id;
  CHECK(claimed[0].attempts == 1);
  CHECK(f.store->outbox(false).at(0).state == OutboxState::sending);
  // In flight: not claimed twice while its lease lasts (after it, see "...a daemon that died
  // while sending").
  const std::int64_t lease_end = due + labwatch::storage::MailQueue::kLeaseSeconds;
  CHECK(f.store->claim_due_mail(lease_end - 1, 10).empty());
  CHECK(f.store->next_mail_due() == lease_end);

  // A crash while sending: at start-up the item is pending again, its attempt counted.
  CHECK(f.store->reset_interrupted_mail() == 1);
  CHECK(f.store->reset_interrupted_mail() == 0);
  CHECK(f.store->outbox(false).at(0).state == OutboxState::pending);
  CHECK(f.store->next_mail_due() == due);
  claimed = f.store->claim_due_mail(due, 10);
  REQUIRE(claimed.size() == 1);
  CHECK(claimed[0].attempts == 2);
  CHECK(claimed[0].message_id == queued[0].message_id);  // the same mail, retried

  // A transient failure: due again at the retry time, with the error kept for diagnostics.
  const std::int64_t retry_at = from_now(2 * 3600);
  f.store->mark_mail_retry(ferritin_item, retry_at, "451 4.3.0 try again later");
  auto rows = f.store->outbox(false);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].state == OutboxState::pending);
  CHECK(rows[0].attempts == 2);
  CHECK(rows[0].last_error == "451 4.3.0 try again later");
  CHECK(rows[0].due_at == retry_at);
  CHECK(f.store->next_mail_due() == retry_at);
  CHECK(f.store->claim_due_mail(retry_at - 1, 10).empty());
  CHECK(alert_state(*f.store, "ferritin") == "pending");

  // An attempted mail is closed to new notices: the zinc alert starts its own.
  ingest(*f.store, "2.hl7", {sgh("M2", {result("zinc", 50, "ug/dL", "S2")})}, targets);
  rows = f.store->outbox(false);
  REQUIRE(rows.size() == 2);
  const std::int64_t zinc_item = rows[1].id;
  CHECK(rows[1].alerts == 1);

  // Oldest due first: the zinc mail (collect wait) before the ferritin retry.
  claimed = f.store->claim_due_mail(retry_at, 1);
  REQUIRE(claimed.size() == 1);
  CHECK(claimed[0].id == zinc_item);
  claimed = f.store->claim_due_mail(retry_at, 10);
  REQUIRE(claimed.size() == 1);
  CHECK(claimed[0].id == ferritin_item);

  f.store->mark_mail_sent(zinc_item, retry_at);
  f.store->mark_mail_failed(ferritin_item, "550 5.1.1 no such mailbox");
  CHECK(alert_state(*f.store, "zinc") == "sent");
  CHECK(alert_state(*f.store, "ferritin") == "failed");
  rows = f.store->outbox(false);
  REQUIRE(rows.size() == 1);  // the failed one, for the admin; sent ones only with `all`
  CHECK(rows[0].id == ferritin_item);
  CHECK(rows[0].state == OutboxState::failed);
  CHECK(rows[0].last_error == "550 5.1.1 no such mailbox");
  CHECK_FALSE(rows[0].sent_at.has_value());
  rows = f.store->outbox(true);
  REQUIRE(rows.size() == 2);
  CHECK(rows[1].state == OutboxState::sent);
  CHECK(rows[1].sent_at == retry_at);
  CHECK(rows[1].last_error.empty());
  CHECK_FALSE(f.store->next_mail_due().has_value());

  // Sent and failed are final.
  f.store->mark_mail_retry(zinc_item, retry_at + 60, "late");
  f.store->mark_mail_failed(zinc_item, "late");
  f.store->mark_mail_retry(ferritin_item, retry_at + 60, "late");
  rows = f.store->outbox(true);
  CHECK(rows[0].state == OutboxState::failed);
  CHECK(rows[1].state == OutboxState::sent);
  CHECK(alert_state(*f.store, "zinc") == "sent");
}

TEST_CASE("Store mark_mail_failed leaves an alert pending while another mail still carries it",
          "[storage][outbox]") {
  Fixture f;
  ingest(*f.store, "1.hl7", {sgh("M1", {result("ferritin", 40, "ng/mL", "S1")})},
         routed_to({"dr.b@clinic.example", "dr.c@clinic.example"}));
  const auto items = f.store->claim_due_mail(from_now(kDay), 10);
  REQUIRE(items.size() == 2);
  CHECK(items[0].recipient.email == "dr.b@clinic.example");
  CHECK(items[1].recipient.email == "dr.c@clinic.example");
  SECTION("failed, then sent") {
    f.store->mark_mail_failed(items[0].id, "550 rejected");
    CHECK(alert_state(*f.store, "ferritin") == "pending");
    f.store->mark_mail_sent(items[1].id, from_now(0));
    CHECK(alert_state(*f.store, "ferritin") == "sent");
  }
  SECTION("sent, then failed") {
    f.store->mark_mail_sent(items[1].id, from_now(0));
    f.store->mark_mail_failed(items[0].id, "550 rejected");
    CHECK(alert_state(*f.store, "ferritin") == "sent");
  }
  SECTION("both failed") {
    f.store->mark_mail_failed(items[1].id, "550 rejected");
    f.store->mark_mail_failed(items[0].id, "550 rejected");
    CHECK(alert_state(*f.store, "ferritin") == "failed");
  }
}

TEST_CASE("Store claim_due_mail gives each notice the last five current values, oldest first",
          "[storage][outbox]") {
  Fixture f;
  const AlertPolicy targets = routed_to({"dr.b@clinic.example"});
  for (int day = 1; day <= 6; ++day) {
    ingest(*f.store, "d" + std::to_string(day),
           {report("SGH", "M" + std::to_string(day), kT0 + day * kDay, kHana,
                   {result("ferritin", 100.0 + day, "ng/mL", "O" + std::to_string(day),
                           ResultStatus::final, kT0 + day * kDay)})},
           targets);
  }
  f.store->claim_due_mail(from_now(kDay), 10);  // nothing violated so far: nothing to claim
  // Day 7 is low; day 6 was corrected meanwhile (its first version is not history any more).
  ingest(*f.store, "d6c",
         {report("SGH", "M6c", kT0 + 7 * kDay, kHana,
                 {result("ferritin", 96, "ng/mL", "O6", ResultStatus::corrected, kT0 + 6 * kDay)})},
         targets);
  ingest(*f.store, "d7",
         {report("SGH", "M7", kT0 + 7 * kDay, kHana,
                 {result("ferritin", 40, "ng/mL", "O7", ResultStatus::final, kT0 + 7 * kDay)})},
         targets);
  const auto items = f.store->claim_due_mail(from_now(kDay), 10);
  REQUIRE(items.size() == 1);
  REQUIRE(items[0].notices.size() == 1);
  const auto& history = items[0].notices[0].history;
  REQUIRE(history.size() == 5);
  std::vector<double> values;
  for (const auto& point : history) {
    values.push_back(point.value);
  }
  CHECK(values == std::vector<double>{103, 104, 105, 96, 40});
  CHECK(history[0].collected_at == kT0 + 3 * kDay);
  CHECK(history[4].collected_at == kT0 + 7 * kDay);
}

TEST_CASE("Store retry_failed_mail puts failed items and their alerts back in the queue",
          "[storage][outbox]") {
  Fixture f;
  const AlertPolicy targets = routed_to({"dr.b@clinic.example"});
  // Two mails: the first is claimed before the second alert comes, which then starts its own.
  ingest(*f.store, "1.hl7", {sgh("M1", {result("ferritin", 40, "ng/mL", "S1")})}, targets);
  auto items = f.store->claim_due_mail(from_now(kDay), 10);
  ingest(*f.store, "2.hl7", {sgh("M2", {result("zinc", 50, "ug/dL", "S2")})}, targets);
  const auto second = f.store->claim_due_mail(from_now(kDay), 10);
  items.insert(items.end(), second.begin(), second.end());
  REQUIRE(items.size() == 2);
  f.store->mark_mail_failed(items[0].id, "550 5.1.1 no such mailbox");
  f.store->mark_mail_failed(items[1].id, "550 5.1.1 no such mailbox");
  const auto listed = f.store->outbox(false);
  REQUIRE(listed.size() == 2);
  CHECK(listed[0].person_id == items[0].person_id);
  CHECK(listed[0].person_id > 0);
  const std::int64_t now = from_now(0);

  SECTION("one item by id") {
    CHECK(f.store->retry_failed_mail(items[0].id, now) == 1);
    CHECK(f.store->retry_failed_mail(items[0].id, now) == 0);  // not failed any more
    const auto rows = f.store->outbox(false);
    CHECK(rows[0].state == OutboxState::pending);
    CHECK(rows[0].attempts == 1);  // kept, as is the last error
    CHECK(rows[0].last_error == "550 5.1.1 no such mailbox");
    CHECK(rows[1].state == OutboxState::failed);
    CHECK(alert_state(*f.store, "ferritin") == "pending");
    CHECK(alert_state(*f.store, "zinc") == "failed");
    const auto again = f.store->claim_due_mail(now + kDay, 10);
    REQUIRE(again.size() == 1);
    CHECK(again[0].message_id == items[0].message_id);
  }
  SECTION("every failed item") {
    CHECK(f.store->retry_failed_mail(std::nullopt, now) == 2);
    CHECK(alert_state(*f.store, "ferritin") == "pending");
    CHECK(alert_state(*f.store, "zinc") == "pending");
    CHECK(f.store->next_mail_due().value() <= now + kWait);
  }
  SECTION("a sent item is not touched") {
    f.store->retry_failed_mail(items[0].id, now);
    auto claimed = f.store->claim_due_mail(now + kDay, 10);
    REQUIRE(claimed.size() == 1);
    f.store->mark_mail_sent(claimed[0].id, now);
    CHECK(f.store->retry_failed_mail(items[0].id, now) == 0);
    CHECK(f.store->outbox(true).at(0).state == OutboxState::sent);
  }
}

TEST_CASE(
    "Store mail claimed by a daemon that died while sending goes to another site's daemon "
    "after its lease",
    "[storage][outbox]") {
  Fixture f;
  const AlertPolicy targets = routed_to({"dr.b@clinic.example"});
  ingest(*f.store, "1.hl7", {sgh("M1", {result("ferritin", 40, "ng/mL", "S1")})}, targets);
  const std::int64_t due = f.store->outbox(false).at(0).due_at;
  labwatch::storage::StoreOptions north_options;
  north_options.site = "north:/srv/inbox";
  labwatch::storage::StoreOptions south_options;
  south_options.site = "south:/srv/inbox";
  auto north = open_store(f.path, north_options);
  auto south = open_store(f.path, south_options);

  const auto claimed = north->claim_due_mail(due, 10);
  REQUIRE(claimed.size() == 1);
  CHECK(claimed[0].attempts == 1);
  // The south daemon starting meanwhile leaves the north's item alone, and cannot claim it.
  CHECK(south->reset_interrupted_mail() == 0);
  CHECK(south->claim_due_mail(due + 1, 10).empty());
  const std::int64_t lease_end = due + labwatch::storage::MailQueue::kLeaseSeconds;
  CHECK(south->claim_due_mail(lease_end - 1, 10).empty());
  CHECK(south->next_mail_due() == lease_end);

  // The north daemon was killed while sending: when its lease ends, the south one sends the same
  // mail (the same Message-ID), counted as a second attempt, once.
  const auto taken_over = south->claim_due_mail(lease_end, 10);
  REQUIRE(taken_over.size() == 1);
  CHECK(taken_over[0].id == claimed[0].id);
  CHECK(taken_over[0].message_id == claimed[0].message_id);
  CHECK(taken_over[0].attempts == 2);
  CHECK(north->claim_due_mail(lease_end + 1, 10).empty());
  // The north daemon starting again takes back only what its own site left sending: nothing now.
  CHECK(north->reset_interrupted_mail() == 0);
  south->mark_mail_sent(taken_over[0].id, lease_end + 2);
  CHECK(f.store->outbox(false).empty());
  CHECK(f.store->outbox(true).at(0).state == OutboxState::sent);

  // A daemon that starts again takes back at once what its own site left sending.
  ingest(*f.store, "2.hl7", {sgh("M2", {result("zinc", 40, "ug/dL", "S2")})}, targets);
  const std::int64_t due2 = f.store->outbox(false).at(0).due_at;
  REQUIRE(north->claim_due_mail(due2, 10).size() == 1);
  CHECK(south->reset_interrupted_mail() == 0);
  CHECK(north->reset_interrupted_mail() == 1);
  CHECK(south->claim_due_mail(due2, 10).size() == 1);
}
