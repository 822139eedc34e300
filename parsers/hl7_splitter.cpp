// SPDX-License-Identifier: Apache-2.0
// Hl7Splitter: cuts a byte stream into HL7 messages line by line, dropping MLLP and batch framing.
#include <algorithm>
#include <cassert>

#include "parsers/hl7_parser.hpp"
#include "parsers/hl7_scan.hpp"
#include "parsers/hl7_text.hpp"

namespace labwatch::parsers {
namespace {

// FHS/BHS/BTS/FTS: batch envelope segments, which belong to no message.
bool is_batch_segment(std::string_view line) noexcept {
  const std::string_view id = line.substr(0, 3);
  return (id == "FHS" || id == "BHS" || id == "BTS" || id == "FTS") &&
         (line.size() == 3 || hl7_text::is_delimiter_char(line[3]));
}

// The highest field number a last segment must reach to hold everything labwatch reads as a
// result from it; 0 when the segment type gives no such hint. The intake only claims closed files,
// so the end of the input is the end of the last segment: an OBX that reaches OBX-5 (the value) is
// complete even without its later, optional fields (LF files often end right after OBX-5).
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
    return 5;  // OBX-5 observation value
  }
  return 0;
}

// True when read_line ends the open message at this line: an MSH or a batch segment.
bool closes_message(std::string_view line) noexcept {
  return line.starts_with("MSH") || is_batch_segment(line);
}

}  // namespace

Hl7Splitter::Hl7Splitter(std::string_view complete_input) noexcept
    : data_(complete_input), in_place_(true), borrowed_(true), eof_(true) {}

void Hl7Splitter::feed(std::string_view chunk) {
  assert(!borrowed_ && !eof_);
  if (borrowed_ || eof_) {
    return;  // the input was declared complete
  }
  retain();
  own_.assign(chunk);
  take(own_);
}

void Hl7Splitter::feed_in_place(std::string_view chunk) {
  assert(!borrowed_ && !eof_);
  if (borrowed_ || eof_) {
    return;
  }
  retain();
  take(chunk);
}

void Hl7Splitter::finish() noexcept { eof_ = true; }

// Copies what is still needed of the current chunk into buf_ and splits buf_ from then on, so that
// the chunk may be reused: the open message (or else the line being read) and the chunk bytes not
// reached yet. Bytes already split are dropped from buf_.
void Hl7Splitter::retain() {
  if (in_place_ && msg_in_buf_) {
    // buf_ holds the open message and ends where data_ starts; nothing of data_ was read yet.
    assert(pos_ == 0);
    pos_ = buf_.size();
    consumed_ -= buf_.size();
    buf_.append(data_);
    msg_in_buf_ = false;
  } else {
    const std::size_t keep_from = msg_open_ ? msg_start_ : pos_;
    if (in_place_) {
      buf_.assign(data_.substr(keep_from));
    } else {
      buf_.erase(0, keep_from);
      buf_.append(pending_);
    }
    consumed_ += keep_from;
    pos_ -= keep_from;
    if (msg_open_) {
      msg_start_ -= keep_from;
      msg_end_ -= keep_from;
      last_line_start_ -= keep_from;
    }
  }
  pending_ = {};
  in_place_ = false;
  data_ = buf_;
  forget_line_ends();
}

// After retain: a chunk that nothing is carried over into is split in place at once; otherwise it
// waits in pending_ until the carried-over bytes are used up.
void Hl7Splitter::take(std::string_view chunk) {
  if (buf_.empty()) {
    data_ = chunk;
    in_place_ = true;
  } else {
    pending_ = chunk;
  }
}

// Stitching a chunk to the bytes carried over: moves the next line of pending_ into buf_ (all of
// it when it holds no line end). Once buf_ is split to its end with no message open, or with one
// open that the next line closes, the rest of the chunk is split in place instead: the open
// message then stays in buf_ until that line closes it. False when nothing is pending.
bool Hl7Splitter::pull() {
  if (in_place_ || pending_.empty()) {
    return false;
  }
  const std::size_t end = hl7_scan::find_line_end(pending_, 0);
  if (pos_ == buf_.size() &&
      (!msg_open_ || (end < pending_.size() && closes_message(pending_.substr(0, end))))) {
    msg_in_buf_ = msg_open_;
    consumed_ += buf_.size();
    data_ = pending_;
    pending_ = {};
    in_place_ = true;
    pos_ = 0;
    forget_line_ends();
    return true;
  }
  const std::size_t take = end < pending_.size() ? end + 1 : pending_.size();
  buf_.append(pending_.substr(0, take));
  pending_.remove_prefix(take);
  data_ = buf_;
  return true;
}

