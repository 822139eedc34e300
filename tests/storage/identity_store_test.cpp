// SPDX-License-Identifier: Apache-2.0
// Tests of patient identity on a real SQLite file: matching at ingest, the review queue, merge,
// unmerge, dismissal, the audit trail, re-evaluation of trend alerts, a concurrent ingest.
#include "storage/identity_store.hpp"

#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "clinical/person_match.hpp"
#include "store_fixture.hpp"

using namespace labwatch::storage;
using namespace labwatch::storage::testing;
using labwatch::clinical::AlertStatus;
using labwatch::clinical::MatchReason;

namespace {

constexpr std::int64_t kDay = 86400;

NormalizedResult ferritin_at(double value, int day, const std::string& order) {
  NormalizedResult r =
      result("ferritin", value, "ng/mL", order, ResultStatus::final, kT0 + day * kDay);
  r.code = "2276-4";
  return r;
}

NormalizedReport about(const PersonIdentity& who, const std::string& control, int day,
                       std::vector<NormalizedResult> results) {
  return report(who.authority, control, kT0 + day * kDay, who, std::move(results));
}

std::int64_t person_of(Store& store, const std::string& key) {
  const auto id = store.find_person(key);
  REQUIRE(id.has_value());
  return *id;
}

ReviewAction by_alice(std::string reason) { return {"alice", std::move(reason), kT0 + 100 * kDay}; }

AlertPolicy falling_targets() {
  AlertPolicy targets = default_targets();
  targets.by_analyte.insert_or_assign("ferritin",
                                      labwatch::clinical::parse_optimal_rule("ge:10").value());
  targets.trends["ferritin"] = {labwatch::clinical::parse_trend_rule("trend:falling:0.2").value()};
  return targets;
}

std::vector<std::string> active_rules(Store& store) {
  std::vector<std::string> rules;
  for (const AlertRow& a : store.alerts(false)) {
    rules.push_back(a.rule + "@" + a.patient_key);
  }
  return rules;
}

const PersonIdentity kHanaA = person("LABA", "1", "Novak", "Hana", "1970-03-12", 'F');
const PersonIdentity kHanaA2 = person("LABA", "2", "NOVAK", "HANA", "1970-03-12", 'F');
const PersonIdentity kHanaB = person("LABB", "9", "Nováková", "Hana", "1970-03-12", 'F');
const PersonIdentity kHanaC = person("LABC", "3", "Novak", "Hana", "1970-03-12", 'U');

}  // namespace

TEST_CASE("Ingest keeps two identifiers of one authority apart and queues the pair",
          "[storage][identity]") {
  Fixture f;
  ingest(*f.store, "a", {about(kHanaA, "M1", 1, {ferritin_at(40, 1, "O1")})});
  ingest(*f.store, "b", {about(kHanaA2, "M2", 2, {ferritin_at(41, 2, "O2")})});
  const std::int64_t a = person_of(*f.store, "LABA|1");
  const std::int64_t b = person_of(*f.store, "LABA|2");
  CHECK(a != b);
  const auto review = open_identity_store(f.path);
  const std::vector<MatchRow> open = review->open_matches();
  REQUIRE(open.size() == 1);
  CHECK(open[0].person_a == a);
  CHECK(open[0].person_b == b);
  CHECK(open[0].reason == MatchReason::same_authority);
  CHECK(open[0].fields.empty());
}

TEST_CASE("Ingest joins across authorities on folded names and a compatible sex",
          "[storage][identity]") {
  Fixture f;
  const PersonIdentity unknown_sex = person("LABA", "1", "SMITH JONES", "Ann", "1980-05-20", 'U');
  const PersonIdentity hyphenated = person("LABB", "7", "Smith-Jones", "ann", "1980-05-20", 'F');
  ingest(*f.store, "a", {about(unknown_sex, "M1", 1, {ferritin_at(40, 1, "O1")})});
  ingest(*f.store, "b", {about(hyphenated, "M2", 2, {ferritin_at(41, 2, "O2")})});
  CHECK(person_of(*f.store, "LABA|1") == person_of(*f.store, "LABB|7"));
  CHECK(f.store->person(person_of(*f.store, "LABA|1"))->sex == 'F');
  CHECK(open_identity_store(f.path)->open_matches().empty());
}

