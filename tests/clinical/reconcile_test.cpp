// SPDX-License-Identifier: Apache-2.0
// Tests of the pure reconciliation decisions: name folding, match keys, version keys and plans.
#include "clinical/reconcile.hpp"

#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

namespace {

using labwatch::clinical::fold_person_name;
using labwatch::clinical::IncomingVersion;
using labwatch::clinical::PersonIdentity;
using labwatch::clinical::plan_version;
using labwatch::clinical::ResultState;
using labwatch::clinical::ResultStatus;
using labwatch::clinical::StoredVersion;
using labwatch::clinical::VersionPlan;

PersonIdentity identity(std::string authority, std::string mrn, std::string family,
                        std::string given, std::string birth_date, char sex) {
  PersonIdentity p;
  p.authority = std::move(authority);
  p.mrn = std::move(mrn);
  p.family = std::move(family);
  p.given = std::move(given);
  p.birth_date = std::move(birth_date);
  p.sex = sex;
  return p;
}

StoredVersion stored(std::int64_t id, std::int64_t time, ResultStatus status, ResultState state,
                     std::optional<std::int64_t> superseded_by, double value) {
  StoredVersion v;
  v.id = id;
  v.message_time = time;
  v.status = status;
  v.state = state;
  v.superseded_by = superseded_by;
  v.value = value;
  return v;
}

IncomingVersion incoming(std::int64_t time, ResultStatus status, double value,
                         bool by_order = true) {
  IncomingVersion v;
  v.message_time = time;
  v.status = status;
  v.value = value;
  v.by_order = by_order;
  return v;
}

// Stores versions the way storage does: ids in arrival order, plans applied to the rows.
class History {
 public:
  // `by_arrival`: the message had no time of its own and `time` is the clock of its ingest.
  void add(std::int64_t time, ResultStatus status, double value, bool by_arrival = false) {
    IncomingVersion in = incoming(time, status, value);
    in.time_from_arrival = by_arrival;
    const VersionPlan plan = plan_version(rows_, in);
    if (plan.duplicate) {
      return;
    }
    const std::int64_t id = next_id_++;
    rows_.push_back(stored(id, time, status, plan.state, plan.superseded_by, value));
    rows_.back().time_from_arrival = by_arrival;
    for (const auto& change : plan.changes) {
      StoredVersion& row = *std::find_if(rows_.begin(), rows_.end(),
                                         [&](const StoredVersion& r) { return r.id == change.id; });
      REQUIRE(row.state == change.from);
      row.state = change.to;
      row.superseded_by = change.superseded_by_incoming ? std::optional(id) : change.superseded_by;
    }
  }

  // The states of the versions in arrival order.
  [[nodiscard]] std::vector<ResultState> states() const {
    std::vector<ResultState> out;
    for (const StoredVersion& row : rows_) {
      out.push_back(row.state);
    }
    return out;
  }

