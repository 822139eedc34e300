// SPDX-License-Identifier: Apache-2.0
// Tests of result versions across patients, accessions and statuses (issue 14): reused accession
// numbers, corrections under a new accession, promotion, ordering by arrival, skipped lines.
#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "storage/store.hpp"
#include "storage/store_fixture.hpp"

namespace {

using labwatch::clinical::AlertStatus;
using labwatch::clinical::NormalizedReport;
using labwatch::clinical::PersonIdentity;
using labwatch::clinical::ResultStatus;
using labwatch::clinical::SkippedLine;
using labwatch::clinical::SkipReason;
using labwatch::storage::IngestSummary;
using labwatch::storage::testing::Fixture;
using labwatch::storage::testing::ingest;
using labwatch::storage::testing::kT0;
using labwatch::storage::testing::person;
using labwatch::storage::testing::report;
using labwatch::storage::testing::result;

const PersonIdentity kAda = person("LCA", "L100", "FICTUM", "ADA", "1980-01-02", 'F');
const PersonIdentity kBen = person("LCA", "L200", "PLACEHOLD", "BEN", "1975-05-06", 'M');

// The states of the stored rows as "analyte:value:status:state", by result id.
std::vector<std::string> rows_of(const Fixture& f) {
  const auto db = f.reader();
  labwatch::storage::sql::Statement q(
      *db, "SELECT analyte, value, status, state FROM results ORDER BY result_id");
  std::vector<std::string> out;
  while (q.step()) {
    out.push_back(q.column(0).as_string() + ":" +
                  std::to_string(static_cast<int>(q.column(1).as_double())) + ":" +
                  q.column(2).as_string() + ":" + q.column(3).as_string());
  }
  return out;
}

}  // namespace

TEST_CASE("Store keeps an accession number reused for another patient as two results and warns",
          "[storage][versions]") {
  Fixture f;
  const auto ada = report("LCA", "M1", kT0, kAda, {result("ferritin", 30, "ng/mL", "A1")});
  SECTION("a later message about another patient does not supersede the first") {
    const auto ben = report("LCA", "M2", kT0 + 60, kBen, {result("ferritin", 90, "ng/mL", "A1")});
    CHECK(ingest(*f.store, "1.hl7", {ada}).warnings.empty());
    const IngestSummary second = ingest(*f.store, "2.hl7", {ben});
    CHECK(second.superseded == 0);
    CHECK(second.results_stored == 1);
    REQUIRE(second.warnings.size() == 1);
    CHECK(second.warnings[0].reason == "accession_reused");
    CHECK(second.warnings[0].control_id == "M2");
  }
  SECTION("the same value for another patient is not dropped as a duplicate") {
    const auto ben = report("LCA", "M2", kT0, kBen, {result("ferritin", 30, "ng/mL", "A1")});
    const IngestSummary both = ingest(*f.store, "1.hl7", {ada, ben});
    CHECK(both.duplicates == 0);
    CHECK(both.results_stored == 2);
    CHECK(both.warnings.size() == 1);
    // Each keeps its own alert (ferritin 30 is below ge:50).
    CHECK(f.store->alerts(false).size() == 2);
  }
  const auto rows = f.store->current_results();
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].patient_key == "LCA|L100");
  CHECK(rows[1].patient_key == "LCA|L200");
  CHECK(rows[0].value == 30);
  // The first patient's alert stays: another patient's value never settles it.
  const auto alerts = f.store->alerts(false);
  CHECK(std::any_of(alerts.begin(), alerts.end(),
                    [](const auto& a) { return a.patient_key == "LCA|L100" && a.value == 30; }));
  // A correction for the first patient corrects only the first patient's result.
  const auto fix = report("LCA", "M3", kT0 + 120, kAda,
                          {result("ferritin", 35, "ng/mL", "A1", ResultStatus::corrected)});
  const IngestSummary corrected = ingest(*f.store, "3.hl7", {fix});
  CHECK(corrected.superseded == 1);
  CHECK(corrected.warnings.size() == 1);  // the order still has rows of another patient
  const auto after = f.store->current_results();
  REQUIRE(after.size() == 2);
  CHECK(after[0].value == 35);
  CHECK(after[1].patient_key == "LCA|L200");
}

