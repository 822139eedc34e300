// SPDX-License-Identifier: Apache-2.0
// Text formatting shared by the CLI, reports and mail: times, numbers, CSV/JSON/HTML escaping.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "clinical/normalized.hpp"

namespace labwatch::daemon {

// "2024-09-21T12:15:00Z".
std::string iso_utc(clinical::UnixSeconds t);
// "2024-09-21".
std::string iso_date(clinical::UnixSeconds t);
// Plain decimal, no exponent, at most 6 decimals, trailing zeros dropped: 78.771726, 80, 0.2.
std::string format_number(double v);
std::string format_number(const std::optional<double>& v);  // "" when empty
// A CSV field, quoted when it holds a comma, quote, CR or LF (RFC 4180).
std::string csv_field(std::string_view text);
// A JSON string literal with quotes, escaping control characters.
std::string json_string(std::string_view text);
// Text safe inside HTML element content and attribute values.
std::string html_escape(std::string_view text);

}  // namespace labwatch::daemon
