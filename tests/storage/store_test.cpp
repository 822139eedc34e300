// SPDX-License-Identifier: Apache-2.0
// Tests of the store (on SQLite, and on PostgreSQL when the suite runs there): idempotency,
// persons, duplicates, versions, refusals, alerts, queries.
#include "storage/store.hpp"

#include <catch2/catch.hpp>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "storage/store_fixture.hpp"

namespace {

using labwatch::clinical::AlertStatus;
using labwatch::clinical::PersonIdentity;
using labwatch::clinical::ResultStatus;
using labwatch::storage::FileRecord;
using labwatch::storage::FileVerdict;
using labwatch::storage::IngestSummary;
using labwatch::storage::PersonRow;
using labwatch::storage::testing::default_targets;
using labwatch::storage::testing::file_named;
using labwatch::storage::testing::Fixture;
using labwatch::storage::testing::ingest;
using labwatch::storage::testing::kT0;
using labwatch::storage::testing::person;
using labwatch::storage::testing::report;
using labwatch::storage::testing::result;

// (status, state, status of the successor or "") of every stored version, by message time.
std::vector<std::tuple<std::string, std::string, std::string>> history(const Fixture& f) {
  const auto db = f.reader();
  labwatch::storage::sql::Statement q(
      *db,
      "SELECT r.status, r.state, coalesce(s.status, '') FROM results r "
      "JOIN messages m ON m.message_id = r.message_id "
      "LEFT JOIN results s ON s.result_id = r.superseded_by "
      "ORDER BY m.message_time, r.result_id");
  std::vector<std::tuple<std::string, std::string, std::string>> out;
  while (q.step()) {
    out.emplace_back(q.column(0).as_string(), q.column(1).as_string(), q.column(2).as_string());
  }
  return out;
}

const PersonIdentity kSghPatient = person("SGH", "SGH1", "EXAMPLAR", "HANA J", "1994-06-08", 'F');

}  // namespace

TEST_CASE("Store begin_file on a known hash reports already_known and stores nothing twice",
          "[storage][store]") {
  Fixture f;
  const auto r = report("SGH", "M1", kT0, kSghPatient, {result("ferritin", 80, "ng/mL", "S1")});
  CHECK_FALSE(f.store->find_file("sha-a.hl7").has_value());
  const IngestSummary first = ingest(*f.store, "a.hl7", {r});
  CHECK_FALSE(first.already_known);
  CHECK(first.reports == 1);
  CHECK(first.results_stored == 1);
  CHECK(f.store->find_file("sha-a.hl7").has_value());

  const IngestSummary again = ingest(*f.store, "a.hl7", {r});
  CHECK(again.already_known);
  CHECK(again.reports == 0);
  CHECK(again.results_stored == 0);
  CHECK(f.count("SELECT count(*) FROM files") == 1);
  CHECK(f.count("SELECT count(*) FROM results") == 1);
  CHECK(f.count("SELECT count(*) FROM files WHERE outcome = 'accepted' AND results_stored = 1") ==
        1);
}

TEST_CASE("Store commit with the digest rolls back a file whose bytes were committed before",
          "[storage][store]") {
  Fixture f;
  FileRecord first = file_named("a.hl7");
  first.sha256.clear();  // known only once the file is read
  {
    auto tx = f.store->begin_file(first, default_targets());
    tx->add_report(report("SGH", "M1", kT0, kSghPatient, {result("ferritin", 40, "ng/mL", "S1")}));
    const IngestSummary stored = tx->commit("d1");
    CHECK_FALSE(stored.already_known);
    CHECK(stored.results_stored == 1);
    CHECK(stored.alerts == 1);
  }
  CHECK(f.count("SELECT count(*) FROM files WHERE sha256 = 'd1' AND outcome = 'accepted'") == 1);

  // The same bytes under another name, read again: what they would change is rolled back.
  FileRecord again = file_named("b.hl7");
  again.sha256.clear();
  auto tx = f.store->begin_file(again, default_targets());
  tx->add_report(report("SGH", "M2", kT0 + 60, kSghPatient,
                        {result("ferritin", 90, "ng/mL", "S1", ResultStatus::corrected)}));
  const IngestSummary known = tx->commit("d1");
  CHECK(known.already_known);
  CHECK(known.reports == 0);
  CHECK(known.results_stored == 0);
  CHECK(known.superseded == 0);
  CHECK(f.count("SELECT count(*) FROM files") == 1);
  CHECK(f.count("SELECT count(*) FROM messages") == 1);
  CHECK(f.count("SELECT count(*) FROM results WHERE state = 'current' AND value = 40") == 1);
  CHECK(f.count("SELECT count(*) FROM results") == 1);
  CHECK(f.count("SELECT count(*) FROM alerts WHERE state = 'unmailed'") == 1);

  // Other bytes are stored as usual afterwards.
  auto next = f.store->begin_file(again, default_targets());
  next->add_report(report("SGH", "M3", kT0, kSghPatient, {result("zinc", 90, "ug/dL", "S2")}));
  CHECK(next->commit("d2").results_stored == 1);
  CHECK(f.count("SELECT count(*) FROM files WHERE sha256 = 'd2' AND name = 'b.hl7'") == 1);
}

