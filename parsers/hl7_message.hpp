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

// MSH-18, the character set of the message's text.
enum class Hl7Charset : std::uint8_t {
  unspecified,  // MSH-18 empty: ASCII by the standard, but senders put UTF-8 or Latin-1 there
  ascii,        // "ASCII", "ISO IR6"
  utf8,         // "UNICODE UTF-8", "UTF-8"
  latin1,       // "8859/1", "ISO IR100", "ISO-8859-1": transcoded to UTF-8 on decoding
  unsupported,  // any other set (multi-byte Asian sets, UCS-2, other ISO 8859 parts)
};

// Everything decoding needs to know about the message a piece of text came from.
struct Hl7Encoding {
  Hl7Delimiters delimiters;
  Hl7Charset charset = Hl7Charset::unspecified;
  bool has_escape = false;  // the escape character occurs after MSH-2 somewhere in the message
  bool has_8bit = false;    // a byte >= 0x80 occurs somewhere in the message
};

// Maps an MSH-18 value to a character set; case and surrounding spaces are ignored.
Hl7Charset hl7_charset_from_name(std::string_view name) noexcept;

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
    std::uint32_t seps;       // field separators in the segment (its last field's number)
    std::int32_t line;        // lines before it in text_
    bool has_escape;          // the escape character may occur in it
  };

  // Field n of segment `s` spans [seps_[first + n - 1] + 1, seps_[first + n]) (field 0, the id,
  // starts at the segment): the first field must be read through the MSH rule in Hl7Segment.
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

inline constexpr std::uint64_t kOnes = 0x0101010101010101u;
inline constexpr std::uint64_t kHighs = 0x8080808080808080u;

// The high bit of each byte of `word` that equals the byte repeated in `pattern`, by the classic
// "has a zero byte" test on (word ^ pattern). Only the lowest mark is exact (a borrow can mark a
// byte above a match), which is all the searches below use.
constexpr std::uint64_t byte_marks(std::uint64_t word, std::uint64_t pattern) noexcept {
  const std::uint64_t x = word ^ pattern;
  return (x - kOnes) & ~x & kHighs;
}

// Index of the first byte equal to `a` or `b` in s[from..], or s.size(). The pieces are short,
// where a library call costs more than the scan: eight bytes at a time on little-endian machines,
// where the first match is the lowest marked byte; the last, partial word is read as the final
// eight bytes of `s`, with the bytes already searched shifted out.
inline std::size_t find_either(std::string_view s, char a, char b, std::size_t from = 0) noexcept {
  const std::size_t n = s.size();
  std::size_t i = from;
  if constexpr (std::endian::native == std::endian::little) {
    if (n >= 8 && i < n) {
      const std::uint64_t pa = kOnes * static_cast<unsigned char>(a);
      const std::uint64_t pb = kOnes * static_cast<unsigned char>(b);
      std::uint64_t word = 0;
      for (; i + 8 <= n; i += 8) {
        std::memcpy(&word, s.data() + i, sizeof word);
        const std::uint64_t marks = byte_marks(word, pa) | byte_marks(word, pb);
        if (marks != 0) {
          return i + static_cast<std::size_t>(std::countr_zero(marks)) / 8;
        }
      }
      if (i < n) {
        // The searched bytes are shifted out rather than masked: a match among them (the one the
        // caller just found) would borrow into the next byte and mark it falsely.
        const std::size_t last = n - 8;
        const std::size_t shift = (i - last) * 8;  // 8..56
        std::memcpy(&word, s.data() + last, sizeof word);
        word >>= shift;
        const std::uint64_t marks =
            (byte_marks(word, pa) | byte_marks(word, pb)) & (~std::uint64_t{0} >> shift);
        if (marks != 0) {
          return i + static_cast<std::size_t>(std::countr_zero(marks)) / 8;
        }
      }
      return n;
    }
  }
  for (; i < n; ++i) {
    if (s[i] == a || s[i] == b) {
      return i;
    }
  }
  return n;
}

inline std::size_t find_byte(std::string_view s, char c, std::size_t from = 0) noexcept {
  return find_either(s, c, c, from);
}

// The n-th (1-based) piece of `s` cut at `sep`; empty when there are fewer pieces. A '\0'
// separator is one the message did not declare: `s` is then a single piece.
inline std::string_view nth_piece(std::string_view s, char sep, std::size_t n) noexcept {
  if (n == 0) {
    return {};
  }
  if (sep == '\0') {
    return n == 1 ? s : std::string_view{};
  }
  std::size_t start = 0;
  for (std::size_t i = 1; i < n; ++i) {
    const std::size_t p = find_byte(s, sep, start);
    if (p == s.size()) {
      return {};
    }
    start = p + 1;
  }
  return s.substr(start, find_byte(s, sep, start) - start);
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
      if (d.repetition != '\0') {
        // One pass over the first repetition: a repetition separator ends it.
        std::size_t start = 0;
        for (std::size_t i = 1; i < n; ++i) {
          const std::size_t p = hl7_detail::find_either(raw_, d.component, d.repetition, start);
          if (p == raw_.size() || raw_[p] == d.repetition) {
            return {std::string_view{}, *encoding_, Level::component};
          }
          start = p + 1;
        }
        if (n == 0) {
          return {std::string_view{}, *encoding_, Level::component};
        }
        const std::size_t end = hl7_detail::find_either(raw_, d.component, d.repetition, start);
        return {raw_.substr(start, end - start), *encoding_, Level::component};
      }
      return {hl7_detail::nth_piece(raw_, d.component, n), *encoding_, Level::component};
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
  std::size_t count = 0;
  std::size_t start = 0;
  while (true) {
    const std::size_t end = hl7_detail::find_byte(raw_, sep, start);
    if (count < out.size()) {
      out[count] = Hl7Field(raw_.substr(start, end - start), *encoding_, below);
    }
    ++count;
    if (end == raw_.size()) {
      return count;
    }
    start = end + 1;
  }
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
  // MSH-1 is the field separator itself, so MSH's n-th field is the n-1-th split by separators.
  if (index_ == 0 && n > 0) {
    if (n == 1) {
      return {m.text_.substr(sep[0], 1), enc};
    }
    --n;
  }
  if (n > rec.seps) {
    return {std::string_view{}, enc};
  }
  const std::size_t start = n == 0 ? rec.offset : sep[n - 1] + std::size_t{1};
  return {std::string_view(m.text_.data() + start, sep[n] - start), enc};
}

inline std::string_view Hl7Segment::id() const noexcept { return field(0).raw(); }

inline std::size_t Hl7Segment::field_count() const noexcept {
  return message_->segments_[index_].seps + (index_ == 0 ? 1 : 0);
}

}  // namespace labwatch::parsers
