// SPDX-License-Identifier: Apache-2.0
// CSV/TSV lab exports: RFC 4180 tokenizing with delimiter sniffing, and the header vocabulary that
// maps a lab's columns to LabReports.
#pragma once

#include <cstddef>
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
// Errors: empty_input, unterminated_quote, too_many_columns, field_too_long, input_too_large,
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

struct CsvFileResult {
  std::vector<LabReport> reports;  // consecutive rows of one patient and collection time
  std::vector<Refusal> refusals;   // whole-file (missing_columns) or per row (line, column, why)
};

// Maps a table to LabReports. A missing required column (patient id, test code or name, value,
// unit, collection time) refuses the file whole, naming each missing column; a bad row (bad date,
// wrong column count) is refused alone and the other rows are kept. Each row is one Observation
// with value and unit kept as text; a change of accession within a report starts a new Order.
// A CSV names no assigning authority, so a row refusal's patient_key is "|<id>".
CsvFileResult csv_to_reports(const CsvTable& table, const CsvVocabulary& vocabulary);

// Dates as CSV exports write them: ISO 8601 (with/without offset or 'Z', with/without seconds,
// 'T' or space), dd.mm.yyyy[ HH:MM[:SS]], MM/DD/YYYY[ hh:mm[:ss] AM|PM] and 24h MM/DD/YYYY HH:MM.
// nullopt for any other shape and for an impossible date, time or offset (2025-02-29, 13:00 PM).
std::optional<DateTime> parse_csv_datetime(std::string_view text) noexcept;

}  // namespace labwatch::parsers