TEST_CASE("Store file transactions refuse a commit without the file's digest or with another one",
          "[storage][store]") {
  Fixture f;
  FileRecord unnamed = file_named("a.hl7");
  unnamed.sha256.clear();
  SECTION("no digest at all") {
    auto tx = f.store->begin_file(unnamed, default_targets());
    CHECK_THROWS_AS(tx->commit(), std::logic_error);
    CHECK_THROWS_AS(tx->commit(""), std::logic_error);
  }
  SECTION("a digest other than the one begin_file had") {
    auto tx = f.store->begin_file(file_named("a.hl7"), default_targets());
    CHECK_THROWS_AS(tx->commit("sha-b.hl7"), std::logic_error);
    CHECK_FALSE(tx->commit("sha-a.hl7").already_known);
  }
  CHECK(f.count("SELECT count(*) FROM files WHERE sha256 = ''") == 0);
}

TEST_CASE("Store find_file returns a committed file's verdict, counts and refusals in order",
          "[storage][store]") {
  Fixture f;
  labwatch::parsers::Refusal not_a_number;
  not_a_number.reason = labwatch::parsers::RefusalReason::non_numeric_value;
  not_a_number.detail = "OBX-5 is not a number";
  not_a_number.where.message = 0;
  not_a_number.where.segment = 7;
  not_a_number.where.segment_id = "OBX";
  not_a_number.where.field = 5;
  not_a_number.where.line = 9;
  not_a_number.where.offset = 640;
  not_a_number.patient_key = "SGH|SGH1";
  not_a_number.code = "30522-7";
  not_a_number.analyte = "hs_crp";
  not_a_number.collected_at = {
      2024, 12, 1, 9, 45, 0, 0, labwatch::parsers::DateTime::Precision::minute, true, -360};
  not_a_number.result_status = 'F';
  labwatch::parsers::Refusal truncated;
  truncated.reason = labwatch::parsers::RefusalReason::truncated_message;
  truncated.detail = "message 2 ends inside OBX";
  truncated.where.message = 1;
  truncated.where.line = 14;
  truncated.where.offset = 812;
  labwatch::parsers::Refusal no_unit;
  no_unit.reason = labwatch::parsers::RefusalReason::missing_columns;
  no_unit.detail = "no unit column";
  no_unit.where.line = 1;
  no_unit.where.column = "unit";

  auto partial = report("SGH", "M1", kT0, kSghPatient,
                        {result("ferritin", 80, "ng/mL", "S1"), result("zinc", 80, "ug/dL", "S1")});
  partial.refusals.push_back(not_a_number);
  auto tx = f.store->begin_file(file_named("partial.hl7"), default_targets());
  tx->add_report(partial);
  tx->add_refusal(truncated);
  tx->commit();
  auto refused_tx = f.store->begin_file(file_named("refused.csv"), default_targets());
  refused_tx->add_refusal(no_unit);
  refused_tx->commit();
  ingest(*f.store, "accepted.hl7",
         {report("SGH", "M2", kT0, kSghPatient, {result("iron", 90, "ug/dL", "S2")})});

  const auto known = f.store->find_file("sha-partial.hl7");
  REQUIRE(known.has_value());
  CHECK(known->verdict == FileVerdict::partial);
  CHECK(known->name == "partial.hl7");
  CHECK(known->summary.already_known);
  CHECK(known->summary.reports == 1);
  CHECK(known->summary.results_stored == 2);
  CHECK(known->summary.refusals == 2);
  CHECK(known->summary.duplicates == 0);
  REQUIRE(known->refusals.size() == 2);
  const labwatch::parsers::Refusal& first = known->refusals[0];
  CHECK(first.reason == not_a_number.reason);
  CHECK(first.detail == not_a_number.detail);
  CHECK(first.where.message == 0);
  CHECK(first.where.segment == 7);
  CHECK(first.where.segment_id == "OBX");
  CHECK(first.where.field == 5);
  CHECK(first.where.line == 9);
  CHECK(first.where.offset == 640);
  CHECK(first.where.column.empty());
  CHECK(first.patient_key == "SGH|SGH1");
  CHECK(first.code == "30522-7");
  CHECK(first.analyte == "hs_crp");
  CHECK(first.collected_at == not_a_number.collected_at);
  CHECK(first.result_status == 'F');
  const labwatch::parsers::Refusal& second = known->refusals[1];
  CHECK(to_string(second.reason) == "truncated_message");
  CHECK(second.where.message == 1);
  CHECK(second.where.segment == -1);
  CHECK(second.where.field == -1);
  CHECK(second.where.line == 14);
  CHECK(second.where.offset == 812);
  CHECK(second.collected_at.empty());
  CHECK(second.result_status == 0);

  const auto refused = f.store->find_file("sha-refused.csv");
  REQUIRE(refused.has_value());
  CHECK(refused->verdict == FileVerdict::refused);
  CHECK(refused->summary.reports == 0);
  REQUIRE(refused->refusals.size() == 1);
  CHECK(to_string(refused->refusals[0].reason) == "missing_columns");
  CHECK(refused->refusals[0].where.column == "unit");
  CHECK(refused->refusals[0].where.offset == static_cast<std::size_t>(-1));

  const auto accepted = f.store->find_file("sha-accepted.hl7");
  REQUIRE(accepted.has_value());
  CHECK(accepted->verdict == FileVerdict::accepted);
  CHECK(accepted->summary.results_stored == 1);
  CHECK(accepted->refusals.empty());

  CHECK_FALSE(f.store->find_file("sha-other.hl7").has_value());
  CHECK_FALSE(f.store->find_file("").has_value());
}

