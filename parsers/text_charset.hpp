// SPDX-License-Identifier: Apache-2.0
// Character sets of lab text: UTF-8 validation and single-byte sets transcoded to UTF-8.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace labwatch::parsers {

// The single-byte character sets labs send: the ISO 8859 parts of HL7 table 0211 (MSH-18) and
// Windows-1252, the usual charset of a CSV saved by a Windows program. All keep ASCII as it is.
enum class ByteCharset : std::uint8_t {
  iso8859_1,
  iso8859_2,
  iso8859_3,
  iso8859_4,
  iso8859_5,
  iso8859_6,
  iso8859_7,
  iso8859_8,
  iso8859_9,
  iso8859_15,
  windows_1252,
};

// True when any byte is 0x80 or above.
bool contains_8bit(std::string_view text) noexcept;

// Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF.
bool is_valid_utf8(std::string_view text) noexcept;

// `text` read in `charset`, as UTF-8, into `out` (replaced). A byte the set leaves unassigned
// becomes U+FFFD.
void to_utf8(std::string_view text, ByteCharset charset, std::string& out);

// A charset by one of its usual names, case-insensitively: "iso-8859-1", "latin1", "8859/1",
// "windows-1252", "cp1252", ... nullopt for other names (including UTF-8, which is no byte set).
std::optional<ByteCharset> byte_charset_from_name(std::string_view name) noexcept;

// How a text file (a CSV export) is encoded: detected (UTF-8 when the bytes are valid UTF-8, else
// Windows-1252, what a spreadsheet saves on Windows), declared UTF-8, or a declared byte set.
struct TextEncoding {
  enum class Kind : std::uint8_t { detect, utf8, byte_set };
  Kind kind = Kind::detect;
  ByteCharset bytes = ByteCharset::windows_1252;  // for byte_set
  friend bool operator==(const TextEncoding&, const TextEncoding&) = default;
};

// "utf-8" (or "utf8") and the names byte_charset_from_name knows; nullopt for other names.
std::optional<TextEncoding> text_encoding_from_name(std::string_view name) noexcept;

// Makes `text` UTF-8 in place as `encoding` says. False, with `text` untouched, when UTF-8 was
// declared and the bytes are not valid UTF-8.
bool text_to_utf8(std::string& text, const TextEncoding& encoding);

}  // namespace labwatch::parsers
