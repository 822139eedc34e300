// SPDX-License-Identifier: Apache-2.0
// Pipeline: claim, hash, sniff the format, parse, normalize and store one file in one transaction.
#include "daemon/pipeline.hpp"

#include <algorithm>
#include <optional>
#include <utility>

#include "clinical/normalize.hpp"
#include "config/config_loader.hpp"
#include "daemon/digest.hpp"
#include "parsers/csv_parser.hpp"
#include "parsers/hl7_parser.hpp"

namespace labwatch::daemon {
namespace {

constexpr std::size_t kChunk = 1u << 20;

parsers::Refusal file_refusal(std::string reason, std::string detail) {
  parsers::Refusal r;
  r.reason = std::move(reason);
  r.detail = std::move(detail);
  return r;
}

parsers::Refusal from_parse_error(const parsers::ParseError& e) {
  parsers::Refusal r;
  r.reason = std::string(parsers::to_string(e.code));
  r.detail = e.detail.empty() ? r.reason : e.detail;
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

std::string_view to_string(FileOutcome::Kind kind) noexcept {
  switch (kind) {
    case FileOutcome::Kind::accepted:
      return "accepted";
    case FileOutcome::Kind::partial:
      return "partially refused";
    case FileOutcome::Kind::refused:
      return "refused";
    case FileOutcome::Kind::already_known:
      return "already ingested";
  }
  return "unknown";
}

std::string describe(const parsers::Refusal& r) {
  std::string out;
  const auto add = [&out](const std::string& part) {
    if (!out.empty()) {
      out += ", ";
    }
    out += part;
  };
  if (r.where.message >= 0) {
    add("message " + std::to_string(r.where.message + 1));
  }
  if (r.where.line > 0) {
    add("line " + std::to_string(r.where.line));
  }
  if (r.where.segment > 0) {
    add("segment " + std::to_string(r.where.segment) +
        (r.where.segment_id.empty() ? "" : " " + r.where.segment_id));
  }
  if (!r.where.column.empty()) {
    add("column '" + r.where.column + "'");
  } else if (r.where.field > 0) {
    add("field " + std::to_string(r.where.field));
  }
  if (!out.empty()) {
    out += ": ";
  }
  out += r.reason;
  if (!r.detail.empty() && r.detail != r.reason) {
    out += ": " + r.detail;
  }
  return out;
}

storage::Routing routing_of(const config::Config& config) {
  storage::Routing routing;
  if (config.mail.smtp_url.empty()) {
    return routing;  // no mail configured: alerts are recorded, nothing is queued
  }
  routing.collect_wait_seconds = config.mail.collect_wait.count();
  for (const config::Practitioner& p : config.practitioners) {
    storage::Recipient r;
    r.practitioner_id = p.id;
    r.email = p.email;
    r.name = p.name;
    r.full_phi = p.phi == config::PhiLevel::full;
    for (const std::string& provider : p.provider_ids) {
      routing.by_provider[provider].push_back(r);
    }
    for (const std::string& facility : p.facilities) {
      routing.by_facility[facility].push_back(r);
    }
  }
  if (!config.mail.default_recipient.empty()) {
    storage::Recipient r;
    r.email = config.mail.default_recipient;
    routing.fallback.push_back(r);
  }
  return routing;
}

Pipeline::Pipeline(const config::Config& config, storage::Store& store)
    : config_(config), store_(store) {
  targets_.catalogue = &config_.catalogue;
  for (const auto& [key, rule] : config_.targets) {
    targets_.by_analyte.emplace(key, rule);
  }
  targets_.routing = routing_of(config_);
  for (const auto& [key, trends] : config_.trends) {
    targets_.trends.emplace(key, trends);
  }
}

FileOutcome Pipeline::process_file(const std::filesystem::path& path, const ClaimPolicy& policy) {
  FileOutcome outcome;
  outcome.file_name = path.filename().string();
  auto claimed = ClaimedFile::open(path, policy);
  if (!claimed) {
    refuse(claimed.error(), nullptr, outcome);
    outcome.kind = FileOutcome::Kind::refused;
    return outcome;
  }
  const ClaimedFile& file = claimed.value();

  // The content hash is the idempotency key: the same bytes are ingested once, whatever their name.
  // It is computed from the chunks the parser reads, so the file is read and hashed once; whether
  // it is known is decided when the transaction commits (storage::FileTransaction::commit).
  storage::FileRecord record;
  record.name = outcome.file_name;
  record.size = static_cast<std::int64_t>(file.size());
  if (const config::Source* source = config::match_source(config_, outcome.file_name)) {
    record.source = source->facility;
  }
  auto tx = store_.begin_file(record, targets_);

  Sha256 file_hash;
  file.read_at(0, 4096, buffer_);
  const std::string_view head = skip_preamble(buffer_);
  if (file.size() == 0 || head.empty()) {
    refuse(file_refusal("empty_file", "the file holds no data"), tx.get(), outcome);
    hash_whole(file, file_hash);
  } else if (parsers::looks_like_hl7(head)) {
    ingest_hl7(file, outcome.file_name, *tx, file_hash, outcome);
  } else if (looks_like_csv(head)) {
    ingest_csv(file, outcome.file_name, *tx, file_hash, outcome);
  } else {
    refuse(file_refusal("unrecognized_format", "neither HL7 v2 (MSH/FHS/BHS) nor a CSV/TSV export"),
           tx.get(), outcome);
    hash_whole(file, file_hash);
  }
  outcome.sha256 = file_hash.finish();
  outcome.summary = tx->commit(outcome.sha256);
  if (outcome.summary.already_known) {
    known_outcome(outcome);
  } else if (outcome.refusals.empty()) {
    outcome.kind = FileOutcome::Kind::accepted;
  } else if (outcome.summary.results_stored > 0 || outcome.summary.duplicates > 0 ||
             outcome.summary.reports > 0) {
    outcome.kind = FileOutcome::Kind::partial;
  } else {
    outcome.kind = FileOutcome::Kind::refused;
  }
  return outcome;
}

// The same bytes were committed before: this reading stored nothing (it was rolled back). A file
// accepted then is simply known; one refused wholly or in part ends as it did the first time, with
// its counts and refusals, so that a file whose move to failed/ was lost in a crash still gets
// there with its reason.
void Pipeline::known_outcome(FileOutcome& outcome) {
  outcome.kind = FileOutcome::Kind::already_known;
  outcome.summary = {};
  outcome.summary.already_known = true;
  outcome.refusals.clear();
  outcome.unmapped.clear();
  std::optional<storage::KnownFile> known = store_.find_file(outcome.sha256);
  if (!known || known->verdict == storage::FileVerdict::accepted) {
    return;
  }
  outcome.kind = known->verdict == storage::FileVerdict::partial ? FileOutcome::Kind::partial
                                                                 : FileOutcome::Kind::refused;
  outcome.summary = known->summary;
  outcome.refusals = std::move(known->refusals);
}

void Pipeline::hash_whole(const ClaimedFile& file, Sha256& file_hash) {
  for (std::uint64_t offset = 0; offset < file.size(); offset += kChunk) {
    file.read_at(offset, kChunk, buffer_);
    if (buffer_.empty()) {
      break;
    }
    file_hash.update(buffer_);
    if (progress_) {
      progress_();
    }
  }
}

void Pipeline::ingest_hl7(const ClaimedFile& file, const std::string& name,
                          storage::FileTransaction& tx, Sha256& file_hash, FileOutcome& outcome) {
  parsers::Hl7Splitter splitter;
  parsers::Hl7Message message;  // reused: its vectors keep their capacity across messages
  Sha256 message_hash;          // the digest of each message, for resend detection
  const auto drain = [&]() {
    while (auto raw = splitter.next()) {
      auto report = parsers::parse_raw_message(*raw, message);
      if (!report) {
        refuse(from_parse_error(report.error()), &tx, outcome);
        continue;
      }
      message_hash.update(raw->bytes);
      store_report(report.value(), message_hash.finish(), name, tx, outcome);
    }
  };
  for (std::uint64_t offset = 0; offset < file.size(); offset += kChunk) {
    file.read_at(offset, kChunk, buffer_);
    if (buffer_.empty()) {
      break;
    }
    file_hash.update(buffer_);
    // No copy of the chunk: drain() takes every message out before buffer_ is read into again.
    splitter.feed_in_place(buffer_);
    drain();
    if (progress_) {
      progress_();
    }
  }
  splitter.finish();
  drain();
}

void Pipeline::ingest_csv(const ClaimedFile& file, const std::string& name,
                          storage::FileTransaction& tx, Sha256& file_hash, FileOutcome& outcome) {
  if (file.size() > parsers::kMaxCsvBytes) {
    refuse(
        file_refusal("too_large", "a CSV export larger than " +
                                      std::to_string(parsers::kMaxCsvBytes) + " bytes is not read"),
        &tx, outcome);
    hash_whole(file, file_hash);
    return;
  }
  std::string text;
  file.read_at(0, static_cast<std::size_t>(file.size()), text);
  file_hash.update(text);
  auto table = parsers::parse_csv(text);
  if (!table) {
    refuse(from_parse_error(table.error()), &tx, outcome);
    return;
  }
  parsers::CsvFileResult parsed = parsers::csv_to_reports(table.value(), config_.csv);
  const config::Source* source = config::match_source(config_, name);
  for (parsers::Refusal& r : parsed.refusals) {
    // A CSV carries no assigning authority: the refused row's key takes the source's.
    if (source != nullptr && !r.patient_key.empty() && r.patient_key.front() == '|') {
      r.patient_key.insert(0, source->authority);
    }
    refuse(r, &tx, outcome);
  }
  for (const parsers::LabReport& report : parsed.reports) {
    store_report(report, {}, name, tx, outcome);
  }
}

void Pipeline::store_report(const parsers::LabReport& report, std::string digest,
                            const std::string& name, storage::FileTransaction& tx,
                            FileOutcome& outcome) {
  clinical::SourceContext context;
  if (const config::Source* source = config::match_source(config_, name, report.sending_facility)) {
    context.facility = source->facility;
    context.authority = source->authority;
    context.timezone = source->timezone;
  }
  auto normalized = clinical::normalize(report, config_.catalogue, context);
  if (!normalized) {
    refuse(normalized.error(), &tx, outcome);
    return;
  }
  clinical::NormalizedReport& n = normalized.value();
  n.raw_digest = std::move(digest);
  for (const parsers::Refusal& r : n.refusals) {
    outcome.refusals.push_back(r);
  }
  for (const auto& [code, count] : n.unmapped) {
    outcome.unmapped[code] += count;
  }
  tx.add_report(n);
}

void Pipeline::refuse(const parsers::Refusal& refusal, storage::FileTransaction* tx,
                      FileOutcome& outcome) {
  if (tx != nullptr) {
    tx->add_refusal(refusal);
  }
  outcome.refusals.push_back(refusal);
}

}  // namespace labwatch::daemon
