// SPDX-License-Identifier: Apache-2.0
// CSV mapping internals: header vocabulary resolution and single-cell readers (names, status).
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "parsers/csv_parser.hpp"

namespace labwatch::parsers {

inline constexpr std::size_t kCsvColumnCount = static_cast<std::size_t>(CsvColumn::status) + 1;

// The 0-based header position of each column; nullopt when the header has no such column.
struct CsvColumnMap {
  std::array<std::optional<std::size_t>, kCsvColumnCount> index{};

  [[nodiscard]] std::optional<std::size_t> operator[](CsvColumn c) const noexcept {
    return index[static_cast<std::size_t>(c)];
  }
  [[nodiscard]] bool has(CsvColumn c) const noexcept { return (*this)[c].has_value(); }
};

// A header name folded for comparison: ASCII letters in lower case; spaces, underscores and
// hyphens dropped. "Patienten-ID" and "patient_id" give "patientenid" and "patientid".
std::string csv_header_key(std::string_view name);

// The built-in column that has `key` (folded by csv_header_key) as an alias, or nullopt.
std::optional<CsvColumn> builtin_csv_column(std::string_view key) noexcept;

// Assigns header positions to columns: the vocabulary's extra aliases first (in their order),
// then the built-ins. A column keeps the first position assigned; a position serves one column.
CsvColumnMap resolve_csv_columns(const std::vector<std::string>& header,
                                 const CsvVocabulary& vocabulary);

struct CsvPersonName {
  std::string family;
  std::string given;
  std::string middle;
};

// A name written in one cell: "LAST, FIRST M" or "LAST,FIRST" (a part after a second comma, such
// as a suffix, is dropped). Without a comma the order of the parts is unknown, so the whole
// text is the family name and nothing is guessed.
CsvPersonName split_csv_person_name(std::string_view text);

// A result status cell as 'F', 'P', 'C' or 'X': the letter itself or an English or German word
// (final, preliminary, corrected, amended, cancelled, vorläufig, ...). An empty cell is 'F'.
// nullopt for anything else.
std::optional<char> csv_result_status(std::string_view text);

// `text` without leading and trailing spaces and tabs.
std::string_view trim_csv_blanks(std::string_view text) noexcept;

}  // namespace labwatch::parsers