TEST_CASE("Store withdraws a result and its alert whatever status withdrew it",
          "[storage][versions]") {
  // normalize maps OBX-11 X, W and D to a cancellation (clinical/result_status); here its effect.
  Fixture f;
  ingest(*f.store, "1.hl7",
         {report("LCA", "M1", kT0, kAda, {result("ferritin", 20, "ng/mL", "A1")})});
  REQUIRE(f.store->alerts(false).size() == 1);
  auto deleted = result("ferritin", 0, "ng/mL", "A1", ResultStatus::cancelled);
  const IngestSummary s =
      ingest(*f.store, "2.hl7", {report("LCA", "M2", kT0 + 60, kAda, {deleted})});
  CHECK(s.withdrawn == 1);
  CHECK(f.store->current_results().empty());
  CHECK(f.store->alerts(false).empty());
  REQUIRE(f.store->alerts(true).size() == 1);
  CHECK(f.store->alerts(true)[0].state == AlertStatus::withdrawn);
  // The same deletion again (a repeated OBX-5) is a duplicate, not a second withdrawal.
  const IngestSummary again =
      ingest(*f.store, "3.hl7", {report("LCA", "M2b", kT0 + 60, kAda, {deleted})});
  CHECK(again.duplicates == 1);
  CHECK(again.withdrawn == 0);
}

TEST_CASE("Store promotes the stored preliminary on OBX-11 U without a value",
          "[storage][versions]") {
  Fixture f;
  auto promote = result("ferritin", 0, "ng/mL", "A1", ResultStatus::final);
  promote.promote_only = true;
  SECTION("a preliminary becomes final in place") {
    ingest(*f.store, "1.hl7",
           {report("LCA", "M1", kT0, kAda,
                   {result("ferritin", 42, "ng/mL", "A1", ResultStatus::preliminary)})});
    const IngestSummary s =
        ingest(*f.store, "2.hl7", {report("LCA", "M2", kT0 + 60, kAda, {promote})});
    CHECK(s.promoted == 1);
    CHECK(s.results_stored == 0);
    CHECK(s.skipped == 0);
    CHECK(rows_of(f) == std::vector<std::string>{"ferritin:42:final:current"});
    CHECK(f.count("SELECT promoted FROM files WHERE name = '2.hl7'") == 1);
  }
  SECTION("nothing to promote: the line is skipped, nothing changes") {
    ingest(*f.store, "1.hl7",
           {report("LCA", "M1", kT0, kAda, {result("ferritin", 42, "ng/mL", "A1")})});
    const IngestSummary s =
        ingest(*f.store, "2.hl7", {report("LCA", "M2", kT0 + 60, kAda, {promote})});
    CHECK(s.promoted == 0);
    CHECK(s.skipped == 1);
    CHECK(rows_of(f) == std::vector<std::string>{"ferritin:42:final:current"});
  }
}

