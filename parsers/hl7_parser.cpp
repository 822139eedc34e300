// SPDX-License-Identifier: Apache-2.0
// HL7 v2 message tokenizing (one pass over the text), format sniffing, TS/DTM times, whole files.
#include "parsers/hl7_parser.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <string>
#include <utility>

#include "parsers/hl7_scan.hpp"
#include "parsers/hl7_text.hpp"
#include "parsers/text.hpp"

namespace labwatch::parsers {

// Fills an Hl7Message in a single forward pass. Only three bytes end a field or a segment (the
// field separator, CR, LF). The scan records the position of each, a structural index of four
// bytes per field: fields are not materialized, Hl7Segment computes them from the index. The same
// pass notes which segments hold escape characters and whether 8-bit bytes occur, so that decoding
// can return most values untouched.
class Hl7Tokenizer {
 public:
  Hl7Tokenizer(std::string_view text, Hl7Message& out) noexcept : text_(text), out_(out) {}

  std::optional<ParseError> run() {
    out_.text_ = text_;
    out_.encoding_ = Hl7Encoding{};
    out_.segments_.clear();
    out_.sep_count_ = 0;
    if (out_.seps_.empty()) {
      out_.seps_.resize(1024);  // a typical ORU at once instead of ten doublings
      out_.segments_.reserve(64);
    }
    if (text_.size() > kMaxMessageBytes) {
      fail(RefusalReason::input_too_large, 0, -1, "message larger than the message size limit");
      return std::move(error_);
    }
    if (!read_msh() || !scan() || !finish()) {
      return std::move(error_);
    }
    Hl7Message& m = out_;
    m.encoding_.has_escape = any_escape_ && esc_ != '\0';
    m.encoding_.has_8bit = any_8bit_;
    // MSH-18 repeats; its first repetition is the character set of the message.
    const Hl7Field charset = Hl7Segment(m, 0).field(18).repetition(1);
    m.encoding_.charset = hl7_charset_from_name(charset.raw());
    m.plain_ = m.encoding_;
    m.plain_.has_escape = false;
    return std::nullopt;
  }

 private:
  // MSH, MSH-1 (the field separator) and MSH-2 (the encoding characters), validated.
  bool read_msh() {
    std::size_t pos = 0;
    if (text_.starts_with(hl7_text::kUtf8Bom)) {
      pos = hl7_text::kUtf8Bom.size();
    }
    while (pos < text_.size() && (text_[pos] == '\r' || text_[pos] == '\n')) {
      if (!(text_[pos] == '\n' && pos > 0 && text_[pos - 1] == '\r')) {
        ++line_;
      }
      ++pos;
    }
    seg_start_ = pos;
    if (text_.substr(pos, 3) != "MSH") {
      fail(RefusalReason::missing_msh, pos, -1, "a message must start with an MSH segment");
      return false;
    }
    if (text_.size() < pos + 4 || !hl7_text::is_delimiter_char(text_[pos + 3])) {
      fail(RefusalReason::bad_delimiters, pos + 3, 1, "MSH-1 must be one punctuation character");
      return false;
    }
    const char fs = text_[pos + 3];
    // MSH-2 holds component, repetition, escape, subcomponent (and from v2.7 truncation) chars;
    // only the component separator is mandatory.
    const std::size_t enc_start = pos + 4;
    std::size_t enc_end = enc_start;
    while (enc_end < text_.size() && enc_end - enc_start <= 5 && text_[enc_end] != fs &&
           text_[enc_end] != '\r' && text_[enc_end] != '\n') {
      ++enc_end;
    }
    const std::string_view enc = text_.substr(enc_start, enc_end - enc_start);
    bool valid = !enc.empty() && enc.size() <= 5;
    for (std::size_t i = 0; valid && i < enc.size(); ++i) {
      valid = hl7_text::is_delimiter_char(enc[i]) && enc[i] != fs &&
              enc.find(enc[i], i + 1) == std::string_view::npos;
    }
    if (!valid) {
      fail(RefusalReason::bad_delimiters, enc_start, 2,
           "MSH-2 must be 1 to 5 distinct punctuation characters other than MSH-1");
      return false;
    }
    Hl7Delimiters& d = out_.encoding_.delimiters;
    d.field = fs;
    d.component = enc[0];
    d.repetition = enc.size() > 1 ? enc[1] : '\0';
    d.escape = enc.size() > 2 ? enc[2] : '\0';
    d.subcomponent = enc.size() > 3 ? enc[3] : '\0';
    d.truncation = enc.size() > 4 ? enc[4] : '\0';
    fs_ = fs;
    esc_ = d.escape;
    msh2_end_ = enc_end;
    return true;
  }

