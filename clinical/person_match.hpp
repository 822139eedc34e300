// SPDX-License-Identifier: Apache-2.0
// Patient matching: whether an incoming identity is a known person, a new one, or needs review.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "clinical/normalized.hpp"

namespace labwatch::clinical {

// One identifier of a stored person: the assigning authority and the identifier within it.
struct PersonIdentifier {
  std::string authority;
  std::string mrn;
  bool operator==(const PersonIdentifier&) const = default;
};

// A stored person that storage found as a possible match (same or day/month-swapped birth date,
// see match_birth_dates), with every identifier linked to it.
struct MatchCandidate {
  std::int64_t person_id = 0;
  PersonIdentity demographics;  // family, given, birth_date, sex as stored; authority/mrn unused
  std::vector<PersonIdentifier> identifiers;
};

// Why a pair of persons is put before a reviewer instead of being merged.
enum class MatchReason : std::uint8_t {
  same_authority,     // demographics agree, but one authority gave them two identifiers
  ambiguous,          // demographics agree with more than one stored person
  family_changed,     // only the family name differs (marriage, spelling, Müller/Mueller)
  day_month_swapped,  // only the birth date differs, by day and month exchanged
  given_initial,      // only the first given name differs: one is the other's initial
  sex_differs,        // only the sex differs, F against M
};

// "same_authority", "ambiguous", "family_changed", "day_month_swapped", "given_initial",
// "sex_differs".
std::string_view to_string(MatchReason reason) noexcept;
// The inverse of to_string; nullopt for any other text.
std::optional<MatchReason> parse_match_reason(std::string_view text) noexcept;

// A demographic field of a person, as compared by plan_person_match.
enum class PersonField : std::uint8_t { family, given, birth_date, sex };

// "family", "given", "birth_date", "sex".
std::string_view to_string(PersonField field) noexcept;
// The names of `fields`, comma separated ("family,sex"); "" for none.
std::string person_fields_text(std::span<const PersonField> fields);

// A stored person the incoming identity should be reviewed against.
struct ReviewPair {
  std::int64_t person_id = 0;
  MatchReason reason = MatchReason::ambiguous;
  std::vector<PersonField> differing;  // the fields whose compared values differ, in enum order
};

// What storage does with an incoming identity.
struct MatchPlan {
  // The stored person the identity is; nullopt: a new person is created for it.
  std::optional<std::int64_t> person_id;
  // The known sex (F or M) that the stored person, recorded as U, is now known to have.
  std::optional<char> refine_sex;
  // Pairs (the new person, a stored one) to review; only with a new person.
  std::vector<ReviewPair> review;
};

// The family name as compared: folded (fold_person_name), with spaces and dashes removed, so
// that "SMITH JONES", "Smith-Jones" and "Smith Jones" agree, and "O'Brien" agrees with "OBrien".
// Diacritics fold to their base letter: "Müller" is "muller", which differs from "MUELLER"
// ("mueller"); that pair is a family_changed candidate, never an automatic merge.
std::string family_match_form(std::string_view family);

// The demographics that must be equal for two persons to agree, as one text: the family name
// (family_match_form), the first given name (folded) and the birth date. Sex is left out (U agrees
// with any). nullopt when any of the three is missing: such an identity matches by identifier only.
std::optional<std::string> demographic_key(const PersonIdentity& person);

// The birth dates (YYYY-MM-DD) whose persons may match `birth_date`: itself and, when day and
// month can be exchanged and differ, the exchanged date. Empty when `birth_date` is empty.
std::vector<std::string> match_birth_dates(std::string_view birth_date);

// Decides who `incoming` is, given the stored persons found for it (any order):
// - a candidate holding the incoming identifier (authority and MRN) is that person;
// - otherwise demographics are compared: family (family_match_form), first given name, birth
//   date and sex (U agrees with any). Exactly one agreeing person without another identifier of
//   the incoming authority is that person. A person that agrees but has an identifier of the same
//   authority is never merged (same_authority); several agreeing persons make a new person and
//   an ambiguous pair each;
// - a person that differs in exactly one field in a known way (MatchReason) is a pair to review
//   with a new person, never a merge. An identity without family, given or birth date, or
//   without any candidate, is a new person matched by identifier only.
// At most kMaxReviewPairs pairs (those with the most recent persons) are planned for one identity.
// `all_agreeing`: whether `candidates` holds every stored person with the incoming demographic_key;
// when storage could hand over only some (see kCandidateWindow), nobody is merged automatically.
MatchPlan plan_person_match(const PersonIdentity& incoming,
                            std::span<const MatchCandidate> candidates, bool all_agreeing = true);

inline constexpr std::size_t kMaxReviewPairs = 20;

// How many stored persons storage hands to plan_person_match per question it asks: the most recent
// persons with the incoming demographic_key (one more, to know whether there are more than this)
// and the most recent ones born on each date of match_birth_dates. Why a window: one name and
// birth date reported under thousands of identifiers (a test feed, a placeholder patient) would
// otherwise make every new identity read every earlier one. It is larger than kMaxReviewPairs, so
// the pairs planned are those a full read would plan but for crowds of near matches.
inline constexpr std::size_t kCandidateWindow = 32;

}  // namespace labwatch::clinical
