// SPDX-License-Identifier: Apache-2.0
// Tests of plan_person_match: identifier, strict demographics, review pairs; no database.
#include "clinical/person_match.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

namespace {

using labwatch::clinical::family_match_form;
using labwatch::clinical::match_birth_dates;
using labwatch::clinical::MatchCandidate;
using labwatch::clinical::MatchPlan;
using labwatch::clinical::MatchReason;
using labwatch::clinical::parse_match_reason;
using labwatch::clinical::PersonField;
using labwatch::clinical::PersonIdentity;
using labwatch::clinical::plan_person_match;

PersonIdentity identity(std::string authority, std::string mrn, std::string family,
                        std::string given, std::string birth, char sex) {
  PersonIdentity p;
  p.authority = std::move(authority);
  p.mrn = std::move(mrn);
  p.family = std::move(family);
  p.given = std::move(given);
  p.birth_date = std::move(birth);
  p.sex = sex;
  return p;
}

MatchCandidate candidate(std::int64_t id, const PersonIdentity& p) {
  return {id, p, {{p.authority, p.mrn}}};
}

const PersonIdentity kHana = identity("LABA", "100", "Novak", "Hana", "1970-03-12", 'F');

}  // namespace

TEST_CASE("family_match_form folds case, diacritics, spaces, hyphens and apostrophes",
          "[clinical][person_match]") {
  CHECK(family_match_form("SMITH JONES") == family_match_form("Smith-Jones"));
  CHECK(family_match_form("O'Brien") == family_match_form("OBRIEN"));
  CHECK(family_match_form("Müller") == "muller");
  CHECK(family_match_form("MÜLLER") == family_match_form("Muller"));
  // ü is folded to u, not spelled out: Mueller is another spelling, left to a reviewer.
  CHECK(family_match_form("MUELLER") != family_match_form("Müller"));
}

TEST_CASE("match_birth_dates adds the day/month exchange only when it is a date",
          "[clinical][person_match]") {
  CHECK(match_birth_dates("1970-03-12") == std::vector<std::string>{"1970-03-12", "1970-12-03"});
  CHECK(match_birth_dates("1970-03-13") == std::vector<std::string>{"1970-03-13"});
  CHECK(match_birth_dates("1970-04-04") == std::vector<std::string>{"1970-04-04"});
  CHECK(match_birth_dates("").empty());
}

TEST_CASE("match reasons survive their text form", "[clinical][person_match]") {
  for (const MatchReason r :
       {MatchReason::same_authority, MatchReason::ambiguous, MatchReason::family_changed,
        MatchReason::day_month_swapped, MatchReason::given_initial, MatchReason::sex_differs}) {
    CHECK(parse_match_reason(to_string(r)) == r);
  }
  CHECK_FALSE(parse_match_reason("merged"));
}

TEST_CASE("plan_person_match finds the same identifier of the same authority",
          "[clinical][person_match]") {
  // Even when the demographics changed since: the identifier decides.
  const PersonIdentity renamed = identity("LABA", "100", "Svoboda", "Hana", "1971-01-01", 'F');
  const std::vector<MatchCandidate> stored{candidate(7, kHana)};
  const MatchPlan plan = plan_person_match(renamed, stored);
  CHECK(plan.person_id == 7);
  CHECK(plan.review.empty());
}

TEST_CASE("plan_person_match never merges two identifiers of one authority",
          "[clinical][person_match]") {
  const PersonIdentity other = identity("LABA", "200", "NOVAK", "hana", "1970-03-12", 'F');
  const std::vector<MatchCandidate> stored{candidate(7, kHana)};
  const MatchPlan plan = plan_person_match(other, stored);
  CHECK_FALSE(plan.person_id);
  REQUIRE(plan.review.size() == 1);
  CHECK(plan.review[0].person_id == 7);
  CHECK(plan.review[0].reason == MatchReason::same_authority);
  CHECK(plan.review[0].differing.empty());
}

