// SPDX-License-Identifier: Apache-2.0
// HL7 v2 parsing: message splitting (MLLP, batches, any terminator), message tree, ORU^R01 view.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "parsers/expected.hpp"
#include "parsers/hl7_message.hpp"
#include "parsers/lab_report.hpp"
#include "parsers/parse_error.hpp"

namespace labwatch::parsers {

// Explicit limits: exceeding one is a ParseError, never a crash or a huge allocation.
inline constexpr std::size_t kMaxMessageBytes = 16u << 20;  // one message
inline constexpr std::size_t kMaxSegmentsPerMessage = 100'000;
inline constexpr std::size_t kMaxFieldBytes = 1u << 20;         // one field, raw
inline constexpr std::size_t kMaxFieldsPerMessage = 1'000'000;  // all fields of one message
// parse_hl7_file's whole-file input; Hl7Splitter streams any size.
inline constexpr std::size_t kMaxHl7FileBytes = 256u << 20;

// True when the first bytes of a file look like HL7 v2 (after an optional BOM, MLLP start byte,
// blank lines): they start with "MSH", "FHS" or "BHS" followed by a valid field separator.
bool looks_like_hl7(std::string_view head) noexcept;

// One message cut out of a file by Hl7Splitter. `bytes` excludes MLLP framing and batch segments.
struct RawMessage {
  std::string_view bytes;  // valid until the next call to Hl7Splitter::feed/feed_in_place/next
  int index = 0;           // 0-based message index within the file
  std::size_t offset = 0;  // byte offset of the message's first byte in the file
  int first_line = 1;      // 1-based physical line of its MSH
  // The file ended inside this message. The rule: an MLLP block (0x0B) that the input ends
  // before its end byte (0x1C), or an input that ends without a segment terminator inside a
  // segment whose id is incomplete or that stops before a field read from it (MSH-12, PID-5,
  // ORC-1, OBR-4, OBX-5). A last segment that merely lacks its final CR is not truncated, nor is
  // an OBX that ends right after OBX-5.
  bool truncated = false;
};

// Splits a byte stream into HL7 messages incrementally, holding only the incomplete tail, so a file
// of any size is read through a reused buffer. Batch envelopes (FHS/BHS/BTS/FTS) and MLLP framing
// bytes (0x0B ... 0x1C 0x0D) are dropped. Usage: feed(chunk); while (auto m = next()) {...}; at end
// finish(); while (auto m = next()) {...}.
// A message ends where the next MSH, batch segment or MLLP byte starts, or at the end of input.
// Segments end at CR, LF or CR LF; blank lines and a leading UTF-8 BOM are skipped. Lines before
// the first MSH (or between a batch header and an MSH) come out as a message of their own, which
// parse_hl7_message refuses as missing_msh. A message longer than kMaxMessageBytes comes out as its
// first bytes (more than kMaxMessageBytes, so parse_hl7_message refuses it as input_too_large) and
// its rest is dropped: memory stays bounded by kMaxMessageBytes plus one chunk.
class Hl7Splitter {
 public:
  Hl7Splitter() = default;
  // Splits a complete in-memory input without copying it: the views point into `complete_input`,
  // which must outlive them. Equivalent to feed(complete_input); finish(); feed must not follow.
  explicit Hl7Splitter(std::string_view complete_input) noexcept;

  // Appends the next bytes of the input. feed copies `chunk`, so the caller may reuse it at once.
  void feed(std::string_view chunk);
  // The same without the copy: messages that lie wholly inside `chunk` come out as views of it,
  // and only a message that straddles two chunks is copied. `chunk` must stay valid and unchanged
  // until next() returns nullopt (or until the next feed_in_place/feed call, if sooner).
  void feed_in_place(std::string_view chunk);
  void finish() noexcept;
  std::optional<RawMessage> next();

 private:
  enum class LineEnd : std::uint8_t { cr, lf, mllp_start, mllp_end, none };

  void retain();
  void take(std::string_view chunk);
  bool pull();
  std::size_t line_end(std::size_t from) noexcept;
  void forget_line_ends() noexcept;
  void skip_segment_lines() noexcept;
  std::optional<RawMessage> read_line(std::string_view line, LineEnd how);
  std::optional<RawMessage> end_line(std::size_t end, LineEnd how);
  std::optional<RawMessage> close_message(bool truncated);
  std::optional<RawMessage> cut_oversized();
  [[nodiscard]] std::string_view message_data() const noexcept;
  [[nodiscard]] bool last_segment_cut() const noexcept;