TEST_CASE("Store records a file's config fingerprint and sets aside only a refused verdict",
          "[storage][store]") {
  Fixture f;
  labwatch::parsers::Refusal unknown_source;
  unknown_source.reason = labwatch::parsers::RefusalReason::unknown_source;
  FileRecord refused = file_named("refused.csv");
  refused.config_digest = "config-1";
  {
    auto tx = f.store->begin_file(refused, default_targets());
    tx->add_refusal(unknown_source);
    CHECK(tx->commit().refusals == 1);
  }
  ingest(*f.store, "good.hl7",
         {report("SGH", "M1", kT0, kSghPatient, {result("ferritin", 80, "ng/mL", "S1")})});
  const auto known = f.store->find_file("sha-refused.csv");
  REQUIRE(known.has_value());
  CHECK(known->config_digest == "config-1");
  CHECK(f.store->find_file("sha-good.hl7")->config_digest.empty());

  CHECK_FALSE(f.store->set_aside_verdict("sha-good.hl7"));  // accepted: stays known
  CHECK(f.store->find_file("sha-good.hl7").has_value());
  CHECK(f.store->set_aside_verdict("sha-refused.csv"));
  CHECK_FALSE(f.store->find_file("sha-refused.csv").has_value());
  CHECK_FALSE(f.store->set_aside_verdict("sha-refused.csv"));
  // The row and its refusal stay, as history.
  CHECK(f.count("SELECT count(*) FROM files WHERE sha256 LIKE 'sha-refused.csv:set-aside:%'") == 1);
  CHECK(f.count("SELECT count(*) FROM refusals WHERE reason = 'unknown_source'") == 1);
}

TEST_CASE("Store records the refusals of a resent message, so that its file is partial too",
          "[storage][store]") {
  Fixture f;
  auto r = report("SGH", "M1", kT0, kSghPatient, {result("ferritin", 80, "ng/mL", "S1")});
  labwatch::parsers::Refusal no_unit;
  no_unit.reason = labwatch::parsers::RefusalReason::unknown_unit;
  no_unit.detail = "OBX-6 'U/L' is not a known unit for zinc";
  no_unit.where.message = 0;
  no_unit.where.segment = 5;
  r.refusals.push_back(no_unit);
  CHECK(ingest(*f.store, "first.hl7", {r}).refusals == 1);

  const IngestSummary resend = ingest(*f.store, "resend.hl7", {r});
  CHECK(resend.duplicate_messages == 1);
  CHECK(resend.refusals == 1);
  CHECK(f.count("SELECT outcome = 'partial' FROM files WHERE name = 'resend.hl7'") == 1);
  // The refusal points at the stored message it was resent as.
  CHECK(f.count("SELECT count(*) FROM refusals r JOIN files f ON f.file_id = r.file_id "
                "WHERE f.name = 'resend.hl7' AND r.level = 'result' AND r.message_id = "
                "(SELECT message_id FROM messages)") == 1);
  const auto known = f.store->find_file("sha-resend.hl7");
  REQUIRE(known.has_value());
  CHECK(known->verdict == FileVerdict::partial);
  REQUIRE(known->refusals.size() == 1);
  CHECK(to_string(known->refusals[0].reason) == "unknown_unit");
}

TEST_CASE("Store sums the unmapped codes of a file's messages into one row per code",
          "[storage][store]") {
  Fixture f;
  auto a = report("LCA", "L1", kT0, person("LCA", "9", "Doe", "Jo", "1970-01-01", 'M'), {});
  a.unmapped = {{"718-7", 2}, {"2500-7", 1}};
  auto b = report("LCA", "L2", kT0, a.patient, {});
  b.unmapped = {{"718-7", 3}};
  auto c = report("QDX", "Q1", kT0, person("QDX", "1", "Roe", "Al", "1971-01-01", 'M'), {});
  c.unmapped = {{"718-7", 4}};
  ingest(*f.store, "one.hl7", {a, b, c});
  CHECK(f.count("SELECT count FROM unmapped_codes WHERE facility = 'LCA' AND code = '718-7'") == 5);
  CHECK(f.count("SELECT count FROM unmapped_codes WHERE facility = 'LCA' AND code = '2500-7'") ==
        1);
  CHECK(f.count("SELECT count FROM unmapped_codes WHERE facility = 'QDX' AND code = '718-7'") == 4);
  CHECK(f.count("SELECT count(*) FROM unmapped_codes WHERE last_file_id = 1 AND "
                "first_seen = last_seen") == 3);
  // A resent message adds nothing.
  ingest(*f.store, "two.hl7", {b});
  CHECK(f.count("SELECT count FROM unmapped_codes WHERE facility = 'LCA' AND code = '718-7'") == 5);
}

