// SPDX-License-Identifier: Apache-2.0
// Hl7Message: one HL7 v2 message as segment/field views into its text, decoded on access.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "parsers/text_charset.hpp"

namespace labwatch::parsers {

// MSH-1 and MSH-2: field, component, repetition, escape, subcomponent (and, from v2.7, truncation)
// characters. An optional character the message does not declare is '\0' and is never matched.
struct Hl7Delimiters {
  char field = '|';
  char component = '^';
  char repetition = '~';
  char escape = '\\';
  char subcomponent = '&';
  char truncation = '\0';
};

// MSH-18, the character set of the message's text (HL7 table 0211).
enum class Hl7Charset : std::uint8_t {
  unspecified,  // MSH-18 empty: ASCII by the standard, but senders put UTF-8 or Latin-1 there
  ascii,        // "ASCII", "ISO IR6"
  utf8,         // "UNICODE UTF-8", "ISO IR192", "UTF-8", "UNICODE"
  latin1,       // "8859/1", "ISO IR100", "ISO-8859-1": transcoded to UTF-8 on decoding
  iso8859_2,    // "8859/2", "ISO IR101", and so on: each ISO 8859 part transcoded by its table
  iso8859_3,    // "8859/3", "ISO IR109"
  iso8859_4,    // "8859/4", "ISO IR110"
  iso8859_5,    // "8859/5", "ISO IR144" (Cyrillic)
  iso8859_6,    // "8859/6", "ISO IR127" (Arabic)
  iso8859_7,    // "8859/7", "ISO IR126" (Greek)
  iso8859_8,    // "8859/8", "ISO IR138" (Hebrew)
  iso8859_9,    // "8859/9", "ISO IR148" (Turkish)
  iso8859_15,   // "8859/15", "ISO IR203" (Latin-9)
  unknown,      // a label outside table 0211: read like unspecified, and the report warns
  unsupported,  // a table 0211 set labwatch cannot transcode (JIS, GB 18030, KS X 1001, UTF-16)
};

// Everything decoding needs to know about the message a piece of text came from.
struct Hl7Encoding {
  Hl7Delimiters delimiters;
  Hl7Charset charset = Hl7Charset::unspecified;
  bool has_escape = false;  // the escape character occurs after MSH-2 somewhere in the message
  bool has_8bit = false;    // a byte >= 0x80 occurs somewhere in the message
};

// Maps an MSH-18 value to a character set; case, surrounding spaces and the spelling of the
// separators ("8859/1", "ISO-8859-1", "ISO 8859-1", "ISO_IR 100") are ignored.
Hl7Charset hl7_charset_from_name(std::string_view name) noexcept;

// The single-byte set an MSH-18 charset declares (latin1, iso8859_*), else nullopt.
std::optional<ByteCharset> byte_charset_of(Hl7Charset charset) noexcept;

// The standard delimiters (|^~\&), for views made outside any message.
inline constexpr Hl7Encoding kDefaultHl7Encoding{};

// A view of a field, or of one repetition, component or subcomponent of it. Narrowing follows the
// HL7 nesting (repetition > component > subcomponent): component(n) of a whole field reads its
// first repetition, subcomponent(n) of a field or repetition reads its first component. Numbers are
// 1-based; an absent part is an empty view. Nothing is copied until decode(). A view refers to the
// text and to the Hl7Encoding it was made with: both must outlive it.
class Hl7Field {
 public:
  enum class Level : std::uint8_t { field, repetition, component, subcomponent };

  Hl7Field() = default;
  Hl7Field(std::string_view raw, const Hl7Encoding& encoding, Level level = Level::field) noexcept
      : raw_(raw), encoding_(&encoding), level_(level) {}

  // The text as sent: escape sequences and delimiters untouched.
  [[nodiscard]] std::string_view raw() const noexcept { return raw_; }
  [[nodiscard]] bool empty() const noexcept { return raw_.empty(); }
  [[nodiscard]] Level level() const noexcept { return level_; }

  [[nodiscard]] std::size_t repetition_count() const noexcept;  // 0 for an empty field
  [[nodiscard]] Hl7Field repetition(std::size_t n) const noexcept;
  [[nodiscard]] Hl7Field component(std::size_t n) const noexcept;
  [[nodiscard]] Hl7Field subcomponent(std::size_t n) const noexcept;

  // Splits this view one level down (a field into repetitions, a repetition into components, a
  // component into subcomponents) in one pass. Fills at most out.size() parts and returns how many
  // parts there are (which may exceed out.size()).
  std::size_t split(std::span<Hl7Field> out) const noexcept;

