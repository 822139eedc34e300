// SPDX-License-Identifier: Apache-2.0
// Names of parse error codes: the spelling of the refusal each one makes.
#include "parsers/parse_error.hpp"

#include "parsers/refusal_reason.hpp"

namespace labwatch::parsers {

std::string_view to_string(ParseErrc code) noexcept { return to_string(refusal_reason(code)); }

}  // namespace labwatch::parsers