TEST_CASE("Store keeps the latest name and unit a lab sent with an unmapped code",
          "[storage][store]") {
  Fixture f;
  auto a = report("LCA", "L1", kT0, person("LCA", "9", "Doe", "Jo", "1970-01-01", 'M'), {});
  a.unmapped = {{"718-7", 2}};
  a.unmapped_lines = {{"718-7", "HGB", "g/dL", {}}, {"718-7", "Hemoglobin", "", {}}};
  ingest(*f.store, "one.hl7", {a});
  const auto text = [&f](const std::string& column) {
    return f.text("SELECT " + column + " FROM unmapped_codes WHERE code = '718-7'");
  };
  // A line without a unit keeps the one seen before.
  CHECK(text("name") == "Hemoglobin");
  CHECK(text("unit") == "g/dL");
  auto b = report("LCA", "L2", kT0, a.patient, {});
  b.unmapped = {{"718-7", 1}};
  b.unmapped_lines = {{"718-7", "Hemoglobin, blood", "g/L", {}}};
  ingest(*f.store, "two.hl7", {b});
  CHECK(text("name") == "Hemoglobin, blood");
  CHECK(text("unit") == "g/L");
  CHECK(f.count("SELECT count FROM unmapped_codes WHERE code = '718-7'") == 3);
}

TEST_CASE("Store matches one person across authorities by folded name, birth date and sex",
          "[storage][store]") {
  Fixture f;
  const auto lmb = person("LMB", "P-764146", "Fälschle", "Ines", "1955-09-15", 'F');
  const auto qdx = person("QDX", "Q1", "FALSCHLE", "INES M", "1955-09-15", 'F');
  const auto lca = person("LCA", "77", "falschle", "Ines Maria", "1955-09-15", 'F');
  ingest(
      *f.store, "a",
      {report("LMB", "", 0, lmb, {result("ferritin", 49, "ng/mL", "", ResultStatus::final, kT0)})});
  ingest(*f.store, "b",
         {report("QDX", "Q-1", kT0, qdx,
                 {result("ferritin", 55, "ng/mL", "O1", ResultStatus::final, kT0 + 86400)})});
  ingest(*f.store, "c", {report("LCA", "L-1", kT0, lca, {result("zinc", 90, "ug/dL", "O2")})});

  const auto persons = f.store->persons();
  REQUIRE(persons.size() == 1);
  CHECK(persons[0].family == "Fälschle");  // as first reported
  CHECK(persons[0].given == "Ines");
  CHECK(persons[0].birth_date == "1955-09-15");
  CHECK(persons[0].sex == 'F');
  CHECK(persons[0].patient_keys == std::vector<std::string>{"LCA|77", "LMB|P-764146", "QDX|Q1"});
  CHECK(persons[0].results == 3);
  CHECK(persons[0].last_collected_at == kT0 + 86400);

  const auto id = persons[0].person_id;
  // person(id) reads the same row without listing everyone.
  const std::optional<PersonRow> one = f.store->person(id);
  REQUIRE(one.has_value());
  CHECK(one->family == "Fälschle");
  CHECK(one->given == "Ines");
  CHECK(one->birth_date == "1955-09-15");
  CHECK(one->sex == 'F');
  CHECK(one->patient_keys == persons[0].patient_keys);
  CHECK(one->results == 3);
  CHECK(one->last_collected_at == kT0 + 86400);
  CHECK_FALSE(f.store->person(id + 1).has_value());

  CHECK(f.store->find_person("QDX|Q1") == id);
  CHECK(f.store->find_person("LCA|77") == id);
  CHECK(f.store->find_person(std::to_string(id)) == id);
  CHECK_FALSE(f.store->find_person("QDX|Q2").has_value());
  CHECK_FALSE(f.store->find_person("999").has_value());
  CHECK_FALSE(f.store->find_person("12x").has_value());
  CHECK_FALSE(f.store->find_person("").has_value());
}

TEST_CASE("Store keeps persons apart by birth date and matches one without it by identifier only",
          "[storage][store]") {
  Fixture f;
  const auto a = person("QDX", "Q1", "Doe", "Jane", "1980-01-02", 'F');
  const auto b = person("LCA", "L1", "DOE", "JANE", "1980-01-03", 'F');
  const auto c = person("WCE", "W1", "Doe", "Jane", "", 'F');
  const auto c_again = person("WCE", "W1", "Doe-Smith", "J", "", 'F');
  const auto d = person("NLS", "N1", "Doe", "Jane", "", 'F');
  ingest(*f.store, "a",
         {report("QDX", "1", kT0, a, {}), report("LCA", "2", kT0, b, {}),
          report("WCE", "", kT0, c, {}), report("WCE", "", kT0, c_again, {}),
          report("NLS", "", kT0, d, {})});
  const auto persons = f.store->persons();
  REQUIRE(persons.size() == 4);
  CHECK(persons[0].patient_keys == std::vector<std::string>{"QDX|Q1"});
  CHECK(persons[1].patient_keys == std::vector<std::string>{"LCA|L1"});
  CHECK(persons[2].patient_keys == std::vector<std::string>{"WCE|W1"});  // same MRN: same person
  CHECK(persons[3].patient_keys == std::vector<std::string>{"NLS|N1"});
  CHECK(f.count("SELECT count(*) FROM persons WHERE match_key IS NULL") == 2);
}