  // The structural index comes from hl7_scan (AVX2 or SSE2, 64 bytes per step): the positions of
  // every field separator, CR and LF, and for each CR/LF its index among them. Segment ends, about
  // one per 16 fields, are then handled here: segment id, limits, line count. MSH-1 is the first
  // separator and MSH-2 holds none (read_msh checked), so the scan starts after MSH-2; that also
  // keeps MSH-2's own escape character out of the escape flags.
  bool scan() {
    out_.seps_[0] = static_cast<std::uint32_t>(seg_start_ + 3);  // MSH's stand-in entry
    out_.seps_[1] = out_.seps_[0];
    std::array<std::uint32_t, 512> ends;
    hl7_scan::StructureScan s;
    s.text = text_;
    s.field = fs_;
    s.escape = esc_;
    s.pos = msh2_end_;
    s.seps = out_.seps_.data();
    s.sep_count = 2;
    s.sep_capacity = std::min(out_.seps_.size(), kMaxFieldsPerMessage + hl7_scan::kScanBlock);
    s.ends = ends.data();
    s.end_capacity = ends.size();
    while (true) {
      const bool done = hl7_scan::scan_structure(s);
      out_.sep_count_ = s.sep_count;
      for (std::size_t k = 0; k < s.end_count; ++k) {
        const std::uint32_t index = s.ends[k] & ~hl7_scan::kEscapedEnd;
        if (!end_segment(index, s.seps[index], (s.ends[k] & hl7_scan::kEscapedEnd) != 0)) {
          return false;
        }
      }
      s.end_count = 0;
      if (done || s.sep_capacity - s.sep_count < hl7_scan::kScanBlock) {
        if (!grow(s.sep_count)) {
          return false;
        }
        s.seps = out_.seps_.data();
        s.sep_capacity = std::min(out_.seps_.size(), kMaxFieldsPerMessage + hl7_scan::kScanBlock);
      }
      if (done) {
        break;
      }
    }
    escape_pending_ = s.escape_pending;
    any_8bit_ = s.any_8bit;
    return true;
  }

  // Room for `count` positions and a scan block more. The limit on fields is checked here: a
  // scan stops with more than kMaxFieldsPerMessage positions only once storage is at its limit.
  bool grow(std::size_t count) {
    if (count > kMaxFieldsPerMessage) {
      fail(RefusalReason::too_many_fields, seg_start_, -1,
           "more fields than the per-message limit");
      return false;
    }
    const std::size_t needed = count + hl7_scan::kScanBlock;
    if (out_.seps_.size() < needed) {
      out_.seps_.resize(std::max(
          needed, std::min(2 * out_.seps_.size(), kMaxFieldsPerMessage + hl7_scan::kScanBlock)));
    }
    return true;
  }

