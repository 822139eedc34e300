// SPDX-License-Identifier: Apache-2.0
// SqliteStore: the Store on one SQLite connection; file transactions and the read queries.
#include <SQLiteCpp/Exception.h>
#include <sqlite3.h>

#include <algorithm>
#include <charconv>
#include <exception>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "storage/alert_ledger.hpp"
#include "storage/connect.hpp"
#include "storage/database.hpp"
#include "storage/mail_queue.hpp"
#include "storage/report_store.hpp"
#include "storage/silence_store.hpp"
#include "storage/sql_values.hpp"
#include "storage/store.hpp"

namespace labwatch::storage {

namespace {

// The columns of an ExportRow, in the order read_export_row expects.
constexpr const char* kExportSelect =
    "SELECT f.name, m.patient_key, r.person_id, r.analyte, r.value, r.unit, r.collected_at, "
    "r.status, r.comparator, r.raw_range, r.ref_low, r.ref_high, m.facility, r.result_id, "
    "r.flags, r.range_use, r.tolerance, r.shown_decimals, r.raw_unit "
    "FROM results r JOIN messages m ON m.message_id = r.message_id "
    "JOIN files f ON f.file_id = m.file_id ";

ExportRow read_export_row(const sql::Statement& row) {
  ExportRow out;
  out.source_file = row.column(0).as_string();
  out.patient_key = row.column(1).as_string();
  out.person_id = row.column(2).as_int64();
  out.analyte = row.column(3).as_string();
  out.value = row.column(4).as_double();
  out.unit = row.column(5).as_string();
  out.collected_at = row.column(6).as_int64();
  out.status = read_status(row.column(7));
  out.comparator = row.column(8).as_string();
  out.raw_range = row.column(9).as_string();
  out.ref_low = read_optional(row.column(10));
  out.ref_high = read_optional(row.column(11));
  out.facility = row.column(12).as_string();
  out.result_id = row.column(13).as_int64();
  out.flags = row.column(14).as_string();
  // Rows stored before version 4 say nothing: a bound they have was the lab's range.
  out.range_problem =
      clinical::range_problem_from_key(row.column(15).as_string())
          .value_or(out.ref_low || out.ref_high ? clinical::RangeProblem::none
                                                : clinical::RangeProblem::not_printed);
  out.tolerance = row.column(16).as_double();
  out.shown_decimals = read_position(row.column(17));
  out.raw_unit = row.column(18).as_string();
  return out;
}

// The columns of a refusal, in the order of find_file's query.
parsers::Refusal read_refusal(const sql::Statement& row) {
  parsers::Refusal out;
  const std::string reason = row.column(0).as_string();
  const std::optional<parsers::RefusalReason> known = parsers::parse_refusal_reason(reason);
  if (!known) {
    throw std::runtime_error("the database holds a refusal reason this labwatch does not know: '" +
                             reason + "'");
  }
  out.reason = *known;
  out.detail = row.column(1).as_string();
  out.where.message = read_position(row.column(2));
  out.where.segment = read_position(row.column(3));
  out.where.segment_id = row.column(4).as_string();
  out.where.field = read_position(row.column(5));
  out.where.line = read_position(row.column(6));
  out.where.column = row.column(7).as_string();
  out.where.offset = read_offset(row.column(8));
  out.patient_key = row.column(9).as_string();
  out.code = row.column(10).as_string();
  out.analyte = row.column(11).as_string();
  out.collected_at = parse_datetime(row.column(12).as_text());
  const std::string_view status = row.column(13).as_text();
  out.result_status = status.size() == 1 ? status.front() : '\0';
  return out;
}

// One committed write of `key`'s row by `sql` (an upsert returning the attempts).
int upsert_intake_attempt(sql::Database& db, const IntakeKey& key, std::string_view error,
                          const char* sql) {
  sql::Transaction transaction(db);
  sql::Statement upsert(db, sql);
  upsert.bind(1, key.name);
  upsert.bind(2, key.size);
  upsert.bind(3, key.mtime_ns);
  upsert.bind(4, std::string(error));
  upsert.bind(5, unix_now());
  int failures = 0;
  if (upsert.step()) {
    failures = upsert.column(0).as_int();
  }
  upsert.reset();
  transaction.commit();
  return failures;
}

class SqlStore final : public Store {
 public:
  SqlStore(std::unique_ptr<sql::Database> db, std::string site)
      : owned_(std::move(db)),
        db_(*owned_),
        ingest_(db_),
        ledger_statements_(db_),
        mail_(db_, std::move(site)) {}

