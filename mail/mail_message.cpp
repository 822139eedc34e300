// SPDX-License-Identifier: Apache-2.0
// MIME rendering of MailMessage: header encoding and folding, quoted-printable bodies, boundaries.
#include "mail/mail_message.hpp"

#include <algorithm>
#include <array>
#include <cassert>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>

#include "parsers/text_charset.hpp"
#include "present/text_format.hpp"

namespace labwatch::daemon {
namespace {

// RFC 5322 allows 78 columns; RFC 2047 asks encoded-word lines to stay within 76. Both hold at 76.
constexpr std::size_t kMaxLine = 76;
constexpr std::size_t kMaxEncodedWord = 75;  // RFC 2047 section 2
constexpr std::size_t kMaxIdLength = 250;
constexpr std::size_t kMaxAddressLength = 254;  // RFC 5321 path limit less the angle brackets
constexpr std::string_view kCharsetPrefixQ = "=?UTF-8?Q?";
constexpr std::string_view kCharsetPrefixB = "=?UTF-8?B?";
constexpr std::string_view kWordSuffix = "?=";
constexpr std::string_view kHex = "0123456789ABCDEF";
constexpr std::string_view kLowerHex = "0123456789abcdef";

unsigned char byte(char c) noexcept { return static_cast<unsigned char>(c); }

// RFC 5322 atext: the characters of an atom.
constexpr std::array<bool, 256> make_atext_table() {
  std::array<bool, 256> t{};
  for (int c = 'a'; c <= 'z'; ++c) {
    t[static_cast<std::size_t>(c)] = true;
  }
  for (int c = 'A'; c <= 'Z'; ++c) {
    t[static_cast<std::size_t>(c)] = true;
  }
  for (int c = '0'; c <= '9'; ++c) {
    t[static_cast<std::size_t>(c)] = true;
  }
  for (char c : std::string_view("!#$%&'*+-/=?^_`{|}~")) {
    t[static_cast<unsigned char>(c)] = true;
  }
  return t;
}
constexpr std::array<bool, 256> kAtext = make_atext_table();

bool is_atext(char c) noexcept { return kAtext[byte(c)]; }

// RFC 2047 section 5(3): the only characters an encoded-word may carry literally inside a phrase.
// Using this one set everywhere keeps every word valid in Subject and in display names alike.
bool is_q_literal(char c) noexcept {
  const unsigned char u = byte(c);
  return (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') || c == '!' ||
         c == '*' || c == '+' || c == '-' || c == '/';
}

using parsers::is_valid_utf8;

// Every header input passes here first: a CR, LF or NUL could end the header and start another one.
std::optional<MailError> check_header_text(std::string_view field, std::string_view text) {
  if (text.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos) {
    return MailError{MailErrc::forbidden_character, std::string(field)};
  }
  if (!is_valid_utf8(text)) {
    return MailError{MailErrc::invalid_utf8, std::string(field)};
  }
  return std::nullopt;
}

// RFC 5322 dot-atom-text: atext runs joined by single dots.
bool is_dot_atom_text(std::string_view text) noexcept {
  if (text.empty() || text.front() == '.' || text.back() == '.' ||
      text.find("..") != std::string_view::npos) {
    return false;
  }
  return std::all_of(text.begin(), text.end(), [](char c) { return c == '.' || is_atext(c); });
}

// "left@right" with both sides dot-atom-text: the plain form of an addr-spec and of a msg-id. It
// leaves out quoted local parts and domain literals, which an alert never needs.
bool is_plain_at_form(std::string_view text, std::size_t max_length) noexcept {
  const std::size_t at = text.find('@');
  return text.size() <= max_length && at != std::string_view::npos &&
         is_dot_atom_text(text.substr(0, at)) && is_dot_atom_text(text.substr(at + 1));
}

void append_hex_escape(std::string& out, unsigned char u) {
  out += '=';
  out += kHex[u >> 4];
  out += kHex[u & 0x0F];
}

std::string base64(std::string_view bytes) {
  constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t v = (std::uint32_t{byte(bytes[i])} << 16) |
                            (std::uint32_t{byte(bytes[i + 1])} << 8) | byte(bytes[i + 2]);
    out += kAlphabet[(v >> 18) & 0x3F];
    out += kAlphabet[(v >> 12) & 0x3F];
    out += kAlphabet[(v >> 6) & 0x3F];
    out += kAlphabet[v & 0x3F];
  }
  const std::size_t rest = bytes.size() - i;
  if (rest > 0) {
    std::uint32_t v = std::uint32_t{byte(bytes[i])} << 16;
    if (rest == 2) {
      v |= std::uint32_t{byte(bytes[i + 1])} << 8;
    }
    out += kAlphabet[(v >> 18) & 0x3F];
    out += kAlphabet[(v >> 12) & 0x3F];
    out += rest == 2 ? kAlphabet[(v >> 6) & 0x3F] : '=';
    out += '=';
  }
  return out;
}

// One character's Q-encoded form (RFC 2047 4.2): space as '_', the literal set as is, the rest =XX.
void append_q(std::string& out, std::string_view bytes) {
  for (char c : bytes) {
    if (c == ' ') {
      out += '_';
    } else if (is_q_literal(c)) {
      out += c;
    } else {
      append_hex_escape(out, byte(c));
    }
  }
}

// Splits `text` into encoded-words. The first word is at most `first_limit` characters long (so it
// ends by column 76), later words at most 75 (each starts a continuation line after one space). A
// word never splits a UTF-8 sequence, so each one decodes on its own (RFC 2047 section 5).
std::vector<std::string> encoded_words(std::string_view text, std::size_t first_limit) {
  std::size_t q_length = 0;
  for (char c : text) {
    q_length += (c == ' ' || is_q_literal(c)) ? 1U : 3U;
  }
  const bool use_q = q_length <= (text.size() + 2) / 3 * 4;
  const std::string_view prefix = use_q ? kCharsetPrefixQ : kCharsetPrefixB;
  const std::size_t overhead = prefix.size() + kWordSuffix.size();
  // A first word shorter than one 4-byte character would be empty: start it on a new line instead.
  constexpr std::size_t kLongestCharacter = 12;
  std::size_t limit = first_limit >= overhead + kLongestCharacter ? first_limit : kMaxEncodedWord;

  std::vector<std::string> words;
  std::string payload;  // Q: encoded text so far; B: raw bytes so far
  const auto payload_length = [&](std::size_t extra_raw, std::size_t extra_q) {
    return use_q ? payload.size() + extra_q : (payload.size() + extra_raw + 2) / 3 * 4;
  };
  const auto flush = [&] {
    std::string word(prefix);
    word += use_q ? payload : base64(payload);
    word += kWordSuffix;
    words.push_back(std::move(word));
    payload.clear();
    limit = kMaxEncodedWord;
  };
  for (std::size_t i = 0; i < text.size();) {
    // Callers validated the text; a stray invalid byte still advances (and is encoded alone).
    const std::size_t n = std::max<std::size_t>(utf8_sequence_length(text, i), 1);
    const std::string_view character = text.substr(i, n);
    std::string q;
    if (use_q) {
      append_q(q, character);
    }
    if (!payload.empty() && overhead + payload_length(n, q.size()) > limit) {
      flush();
    }
    if (use_q) {
      payload += q;
    } else {
      payload += character;
    }
    i += n;
  }
  if (!payload.empty()) {
    flush();
  }
  return words;
}

// Writes one header field, folding before a token that would pass column 76. Folding only ever
// happens where a space separates tokens, so unfolding (removing CRLF) restores the value exactly.
class HeaderWriter {
 public:
  explicit HeaderWriter(std::string& out) : out_(out) {}