  // The text with escape sequences decoded and converted to UTF-8 (MSH-18). Returns raw() itself
  // when nothing needs decoding (no allocation), else a view of `scratch`, which it overwrites.
  // Delimiters inside the view are kept as they are. The HL7 null `""` decodes to "".
  std::string_view decode(std::string& scratch) const;
  [[nodiscard]] std::string decoded() const;

 private:
  std::string_view decode_slow(std::string& scratch) const;

  std::string_view raw_;
  const Hl7Encoding* encoding_ = &kDefaultHl7Encoding;
  Level level_ = Level::field;
};

class Hl7Message;

// One segment of a parsed message. A cheap handle: valid while its Hl7Message lives unchanged.
class Hl7Segment {
 public:
  Hl7Segment(const Hl7Message& message, std::size_t index) noexcept
      : message_(&message), index_(index) {}

  [[nodiscard]] std::string_view id() const noexcept;
  // The highest field number present (MSH: MSH-1 is the field separator, MSH-2 the encoding chars).
  [[nodiscard]] std::size_t field_count() const noexcept;
  // Field n (1-based); an empty view when absent. field(0) is the segment id.
  [[nodiscard]] Hl7Field field(std::size_t n) const noexcept;
  // 1-based segment number within the message; blank lines are not segments.
  [[nodiscard]] int number() const noexcept { return static_cast<int>(index_) + 1; }
  // Byte offset of the segment's first byte within the parsed text.
  [[nodiscard]] std::size_t offset() const noexcept;
  // Physical lines between the start of the parsed text and this segment (0 for the first line).
  [[nodiscard]] int line() const noexcept;
  // Byte offset within the parsed text of field n's first byte (of the segment end when absent).
  [[nodiscard]] std::size_t field_offset(std::size_t n) const noexcept;

 private:
  const Hl7Message* message_;
  std::size_t index_;
};

// A parsed message: segments and fields as views into the text given to parse_hl7_message, which
// must outlive it. Reusable: parsing into an existing Hl7Message keeps its vectors' capacity.
class Hl7Message {
 public:
  [[nodiscard]] std::string_view text() const noexcept { return text_; }
  [[nodiscard]] const Hl7Encoding& encoding() const noexcept { return encoding_; }
  [[nodiscard]] const Hl7Delimiters& delimiters() const noexcept { return encoding_.delimiters; }
  [[nodiscard]] Hl7Charset charset() const noexcept { return encoding_.charset; }

  [[nodiscard]] std::size_t segment_count() const noexcept { return segments_.size(); }
  // Segment by 0-based index (MSH is 0); index < segment_count().
  [[nodiscard]] Hl7Segment segment(std::size_t index) const noexcept { return {*this, index}; }
  // The first segment with this id, if any.
  [[nodiscard]] std::optional<Hl7Segment> find(std::string_view id) const noexcept;

 private:
  friend class Hl7Segment;
  friend class Hl7Tokenizer;  // parse_hl7_message's single pass fills the private vectors

  struct SegmentRecord {
    std::uint32_t offset;     // byte offset in text_ of the segment id
    std::uint32_t first_sep;  // index into seps_ of the byte that ends the id
    std::uint32_t seps;       // entries in seps_ after first_sep up to its end: its last field
    std::int32_t line;        // lines before it in text_
    bool has_escape;          // the escape character occurs in it
  };

