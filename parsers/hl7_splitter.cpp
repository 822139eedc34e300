// SPDX-License-Identifier: Apache-2.0
// Hl7Splitter: cuts a byte stream into HL7 messages line by line, dropping MLLP and batch framing.
#include <algorithm>
#include <bit>
#include <cassert>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "parsers/hl7_parser.hpp"
#include "parsers/hl7_text.hpp"

namespace labwatch::parsers {
namespace {

// FHS/BHS/BTS/FTS: batch envelope segments, which belong to no message.
bool is_batch_segment(std::string_view line) noexcept {
  const std::string_view id = line.substr(0, 3);
  return (id == "FHS" || id == "BHS" || id == "BTS" || id == "FTS") &&
         (line.size() == 3 || hl7_text::is_delimiter_char(line[3]));
}

// The highest field number an ORU segment must reach (its last field the standard marks required);
// 0 when the segment type gives no such hint.
std::size_t required_fields(std::string_view id) noexcept {
  if (id == "MSH") {
    return 12;  // MSH-12 version id
  }
  if (id == "PID") {
    return 5;  // PID-5 patient name
  }
  if (id == "ORC") {
    return 1;  // ORC-1 order control
  }
  if (id == "OBR") {
    return 4;  // OBR-4 universal service id
  }
  if (id == "OBX") {
    return 11;  // OBX-11 result status
  }
  return 0;
}

}  // namespace

Hl7Splitter::Hl7Splitter(std::string_view complete_input) noexcept
    : data_(complete_input), borrowed_(true), eof_(true) {}

void Hl7Splitter::feed(std::string_view chunk) {
  assert(!borrowed_ && !eof_);
  if (borrowed_ || eof_) {
    return;  // the input was declared complete
  }
  // Keep only what is still needed: the open message, or the line being read.
  const std::size_t keep_from = msg_open_ ? msg_start_ : pos_;
  if (keep_from > 0) {
    buf_.erase(0, keep_from);
    consumed_ += keep_from;
    pos_ -= keep_from;
    searched_to_ = searched_to_ > keep_from ? searched_to_ - keep_from : 0;
    if (msg_open_) {
      msg_start_ -= keep_from;
      msg_end_ -= keep_from;
      last_line_start_ -= keep_from;
    }
  }
  buf_.append(chunk);
  data_ = buf_;
}

void Hl7Splitter::finish() noexcept { eof_ = true; }

// The first CR, LF, MLLP start or MLLP end at or after `from`, or data_.size(): one pass that
// tests 16 bytes at a time for all four.
std::size_t Hl7Splitter::find_line_end(std::size_t from) const noexcept {
  const char* const p = data_.data();
  const std::size_t n = data_.size();
  std::size_t i = from;
#if defined(__SSE2__)
  const __m128i cr = _mm_set1_epi8('\r');
  const __m128i lf = _mm_set1_epi8('\n');
  const __m128i vt = _mm_set1_epi8(hl7_text::kMllpStart);
  const __m128i fs = _mm_set1_epi8(hl7_text::kMllpEnd);
  for (; i + 16 <= n; i += 16) {
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    const __m128i hits = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(b, cr), _mm_cmpeq_epi8(b, lf)),
                                      _mm_or_si128(_mm_cmpeq_epi8(b, vt), _mm_cmpeq_epi8(b, fs)));
    const auto mask = static_cast<unsigned>(_mm_movemask_epi8(hits));
    if (mask != 0) {
      return i + static_cast<std::size_t>(std::countr_zero(mask));
    }
  }
#endif
  for (; i < n; ++i) {
    const char c = p[i];
    if (c == '\r' || c == '\n' || c == hl7_text::kMllpStart || c == hl7_text::kMllpEnd) {
      return i;
    }
  }
  return n;
}

std::optional<RawMessage> Hl7Splitter::next() {
  while (true) {
    if (!bom_checked_) {
      if (data_.size() - pos_ < hl7_text::kUtf8Bom.size() && !eof_) {
        return std::nullopt;
      }
      if (data_.substr(pos_).starts_with(hl7_text::kUtf8Bom)) {
        pos_ += hl7_text::kUtf8Bom.size();
      }
      bom_checked_ = true;
    }
    // A line that the data so far does not end is searched on from where the last search stopped.
    const std::size_t end = find_line_end(std::max(pos_, searched_to_));
    searched_to_ = end;
    LineEnd how = LineEnd::none;
    if (end < data_.size()) {
      switch (data_[end]) {
        case '\r':
          how = LineEnd::cr;
          break;
        case '\n':
          how = LineEnd::lf;
          break;
        case hl7_text::kMllpStart:
          how = LineEnd::mllp_start;
          break;
        default:
          how = LineEnd::mllp_end;
          break;
      }
    } else if (!eof_) {
      return cut_oversized();  // wait for the rest of the line
    } else if (pos_ == data_.size()) {
      if (msg_open_) {
        return close_message(msg_in_block_ || (!last_line_terminated_ && last_segment_cut()));
      }
      return std::nullopt;
    }
    if (!line_read_) {
      line_read_ = true;
      if (auto closed = read_line(data_.substr(pos_, end - pos_), how)) {
        return closed;
      }
    }
    line_read_ = false;
    if (auto closed = end_line(end, how)) {
      return closed;
    }
  }
}