  // (message time, state, message time of the successor or -1), oldest first: independent of ids.
  [[nodiscard]] std::vector<std::tuple<std::int64_t, ResultState, std::int64_t>> outcome() const {
    std::vector<std::tuple<std::int64_t, ResultState, std::int64_t>> out;
    for (const StoredVersion& row : rows_) {
      std::int64_t successor_time = -1;
      if (row.superseded_by) {
        successor_time = std::find_if(rows_.begin(), rows_.end(), [&](const StoredVersion& r) {
                           return r.id == *row.superseded_by;
                         })->message_time;
      }
      out.emplace_back(row.message_time, row.state, successor_time);
    }
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  std::vector<StoredVersion> rows_;
  std::int64_t next_id_ = 1;
};

}  // namespace

TEST_CASE("fold_person_name removes Latin diacritics and lower-cases", "[clinical][reconcile]") {
  CHECK(fold_person_name("Fälschle") == "falschle");
  CHECK(fold_person_name("FÄLSCHLE") == "falschle");
  CHECK(fold_person_name("MÜLLER") == "muller");
  CHECK(fold_person_name("Straße") == "strasse");
  CHECK(fold_person_name("José") == "jose");
  CHECK(fold_person_name("Øster") == "oster");
  CHECK(fold_person_name("Łukasz") == "lukasz");
  CHECK(fold_person_name("Æsa") == "aesa");
  CHECK(fold_person_name("Œuvre") == "oeuvre");
  CHECK(fold_person_name("Ștefan") == "stefan");
  CHECK(fold_person_name("Þóra") == "thora");
  CHECK(fold_person_name("Mu\xCC\x88ller") == "muller");  // u + combining diaeresis (NFD)
}

TEST_CASE("fold_person_name folds spaces, dashes and apostrophes consistently",
          "[clinical][reconcile]") {
  CHECK(fold_person_name("  Smith \t  Jones ") == "smith jones");
  CHECK(fold_person_name("Smith-Jones") == "smith-jones");
  CHECK(fold_person_name("Smith\xE2\x80\x90Jones") == "smith-jones");  // U+2010 hyphen
  CHECK(fold_person_name("O'Brien") == "obrien");
  CHECK(fold_person_name("O\xE2\x80\x99"
                         "Brien") == "obrien");  // U+2019
  CHECK(fold_person_name("St. John") == "st john");
  CHECK(fold_person_name("a|b") == "a b");
  CHECK(fold_person_name("Ana\xC2\xA0Lu") == "ana lu");  // no-break space
  CHECK(fold_person_name("").empty());
  CHECK(fold_person_name(" - ") == "-");
}

TEST_CASE("fold_person_name keeps other scripts and bytes that are not UTF-8",
          "[clinical][reconcile]") {
  CHECK(fold_person_name("\xCE\xA9mega") == "\xCE\xA9mega");  // Greek capital omega stays
  CHECK(fold_person_name("\xFF\xFE"
                         "AB") ==
        "\xFF\xFE"
        "ab");
  CHECK(fold_person_name("Ab\xC3") == "ab\xC3");  // truncated sequence at the end
  CHECK(fold_person_name("\xC0\x80"
                         "A") ==
        "\xC0\x80"
        "a");                                                 // overlong NUL is not decoded
  CHECK(fold_person_name("\xED\xA0\x80") == "\xED\xA0\x80");  // a surrogate is not a letter
}

TEST_CASE("first_given_name drops middle names and initials", "[clinical][reconcile]") {
  CHECK(labwatch::clinical::first_given_name("hana j") == "hana");
  CHECK(labwatch::clinical::first_given_name("mary ann louise") == "mary");
  CHECK(labwatch::clinical::first_given_name("anna-lena") == "anna-lena");
  CHECK(labwatch::clinical::first_given_name("ines") == "ines");
  CHECK(labwatch::clinical::first_given_name("").empty());
}

TEST_CASE("person_match_key ignores case, accents and middle names", "[clinical][reconcile]") {
  const auto lab = identity("QDX", "Q1", "FAELSCHLE", "INES M", "1955-09-15", 'F');
  const auto clinic = identity("LMB", "P-7", "Fälschle", "Ines", "1955-09-15", 'F');
  const auto hl7 = identity("LCA", "9", "FÄLSCHLE", "INES MARIA", "1955-09-15", 'F');

  REQUIRE(labwatch::clinical::person_match_key(clinic) == "falschle|ines|1955-09-15|F");
  CHECK(labwatch::clinical::person_match_key(hl7) == "falschle|ines|1955-09-15|F");
  // Transliterated "ae" is another spelling, not an accent: no match.
  CHECK(labwatch::clinical::person_match_key(lab) == "faelschle|ines|1955-09-15|F");
}

TEST_CASE("person_match_key separates birth dates and sexes and needs a birth date",
          "[clinical][reconcile]") {
  const auto a = identity("A", "1", "Doe", "Jane", "1980-01-02", 'F');
  const auto other_birth = identity("B", "2", "Doe", "Jane", "1980-01-03", 'F');
  const auto other_sex = identity("B", "2", "Doe", "Jane", "1980-01-02", 'M');
  const auto unknown_sex = identity("B", "2", "Doe", "Jane", "1980-01-02", 'X');
  const auto no_birth = identity("B", "2", "Doe", "Jane", "", 'F');
  const auto no_given = identity("B", "2", "Doe", " ", "1980-01-02", 'F');

  CHECK(labwatch::clinical::person_match_key(a) !=
        labwatch::clinical::person_match_key(other_birth));
  CHECK(labwatch::clinical::person_match_key(other_sex) == "doe|jane|1980-01-02|M");
  CHECK(labwatch::clinical::person_match_key(unknown_sex) == "doe|jane|1980-01-02|U");
  CHECK_FALSE(labwatch::clinical::person_match_key(no_birth).has_value());
  CHECK_FALSE(labwatch::clinical::person_match_key(no_given).has_value());
}

TEST_CASE("version_key uses the person and the order id, else the person and the collection time",
          "[clinical][reconcile]") {
  labwatch::clinical::NormalizedResult hl7;
  hl7.analyte = "ferritin";
  hl7.order_id = "S00027A";
  hl7.collected_at = 1735689600;
  labwatch::clinical::NormalizedResult csv = hl7;
  csv.order_id.clear();
  labwatch::clinical::NormalizedResult zinc = hl7;
  zinc.analyte = "zinc";

  const auto by_order = labwatch::clinical::version_key("SGH", hl7, 7);
  CHECK(by_order.by_order());
  CHECK(by_order.person_id == 7);
  CHECK(by_order.collected_at == 0);  // the order id stands for the draw
  // An accession number reused for another patient: another result, never a version of this one.
  const auto other_patient = labwatch::clinical::version_key("SGH", hl7, 8);
  CHECK_FALSE(by_order.same_as(other_patient));
  CHECK_FALSE(by_order.same_group(other_patient));
  CHECK(by_order.reuses_accession_of(other_patient));
  CHECK_FALSE(by_order.reuses_accession_of(labwatch::clinical::version_key("SGH", hl7, 7)));
  CHECK_FALSE(by_order.reuses_accession_of(labwatch::clinical::version_key("QDX", hl7, 8)));
  labwatch::clinical::NormalizedResult later_draw = hl7;
  later_draw.collected_at += 3600;
  CHECK(by_order.same_as(labwatch::clinical::version_key("SGH", later_draw, 7)));
  CHECK_FALSE(by_order.same_as(labwatch::clinical::version_key("QDX", hl7, 7)));
  const auto zinc_key = labwatch::clinical::version_key("SGH", zinc, 7);
  CHECK(by_order.same_group(zinc_key));
  CHECK_FALSE(by_order.same_as(zinc_key));

  const auto natural = labwatch::clinical::version_key("WCE", csv, 7);
  CHECK_FALSE(natural.by_order());
  CHECK_FALSE(natural.same_group(labwatch::clinical::version_key("WCE", csv, 8)));
  labwatch::clinical::NormalizedResult later = csv;
  later.collected_at += 60;
  CHECK_FALSE(natural.same_group(labwatch::clinical::version_key("WCE", later, 7)));
  CHECK_FALSE(natural.same_group(by_order));
  CHECK_FALSE(natural.reuses_accession_of(labwatch::clinical::version_key("WCE", csv, 8)));
}

TEST_CASE("plan_version makes a first version current, or cancelled", "[clinical][reconcile]") {
  const VersionPlan first = plan_version({}, incoming(100, ResultStatus::final, 5));
  CHECK_FALSE(first.duplicate);
  CHECK(first.state == ResultState::current);
  CHECK_FALSE(first.superseded_by.has_value());
  CHECK(first.changes.empty());

  const VersionPlan cancel = plan_version({}, incoming(100, ResultStatus::cancelled, 0));
  CHECK(cancel.state == ResultState::cancelled);
  CHECK(cancel.changes.empty());
}

TEST_CASE("plan_version supersedes the current version with a later one", "[clinical][reconcile]") {
  const std::array existing = {
      stored(1, 100, ResultStatus::preliminary, ResultState::current, std::nullopt, 40)};
  const VersionPlan plan = plan_version(existing, incoming(200, ResultStatus::final, 45));
  CHECK(plan.state == ResultState::current);
  CHECK_FALSE(plan.superseded_by.has_value());
  REQUIRE(plan.changes.size() == 1);
  CHECK(plan.changes[0].id == 1);
  CHECK(plan.changes[0].from == ResultState::current);
  CHECK(plan.changes[0].to == ResultState::superseded);
  CHECK(plan.changes[0].superseded_by_incoming);
}

TEST_CASE("plan_version stores an older version arriving late as history",
          "[clinical][reconcile]") {
  const std::array existing = {
      stored(1, 200, ResultStatus::final, ResultState::current, std::nullopt, 45)};
  const VersionPlan plan = plan_version(existing, incoming(100, ResultStatus::preliminary, 40));
  CHECK(plan.state == ResultState::superseded);
  CHECK(plan.superseded_by == 1);
  CHECK(plan.changes.empty());
}

TEST_CASE("plan_version threads a late middle version into the chain", "[clinical][reconcile]") {
  const std::array existing = {
      stored(1, 100, ResultStatus::preliminary, ResultState::superseded, 2, 40),
      stored(2, 300, ResultStatus::corrected, ResultState::current, std::nullopt, 60)};
  const VersionPlan plan = plan_version(existing, incoming(200, ResultStatus::final, 45));
  CHECK(plan.state == ResultState::superseded);
  CHECK(plan.superseded_by == 2);
  REQUIRE(plan.changes.size() == 1);
  CHECK(plan.changes[0].id == 1);
  CHECK(plan.changes[0].to == ResultState::superseded);
  CHECK(plan.changes[0].superseded_by_incoming);
}

TEST_CASE("plan_version withdraws the current version on a cancellation", "[clinical][reconcile]") {
  const std::array existing = {
      stored(1, 100, ResultStatus::final, ResultState::current, std::nullopt, 45)};
  const VersionPlan plan = plan_version(existing, incoming(200, ResultStatus::cancelled, 0));
  CHECK(plan.state == ResultState::cancelled);
  CHECK_FALSE(plan.superseded_by.has_value());
  REQUIRE(plan.changes.size() == 1);
  CHECK(plan.changes[0].from == ResultState::current);
  CHECK(plan.changes[0].to == ResultState::withdrawn);
  CHECK(plan.changes[0].superseded_by_incoming);

  SECTION("a version older than the cancellation arrives withdrawn") {
    const std::array after = {
        stored(1, 100, ResultStatus::final, ResultState::withdrawn, 2, 45),
        stored(2, 300, ResultStatus::cancelled, ResultState::cancelled, std::nullopt, 0)};
    const VersionPlan late = plan_version(after, incoming(200, ResultStatus::corrected, 50));
    CHECK(late.state == ResultState::withdrawn);
    CHECK(late.superseded_by == 2);
    REQUIRE(late.changes.size() == 1);
    CHECK(late.changes[0].id == 1);
    CHECK(late.changes[0].from == ResultState::withdrawn);
    CHECK(late.changes[0].to == ResultState::superseded);
    CHECK(late.changes[0].superseded_by_incoming);
  }
  SECTION("a version newer than the cancellation is current again") {
    const std::array after = {
        stored(1, 100, ResultStatus::final, ResultState::withdrawn, 2, 45),
        stored(2, 300, ResultStatus::cancelled, ResultState::cancelled, std::nullopt, 0)};
    const VersionPlan reissued = plan_version(after, incoming(400, ResultStatus::final, 47));
    CHECK(reissued.state == ResultState::current);
    CHECK(reissued.changes.empty());
  }
}

TEST_CASE("plan_version recognises duplicates by order key and by natural key",
          "[clinical][reconcile]") {
  const std::array existing = {
      stored(1, 100, ResultStatus::final, ResultState::current, std::nullopt, 45)};
  CHECK(plan_version(existing, incoming(100, ResultStatus::final, 45.0)).duplicate);
  CHECK(plan_version(existing, incoming(100, ResultStatus::final, 45.0 * (1 + 1e-12))).duplicate);
  // Resent with a new message time: a new version, not a duplicate.
  CHECK_FALSE(plan_version(existing, incoming(150, ResultStatus::final, 45)).duplicate);
  CHECK_FALSE(plan_version(existing, incoming(100, ResultStatus::corrected, 45)).duplicate);
  IncomingVersion censored = incoming(100, ResultStatus::final, 45);
  censored.comparator = "<";
  CHECK_FALSE(plan_version(existing, censored).duplicate);

  // Natural key (CSV): the same value is a duplicate whenever it comes; another value supersedes.
  CHECK(plan_version(existing, incoming(0, ResultStatus::final, 45, false)).duplicate);
  const VersionPlan changed = plan_version(existing, incoming(100, ResultStatus::final, 46, false));
  CHECK_FALSE(changed.duplicate);
  CHECK(changed.state == ResultState::current);
  REQUIRE(changed.changes.size() == 1);
  CHECK(changed.changes[0].to == ResultState::superseded);
}

TEST_CASE("plan_version gives the same history in every arrival order", "[clinical][reconcile]") {
  struct Version {
    std::int64_t time;
    ResultStatus status;
    double value;
  };
  const std::array<Version, 4> versions = {{{100, ResultStatus::preliminary, 40},
                                            {200, ResultStatus::final, 45},
                                            {300, ResultStatus::cancelled, 0},
                                            {400, ResultStatus::corrected, 60}}};
  const std::vector<std::tuple<std::int64_t, ResultState, std::int64_t>> expected = {
      {100, ResultState::superseded, 200},
      {200, ResultState::withdrawn, 300},
      {300, ResultState::cancelled, -1},
      {400, ResultState::current, -1}};

  std::array<std::size_t, 4> order = {0, 1, 2, 3};
  int permutations = 0;
  do {
    History history;
    for (const std::size_t i : order) {
      history.add(versions[i].time, versions[i].status, versions[i].value);
    }
    INFO("arrival order " << order[0] << order[1] << order[2] << order[3]);
    CHECK(history.outcome() == expected);
    ++permutations;
  } while (std::next_permutation(order.begin(), order.end()));
  CHECK(permutations == 24);
}

TEST_CASE("parse_result_state and parse_result_status invert to_string", "[clinical][reconcile]") {
  for (const auto s : {ResultState::current, ResultState::superseded, ResultState::withdrawn,
                       ResultState::cancelled}) {
    CHECK(labwatch::clinical::parse_result_state(labwatch::clinical::to_string(s)) == s);
  }
  for (const auto s : {ResultStatus::final, ResultStatus::corrected, ResultStatus::preliminary,
                       ResultStatus::cancelled}) {
    CHECK(labwatch::clinical::parse_result_status(labwatch::clinical::to_string(s)) == s);
  }
  CHECK_FALSE(labwatch::clinical::parse_result_state("Current").has_value());
  CHECK_FALSE(labwatch::clinical::parse_result_status("").has_value());
}

TEST_CASE("plan_version does not take a version ordered by arrival for a new one when resent",
          "[clinical][reconcile]") {
  const std::vector<StoredVersion> existing = {
      stored(1, 1000, ResultStatus::corrected, ResultState::current, std::nullopt, 42)};
  IncomingVersion again = incoming(2000, ResultStatus::corrected, 42);
  CHECK_FALSE(plan_version(existing, again).duplicate);  // a real later time: a new version
  again.time_from_arrival = true;
  CHECK(plan_version(existing, again).duplicate);
}

TEST_CASE("plan_version lets a correction without MSH-7, ordered by arrival, replace its final",
          "[clinical][reconcile]") {
  // The final came with MSH-7 (1000); the correction without one, so at its arrival (5000). As
  // time 0 it lost to the final it corrects.
  const std::vector<StoredVersion> existing = {
      stored(1, 1000, ResultStatus::final, ResultState::current, std::nullopt, 40)};
  IncomingVersion correction = incoming(5000, ResultStatus::corrected, 44);
  correction.time_from_arrival = true;
  const VersionPlan plan = plan_version(existing, correction);
  CHECK(plan.state == ResultState::current);
  REQUIRE(plan.changes.size() == 1);
  CHECK(plan.changes[0].to == ResultState::superseded);
  CHECK(plan.changes[0].superseded_by_incoming);
}

TEST_CASE("plan_version orders a version timed by arrival by arrival, not by its ingest clock",
          "[clinical][reconcile]") {
  // A version without MSH-7 and OBR-22 carries the clock of its ingest. That clock is no lab
  // time: here it is made later than the other version's MSH-7 when it arrives first, and
  // earlier when it arrives second, so that comparing it with MSH-7 would pick the wrong one.
  constexpr std::int64_t kLabTime = 1000;
  constexpr std::int64_t kClockAfter = 5000;
  constexpr std::int64_t kClockBefore = 500;
  struct Case {
    const char* name;
    ResultStatus first;
    bool first_by_arrival;
    ResultStatus second;
    bool second_by_arrival;
    std::vector<ResultState> expected;  // first, second
  };
  const auto cancelled = ResultStatus::cancelled;  // OBX-11 D, W and X alike
  const std::vector<Case> cases = {
      {"D/W/X with MSH-7 after a final timed by arrival",
       ResultStatus::final,
       true,
       cancelled,
       false,
       {ResultState::withdrawn, ResultState::cancelled}},
      {"D/W/X timed by arrival after a final with MSH-7",
       ResultStatus::final,
       false,
       cancelled,
       true,
       {ResultState::withdrawn, ResultState::cancelled}},
      {"D/W/X after a final, both timed by arrival",
       ResultStatus::final,
       true,
       cancelled,
       true,
       {ResultState::withdrawn, ResultState::cancelled}},
      {"final with MSH-7 after a preliminary timed by arrival",
       ResultStatus::preliminary,
       true,
       ResultStatus::final,
       false,
       {ResultState::superseded, ResultState::current}},
      {"final timed by arrival after a preliminary with MSH-7",
       ResultStatus::preliminary,
       false,
       ResultStatus::final,
       true,
       {ResultState::superseded, ResultState::current}},
      {"correction with OBR-22 after a final timed by arrival",
       ResultStatus::final,
       true,
       ResultStatus::corrected,
       false,
       {ResultState::superseded, ResultState::current}},
      {"correction timed by arrival after a final with MSH-7",
       ResultStatus::final,
       false,
       ResultStatus::corrected,
       true,
       {ResultState::superseded, ResultState::current}},
      // Without a time, arrival is all there is: the later arrival wins, whatever its status.
      {"final with MSH-7 after a correction timed by arrival",
       ResultStatus::corrected,
       true,
       ResultStatus::final,
       false,
       {ResultState::superseded, ResultState::current}},
      {"final timed by arrival after a withdrawal with MSH-7",
       cancelled,
       false,
       ResultStatus::final,
       true,
       {ResultState::cancelled, ResultState::current}},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    History history;
    history.add(c.first_by_arrival ? kClockAfter : kLabTime, c.first, 30, c.first_by_arrival);
    history.add(c.second_by_arrival ? kClockBefore : kLabTime + 1, c.second,
                c.second == cancelled ? 0 : 35, c.second_by_arrival);
    CHECK(history.states() == c.expected);
  }
}

TEST_CASE("plan_version keeps an old version arriving after one timed by arrival old",
          "[clinical][reconcile]") {
  // Final at 2000, then a correction without a time, then the preliminary of 1000 arriving late:
  // the correction follows what had arrived before it, the preliminary stays behind the final.
  History history;
  history.add(2000, ResultStatus::final, 40);
  history.add(9999, ResultStatus::corrected, 44, true);
  history.add(1000, ResultStatus::preliminary, 38);
  CHECK(history.states() ==
        std::vector{ResultState::superseded, ResultState::current, ResultState::superseded});
  // A version newer than everything that came before the correction follows it.
  history.add(3000, ResultStatus::corrected, 46);
  CHECK(history.states() == std::vector{ResultState::superseded, ResultState::superseded,
                                        ResultState::superseded, ResultState::current});
}

TEST_CASE("plan_version takes the same value timed by arrival for a resend of a stored version",
          "[clinical][reconcile]") {
  std::vector<StoredVersion> existing = {
      stored(1, 5000, ResultStatus::final, ResultState::current, std::nullopt, 42)};
  existing[0].time_from_arrival = true;
  CHECK(plan_version(existing, incoming(1000, ResultStatus::final, 42)).duplicate);
  CHECK_FALSE(plan_version(existing, incoming(1000, ResultStatus::final, 43)).duplicate);
}

TEST_CASE("plan_promotion picks the current preliminary, if any", "[clinical][reconcile]") {
  using labwatch::clinical::plan_promotion;
  CHECK_FALSE(plan_promotion({}).has_value());
  const std::vector<StoredVersion> preliminary = {
      stored(1, 1000, ResultStatus::preliminary, ResultState::superseded, 2, 40),
      stored(2, 2000, ResultStatus::preliminary, ResultState::current, std::nullopt, 41)};
  CHECK(plan_promotion(preliminary) == 2);
  const std::vector<StoredVersion> finalized = {
      stored(1, 1000, ResultStatus::preliminary, ResultState::superseded, 2, 40),
      stored(2, 2000, ResultStatus::final, ResultState::current, std::nullopt, 41)};
  CHECK_FALSE(plan_promotion(finalized).has_value());
  const std::vector<StoredVersion> withdrawn = {
      stored(1, 1000, ResultStatus::preliminary, ResultState::withdrawn, std::nullopt, 40)};
  CHECK_FALSE(plan_promotion(withdrawn).has_value());
}

TEST_CASE("draw_versions finds what a correction under a new accession replaces",
          "[clinical][reconcile]") {
  using labwatch::clinical::draw_versions;
  using labwatch::clinical::DrawCandidate;
  using labwatch::clinical::DrawFacts;
  using labwatch::clinical::VersionKey;
  constexpr std::int64_t kDraw = 1735689600;
  const auto candidate = [](std::int64_t id, std::string_view facility, std::string_view order,
                            std::string_view analyte, std::int64_t person, std::int64_t at) {
    return DrawCandidate{
        VersionKey{facility, order, analyte, person, at},
        stored(id, 1000, ResultStatus::final, ResultState::current, std::nullopt, 40)};
  };
  const std::vector<DrawCandidate> candidates = {
      candidate(1, "LCA", "A1", "ferritin", 7, kDraw),         // the same draw: replaced
      candidate(2, "LCA", "A1", "ferritin", 8, kDraw),         // another patient
      candidate(3, "LCA", "A1", "zinc", 7, kDraw),             // another analyte
      candidate(4, "QDX", "A1", "ferritin", 7, kDraw),         // another lab
      candidate(5, "LCA", "A0", "ferritin", 7, kDraw - 3600),  // another draw
      candidate(6, "LCA", "A2", "ferritin", 7, kDraw),         // its own accession
  };
  const VersionKey key{"LCA", "A2", "ferritin", 7, kDraw};
  const auto ids = [](const std::vector<StoredVersion>& versions) {
    std::vector<std::int64_t> out;
    for (const StoredVersion& v : versions) {
      out.push_back(v.id);
    }
    return out;
  };

  SECTION("a correction replaces the same draw") {
    CHECK(ids(draw_versions(candidates, DrawFacts{key, {}, ResultStatus::corrected}, 0)) ==
          std::vector<std::int64_t>{1});
  }
  SECTION("a final under a new accession is a new result (a repeat test)") {
    CHECK(draw_versions(candidates, DrawFacts{key, {}, ResultStatus::final}, 0).empty());
  }
  SECTION("a result with versions under its own accession is a version of those") {
    CHECK(draw_versions(candidates, DrawFacts{key, {}, ResultStatus::corrected}, 1).empty());
  }
  SECTION("OBR-29 names the parent order: its versions of the same person and analyte") {
    CHECK(ids(draw_versions(candidates, DrawFacts{key, "A0", ResultStatus::final}, 0)) ==
          std::vector<std::int64_t>{5});
    CHECK(ids(draw_versions(candidates, DrawFacts{key, "A1", ResultStatus::corrected}, 0)) ==
          std::vector<std::int64_t>{1});
    CHECK(draw_versions(candidates, DrawFacts{key, "A9", ResultStatus::corrected}, 0).empty());
  }
}

TEST_CASE("plan_stand_in keeps a real total before any stand-in, in either order",
          "[clinical][reconcile]") {
  using labwatch::clinical::DrawTotal;
  using labwatch::clinical::plan_stand_in;
  using labwatch::clinical::StandInMove;
  const std::vector<DrawTotal> real{{1, ""}};
  const std::vector<DrawTotal> stand_ins{{2, "vitamin_d3_25oh"}, {3, "vitamin_d3_25oh"}};
  const std::vector<DrawTotal> none;
  // A stand-in where a real total is current is only the fraction.
  CHECK(plan_stand_in(true, real).store_as_fraction);
  CHECK(plan_stand_in(true, real).replaced.empty());
  // A stand-in among stand-ins (or alone) versions as usual.
  CHECK_FALSE(plan_stand_in(true, stand_ins).store_as_fraction);
  CHECK_FALSE(plan_stand_in(true, none).store_as_fraction);
  // A real total takes the place of every current stand-in, and of no real total; each stand-in
  // is kept as its own fraction, so its value stays current (either arrival order ends alike).
  CHECK(plan_stand_in(false, stand_ins).replaced ==
        std::vector<StandInMove>{{2, "vitamin_d3_25oh"}, {3, "vitamin_d3_25oh"}});
  CHECK(plan_stand_in(false, real).replaced.empty());
  CHECK_FALSE(plan_stand_in(false, stand_ins).store_as_fraction);
  CHECK(labwatch::clinical::stand_in_fraction("vitamin_d_25oh") == "vitamin_d3_25oh");
  CHECK(labwatch::clinical::stand_in_fraction("ferritin").empty());
}
