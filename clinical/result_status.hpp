// SPDX-License-Identifier: Apache-2.0
// What each observation result status (HL7 table 0085, OBX-11) and each "not performed" value
// does to a stored result.
#pragma once

#include <cstdint>
#include <string_view>

#include "clinical/normalized.hpp"

namespace labwatch::clinical {

// What an observation line does.
enum class StatusEffect : std::uint8_t {
  store,     // a value: a version of its result with `status`
  withdraw,  // no value is needed: withdraws every version of its result (X, W, D)
  promote,   // U: the stored preliminary of the same result becomes final; a value, if sent, is
             // stored as the final version instead
  skip,      // no result at all (I pending, N not asked, O order detail): skipped and counted
};

struct StatusMeaning {
  StatusEffect effect = StatusEffect::store;
  ResultStatus status = ResultStatus::final;  // of the stored version (store, promote, withdraw)
  SkipReason skip = SkipReason::pending;      // for StatusEffect::skip
};

// The meaning of OBX-11 (case-insensitive; 0 when absent, which counts as F). Table 0085:
// F final, absent, and any letter outside the table -> final; C corrected and A amended ->
// corrected; P preliminary, R entered not verified and S partial -> preliminary (a later final
// replaces them); X cannot be obtained, W posted as wrong and D deleted -> withdraw; U -> promote;
// I, N, O -> skip.
StatusMeaning status_meaning(char obx11) noexcept;

// Whether a value says that the test was not performed instead of giving a result: TNP, QNS,
// CANC, "Test not performed", "See note", "Not done" and similar, case-insensitive, ignoring
// surrounding blanks, a trailing period and enclosing parentheses. A number never does.
bool says_not_performed(std::string_view value) noexcept;

// Whether a coded value (OBX-2 CE, CWE, CNE, CF: "TNP^Test not performed^L", repetitions
// joined by '~') says so: its identifier, text, alternate identifier, alternate text or original
// text (components 1, 2, 4, 5, 9) is a phrase of says_not_performed.
bool coded_says_not_performed(std::string_view composite) noexcept;

// Whether OBX-2 is a coded type whose value is a composite (CE, CWE, CNE, CF).
bool is_coded_type(std::string_view value_type) noexcept;

// Whether OBX-2 is a text type whose value may be a comment rather than a result (TX, FT).
bool is_text_type(std::string_view value_type) noexcept;

}  // namespace labwatch::clinical