  void begin(std::string_view name) {
    out_ += name;
    out_ += ':';
    column_ = name.size() + 1;
  }
  void token(std::string_view text) {
    if (column_ > 0 && column_ + 1 + text.size() > kMaxLine) {
      out_ += "\r\n";
      column_ = 0;
    }
    out_ += ' ';
    out_ += text;
    column_ += 1 + text.size();
  }
  void encoded(std::string_view text) {
    const std::size_t used = column_ + 1;
    for (const std::string& word : encoded_words(text, used < kMaxLine ? kMaxLine - used : 0)) {
      token(word);
    }
  }
  void end() { out_ += "\r\n"; }

 private:
  std::string& out_;
  std::size_t column_ = 0;
};

// Plain printable ASCII words separated by single spaces, each short enough for a line of its own.
// Anything else (non-ASCII, tabs, runs of spaces, an "=?" that a reader would try to decode) is
// sent as encoded-words instead.
std::optional<std::vector<std::string_view>> plain_words(std::string_view text, bool atoms_only) {
  std::vector<std::string_view> words;
  if (text.find("=?") != std::string_view::npos) {
    return std::nullopt;
  }
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t end = std::min(text.find(' ', start), text.size());
    const std::string_view word = text.substr(start, end - start);
    if (word.empty() || word.size() >= kMaxLine) {
      return std::nullopt;
    }
    for (char c : word) {
      const unsigned char u = byte(c);
      if (u <= 0x20 || u >= 0x7F || (atoms_only && !is_atext(c))) {
        return std::nullopt;
      }
    }
    words.push_back(word);
    start = end + 1;
  }
  return words;
}

void write_unstructured(HeaderWriter& writer, std::string_view text) {
  if (text.empty()) {
    return;
  }
  if (const auto words = plain_words(text, false)) {
    for (std::string_view word : *words) {
      writer.token(word);
    }
  } else {
    writer.encoded(text);
  }
}

// RFC 5322 quoted-string for a printable ASCII display name that is not a run of atoms.
std::optional<std::string> quoted_phrase(std::string_view text) {
  if (text.find("=?") != std::string_view::npos) {
    return std::nullopt;
  }
  std::string out = "\"";
  for (char c : text) {
    const unsigned char u = byte(c);
    if (u < 0x20 || u >= 0x7F) {
      return std::nullopt;
    }
    if (c == '"' || c == '\\') {
      out += '\\';
    }
    out += c;
  }
  out += '"';
  if (out.size() >= kMaxLine) {
    return std::nullopt;
  }
  return out;
}

std::optional<MailError> write_mailbox(HeaderWriter& writer, std::string_view field,
                                       const Mailbox& mailbox) {
  if (auto error = check_header_text(field, mailbox.display_name)) {
    return error;
  }
  if (auto error = check_header_text(field, mailbox.address)) {
    return error;
  }
  if (!is_plain_at_form(mailbox.address, kMaxAddressLength)) {
    return MailError{MailErrc::invalid_address, std::string(field)};
  }
  writer.begin(field);
  if (mailbox.display_name.empty()) {
    writer.token(mailbox.address);
    writer.end();
    return std::nullopt;
  }
  if (const auto atoms = plain_words(mailbox.display_name, true)) {
    for (std::string_view atom : *atoms) {
      writer.token(atom);
    }
  } else if (const auto quoted = quoted_phrase(mailbox.display_name)) {
    writer.token(*quoted);
  } else {
    writer.encoded(mailbox.display_name);
  }
  writer.token("<" + mailbox.address + ">");
  writer.end();
  return std::nullopt;
}

std::optional<MailError> check_message_id(std::string_view field, std::string_view id) {
  if (auto error = check_header_text(field, id)) {
    return error;
  }
  if (!is_plain_at_form(id, kMaxIdLength)) {
    return MailError{MailErrc::invalid_message_id, std::string(field)};
  }
  return std::nullopt;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) {
      return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    };
    if (lower(a[i]) != lower(b[i])) {
      return false;
    }
  }
  return true;
}

