// SPDX-License-Identifier: Apache-2.0
// Where a piece of a lab file sits, in words.
#include "parsers/lab_report.hpp"

namespace labwatch::parsers {

std::string describe(const SourcePos& where) {
  std::string out;
  const auto add = [&out](const std::string& part) {
    if (!out.empty()) {
      out += ", ";
    }
    out += part;
  };
  if (where.message >= 0) {
    add("message " + std::to_string(where.message + 1));
  }
  if (where.line > 0) {
    add("line " + std::to_string(where.line));
  }
  if (where.segment > 0) {
    add("segment " + std::to_string(where.segment) +
        (where.segment_id.empty() ? "" : " " + where.segment_id));
  }
  if (!where.column.empty()) {
    add("column '" + where.column + "'");
  } else if (where.field > 0) {
    add("field " + std::to_string(where.field));
  }
  return out;
}

}  // namespace labwatch::parsers