TEST_CASE("Ingest makes a three-way ambiguity a new person with a pair for each",
          "[storage][identity]") {
  Fixture f;
  ingest(*f.store, "a", {about(kHanaA, "M1", 1, {ferritin_at(40, 1, "O1")})});
  ingest(*f.store, "b", {about(kHanaA2, "M2", 2, {ferritin_at(41, 2, "O2")})});
  ingest(*f.store, "c", {about(kHanaC, "M3", 3, {ferritin_at(42, 3, "O3")})});
  const std::int64_t a = person_of(*f.store, "LABA|1");
  const std::int64_t b = person_of(*f.store, "LABA|2");
  const std::int64_t c = person_of(*f.store, "LABC|3");
  CHECK(f.store->persons().size() == 3);
  const std::vector<MatchRow> open = open_identity_store(f.path)->open_matches();
  REQUIRE(open.size() == 3);
  std::vector<std::tuple<std::int64_t, std::int64_t, MatchReason, std::string>> got;
  for (const MatchRow& row : open) {
    got.emplace_back(row.person_a, row.person_b, row.reason, row.fields);
  }
  std::sort(got.begin(), got.end());
  CHECK(got == decltype(got){{a, b, MatchReason::same_authority, ""},
                             {a, c, MatchReason::ambiguous, "sex"},
                             {b, c, MatchReason::ambiguous, "sex"}});
}

TEST_CASE("IdentityStore merges a reviewed pair, audits it and raises the trend it reveals",
          "[storage][identity]") {
  Fixture f;
  const AlertPolicy targets = falling_targets();
  // Married since: only the family name differs, so the pair waits for review.
  ingest(*f.store, "a", {about(kHanaA, "M1", 1, {ferritin_at(100, 1, "O1")})}, targets);
  ingest(*f.store, "b", {about(kHanaB, "M2", 2, {ferritin_at(70, 2, "O2")})}, targets);
  const std::int64_t a = person_of(*f.store, "LABA|1");
  const std::int64_t b = person_of(*f.store, "LABB|9");
  REQUIRE(a != b);
  CHECK(active_rules(*f.store).empty());
  const auto review = open_identity_store(f.path);
  REQUIRE(review->open_matches().size() == 1);
  CHECK(review->open_matches()[0].reason == MatchReason::family_changed);
  CHECK(review->open_matches()[0].fields == "family");

  const IdentityOutcome merged = review->merge(a, b, by_alice("same patient, married"), targets);
  CHECK(merged.person_id == a);
  CHECK(merged.moved_results == 1);
  CHECK(merged.alerts.alerts == 1);
  CHECK(person_of(*f.store, "LABB|9") == a);
  CHECK(f.store->persons().size() == 1);  // b stays only as a tombstone
  CHECK(f.store->find_person(std::to_string(b)) == a);
  CHECK(f.count("SELECT merged_into FROM persons WHERE person_id = " + std::to_string(b)) == a);
  CHECK(review->open_matches().empty());
  CHECK(active_rules(*f.store) == std::vector<std::string>{"trend:falling:0.2@LABB|9"});

  const std::vector<AuditRow> audit = review->audit();
  REQUIRE(audit.size() == 1);
  CHECK(audit[0].action == "merge");
  CHECK(audit[0].os_user == "alice");
  CHECK(audit[0].reason == "same patient, married");
  CHECK(audit[0].at == kT0 + 100 * kDay);
  CHECK(audit[0].detail == "merged person " + std::to_string(b) + " into person " +
                               std::to_string(a) + " (1 results)");

  SECTION("a later report of the absorbed identifier joins the kept person") {
    ingest(*f.store, "b2", {about(kHanaB, "M3", 3, {ferritin_at(69, 3, "O3")})}, targets);
    CHECK(person_of(*f.store, "LABB|9") == a);
    CHECK(f.store->persons().size() == 1);
  }
  SECTION("unmerging it again closes the trend alert that no longer holds") {
    const IdentityOutcome split =
        review->unmerge(a, "LABB", "9", by_alice("merged by mistake"), targets);
    CHECK(split.moved_results == 1);
    CHECK(person_of(*f.store, "LABB|9") == split.person_id);
    CHECK(person_of(*f.store, "LABA|1") == a);
    CHECK(active_rules(*f.store).empty());
    CHECK(f.store->alerts(true).at(0).state == AlertStatus::resolved);
    CHECK(review->audit().size() == 2);
    CHECK(review->audit()[1].action == "unmerge");
    CHECK(review->open_matches().empty());  // the reviewer said two persons: not proposed again
  }
  SECTION("unmerging the identifier it was first reported under leaves it the other's names") {
    const IdentityOutcome split = review->unmerge(a, "LABA", "1", by_alice("mistake"), targets);
    CHECK(f.store->person(split.person_id)->family == "Novak");
    CHECK(f.store->person(a)->family == "Nováková");
    CHECK(person_of(*f.store, "LABB|9") == a);
  }
}

