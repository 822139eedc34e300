// SPDX-License-Identifier: Apache-2.0
// Tests of the refusal vocabulary: one spelling per reason, read back, and the parse errors'
// reasons.
#include "parsers/refusal_reason.hpp"

#include <catch2/catch.hpp>
#include <set>
#include <string>

#include "parsers/parse_error.hpp"

using labwatch::parsers::parse_refusal_reason;
using labwatch::parsers::RefusalReason;

TEST_CASE("Every refusal reason has one spelling that reads back as itself", "[parsers][refusal]") {
  std::set<std::string> spellings;
  const auto last = static_cast<int>(RefusalReason::unknown_timezone);
  for (int i = 0; i <= last; ++i) {
    const auto reason = static_cast<RefusalReason>(i);
    const std::string spelling(to_string(reason));
    INFO(i << " " << spelling);
    CHECK_FALSE(spelling.empty());
    CHECK(spelling.find_first_not_of("abcdefghijklmnopqrstuvwxyz_") == std::string::npos);
    CHECK(spellings.insert(spelling).second);
    CHECK(parse_refusal_reason(spelling) == reason);
  }
  CHECK(spellings.size() == static_cast<std::size_t>(last) + 1);
  CHECK(to_string(RefusalReason::non_numeric_value) == "non_numeric_value");
  CHECK(to_string(RefusalReason::empty_file) == "empty_file");
}

TEST_CASE("parse_refusal_reason reads the old name of an empty file and nothing unknown",
          "[parsers][refusal]") {
  CHECK(parse_refusal_reason("empty_input") == RefusalReason::empty_file);
  CHECK_FALSE(parse_refusal_reason("").has_value());
  CHECK_FALSE(parse_refusal_reason("Non_Numeric_Value").has_value());
  CHECK_FALSE(parse_refusal_reason("no_such_reason").has_value());
}

TEST_CASE("A parse error carries its refusal reason, spelled as stored", "[parsers][refusal]") {
  // The parsers refuse with the one vocabulary: an empty input is an empty_file, as the intake
  // names it, not a second spelling of its own.
  labwatch::parsers::ParseError error;
  CHECK(error.code == RefusalReason::unrecognized_format);
  error.code = RefusalReason::empty_file;
  CHECK(labwatch::parsers::to_string(error.code) == "empty_file");
  error.code = RefusalReason::truncated_message;
  CHECK(labwatch::parsers::to_string(error.code) == "truncated_message");
}
