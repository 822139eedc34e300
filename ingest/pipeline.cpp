// SPDX-License-Identifier: Apache-2.0
// Pipeline: claim a file, read it on a reader thread, store it in one transaction on this one.
#include "ingest/pipeline.hpp"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <fstream>
#include <functional>
#include <iterator>
#include <optional>
#include <system_error>
#include <thread>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

#include "clinical/mail_policy.hpp"
#include "config/config_loader.hpp"
#include "ingest/digest.hpp"
#include "ingest/handoff.hpp"
#include "os/log.hpp"

namespace labwatch::daemon {
namespace {

// Refusals as the admin reads them: in the order of the file, by message and then line. A CSV's
// rows are refused in two passes (while the table is mapped to reports, then while each report is
// normalized); an HL7 file's refusals come in order already.
void in_file_order(std::vector<parsers::Refusal>& refusals) {
  std::stable_sort(
      refusals.begin(), refusals.end(), [](const parsers::Refusal& a, const parsers::Refusal& b) {
        return std::tie(a.where.message, a.where.line) < std::tie(b.where.message, b.where.line);
      });
}

// A file up to this size is read on the calling thread: starting a thread and waking the other
// one for each batch costs more than a small file takes to read (1,100 instead of 1,650 one-result
// files per second through the daemon).
constexpr std::uint64_t kReaderThreadBytes = 1u << 20;

// The reader thread of one file. It starts with every signal blocked: signals are the daemon
// loop's business (Asio's signal_set; SIGXFSZ ignored), and none may interrupt the reader. However
// the storing side leaves (a database error too), the reader is stopped and joined first: it uses
// the file, the hash and the handoff of the storing side's frame.
class ReaderThread {
 public:
  ReaderThread(Handoff<FileBatch>& handoff, std::function<void()> body) : handoff_(handoff) {
    sigset_t all;
    sigset_t previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    try {
      thread_ = std::thread(std::move(body));
    } catch (...) {
      pthread_sigmask(SIG_SETMASK, &previous, nullptr);
      throw;
    }
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  }
  ~ReaderThread() {
    handoff_.cancel();
    thread_.join();
  }
  ReaderThread(const ReaderThread&) = delete;
  ReaderThread& operator=(const ReaderThread&) = delete;
  ReaderThread(ReaderThread&&) = delete;
  ReaderThread& operator=(ReaderThread&&) = delete;

 private:
  Handoff<FileBatch>& handoff_;
  std::thread thread_;
};

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
    case FileOutcome::Kind::changed:
      return "changed while it was read";
  }
  return "unknown";
}

namespace {

// "message 3, segment 5 OBX, field 5: reason: detail", each part when known.
std::string describe_at(const parsers::SourcePos& where, std::string_view reason,
                        const std::string& detail) {
  std::string out = parsers::describe(where);
  if (!out.empty()) {
    out += ": ";
  }
  out += reason;
  if (!detail.empty() && detail != reason) {
    out += ": " + detail;
  }
  return out;
}

}  // namespace

std::string describe(const parsers::Refusal& r) {
  return describe_at(r.where, parsers::to_string(r.reason), r.detail);
}

std::string describe(const parsers::Warning& warning) {
  return describe_at(warning.where, warning.reason, warning.detail);
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

storage::AlertPolicy targets_of(const config::Config& config) {
  storage::AlertPolicy targets;
  targets.catalogue = &config.catalogue;
  for (const auto& [key, rule] : config.targets) {
    targets.by_analyte.emplace(key, rule);
  }
  targets.routing = routing_of(config);
  for (const auto& [key, trends] : config.trends) {
    targets.trends.emplace(key, trends);
  }
  targets.mail_policy.max_age_seconds =
      std::int64_t{config.alerts.mail_max_age_days} * clinical::kSecondsPerDay;
  targets.mail_policy.mail_preliminary = config.alerts.mail_preliminary;
  return targets;
}

Pipeline::Pipeline(const config::Config& config, storage::IngestStore& store)
    : config_(config), store_(store), targets_(targets_of(config_)), reader_(config) {}

std::string config_fingerprint(const config::Config& config) {
  if (config.path.empty()) {
    return "built-in defaults";
  }
  std::ifstream in(config.path, std::ios::binary);
  if (!in) {
    return {};
  }
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) {
    return {};
  }
  Sha256 hash;
  hash.update(text);
  return hash.finish();
}

