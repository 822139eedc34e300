// SPDX-License-Identifier: Apache-2.0
// Hl7Message views: splitting fields into parts, and decoding escapes and character sets on access.
#include "parsers/hl7_message.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>

#include "parsers/hl7_text.hpp"

namespace labwatch::parsers {
namespace {

using hl7_text::hex_value;

bool contains_8bit(std::string_view s) noexcept {
  return std::any_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
}

// Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF.
bool is_valid_utf8(std::string_view s) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len = 0;
    unsigned lo = 0x80;
    unsigned hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      lo = c == 0xE0 ? 0xA0 : 0x80;
      hi = c == 0xED ? 0x9F : 0xBF;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      lo = c == 0xF0 ? 0x90 : 0x80;
      hi = c == 0xF4 ? 0x8F : 0xBF;
    } else {
      return false;
    }
    if (n - i < len || p[i + 1] < lo || p[i + 1] > hi) {
      return false;
    }
    for (std::size_t k = 2; k < len; ++k) {
      if (p[i + k] < 0x80 || p[i + k] > 0xBF) {
        return false;
      }
    }
    i += len;
  }
  return true;
}

// Rewrites ISO-8859-1 bytes as UTF-8 in place, working from the back so nothing is overwritten.
void latin1_to_utf8(std::string& s) {
  const std::size_t n = s.size();
  const auto extra = static_cast<std::size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; }));
  s.resize(n + extra);
  std::size_t j = n + extra;
  for (std::size_t i = n; i-- > 0;) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      s[--j] = static_cast<char>(c);
    } else {
      s[--j] = static_cast<char>(0x80u | (c & 0x3Fu));
      s[--j] = static_cast<char>(0xC0u | (c >> 6u));
    }
  }
}

// \Xhh...\: an even, non-zero number of hex digits, one byte per pair.
bool append_hex_bytes(std::string_view hex, std::string& out) {
  if (hex.empty() || hex.size() % 2 != 0) {
    return false;
  }
  for (const char c : hex) {
    if (hex_value(c) < 0) {
      return false;
    }
  }
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    out.push_back(static_cast<char>(hex_value(hex[i]) * 16 + hex_value(hex[i + 1])));
  }
  return true;
}

// Escape sequences (HL7 v2 section 2.7): \F\ \S\ \T\ \R\ \E\ stand for the delimiters,
// \Xhh..\ (hex) for raw bytes, \.br\ for a line break; \H\ and \N\ (highlight on/off) carry no
// text. Anything else, and an escape character without its closing partner, is kept as sent.
void unescape(std::string_view raw, const Hl7Delimiters& d, std::string& out) {
  const char esc = d.escape;
  out.clear();
  std::size_t i = 0;
  while (i < raw.size()) {
    const std::size_t open = raw.find(esc, i);
    if (open == std::string_view::npos) {
      out.append(raw.substr(i));
      break;
    }
    out.append(raw.substr(i, open - i));
    const std::size_t close = raw.find(esc, open + 1);
    if (close == std::string_view::npos) {
      out.append(raw.substr(open));  // unterminated: nothing past the view is read
      break;
    }
    const std::string_view seq = raw.substr(open + 1, close - open - 1);
    char single = '\0';
    bool known = true;
    if (seq.size() == 1) {
      switch (seq[0]) {
        case 'F':
          single = d.field;
          break;
        case 'S':
          single = d.component;
          break;
        case 'T':
          single = d.subcomponent;
          break;
        case 'R':
          single = d.repetition;
          break;
        case 'E':
          single = d.escape;
          break;
        case 'H':
        case 'N':
          break;
        default:
          known = false;
          break;
      }
      if (known && single != '\0') {
        out.push_back(single);
      } else if ((seq[0] == 'T' || seq[0] == 'R') && single == '\0') {
        known = false;  // the message declared no such delimiter
      }
    } else if (seq == ".br") {
      out.push_back('\n');
    } else if (seq.size() > 1 && seq[0] == 'X') {
      known = append_hex_bytes(seq.substr(1), out);
    } else {
      known = false;
    }
    if (!known) {
      out.append(raw.substr(open, close - open + 1));
    }
    i = close + 1;
  }
}