TEST_CASE("Store stores a byte-identical resent message once", "[storage][store]") {
  Fixture f;
  const auto r =
      report("SGH", "SGH301000098", kT0, kSghPatient,
             {result("ferritin", 110, "ng/mL", "S1"), result("zinc", 80, "ug/dL", "S1")});
  ingest(*f.store, "c_sgh_01.hl7", {r});
  const IngestSummary resend = ingest(*f.store, "c_sgh_03.hl7", {r});
  CHECK(resend.reports == 1);
  CHECK(resend.duplicate_messages == 1);
  CHECK(resend.duplicates == 2);
  CHECK(resend.results_stored == 0);
  CHECK(f.count("SELECT count(*) FROM messages") == 1);
  CHECK(f.count("SELECT count(*) FROM results") == 2);
  const auto rows = f.store->current_results();
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].source_file == "c_sgh_01.hl7");
  CHECK(f.count("SELECT duplicate_messages FROM files WHERE name = 'c_sgh_03.hl7'") == 1);
}

TEST_CASE("Store supersedes P by F and F by C in either arrival order", "[storage][store]") {
  const auto p = report("SGH", "M1", kT0, kSghPatient,
                        {result("ferritin", 40, "ng/mL", "S1", ResultStatus::preliminary)});
  const auto fin = report("SGH", "M2", kT0 + 3600, kSghPatient,
                          {result("ferritin", 45, "ng/mL", "S1", ResultStatus::final)});
  const auto c = report("SGH", "M3", kT0 + 7200, kSghPatient,
                        {result("ferritin", 60, "ng/mL", "S1", ResultStatus::corrected)});
  Fixture f;
  SECTION("in message order") {
    CHECK(ingest(*f.store, "1.hl7", {p}).superseded == 0);
    CHECK(ingest(*f.store, "2.hl7", {fin}).superseded == 1);
    CHECK(ingest(*f.store, "3.hl7", {c}).superseded == 1);
  }
  SECTION("in reverse order") {
    CHECK(ingest(*f.store, "3.hl7", {c}).superseded == 0);
    const IngestSummary late = ingest(*f.store, "2.hl7", {fin});
    CHECK(late.results_stored == 1);
    CHECK(late.superseded == 0);
    CHECK(ingest(*f.store, "1.hl7", {p}).superseded == 0);
  }
  const auto rows = f.store->current_results();
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].value == 60);
  CHECK(rows[0].status == ResultStatus::corrected);
  CHECK(rows[0].source_file == "3.hl7");
  CHECK(history(f) == std::vector<std::tuple<std::string, std::string, std::string>>{
                          {"preliminary", "superseded", "final"},
                          {"final", "superseded", "corrected"},
                          {"corrected", "current", ""}});
  // The ferritin of 40 and 45 violated ge:50 while current; only the current 60 keeps an alert.
  const auto alerts = f.store->alerts(false);
  REQUIRE(alerts.size() == 1);
  CHECK(alerts[0].value == 60);
  CHECK(alerts[0].rule == "ideal:gt:70");
}

TEST_CASE("Store withdraws the current version when a cancellation arrives", "[storage][store]") {
  Fixture f;
  const auto fin =
      report("SGH", "M1", kT0, kSghPatient,
             {result("ferritin", 30, "ng/mL", "S1"), result("zinc", 80, "ug/dL", "S1")});
  auto cancelled = result("ferritin", 0, "ng/mL", "S1", ResultStatus::cancelled);
  const auto cancel = report("SGH", "M2", kT0 + 60, kSghPatient, {cancelled});
  ingest(*f.store, "1.hl7", {fin});
  REQUIRE(f.store->alerts(false).size() == 1);

  const IngestSummary summary = ingest(*f.store, "2.hl7", {cancel});
  CHECK(summary.withdrawn == 1);
  CHECK(summary.results_stored == 1);
  CHECK(summary.alerts == 0);
  const auto rows = f.store->current_results();
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].analyte == "zinc");
  CHECK(history(f) == std::vector<std::tuple<std::string, std::string, std::string>>{
                          {"final", "withdrawn", "cancelled"},
                          {"final", "current", ""},
                          {"cancelled", "cancelled", ""}});
  CHECK(f.store->alerts(false).empty());
  const auto all = f.store->alerts(true);
  REQUIRE(all.size() == 1);
  CHECK(all[0].state == AlertStatus::withdrawn);
}

