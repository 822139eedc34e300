// SPDX-License-Identifier: Apache-2.0
// Text formatting shared by the CLI, reports and mail: times, numbers, CSV/JSON/HTML escaping.
#pragma once

#include <cstddef>
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
// A CSV field of free text (names, file names, keys, rules): as csv_field, with a leading ' when it
// starts with a character that makes a spreadsheet run the cell as a formula (= + - @ tab CR).
// Never for numeric columns, whose minus sign is data.
std::string csv_text(std::string_view text);
// A JSON string literal with quotes that is valid JSON for any bytes: control characters and DEL
// escaped, bytes that are not well-formed UTF-8 replaced by U+FFFD.
std::string json_string(std::string_view text);
// A JSON number as format_number writes it, or null when there is none (empty, NaN, infinite, or
// too large for a plain decimal).
std::string json_number(const std::optional<double>& v);
// Text safe inside HTML element content and attribute values.
std::string html_escape(std::string_view text);
// The length of the well-formed UTF-8 sequence starting at text[at] (1 to 4; 1 for ASCII), or 0
// when the bytes there are not one (overlong, surrogate, beyond U+10FFFF, truncated). `at` < size.
std::size_t utf8_sequence_length(std::string_view text, std::size_t at) noexcept;
// One line of plain text that shows what `text` holds: control bytes (newlines included), DEL,
// bytes that are not valid UTF-8, and the bytes of characters that reorder or break a line as
// shown (C1 controls, U+2028/2029, bidirectional marks and overrides) are written as \xNN; the
// backslash itself as \\. For file names and details in reason files, where a name must not forge a
// line.
std::string printable(std::string_view text);

}  // namespace labwatch::daemon
