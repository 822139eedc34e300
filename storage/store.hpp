// SPDX-License-Identifier: Apache-2.0
// Store: the storage the pipeline, the daemon and the CLI use, by role: IngestStore, ResultQueries,
// SilenceBook and MailOutbox (storage/mail_outbox.hpp). SQLite implements them (PostgreSQL may).
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "clinical/alert_policy.hpp"
#include "clinical/alert_status.hpp"
#include "clinical/analyte_catalogue.hpp"
#include "clinical/mail_policy.hpp"
#include "clinical/normalized.hpp"
#include "clinical/reconcile.hpp"
#include "parsers/lab_report.hpp"
#include "storage/mail_outbox.hpp"
#include "storage/outbox.hpp"

namespace labwatch::storage {

// An inbox file as it lies there before it is read: its digest is known only after reading it
// whole, so a file whose ingest keeps failing is known by these.
struct IntakeKey {
  std::string name;
  std::int64_t size = 0;
  std::int64_t mtime_ns = 0;
  bool operator==(const IntakeKey&) const = default;
};

struct FileRecord {
  // Hex SHA-256 of the file's bytes: the idempotency key. Empty when it is computed while the file
  // is read; then FileTransaction::commit(sha256) supplies it.
  std::string sha256;
  std::string name;    // file name as dropped (no directory)
  std::string source;  // facility code of the matching config source, or empty
  std::int64_t size = 0;
  // The intake attempt begun for this file (IngestStore::begin_intake_attempt), if any: a commit
  // that stores the file ends it in the same transaction, so a file ingested whole costs no extra
  // write.
  std::optional<IntakeKey> intake;
  // The fingerprint of the config the file is judged under (the SHA-256 of its file), or empty
  // when unknown: a refused file dropped again is read anew only under another config.
  std::string config_digest;
};

// Something of a stored file that a person should look at, though nothing was refused. Carries no
// patient data: a reason, where in the file, and the message's control id.
struct IngestWarning {
  std::string reason;  // "accession_reused"
  parsers::SourcePos where;
  std::string control_id;
};

struct IngestSummary {
  bool already_known = false;  // the same bytes were ingested before: nothing changed
  int reports = 0;
  int results_stored = 0;
  int duplicates = 0;          // results already stored (also those of duplicate messages)
  int duplicate_messages = 0;  // byte-identical resends of stored messages
  int superseded = 0;          // earlier versions superseded by this file
  int withdrawn = 0;           // earlier versions withdrawn by a cancellation
  int promoted = 0;            // preliminaries made final by OBX-11 U
  // Lines that are no result and no error: pending (I), not asked (N), order detail (O),
  // comments (TX/FT), not performed (TNP, QNS, ...), U with nothing to promote.
  int skipped = 0;
  int refusals = 0;
  int alerts = 0;   // alerts raised (a new version that keeps its earlier alert's decision too)
  int notices = 0;  // mail notices queued (alerts, corrections, resolutions, retractions)
  std::vector<IngestWarning> warnings;  // of this ingest only (not kept with the file)
};

// How a committed file ended (files.outcome): every refusal is recorded with the file, so that a
// file read again later (a move lost in a crash) ends the same way as the first time.
enum class FileVerdict : std::uint8_t {
  accepted,  // nothing was refused
  partial,   // some messages or results were refused, the rest stored
  refused,   // no report of the file was stored
};

// A file ingested (committed) before: how it ended and what it did then.
struct KnownFile {
  FileVerdict verdict = FileVerdict::accepted;
  std::string name;                        // as it was dropped then
  std::string config_digest;               // FileRecord::config_digest then ('' when unknown)
  IngestSummary summary;                   // the counts of that ingest, with already_known set
  std::vector<parsers::Refusal> refusals;  // in the order they were recorded
};

// An inbox file whose ingest was begun and did not complete: it failed for an operational reason
// (an exception, not its content), or the process ended while ingesting it (a crash, a kill).
struct IntakeAttempt {
  IntakeKey key;
  int failures = 0;        // attempts begun that did not complete
  std::string last_error;  // what the exception said, or kIntakeNotCompleted; no patient data
};

// The last_error of an attempt begun and never settled: the process ended during the ingest.
inline constexpr std::string_view kIntakeNotCompleted =
    "the ingest did not complete: the process ended while ingesting it (a crash, a kill or a "
    "power loss)";

// The alert policy in force (clinical/alert_policy.hpp): storage applies its plans.
using AlertPolicy = clinical::AlertPolicy;

// At most this many refusals of one file are recorded in detail (the refusals table, the daemon's
// outcome and reason file); the rest are only counted (IngestSummary::refusals counts them all). A
// file of millions of broken lines must not cost gigabytes of memory, rows and reason text.
constexpr int kRefusalsKept = 1000;

// A result row a file's transaction stored, read back before it rolled back (`labwatch explain`).
struct DryRunResult {
  std::int64_t result_id = 0;  // valid only within the rolled-back transaction
  parsers::SourcePos where;    // message index, segment and line of the result
  std::string analyte;         // as stored (a stand-in's fraction key when stored as one)
  double value = 0;            // canonical unit
  std::string unit;
  std::string comparator;
  std::string raw_value;  // as the lab sent them
  std::string raw_unit;
  clinical::ResultState state = clinical::ResultState::current;  // current, or an older version
  int replaced = 0;  // stored versions this one superseded or withdrew
  int shown_decimals = -1;
  std::string flags;
  // A stand-in of an earlier file that a total of this one took the place of, stored again as its
  // fraction (clinical::plan_stand_in): `where` is its place in that earlier file.
  bool kept_fraction = false;
};

// An alert the transaction raised on one of its results.
struct DryRunAlert {
  std::int64_t result_id = 0;
  std::string analyte;
  std::string rule;  // the clause, kLabRangeRule, kLabFlagRule or a trend rule
  clinical::AlertStatus state = clinical::AlertStatus::unmailed;  // what would happen to its mail
  double value = 0;
  std::optional<double> target_low;
  std::optional<double> target_high;
};

// What one file would do, read back from its uncommitted transaction.
struct DryRun {
  IngestSummary summary;
  std::vector<DryRunResult> results;  // in file order
  std::vector<DryRunAlert> alerts;
};

// One open file transaction. Rolls back unless commit() is called (RAII).
class FileTransaction {
 public:
  virtual ~FileTransaction() = default;
  FileTransaction() = default;
  FileTransaction(const FileTransaction&) = delete;
  FileTransaction& operator=(const FileTransaction&) = delete;
  FileTransaction(FileTransaction&&) = delete;
  FileTransaction& operator=(FileTransaction&&) = delete;