TEST_CASE(
    "Store keys CSV results by person, analyte and time: same value duplicate, new value "
    "supersedes",
    "[storage][store]") {
  Fixture f;
  const auto patient = person("WCE", "36672", "Mockridge", "Faye", "1956-03-06", 'F');
  const auto first = report("WCE", "", 0, patient, {result("ferritin", 132, "ng/mL", "")});
  ingest(*f.store, "d1_wce_01.csv", {first});

  const IngestSummary same = ingest(*f.store, "d1_wce_02.csv", {first});
  CHECK(same.duplicates == 1);
  CHECK(same.duplicate_messages == 0);  // CSV rows carry no message digest
  CHECK(same.results_stored == 0);

  const auto changed = report("WCE", "", 0, patient, {result("ferritin", 140, "ng/mL", "")});
  const IngestSummary update = ingest(*f.store, "d1_wce_03.csv", {changed});
  CHECK(update.results_stored == 1);
  CHECK(update.superseded == 1);

  const auto other_time = report(
      "WCE", "", 0, patient, {result("ferritin", 132, "ng/mL", "", ResultStatus::final, kT0 + 60)});
  CHECK(ingest(*f.store, "d1_wce_04.csv", {other_time}).superseded == 0);

  const auto rows = f.store->current_results();
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].value == 140);
  CHECK(rows[0].source_file == "d1_wce_03.csv");
  CHECK(rows[1].value == 132);
  CHECK(rows[1].collected_at == kT0 + 60);
}

TEST_CASE("Store records refusals at file, message and result level and counts unmapped codes",
          "[storage][store]") {
  Fixture f;
  auto r = report("LCA", "L1", kT0, person("LCA", "9", "Doe", "Jo", "1970-01-01", 'M'),
                  {result("ferritin", 80, "ng/mL", "O1")});
  labwatch::parsers::Refusal not_a_number;
  not_a_number.reason = labwatch::parsers::RefusalReason::non_numeric_value;
  not_a_number.detail = "OBX-5 is not a number";
  not_a_number.where.message = 0;
  not_a_number.where.segment = 7;
  not_a_number.where.segment_id = "OBX";
  not_a_number.where.field = 5;
  not_a_number.where.line = 7;
  not_a_number.patient_key = "LCA|9";
  not_a_number.code = "30522-7";
  not_a_number.analyte = "hs_crp";
  not_a_number.collected_at = {
      2024, 12, 1, 9, 45, 0, 0, labwatch::parsers::DateTime::Precision::minute, true, -360};
  not_a_number.result_status = 'F';
  r.refusals.push_back(not_a_number);
  r.unmapped = {{"718-7", 2}, {"2500-7", 1}};

  labwatch::parsers::Refusal truncated;
  truncated.reason = labwatch::parsers::RefusalReason::truncated_message;
  truncated.detail = "message 2 ends inside OBX";
  truncated.where.message = 1;
  truncated.where.offset = 812;
  labwatch::parsers::Refusal garbage;
  garbage.reason = labwatch::parsers::RefusalReason::unrecognized_format;
  garbage.detail = "neither HL7 nor CSV";
  labwatch::parsers::Refusal no_unit;
  no_unit.reason = labwatch::parsers::RefusalReason::missing_columns;
  no_unit.detail = "no unit column";
  no_unit.where.line = 1;
  no_unit.where.offset = 0;

  auto tx = f.store->begin_file(file_named("b_lca_02.hl7"), default_targets());
  tx->add_report(r);
  tx->add_refusal(truncated);
  tx->add_refusal(garbage);
  tx->add_refusal(no_unit);
  const IngestSummary summary = tx->commit();
  CHECK(summary.refusals == 4);
  CHECK(summary.results_stored == 1);

  const auto db = f.reader();
  labwatch::storage::sql::Statement q(
      *db,
      "SELECT level, reason, coalesce(message_id, 0), coalesce(pos_segment, -1), "
      "coalesce(pos_offset, -1), patient_key, analyte, collected_at, result_status "
      "FROM refusals ORDER BY refusal_id");
  std::vector<std::string> rows;
  while (q.step()) {
    std::string row;
    for (int i = 0; i < 9; ++i) {
      row += q.column(i).as_string() + ";";
    }
    rows.push_back(row);
  }
  CHECK(rows == std::vector<std::string>{
                    "result;non_numeric_value;1;7;-1;LCA|9;hs_crp;2024-12-01T09:45-06:00;F;",
                    "message;truncated_message;0;-1;812;;;;;",
                    "file;unrecognized_format;0;-1;-1;;;;;", "file;missing_columns;0;-1;0;;;;;"});
  CHECK(f.count("SELECT outcome = 'partial' FROM files") == 1);

  CHECK(f.count("SELECT count FROM unmapped_codes WHERE facility = 'LCA' AND code = '718-7'") == 2);
  ingest(*f.store, "b_lca_03.hl7", {report("LCA", "L2", kT0, r.patient, {})});
  auto again = report("LCA", "L3", kT0, r.patient, {});
  again.unmapped = {{"718-7", 3}};
  ingest(*f.store, "b_lca_04.hl7", {again});
  CHECK(f.count("SELECT count FROM unmapped_codes WHERE facility = 'LCA' AND code = '718-7'") == 5);
  CHECK(f.count("SELECT count(*) FROM unmapped_codes") == 2);
}