// The first line end in data_ at or after `from` (which only grows until forget_line_ends), or
// data_.size(). Line ends are found many at a time and queued.
std::size_t Hl7Splitter::line_end(std::size_t from) noexcept {
  while (ends_head_ < ends_count_ && ends_[ends_head_] < from) {
    ++ends_head_;
  }
  if (ends_head_ < ends_count_) {
    return ends_[ends_head_];
  }
  // None queued: there is none before ends_to_, where the search goes on.
  const std::size_t start = std::max(from, ends_to_);
  ends_head_ = 0;
  ends_count_ = start < data_.size() ? hl7_scan::find_line_ends(data_, start, ends_) : 0;
  ends_to_ = ends_count_ < ends_.size() ? data_.size() : ends_[ends_count_ - 1] + 1;
  return ends_count_ > 0 ? ends_[0] : data_.size();
}

// data_ changed or its positions moved.
void Hl7Splitter::forget_line_ends() noexcept {
  ends_head_ = 0;
  ends_count_ = 0;
  ends_to_ = 0;
}

// The fast path: the lines of an open message that are plain segments (not MSH, not a batch
// segment, not blank) and end at CR or LF, which is most lines of a file, only move it on.
void Hl7Splitter::skip_segment_lines() noexcept {
  const std::size_t n = data_.size();
  while (true) {
    const std::size_t end = line_end(pos_);
    if (end == n || end == pos_) {
      return;
    }
    const char c = data_[end];
    const char first = data_[pos_];
    if ((c != '\r' && c != '\n') || first == 'M' || first == 'F' || first == 'B' ||
        hl7_text::has_class(first, hl7_text::kBlank)) {
      return;
    }
    last_line_start_ = pos_;
    msg_end_ = end;
    last_line_terminated_ = true;
    ++line_;
    after_cr_ = c == '\r';
    after_mllp_end_ = false;
    pos_ = end + 1;
  }
}

std::optional<RawMessage> Hl7Splitter::next() {
  while (true) {
    if (!bom_checked_) {
      if (data_.size() - pos_ < hl7_text::kUtf8Bom.size()) {
        if (pull()) {
          continue;
        }
        if (!eof_) {
          retain();
          return std::nullopt;
        }
      }
      if (data_.substr(pos_).starts_with(hl7_text::kUtf8Bom)) {
        pos_ += hl7_text::kUtf8Bom.size();
      }
      bom_checked_ = true;
    }
    if (msg_open_ && !line_read_ && !in_dropped_line_ && !msg_in_buf_) {
      skip_segment_lines();
    }
    const std::size_t end = line_end(pos_);
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
    } else if (pull()) {
      continue;
    } else if (!eof_) {
      // Wait for the rest of the line, keeping what is still needed of the chunk.
      if (auto cut = cut_oversized()) {
        return cut;
      }
      retain();
      return std::nullopt;
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

std::string_view Hl7Splitter::message_data() const noexcept {
  return msg_in_buf_ ? std::string_view(buf_) : data_;
}

std::optional<RawMessage> Hl7Splitter::close_message(bool truncated) {
  RawMessage m;
  m.bytes = message_data().substr(msg_start_, msg_end_ - msg_start_);
  m.index = index_++;
  // A message in buf_ ends where data_ starts.
  m.offset = (msg_in_buf_ ? consumed_ - buf_.size() : consumed_) + msg_start_;
  msg_in_buf_ = false;
  m.first_line = msg_line_;
  m.truncated = truncated;
  msg_open_ = false;
  return m;
}

// Called when the buffer holds no complete line: keeps memory bounded. An open message that has
// grown past kMaxMessageBytes comes out as what there is of it, and the rest of it is dropped.
std::optional<RawMessage> Hl7Splitter::cut_oversized() {
  assert(!msg_in_buf_);
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
// segment before the fields read from it: the last segment then ends early (see required_fields).
bool Hl7Splitter::last_segment_cut() const noexcept {
  const std::string_view data = message_data();
  const std::string_view message = data.substr(msg_start_, msg_end_ - msg_start_);
  if (!message.starts_with("MSH")) {
    return false;  // stray lines: refused as missing_msh anyway
  }
  if (message.size() < 4) {
    return true;
  }
  const char fs = message[3];
  const std::string_view segment = data.substr(last_line_start_, msg_end_ - last_line_start_);
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
