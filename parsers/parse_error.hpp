// SPDX-License-Identifier: Apache-2.0
// ParseError: why and where a parser refused its input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace labwatch::parsers {

enum class ParseErrc : std::uint8_t {
  empty_input,
  unrecognized_format,
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
};

// Stable snake_case name of the code, used as a refusal reason ("truncated_message", ...).
std::string_view to_string(ParseErrc code) noexcept;

struct ParseError {
  ParseErrc code = ParseErrc::unrecognized_format;
  std::size_t offset = 0;  // byte offset in the parsed text
  int message = -1;        // 0-based message index within the file, when known
  int segment = -1;        // 1-based segment number within the message
  int field = -1;          // 1-based field number
  int line = -1;           // 1-based line (CSV)
  std::string detail;      // human text; never patient data
};

}  // namespace labwatch::parsers