TEST_CASE(
    "Store raises an alert for a violated rule only, and resolves it by a version inside target",
    "[storage][store]") {
  Fixture f;
  const auto low = report("SGH", "M1", kT0, kSghPatient,
                          {result("ferritin", 40, "ng/mL", "S1", ResultStatus::preliminary),
                           result("hs_crp", 0.5, "mg/L", "S1")});
  const IngestSummary first = ingest(*f.store, "1.hl7", {low});
  CHECK(first.alerts == 1);  // hs_crp 0.5 meets lt:1.0
  auto alerts = f.store->alerts(false);
  REQUIRE(alerts.size() == 1);
  CHECK(alerts[0].rule == "ge:50");
  CHECK(alerts[0].state == AlertStatus::unmailed);  // no routing: recorded, no mail queued
  CHECK(alerts[0].value == 40);
  CHECK(alerts[0].target_low == 50);
  CHECK_FALSE(alerts[0].target_high.has_value());
  CHECK(alerts[0].analyte == "ferritin");
  CHECK(alerts[0].unit == "ng/mL");
  CHECK(alerts[0].patient_key == "SGH|SGH1");
  CHECK(alerts[0].collected_at == kT0);

  const auto good = report("SGH", "M2", kT0 + 60, kSghPatient,
                           {result("ferritin", 90, "ng/mL", "S1", ResultStatus::final)});
  const IngestSummary second = ingest(*f.store, "2.hl7", {good});
  CHECK(second.alerts == 0);
  CHECK(second.superseded == 1);
  CHECK(f.store->alerts(false).empty());
  const auto all = f.store->alerts(true);
  REQUIRE(all.size() == 1);
  CHECK(all[0].state ==
        AlertStatus::resolved);  // the final value of 90 is inside ge:50;ideal:gt:70
  CHECK(all[0].rule == "ge:50");
  CHECK(f.count("SELECT count(*) FROM alerts WHERE ref_low = 13 AND ref_high = 150") == 1);
}

TEST_CASE("Store alerts refuses an alert state it never writes, naming the column and the text",
          "[storage][store][alert_status]") {
  Fixture f;
  ingest(*f.store, "1.hl7",
         {report("SGH", "M1", kT0, kSghPatient, {result("ferritin", 40, "ng/mL", "S1")})});
  REQUIRE(f.store->alerts(false).size() == 1);
  {
    f.reader()->exec("UPDATE alerts SET state = 'queued'");  // a database edited by hand
  }
  CHECK_THROWS_WITH(f.store->alerts(true), "alerts.state holds an unknown value 'queued'");
}

TEST_CASE("Store rolls back a file transaction destroyed without commit", "[storage][store]") {
  Fixture f;
  {
    auto tx = f.store->begin_file(file_named("a.hl7"), default_targets());
    tx->add_report(report("SGH", "M1", kT0, kSghPatient, {result("ferritin", 40, "ng/mL", "S1")}));
    labwatch::parsers::Refusal refusal;
    refusal.reason = labwatch::parsers::RefusalReason::empty_file;
    tx->add_refusal(refusal);
  }
  CHECK_FALSE(f.store->find_file("sha-a.hl7").has_value());
  for (const char* table : {"files", "persons", "identifiers", "messages", "results", "alerts",
                            "refusals", "unmapped_codes"}) {
    INFO(table);
    CHECK(f.count(std::string("SELECT count(*) FROM ") + table) == 0);
  }
  // The store is usable afterwards, and the same file can now be ingested.
  CHECK(ingest(*f.store, "a.hl7", {report("SGH", "M1", kT0, kSghPatient, {})}).reports == 1);
}

TEST_CASE("Store exports current results by person, analyte and time, and trends one analyte",
          "[storage][store]") {
  Fixture f;
  const auto other = person("QDX", "Q9", "Zed", "Al", "1960-05-05", 'M');
  auto r1 = report("SGH", "M1", kT0, kSghPatient,
                   {result("zinc", 80, "ug/dL", "S1", ResultStatus::final, kT0 + 100),
                    result("ferritin", 75, "ng/mL", "S1", ResultStatus::final, kT0 + 100)});
  r1.results[1].comparator = "<";
  r1.results[1].raw_range = "11-307";
  r1.results[1].ref_low = 11;
  r1.results[1].ref_high = 307;
  const auto r2 = report("SGH", "M2", kT0, kSghPatient,
                         {result("ferritin", 71, "ng/mL", "S2", ResultStatus::final, kT0 + 50)});
  const auto r3 = report("QDX", "Q1", kT0, other, {result("ferritin", 20, "ng/mL", "Q-O1")});
  ingest(*f.store, "first.hl7", {r1, r3});
  ingest(*f.store, "second.hl7", {r2});

  const auto rows = f.store->current_results();
  REQUIRE(rows.size() == 4);
  const std::int64_t hana = rows[0].person_id;
  CHECK(rows[0].analyte == "ferritin");
  CHECK(rows[0].collected_at == kT0 + 50);
  CHECK(rows[0].source_file == "second.hl7");
  CHECK(rows[1].analyte == "ferritin");
  CHECK(rows[1].collected_at == kT0 + 100);
  CHECK(rows[1].comparator == "<");
  CHECK(rows[1].raw_range == "11-307");
  CHECK(rows[1].ref_low == 11);
  CHECK(rows[1].ref_high == 307);
  CHECK(rows[1].facility == "SGH");
  CHECK(rows[1].patient_key == "SGH|SGH1");
  CHECK(rows[2].analyte == "zinc");
  CHECK(rows[2].person_id == hana);
  CHECK(rows[3].patient_key == "QDX|Q9");
  CHECK(rows[3].person_id != hana);

  std::vector<labwatch::storage::ExportRow> visited;
  f.store->for_each_current_result([&](const auto& row) { visited.push_back(row); });
  REQUIRE(visited.size() == 4);
  CHECK(visited[3].result_id == rows[3].result_id);

  const auto trend = f.store->trend(hana, "ferritin");
  REQUIRE(trend.size() == 2);
  CHECK(trend[0].value == 71);
  CHECK(trend[1].value == 75);
  CHECK(f.store->trend(hana, "iron").empty());
}