TEST_CASE("IdentityStore unmerges a wrongly merged identifier with its results",
          "[storage][identity]") {
  Fixture f;
  const AlertPolicy targets = falling_targets();
  // Two patients who agree in every field, at two labs: matched automatically, wrongly.
  ingest(*f.store, "a", {about(kHanaA, "M1", 1, {ferritin_at(100, 1, "O1")})}, targets);
  const PersonIdentity other = person("LABB", "5", "Novak", "Hana", "1970-03-12", 'F');
  ingest(*f.store, "b", {about(other, "M2", 2, {ferritin_at(60, 2, "O2")})}, targets);
  const std::int64_t a = person_of(*f.store, "LABA|1");
  REQUIRE(person_of(*f.store, "LABB|5") == a);
  REQUIRE(active_rules(*f.store) == std::vector<std::string>{"trend:falling:0.2@LABB|5"});

  const auto review = open_identity_store(f.path);
  const IdentityOutcome split = review->unmerge(a, "LABB", "5", by_alice("two patients"), targets);
  const std::int64_t b = split.person_id;
  CHECK(b != a);
  CHECK(person_of(*f.store, "LABB|5") == b);
  CHECK(f.store->trend(a, "ferritin").size() == 1);
  CHECK(f.store->trend(b, "ferritin").size() == 1);
  CHECK(f.store->trend(b, "ferritin").at(0).value == 60);
  CHECK(f.store->person(b)->family == "Novak");
  CHECK(active_rules(*f.store).empty());

  // The next report of that identifier goes to its own person, and nothing asks for review.
  ingest(*f.store, "b2", {about(other, "M3", 3, {ferritin_at(59, 3, "O3")})}, targets);
  CHECK(person_of(*f.store, "LABB|5") == b);
  CHECK(f.store->trend(b, "ferritin").size() == 2);
  CHECK(review->open_matches().empty());
}

TEST_CASE("IdentityStore refuses impossible actions and records none of them",
          "[storage][identity]") {
  Fixture f;
  ingest(*f.store, "a", {about(kHanaA, "M1", 1, {ferritin_at(40, 1, "O1")})});
  ingest(*f.store, "b", {about(kHanaA2, "M2", 2, {ferritin_at(41, 2, "O2")})});
  const std::int64_t a = person_of(*f.store, "LABA|1");
  const std::int64_t b = person_of(*f.store, "LABA|2");
  const auto review = open_identity_store(f.path);
  const AlertPolicy targets = default_targets();
  CHECK_THROWS_AS(review->merge(a, a, by_alice("x"), targets), IdentityError);
  CHECK_THROWS_AS(review->merge(a, 999, by_alice("x"), targets), IdentityError);
  CHECK_THROWS_AS(review->unmerge(a, "LABA", "1", by_alice("x"), targets), IdentityError);
  CHECK_THROWS_AS(review->unmerge(a, "LABA", "2", by_alice("x"), targets), IdentityError);
  CHECK_THROWS_AS(review->dismiss(a, 999, by_alice("x")), IdentityError);
  CHECK(review->audit().empty());

  review->dismiss(b, a, by_alice("siblings"));
  CHECK(review->open_matches().empty());
  REQUIRE(review->audit().size() == 1);
  CHECK(review->audit()[0].action == "dismiss");
  CHECK_THROWS_AS(review->dismiss(a, b, by_alice("again")), IdentityError);
  CHECK(f.store->persons().size() == 2);
}

TEST_CASE("IdentityStore merge waits for a running ingest and loses none of its writes",
          "[storage][identity]") {
  Fixture f;
  ingest(*f.store, "a", {about(kHanaA, "M1", 1, {ferritin_at(40, 1, "O1")})});
  ingest(*f.store, "b", {about(kHanaB, "M2", 2, {ferritin_at(41, 2, "O2")})});
  const std::int64_t a = person_of(*f.store, "LABA|1");
  const std::int64_t b = person_of(*f.store, "LABB|9");
  const auto review = open_identity_store(f.path);
  const AlertPolicy targets = default_targets();

  // The daemon's file transaction holds the write lock while the merge starts.
  auto tx = f.store->begin_file(file_named("c"), targets);
  tx->add_report(about(kHanaB, "M3", 3, {ferritin_at(42, 3, "O3")}));
  auto merging = std::async(std::launch::async,
                            [&] { return review->merge(a, b, by_alice("same"), targets); });
  CHECK(merging.wait_for(std::chrono::milliseconds(300)) == std::future_status::timeout);
  tx->commit();
  const IdentityOutcome merged = merging.get();
  CHECK(merged.moved_results == 2);  // the result the ingest committed meanwhile came along
  CHECK(f.store->trend(a, "ferritin").size() == 3);
}