  // Field n of a segment spans [seps_[first + n - 1] + 1, seps_[first + n]) (field 0, the id,
  // starts at the segment). MSH-1 is its first separator, so MSH gets one more entry in front, a
  // stand-in at the same position: its field n is then found by the same rule for n >= 2.
  std::string_view text_;
  Hl7Encoding encoding_;
  Hl7Encoding plain_;  // encoding_ for segments without escapes: decoding skips the search
  std::vector<SegmentRecord> segments_;
  // Positions of every field separator and segment end, in text order (a structural index). The
  // vector is storage that keeps its size across messages: only the first sep_count_ are in use.
  std::vector<std::uint32_t> seps_;
  std::size_t sep_count_ = 0;
};

// ---- Inline definitions: these run once per field or component, so they are kept inlinable. ----

namespace hl7_detail {

// The bytes searched for in a window: two characters, and each repeated across a vector.
struct Needles {
  char a;
  char b;
#if defined(__SSE2__)
  __m128i va;
  __m128i vb;
#endif
};

inline Needles needles(char a, char b) noexcept {
#if defined(__SSE2__)
  return {a, b, _mm_set1_epi8(a), _mm_set1_epi8(b)};
#else
  return {a, b};
#endif
}

// Bit k is set when byte k of the window p[0, min(n, 16)) equals one of the needles; n > 0. The
// pieces searched are short (a field, a component), so short windows matter: without reading
// outside p[0, n), 4 to 15 bytes are tested in one vector as their first and last 8 (or 4) bytes
// side by side, a byte both halves hold being marked twice, harmlessly.
inline unsigned window_marks(const char* p, std::size_t n, const Needles& x) noexcept {
#if defined(__SSE2__)
  const auto marks = [&x](__m128i v) {
    return static_cast<unsigned>(
        _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, x.va), _mm_cmpeq_epi8(v, x.vb))));
  };
  if (n >= 16) {
    return marks(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  if (n >= 8) {
    const unsigned m =
        marks(_mm_unpacklo_epi64(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)),
                                 _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + n - 8))));
    return (m & 0xFFu) | ((m >> 8) << (n - 8));
  }
  if (n >= 4) {
    std::int32_t head = 0;
    std::int32_t tail = 0;
    std::memcpy(&head, p, sizeof head);
    std::memcpy(&tail, p + n - 4, sizeof tail);
    const unsigned m = marks(_mm_unpacklo_epi32(_mm_cvtsi32_si128(head), _mm_cvtsi32_si128(tail)));
    return (m & 0xFu) | (((m >> 4) & 0xFu) << (n - 4));
  }
#endif
  unsigned m = 0;
  for (std::size_t k = 0; k < n && k < 16; ++k) {
    if (p[k] == x.a || p[k] == x.b) {
      m |= 1u << k;
    }
  }
  return m;
}

// Index of the first byte in s[from..] that is one of the needles, or s.size().
inline std::size_t find_needle(std::string_view s, const Needles& x,
                               std::size_t from = 0) noexcept {
  for (std::size_t i = from; i < s.size(); i += 16) {
    const unsigned m = window_marks(s.data() + i, s.size() - i, x);
    if (m != 0) {
      return i + static_cast<std::size_t>(std::countr_zero(m));
    }
  }
  return s.size();
}

// Index of the first byte equal to `a` or `b` in s[from..], or s.size().
inline std::size_t find_either(std::string_view s, char a, char b, std::size_t from = 0) noexcept {
  return find_needle(s, needles(a, b), from);
}

inline std::size_t find_byte(std::string_view s, char c, std::size_t from = 0) noexcept {
  return find_either(s, c, c, from);
}

// The n-th (1-based) piece of `s` cut at `sep`; empty when there are fewer pieces. With `stop`
// (not '\0'), `s` ends at its first `stop` byte: component n of a field's first repetition. A
// '\0' separator is one the message did not declare: `s` is then a single piece.
inline std::string_view nth_piece(std::string_view s, char sep, std::size_t n,
                                  char stop = '\0') noexcept {
  if (n == 0) {
    return {};
  }
  if (sep == '\0') {
    return n == 1 ? s.substr(0, stop == '\0' ? s.size() : find_byte(s, stop)) : std::string_view{};
  }
  const Needles x = needles(sep, stop == '\0' ? sep : stop);
  if (n == 1) {
    return {s.data(), find_needle(s, x)};
  }
  std::size_t start = 0;
  std::size_t piece = 1;
  for (std::size_t i = 0; i < s.size(); i += 16) {
    for (unsigned m = window_marks(s.data() + i, s.size() - i, x); m != 0; m &= m - 1) {
      const std::size_t at = i + static_cast<std::size_t>(std::countr_zero(m));
      if (piece == n) {
        return {s.data() + start, at - start};
      }
      if (s[at] != sep) {
        return {};  // the stop byte came first
      }
      ++piece;
      start = at + 1;
    }
  }
  return piece == n ? std::string_view(s.data() + start, s.size() - start) : std::string_view{};
}

inline std::string_view first_piece(std::string_view s, char sep) noexcept {
  return sep == '\0' ? s : s.substr(0, find_byte(s, sep));
}

}  // namespace hl7_detail

inline Hl7Field Hl7Field::repetition(std::size_t n) const noexcept {
  if (level_ != Level::field) {
    return {n == 1 ? raw_ : std::string_view{}, *encoding_, level_};
  }
  return {hl7_detail::nth_piece(raw_, encoding_->delimiters.repetition, n), *encoding_,
          Level::repetition};
}

