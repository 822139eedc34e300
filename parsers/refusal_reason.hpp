// SPDX-License-Identifier: Apache-2.0
// RefusalReason: the one vocabulary of why a file, a message, a row or a result was refused.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace labwatch::parsers {

// Each reason has one spelling (to_string), which is what the database stores, reason files and
// `labwatch` commands show, and what an admin searches the logs for. Reasons are only ever added.
enum class RefusalReason : std::uint8_t {
  // The file as a whole (the intake).
  empty_file,           // no data at all
  unreadable,           // cannot be opened or read
  symlink,              // a symbolic link: never followed
  not_regular_file,     // a directory, FIFO, device...
  hard_link,            // a file with more than one link
  replaced,             // replaced while it was claimed
  too_large,            // larger than the configured limit
  unrecognized_format,  // neither HL7 v2 nor a known CSV export
  // The structure of a message or an export (ParseError::code).
  missing_msh,
  bad_delimiters,
  truncated_message,
  field_too_long,
  too_many_segments,
  too_many_fields,
  input_too_large,
  bad_segment_id,
  not_oru,
  missing_segment,
  unterminated_quote,
  too_many_columns,
  missing_columns,
  bad_encoding,
  bad_row,  // a CSV row with another number of cells than the header
  // The envelope of a report: who it is about and where it comes from.
  missing_patient_id,
  missing_authority,
  unknown_source,
  // One result.
  missing_value,
  non_numeric_value,
  ambiguous_number,
  unknown_unit,
  implausible_value,
  flag_mismatch,
  bad_status,
  bad_date,
  ambiguous_date,
  invalid_time,
  missing_time,
  unknown_timezone,
};

// The reason's one spelling ("non_numeric_value", ...).
std::string_view to_string(RefusalReason reason) noexcept;

// The reason spelled `text`; nullopt for any other text. "empty_input", the name an earlier
// labwatch gave its parse error, reads as empty_file.
std::optional<RefusalReason> parse_refusal_reason(std::string_view text) noexcept;

}  // namespace labwatch::parsers
