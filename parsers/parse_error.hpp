// SPDX-License-Identifier: Apache-2.0
// ParseError: why (a RefusalReason) and where a parser refused its input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "parsers/refusal_reason.hpp"

namespace labwatch::parsers {

struct ParseError {
  RefusalReason code = RefusalReason::unrecognized_format;  // one of the structural reasons
  std::size_t offset = 0;                                   // byte offset in the parsed text
  int message = -1;    // 0-based message index within the file, when known
  int segment = -1;    // 1-based segment number within the message
  int field = -1;      // 1-based field number
  int line = -1;       // 1-based line (CSV)
  std::string detail;  // human text; never patient data
};

}  // namespace labwatch::parsers