inline Hl7Field Hl7Field::component(std::size_t n) const noexcept {
  const Hl7Delimiters& d = encoding_->delimiters;
  switch (level_) {
    case Level::field:
      // One pass over the first repetition: a repetition separator ends it.
      return {hl7_detail::nth_piece(raw_, d.component, n, d.repetition), *encoding_,
              Level::component};
    case Level::repetition:
      return {hl7_detail::nth_piece(raw_, d.component, n), *encoding_, Level::component};
    case Level::component:
    case Level::subcomponent:
      break;
  }
  return {n == 1 ? raw_ : std::string_view{}, *encoding_, level_};
}

inline Hl7Field Hl7Field::subcomponent(std::size_t n) const noexcept {
  const Hl7Delimiters& d = encoding_->delimiters;
  std::string_view c = raw_;
  switch (level_) {
    case Level::field:
      c = hl7_detail::first_piece(hl7_detail::first_piece(raw_, d.repetition), d.component);
      break;
    case Level::repetition:
      c = hl7_detail::first_piece(raw_, d.component);
      break;
    case Level::component:
      break;
    case Level::subcomponent:
      return {n == 1 ? raw_ : std::string_view{}, *encoding_, level_};
  }
  return {hl7_detail::nth_piece(c, d.subcomponent, n), *encoding_, Level::subcomponent};
}

inline std::size_t Hl7Field::split(std::span<Hl7Field> out) const noexcept {
  const Hl7Delimiters& d = encoding_->delimiters;
  char sep = '\0';
  Level below = Level::subcomponent;
  switch (level_) {
    case Level::field:
      sep = d.repetition;
      below = Level::repetition;
      break;
    case Level::repetition:
      sep = d.component;
      below = Level::component;
      break;
    case Level::component:
      sep = d.subcomponent;
      break;
    case Level::subcomponent:
      break;
  }
  if (sep == '\0') {
    if (!out.empty()) {
      out[0] = Hl7Field(raw_, *encoding_, below);
    }
    return 1;
  }
  // One pass: every separator ends a piece.
  const hl7_detail::Needles x = hl7_detail::needles(sep, sep);
  std::size_t count = 0;
  std::size_t start = 0;
  for (std::size_t i = 0; i < raw_.size(); i += 16) {
    for (unsigned m = hl7_detail::window_marks(raw_.data() + i, raw_.size() - i, x); m != 0;
         m &= m - 1) {
      const std::size_t end = i + static_cast<std::size_t>(std::countr_zero(m));
      if (count < out.size()) {
        out[count] = Hl7Field({raw_.data() + start, end - start}, *encoding_, below);
      }
      ++count;
      start = end + 1;
    }
  }
  if (count < out.size()) {
    out[count] = Hl7Field({raw_.data() + start, raw_.size() - start}, *encoding_, below);
  }
  return count + 1;
}

inline std::string_view Hl7Field::decode(std::string& scratch) const {
  const Hl7Encoding& e = *encoding_;
  if (!e.has_8bit &&
      (!e.has_escape || hl7_detail::find_byte(raw_, e.delimiters.escape) == raw_.size())) {
    // The HL7 null: "the value is to be deleted", which reads as no value.
    return raw_.size() == 2 && raw_[0] == '"' && raw_[1] == '"' ? std::string_view{} : raw_;
  }
  return decode_slow(scratch);
}

inline Hl7Field Hl7Segment::field(std::size_t n) const noexcept {
  const Hl7Message& m = *message_;
  const auto& rec = m.segments_[index_];
  const Hl7Encoding& enc = rec.has_escape ? m.encoding_ : m.plain_;
  const std::uint32_t* sep = m.seps_.data() + rec.first_sep;
  if (n > rec.seps) {
    return {std::string_view{}, enc};
  }
  if (n == 0) {
    return {id(), enc};
  }
  // MSH-1 is the field separator itself (sep[1]); sep[0] is a stand-in that makes MSH-2 on
  // follow the rule of every other segment.
  if (n == 1 && index_ == 0) {
    return {std::string_view(m.text_.data() + sep[1], 1), enc};
  }
  const std::size_t start = sep[n - 1] + std::size_t{1};
  return {std::string_view(m.text_.data() + start, sep[n] - start), enc};
}

// The tokenizer admits only three-character ids.
inline std::string_view Hl7Segment::id() const noexcept {
  return {message_->text_.data() + message_->segments_[index_].offset, 3};
}

inline std::size_t Hl7Segment::field_count() const noexcept {
  return message_->segments_[index_].seps;
}

}  // namespace labwatch::parsers
