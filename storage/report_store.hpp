// SPDX-License-Identifier: Apache-2.0
// The SQLite file transaction: reconciles each normalized report and stores it with its alerts.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "clinical/person_match.hpp"
#include "clinical/reconcile.hpp"
#include "storage/alert_ledger.hpp"
#include "storage/sql.hpp"
#include "storage/store.hpp"

namespace labwatch::storage {

// The statements of the ingest path, prepared once per connection and reused by every transaction,
// so that storing a result costs no SQL compilation.
struct IngestStatements {
  explicit IngestStatements(sql::Database& db);

  sql::Statement find_file;
  sql::Statement insert_file;
  sql::Statement finish_file;
  sql::Statement find_identifier;
  sql::Statement find_agreeing_persons;
  sql::Statement find_persons_born_on;
  sql::Statement find_identifiers_of;
  sql::Statement refine_sex;
  sql::Statement insert_match_candidate;
  sql::Statement insert_person;
  sql::Statement insert_identifier;
  sql::Statement find_message;
  sql::Statement insert_message;
  sql::Statement find_order_group;
  sql::Statement find_natural_group;
  sql::Statement find_draw;
  sql::Statement insert_result;
  sql::Statement update_result_state;
  sql::Statement update_result_status;
  sql::Statement insert_refusal;
  sql::Statement insert_not_performed;
  sql::Statement upsert_unmapped;
};

// One file's IMMEDIATE transaction on a SqliteStore's connection. Rolls back when destroyed
// uncommitted. Must not outlive the store; one at a time per store.
class SqliteFileTransaction final : public FileTransaction {
 public:
  // Begins the transaction and records the file; when `file.sha256` is given and a committed file
  // has it, the transaction only reports already_known. Throws SQLite::Exception (e.g.
  // SQLITE_BUSY).
  SqliteFileTransaction(sql::Database& db, IngestStatements& statements,
                        LedgerStatements& ledger_statements, const FileRecord& file,
                        AlertPolicy targets);
  ~SqliteFileTransaction() override = default;  // transaction_ rolls back unless committed
  SqliteFileTransaction(const SqliteFileTransaction&) = delete;
  SqliteFileTransaction& operator=(const SqliteFileTransaction&) = delete;
  SqliteFileTransaction(SqliteFileTransaction&&) = delete;
  SqliteFileTransaction& operator=(SqliteFileTransaction&&) = delete;

  void add_report(const clinical::NormalizedReport& report) override;
  void add_refusal(const parsers::Refusal& refusal) override;
  IngestSummary commit() override;
  IngestSummary commit(std::string_view sha256) override;
  DryRun roll_back_explained() override;

 private:
  bool committed(const std::string& sha256);
  IngestSummary finish(const std::string& sha256);
  IngestSummary known();
  std::int64_t resolve_person(const clinical::PersonIdentity& person);
  struct FoundCandidates {
    std::vector<clinical::MatchCandidate> persons;
    bool all_agreeing = true;  // every person with the identity's demographic key is in persons
  };
  FoundCandidates match_candidates(const clinical::PersonIdentity& person);
  std::optional<std::int64_t> find_resend(const clinical::NormalizedReport& report);
  std::int64_t insert_message(const clinical::NormalizedReport& report, std::int64_t person_id,
                              clinical::UnixSeconds message_time);
  void store_result(const clinical::NormalizedReport& report,
                    const clinical::NormalizedResult& result, std::int64_t person_id,
                    std::int64_t message_id, clinical::UnixSeconds message_time);
  void record_skipped(const clinical::SkippedLine& line, std::int64_t person_id,
                      std::int64_t message_id);
  void load_group(const clinical::VersionKey& key);
  void load_draw(const clinical::VersionKey& key, const clinical::NormalizedResult& result);
  void promote(std::optional<std::int64_t> id);
  clinical::StandInPlan plan_stand_in(const clinical::NormalizedResult& result,
                                      std::int64_t person_id);
  void keep_as_fraction(const clinical::StandInMove& move);
  void apply_change(const clinical::VersionChange& change, std::int64_t incoming_id);
  void insert_refusal(const parsers::Refusal& refusal, const char* level,
                      std::optional<std::int64_t> message_id);
  void remember(std::unordered_map<std::string, std::int64_t>& cache, std::string key,
                std::int64_t person_id);
  void count_unmapped(const clinical::NormalizedReport& report);
  void flush_unmapped();

  sql::Database& db_;
  IngestStatements& statements_;
  // BEGIN IMMEDIATE; rolled back when reset, or on destruction unless committed.
  std::optional<sql::Transaction> transaction_;
  AlertPolicy targets_;
  std::string file_name_;
  std::string sha256_;               // as given to begin_file; empty until commit(sha256)
  std::optional<IntakeKey> intake_;  // the intake attempt that a commit of the file ends
  std::int64_t file_id_ = 0;
  std::int64_t now_ = 0;
  bool known_ = false;     // the file was ingested before: store nothing
  bool finished_ = false;  // committed
  IngestSummary summary_;
  std::int64_t last_result_id_ = 0;           // the result row this transaction inserted last
  std::vector<std::int64_t> kept_fractions_;  // rows keep_as_fraction inserted, for explain
  AlertLedger ledger_;                        // refers to targets_ and summary_, declared before it
  // Per-transaction caches: valid only while this transaction holds the write lock, and bounded
  // (cleared when full) so that a file about a million patients cannot grow them without limit.
  std::unordered_map<std::string, std::int64_t> person_by_identifier_;
  // Unmapped codes (facility, code) -> results, written at commit or when the map is full: one
  // upsert per code instead of one per code and message.
  struct PendingUnmapped {
    int count = 0;
    std::string name;  // the latest name and unit sent with the code in this file
    std::string unit;
  };
  std::map<std::pair<std::string, std::string>, PendingUnmapped, std::less<>> unmapped_;

  // The stored versions of one group (an order, or a CSV report's person and collection time),
  // loaded with one index lookup and then kept in step with every write of this transaction, so
  // that the results of one order cost one lookup together.
  struct GroupVersion {
    std::string analyte;
    std::int64_t person_id = 0;
    clinical::UnixSeconds collected_at = 0;
    clinical::StoredVersion version;
  };
  struct GroupKey {  // an owned copy of the loaded group's identity
    std::string facility;
    std::string order_id;
    std::int64_t person_id = 0;
    clinical::UnixSeconds collected_at = 0;
  };
  std::optional<GroupKey> group_key_;
  std::vector<GroupVersion> group_;
  bool group_reuses_accession_ = false;   // the loaded order id has rows of another person
  bool report_reuses_accession_ = false;  // some result of the current report met such an order
  std::vector<GroupVersion> related_;     // scratch: the versions one result is reconciled with
  std::vector<clinical::StoredVersion> versions_;  // scratch: one analyte's versions
};

}  // namespace labwatch::storage
