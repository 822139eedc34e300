// SPDX-License-Identifier: Apache-2.0
// CSV/TSV lab exports: RFC 4180 tokenizing with delimiter sniffing, and the header vocabulary that
// maps a lab's columns to LabReports.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "parsers/expected.hpp"
#include "parsers/lab_report.hpp"
#include "parsers/parse_error.hpp"

namespace labwatch::parsers {

inline constexpr std::size_t kMaxCsvBytes = 64u << 20;
inline constexpr std::size_t kMaxCsvColumns = 256;
inline constexpr std::size_t kMaxCsvFieldBytes = 64u << 10;
// Every stored cell costs a std::string (32 bytes) however short it is, so a 64 MiB file of
// one-byte fields would need gigabytes; this caps the cells of a table (header included).
inline constexpr std::size_t kMaxCsvCells = 1u << 21;

struct CsvRow {
  std::vector<std::string> fields;  // unquoted, doubled quotes folded; UTF-8 BOM removed
  int line = 1;                     // 1-based physical line where the row starts
  std::size_t offset = 0;           // byte offset where the row starts
};

struct CsvTable {
  char delimiter = ',';
  std::vector<std::string> header;
  int header_line = 1;            // 1-based line of the header (blank lines before it are skipped)
  std::size_t header_offset = 0;  // byte offset of the header (3 after a UTF-8 BOM)
  std::vector<CsvRow> rows;       // data rows, blank lines skipped
};

// Tokenizes a whole CSV/TSV text: sniffs the delimiter among ',', ';' and tab from the header line,
// accepts \n and \r\n, quoted fields with embedded delimiters, quotes and newlines.
// Errors: empty_file, unterminated_quote, too_many_columns, field_too_long, input_too_large,
// too_many_fields (more than kMaxCsvCells cells). Offsets count from the first byte of `text`.
Expected<CsvTable, ParseError> parse_csv(std::string_view text);

// The columns labwatch understands. Each has built-in English and German aliases.
enum class CsvColumn {
  patient_id,
  patient_name,
  last_name,
  first_name,
  birth_date,
  sex,
  test_name,
  loinc,
  local_code,
  value,
  unit,
  reference_range,
  flag,
  collected_at,
  comments,
  accession,
  status,
};
std::string_view to_string(CsvColumn c) noexcept;

// Header vocabulary: aliases (compared case-insensitively, spaces/underscores/hyphens ignored).
// `extra` comes from the config and is tried before the built-ins.
struct CsvVocabulary {
  std::map<CsvColumn, std::vector<std::string>> extra;
};

// How a date NN/NN/YYYY is read: month first (US), day first, or unknown, when only a date that
// has a single reading is read (<source date-order>, else the evidence of the file).
enum class DateOrder : std::uint8_t { unknown, mdy, dmy };

enum class DateErrc : std::uint8_t {
  invalid,    // not a known shape, or no real date, time or offset (2025-02-29, 13:00 PM)
  ambiguous,  // NN/NN/YYYY that reads as two different days and `order` is unknown
};

struct CsvFileResult {
  std::vector<LabReport> reports;  // consecutive rows of one patient and collection time
  std::vector<Refusal> refusals;   // whole-file (missing_columns) or per row (line, column, why)
};

// Maps a table to LabReports. A missing required column (patient id, test code or name, value,
// unit, collection time) refuses the file whole, naming each missing column; a bad row (bad date,
// wrong column count) is refused alone and the other rows are kept. Each row is one Observation
// with value and unit kept as text; a change of accession within a report starts a new Order.
// A CSV names no assigning authority, so a row refusal's patient_key is "|<id>".
// NN/NN/YYYY dates are read in `date_order` (<source date-order>); when it is unknown, in the order
// the file's own collection and birth dates prove (10/25/2024: month first) if they prove one,
// else a date with two readings is refused as ambiguous_date, naming its line and column.
CsvFileResult csv_to_reports(const CsvTable& table, const CsvVocabulary& vocabulary,
                             DateOrder date_order = DateOrder::unknown);

// Dates as lab exports write them, each with an optional time of day: year first YYYY-MM-DD
// (ISO 8601), YYYY/MM/DD, YYYY.MM.DD and YYYYMMDD, each with an optional 24-hour time after 'T' or
// spaces (HH:MM[:SS[.f]]) and offset (Z, +hh, +hhmm, +hh:mm); the HL7 TS shape
// YYYYMMDDHHMM[SS][+-ZZZZ]; day first DD.MM.YYYY[ HH:MM[:SS]]; NN/NN/YYYY[ HH:MM[:SS]] or with a
// 12-hour time and AM/PM, read in `order`.
Expected<DateTime, DateErrc> read_csv_datetime(std::string_view text, DateOrder order) noexcept;

// read_csv_datetime's value, nullopt for either error.
std::optional<DateTime> parse_csv_datetime(std::string_view text,
                                           DateOrder order = DateOrder::unknown) noexcept;

// read_csv_datetime's shapes for a field read before the sender's date order is known (HL7): a
// date NN/NN/YYYY keeps every reading (DateTime::slashed) for in_date_order. nullopt when the text
// is no date in any order.
std::optional<DateTime> read_datetime_in_any_order(std::string_view text) noexcept;

// `t` read in `order`: unchanged unless it was written NN/NN/YYYY (DateTime::slashed); then its
// reading in `order`. Errors: invalid when it is no date in `order` (13/04/2025 month first),
// ambiguous when `order` is unknown and its two readings are different days (03/04/2025).
Expected<DateTime, DateErrc> in_date_order(DateTime t, DateOrder order) noexcept;

// The order a date NN/NN/YYYY proves by itself: mdy for 10/25/2024, dmy for 25/10/2024; unknown
// for 03/04/2025, 05/05/2025 and any other shape.
DateOrder date_order_evidence(std::string_view text) noexcept;

}  // namespace labwatch::parsers