TEST_CASE("Store lets a correction under a new accession replace the same draw",
          "[storage][versions]") {
  Fixture f;
  ingest(*f.store, "1.hl7",
         {report("LCA", "M1", kT0 + 600, kAda,
                 {result("ferritin", 30, "ng/mL", "A1"), result("zinc", 90, "ug/dL", "A1")})});
  SECTION("a correction without a parent: same person, analyte, facility and draw") {
    const IngestSummary s =
        ingest(*f.store, "2.hl7",
               {report("LCA", "M2", kT0 + 1200, kAda,
                       {result("ferritin", 80, "ng/mL", "A2", ResultStatus::corrected)})});
    CHECK(s.superseded == 1);
    CHECK(rows_of(f) == std::vector<std::string>{"ferritin:30:final:superseded",
                                                 "zinc:90:final:current",
                                                 "ferritin:80:corrected:current"});
    // 30 alerted; the correction to 80 settles it.
    for (const auto& alert : f.store->alerts(false)) {
      CHECK(alert.analyte != "ferritin");
    }
  }
  SECTION("OBR-29 names the original") {
    auto follow_up = result("ferritin", 80, "ng/mL", "A2", ResultStatus::final);
    follow_up.parent_order_id = "A1";
    const IngestSummary s =
        ingest(*f.store, "2.hl7", {report("LCA", "M2", kT0 + 1200, kAda, {follow_up})});
    CHECK(s.superseded == 1);
    CHECK(f.store->current_results().size() == 2);
  }
  SECTION("a final under a new accession is another result of the same draw") {
    const IngestSummary s =
        ingest(*f.store, "2.hl7",
               {report("LCA", "M2", kT0 + 1200, kAda, {result("ferritin", 80, "ng/mL", "A2")})});
    CHECK(s.superseded == 0);
    CHECK(f.store->current_results().size() == 3);
  }
  SECTION("another patient's correction at the same time replaces nothing") {
    const IngestSummary s =
        ingest(*f.store, "2.hl7",
               {report("LCA", "M2", kT0 + 1200, kBen,
                       {result("ferritin", 80, "ng/mL", "A2", ResultStatus::corrected)})});
    CHECK(s.superseded == 0);
    CHECK(f.store->current_results().size() == 3);
  }
}

TEST_CASE("Store orders a message without a time by its arrival, never as time 0",
          "[storage][versions]") {
  Fixture f;
  ingest(*f.store, "1.hl7",
         {report("LCA", "M1", kT0, kAda, {result("ferritin", 30, "ng/mL", "A1")})});
  auto correction = report("LCA", "M2", 0, kAda,
                           {result("ferritin", 75, "ng/mL", "A1", ResultStatus::corrected)});
  correction.message_time_from_arrival = true;
  const IngestSummary s = ingest(*f.store, "2.hl7", {correction});
  CHECK(s.superseded == 1);
  const auto rows = f.store->current_results();
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].value == 75);
  CHECK(f.count("SELECT min(message_time) FROM messages") == kT0);
  CHECK(f.count("SELECT max(message_time) FROM messages") > kT0);
  // The same correction again, in another file: ordered by arrival too, it is a duplicate.
  correction.control_id = "M2b";
  correction.raw_digest = "other";
  CHECK(ingest(*f.store, "3.hl7", {correction}).duplicates == 1);
}

TEST_CASE("Store counts skipped lines and keeps a test not performed as a gap of its trend",
          "[storage][versions]") {
  Fixture f;
  NormalizedReport r = report("LCA", "M1", kT0, kAda, {result("zinc", 90, "ug/dL", "A1")});
  SkippedLine tnp;
  tnp.reason = SkipReason::not_performed;
  tnp.analyte = "ferritin";
  tnp.code = "2276-4";
  tnp.collected_at = kT0;
  tnp.order_id = "A1";
  tnp.raw_value = "TNP";
  SkippedLine comment;
  comment.reason = SkipReason::comment;
  comment.code = "COMMENT";
  SkippedLine pending = tnp;
  pending.reason = SkipReason::pending;
  pending.analyte = "vitamin_d_25oh";
  r.skipped = {tnp, comment, pending};
  const IngestSummary s = ingest(*f.store, "1.hl7", {r});
  CHECK(s.skipped == 3);
  CHECK(s.refusals == 0);
  CHECK(f.count("SELECT skipped FROM files") == 3);
  CHECK(f.count("SELECT outcome = 'accepted' FROM files") == 1);
  // Not a value: export lists only the zinc; the ferritin trend has a gap at the draw.
  const auto rows = f.store->current_results();
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].analyte == "zinc");
  const std::int64_t person_id = rows[0].person_id;
  CHECK(f.store->trend(person_id, "ferritin").empty());
  CHECK(f.store->not_performed(person_id, "ferritin") == std::vector<std::int64_t>{kT0});
  CHECK(f.store->not_performed(person_id, "vitamin_d_25oh").empty());  // pending: no gap
  // A value that arrives later for the same draw fills the gap.
  ingest(*f.store, "2.hl7",
         {report("LCA", "M2", kT0 + 60, kAda, {result("ferritin", 60, "ng/mL", "A1")})});
  CHECK(f.store->not_performed(person_id, "ferritin").empty());
  CHECK(f.store->trend(person_id, "ferritin").size() == 1);
}