// A line's content: an MSH opens a message, a batch segment ends one, anything else belongs to
// the open message (or opens a message of stray lines, which will fail as missing_msh).
std::optional<RawMessage> Hl7Splitter::read_line(std::string_view line, LineEnd how) {
  const bool dropped = in_dropped_line_;
  in_dropped_line_ = false;
  // Most lines are a segment of the open message: no MSH, no batch segment (M, F, B), not blank.
  const char first = line.empty() ? ' ' : line.front();
  if (msg_open_ && !dropped && first != 'M' && first != 'F' && first != 'B' &&
      !hl7_text::has_class(first, hl7_text::kBlank)) {
    last_line_start_ = pos_;
    msg_end_ = pos_ + line.size();
    last_line_terminated_ = how != LineEnd::none;
    return std::nullopt;
  }
  if (dropped || hl7_text::is_blank_line(line)) {
    return std::nullopt;
  }
  std::optional<RawMessage> closed;
  const bool starts_message = line.starts_with("MSH");
  if (starts_message || is_batch_segment(line)) {
    if (msg_open_) {
      closed = close_message(false);
    }
    skipping_ = false;
  }
  if (!msg_open_ && !skipping_ && !is_batch_segment(line)) {
    msg_open_ = true;
    msg_start_ = pos_;
    msg_line_ = line_;
    msg_in_block_ = block_open_;
  }
  if (msg_open_) {
    last_line_start_ = pos_;
    msg_end_ = pos_ + line.size();
    last_line_terminated_ = how != LineEnd::none;
  }
  return closed;
}

std::optional<RawMessage> Hl7Splitter::end_line(std::size_t end, LineEnd how) {
  std::optional<RawMessage> closed;
  const bool empty_line = end == pos_;
  switch (how) {
    case LineEnd::cr:
      // The CR of an MLLP trailer (0x1C 0x0D) is framing, not a line break.
      if (after_mllp_end_ && empty_line) {
        after_cr_ = false;
      } else {
        ++line_;
        after_cr_ = true;
      }
      break;
    case LineEnd::lf:
      if (!(after_cr_ && empty_line)) {  // the LF of CR LF ends the same line
        ++line_;
      }
      after_cr_ = false;
      break;
    case LineEnd::mllp_start:
      if (msg_open_) {
        closed = close_message(msg_in_block_);  // a block that never got its end byte
      }
      skipping_ = false;
      block_open_ = true;
      after_cr_ = false;
      break;
    case LineEnd::mllp_end:
      if (msg_open_) {
        closed = close_message(false);
      }
      skipping_ = false;
      block_open_ = false;
      after_cr_ = false;
      break;
    case LineEnd::none:
      break;
  }
  after_mllp_end_ = how == LineEnd::mllp_end;
  pos_ = how == LineEnd::none ? end : end + 1;
  return closed;
}

std::optional<RawMessage> Hl7Splitter::close_message(bool truncated) {
  RawMessage m;
  m.bytes = data_.substr(msg_start_, msg_end_ - msg_start_);
  m.index = index_++;
  m.offset = consumed_ + msg_start_;
  m.first_line = msg_line_;
  m.truncated = truncated;
  msg_open_ = false;
  return m;
}

// Called when the buffer holds no complete line: keeps memory bounded. An open message that has
// grown past kMaxMessageBytes comes out as what there is of it, and the rest of it is dropped.
std::optional<RawMessage> Hl7Splitter::cut_oversized() {
  if (in_dropped_line_) {
    pos_ = data_.size();
    return std::nullopt;
  }
  const std::size_t start = msg_open_ ? msg_start_ : pos_;
  if (data_.size() - start <= kMaxMessageBytes) {
    return std::nullopt;
  }
  std::optional<RawMessage> out;
  if (!skipping_) {
    if (!msg_open_) {
      msg_start_ = pos_;
      msg_line_ = line_;
    }
    msg_end_ = data_.size();
    out = close_message(false);
  }
  skipping_ = true;
  in_dropped_line_ = pos_ < data_.size();
  pos_ = data_.size();
  line_read_ = false;
  return out;
}

// Why: a file that merely lacks the CR after its last segment is common and harmless, so a missing
// terminator alone proves nothing. A transfer that was cut, though, almost always stops inside a
// segment before its required fields: the last segment then ends early (see required_fields).
bool Hl7Splitter::last_segment_cut() const noexcept {
  const std::string_view message = data_.substr(msg_start_, msg_end_ - msg_start_);
  if (!message.starts_with("MSH")) {
    return false;  // stray lines: refused as missing_msh anyway
  }
  if (message.size() < 4) {
    return true;
  }
  const char fs = message[3];
  const std::string_view segment = data_.substr(last_line_start_, msg_end_ - last_line_start_);
  if (segment.size() < 3) {
    return true;  // cut inside the segment id
  }
  const std::string_view id = segment.substr(0, 3);
  auto last_field = static_cast<std::size_t>(std::count(segment.begin(), segment.end(), fs));
  if (id == "MSH") {
    ++last_field;  // MSH-1 is the separator itself
  }
  return last_field < required_fields(id);
}

}  // namespace labwatch::parsers
