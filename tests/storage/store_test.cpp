// SPDX-License-Identifier: Apache-2.0
// Tests of the SQLite store: idempotency, persons, duplicates, versions, refusals, alerts, queries.
#include "storage/store.hpp"

#include <SQLiteCpp/SQLiteCpp.h>

#include <catch2/catch.hpp>
#include <string>
#include <tuple>
#include <vector>

#include "storage/store_fixture.hpp"

namespace {

using labwatch::clinical::PersonIdentity;
using labwatch::clinical::ResultStatus;
using labwatch::storage::IngestSummary;
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
  SQLite::Database db = f.reader();
  SQLite::Statement q(db,
                      "SELECT r.status, r.state, coalesce(s.status, '') FROM results r "
                      "JOIN messages m ON m.message_id = r.message_id "
                      "LEFT JOIN results s ON s.result_id = r.superseded_by "
                      "ORDER BY m.message_time, r.result_id");
  std::vector<std::tuple<std::string, std::string, std::string>> out;
  while (q.executeStep()) {
    out.emplace_back(q.getColumn(0).getString(), q.getColumn(1).getString(),
                     q.getColumn(2).getString());
  }
  return out;
}

const PersonIdentity kSghPatient = person("SGH", "SGH1", "EXAMPLAR", "HANA J", "1994-06-08", 'F');

}  // namespace

TEST_CASE("Store begin_file on a known hash reports already_known and stores nothing twice",
          "[storage][store]") {
  Fixture f;
  const auto r = report("SGH", "M1", kT0, kSghPatient, {result("ferritin", 80, "ng/mL", "S1")});
  CHECK_FALSE(f.store->has_file("sha-a.hl7"));
  const IngestSummary first = ingest(*f.store, "a.hl7", {r});
  CHECK_FALSE(first.already_known);
  CHECK(first.reports == 1);
  CHECK(first.results_stored == 1);
  CHECK(f.store->has_file("sha-a.hl7"));

  const IngestSummary again = ingest(*f.store, "a.hl7", {r});
  CHECK(again.already_known);
  CHECK(again.reports == 0);
  CHECK(again.results_stored == 0);
  CHECK(f.count("SELECT count(*) FROM files") == 1);
  CHECK(f.count("SELECT count(*) FROM results") == 1);
  CHECK(f.count("SELECT count(*) FROM files WHERE outcome = 'accepted' AND results_stored = 1") ==
        1);
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
  CHECK(all[0].state == "withdrawn");
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
  not_a_number.reason = "non_numeric_value";
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
  truncated.reason = "truncated_message";
  truncated.detail = "message 2 ends inside OBX";
  truncated.where.message = 1;
  truncated.where.offset = 812;
  labwatch::parsers::Refusal garbage;
  garbage.reason = "unrecognized_format";
  garbage.detail = "neither HL7 nor CSV";
  labwatch::parsers::Refusal no_unit;
  no_unit.reason = "missing_columns";
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

  SQLite::Database db = f.reader();
  SQLite::Statement q(db,
                      "SELECT level, reason, coalesce(message_id, 0), coalesce(pos_segment, -1), "
                      "coalesce(pos_offset, -1), patient_key, analyte, collected_at, result_status "
                      "FROM refusals ORDER BY refusal_id");
  std::vector<std::string> rows;
  while (q.executeStep()) {
    std::string row;
    for (int i = 0; i < 9; ++i) {
      row += q.getColumn(i).getString() + ";";
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
  CHECK(alerts[0].state == "unmailed");  // no routing: recorded, no mail queued
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
  CHECK(all[0].state == "resolved");  // the final value of 90 is inside ge:50;ideal:gt:70
  CHECK(all[0].rule == "ge:50");
  CHECK(f.count("SELECT count(*) FROM alerts WHERE ref_low = 13 AND ref_high = 150") == 1);
}

TEST_CASE("Store rolls back a file transaction destroyed without commit", "[storage][store]") {
  Fixture f;
  {
    auto tx = f.store->begin_file(file_named("a.hl7"), default_targets());
    tx->add_report(report("SGH", "M1", kT0, kSghPatient, {result("ferritin", 40, "ng/mL", "S1")}));
    labwatch::parsers::Refusal refusal;
    refusal.reason = "empty_file";
    tx->add_refusal(refusal);
  }
  CHECK_FALSE(f.store->has_file("sha-a.hl7"));
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