TEST_CASE("IdentityStore mails a trend a merge reveals once, and takes it back on unmerge",
          "[storage][identity]") {
  Fixture f;
  AlertPolicy targets = falling_targets();
  Recipient desk;
  desk.email = "desk@clinic.example";
  targets.routing.fallback = {desk};
  ingest(*f.store, "a", {about(kHanaA, "M1", 1, {ferritin_at(100, 1, "O1")})}, targets);
  ingest(*f.store, "b", {about(kHanaB, "M2", 2, {ferritin_at(70, 2, "O2")})}, targets);
  const std::int64_t a = person_of(*f.store, "LABA|1");
  const std::int64_t b = person_of(*f.store, "LABB|9");
  REQUIRE(f.store->outbox(true).empty());
  const auto review = open_identity_store(f.path);

  const IdentityOutcome merged = review->merge(a, b, by_alice("married"), targets);
  CHECK(merged.alerts.alerts == 1);
  CHECK(merged.alerts.notices == 1);
  REQUIRE(f.store->alerts(false).size() == 1);
  CHECK(f.store->alerts(false)[0].state == AlertStatus::pending);
  REQUIRE(f.store->outbox(true).size() == 1);
  CHECK(f.count("SELECT person_id FROM outbox") == a);

  SECTION("merging in an earlier result keeps the alert and mails nothing again") {
    const auto sent = f.store->claim_due_mail(from_now(365 * kDay), 100);
    REQUIRE(sent.size() == 1);
    f.store->mark_mail_sent(sent[0].id, from_now(0));
    const PersonIdentity older = person("LABC", "4", "Novak", "Hana", "1970-12-03", 'F');
    ingest(*f.store, "c", {about(older, "M0", 0, {ferritin_at(110, 0, "O0")})}, targets);
    const std::int64_t c = person_of(*f.store, "LABC|4");
    REQUIRE(c != a);  // day and month exchanged: a pair to review, not a merge
    const IdentityOutcome again = review->merge(a, c, by_alice("birth date typo"), targets);
    CHECK(again.alerts.alerts == 0);
    CHECK(again.alerts.notices == 0);
    CHECK(f.store->alerts(false).size() == 1);
    CHECK(f.store->outbox(true).size() == 1);
  }
  SECTION("unmerging before the mail went takes the queued alert back") {
    review->unmerge(a, "LABB", "9", by_alice("two persons"), targets);
    CHECK(f.store->alerts(false).empty());
    CHECK(f.store->outbox(true).empty());
  }
}

TEST_CASE("Ingest merges nobody into a crowd larger than the persons it reads",
          "[storage][identity]") {
  // Hana (LABA|1, F), then more M persons with her name and birth date than the window of persons
  // read per identity, then Hana again under LABC. The window holds one agreeing F person, but
  // more persons share the demographics than were read: a full read would find two agreeing
  // persons. Neither LABC's nor LABB's Hana is merged into anybody; both go to review.
  Fixture f;
  ingest(*f.store, "f", {about(kHanaA, "M0", 1, {ferritin_at(40, 1, "O0")})});
  const int crowd = static_cast<int>(labwatch::clinical::kCandidateWindow);
  for (int i = 1; i <= crowd; ++i) {
    const std::string n = std::to_string(i);
    const PersonIdentity male = person("LABA", "M" + n, "Novak", "Hana", "1970-03-12", 'M');
    ingest(*f.store, "m" + n, {about(male, "M" + n, 1, {ferritin_at(40, 1, "O" + n)})});
  }
  const PersonIdentity hana_c = person("LABC", "3", "Novak", "Hana", "1970-03-12", 'F');
  ingest(*f.store, "c", {about(hana_c, "C1", 2, {ferritin_at(41, 2, "C1")})});
  const PersonIdentity hana_b = person("LABB", "9", "NOVAK", "Hana", "1970-03-12", 'F');
  ingest(*f.store, "b", {about(hana_b, "B1", 3, {ferritin_at(42, 3, "B1")})});

  const std::int64_t a = person_of(*f.store, "LABA|1");
  const std::int64_t c = person_of(*f.store, "LABC|3");
  const std::int64_t b = person_of(*f.store, "LABB|9");
  CHECK(c != a);
  CHECK(b != a);
  CHECK(b != c);
  CHECK(f.store->persons().size() == static_cast<std::size_t>(crowd) + 3);
  std::size_t pairs_of_b = 0;
  bool b_with_c = false;
  for (const MatchRow& row : open_identity_store(f.path)->open_matches()) {
    if (row.person_a == b || row.person_b == b) {
      ++pairs_of_b;
      b_with_c = b_with_c || (row.person_a == c && row.reason == MatchReason::ambiguous);
    }
  }
  CHECK(pairs_of_b == labwatch::clinical::kMaxReviewPairs);
  CHECK(b_with_c);
}