  // Reconciles and stores one normalized report: person, order, results (duplicate / supersede /
  // withdraw), its refusals and unmapped codes, an alert for each current result outside target or
  // trend, and the mail notices these changes call for (storage/alert_ledger.hpp).
  virtual void add_report(const clinical::NormalizedReport& report) = 0;
  // Records a refusal at file or message level (parse errors, reports that failed to normalize).
  // Past kRefusalsKept refusals of the file (these and those of its reports), only counts it.
  virtual void add_refusal(const parsers::Refusal& refusal) = 0;
  // Commits durably; returns what the file did. Throws std::logic_error when the file's digest was
  // never given (FileRecord::sha256 empty).
  virtual IngestSummary commit() = 0;
  // Commits a file begun without its digest, whose SHA-256 (hex) is known now that every byte was
  // read. When a committed file has the same digest, rolls everything back instead and returns
  // already_known: the IMMEDIATE transaction held the write lock throughout, so no concurrent
  // ingest of the same bytes can commit in between. Throws std::logic_error when begin_file was
  // given a different digest.
  virtual IngestSummary commit(std::string_view sha256) = 0;
  // Reads back what the transaction stored and raised, then rolls everything back: nothing of the
  // file is ever committed (`labwatch explain`). Ends the transaction like a commit.
  virtual DryRun roll_back_explained() = 0;
};

struct ExportRow {
  std::string source_file;
  std::string patient_key;
  std::int64_t person_id = 0;
  std::string analyte;
  double value = 0;
  std::string unit;
  clinical::UnixSeconds collected_at = 0;
  clinical::ResultStatus status = clinical::ResultStatus::final;
  std::string comparator;
  std::string raw_range;
  std::optional<double> ref_low;
  std::optional<double> ref_high;
  std::string facility;
  std::int64_t result_id = 0;
  std::string flags;  // the lab's abnormal flags as sent
  clinical::RangeProblem range_problem = clinical::RangeProblem::not_printed;
  double tolerance = 0;
  int shown_decimals = -1;
  std::string raw_unit;  // the value's unit as the lab sent it (the lab's range text is in it)
};

// A stored result as the clinical decisions take it (evaluate, target_band): every field they
// read, so that a judgement of a stored row is the judgement made at ingest.
clinical::NormalizedResult as_result(const ExportRow& row);

struct AlertRow {
  std::int64_t alert_id = 0;
  std::int64_t person_id = 0;
  std::string patient_key;
  std::string analyte;
  double value = 0;
  std::string unit;
  clinical::UnixSeconds collected_at = 0;
  std::string rule;
  // Active: unmailed (no mail queued: no recipient, `ingest --no-mail`, or a trend re-judged),
  // silenced (a silence kept it from being mailed: `labwatch silence`),
  // historical (collected before the mail age limit: never mailed), preliminary (mailed once
  // final), pending (queued), sent, failed.
  // History: resolved, superseded, withdrawn.
  clinical::AlertStatus state = clinical::AlertStatus::unmailed;
  std::optional<double> target_low;
  std::optional<double> target_high;
  std::int64_t result_id = 0;
  std::string comparator;  // of the result: "<", ">", ... for a censored value
  // A silenced alert: when the silence it fell under ends (its date, or when it was expired
  // early); nullopt for other alerts.
  std::optional<clinical::UnixSeconds> silenced_until;
};

// A practitioner's silence (`labwatch silence`): no mail about one person's alerts of one analyte
// until a date (clinical/silence.hpp decides which alerts it covers).
struct NewSilence {
  std::int64_t person_id = 0;
  std::string analyte;  // catalogue key
  clinical::UnixSeconds until = 0;
  std::string reason;
  std::string os_user;  // SUDO_USER, else USER
  clinical::UnixSeconds now = 0;
};

struct SilenceRow {
  std::int64_t silence_id = 0;
  std::int64_t person_id = 0;
  std::string analyte;
  clinical::UnixSeconds until = 0;
  std::string os_user;
  clinical::UnixSeconds created_at = 0;
  std::string reason;
  std::optional<clinical::UnixSeconds> expired_at;  // ended early by `silence --expire`
  std::string set_side;  // clinical::AlertSide of the alert active when it was set; '' none
  std::string set_tier;  // clinical::AlertTier of it; '' none
  // In force at `now` (the time the rows were read for): not expired, until still ahead.
  [[nodiscard]] bool active(clinical::UnixSeconds now) const noexcept {
    return !expired_at && until > now;
  }
};

struct PersonRow {
  std::int64_t person_id = 0;
  std::string family;
  std::string given;
  std::string birth_date;
  char sex = 'U';
  std::vector<std::string> patient_keys;
  int results = 0;
  clinical::UnixSeconds last_collected_at = 0;
};

// The ingest's side of a store (the pipeline, the daemon's poison-file guard): files are looked up,
// stored in one transaction each, set aside for a reprocess; failed intake attempts are counted.
class IngestStore {
 public:
  virtual ~IngestStore() = default;
  IngestStore() = default;
  IngestStore(const IngestStore&) = delete;
  IngestStore& operator=(const IngestStore&) = delete;
  IngestStore(IngestStore&&) = delete;
  IngestStore& operator=(IngestStore&&) = delete;