// Headers that render_mime writes itself, or that would add an originator, a recipient or a MIME
// structure: an extra header may never supply them.
bool is_reserved_header(std::string_view name) noexcept {
  constexpr std::array<std::string_view, 15> kReserved = {
      "Date",       "From",         "Sender",         "Reply-To",    "To",
      "Cc",         "Bcc",          "Subject",        "Message-ID",  "In-Reply-To",
      "References", "MIME-Version", "Auto-Submitted", "Return-Path", "Received"};
  for (std::string_view reserved : kReserved) {
    if (iequals(name, reserved)) {
      return true;
    }
  }
  constexpr std::array<std::string_view, 2> kReservedPrefixes = {"Content-", "Resent-"};
  for (std::string_view prefix : kReservedPrefixes) {
    if (name.size() >= prefix.size() && iequals(name.substr(0, prefix.size()), prefix)) {
      return true;
    }
  }
  return false;
}

std::optional<MailError> check_extra_header(const MailHeader& header) {
  // RFC 5322 field-name: printable ASCII except ':'. Its own text cannot name it in the error.
  if (auto error = check_header_text("extra header name", header.name)) {
    return error;
  }
  if (header.name.empty() || header.name.size() > kMaxLine / 2) {
    return MailError{MailErrc::invalid_header_name, "extra header name"};
  }
  for (char c : header.name) {
    const unsigned char u = byte(c);
    if (u <= 0x20 || u >= 0x7F || c == ':') {
      return MailError{MailErrc::invalid_header_name, "extra header name"};
    }
  }
  if (is_reserved_header(header.name)) {
    return MailError{MailErrc::reserved_header_name, header.name};
  }
  return check_header_text(header.name, header.value);
}