TEST_CASE("Store::find_person reads a mail's report reference, and refuses one that names two",
          "[storage][store]") {
  Fixture f;
  const auto jane = person("QDX", "Q1", "Doe", "Jane", "1980-01-02", 'F');
  const auto omar = person("QDX", "Q2", "Omar", "Al", "1975-03-04", 'M');
  // Omar's report carries control id "1", which is also Jane's person number.
  ingest(*f.store, "jane.hl7",
         {report("QDX", "QDX3001", kT0, jane, {result("ferritin", 40, "ng/mL", "ORD-J")})});
  ingest(*f.store, "omar.hl7",
         {report("QDX", "1", kT0, omar, {result("ferritin", 30, "ng/mL", "ORD-O")})});
  const auto jane_id = f.store->find_person("QDX|Q1");
  const auto omar_id = f.store->find_person("QDX|Q2");
  REQUIRE(jane_id.has_value());
  REQUIRE(omar_id.has_value());
  REQUIRE(*jane_id == 1);                              // the collision this case is about
  CHECK(f.store->find_person("QDX3001") == jane_id);   // control id
  CHECK(f.store->find_person("ORD-O") == omar_id);     // order id
  CHECK(f.store->find_person("jane.hl7") == jane_id);  // file name
  CHECK(f.store->find_person("QDX3001, ORD-J") == jane_id);
  CHECK(f.store->find_person(std::to_string(*omar_id)) == omar_id);
  // Person 1 is Jane, report "1" is Omar's: never guessed.
  CHECK_FALSE(f.store->find_person("1").has_value());
  CHECK_FALSE(f.store->find_person("QDX3001, ORD-O").has_value());
  CHECK_FALSE(f.store->find_person("NOPE").has_value());
}

TEST_CASE("Store counts an intake attempt before the file is read, and the file's commit ends it",
          "[storage][store][intake]") {
  Fixture f;
  using labwatch::storage::IntakeKey;
  using labwatch::storage::kIntakeNotCompleted;
  const IntakeKey key{"a.hl7", 120, 1'700'000'000'123'456'789};
  const std::string row =
      "SELECT count(*) FROM intake_attempts WHERE name = 'a.hl7' AND mtime_ns = "
      "1700000000123456789";
  // Two attempts begun and never settled (the process died twice): both count.
  CHECK(f.store->begin_intake_attempt(key) == 1);
  CHECK(f.store->begin_intake_attempt(key) == 2);
  const auto attempts = f.store->intake_attempts();
  REQUIRE(attempts.size() == 1);
  CHECK(attempts.front().key == key);
  CHECK(attempts.front().failures == 2);
  CHECK(attempts.front().last_error == kIntakeNotCompleted);
  // A failure of the attempt begun is recorded with its error, not counted again.
  CHECK(f.store->record_intake_failure(key, "pread: Input/output error") == 2);
  CHECK(f.store->intake_attempts().front().last_error == "pread: Input/output error");
  CHECK(f.store->begin_intake_attempt(key) == 3);
  CHECK(f.store->intake_attempts().front().last_error == kIntakeNotCompleted);

  // Another file (another size, mtime or name) is another attempt.
  IntakeKey other = key;
  other.mtime_ns += 1;
  CHECK(f.store->begin_intake_attempt(other) == 1);

  // Bytes already committed: the transaction rolls back, and the attempt stays for the caller.
  FileRecord file = file_named("a.hl7");
  file.sha256.clear();
  file.intake = key;
  {
    auto tx = f.store->begin_file(file, default_targets());
    tx->add_report(report("SGH", "M1", kT0, kSghPatient, {result("ferritin", 80, "ng/mL", "S1")}));
    CHECK_FALSE(tx->commit("d1").already_known);
  }
  CHECK(f.count(row) == 0);                                     // ended with the file's commit
  CHECK(f.count("SELECT count(*) FROM intake_attempts") == 1);  // the other one stays
  CHECK(f.store->begin_intake_attempt(key) == 1);
  {
    auto tx = f.store->begin_file(file, default_targets());
    CHECK(tx->commit("d1").already_known);
  }
  CHECK(f.count(row) == 1);
  f.store->forget_intake_attempt(key);
  CHECK(f.count(row) == 0);
  // A file record without an attempt leaves the others alone.
  file.intake.reset();
  auto tx = f.store->begin_file(file, default_targets());
  tx->add_report(report("SGH", "M2", kT0, kSghPatient, {result("zinc", 90, "ug/dL", "S2")}));
  CHECK(tx->commit("d2").results_stored == 1);
  CHECK(f.count("SELECT count(*) FROM intake_attempts") == 1);
}
