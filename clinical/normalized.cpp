// SPDX-License-Identifier: Apache-2.0
// Names of result statuses and of the ways a printed range is (not) used.
#include "clinical/normalized.hpp"

#include <array>
#include <utility>

namespace labwatch::clinical {

std::string_view to_string(ResultStatus s) noexcept {
  switch (s) {
    case ResultStatus::final:
      return "final";
    case ResultStatus::corrected:
      return "corrected";
    case ResultStatus::preliminary:
      return "preliminary";
    case ResultStatus::cancelled:
      return "cancelled";
  }
  return "final";
}

namespace {

struct RangeWords {
  RangeProblem problem;
  std::string_view key;
  std::string_view phrase;
};
constexpr std::array<RangeWords, 7> kRangeWords = {{
    {RangeProblem::none, "lab", "the lab's range"},
    {RangeProblem::not_printed, "none", "no range printed"},
    {RangeProblem::not_a_range, "not_a_range", "the printed range is not a range"},
    {RangeProblem::ambiguous_number, "ambiguous_number",
     "a bound of the printed range is ambiguous (decimal mark unknown)"},
    {RangeProblem::sex_unknown, "sex_unknown",
     "the printed range is sex-specific, and none is for the patient's sex"},
    {RangeProblem::unit_mismatch, "unit_mismatch",
     "the printed range is in another unit than the value"},
    {RangeProblem::does_not_fit, "does_not_fit",
     "the printed range's magnitude does not fit the value's unit"},
}};

}  // namespace

std::string_view to_key(RangeProblem problem) noexcept {
  for (const RangeWords& words : kRangeWords) {
    if (words.problem == problem) {
      return words.key;
    }
  }
  return "none";
}

std::optional<RangeProblem> range_problem_from_key(std::string_view key) noexcept {
  for (const RangeWords& words : kRangeWords) {
    if (words.key == key) {
      return words.problem;
    }
  }
  return std::nullopt;
}

std::string_view to_string(RangeProblem problem) noexcept {
  for (const RangeWords& words : kRangeWords) {
    if (words.problem == problem) {
      return words.phrase;
    }
  }
  return "no range printed";
}

std::string_view to_string(SkipReason reason) noexcept {
  switch (reason) {
    case SkipReason::pending:
      return "pending";
    case SkipReason::not_asked:
      return "not_asked";
    case SkipReason::order_detail:
      return "order_detail";
    case SkipReason::comment:
      return "comment";
    case SkipReason::not_performed:
      return "not_performed";
  }
  return "pending";
}

}  // namespace labwatch::clinical