TEST_CASE("Store never lets a D3 stand-in replace a total 25-OH vitamin D of the same draw",
          "[storage][versions]") {
  Fixture f;
  auto stand_in = [](double value, const char* order) {
    auto r = result("vitamin_d_25oh", value, "ng/mL", order);
    r.code = "1989-3";
    r.fraction = "vitamin_d3_25oh";
    return r;
  };
  const auto total = [](double value, const char* order) {
    auto r = result("vitamin_d_25oh", value, "ng/mL", order);
    r.code = "62292-8";
    return r;
  };
  SECTION("a stand-in after the total is stored as the D3 fraction") {
    ingest(*f.store, "1.hl7", {report("LCA", "M1", kT0, kAda, {total(45, "A1")})});
    ingest(*f.store, "2.hl7", {report("LCA", "M2", kT0 + 60, kAda, {stand_in(40, "A1")})});
    CHECK(rows_of(f) == std::vector<std::string>{"vitamin_d_25oh:45:final:current",
                                                 "vitamin_d3_25oh:40:final:current"});
  }
  // The stand-in leaves the total's place and stays current as the D3 fraction it is.
  SECTION("a total after the stand-in takes its place, whatever its message time") {
    ingest(*f.store, "1.hl7", {report("LCA", "M1", kT0 + 60, kAda, {stand_in(40, "A1")})});
    ingest(*f.store, "2.hl7", {report("LCA", "M2", kT0, kAda, {total(45, "A2")})});
    CHECK(rows_of(f) == std::vector<std::string>{"vitamin_d_25oh:40:final:superseded",
                                                 "vitamin_d_25oh:45:final:current",
                                                 "vitamin_d3_25oh:40:final:current"});
  }
  SECTION("the same under one accession") {
    ingest(*f.store, "1.hl7", {report("LCA", "M1", kT0 + 60, kAda, {stand_in(40, "A1")})});
    ingest(*f.store, "2.hl7", {report("LCA", "M2", kT0, kAda, {total(45, "A1")})});
    CHECK(rows_of(f) == std::vector<std::string>{"vitamin_d_25oh:40:final:superseded",
                                                 "vitamin_d_25oh:45:final:current",
                                                 "vitamin_d3_25oh:40:final:current"});
  }
  const auto rows = f.store->current_results();
  const auto totals = std::count_if(rows.begin(), rows.end(),
                                    [](const auto& r) { return r.analyte == "vitamin_d_25oh"; });
  CHECK(totals == 1);
  const auto d3 = std::count_if(rows.begin(), rows.end(),
                                [](const auto& r) { return r.analyte == "vitamin_d3_25oh"; });
  CHECK(d3 == 1);
}