// Why a refused file's bytes are read again in the daemon only when the config changed: an admin
// moves a file back from failed/ into the inbox after fixing the config (a source added, a code
// mapped); under the config it was refused with, the same bytes are refused the same way, and
// replaying that verdict is what lets a file whose move was lost in a crash still reach failed/
// with its reason. A file recorded without a fingerprint (before schema 9) is read again: its
// results are recognized and not stored twice, and a refusal is recorded anew.
FileOutcome Pipeline::process_file(const std::filesystem::path& path, const ClaimPolicy& policy,
                                   const std::optional<storage::IntakeKey>& intake) {
  FileOutcome outcome = read_and_store(path, policy, intake);
  if (!reread_refused_ || !outcome.summary.already_known ||
      outcome.kind == FileOutcome::Kind::already_known) {
    return outcome;
  }
  const std::optional<storage::KnownFile> known = store_.find_file(outcome.sha256);
  if (!known || known->config_digest == config_digest_ ||
      !store_.set_aside_verdict(outcome.sha256)) {
    return outcome;
  }
  log::info(outcome.file_name + ": refused under another config before; reading it again");
  return read_and_store(path, policy, intake);
}

FileOutcome Pipeline::read_and_store(const std::filesystem::path& path, const ClaimPolicy& policy,
                                     const std::optional<storage::IntakeKey>& intake) {
  FileOutcome outcome;
  outcome.file_name = path.filename().string();
  counts_ = {};
  auto claimed = ClaimedFile::open(path, policy);
  if (!claimed) {
    refuse(claimed.error(), nullptr, outcome);
    outcome.kind = FileOutcome::Kind::refused;
    return outcome;
  }
  const ClaimedFile& file = claimed.value();
  outcome.read = file.identity();

  // The content hash is the idempotency key: the same bytes are ingested once, whatever their name.
  // It is computed from the chunks the parser reads, so the file is read and hashed once; whether
  // it is known is decided when the transaction commits (storage::FileTransaction::commit).
  storage::FileRecord record;
  record.name = outcome.file_name;
  record.size = static_cast<std::int64_t>(file.size());
  record.intake = intake;
  record.config_digest = config_digest_;
  if (const config::Source* source = config::match_source(config_, outcome.file_name)) {
    record.source = source->facility;
  }
  auto tx = store_.begin_file(record, targets_);

  // The reader reads, hashes, parses and normalizes; the storing side stores what it hands over,
  // in file order. SQLite has one writer: for a file of more than one chunk, everything that is
  // not the database runs beside it, on a reader thread. A smaller file is not worth a thread.
  Sha256 file_hash;
  const std::function<void(FileBatch&)> store_batch = [&](FileBatch& batch) {
    for (const FileItem& item : batch) {
      store(item, *tx, outcome);
    }
    if (progress_) {
      progress_();
    }
  };
  if (file.size() <= kReaderThreadBytes ||
      !read_on_thread(file, record.name, file_hash, store_batch)) {
    BatchSink out(store_batch);
    reader_.read(file, record.name, file_hash, buffer_, out);
  }
  if (policy.unchanged_after_read && !file.unchanged()) {
    // A writer still had it (appended, truncated, rewrote it): what was read may be a torn copy.
    // Nothing is committed (the transaction rolls back); the caller reads it again once it settles.
    outcome = FileOutcome{};
    outcome.file_name = record.name;
    outcome.read = file.identity();
    outcome.kind = FileOutcome::Kind::changed;
    return outcome;
  }
  in_file_order(outcome.refusals);
  outcome.sha256 = file_hash.finish();
  if (explaining_ != nullptr) {
    explaining_->stored = tx->roll_back_explained();
    explaining_->known = store_.find_file(outcome.sha256);
    outcome.summary = explaining_->stored.summary;
  } else {
    outcome.summary = tx->commit(outcome.sha256);
  }
  for (const storage::IngestWarning& warning : outcome.summary.warnings) {
    // File name, message index and control id only: never patient data.
    log::warning(
        record.name + ": " + warning.reason + ": message " +
        std::to_string(warning.where.message + 1) +
        (warning.control_id.empty() ? std::string() : " (control id " + warning.control_id + ")") +
        ": its OBR-3 accession number was stored before for another patient; "
        "kept as a separate result");
  }
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

FileExplanation Pipeline::explain_file(const std::filesystem::path& path,
                                       const ClaimPolicy& policy) {
  FileExplanation explanation;
  explaining_ = &explanation;
  try {
    explanation.outcome = process_file(path, policy);
  } catch (...) {
    explaining_ = nullptr;
    throw;
  }
  explaining_ = nullptr;
  return explanation;
}

bool Pipeline::read_on_thread(const ClaimedFile& file, const std::string& name, Sha256& file_hash,
                              const std::function<void(FileBatch&)>& store_batch) {
  Handoff<FileBatch> handoff(BatchSink::kDepth, BatchSink::kBudget);
  std::optional<ReaderThread> reader;
  try {
    reader.emplace(handoff, [&] {
      try {
        BatchSink out(handoff);
        reader_.read(file, name, file_hash, buffer_, out);
        handoff.close();
      } catch (const ReadCancelled&) {
        handoff.close();
      } catch (...) {
        handoff.close(std::current_exception());
      }
    });
  } catch (const std::system_error&) {
    return false;  // no thread to be had (EAGAIN: a process or pids limit); nothing was read
  }
  while (std::optional<FileBatch> batch = handoff.next()) {
    store_batch(*batch);
    handoff.give_back(std::move(*batch));
  }
  return true;
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
  outcome.refusals_dropped = 0;
  outcome.unmapped.clear();
  outcome.warnings.clear();
  std::optional<storage::KnownFile> known = store_.find_file(outcome.sha256);
  if (!known || known->verdict == storage::FileVerdict::accepted) {
    return;
  }
  outcome.kind = known->verdict == storage::FileVerdict::partial ? FileOutcome::Kind::partial
                                                                 : FileOutcome::Kind::refused;
  outcome.summary = known->summary;
  outcome.refusals = std::move(known->refusals);
  in_file_order(outcome.refusals);
  const auto counted = static_cast<std::uint64_t>(std::max(outcome.summary.refusals, 0));
  outcome.refusals_dropped =
      counted > outcome.refusals.size() ? counted - outcome.refusals.size() : 0;
}

void Pipeline::store(const FileItem& item, storage::FileTransaction& tx, FileOutcome& outcome) {
  if (const parsers::Refusal* refusal = std::get_if<parsers::Refusal>(&item)) {
    refuse(*refusal, &tx, outcome);
    return;
  }
  const clinical::NormalizedReport& report = std::get<clinical::NormalizedReport>(item);
  ++counts_.reports;
  counts_.results += report.results.size();
  if (report.where.offset != static_cast<std::size_t>(-1)) {
    counts_.offset = report.where.offset;
  }
  if (explaining_ != nullptr) {
    explaining_->reports.push_back(report);
  }
  for (const parsers::Refusal& refusal : report.refusals) {
    keep(refusal, outcome);
  }
  for (const auto& [code, count] : report.unmapped) {
    outcome.unmapped[code] += count;
  }
  for (const parsers::Warning& warning : report.warnings) {
    // Places and reasons only, like a refusal: no patient data reaches the log.
    log::warning(outcome.file_name + ": " + describe(warning));
    outcome.warnings.push_back(warning);
  }
  tx.add_report(report);
}

void Pipeline::refuse(const parsers::Refusal& refusal, storage::FileTransaction* tx,
                      FileOutcome& outcome) {
  if (tx != nullptr) {
    tx->add_refusal(refusal);
  }
  keep(refusal, outcome);
}

void Pipeline::keep(const parsers::Refusal& refusal, FileOutcome& outcome) {
  if (outcome.refusals.size() < static_cast<std::size_t>(storage::kRefusalsKept)) {
    outcome.refusals.push_back(refusal);
  } else {
    ++outcome.refusals_dropped;
  }
}

}  // namespace labwatch::daemon