  std::vector<IntakeAttempt> intake_attempts() override {
    sql::Statement select(db_,
                          "SELECT name, size, mtime_ns, failures, last_error FROM intake_attempts");
    std::vector<IntakeAttempt> out;
    while (select.step()) {
      IntakeAttempt a;
      a.key.name = select.column(0).as_string();
      a.key.size = select.column(1).as_int64();
      a.key.mtime_ns = select.column(2).as_int64();
      a.failures = select.column(3).as_int();
      a.last_error = select.column(4).as_string();
      out.push_back(std::move(a));
    }
    return out;
  }

  int begin_intake_attempt(const IntakeKey& key) override {
    // Why no fsync of its own: the attempt must outlive the process (a crash, a kill), which the
    // page cache does; a power loss is no poison file. The file's own commit (FULL) syncs the WAL,
    // this frame included, so a small file still costs one fsync. (In WAL mode NORMAL commits
    // without syncing.)
    constexpr const char* kUpsert =
        "INSERT INTO intake_attempts (name, size, mtime_ns, failures, last_error, last_at) "
        "VALUES (?, ?, ?, 1, ?, ?) ON CONFLICT (name, size, mtime_ns) DO UPDATE SET "
        "failures = intake_attempts.failures + 1, last_error = excluded.last_error, last_at = "
        "excluded.last_at "
        "RETURNING failures";
    if (db_.dialect() != sql::Dialect::sqlite) {
      return upsert_intake_attempt(db_, key, kIntakeNotCompleted, kUpsert);
    }
    db_.exec("PRAGMA synchronous = NORMAL");
    int attempts = 0;
    try {
      attempts = upsert_intake_attempt(db_, key, kIntakeNotCompleted, kUpsert);
    } catch (...) {
      db_.exec("PRAGMA synchronous = FULL");
      throw;
    }
    db_.exec("PRAGMA synchronous = FULL");
    return attempts;
  }

  int record_intake_failure(const IntakeKey& key, std::string_view error) override {
    return upsert_intake_attempt(
        db_, key, error,
        "INSERT INTO intake_attempts (name, size, mtime_ns, failures, last_error, last_at) "
        "VALUES (?, ?, ?, 1, ?, ?) ON CONFLICT (name, size, mtime_ns) DO UPDATE SET "
        "last_error = excluded.last_error, last_at = excluded.last_at RETURNING failures");
  }

  void forget_intake_attempt(const IntakeKey& key) override {
    sql::Statement erase(
        db_, "DELETE FROM intake_attempts WHERE name = ? AND size = ? AND mtime_ns = ?");
    erase.bind(1, key.name);
    erase.bind(2, key.size);
    erase.bind(3, key.mtime_ns);
    erase.exec();
  }

  std::optional<KnownFile> find_file(std::string_view sha256) override {
    if (sha256.empty()) {
      return std::nullopt;  // the placeholder of a file transaction still open
    }
    sql::Statement file(db_,
                        "SELECT file_id, name, outcome, reports, results_stored, duplicates, "
                        "duplicate_messages, superseded, withdrawn, refusals, alerts, "
                        "skipped, promoted, config_digest "
                        "FROM files WHERE sha256 = ?");
    file.bind(1, std::string(sha256));
    if (!file.step()) {
      return std::nullopt;
    }
    KnownFile known;
    const std::int64_t file_id = file.column(0).as_int64();
    known.name = file.column(1).as_string();
    known.verdict = read_verdict(file.column(2));
    IngestSummary& summary = known.summary;
    summary.already_known = true;
    summary.reports = file.column(3).as_int();
    summary.results_stored = file.column(4).as_int();
    summary.duplicates = file.column(5).as_int();
    summary.duplicate_messages = file.column(6).as_int();
    summary.superseded = file.column(7).as_int();
    summary.withdrawn = file.column(8).as_int();
    summary.refusals = file.column(9).as_int();
    summary.alerts = file.column(10).as_int();
    summary.skipped = file.column(11).as_int();
    summary.promoted = file.column(12).as_int();
    known.config_digest = file.column(13).as_string();

    sql::Statement refusals(
        db_,
        "SELECT reason, detail, pos_message, pos_segment, segment_id, pos_field, pos_line, "
        "pos_column, pos_offset, patient_key, code, analyte, collected_at, result_status "
        "FROM refusals WHERE file_id = ? ORDER BY refusal_id");
    refusals.bind(1, file_id);
    while (refusals.step()) {
      known.refusals.push_back(read_refusal(refusals));
    }
    return known;
  }

