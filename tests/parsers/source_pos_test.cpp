// SPDX-License-Identifier: Apache-2.0
// Tests of describe(SourcePos): how a refusal or an explanation names where something sits.
#include <catch2/catch.hpp>
#include <string>

#include "parsers/lab_report.hpp"

using labwatch::parsers::describe;
using labwatch::parsers::SourcePos;

TEST_CASE("describe names each known part of a place, in file order", "[parsers][position]") {
  SourcePos hl7;
  hl7.message = 2;  // 0-based: the third message
  hl7.line = 12;
  hl7.segment = 5;
  hl7.segment_id = "OBX";
  hl7.field = 5;
  CHECK(describe(hl7) == "message 3, line 12, segment 5 OBX, field 5");

  SourcePos csv;
  csv.line = 4;
  csv.field = 3;
  csv.column = "Result";  // a column is named, not numbered
  CHECK(describe(csv) == "line 4, column 'Result'");

  SourcePos segment_only;
  segment_only.segment = 1;
  CHECK(describe(segment_only) == "segment 1");
  CHECK(describe(SourcePos{}).empty());
}
