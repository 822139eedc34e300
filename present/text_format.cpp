// SPDX-License-Identifier: Apache-2.0
// Text formatting shared by the CLI, reports and mail.
#include "present/text_format.hpp"

#include <date/date.h>

#include <array>
#include <charconv>
#include <chrono>
#include <cmath>

namespace labwatch::daemon {

std::string iso_utc(clinical::UnixSeconds t) {
  const date::sys_seconds tp{std::chrono::seconds(t)};
  return date::format("%Y-%m-%dT%H:%M:%SZ", tp);
}

std::string iso_date(clinical::UnixSeconds t) {
  const date::sys_seconds tp{std::chrono::seconds(t)};
  return date::format("%Y-%m-%d", tp);
}

std::string format_number(double v) {
  if (!std::isfinite(v)) {
    return "";
  }
  std::array<char, 64> buf{};
  const auto [end, ec] =
      std::to_chars(buf.data(), buf.data() + buf.size(), v, std::chars_format::fixed, 6);
  if (ec != std::errc()) {
    return "";
  }
  std::string out(buf.data(), end);
  if (out.find('.') != std::string::npos) {
    while (out.back() == '0') {
      out.pop_back();
    }
    if (out.back() == '.') {
      out.pop_back();
    }
  }
  if (out == "-0") {
    out = "0";
  }
  return out;
}

std::string format_number(const std::optional<double>& v) {
  return v ? format_number(*v) : std::string();
}

std::string csv_field(std::string_view text) {
  if (text.find_first_of(",\"\r\n") == std::string_view::npos) {
    return std::string(text);
  }
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') {
      out += '"';
    }
    out += c;
  }
  out += '"';
  return out;
}

std::string csv_text(std::string_view text) {
  // A spreadsheet runs a cell that starts with = + - @ as a formula (and tab or CR as one once it
  // trims them): a lab's file name or a patient's name must not become one on an admin's desk.
  if (!text.empty() && std::string_view("=+-@\t\r").find(text.front()) != std::string_view::npos) {
    return csv_field("'" + std::string(text));
  }
  return csv_field(text);
}

std::string json_string(std::string_view text) {
  static constexpr std::string_view kHex = "0123456789abcdef";
  std::string out = "\"";
  for (std::size_t i = 0; i < text.size();) {
    const char c = text[i];
    const auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x80U) {
      // JSON text is UTF-8: a byte that is not part of a well-formed sequence becomes U+FFFD.
      const std::size_t length = utf8_sequence_length(text, i);
      if (length == 0) {
        out += "\\ufffd";
        ++i;
      } else {
        out.append(text.substr(i, length));
        i += length;
      }
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (byte < 0x20U || byte == 0x7FU) {
          out += "\\u00";
          out += kHex[byte >> 4U];
          out += kHex[byte & 0xFU];
        } else {
          out += c;
        }
    }
    ++i;
  }
  out += '"';
  return out;
}

std::string json_number(const std::optional<double>& v) {
  const std::string text = format_number(v);
  return text.empty() ? "null" : text;
}

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::size_t utf8_sequence_length(std::string_view text, std::size_t at) noexcept {
  const auto byte_at = [&text](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte_at(at);
  if (lead < 0x80U) {
    return 1;
  }
  // Table 3-7 of the Unicode standard: the range of the second byte depends on the first.
  std::size_t length = 0;
  unsigned char low = 0x80U;
  unsigned char high = 0xBFU;
  if (lead >= 0xC2U && lead <= 0xDFU) {
    length = 2;
  } else if (lead >= 0xE0U && lead <= 0xEFU) {
    length = 3;
    low = lead == 0xE0U ? 0xA0U : 0x80U;
    high = lead == 0xEDU ? 0x9FU : 0xBFU;
  } else if (lead >= 0xF0U && lead <= 0xF4U) {
    length = 4;
    low = lead == 0xF0U ? 0x90U : 0x80U;
    high = lead == 0xF4U ? 0x8FU : 0xBFU;
  } else {
    return 0;
  }
  if (text.size() - at < length || byte_at(at + 1) < low || byte_at(at + 1) > high) {
    return 0;
  }
  for (std::size_t k = 2; k < length; ++k) {
    if (byte_at(at + k) < 0x80U || byte_at(at + k) > 0xBFU) {
      return 0;
    }
  }
  return length;
}

namespace {

// The code point of one well-formed UTF-8 sequence.
char32_t code_point(std::string_view sequence) noexcept {
  const auto byte = [&sequence](std::size_t i) { return static_cast<unsigned char>(sequence[i]); };
  static constexpr std::array<unsigned, 5> kLeadMask{0, 0x7FU, 0x1FU, 0x0FU, 0x07U};
  char32_t c = byte(0) & kLeadMask[sequence.size()];
  for (std::size_t i = 1; i < sequence.size(); ++i) {
    c = (c << 6U) | (byte(i) & 0x3FU);
  }
  return c;
}

// Characters that break or reorder a line as shown without being control bytes: the C1 controls,
// the line and paragraph separators, and the bidirectional marks, embeddings and isolates.
bool is_deceptive(char32_t c) noexcept {
  return (c >= 0x80 && c <= 0x9F) || c == 0x200E || c == 0x200F || (c >= 0x2028 && c <= 0x202E) ||
         (c >= 0x2066 && c <= 0x2069);
}

}  // namespace

std::string printable(std::string_view text) {
  static constexpr std::string_view kHex = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  const auto escape = [&out](unsigned char byte) {
    out += "\\x";
    out += kHex[byte >> 4U];
    out += kHex[byte & 0x0FU];
  };
  std::size_t i = 0;
  while (i < text.size()) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if (byte == '\\') {
      out += "\\\\";
      ++i;
    } else if (byte < 0x20U || byte == 0x7FU) {
      escape(byte);
      ++i;
    } else if (byte < 0x80U) {
      out += static_cast<char>(byte);
      ++i;
    } else if (const std::size_t length = utf8_sequence_length(text, i); length > 0) {
      if (is_deceptive(code_point(text.substr(i, length)))) {
        for (std::size_t k = 0; k < length; ++k) {
          escape(static_cast<unsigned char>(text[i + k]));
        }
      } else {
        out.append(text.substr(i, length));
      }
      i += length;
    } else {
      escape(byte);
      ++i;
    }
  }
  return out;
}

}  // namespace labwatch::daemon