  // The earlier ingest of a file with these bytes (hex SHA-256): its verdict, counts and refusals;
  // nullopt when no such file was committed. Throws on database errors.
  virtual std::optional<KnownFile> find_file(std::string_view sha256) = 0;
  // Sets aside the verdict of the refused or partly refused file committed with these bytes, so
  // that they can be ingested again (under another config): its row and refusals stay as history
  // under the key "SHA256:set-aside:FILE_ID". Returns false, changing nothing, when no such file
  // was committed or it was accepted. One transaction; throws on database errors.
  virtual bool set_aside_verdict(std::string_view sha256) = 0;
  // Starts the one transaction of a file (BEGIN IMMEDIATE). When `file.sha256` is given and a file
  // with it was committed before, the transaction stores nothing and its commit reports
  // already_known. Throws on database errors.
  virtual std::unique_ptr<FileTransaction> begin_file(const FileRecord& file,
                                                      const AlertPolicy& targets) = 0;

  // ---- Intake attempts (the daemon's poison-file guard). Each call is one transaction. ----

  // Every inbox file recorded as failed, read once at start-up.
  virtual std::vector<IntakeAttempt> intake_attempts() = 0;
  // Counts one more attempt of `key`, committed before a byte of it is read, with
  // kIntakeNotCompleted as its error until the attempt is settled: a process that dies during the
  // ingest leaves it counted. Returns the attempts so far, this one included.
  virtual int begin_intake_attempt(const IntakeKey& key) = 0;
  // Records the error of the attempt begun for `key` (counting one when none was begun); returns
  // the attempts so far.
  virtual int record_intake_failure(const IntakeKey& key, std::string_view error) = 0;
  // The file of `key` was ingested or moved away: its attempts are forgotten. (A file transaction
  // with FileRecord::intake does this in its commit.)
  virtual void forget_intake_attempt(const IntakeKey& key) = 0;
};

// What is stored, read back (the CLI's listings, the trend report, the report a mail attaches).
// Reads only: none of these writes.
class ResultQueries {
 public:
  virtual ~ResultQueries() = default;
  ResultQueries() = default;
  ResultQueries(const ResultQueries&) = delete;
  ResultQueries& operator=(const ResultQueries&) = delete;
  ResultQueries(ResultQueries&&) = delete;
  ResultQueries& operator=(ResultQueries&&) = delete;