  bool set_aside_verdict(std::string_view sha256) override {
    sql::Statement update(db_,
                          "UPDATE files SET sha256 = sha256 || ':set-aside:' || file_id "
                          "WHERE sha256 = ? AND (outcome = 'refused' OR outcome = 'partial')");
    update.bind(1, std::string(sha256));
    return update.exec() == 1;
  }

  std::unique_ptr<FileTransaction> begin_file(const FileRecord& file,
                                              const AlertPolicy& targets) override {
    return std::make_unique<SqliteFileTransaction>(db_, ingest_, ledger_statements_, file, targets);
  }

  std::vector<ExportRow> current_results() override {
    std::vector<ExportRow> rows;
    for_each_current_result([&rows](const ExportRow& row) { rows.push_back(row); });
    return rows;
  }

  void for_each_current_result(const std::function<void(const ExportRow&)>& visit) override {
    sql::Statement query(db_, std::string(kExportSelect) +
                                  "WHERE r.state = 'current' "
                                  "ORDER BY r.person_id, r.analyte, r.collected_at, r.result_id");
    while (query.step()) {
      visit(read_export_row(query));
    }
  }

  std::vector<ExportRow> trend(std::int64_t person_id, std::string_view analyte) override {
    sql::Statement query(db_, std::string(kExportSelect) +
                                  "WHERE r.state = 'current' AND r.person_id = ? "
                                  "AND r.analyte = ? ORDER BY r.collected_at, r.result_id");
    query.bind(1, person_id);
    query.bind(2, std::string(analyte));
    std::vector<ExportRow> rows;
    while (query.step()) {
      rows.push_back(read_export_row(query));
    }
    return rows;
  }

  std::vector<clinical::UnixSeconds> not_performed(std::int64_t person_id,
                                                   std::string_view analyte) override {
    sql::Statement query(
        db_,
        "SELECT n.collected_at FROM not_performed n WHERE n.person_id = ? AND n.analyte = ? "
        "AND NOT EXISTS (SELECT 1 FROM results r WHERE r.person_id = n.person_id "
        "AND r.collected_at = n.collected_at AND r.analyte = n.analyte AND r.state = 'current') "
        "ORDER BY n.collected_at");
    query.bind(1, person_id);
    query.bind(2, std::string(analyte));
    std::vector<clinical::UnixSeconds> times;
    while (query.step()) {
      times.push_back(query.column(0).as_int64());
    }
    return times;
  }

  std::vector<AlertRow> alerts(bool all) override {
    std::string sql =
        "SELECT a.alert_id, r.person_id, m.patient_key, r.analyte, a.value, r.unit, "
        "r.collected_at, a.rule, a.state, a.target_low, a.target_high, a.result_id, "
        "r.comparator, "
        // The silence a silenced alert fell under: the latest one set before it was raised.
        "CASE WHEN a.state = 'silenced' THEN (SELECT CASE WHEN s.expired_at < s.until_at "
        "THEN s.expired_at ELSE s.until_at END FROM silences s WHERE s.person_id = r.person_id "
        "AND s.analyte = r.analyte AND s.created_at <= a.created_at "
        "ORDER BY s.silence_id DESC LIMIT 1) END "
        "FROM alerts a JOIN results r ON r.result_id = a.result_id "
        "JOIN messages m ON m.message_id = r.message_id ";
    if (!all) {
      sql += "WHERE r.state = 'current' AND " + active_alert_condition("a.state") + ' ';
    }
    sql += "ORDER BY r.person_id, r.analyte, r.collected_at, a.alert_id";
    sql::Statement query(db_, sql);
    std::vector<AlertRow> rows;
    while (query.step()) {
      AlertRow& row = rows.emplace_back();
      row.alert_id = query.column(0).as_int64();
      row.person_id = query.column(1).as_int64();
      row.patient_key = query.column(2).as_string();
      row.analyte = query.column(3).as_string();
      row.value = query.column(4).as_double();
      row.unit = query.column(5).as_string();
      row.collected_at = query.column(6).as_int64();
      row.rule = query.column(7).as_string();
      row.state = read_alert_status(query.column(8));
      row.target_low = read_optional(query.column(9));
      row.target_high = read_optional(query.column(10));
      row.result_id = query.column(11).as_int64();
      row.comparator = query.column(12).as_string();
      if (!query.column(13).is_null()) {
        row.silenced_until = query.column(13).as_int64();
      }
    }
    return rows;
  }

