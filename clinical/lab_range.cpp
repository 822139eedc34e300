// SPDX-License-Identifier: Apache-2.0
// The lab's own witnesses of a value: reading printed reference ranges and abnormal flags.
#include "clinical/lab_range.hpp"

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "clinical/analyte_catalogue.hpp"
#include "parsers/text.hpp"

namespace labwatch::clinical {

namespace {

using parsers::DecimalMark;
using parsers::NumberProblem;

using parsers::is_blank;
using parsers::is_digit;
using parsers::trim;

bool is_number_char(char c) noexcept { return is_digit(c) || c == '.' || c == ','; }

char lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool starts_with_folded(std::string_view text, std::string_view word) noexcept {
  if (text.size() < word.size()) {
    return false;
  }
  for (std::size_t i = 0; i < word.size(); ++i) {
    if (lower(text[i]) != word[i]) {
      return false;
    }
  }
  return true;
}

// One sex-specific part of a range field: "F: 15-150".
struct Part {
  char sex = 'U';
  std::string_view body;
};

// A label such as "F:", "Male :", "Frauen:" at `at` (a word boundary); its sex and length
// through the colon, or sex 'U' when there is none.
std::pair<char, std::size_t> label_at(std::string_view text, std::size_t at) noexcept {
  struct Label {
    std::string_view word;
    char sex;
  };
  // Longer words first, so that "female" is not read as "f" followed by "emale".
  constexpr std::array<Label, 10> kLabels = {{
      {"female", 'F'},
      {"women", 'F'},
      {"frauen", 'F'},
      {"m\xC3\xA4nner", 'M'},
      {"maenner", 'M'},
      {"male", 'M'},
      {"men", 'M'},
      {"f", 'F'},
      {"w", 'F'},
      {"m", 'M'},
  }};
  const std::string_view rest = text.substr(at);
  for (const Label& label : kLabels) {
    if (!starts_with_folded(rest, label.word)) {
      continue;
    }
    std::size_t end = label.word.size();
    while (end < rest.size() && is_blank(rest[end])) {
      ++end;
    }
    if (end < rest.size() && rest[end] == ':') {
      return {label.sex, end + 1};
    }
  }
  return {'U', 0};
}

// Splits "M: 70-380 F: 15-150" into its labelled parts. `prefix` gets the text before the first
// label; no parts means the field has no labels.
std::vector<Part> labelled_parts(std::string_view text, std::string_view& prefix) {
  std::vector<Part> parts;
  std::size_t part_start = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const bool boundary = i == 0 || is_blank(text[i - 1]) || text[i - 1] == ';' ||
                          text[i - 1] == '~' || text[i - 1] == ',' || text[i - 1] == '(' ||
                          text[i - 1] == '/';
    if (!boundary) {
      continue;
    }
    const auto [sex, length] = label_at(text, i);
    if (length == 0) {
      continue;
    }
    if (parts.empty()) {
      prefix = text.substr(0, i);
    } else {
      parts.back().body = text.substr(part_start, i - part_start);
    }
    parts.push_back(Part{sex, {}});
    part_start = i + length;
    i += length - 1;
  }
  if (!parts.empty()) {
    parts.back().body = text.substr(part_start);
  }
  return parts;
}

// Trims blanks and the punctuation that separates parts of a field ("15-150; ", "(...)").
std::string_view strip_part(std::string_view body) noexcept {
  body = trim(body);
  while (!body.empty() && (body.back() == ';' || body.back() == '~' || body.back() == ',' ||
                           body.back() == '/' || is_blank(body.back()))) {
    body.remove_suffix(1);
  }
  if (body.size() >= 2 && ((body.front() == '(' && body.back() == ')') ||
                           (body.front() == '[' && body.back() == ']'))) {
    body = trim(body.substr(1, body.size() - 2));
  }
  return body;
}

// Takes a number token (an optional sign, digits and separators) off the front of `text`.
std::string_view take_number(std::string_view& text) noexcept {
  std::size_t end = !text.empty() && (text.front() == '-' || text.front() == '+') ? 1 : 0;
  while (end < text.size() && is_number_char(text[end])) {
    ++end;
  }
  std::string_view number = text.substr(0, end);
  text = trim(text.substr(end));
  return number;
}

// Takes the word or dash between two bounds: "-", an en or em dash, "to", "bis", "..".
bool take_range_separator(std::string_view& text) noexcept {
  constexpr std::array<std::string_view, 6> kSeparators = {"-",  "\xE2\x80\x93", "\xE2\x80\x94",
                                                           "..", "to ",          "bis "};
  for (const std::string_view separator : kSeparators) {
    if (starts_with_folded(text, separator)) {
      text = trim(text.substr(separator.size()));
      return true;
    }
  }
  return false;
}

RangeReading problem(RangeProblem why) { return RangeReading{std::nullopt, why}; }

// One unlabelled range with an optional unit after it.
RangeReading read_one(std::string_view text, DecimalMark mark, bool point_is_standard) {
  text = strip_part(text);
  if (text.empty()) {
    return problem(RangeProblem::not_a_range);
  }
  auto number = [&](std::string_view token) -> std::optional<double> {
    const parsers::NumberReading reading = parsers::read_lab_number(token, mark, point_is_standard);
    return reading.number ? std::optional<double>(reading.number->value) : std::nullopt;
  };
  auto ambiguous = [&](std::string_view token) {
    return parsers::read_lab_number(token, mark, point_is_standard).problem ==
           NumberProblem::ambiguous;
  };
  PrintedRange range;
  std::string_view rest = text;
  if (const std::string_view comparator = take_comparator(rest); !comparator.empty()) {
    const char side = comparator.front();
    const std::string_view token = take_number(rest);
    const std::optional<double> bound = number(token);
    if (!bound) {
      return problem(ambiguous(token) ? RangeProblem::ambiguous_number : RangeProblem::not_a_range);
    }
    (side == '>' ? range.low : range.high) = *bound;
  } else {
    const std::string_view low_token = take_number(rest);
    if (!take_range_separator(rest)) {
      return problem(RangeProblem::not_a_range);
    }
    const std::string_view high_token = take_number(rest);
    range.low = number(low_token);
    range.high = number(high_token);
    if (!range.low || !range.high) {
      return problem(ambiguous(low_token) || ambiguous(high_token) ? RangeProblem::ambiguous_number
                                                                   : RangeProblem::not_a_range);
    }
    if (*range.low > *range.high) {
      return problem(RangeProblem::not_a_range);
    }
  }
  // What follows the numbers is their unit ("mg/dL", "%", "µg/L", "m[IU]/L"); another number or
  // stray punctuation there is not a range.
  constexpr std::string_view kNotUnitStart = "-+.,;:=<>()]}~|";
  if (!rest.empty() &&
      (is_digit(rest.front()) || kNotUnitStart.find(rest.front()) != std::string_view::npos)) {
    return problem(RangeProblem::not_a_range);
  }
  range.unit = rest;
  return RangeReading{std::move(range), RangeProblem::none};
}

}  // namespace