  // The segment from seg_start_ ends at `at` (a CR, an LF, or the end of the text), the separator
  // with index `index` in seps_: its separators are seps_[seg_first_ .. index). `escaped`: the
  // escape character occurs in it. Inlined into the loop over segment ends: a call per segment
  // cost a tenth of the tokenizing.
  [[gnu::always_inline]] bool end_segment(std::size_t index, std::size_t at, bool escaped) {
    const std::uint32_t* seps = out_.seps_.data();
    const std::size_t fields = index - seg_first_;
    const std::size_t id_end = fields == 0 ? at : seps[seg_first_];
    const std::string_view id = text_.substr(seg_start_, id_end - seg_start_);
    if (fields > 0 || !hl7_text::is_blank_line(id)) {
      if (!hl7_text::is_segment_id(id)) {
        fail(RefusalReason::bad_segment_id, seg_start_, 0,
             "a segment must start with a three-character id (upper-case letters and digits)");
        return false;
      }
      if (out_.segments_.size() >= kMaxSegmentsPerMessage) {
        fail(RefusalReason::too_many_segments, seg_start_, -1,
             "more segments than the per-message limit");
        return false;
      }
      if (at - seg_start_ > kMaxFieldBytes) {  // only a segment this long can hold such a field
        // MSH's field k ends at its separator k as any other's does, from MSH-2 (its stand-in).
        for (std::size_t k = out_.segments_.empty() ? 2 : 1; k <= fields; ++k) {
          const std::size_t start = seps[seg_first_ + k - 1] + std::size_t{1};
          const std::size_t end = k < fields ? seps[seg_first_ + k] : at;
          if (end - start > kMaxFieldBytes) {
            fail(RefusalReason::field_too_long, start, static_cast<int>(k),
                 "a field is longer than the field size limit");
            return false;
          }
        }
      }
      out_.segments_.push_back({static_cast<std::uint32_t>(seg_start_),
                                static_cast<std::uint32_t>(seg_first_),
                                static_cast<std::uint32_t>(fields), line_, escaped});
      any_escape_ = any_escape_ || escaped;
    }
    // A line ends at CR, LF or CR LF: the LF of a CR LF pair starts no new line.
    if (at < text_.size() && !(text_[at] == '\n' && at > 0 && text_[at - 1] == '\r')) {
      ++line_;
    }
    seg_start_ = at + 1;
    seg_first_ = index + 1;
    return true;
  }

  // A last segment without a terminator ends at the end of the text, which gets an entry in seps_.
  bool finish() {
    const std::size_t n = text_.size();
    if (seg_start_ >= n && seg_first_ == out_.sep_count_) {
      return true;
    }
    if (!grow(out_.sep_count_ + 1)) {
      return false;
    }
    out_.seps_[out_.sep_count_] = static_cast<std::uint32_t>(n);
    return end_segment(out_.sep_count_++, n, escape_pending_);
  }

  // Cold path: records the error; the segment is the one being read.
  void fail(RefusalReason code, std::size_t offset, int field, const char* detail) {
    ParseError e;
    e.code = code;
    e.offset = offset;
    e.segment = static_cast<int>(out_.segments_.size()) + 1;
    e.field = field;
    e.line = line_ + 1;
    e.detail = detail;
    error_ = std::move(e);
  }

