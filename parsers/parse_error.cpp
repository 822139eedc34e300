// SPDX-License-Identifier: Apache-2.0
// Names of parse error codes.
#include "parsers/parse_error.hpp"

namespace labwatch::parsers {

std::string_view to_string(ParseErrc code) noexcept {
  switch (code) {
    case ParseErrc::empty_input:
      return "empty_file";
    case ParseErrc::unrecognized_format:
      return "unrecognized_format";
    case ParseErrc::missing_msh:
      return "missing_msh";
    case ParseErrc::bad_delimiters:
      return "bad_delimiters";
    case ParseErrc::truncated_message:
      return "truncated_message";
    case ParseErrc::field_too_long:
      return "field_too_long";
    case ParseErrc::too_many_segments:
      return "too_many_segments";
    case ParseErrc::too_many_fields:
      return "too_many_fields";
    case ParseErrc::input_too_large:
      return "input_too_large";
    case ParseErrc::bad_segment_id:
      return "bad_segment_id";
    case ParseErrc::not_oru:
      return "not_oru";
    case ParseErrc::missing_segment:
      return "missing_segment";
    case ParseErrc::unterminated_quote:
      return "unterminated_quote";
    case ParseErrc::too_many_columns:
      return "too_many_columns";
    case ParseErrc::missing_columns:
      return "missing_columns";
    case ParseErrc::bad_encoding:
      return "bad_encoding";
  }
  return "unknown";
}

}  // namespace labwatch::parsers
