// SPDX-License-Identifier: Apache-2.0
// The OBX-11 status table (HL7 table 0085) and the values that say a test was not performed.
#include "clinical/result_status.hpp"

#include <array>
#include <cstddef>
#include <utility>

#include "parsers/text.hpp"

namespace labwatch::clinical {

namespace {

char upper(char c) noexcept { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }

using parsers::is_blank;

// Values labs print in OBX-5 instead of a result, upper-cased, inner blanks single. Only phrases
// that cannot be read as a result: "ND" (not detected) and "NEG" are results and are not here.
constexpr auto kNotPerformed = std::to_array<std::string_view>({
    "TNP",
    "QNS",
    "CANC",
    "CANCEL",
    "CANCELED",
    "CANCELLED",
    "TEST CANCELLED",
    "TEST CANCELED",
    "CANCELLED BY LAB",
    "CANCELED BY LAB",
    "CANCELLED BY LABORATORY",
    "CANCELED BY LABORATORY",
    "TEST CANCELLED BY LAB",
    "TEST CANCELED BY LAB",
    "NOT PERFORMED",
    "TEST NOT PERFORMED",
    "NOT DONE",
    "TEST NOT DONE",
    "DNR",
    "DNP",
    "NOT RECEIVED",
    "SPECIMEN NOT RECEIVED",
    "QUANTITY NOT SUFFICIENT",
    "INSUFFICIENT SPECIMEN",
    "INSUFFICIENT SAMPLE",
    "SEE NOTE",
    "SEE NOTES",
    "SEE COMMENT",
    "SEE COMMENTS",
    "SEE BELOW",
    "SEE REPORT",
    "SEE TEXT",
});

constexpr std::size_t kMaxPhrase = 32;

}  // namespace

StatusMeaning status_meaning(char obx11) noexcept {
  constexpr auto store = [](ResultStatus s) { return StatusMeaning{StatusEffect::store, s, {}}; };
  constexpr auto skip = [](SkipReason r) {
    return StatusMeaning{StatusEffect::skip, ResultStatus::final, r};
  };
  switch (upper(obx11)) {
    case 'C':  // record coming over is a correction and thus replaces a final result
    case 'A':  // amended based on adjustments provided by the placer (2.7+): corrects
      return store(ResultStatus::corrected);
    case 'P':  // preliminary
    case 'R':  // results entered, not verified
    case 'S':  // partial results
      return store(ResultStatus::preliminary);
    case 'X':  // results cannot be obtained for this observation
    case 'W':  // post original as wrong, e.g. transmitted for the wrong patient
    case 'D':  // deletes the OBX record
      return {StatusEffect::withdraw, ResultStatus::cancelled, {}};
    case 'U':  // results status change to final without retransmitting results already sent
      return {StatusEffect::promote, ResultStatus::final, {}};
    case 'I':  // specimen in lab, results pending
      return skip(SkipReason::pending);
    case 'N':  // not asked, used to affirmatively document that the observation was not sought
      return skip(SkipReason::not_asked);
    case 'O':  // order detail description only (no result)
      return skip(SkipReason::order_detail);
    default:  // F final, absent, or outside the table
      return store(ResultStatus::final);
  }
}

bool says_not_performed(std::string_view value) noexcept {
  // Upper-case the value with runs of blanks as one space, without the enclosing blanks, one pair
  // of parentheses or asterisks and a trailing period: "(Test not performed.)" -> "TEST NOT
  // PERFORMED".
  while (!value.empty() && is_blank(value.front())) {
    value.remove_prefix(1);
  }
  while (!value.empty() && (is_blank(value.back()) || value.back() == '.')) {
    value.remove_suffix(1);
  }
  if (value.empty() || (value.front() >= '0' && value.front() <= '9') || value.front() == '<' ||
      value.front() == '>' || value.front() == '-' || value.front() == '+' ||
      value.front() == '.') {
    return false;  // a number or a censored value, the usual case: no phrase starts like one
  }
  for (const auto& [open, close] : {std::pair{'(', ')'}, std::pair{'*', '*'}}) {
    if (value.size() >= 2 && value.front() == open && value.back() == close) {
      value = value.substr(1, value.size() - 2);
      break;
    }
  }
  std::array<char, kMaxPhrase> folded{};
  std::size_t size = 0;
  bool pending_space = false;
  for (const char c : value) {
    if (is_blank(c)) {
      pending_space = size > 0;
      continue;
    }
    if (size + (pending_space ? 2 : 1) > folded.size()) {
      return false;  // longer than every phrase
    }
    if (pending_space) {
      folded[size++] = ' ';
      pending_space = false;
    }
    folded[size++] = upper(c);
  }
  const std::string_view text(folded.data(), size);
  for (const std::string_view phrase : kNotPerformed) {
    if (text == phrase) {
      return true;
    }
  }
  return false;
}

bool coded_says_not_performed(std::string_view composite) noexcept {
  std::size_t component = 1;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= composite.size(); ++i) {
    const bool end = i == composite.size();
    if (!end && composite[i] != '^' && composite[i] != '~') {
      continue;
    }
    // CWE.1 identifier, .2 text, .4 alternate identifier, .5 alternate text, .9 original text;
    // .3 and .6 name coding systems ("L", "LN"), which say nothing.
    const bool named =
        component == 1 || component == 2 || component == 4 || component == 5 || component == 9;
    if (named && says_not_performed(composite.substr(start, i - start))) {
      return true;
    }
    component = !end && composite[i] == '^' ? component + 1 : 1;
    start = i + 1;
  }
  return false;
}

bool is_coded_type(std::string_view value_type) noexcept {
  std::array<char, 3> folded{};
  if (value_type.size() < 2 || value_type.size() > folded.size()) {
    return false;
  }
  for (std::size_t i = 0; i < value_type.size(); ++i) {
    folded[i] = upper(value_type[i]);
  }
  const std::string_view type(folded.data(), value_type.size());
  return type == "CE" || type == "CWE" || type == "CNE" || type == "CF";
}

bool is_text_type(std::string_view value_type) noexcept {
  return value_type.size() == 2 && ((upper(value_type[0]) == 'T' && upper(value_type[1]) == 'X') ||
                                    (upper(value_type[0]) == 'F' && upper(value_type[1]) == 'T'));
}

}  // namespace labwatch::clinical
