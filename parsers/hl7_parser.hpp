// SPDX-License-Identifier: Apache-2.0
// HL7 v2 parsing: message splitting (MLLP, batches, any terminator), the message tree, and the ORU^R01 view.
#pragma once

#include <cstddef>
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
inline constexpr std::size_t kMaxFieldBytes = 1u << 20;       // one field, raw

// True when the first bytes of a file look like HL7 v2 (after an optional BOM, MLLP start byte,
// blank lines): they start with "MSH", "FHS" or "BHS" followed by a valid field separator.
bool looks_like_hl7(std::string_view head) noexcept;

// One message cut out of a file by Hl7Splitter. `bytes` excludes MLLP framing and batch segments.
struct RawMessage {
  std::string_view bytes;  // valid until the next call to Hl7Splitter::feed/next
  int index = 0;           // 0-based message index within the file
  std::size_t offset = 0;  // byte offset of the message's first byte in the file
  int first_line = 1;      // 1-based physical line of its MSH
  bool truncated = false;  // the file ended inside this message (no MLLP end, cut segment)
};

// Splits a byte stream into HL7 messages incrementally, holding only the incomplete tail, so a file
// of any size is read through a reused buffer. Batch envelopes (FHS/BHS/BTS/FTS) and MLLP framing
// bytes (0x0B ... 0x1C 0x0D) are dropped. Usage: feed(chunk); while (auto m = next()) {...}; at end
// finish(); while (auto m = next()) {...}.
class Hl7Splitter {
 public:
  void feed(std::string_view chunk);
  void finish();
  std::optional<RawMessage> next();

 private:
  std::string buf_;
  std::size_t pos_ = 0;           // start of unconsumed bytes in buf_
  std::size_t consumed_ = 0;      // file offset of buf_[0]
  int line_ = 1;                  // physical line at buf_[pos_]
  int index_ = 0;
  bool eof_ = false;
};

// Parses one message (MSH first) into its segment/field tree; views point into `text`.
// Errors: missing_msh, bad_delimiters, field_too_long, too_many_segments, bad_segment_id.
Expected<Hl7Message, ParseError> parse_hl7_message(std::string_view text);

// The ORU^R01 view of a parsed message: a LabReport with decoded, UTF-8 strings (MSH-18 8859/1
// transcoded). `pos` carries the message index/offset/line into every SourcePos.
// Errors: not_oru, missing_segment (no PID), truncated_message (when the message is cut).
Expected<LabReport, ParseError> to_lab_report(const Hl7Message& message, const RawMessage& pos);

// Everything in a whole in-memory file: each message becomes a report or a refusal; a bad message
// never stops the others. Convenience over Hl7Splitter + parse_hl7_message + to_lab_report.
struct Hl7FileResult {
  std::vector<LabReport> reports;
  std::vector<ParseError> errors;
  std::vector<std::string> raw_messages;  // the raw bytes of each report, same order as `reports`
};
Hl7FileResult parse_hl7_file(std::string_view text);

// HL7 TS/DTM: YYYY[MM[DD[HH[MM[SS[.S{1,4}]]]]]][+/-ZZZZ]. Naive when there is no offset.
std::optional<DateTime> parse_hl7_timestamp(std::string_view text) noexcept;

}  // namespace labwatch::parsers
