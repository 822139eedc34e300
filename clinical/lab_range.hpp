// SPDX-License-Identifier: Apache-2.0
// The lab's own witnesses of a value: the reference range it printed and the flag it set.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "clinical/normalized.hpp"
#include "parsers/lab_numbers.hpp"

namespace labwatch::clinical {

// A reference range in the shapes labs print: "13-150", "4.3 to 6.2", "4.0-6.4 mg/dL",
// "822-1,571", "<0.50 IU/mL", ">=4.0", "≤ 5", "(13,0-150,0)", and sex-specific ones:
// "F: 822-1571", "M: 70-380 F: 15-150", "M: 70-380~F: 15-150" (repetitions). Bounds are as
// printed, in the unit printed after them (`unit`, empty when none: the value's unit).
struct PrintedRange {
  std::optional<double> low;
  std::optional<double> high;
  std::string unit;
};

struct RangeReading {
  std::optional<PrintedRange> range;
  RangeProblem problem = RangeProblem::none;  // set when `range` is empty
};

// Reads a printed range. `sex` is 'F', 'M' or 'U' (unknown: a sex-specific range is not used).
// Numbers are read as parsers::read_lab_number reads them with `mark`.
RangeReading read_printed_range(std::string_view text, parsers::DecimalMark mark,
                                bool point_is_standard, char sex);

// Takes a leading comparator off `text` and returns it in ASCII ("<", "<=", ">", ">="; U+2264 and
// U+2265 count as "<=" and ">="), advancing `text` past it and the blanks after it; "" when there
// is none. Shared by values ("<5") and ranges ("<0.50").
std::string_view take_comparator(std::string_view& text) noexcept;

// The lab's abnormal flag (HL7 table 0078 in OBX-8, repetitions joined by '~'; a CSV flag
// column's words): which way the lab says the value lies.
enum class LabFlag : std::uint8_t {
  none,      // no flag, or one that says nothing of the value's side (S, R, I, POS, ...)
  normal,    // N
  low,       // L, LL, LU, <, "low"
  high,      // H, HH, HU, >, "high"
  abnormal,  // A, AA, "abnormal", or low and high at once
};
LabFlag read_lab_flag(std::string_view flags) noexcept;

// "low", "high", "abnormal", ...: how a person reads the flag.
std::string_view to_string(LabFlag flag) noexcept;

}  // namespace labwatch::clinical