TEST_CASE("Store ends a D3-only result and a total of one draw alike in either order",
          "[storage][versions]") {
  // The D3 (accession A2, flagged low by the lab) and the total (A1) of one draw, in two files.
  auto d3_file = [] {
    auto r = result("vitamin_d_25oh", 15, "ng/mL", "A2");
    r.code = "1989-3";
    r.fraction = "vitamin_d3_25oh";
    r.flags = "L";
    r.raw_value = "15";
    return report("LCA", "M2", kT0 + 60, kAda, {r});
  };
  auto total_file = [] {
    auto r = result("vitamin_d_25oh", 45, "ng/mL", "A1");
    r.code = "62292-8";
    r.raw_value = "45";
    return report("LCA", "M1", kT0, kAda, {r});
  };
  // What export and the active alerts show, without the ids that tell the arrival order.
  auto seen = [](Fixture& f) {
    std::vector<std::string> out;
    for (const auto& r : f.store->current_results()) {
      out.push_back("result " + r.source_file + " " + r.analyte + " " + std::to_string(r.value) +
                    " " + r.unit + " " + r.flags);
    }
    for (const auto& a : f.store->alerts(false)) {
      out.push_back("alert " + a.analyte + " " + std::to_string(a.value) + " " + a.rule);
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  Fixture total_first;
  ingest(*total_first.store, "total.hl7", {total_file()});
  ingest(*total_first.store, "d3.hl7", {d3_file()});
  Fixture d3_first;
  ingest(*d3_first.store, "d3.hl7", {d3_file()});
  // The stand-in raised an alert as the total (15 is below range:40-60) ...
  const auto as_total = d3_first.store->alerts(false);
  CHECK(std::any_of(as_total.begin(), as_total.end(),
                    [](const auto& a) { return a.analyte == "vitamin_d_25oh" && a.value == 15; }));
  ingest(*d3_first.store, "total.hl7", {total_file()});
  const std::vector<std::string> expected = seen(total_first);
  CHECK(seen(d3_first) == expected);
  // ... which the real total (45, inside the target) settles; the D3 stays, with the lab's flag.
  CHECK(std::count_if(expected.begin(), expected.end(), [](const std::string& line) {
          return line.starts_with("result d3.hl7 vitamin_d3_25oh 15.0");
        }) == 1);
  CHECK(std::count_if(expected.begin(), expected.end(), [](const std::string& line) {
          return line.starts_with("result total.hl7 vitamin_d_25oh 45.0");
        }) == 1);
  const auto alerts = d3_first.store->alerts(false);
  CHECK(std::none_of(alerts.begin(), alerts.end(),
                     [](const auto& a) { return a.analyte == "vitamin_d_25oh"; }));
}

TEST_CASE("Store lets a timed D3 correction replace an untimed D3 stand-in kept as its own analyte",
          "[storage][versions]") {
  // The D3 came without MSH-7 (ordered by arrival), then the total of its draw, then the lab's
  // correction of the D3 with an MSH-7 that is older than the D3's ingest: the correction replaces
  // the D3 that was kept as its own analyte, as it would have replaced it before the total came.
  Fixture f;
  auto d3 = result("vitamin_d_25oh", 15, "ng/mL", "A2");
  d3.code = "1989-3";
  d3.fraction = "vitamin_d3_25oh";
  NormalizedReport untimed = report("LCA", "M2", 0, kAda, {d3});
  untimed.message_time_from_arrival = true;
  ingest(*f.store, "d3.hl7", {untimed});
  auto total = result("vitamin_d_25oh", 45, "ng/mL", "A1");
  total.code = "62292-8";
  ingest(*f.store, "total.hl7", {report("LCA", "M1", kT0, kAda, {total})});
  auto corrected = result("vitamin_d_25oh", 20, "ng/mL", "A2", ResultStatus::corrected);
  corrected.code = "1989-3";
  corrected.fraction = "vitamin_d3_25oh";
  ingest(*f.store, "d3c.hl7", {report("LCA", "M3", kT0 + 30, kAda, {corrected})});
  std::vector<std::string> current;
  for (const auto& r : f.store->current_results()) {
    current.push_back(r.analyte + " " + std::to_string(r.value));
  }
  std::sort(current.begin(), current.end());
  CHECK(current ==
        std::vector<std::string>{"vitamin_d3_25oh 20.000000", "vitamin_d_25oh 45.000000"});
}
