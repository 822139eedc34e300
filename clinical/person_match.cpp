// SPDX-License-Identifier: Apache-2.0
// Patient matching: identifier first, then strict demographics; near matches go to review.
#include "clinical/person_match.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <utility>

#include "clinical/reconcile.hpp"

namespace labwatch::clinical {

namespace {

constexpr auto kReasons = std::to_array<std::pair<MatchReason, std::string_view>>({
    {MatchReason::same_authority, "same_authority"},
    {MatchReason::ambiguous, "ambiguous"},
    {MatchReason::family_changed, "family_changed"},
    {MatchReason::day_month_swapped, "day_month_swapped"},
    {MatchReason::given_initial, "given_initial"},
    {MatchReason::sex_differs, "sex_differs"},
});

// The compared form of one identity.
struct Compared {
  std::string family;
  std::string given;  // first given name, folded
  std::string birth_date;
  char sex = 'U';
  [[nodiscard]] bool complete() const noexcept {
    return !family.empty() && !given.empty() && !birth_date.empty();
  }
};

Compared compared(const PersonIdentity& person) {
  Compared c;
  c.family = family_match_form(person.family);
  c.given = std::string(first_given_name(fold_person_name(person.given)));
  c.birth_date = person.birth_date;
  c.sex = person.sex == 'F' || person.sex == 'M' ? person.sex : 'U';
  return c;
}

bool sex_compatible(char a, char b) noexcept { return a == 'U' || b == 'U' || a == b; }

// One is a single letter and the other starts with it: "j" and "jana".
bool initial_of(std::string_view a, std::string_view b) noexcept {
  if (a.size() > b.size()) {
    std::swap(a, b);
  }
  return a.size() == 1 && b.size() > 1 && b.front() == a.front();
}

bool swapped_dates(std::string_view a, std::string_view b) {
  const std::vector<std::string> variants = match_birth_dates(a);
  return variants.size() == 2 && variants[1] == b;
}

std::vector<PersonField> differing(const Compared& a, const Compared& b) {
  std::vector<PersonField> fields;
  if (a.family != b.family) {
    fields.push_back(PersonField::family);
  }
  if (a.given != b.given) {
    fields.push_back(PersonField::given);
  }
  if (a.birth_date != b.birth_date) {
    fields.push_back(PersonField::birth_date);
  }
  if (a.sex != b.sex) {
    fields.push_back(PersonField::sex);
  }
  return fields;
}

// The reason a person differing from the incoming one in exactly one field, in a known way, is
// worth a review; nullopt for a person that agrees (or differs in more, or otherwise).
std::optional<MatchReason> near_reason(const Compared& in, const Compared& stored) {
  const bool family = in.family == stored.family;
  const bool given = in.given == stored.given;
  const bool birth = in.birth_date == stored.birth_date;
  const bool sex = sex_compatible(in.sex, stored.sex);
  const int agreeing = int{family} + int{given} + int{birth} + int{sex};
  if (agreeing != 3) {
    return std::nullopt;
  }
  if (!family) {
    return MatchReason::family_changed;
  }
  if (!given) {
    return initial_of(in.given, stored.given) ? std::optional(MatchReason::given_initial)
                                              : std::nullopt;
  }
  if (!birth) {
    return swapped_dates(in.birth_date, stored.birth_date)
               ? std::optional(MatchReason::day_month_swapped)
               : std::nullopt;
  }
  return MatchReason::sex_differs;
}

bool has_other_identifier_of(const MatchCandidate& candidate, const PersonIdentity& incoming) {
  if (incoming.mrn.empty()) {
    return false;
  }
  return std::any_of(candidate.identifiers.begin(), candidate.identifiers.end(),
                     [&](const PersonIdentifier& id) {
                       return id.authority == incoming.authority && id.mrn != incoming.mrn;
                     });
}

}  // namespace

std::string_view to_string(MatchReason reason) noexcept {
  for (const auto& [value, text] : kReasons) {
    if (value == reason) {
      return text;
    }
  }
  return "ambiguous";
}

std::optional<MatchReason> parse_match_reason(std::string_view text) noexcept {
  for (const auto& [value, name] : kReasons) {
    if (name == text) {
      return value;
    }
  }
  return std::nullopt;
}

std::string_view to_string(PersonField field) noexcept {
  switch (field) {
    case PersonField::family:
      return "family";
    case PersonField::given:
      return "given";
    case PersonField::birth_date:
      return "birth_date";
    case PersonField::sex:
      return "sex";
  }
  return "family";
}

std::string person_fields_text(std::span<const PersonField> fields) {
  std::string text;
  for (const PersonField field : fields) {
    if (!text.empty()) {
      text.push_back(',');
    }
    text.append(to_string(field));
  }
  return text;
}

std::string family_match_form(std::string_view family) {
  std::string folded = fold_person_name(family);
  std::erase_if(folded, [](char c) { return c == ' ' || c == '-'; });
  return folded;
}

std::optional<std::string> demographic_key(const PersonIdentity& person) {
  const Compared c = compared(person);
  if (!c.complete()) {
    return std::nullopt;
  }
  std::string key;
  key.reserve(c.family.size() + c.given.size() + c.birth_date.size() + 2);
  key.append(c.family).append(1, '|').append(c.given).append(1, '|').append(c.birth_date);
  return key;
}

std::vector<std::string> match_birth_dates(std::string_view birth_date) {
  std::vector<std::string> dates;
  if (birth_date.empty()) {
    return dates;
  }
  dates.emplace_back(birth_date);
  // YYYY-MM-DD: the exchange is a date only when the day is a month number (01-12).
  if (birth_date.size() == 10 && birth_date[4] == '-' && birth_date[7] == '-') {
    const std::string_view month = birth_date.substr(5, 2);
    const std::string_view day = birth_date.substr(8, 2);
    const bool day_is_month = (day[0] == '0' && day[1] >= '1' && day[1] <= '9') ||
                              (day[0] == '1' && day[1] >= '0' && day[1] <= '2');
    if (day_is_month && day != month) {
      std::string swapped(birth_date.substr(0, 5));
      swapped.append(day).append(1, '-').append(month);
      dates.push_back(std::move(swapped));
    }
  }
  return dates;
}

// Why strict: a wrong merge puts one patient's values into another's trend and mails a
// practitioner about someone else, while a missed merge only splits a history until a reviewer
// merges it. So demographics merge only across authorities and only when exactly one person
// agrees; everything that merely looks alike (a second identifier of one authority, several
// agreeing persons, one field off) is a new person and a pair for a reviewer.
MatchPlan plan_person_match(const PersonIdentity& incoming,
                            std::span<const MatchCandidate> candidates, bool all_agreeing) {
  MatchPlan plan;
  if (!incoming.mrn.empty()) {
    const PersonIdentifier wanted{incoming.authority, incoming.mrn};
    for (const MatchCandidate& candidate : candidates) {
      if (std::find(candidate.identifiers.begin(), candidate.identifiers.end(), wanted) !=
          candidate.identifiers.end()) {
        plan.person_id = candidate.person_id;
        return plan;
      }
    }
  }
  const Compared in = compared(incoming);
  if (!in.complete()) {
    return plan;
  }
  std::vector<const MatchCandidate*> agreeing;
  std::vector<ReviewPair> near;
  for (const MatchCandidate& candidate : candidates) {
    const Compared stored = compared(candidate.demographics);
    if (!stored.complete()) {
      continue;
    }
    if (in.family == stored.family && in.given == stored.given &&
        in.birth_date == stored.birth_date && sex_compatible(in.sex, stored.sex)) {
      agreeing.push_back(&candidate);
    } else if (const auto reason = near_reason(in, stored)) {
      near.push_back({candidate.person_id, *reason, differing(in, stored)});
    }
  }
  // An agreeing person among more than storage could hand over is not known to be the only one.
  if (all_agreeing && agreeing.size() == 1 &&
      !has_other_identifier_of(*agreeing.front(), incoming)) {
    const MatchCandidate& match = *agreeing.front();
    plan.person_id = match.person_id;
    if (in.sex != 'U' && compared(match.demographics).sex == 'U') {
      plan.refine_sex = in.sex;
    }
    return plan;
  }
  for (const MatchCandidate* match : agreeing) {
    const MatchReason reason = has_other_identifier_of(*match, incoming)
                                   ? MatchReason::same_authority
                                   : MatchReason::ambiguous;
    plan.review.push_back({match->person_id, reason, differing(in, compared(match->demographics))});
  }
  plan.review.insert(plan.review.end(), near.begin(), near.end());
  std::sort(plan.review.begin(), plan.review.end(),
            [](const ReviewPair& a, const ReviewPair& b) { return a.person_id < b.person_id; });
  // Why a cap: a sender that reports one name and birth date under thousands of identifiers
  // (a test feed, a placeholder patient) would otherwise pair every new person with every earlier
  // one, a quadratic queue no reviewer can read. The most recent persons are listed; none is ever
  // merged for being left out.
  if (plan.review.size() > kMaxReviewPairs) {
    plan.review.erase(plan.review.begin(),
                      plan.review.end() - static_cast<std::ptrdiff_t>(kMaxReviewPairs));
  }
  return plan;
}

}  // namespace labwatch::clinical
