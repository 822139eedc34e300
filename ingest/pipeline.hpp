// SPDX-License-Identifier: Apache-2.0
// Pipeline: one file through claim -> parse -> normalize -> one store transaction. No Asio, no
// moves: the daemon moves the file after process_file returns; `labwatch ingest` never moves it.
// A file of more than 1 MiB is read, parsed and normalized on a reader thread while the calling
// thread stores it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "ingest/claimed_file.hpp"
#include "ingest/file_reader.hpp"
#include "parsers/lab_report.hpp"
#include "storage/outbox.hpp"
#include "storage/store.hpp"

namespace labwatch::daemon {

struct FileOutcome {
  enum class Kind {
    accepted,       // every message and result stored (or recognized as already stored)
    partial,        // stored, but some messages or results were refused
    refused,        // nothing stored: the file as a whole was refused
    already_known,  // the same bytes were ingested before
    changed,        // nothing stored: the file changed while it was read (read it again later)
  };
  Kind kind = Kind::accepted;
  std::string file_name;
  std::optional<FileIdentity> read;  // the file that was read, as it was opened
  std::string sha256;
  storage::IngestSummary summary;
  // The first storage::kRefusalsKept refusals, in file order; those past them are only counted.
  std::vector<parsers::Refusal> refusals;
  std::uint64_t refusals_dropped = 0;
  std::map<std::string, int> unmapped;     // code -> count, for the admin
  std::vector<parsers::Warning> warnings;  // read, but not as declared (logged as they come)

  // Every refusal of the file, listed or not.
  [[nodiscard]] std::uint64_t refused() const noexcept {
    return refusals.size() + refusals_dropped;
  }
};

std::string_view to_string(FileOutcome::Kind kind) noexcept;

// A file read through the whole pipeline in a transaction that is rolled back: what an ingest of
// it would do now, with nothing written (`labwatch explain`).
struct FileExplanation {
  FileOutcome outcome;  // as an ingest would end now (its summary, its refusals in file order)
  std::vector<clinical::NormalizedReport> reports;  // each message (HL7) or report (CSV), in order
  storage::DryRun stored;  // the results the transaction stored and the alerts it raised
  std::optional<storage::KnownFile> known;  // these bytes were ingested before: ingest stores none
};

// How many results of the file had a code outside the catalogue (skipped, counted per code).
inline int unmapped_results(const FileOutcome& outcome) noexcept {
  int total = 0;
  for (const auto& entry : outcome.unmapped) {
    total += entry.second;
  }
  return total;
}

// A refusal as one line without patient data: "message 2 (line 14), segment 7 OBX, field 5:
// non_numeric_value: OBX-5 is not a number".
std::string describe(const parsers::Refusal& refusal);
// A warning the same way: "message 2, line 1, segment 1 MSH, field 18: unknown_charset: ...".
std::string describe(const parsers::Warning& warning);

// Where alerts of this config go: practitioners by ordering provider and by facility, else the
// default recipient. Empty when no mail is configured.
storage::Routing routing_of(const config::Config& config);

// The rules in force under this config: optimal targets, trend rules, the catalogue, routing.
storage::AlertPolicy targets_of(const config::Config& config);

// The fingerprint a file is recorded with (storage::FileRecord::config_digest): the SHA-256 (hex)
// of the config file's bytes, "built-in defaults" without a file, "" when it cannot be read now.
std::string config_fingerprint(const config::Config& config);

class Pipeline {
 public:
  Pipeline(const config::Config& config, storage::IngestStore& store);

  // Ingests one file in one transaction. Bad input becomes refusals in the outcome (and in the DB);
  // environment failures (database, I/O) throw, and then nothing of the file was committed. A file
  // whose bytes were committed before stores nothing: already_known when it was accepted then,
  // else partial or refused with the counts and refusals of then (summary.already_known set).
  // `intake`: the daemon's attempt at the file (IngestStore::begin_intake_attempt), ended by the
  // commit that stores the file; an outcome with no sha256, or already_known, did not end it.
  FileOutcome process_file(const std::filesystem::path& path, const ClaimPolicy& policy,
                           const std::optional<storage::IntakeKey>& intake = std::nullopt);

  // Reads one file as process_file does, then rolls its transaction back after reading back what
  // it stored: nothing is committed, and the file is only read. Environment failures throw.
  FileExplanation explain_file(const std::filesystem::path& path, const ClaimPolicy& policy);

  // Called on the calling thread after each batch of a file is stored (BatchSink::kItems reports
  // or BatchSink::kWeight results at most, and at least one batch per 1 MiB chunk read): the
  // daemon pings its watchdog from here, so a large file cannot look like a hang.
  void set_progress(std::function<void()> progress) { progress_ = std::move(progress); }

  // How far the file being processed has come: for a progress line on a terminal.
  struct Counts {
    std::uint64_t reports = 0;  // messages (HL7) or reports (CSV) handed to the store
    std::uint64_t results = 0;  // results in them
    std::uint64_t offset = 0;   // byte offset of the last of them in the file
  };
  [[nodiscard]] const Counts& counts() const noexcept { return counts_; }

  // Alerts of the files ingested from now on are recorded, and no mail is queued for them
  // (`labwatch ingest --no-mail`): clinical::MailPolicy::suppressed.
  void suppress_mail() noexcept { targets_.mail_policy.suppressed = true; }

  // Files are recorded with `digest`, the fingerprint of the config in force (config_fingerprint).
  // With `reread_refused` (the daemon), the bytes of a file refused under another config, or an
  // unknown one, are set aside and read again instead of being replayed as refused; `ingest` keeps
  // replaying them (exit 2) and `reprocess` sets them aside itself.
  void set_config_digest(std::string digest, bool reread_refused) {
    config_digest_ = std::move(digest);
    reread_refused_ = reread_refused;
  }

 private:
  FileOutcome read_and_store(const std::filesystem::path& path, const ClaimPolicy& policy,
                             const std::optional<storage::IntakeKey>& intake);
  void known_outcome(FileOutcome& outcome);
  // Reads `file` on a reader thread and passes each batch to `store_batch` on this one. Returns
  // false, having read nothing, when no thread can be started: the caller then reads it itself.
  bool read_on_thread(const ClaimedFile& file, const std::string& name, Sha256& file_hash,
                      const std::function<void(FileBatch&)>& store_batch);
  void store(const FileItem& item, storage::FileTransaction& tx, FileOutcome& outcome);
  void refuse(const parsers::Refusal& refusal, storage::FileTransaction* tx, FileOutcome& outcome);
  static void keep(const parsers::Refusal& refusal, FileOutcome& outcome);

  const config::Config& config_;
  storage::IngestStore& store_;
  storage::AlertPolicy targets_;
  FileReader reader_;
  std::string buffer_;  // the reader's chunk buffer, reused from file to file
  std::function<void()> progress_;
  FileExplanation* explaining_ = nullptr;  // set during explain_file
  Counts counts_;                          // of the file being processed
  std::string config_digest_;
  bool reread_refused_ = false;
};

}  // namespace labwatch::daemon