  // Current (not superseded, not withdrawn) results, ordered by person, analyte, time.
  virtual std::vector<ExportRow> current_results() = 0;
  // The same rows, one at a time, without holding them all in memory (for large exports).
  virtual void for_each_current_result(const std::function<void(const ExportRow&)>& visit) = 0;
  // One person's current results of one analyte, oldest first.
  virtual std::vector<ExportRow> trend(std::int64_t person_id, std::string_view analyte) = 0;
  // The collection times at which one person's analyte was reported as not performed (TNP, QNS,
  // ...) and no current value exists: the gaps of that trend, oldest first.
  virtual std::vector<clinical::UnixSeconds> not_performed(std::int64_t person_id,
                                                           std::string_view analyte) = 0;
  // Active alerts (unmailed, historical, preliminary, silenced, pending, sent, failed) on current
  // results;
  // `all` adds every alert,
  // resolved, superseded and withdrawn history included.
  virtual std::vector<AlertRow> alerts(bool all) = 0;
  virtual std::vector<PersonRow> persons() = 0;
  // One person, as persons() lists them, without reading everyone; nullopt for an unknown id.
  virtual std::optional<PersonRow> person(std::int64_t person_id) = 0;
  // Resolves "123" (person id; a merged person's id gives the person it was merged into),
  // "AUTH|MRN", or a report reference as a mail prints it (a control id, order id or file name;
  // several joined by ", ") to a person id. nullopt when the text names no person, or more than
  // one by its readings together.
  virtual std::optional<std::int64_t> find_person(std::string_view id_or_key) = 0;

  // Every silence, by id.
  virtual std::vector<SilenceRow> silences() = 0;
};

// A practitioner's silences (`labwatch silence`), set and ended; ResultQueries::silences lists
// them. Each call is one transaction.
class SilenceBook {
 public:
  virtual ~SilenceBook() = default;
  SilenceBook() = default;
  SilenceBook(const SilenceBook&) = delete;
  SilenceBook& operator=(const SilenceBook&) = delete;
  SilenceBook(SilenceBook&&) = delete;
  SilenceBook& operator=(SilenceBook&&) = delete;

  // Records a silence, with the state of the alert on the person's latest current result of the
  // analyte, if one is active (clinical::alert_state_of), and returns its id.
  virtual std::int64_t add_silence(const NewSilence& silence) = 0;
  // Ends silence `silence_id` at `now`. False when there is no such silence, or it has ended.
  virtual bool expire_silence(std::int64_t silence_id, clinical::UnixSeconds now) = 0;
};

// One store, every role: what open_store returns, on SQLite or PostgreSQL. Its users take the
// narrowest role they need; the owner of the store hands them out.
class Store : public IngestStore, public ResultQueries, public SilenceBook, public MailOutbox {};

struct StoreOptions {
  bool create = true;  // create the file (mode 0600) when missing
  int busy_timeout_ms = 5000;
  // The connection's page cache, in KiB: a bound on its memory, filled only as pages are read. A
  // large file's transaction keeps its index pages here; with SQLite's default of 2 MiB they are
  // written to the WAL and read back again and again (100,000 messages: 1.24 million pread/pwrite
  // calls with 2 MiB, 0.26 million with 32 MiB). With 16 KiB pages (open_database) 24 MiB holds
  // a 100,000-message file's person index, and leaves room under the 64 MB the ingest keeps to
  // for the trend histories the alert ledger keeps (AlertLedger).
  int cache_kib = 24 * 1024;
  // Who claims mail through this store (MailOutbox): the daemon's site, e.g. "host:/inbox". A
  // daemon that starts again takes back at once what its own site left 'sending'; another site's
  // items only when their lease has ended. Empty for the CLI, which sends no mail.
  std::string site;
};

// Opens (creating and migrating as needed) the store `database` names: a "postgresql://" URL is a
// PostgreSQL database (storage/sql_postgres.hpp), anything else the path of a SQLite file (WAL,
// synchronous=FULL, foreign keys on, files 0600, a page cache of options.cache_kib). Throws
// SQLite::Exception / sql::Error / std::system_error on failure, std::runtime_error for a
// database of a newer schema. A store is used by one thread at a time.
std::unique_ptr<Store> open_store(const std::string& database, const StoreOptions& options = {});

// True when `e`, thrown by a store, says another writer held the database past the busy timeout
// (SQLITE_BUSY, SQLITE_LOCKED; a PostgreSQL serialization failure or deadlock): the work is to be
// retried later, the database is not broken.
bool is_busy(const std::exception& e) noexcept;

// True when `e`, thrown by a store on PostgreSQL, says the server cannot be reached or went away
// (restarted, the network dropped): the work is to be retried later, as for is_busy. The store
// connects again by itself at its next transaction.
bool is_unreachable(const std::exception& e) noexcept;

}  // namespace labwatch::storage
