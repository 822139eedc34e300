// SPDX-License-Identifier: Apache-2.0
// Hl7Message views: splitting fields into parts, and decoding escapes and character sets on access.
#include "parsers/hl7_message.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <utility>

#include "parsers/hl7_text.hpp"
#include "parsers/text_charset.hpp"

namespace labwatch::parsers {
namespace {

using hl7_text::hex_value;

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

// A charset label with every separator and case folded away: "ISO IR100", "ISO_IR 100" and
// "iso-ir-100" all become "isoir100".
std::string_view charset_key(std::string_view name, std::array<char, 32>& buffer) noexcept {
  std::size_t n = 0;
  for (const char c : name) {
    if (c == ' ' || c == '-' || c == '_' || c == '/' || c == '.') {
      continue;
    }
    if (n == buffer.size()) {
      return {};
    }
    buffer[n++] = c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
  }
  return {buffer.data(), n};
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
  std::array<char, 32> buffer{};
  const std::string_view key = charset_key(name, buffer);
  struct Label {
    std::string_view key;
    Hl7Charset charset;
  };
  // Table 0211 spells "8859/1" and "ISO IR100"; senders also write the IANA names.
  using C = Hl7Charset;
  constexpr std::array<Label, 45> kLabels = {{
      {"ascii", C::ascii},
      {"isoir6", C::ascii},
      {"usascii", C::ascii},
      {"unicodeutf8", C::utf8},
      {"utf8", C::utf8},
      {"isoir192", C::utf8},
      {"unicode", C::utf8},
      {"88591", C::latin1},
      {"iso88591", C::latin1},
      {"isoir100", C::latin1},
      {"latin1", C::latin1},
      {"88592", C::iso8859_2},
      {"iso88592", C::iso8859_2},
      {"isoir101", C::iso8859_2},
      {"88593", C::iso8859_3},
      {"iso88593", C::iso8859_3},
      {"isoir109", C::iso8859_3},
      {"88594", C::iso8859_4},
      {"iso88594", C::iso8859_4},
      {"isoir110", C::iso8859_4},
      {"88595", C::iso8859_5},
      {"iso88595", C::iso8859_5},
      {"isoir144", C::iso8859_5},
      {"88596", C::iso8859_6},
      {"iso88596", C::iso8859_6},
      {"isoir127", C::iso8859_6},
      {"88597", C::iso8859_7},
      {"iso88597", C::iso8859_7},
      {"isoir126", C::iso8859_7},
      {"88598", C::iso8859_8},
      {"iso88598", C::iso8859_8},
      {"isoir138", C::iso8859_8},
      {"88599", C::iso8859_9},
      {"iso88599", C::iso8859_9},
      {"isoir148", C::iso8859_9},
      {"885915", C::iso8859_15},
      {"iso885915", C::iso8859_15},
      {"isoir203", C::iso8859_15},
      {"isoir14", C::unsupported},
      {"isoir87", C::unsupported},
      {"isoir159", C::unsupported},
      {"gb180302000", C::unsupported},
      {"ksx1001", C::unsupported},
      {"cns116431992", C::unsupported},
      {"big5", C::unsupported},
  }};
  for (const Label& label : kLabels) {
    if (label.key == key) {
      return label.charset;
    }
  }
  if (key.starts_with("unicodeutf16") || key.starts_with("unicodeutf32")) {
    return Hl7Charset::unsupported;  // never reaches here intact: its delimiters are not bytes
  }
  return Hl7Charset::unknown;
}

std::optional<ByteCharset> byte_charset_of(Hl7Charset charset) noexcept {
  switch (charset) {
    case Hl7Charset::latin1:
      return ByteCharset::iso8859_1;
    case Hl7Charset::iso8859_2:
      return ByteCharset::iso8859_2;
    case Hl7Charset::iso8859_3:
      return ByteCharset::iso8859_3;
    case Hl7Charset::iso8859_4:
      return ByteCharset::iso8859_4;
    case Hl7Charset::iso8859_5:
      return ByteCharset::iso8859_5;
    case Hl7Charset::iso8859_6:
      return ByteCharset::iso8859_6;
    case Hl7Charset::iso8859_7:
      return ByteCharset::iso8859_7;
    case Hl7Charset::iso8859_8:
      return ByteCharset::iso8859_8;
    case Hl7Charset::iso8859_9:
      return ByteCharset::iso8859_9;
    case Hl7Charset::iso8859_15:
      return ByteCharset::iso8859_15;
    default:
      return std::nullopt;
  }
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
  // Why: labs often declare no MSH-18 (or ASCII, or a label of their own) and then send Latin-1
  // accents. A declared ISO 8859 part is read by its table. Otherwise text that is valid UTF-8 is
  // taken as UTF-8; any other 8-bit text is read as ISO-8859-1, never passed on broken.
  const std::optional<ByteCharset> declared = byte_charset_of(encoding_->charset);
  if (!contains_8bit(text) || (!declared && is_valid_utf8(text))) {
    return text;
  }
  std::string transcoded;
  to_utf8(text, declared.value_or(ByteCharset::iso8859_1), transcoded);
  scratch = std::move(transcoded);
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