void append_decimal(std::string& out, unsigned value, std::size_t width) {
  std::array<char, 10> digits{};
  std::size_t n = 0;
  do {
    digits[n++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value > 0 && n < digits.size());
  for (std::size_t pad = n; pad < width; ++pad) {
    out += '0';
  }
  while (n > 0) {
    out += digits[--n];
  }
}

std::string random_hex(std::size_t words32) {
  std::random_device device;
  std::string out;
  for (std::size_t i = 0; i < words32; ++i) {
    const std::uint32_t v = device();
    for (int shift = 28; shift >= 0; shift -= 4) {
      out += kLowerHex[(v >> shift) & 0x0F];
    }
  }
  return out;
}

// RFC 2046 5.1.1: 1-70 characters from bchars, not ending in a space.
[[maybe_unused]] bool is_valid_boundary(std::string_view boundary) noexcept {
  if (boundary.empty() || boundary.size() > 70 || boundary.back() == ' ') {
    return false;
  }
  for (char c : boundary) {
    const unsigned char u = byte(c);
    const bool alnum = (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9');
    if (!alnum && std::string_view("'()+_,-./:=? ").find(c) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

void write_text_part_headers(std::string& out, std::string_view subtype) {
  out += "Content-Type: text/";
  out += subtype;
  out += "; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n";
}

}  // namespace

std::string_view to_string(MailErrc code) noexcept {
  switch (code) {
    case MailErrc::forbidden_character:
      return "forbidden_character";
    case MailErrc::invalid_utf8:
      return "invalid_utf8";
    case MailErrc::invalid_address:
      return "invalid_address";
    case MailErrc::invalid_message_id:
      return "invalid_message_id";
    case MailErrc::invalid_header_name:
      return "invalid_header_name";
    case MailErrc::reserved_header_name:
      return "reserved_header_name";
    case MailErrc::boundary_in_body:
      return "boundary_in_body";
  }
  return "unknown";
}

std::string encode_header_words(std::string_view text, std::size_t column) {
  std::string out;
  for (const std::string& word : encoded_words(text, column < kMaxLine ? kMaxLine - column : 0)) {
    if (!out.empty()) {
      out += "\r\n ";
    }
    out += word;
  }
  return out;
}

std::string quoted_printable(std::string_view text) {
  // RFC 2045 6.7: at most 76 characters per line, so 75 plus the '=' of a soft line break.
  constexpr std::size_t kMaxContent = kMaxLine - 1;
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  std::size_t column = 0;
  std::string piece;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\r' || c == '\n') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
        ++i;
      }
      out += "\r\n";
      column = 0;
      continue;
    }
    const bool line_ends_here = i + 1 == text.size() || text[i + 1] == '\r' || text[i + 1] == '\n';
    const unsigned char u = byte(c);
    // Rules 3 and 2: white space is literal unless it would end a line, printable ASCII other
    // than '=' is literal, and everything else is =XX.
    const bool literal =
        ((c == ' ' || c == '\t') && !line_ends_here) || (u > 0x20 && u < 0x7F && c != '=');
    piece.clear();
    if (literal) {
      piece += c;
    } else {
      append_hex_escape(piece, u);
    }
    if (column + piece.size() > kMaxContent) {
      out += "=\r\n";
      column = 0;
    }
    // At a line start, a lone '.' could end an SMTP DATA block at a relay that mishandles
    // dot-stuffing, and "From " is mangled by mbox stores: encode their first character.
    if (column == 0 && literal && (c == '.' || (c == 'F' && text.substr(i, 5) == "From "))) {
      piece.clear();
      append_hex_escape(piece, u);
    }
    out += piece;
    column += piece.size();
  }
  return out;
}

std::string rfc5322_date(clinical::UnixSeconds t) {
  using namespace std::chrono;
  constexpr std::array<std::string_view, 7> kDays = {"Sun", "Mon", "Tue", "Wed",
                                                     "Thu", "Fri", "Sat"};
  constexpr std::array<std::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const sys_seconds time{seconds{t}};
  const sys_days day = floor<days>(time);
  const year_month_day date{day};
  const hh_mm_ss<seconds> clock{time - day};
  std::string out;
  out += kDays[weekday{day}.c_encoding()];
  out += ", ";
  append_decimal(out, static_cast<unsigned>(date.day()), 2);
  out += ' ';
  out += kMonths[static_cast<unsigned>(date.month()) - 1];
  out += ' ';
  append_decimal(out, static_cast<unsigned>(static_cast<int>(date.year())), 4);
  out += ' ';
  append_decimal(out, static_cast<unsigned>(clock.hours().count()), 2);
  out += ':';
  append_decimal(out, static_cast<unsigned>(clock.minutes().count()), 2);
  out += ':';
  append_decimal(out, static_cast<unsigned>(clock.seconds().count()), 2);
  out += " +0000";
  return out;
}

std::string generate_message_id(std::string_view domain) {
  std::string id = random_hex(4);
  id += '@';
  id += domain;
  return id;
}

std::string_view address_domain(std::string_view address) noexcept {
  const std::size_t at = address.rfind('@');
  if (at == std::string_view::npos || at + 1 == address.size()) {
    return "localhost";
  }
  return address.substr(at + 1);
}

parsers::Expected<std::string, MailError> render_mime(const MailMessage& message) {
  // "=_" never occurs in quoted-printable output ('=' is always followed by a hex digit or a line
  // end), so a boundary starting with it cannot collide with a body. The random part makes it
  // unique; the loop is a guard that never turns in practice.
  for (;;) {
    auto rendered = render_mime(message, "=_lw_" + random_hex(4));
    if (rendered || rendered.error().code != MailErrc::boundary_in_body) {
      return rendered;
    }
  }
}

parsers::Expected<std::string, MailError> render_mime(const MailMessage& message,
                                                      std::string_view boundary) {
  assert(is_valid_boundary(boundary));
  std::string out;
  HeaderWriter writer(out);

  writer.begin("Date");
  writer.token(rfc5322_date(message.date));
  writer.end();
  if (auto error = write_mailbox(writer, "From", message.from)) {
    return parsers::unexpected(std::move(*error));
  }
  if (auto error = write_mailbox(writer, "To", message.to)) {
    return parsers::unexpected(std::move(*error));
  }
  if (auto error = check_header_text("Subject", message.subject)) {
    return parsers::unexpected(std::move(*error));
  }
  writer.begin("Subject");
  write_unstructured(writer, message.subject);
  writer.end();

  if (auto error = check_message_id("Message-ID", message.message_id)) {
    return parsers::unexpected(std::move(*error));
  }
  writer.begin("Message-ID");
  writer.token("<" + message.message_id + ">");
  writer.end();
  if (!message.references.empty()) {
    for (const std::string& id : message.references) {
      if (auto error = check_message_id("References", id)) {
        return parsers::unexpected(std::move(*error));
      }
    }
    // RFC 5322 3.6.4: In-Reply-To names the parent; References lists the thread, oldest first.
    writer.begin("In-Reply-To");
    writer.token("<" + message.references.back() + ">");
    writer.end();
    writer.begin("References");
    for (const std::string& id : message.references) {
      writer.token("<" + id + ">");
    }
    writer.end();
  }
  // RFC 3834: marks the mail as machine-generated, so auto-responders stay quiet.
  out += "Auto-Submitted: auto-generated\r\n";
  for (const MailHeader& header : message.extra_headers) {
    if (auto error = check_extra_header(header)) {
      return parsers::unexpected(std::move(*error));
    }
    writer.begin(header.name);
    write_unstructured(writer, header.value);
    writer.end();
  }
  out += "MIME-Version: 1.0\r\n";

  if (!is_valid_utf8(message.text_body)) {
    return parsers::unexpected(MailError{MailErrc::invalid_utf8, "text body"});
  }
  if (!is_valid_utf8(message.html_body)) {
    return parsers::unexpected(MailError{MailErrc::invalid_utf8, "html body"});
  }
  const std::string text = quoted_printable(message.text_body);
  if (message.html_body.empty()) {
    write_text_part_headers(out, "plain");
    out += "\r\n";
    out += text;
    out += "\r\n";
    return out;
  }
  const std::string html = quoted_printable(message.html_body);
  const std::string delimiter = "--" + std::string(boundary);
  if (text.find(delimiter) != std::string::npos) {
    return parsers::unexpected(MailError{MailErrc::boundary_in_body, "text body"});
  }
  if (html.find(delimiter) != std::string::npos) {
    return parsers::unexpected(MailError{MailErrc::boundary_in_body, "html body"});
  }
  writer.begin("Content-Type");
  writer.token("multipart/alternative;");
  writer.token("boundary=\"" + std::string(boundary) + "\"");
  writer.end();
  out += "\r\n";
  out += delimiter + "\r\n";
  write_text_part_headers(out, "plain");
  out += "\r\n";
  out += text;
  out += "\r\n" + delimiter + "\r\n";
  write_text_part_headers(out, "html");
  out += "\r\n";
  out += html;
  out += "\r\n" + delimiter + "--\r\n";
  return out;
}

}  // namespace labwatch::daemon