TEST_CASE("plan_person_match merges across authorities only on exactly one agreeing person",
          "[clinical][person_match]") {
  struct Row {
    const char* what;
    PersonIdentity incoming;
    std::optional<std::int64_t> person;
    std::optional<char> refine;
  };
  const std::vector<Row> rows{
      {"same demographics", identity("LABB", "9", "Novak", "Hana", "1970-03-12", 'F'), 7, {}},
      {"case and diacritics", identity("LABB", "9", "NOVÁK", "HANA", "1970-03-12", 'F'), 7, {}},
      {"middle name ignored", identity("LABB", "9", "Novak", "Hana J", "1970-03-12", 'F'), 7, {}},
      {"unknown sex fits", identity("LABB", "9", "Novak", "Hana", "1970-03-12", 'U'), 7, {}},
      {"other sex refused", identity("LABB", "9", "Novak", "Hana", "1970-03-12", 'M'), {}, {}},
      {"other birth date", identity("LABB", "9", "Novak", "Hana", "1970-03-14", 'F'), {}, {}},
      {"no birth date", identity("LABB", "9", "Novak", "Hana", "", 'F'), {}, {}},
      {"no identifier", identity("LABB", "", "Novak", "Hana", "1970-03-12", 'F'), 7, {}},
  };
  for (const Row& row : rows) {
    INFO(row.what);
    const std::vector<MatchCandidate> stored{candidate(7, kHana)};
    const MatchPlan plan = plan_person_match(row.incoming, stored);
    CHECK(plan.person_id == row.person);
    CHECK(plan.refine_sex == row.refine);
  }
}

TEST_CASE("plan_person_match joins hyphenated and spaced family names and learns the sex",
          "[clinical][person_match]") {
  const PersonIdentity stored_u = identity("LABA", "1", "SMITH JONES", "Ann", "1980-05-20", 'U');
  const PersonIdentity incoming = identity("LABB", "2", "Smith-Jones", "Ann", "1980-05-20", 'F');
  const std::vector<MatchCandidate> stored{candidate(3, stored_u)};
  const MatchPlan plan = plan_person_match(incoming, stored);
  CHECK(plan.person_id == 3);
  CHECK(plan.refine_sex == 'F');
}

TEST_CASE("plan_person_match makes a three-way ambiguity a new person with two review pairs",
          "[clinical][person_match]") {
  // Two stored persons agree with the incoming one (from two other authorities): which one it is
  // cannot be told, so neither is chosen.
  const PersonIdentity a = identity("LABA", "1", "Novak", "Hana", "1970-03-12", 'F');
  const PersonIdentity b = identity("LABB", "2", "Novak", "Hana", "1970-03-12", 'U');
  const PersonIdentity c = identity("LABC", "3", "Novak", "Hana", "1970-03-12", 'F');
  const std::vector<MatchCandidate> stored{candidate(12, b), candidate(11, a)};
  const MatchPlan plan = plan_person_match(c, stored);
  CHECK_FALSE(plan.person_id);
  REQUIRE(plan.review.size() == 2);
  CHECK(plan.review[0].person_id == 11);
  CHECK(plan.review[0].reason == MatchReason::ambiguous);
  CHECK(plan.review[0].differing.empty());
  CHECK(plan.review[1].person_id == 12);
  CHECK(plan.review[1].differing == std::vector<PersonField>{PersonField::sex});
}

TEST_CASE("plan_person_match makes near matches review pairs, never merges",
          "[clinical][person_match]") {
  struct Row {
    const char* what;
    PersonIdentity incoming;
    std::optional<MatchReason> reason;
    std::vector<PersonField> differing;
  };
  const std::vector<Row> rows{
      {"changed family name",
       identity("LABB", "9", "Svoboda", "Hana", "1970-03-12", 'F'),
       MatchReason::family_changed,
       {PersonField::family}},
      {"Mueller for Müller", identity("LABB", "9", "Novak", "Hana", "1970-03-12", 'F'), {}, {}},
      {"swapped day and month",
       identity("LABB", "9", "Novak", "Hana", "1970-12-03", 'F'),
       MatchReason::day_month_swapped,
       {PersonField::birth_date}},
      {"given-name initial",
       identity("LABB", "9", "Novak", "H.", "1970-03-12", 'F'),
       MatchReason::given_initial,
       {PersonField::given}},
      {"other sex",
       identity("LABB", "9", "Novak", "Hana", "1970-03-12", 'M'),
       MatchReason::sex_differs,
       {PersonField::sex}},
      {"other given name", identity("LABB", "9", "Novak", "Jana", "1970-03-12", 'F'), {}, {}},
      {"other birth year", identity("LABB", "9", "Novak", "Hana", "1971-03-12", 'F'), {}, {}},
      {"two fields off", identity("LABB", "9", "Svoboda", "H", "1970-03-12", 'F'), {}, {}},
      {"initial on a new identifier of the same authority",
       identity("LABA", "5", "Novak", "H", "1970-03-12", 'F'),
       MatchReason::given_initial,
       {PersonField::given}},
  };
  for (const Row& row : rows) {
    INFO(row.what);
    PersonIdentity stored_person = kHana;
    if (std::string_view(row.what) == "Mueller for Müller") {
      stored_person.family = "Müller";
      PersonIdentity in = row.incoming;
      in.family = "MUELLER";
      const std::vector<MatchCandidate> stored{candidate(7, stored_person)};
      const MatchPlan plan = plan_person_match(in, stored);
      CHECK_FALSE(plan.person_id);
      REQUIRE(plan.review.size() == 1);
      CHECK(plan.review[0].reason == MatchReason::family_changed);
      continue;
    }
    const std::vector<MatchCandidate> stored{candidate(7, stored_person)};
    const MatchPlan plan = plan_person_match(row.incoming, stored);
    CHECK_FALSE(plan.person_id);
    if (row.reason) {
      REQUIRE(plan.review.size() == 1);
      CHECK(plan.review[0].person_id == 7);
      CHECK(plan.review[0].reason == *row.reason);
      CHECK(plan.review[0].differing == row.differing);
    } else {
      CHECK(plan.review.empty());
    }
  }
}

