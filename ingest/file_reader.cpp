// SPDX-License-Identifier: Apache-2.0
// FileReader: sniff the format, hash, parse and normalize one file into batches of items.
#include "ingest/file_reader.hpp"

#include <algorithm>
#include <string_view>
#include <utility>

#include "clinical/normalize.hpp"
#include "config/config_loader.hpp"
#include "parsers/csv_parser.hpp"
#include "parsers/hl7_parser.hpp"
#include "parsers/text_charset.hpp"

namespace labwatch::daemon {
namespace {

constexpr std::size_t kChunk = 1u << 20;

parsers::Refusal file_refusal(parsers::RefusalReason reason, std::string detail) {
  parsers::Refusal r;
  r.reason = reason;
  r.detail = std::move(detail);
  return r;
}

parsers::Refusal from_parse_error(const parsers::ParseError& e) {
  parsers::Refusal r;
  r.reason = e.code;
  r.detail = e.detail.empty() ? std::string(parsers::to_string(r.reason)) : e.detail;
  r.where.message = e.message;
  r.where.segment = e.segment;
  r.where.field = e.field;
  r.where.line = e.line;
  r.where.offset = e.offset;
  return r;
}

// The bytes a text format may start with: skip a UTF-8 BOM, MLLP start blocks and blank space.
std::string_view skip_preamble(std::string_view head) {
  if (head.substr(0, 3) == "\xEF\xBB\xBF") {
    head.remove_prefix(3);
  }
  while (!head.empty() && (head.front() == '\x0b' || head.front() == '\r' || head.front() == '\n' ||
                           head.front() == ' ' || head.front() == '\t')) {
    head.remove_prefix(1);
  }
  return head;
}

// A CSV export is text: its header line holds no control bytes other than tab and CR, and at least
// two fields. Anything else (random bytes, a binary) is not a format we read.
bool looks_like_csv(std::string_view head) {
  const std::size_t eol = std::min(head.find('\n'), head.size());
  const std::string_view line = head.substr(0, eol);
  if (line.empty()) {
    return false;
  }
  for (char c : line) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t' && c != '\r') || u == 0x7f) {
      return false;
    }
  }
  return line.find_first_of(",;\t") != std::string_view::npos;
}

}  // namespace

void BatchSink::start_batch() {
  if (handoff_ == nullptr) {
    batch_.emplace();
    return;
  }
  batch_ = handoff_->acquire();
  if (!batch_) {
    throw ReadCancelled{};
  }
  batch_->clear();  // a batch given back: its items are freed here, where they were made
}

void BatchSink::add(FileItem item) {
  if (!batch_) {
    start_batch();
  }
  weight_ += 1;
  if (const auto* report = std::get_if<clinical::NormalizedReport>(&item)) {
    weight_ += report->results.size() + report->refusals.size();
  }
  batch_->push_back(std::move(item));
  if (batch_->size() >= kItems || weight_ >= kWeight) {
    flush();
  }
}

void BatchSink::flush() {
  if (!batch_) {
    start_batch();
  }
  if (handoff_ == nullptr) {
    store_(*batch_);
    batch_->clear();
    weight_ = 0;
    return;
  }
  handoff_->publish(std::move(*batch_), weight_);
  batch_.reset();
  weight_ = 0;
}

void FileReader::read(const ClaimedFile& file, const std::string& name, Sha256& file_hash,
                      std::string& buffer, BatchSink& out) const {
  file.read_at(0, 4096, buffer);
  const std::string_view head = skip_preamble(buffer);
  if (file.size() == 0 || head.empty()) {
    out.add(file_refusal(parsers::RefusalReason::empty_file, "the file holds no data"));
    hash_whole(file, file_hash, buffer, out);
  } else if (parsers::looks_like_hl7(head)) {
    read_hl7(file, name, file_hash, buffer, out);
  } else if (looks_like_csv(head)) {
    read_csv(file, name, file_hash, buffer, out);
  } else {
    out.add(file_refusal(parsers::RefusalReason::unrecognized_format,
                         "neither HL7 v2 (MSH/FHS/BHS) nor a CSV/TSV export"));
    hash_whole(file, file_hash, buffer, out);
  }
  out.flush();
}