  // Why two buffers: data_ is split in place whenever it can be, that is the caller's chunk
  // (feed_in_place) or own_ (feed). Only bytes that must outlive a chunk, the start of a message or
  // line that goes on in the next chunk, are copied to buf_, which is then split instead while
  // the next chunk (pending_) is moved into it line by line, until the straddling message closes.
  std::string buf_;            // carried-over bytes (data_ when !in_place_)
  std::string own_;            // feed's copy of its chunk
  std::string_view data_;      // the bytes being split: a chunk in place, or buf_
  std::string_view pending_;   // the chunk bytes after buf_ not moved into it yet (!in_place_)
  bool in_place_ = false;      // data_ is a chunk (or the complete input), not buf_
  bool msg_in_buf_ = false;    // in place, the open message lies in buf_, just before data_[0]
  bool borrowed_ = false;      // data_ is the caller's complete input
  std::size_t consumed_ = 0;   // input offset of data_[0]
  std::size_t pos_ = 0;        // start of the next unprocessed line in data_
  std::size_t msg_start_ = 0;  // the open message's first byte in message_data()
  std::size_t msg_end_ = 0;    // one past its last non-blank line
  std::size_t last_line_start_ = 0;  // start of that line
  int msg_line_ = 1;                 // its first physical line
  bool msg_open_ = false;
  bool msg_in_block_ = false;  // it started inside an MLLP block
  bool last_line_terminated_ = true;
  bool block_open_ = false;       // an MLLP start byte was seen and no end byte since
  bool skipping_ = false;         // dropping the rest of an oversized message
  bool in_dropped_line_ = false;  // the current line's start was dropped (skipping)
  bool after_cr_ = false;         // the previous byte was a CR (so an LF adds no line)
  bool after_mllp_end_ = false;   // the previous byte was an MLLP end (its CR adds no line)
  bool bom_checked_ = false;
  bool line_read_ = false;  // the content of the line at pos_ was handled, its end was not
  int line_ = 1;            // physical line at data_[pos_]
  int index_ = 0;
  bool eof_ = false;
  // Line ends in data_ found ahead of pos_ (ends_[ends_head_, ends_count_)): every line end from
  // the position last asked for up to ends_to_ is there.
  std::array<std::size_t, 32> ends_{};
  std::size_t ends_head_ = 0;
  std::size_t ends_count_ = 0;
  std::size_t ends_to_ = 0;
};

// Parses one message (MSH first) into its segment/field tree; views point into `text`. Errors:
// missing_msh, bad_delimiters, bad_segment_id, field_too_long, too_many_segments, too_many_fields,
// input_too_large; their offset and line are relative to `text`.
Expected<Hl7Message, ParseError> parse_hl7_message(std::string_view text);

// The same single pass into an existing message, reusing its storage: no allocation once it has
// grown to the size of the largest message. Returns nullopt on success, else the error (and `out`
// is unusable until the next successful parse).
std::optional<ParseError> parse_hl7_message(std::string_view text, Hl7Message& out);

// The ORU^R01 view of a parsed message: a LabReport with decoded, UTF-8 strings (an MSH-18
// ISO 8859 part transcoded by its table). `pos` carries the message index/offset/line into every
// SourcePos and error, so their offsets and lines are the file's. An MSH-18 label outside table
// 0211 is read as an empty one and adds an unknown_charset warning. Errors: truncated_message
// (pos.truncated), not_oru, bad_encoding (a multi-byte set of table 0211), missing_segment (no
// PID), unrecognized_format (a second PID: one patient per message).
Expected<LabReport, ParseError> to_lab_report(const Hl7Message& message, const RawMessage& pos);

// One message cut by Hl7Splitter, parsed (into `reuse`, keeping its capacity) and viewed as a
// LabReport. Error positions are file-relative (offset, line, message index); a message the input
// cut short is reported as truncated_message whatever the tokenizer tripped on.
Expected<LabReport, ParseError> parse_raw_message(const RawMessage& raw, Hl7Message& reuse);

// Everything in a whole in-memory file: each message becomes a report or a refusal; a bad message
// never stops the others. Convenience over Hl7Splitter + parse_hl7_message + to_lab_report, with
// file offsets and lines in every error. A message the input cuts is refused as
// truncated_message. Whole-file errors: input_too_large, empty_file, unrecognized_format.
struct Hl7FileResult {
  std::vector<LabReport> reports;
  std::vector<ParseError> errors;
  std::vector<std::string> raw_messages;  // the raw bytes of each report, same order as `reports`
};
Hl7FileResult parse_hl7_file(std::string_view text);

// HL7 TS/DTM: YYYY[MM[DD[HH[MM[SS[.S{1,4}]]]]]][+/-ZZZZ]. Naive when there is no offset.
// Surrounding spaces are ignored and up to 9 fraction digits read; nullopt for anything else,
// including dates that do not exist (Feb 30) and offsets beyond +-14:00.
std::optional<DateTime> parse_hl7_timestamp(std::string_view text) noexcept;

}  // namespace labwatch::parsers