TEST_CASE("plan_person_match merges the one agreeing person and ignores near matches then",
          "[clinical][person_match]") {
  const PersonIdentity agreeing = identity("LABA", "1", "Novak", "Hana", "1970-03-12", 'F');
  const PersonIdentity near = identity("LABC", "4", "Novak", "H", "1970-03-12", 'F');
  const std::vector<MatchCandidate> stored{candidate(1, agreeing), candidate(2, near)};
  const MatchPlan plan =
      plan_person_match(identity("LABB", "9", "Novak", "Hana", "1970-03-12", 'F'), stored);
  CHECK(plan.person_id == 1);
  CHECK(plan.review.empty());
}

TEST_CASE("plan_person_match lists at most kMaxReviewPairs pairs, the most recent persons",
          "[clinical][identity]") {
  using labwatch::clinical::kMaxReviewPairs;
  using labwatch::clinical::MatchCandidate;
  using labwatch::clinical::PersonIdentity;
  PersonIdentity incoming;
  incoming.authority = "LAB";
  incoming.mrn = "NEW";
  incoming.family = "DOE";
  incoming.given = "JANE";
  incoming.birth_date = "1980-01-02";
  incoming.sex = 'F';
  std::vector<MatchCandidate> many;
  for (std::int64_t id = 1; id <= 50; ++id) {
    MatchCandidate c;
    c.person_id = id;
    c.demographics = incoming;
    c.demographics.mrn = "OLD" + std::to_string(id);
    c.identifiers.push_back({"LAB", "OLD" + std::to_string(id)});
    many.push_back(c);
  }
  const auto plan = labwatch::clinical::plan_person_match(incoming, many);
  CHECK_FALSE(plan.person_id.has_value());
  REQUIRE(plan.review.size() == kMaxReviewPairs);
  CHECK(plan.review.front().person_id == 31);
  CHECK(plan.review.back().person_id == 50);
}

TEST_CASE("plan_person_match merges nobody when storage could not hand over every agreeing person",
          "[clinical][identity]") {
  using labwatch::clinical::MatchCandidate;
  using labwatch::clinical::MatchReason;
  using labwatch::clinical::PersonIdentity;
  PersonIdentity incoming;
  incoming.authority = "LABB";
  incoming.mrn = "9";
  incoming.family = "DOE";
  incoming.given = "JANE";
  incoming.birth_date = "1980-01-02";
  incoming.sex = 'F';
  MatchCandidate only;
  only.person_id = 4;
  only.demographics = incoming;
  only.identifiers.push_back({"LABA", "1"});
  const std::vector<MatchCandidate> one{only};
  // The one agreeing person storage found is merged when it is the only one...
  CHECK(labwatch::clinical::plan_person_match(incoming, one).person_id == 4);
  // ...and only put up for review when more persons share the demographics than were read.
  const auto plan = labwatch::clinical::plan_person_match(incoming, one, false);
  CHECK_FALSE(plan.person_id.has_value());
  REQUIRE(plan.review.size() == 1);
  CHECK(plan.review[0].person_id == 4);
  CHECK(plan.review[0].reason == MatchReason::ambiguous);
}

TEST_CASE("demographic_key holds what two agreeing persons share and nothing else",
          "[clinical][identity]") {
  using labwatch::clinical::demographic_key;
  labwatch::clinical::PersonIdentity a;
  a.family = "Smith-Jones";
  a.given = "Mary Ann";
  a.birth_date = "1970-03-12";
  a.sex = 'F';
  labwatch::clinical::PersonIdentity b = a;
  b.family = "SMITH JONES";
  b.given = "MARY";
  b.sex = 'U';
  b.mrn = "other";
  CHECK(demographic_key(a) == "smithjones|mary|1970-03-12");
  CHECK(demographic_key(a) == demographic_key(b));
  b.birth_date = "1970-12-03";
  CHECK(demographic_key(a) != demographic_key(b));
  b.birth_date.clear();
  CHECK_FALSE(demographic_key(b).has_value());
}