std::string_view take_comparator(std::string_view& text) noexcept {
  struct Spelling {
    std::string_view written;
    std::string_view ascii;
  };
  // Two-character spellings first, so that "<=" is not read as "<" followed by "=".
  constexpr std::array<Spelling, 6> kSpellings = {{
      {"<=", "<="},
      {">=", ">="},
      {"\xE2\x89\xA4", "<="},
      {"\xE2\x89\xA5", ">="},
      {"<", "<"},
      {">", ">"},
  }};
  for (const Spelling& spelling : kSpellings) {
    if (text.substr(0, spelling.written.size()) == spelling.written) {
      text = trim(text.substr(spelling.written.size()));
      return spelling.ascii;
    }
  }
  return {};
}

RangeReading read_printed_range(std::string_view text, DecimalMark mark, bool point_is_standard,
                                char sex) {
  text = trim(text);
  if (text.empty()) {
    return problem(RangeProblem::not_printed);
  }
  std::string_view prefix;
  const std::vector<Part> parts = labelled_parts(text, prefix);
  if (!parts.empty()) {
    if (!strip_part(prefix).empty()) {
      return problem(RangeProblem::not_a_range);
    }
    const Part* chosen = nullptr;
    for (const Part& part : parts) {
      if (part.sex == sex && sex != 'U') {
        if (chosen != nullptr) {
          return problem(RangeProblem::not_a_range);  // two ranges for one sex
        }
        chosen = &part;
      }
    }
    if (chosen == nullptr) {
      return problem(RangeProblem::sex_unknown);
    }
    return read_one(chosen->body, mark, point_is_standard);
  }
  // Unlabelled repetitions: usable only when they all say the same.
  if (text.find('~') != std::string_view::npos) {
    const std::string_view first = strip_part(text.substr(0, text.find('~')));
    std::string_view rest = text;
    while (!rest.empty()) {
      const std::size_t tilde = rest.find('~');
      if (strip_part(rest.substr(0, tilde)) != first) {
        return problem(RangeProblem::not_a_range);
      }
      rest = tilde == std::string_view::npos ? std::string_view{} : rest.substr(tilde + 1);
    }
    return read_one(first, mark, point_is_standard);
  }
  return read_one(text, mark, point_is_standard);
}

LabFlag read_lab_flag(std::string_view flags) noexcept {
  bool low = false;
  bool high = false;
  bool abnormal = false;
  bool normal = false;
  while (true) {
    const std::size_t tilde = flags.find('~');
    const std::string folded = fold_name(flags.substr(0, tilde));
    // HL7 table 0078 (OBX-8), and the words CSV exports print.
    for (const std::string_view word : {"l", "ll", "lu", "<", "low", "critical low", "*l", "l*"}) {
      low = low || folded == word;
    }
    for (const std::string_view word :
         {"h", "hh", "hu", ">", "high", "critical high", "*h", "h*"}) {
      high = high || folded == word;
    }
    for (const std::string_view word : {"a", "aa", "abn", "abnormal", "critical", "*"}) {
      abnormal = abnormal || folded == word;
    }
    normal = normal || folded == "n" || folded == "normal";
    if (tilde == std::string_view::npos) {
      break;
    }
    flags.remove_prefix(tilde + 1);
  }
  if (low && high) {
    return LabFlag::abnormal;
  }
  if (low) {
    return LabFlag::low;
  }
  if (high) {
    return LabFlag::high;
  }
  if (abnormal) {
    return LabFlag::abnormal;
  }
  return normal ? LabFlag::normal : LabFlag::none;
}

std::string_view to_string(LabFlag flag) noexcept {
  switch (flag) {
    case LabFlag::none:
      return "none";
    case LabFlag::normal:
      return "normal";
    case LabFlag::low:
      return "low";
    case LabFlag::high:
      return "high";
    case LabFlag::abnormal:
      return "abnormal";
  }
  return "none";
}

}  // namespace labwatch::clinical
