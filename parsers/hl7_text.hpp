// SPDX-License-Identifier: Apache-2.0
// Byte classes and small text tests shared by the HL7 splitter, tokenizer and views (internal).
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace labwatch::parsers::hl7_text {

inline constexpr char kMllpStart = '\x0b';  // MLLP <VT>: a block starts
inline constexpr char kMllpEnd = '\x1c';    // MLLP <FS>: a block ends (a <CR> follows)
inline constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";

enum ByteClass : std::uint8_t {
  kUpper = 1u << 0,
  kDigit = 1u << 1,
  kLower = 1u << 2,
  kPunct = 1u << 3,  // printable ASCII that is neither a letter nor a digit nor a space
  kHex = 1u << 4,
  kBlank = 1u << 5,  // may fill a line that carries no segment: space, tab, NUL, DOS EOF (0x1A)
};

constexpr std::array<std::uint8_t, 256> make_byte_classes() {
  std::array<std::uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c) {
    std::uint8_t k = 0;
    if (c >= 'A' && c <= 'Z') {
      k |= kUpper;
    } else if (c >= 'a' && c <= 'z') {
      k |= kLower;
    } else if (c >= '0' && c <= '9') {
      k |= kDigit;
    } else if (c > 0x20 && c < 0x7f) {
      k |= kPunct;
    }
    if ((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f')) {
      k |= kHex;
    }
    if (c == ' ' || c == '\t' || c == 0 || c == 0x1a) {
      k |= kBlank;
    }
    t[static_cast<std::size_t>(c)] = k;
  }
  return t;
}

inline constexpr std::array<std::uint8_t, 256> kByteClasses = make_byte_classes();

constexpr bool has_class(char c, std::uint8_t k) noexcept {
  return (kByteClasses[static_cast<unsigned char>(c)] & k) != 0;
}

// MSH-1 and each MSH-2 character: printable ASCII punctuation (never a letter, digit or space).
constexpr bool is_delimiter_char(char c) noexcept { return has_class(c, kPunct); }

// A segment id is three characters: an upper-case letter, then upper-case letters or digits.
constexpr bool is_segment_id(std::string_view id) noexcept {
  return id.size() == 3 && has_class(id[0], kUpper) && has_class(id[1], kUpper | kDigit) &&
         has_class(id[2], kUpper | kDigit);
}

// A line that holds no segment (empty, or only blanks) is skipped wherever it appears.
constexpr bool is_blank_line(std::string_view line) noexcept {
  for (const char c : line) {
    if (!has_class(c, kBlank)) {
      return false;
    }
  }
  return true;
}

constexpr int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  return -1;
}

}  // namespace labwatch::parsers::hl7_text