void FileReader::hash_whole(const ClaimedFile& file, Sha256& file_hash, std::string& buffer,
                            BatchSink& out) const {
  for (std::uint64_t offset = 0; offset < file.size(); offset += kChunk) {
    file.read_at(offset, kChunk, buffer);
    if (buffer.empty()) {
      break;
    }
    file_hash.update(buffer);
    out.flush();
  }
}

void FileReader::read_hl7(const ClaimedFile& file, const std::string& name, Sha256& file_hash,
                          std::string& buffer, BatchSink& out) const {
  parsers::Hl7Splitter splitter;
  parsers::Hl7Message message;  // reused: its vectors keep their capacity across messages
  Sha256 message_hash;          // the digest of each message, for resend detection
  const auto drain = [&]() {
    while (auto raw = splitter.next()) {
      auto report = parsers::parse_raw_message(*raw, message);
      if (!report) {
        out.add(from_parse_error(report.error()));
        continue;
      }
      message_hash.update(raw->bytes);
      normalize(report.value(), message_hash.finish(), name, out);
    }
  };
  for (std::uint64_t offset = 0; offset < file.size(); offset += kChunk) {
    file.read_at(offset, kChunk, buffer);
    if (buffer.empty()) {
      break;
    }
    file_hash.update(buffer);
    // No copy of the chunk: drain() takes every message out before buffer is read into again.
    splitter.feed_in_place(buffer);
    drain();
    out.flush();
  }
  splitter.finish();
  drain();
}

void FileReader::read_csv(const ClaimedFile& file, const std::string& name, Sha256& file_hash,
                          std::string& buffer, BatchSink& out) const {
  if (file.size() > parsers::kMaxCsvBytes) {
    out.add(file_refusal(parsers::RefusalReason::too_large,
                         "a CSV export larger than " + std::to_string(parsers::kMaxCsvBytes) +
                             " bytes is not read"));
    hash_whole(file, file_hash, buffer, out);
    return;
  }
  std::string text;
  file.read_at(0, static_cast<std::size_t>(file.size()), text);
  file_hash.update(text);
  const config::Source* source = config::match_source(config_, name);
  // Everything stored is UTF-8: a CSV saved by a Windows program is Windows-1252 (or what its
  // <source charset> says), and is read as such before it is split.
  if (!parsers::text_to_utf8(text, source != nullptr ? source->charset : parsers::TextEncoding{})) {
    out.add(file_refusal(parsers::RefusalReason::bad_encoding,
                         "the file is not valid UTF-8, which its <source charset> declares"));
    return;
  }
  auto table = parsers::parse_csv(text);
  if (!table) {
    out.add(from_parse_error(table.error()));
    return;
  }
  parsers::CsvFileResult parsed =
      parsers::csv_to_reports(table.value(), config_.csv,
                              source != nullptr ? source->date_order : parsers::DateOrder::unknown);
  for (parsers::Refusal& r : parsed.refusals) {
    // A CSV carries no assigning authority: the refused row's key takes the source's.
    if (source != nullptr && !r.patient_key.empty() && r.patient_key.front() == '|') {
      r.patient_key.insert(0, source->authority);
    }
    out.add(std::move(r));
  }
  for (const parsers::LabReport& report : parsed.reports) {
    normalize(report, {}, name, out);
  }
}

void FileReader::normalize(const parsers::LabReport& report, std::string digest,
                           const std::string& name, BatchSink& out) const {
  clinical::SourceContext context;
  const config::Source* source = config::match_source(config_, name, report.sending_facility);
  if (source != nullptr) {
    context.facility = source->facility;
    context.authority = source->authority;
    context.timezone = source->timezone;
    context.decimal = source->decimal;
    context.date_order = source->date_order;
  }
  context.timezone = config::timezone_for(config_, source);
  auto normalized = clinical::normalize(report, config_.catalogue, context);
  if (!normalized) {
    out.add(std::move(normalized.error()));
    return;
  }
  normalized.value().raw_digest = std::move(digest);
  out.add(std::move(normalized.value()));
}

}  // namespace labwatch::daemon