  std::string_view text_;
  Hl7Message& out_;
  std::optional<ParseError> error_;
  char fs_ = '|';
  char esc_ = '\0';
  bool any_escape_ = false;
  bool escape_pending_ = false;  // the last, unterminated segment holds an escape character
  bool any_8bit_ = false;
  std::size_t msh2_end_ = 0;   // one past MSH-2
  std::size_t seg_start_ = 0;  // first byte of the segment being read
  std::size_t seg_first_ = 0;  // index in seps_ of its first separator
  std::int32_t line_ = 0;
};

std::optional<ParseError> parse_hl7_message(std::string_view text, Hl7Message& out) {
  return Hl7Tokenizer(text, out).run();
}

Expected<Hl7Message, ParseError> parse_hl7_message(std::string_view text) {
  Hl7Message message;
  if (auto error = parse_hl7_message(text, message)) {
    return unexpected(std::move(*error));
  }
  return message;
}

bool looks_like_hl7(std::string_view head) noexcept {
  if (head.starts_with(hl7_text::kUtf8Bom)) {
    head.remove_prefix(hl7_text::kUtf8Bom.size());
  }
  std::size_t i = 0;
  while (i < head.size() &&
         (head[i] == '\r' || head[i] == '\n' || head[i] == hl7_text::kMllpStart ||
          hl7_text::has_class(head[i], hl7_text::kBlank))) {
    ++i;
  }
  const std::string_view id = head.substr(i, 3);
  return (id == "MSH" || id == "FHS" || id == "BHS") && head.size() > i + 3 &&
         hl7_text::is_delimiter_char(head[i + 3]);
}

namespace {

// True when the eight bytes at p are all ASCII digits: each byte is 0x30-0x39, i.e. its high nibble
// is 3 and adding 6 does not carry out of the low nibble.
inline bool all_digits8(const char* p) noexcept {
  std::uint64_t w = 0;
  std::memcpy(&w, p, sizeof w);
  constexpr std::uint64_t kHigh = 0xF0F0F0F0F0F0F0F0u;
  constexpr std::uint64_t kThrees = 0x3030303030303030u;
  return (w & kHigh) == kThrees && ((w + 0x0606060606060606u) & kHigh) == kThrees;
}

// The same for four bytes.
inline bool all_digits4(const char* p) noexcept {
  std::uint32_t w = 0;
  std::memcpy(&w, p, sizeof w);
  constexpr std::uint32_t kHigh = 0xF0F0F0F0u;
  constexpr std::uint32_t kThrees = 0x30303030u;
  return (w & kHigh) == kThrees && ((w + 0x06060606u) & kHigh) == kThrees;
}

// Eight digits (checked) as four two-digit values, one in each even byte: with each digit's value
// in its byte, w * 10 + (w >> 8) puts d[2k] * 10 + d[2k + 1] in byte 2k, and no byte carries.
inline std::uint64_t digit_pairs(const char* p) noexcept {
  std::uint64_t w = 0;
  if constexpr (std::endian::native == std::endian::little) {
    std::memcpy(&w, p, sizeof w);
  } else {
    for (int k = 7; k >= 0; --k) {
      w = w << 8 | static_cast<unsigned char>(p[k]);
    }
  }
  w -= 0x3030303030303030u;
  return w * 10 + (w >> 8);
}

// The k-th two-digit value (0-3) of digit_pairs.
constexpr int pair_value(std::uint64_t pairs, unsigned k) noexcept {
  return static_cast<int>((pairs >> (16 * k)) & 0xFFu);
}

// The value of two characters already checked to be digits (TS/DTM parts are fixed-width).
constexpr int two_digits(const char* p) noexcept { return (p[0] - '0') * 10 + (p[1] - '0'); }

}  // namespace

std::optional<DateTime> parse_hl7_timestamp(std::string_view text) noexcept {
  if (!text.empty() && (text.front() == ' ' || text.back() == ' ')) {
    while (!text.empty() && text.front() == ' ') {
      text.remove_prefix(1);
    }
    while (!text.empty() && text.back() == ' ') {
      text.remove_suffix(1);
    }
  }
  using P = DateTime::Precision;
  DateTime t;
  const char* d = text.data();
  std::size_t digits = 0;
  if (text.size() >= 14 && all_digits8(d) && all_digits8(d + 6) &&
      (text.size() == 14 || !is_digit(d[14]))) {
    // The usual YYYYMMDDHHMMSS: two overlapping eight-digit reads give all six parts.
    const std::uint64_t date = digit_pairs(d);      // YYYYMMDD
    const std::uint64_t time = digit_pairs(d + 6);  // DDHHMMSS
    t.year = pair_value(date, 0) * 100 + pair_value(date, 1);
    t.month = pair_value(date, 2);
    t.day = pair_value(date, 3);
    t.hour = pair_value(time, 1);
    t.minute = pair_value(time, 2);
    t.second = pair_value(time, 3);
    t.precision = P::second;
    digits = 14;
  } else {
    while (digits < text.size() && is_digit(text[digits])) {
      ++digits;
    }
    switch (digits) {
      case 4:
        t.precision = P::year;
        break;
      case 6:
        t.precision = P::month;
        break;
      case 8:
        t.precision = P::day;
        break;
      case 10:
        t.precision = P::hour;
        break;
      case 12:
        t.precision = P::minute;
        break;
      default:
        return std::nullopt;
    }
    // The first `digits` bytes are digits; each part is read when the run reaches it.
    t.year = two_digits(d) * 100 + two_digits(d + 2);
    t.month = digits >= 6 ? two_digits(d + 4) : 1;
    t.day = digits >= 8 ? two_digits(d + 6) : 1;
    t.hour = digits >= 10 ? two_digits(d + 8) : 0;
    t.minute = digits >= 12 ? two_digits(d + 10) : 0;
  }
  if (t.month < 1 || t.month > 12 || t.day < 1 ||
      (t.day > 28 && t.day > days_in_month(t.year, t.month)) || t.hour > 23 || t.minute > 59 ||
      t.second > 60) {
    return std::nullopt;
  }
  std::size_t pos = digits;
  // Fractional seconds follow the seconds only. The standard allows 1-4 digits; senders write up
  // to 9 (nanoseconds), which are read as well.
  if (pos < text.size() && text[pos] == '.') {
    if (digits != 14) {
      return std::nullopt;
    }
    ++pos;
    std::size_t frac = 0;
    int nanos = 0;
    while (pos < text.size() && is_digit(text[pos])) {
      if (frac == 9) {
        return std::nullopt;
      }
      nanos = nanos * 10 + (text[pos] - '0');
      ++frac;
      ++pos;
    }
    if (frac == 0) {
      return std::nullopt;
    }
    for (std::size_t k = frac; k < 9; ++k) {
      nanos *= 10;
    }
    t.nanosecond = nanos;
    t.precision = P::fraction;
  }
  // +/-ZZZZ: the offset east of UTC, after any precision.
  if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    const int sign = text[pos] == '-' ? -1 : 1;
    if (text.size() != pos + 5 || !all_digits4(text.data() + pos + 1)) {
      return std::nullopt;
    }
    const int hh = two_digits(text.data() + pos + 1);
    const int mm = two_digits(text.data() + pos + 3);
    if (hh > 14 || mm > 59) {
      return std::nullopt;
    }
    t.has_offset = true;
    t.offset_minutes = sign * (hh * 60 + mm);
    pos = text.size();
  }
  if (pos != text.size()) {
    return std::nullopt;
  }
  return t;
}