TEST_CASE("IdentityStore merge brings each identity's silences to the merged person",
          "[storage][identity]") {
  Fixture f;
  AlertPolicy targets = falling_targets();
  targets.by_analyte.insert_or_assign("ferritin",
                                      labwatch::clinical::parse_optimal_rule("ge:50").value());
  Recipient desk;
  desk.email = "desk@clinic.example";
  targets.routing.fallback = {desk};
  ingest(*f.store, "a", {about(kHanaA, "M1", 1, {ferritin_at(110, 1, "O1")})}, targets);
  const std::int64_t a = person_of(*f.store, "LABA|1");
  const auto review = open_identity_store(f.path);
  const auto silence = [&](std::int64_t person) {
    f.store->add_silence({person, "ferritin", from_now(365 * kDay), "treating", "alice", kT0});
  };

  SECTION("a queued alert of the absorbed identity meets the kept one's silence") {
    silence(a);  // set while no alert stood: covers every ferritin alert
    ingest(*f.store, "b", {about(kHanaB, "M2", 2, {ferritin_at(40, 2, "O2")})}, targets);
    const std::int64_t b = person_of(*f.store, "LABB|9");
    REQUIRE(f.store->alerts(false).size() == 1);
    REQUIRE(f.store->alerts(false)[0].state == AlertStatus::pending);
    REQUIRE(f.store->outbox(true).size() == 1);

    review->merge(a, b, by_alice("married"), targets);
    // The ge:50 alert queued before the merge and the fall the merge reveals: both silenced,
    // and the queued mail taken back.
    const std::vector<AlertRow> alerts = f.store->alerts(false);
    REQUIRE(alerts.size() == 2);
    for (const AlertRow& alert : alerts) {
      INFO(alert.rule);
      CHECK(alert.state == AlertStatus::silenced);
    }
    CHECK(f.store->outbox(true).empty());
  }
  SECTION("the absorbed identity's silence holds for the merged person's next result") {
    ingest(*f.store, "b", {about(kHanaB, "M2", 2, {ferritin_at(100, 2, "O2")})}, targets);
    const std::int64_t b = person_of(*f.store, "LABB|9");
    silence(b);
    review->merge(a, b, by_alice("married"), targets);
    CHECK(f.count("SELECT count(*) FROM silences WHERE person_id = " + std::to_string(a)) == 1);
    ingest(*f.store, "c", {about(kHanaA, "M3", 3, {ferritin_at(30, 3, "O3")})}, targets);
    const std::vector<AlertRow> alerts = f.store->alerts(false);
    REQUIRE_FALSE(alerts.empty());
    for (const AlertRow& alert : alerts) {
      INFO(alert.rule);
      CHECK(alert.state == AlertStatus::silenced);
    }
    CHECK(f.store->outbox(true).empty());
  }
  SECTION("a mail already attempted is not taken back") {
    silence(a);
    ingest(*f.store, "b", {about(kHanaB, "M2", 2, {ferritin_at(40, 2, "O2")})}, targets);
    const std::int64_t b = person_of(*f.store, "LABB|9");
    const auto claimed = f.store->claim_due_mail(from_now(365 * kDay), 100);
    REQUIRE(claimed.size() == 1);
    f.store->mark_mail_retry(claimed[0].id, from_now(60), "timeout");
    review->merge(a, b, by_alice("married"), targets);
    CHECK(f.store->outbox(true).size() == 1);
    CHECK(f.count("SELECT count(*) FROM alerts WHERE rule = 'ge:50' AND state = 'pending'") == 1);
  }
}
