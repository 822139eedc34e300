// SPDX-License-Identifier: Apache-2.0
// Numbers as labs print them: decimal marks, digit grouping, and the evidence a file gives of both.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace labwatch::parsers {

// Which character separates the fraction: configured per source, or learned from the file.
enum class DecimalMark : std::uint8_t { unknown, point, comma };

// What a file or message shows of its decimal mark. A number that can only be read one way tells:
// "45,2", "0,25", "13,0" show a decimal comma; "45.2", "1,234.5" a decimal point; "1.234,5" a
// comma. "1,234" and "1.234" (one separator, three digits after, a first group of 1-3 digits
// without a leading zero) could be either and tell nothing.
class MarkEvidence {
 public:
  // Looks at every run of digits and separators in `text` (a value, or a range such as
  // "13,0-150,0").
  void add(std::string_view text) noexcept;
  void add(const MarkEvidence& other) noexcept;
  // point or comma when only one was seen; unknown when none was, or both were (a file that
  // contradicts itself resolves nothing).
  [[nodiscard]] DecimalMark mark() const noexcept;

 private:
  bool point_ = false;
  bool comma_ = false;
};

struct LabNumber {
  double value = 0;
  int decimals = 0;  // digits after the decimal mark, as printed: the lab's precision
};

enum class NumberProblem : std::uint8_t {
  not_a_number,  // letters, spaces, a bad grouping ("1,23,4"), nothing at all
  ambiguous,     // "1,234" with no decimal mark known; a grouping that contradicts the mark
};

// Reads one number, the whole text: optional sign, digits, at most one decimal mark, and digit
// groups of three ("1,234.5", "1.234,5", "1,234,567"). A lone separator followed by exactly three
// digits is read by `mark`; with `mark` unknown a comma there is ambiguous, and a point is the
// decimal point when `point_is_standard` (HL7 NM is defined with a point) and ambiguous when not.
// A mark that the text contradicts ("1,234.5" under a comma mark) is ambiguous, never re-read.
struct NumberReading {
  std::optional<LabNumber> number;
  NumberProblem problem = NumberProblem::not_a_number;  // when `number` is empty
};
NumberReading read_lab_number(std::string_view text, DecimalMark mark,
                              bool point_is_standard) noexcept;

}  // namespace labwatch::parsers