Expected<LabReport, ParseError> parse_raw_message(const RawMessage& raw, Hl7Message& reuse) {
  if (auto error = parse_hl7_message(raw.bytes, reuse)) {
    error->message = raw.index;
    error->offset += raw.offset;
    error->line = error->line < 0 ? -1 : error->line + raw.first_line - 1;
    if (raw.truncated) {
      // The cut explains the malformed rest better than whatever the tokenizer tripped on.
      error->code = RefusalReason::truncated_message;
      error->offset = raw.offset + raw.bytes.size();
      error->detail = "the input ends inside this message";
    }
    return unexpected(std::move(*error));
  }
  return to_lab_report(reuse, raw);
}

Hl7FileResult parse_hl7_file(std::string_view text) {
  Hl7FileResult result;
  const auto file_error = [&result](RefusalReason code, const char* detail) {
    ParseError e;
    e.code = code;
    e.detail = detail;
    result.errors.push_back(std::move(e));
  };
  if (text.size() > kMaxHl7FileBytes) {
    file_error(RefusalReason::input_too_large, "file larger than the HL7 file size limit");
    return result;
  }
  if (!looks_like_hl7(text)) {
    std::string_view rest = text;
    if (rest.starts_with(hl7_text::kUtf8Bom)) {
      rest.remove_prefix(hl7_text::kUtf8Bom.size());
    }
    if (rest.find_first_not_of(" \t\r\n") == std::string_view::npos) {
      file_error(RefusalReason::empty_file, "the file holds no data");
    } else {
      file_error(RefusalReason::unrecognized_format,
                 "the file does not start with MSH, FHS or BHS");
    }
    return result;
  }
  Hl7Splitter splitter(text);
  Hl7Message message;
  while (const auto raw = splitter.next()) {
    auto report = parse_raw_message(*raw, message);
    if (!report) {
      result.errors.push_back(std::move(report.error()));
      continue;
    }
    result.reports.push_back(std::move(report.value()));
    result.raw_messages.emplace_back(raw->bytes);
  }
  return result;
}

}  // namespace labwatch::parsers