  // Three scans joined in memory rather than correlated subqueries: identifiers have no index by
  // person, and persons() is a listing of everyone anyway.
  std::vector<PersonRow> persons() override {
    std::vector<PersonRow> rows;
    std::unordered_map<std::int64_t, std::size_t> index;
    sql::Statement people(db_,
                          "SELECT person_id, family, given, birth_date, sex FROM persons "
                          "WHERE merged_into IS NULL ORDER BY person_id");
    while (people.step()) {
      PersonRow& row = rows.emplace_back();
      row.person_id = people.column(0).as_int64();
      row.family = people.column(1).as_string();
      row.given = people.column(2).as_string();
      row.birth_date = people.column(3).as_string();
      row.sex = known_sex(people.column(4).as_char());
      index.emplace(row.person_id, rows.size() - 1);
    }
    sql::Statement keys(
        db_,
        "SELECT person_id, authority, mrn FROM identifiers ORDER BY person_id, authority, mrn");
    while (keys.step()) {
      if (const auto at = index.find(keys.column(0).as_int64()); at != index.end()) {
        rows[at->second].patient_keys.push_back(keys.column(1).as_string() + "|" +
                                                keys.column(2).as_string());
      }
    }
    sql::Statement counts(db_,
                          "SELECT person_id, count(*), max(collected_at) FROM results "
                          "WHERE state = 'current' GROUP BY person_id");
    while (counts.step()) {
      if (const auto at = index.find(counts.column(0).as_int64()); at != index.end()) {
        rows[at->second].results = counts.column(1).as_int();
        rows[at->second].last_collected_at = counts.column(2).as_int64();
      }
    }
    return rows;
  }

  std::optional<PersonRow> person(std::int64_t person_id) override {
    sql::Statement who(db_,
                       "SELECT family, given, birth_date, sex FROM persons WHERE person_id = ?");
    who.bind(1, person_id);
    if (!who.step()) {
      return std::nullopt;
    }
    PersonRow row;
    row.person_id = person_id;
    row.family = who.column(0).as_string();
    row.given = who.column(1).as_string();
    row.birth_date = who.column(2).as_string();
    row.sex = known_sex(who.column(3).as_char());
    sql::Statement keys(
        db_, "SELECT authority, mrn FROM identifiers WHERE person_id = ? ORDER BY authority, mrn");
    keys.bind(1, person_id);
    while (keys.step()) {
      row.patient_keys.push_back(keys.column(0).as_string() + "|" + keys.column(1).as_string());
    }
    // The person index (person_id, collected_at, analyte) answers this without a table scan.
    sql::Statement counts(db_,
                          "SELECT count(*), max(collected_at) FROM results "
                          "WHERE person_id = ? AND state = 'current'");
    counts.bind(1, person_id);
    if (counts.step()) {
      row.results = counts.column(0).as_int();
      row.last_collected_at = counts.column(1).as_int64();
    }
    return row;
  }

  // Why every reading is tried: a minimal-PHI mail names a report ("QDX301000001", or several as
  // "M1, M2"), which may look like a person number. The text must name exactly one person by all
  // its readings together; one that names two (person 12, and a report of person 7 numbered "12")
  // is refused rather than guessed.
  std::optional<std::int64_t> find_person(std::string_view id_or_key) override {
    std::vector<std::int64_t> found;
    const auto add = [&found](sql::Statement& query) {
      while (query.step()) {
        const std::int64_t id = query.column(0).as_int64();
        if (std::find(found.begin(), found.end(), id) == found.end()) {
          found.push_back(id);
        }
      }
    };
    const std::size_t bar = id_or_key.find('|');
    std::int64_t person_id = 0;
    const char* end = id_or_key.data() + id_or_key.size();
    const auto [ptr, ec] = std::from_chars(id_or_key.data(), end, person_id);
    if (!id_or_key.empty() && ec == std::errc() && ptr == end) {
      // A merged person's id (in an older mail, say) leads to the person it was merged into.
      sql::Statement query(db_,
                           "SELECT coalesce(merged_into, person_id) FROM persons "
                           "WHERE person_id = ?");
      query.bind(1, person_id);
      add(query);
    }
    if (bar != std::string_view::npos) {
      sql::Statement query(db_,
                           "SELECT person_id FROM identifiers WHERE authority = ? AND mrn = ?");
      query.bind(1, std::string(id_or_key.substr(0, bar)));
      query.bind(2, std::string(id_or_key.substr(bar + 1)));
      add(query);
    }
    // A report reference as a mail prints it: control ids, else order ids, else the file name.
    sql::Statement by_ref(
        db_,
        "SELECT DISTINCT m.person_id FROM messages m WHERE m.control_id = ?1 UNION "
        "SELECT DISTINCT r.person_id FROM results r WHERE r.order_id = ?1 UNION "
        "SELECT DISTINCT m.person_id FROM messages m JOIN files f ON f.file_id = m.file_id "
        "WHERE f.name = ?1");
    std::string_view rest = id_or_key;
    while (!rest.empty()) {
      const std::size_t comma = rest.find(", ");
      const std::string part(rest.substr(0, comma));
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 2);
      if (part.empty()) {
        continue;
      }
      by_ref.reset();
      by_ref.bind(1, part);
      add(by_ref);
    }
    if (found.size() != 1) {
      return std::nullopt;
    }
    return found.front();
  }

