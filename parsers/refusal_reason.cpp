// SPDX-License-Identifier: Apache-2.0
// The spellings of refusal reasons, and the reason of each parse error.
#include "parsers/refusal_reason.hpp"

#include <array>
#include <utility>

namespace labwatch::parsers {

namespace {

using R = RefusalReason;

constexpr auto kSpellings = std::to_array<std::pair<RefusalReason, std::string_view>>({
    {R::empty_file, "empty_file"},
    {R::unreadable, "unreadable"},
    {R::symlink, "symlink"},
    {R::not_regular_file, "not_regular_file"},
    {R::hard_link, "hard_link"},
    {R::replaced, "replaced"},
    {R::too_large, "too_large"},
    {R::unrecognized_format, "unrecognized_format"},
    {R::missing_msh, "missing_msh"},
    {R::bad_delimiters, "bad_delimiters"},
    {R::truncated_message, "truncated_message"},
    {R::field_too_long, "field_too_long"},
    {R::too_many_segments, "too_many_segments"},
    {R::too_many_fields, "too_many_fields"},
    {R::input_too_large, "input_too_large"},
    {R::bad_segment_id, "bad_segment_id"},
    {R::not_oru, "not_oru"},
    {R::missing_segment, "missing_segment"},
    {R::unterminated_quote, "unterminated_quote"},
    {R::too_many_columns, "too_many_columns"},
    {R::missing_columns, "missing_columns"},
    {R::bad_encoding, "bad_encoding"},
    {R::bad_row, "bad_row"},
    {R::missing_patient_id, "missing_patient_id"},
    {R::missing_authority, "missing_authority"},
    {R::unknown_source, "unknown_source"},
    {R::missing_value, "missing_value"},
    {R::non_numeric_value, "non_numeric_value"},
    {R::ambiguous_number, "ambiguous_number"},
    {R::unknown_unit, "unknown_unit"},
    {R::implausible_value, "implausible_value"},
    {R::flag_mismatch, "flag_mismatch"},
    {R::bad_status, "bad_status"},
    {R::bad_date, "bad_date"},
    {R::ambiguous_date, "ambiguous_date"},
    {R::invalid_time, "invalid_time"},
    {R::missing_time, "missing_time"},
    {R::unknown_timezone, "unknown_timezone"},
});

// Every reason is spelled, in enum order, so that to_string is an index.
constexpr bool spelled_in_order() {
  for (std::size_t i = 0; i < kSpellings.size(); ++i) {
    if (static_cast<std::size_t>(kSpellings[i].first) != i) {
      return false;
    }
  }
  return static_cast<std::size_t>(R::unknown_timezone) + 1 == kSpellings.size();
}
static_assert(spelled_in_order());

}  // namespace

std::string_view to_string(RefusalReason reason) noexcept {
  const auto i = static_cast<std::size_t>(reason);
  return i < kSpellings.size() ? kSpellings[i].second : "unrecognized_format";
}

std::optional<RefusalReason> parse_refusal_reason(std::string_view text) noexcept {
  for (const auto& [reason, spelling] : kSpellings) {
    if (spelling == text) {
      return reason;
    }
  }
  if (text == "empty_input") {
    return R::empty_file;
  }
  return std::nullopt;
}

}  // namespace labwatch::parsers