bool iequals_ascii(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           const auto lower = [](char c) {
             return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
           };
           return lower(x) == lower(y);
         });
}

}  // namespace

Hl7Charset hl7_charset_from_name(std::string_view name) noexcept {
  while (!name.empty() && name.front() == ' ') {
    name.remove_prefix(1);
  }
  while (!name.empty() && name.back() == ' ') {
    name.remove_suffix(1);
  }
  if (name.empty()) {
    return Hl7Charset::unspecified;
  }
  static constexpr std::array<std::string_view, 3> kAscii = {"ASCII", "ISO IR6", "US-ASCII"};
  static constexpr std::array<std::string_view, 3> kUtf8 = {"UNICODE UTF-8", "UTF-8", "UTF8"};
  static constexpr std::array<std::string_view, 4> kLatin1 = {"8859/1", "ISO IR100", "ISO-8859-1",
                                                              "ISO8859-1"};
  const auto in = [name](const auto& names) {
    return std::any_of(names.begin(), names.end(),
                       [name](std::string_view n) { return iequals_ascii(n, name); });
  };
  if (in(kAscii)) {
    return Hl7Charset::ascii;
  }
  if (in(kUtf8)) {
    return Hl7Charset::utf8;
  }
  if (in(kLatin1)) {
    return Hl7Charset::latin1;
  }
  return Hl7Charset::unsupported;
}

std::size_t Hl7Field::repetition_count() const noexcept {
  if (raw_.empty()) {
    return 0;
  }
  const char sep = encoding_->delimiters.repetition;
  if (level_ != Level::field || sep == '\0') {
    return 1;
  }
  return static_cast<std::size_t>(std::count(raw_.begin(), raw_.end(), sep)) + 1;
}

std::string_view Hl7Field::decode_slow(std::string& scratch) const {
  if (raw_ == "\"\"") {
    return {};
  }
  const Hl7Delimiters& d = encoding_->delimiters;
  const bool escaped = encoding_->has_escape && d.escape != '\0' &&
                       hl7_detail::find_byte(raw_, d.escape) != raw_.size();
  if (!escaped && !(encoding_->has_8bit && contains_8bit(raw_))) {
    return raw_;
  }
  std::string_view text = raw_;
  if (escaped) {
    unescape(raw_, d, scratch);
    text = scratch;
  }
  // Why: labs often declare no MSH-18 (or ASCII) and then send Latin-1 accents. Text that is valid
  // UTF-8 is taken as UTF-8; any other 8-bit text is read as ISO-8859-1, never passed on broken.
  if (!contains_8bit(text) || (encoding_->charset != Hl7Charset::latin1 && is_valid_utf8(text))) {
    return text;
  }
  if (!escaped) {
    scratch.assign(raw_);
  }
  latin1_to_utf8(scratch);
  return scratch;
}

std::string Hl7Field::decoded() const {
  std::string scratch;
  const std::string_view v = decode(scratch);
  if (v.data() == scratch.data()) {
    return scratch;
  }
  return std::string(v);
}

std::size_t Hl7Segment::offset() const noexcept { return message_->segments_[index_].offset; }

int Hl7Segment::line() const noexcept { return message_->segments_[index_].line; }

std::size_t Hl7Segment::field_offset(std::size_t n) const noexcept {
  const std::size_t last = field_count();
  const std::string_view f = field(std::min(n, last)).raw();
  const auto start = static_cast<std::size_t>(f.data() - message_->text_.data());
  return n > last ? start + f.size() : start;
}

std::optional<Hl7Segment> Hl7Message::find(std::string_view id) const noexcept {
  for (std::size_t i = 0; i < segments_.size(); ++i) {
    if (Hl7Segment(*this, i).id() == id) {
      return Hl7Segment(*this, i);
    }
  }
  return std::nullopt;
}

}  // namespace labwatch::parsers