  std::vector<OutboxItem> claim_due_mail(clinical::UnixSeconds now, int max) override {
    return mail_.claim_due(now, max);
  }

  void mark_mail_sent(std::int64_t outbox_id, clinical::UnixSeconds now) override {
    mail_.mark_sent(outbox_id, now);
  }

  void mark_mail_retry(std::int64_t outbox_id, clinical::UnixSeconds next_attempt,
                       std::string_view error) override {
    mail_.mark_retry(outbox_id, next_attempt, error);
  }

  void mark_mail_failed(std::int64_t outbox_id, std::string_view error) override {
    mail_.mark_failed(outbox_id, error);
  }

  std::int64_t add_silence(const NewSilence& silence) override {
    return storage::add_silence(db_, silence);
  }

  std::vector<SilenceRow> silences() override { return list_silences(db_); }

  bool expire_silence(std::int64_t silence_id, clinical::UnixSeconds now) override {
    return storage::expire_silence(db_, silence_id, now);
  }

  int reset_interrupted_mail() override { return mail_.reset_interrupted(); }

  std::optional<clinical::UnixSeconds> next_mail_due() override { return mail_.next_due(); }

  std::vector<OutboxRow> outbox(bool all) override { return mail_.rows(all); }

  int retry_failed_mail(std::optional<std::int64_t> outbox_id, clinical::UnixSeconds now) override {
    return mail_.retry_failed(outbox_id, now);
  }

 private:
  std::unique_ptr<sql::Database> owned_;
  sql::Database& db_;  // declared before the statements, which refer to it
  IngestStatements ingest_;
  LedgerStatements ledger_statements_;
  MailQueue mail_;
};

}  // namespace

clinical::NormalizedResult as_result(const ExportRow& row) {
  clinical::NormalizedResult n;
  n.analyte = row.analyte;
  n.value = row.value;
  n.comparator = row.comparator;
  n.unit = row.unit;
  n.raw_range = row.raw_range;
  n.raw_unit = row.raw_unit;
  n.ref_low = row.ref_low;
  n.ref_high = row.ref_high;
  n.range_problem = row.range_problem;
  n.flags = row.flags;
  n.tolerance = row.tolerance;
  n.shown_decimals = row.shown_decimals;
  n.status = row.status;
  n.collected_at = row.collected_at;
  return n;
}

std::unique_ptr<Store> open_store(const std::string& database, const StoreOptions& options) {
  return std::make_unique<SqlStore>(connect(database, options), options.site);
}

bool is_unreachable(const std::exception& e) noexcept {
  const auto* error = dynamic_cast<const sql::Error*>(&e);
  return error != nullptr && error->failure() == sql::Failure::connection;
}

bool is_busy(const std::exception& e) noexcept {
  if (const auto* error = dynamic_cast<const sql::Error*>(&e)) {
    return error->failure() == sql::Failure::busy;
  }
  const auto* sqlite = dynamic_cast<const SQLite::Exception*>(&e);
  if (sqlite == nullptr) {
    return false;
  }
  const int primary =
      sqlite->getErrorCode() & 0xff;  // extended codes keep the primary in the low byte
  return primary == SQLITE_BUSY || primary == SQLITE_LOCKED;
}

}  // namespace labwatch::storage
