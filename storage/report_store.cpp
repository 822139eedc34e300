// SPDX-License-Identifier: Apache-2.0
// The SQLite file transaction: person resolution, duplicate messages, result versions; the alert
// ledger follows every change of the current set.
#include "storage/report_store.hpp"

#include <algorithm>
#include <cstddef>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <utility>
#include <vector>

#include "clinical/person_match.hpp"
#include "storage/sql_values.hpp"

namespace labwatch::storage {

namespace {

// Above this many entries a person cache is emptied and refilled from the database.
constexpr std::size_t kMaxCachedPersons = 1u << 16;
// Above this many (facility, code) pairs the pending unmapped counts are written out.
constexpr std::size_t kMaxPendingUnmapped = 1u << 12;

std::string person_cache_key(const clinical::PersonIdentity& person) {
  std::string key;
  key.reserve(person.authority.size() + 1 + person.mrn.size());
  key.append(person.authority).append(1, '\0').append(person.mrn);
  return key;
}

}  // namespace

namespace {

// A stored version as the version queries (find_order_group, find_natural_group, find_draw) give
// it: columns 0-6 and 12.
clinical::StoredVersion read_stored_version(const sql::Statement& row) {
  clinical::StoredVersion version;
  version.id = row.column(0).as_int64();
  version.message_time = row.column(1).as_int64();
  version.time_from_arrival = row.column(12).as_int() != 0;
  version.status = read_status(row.column(2));
  version.state = read_state(row.column(3));
  if (const sql::Column successor = row.column(4); !successor.is_null()) {
    version.superseded_by = successor.as_int64();
  }
  version.value = row.column(5).as_double();
  version.comparator = row.column(6).as_text();
  return version;
}

}  // namespace

IngestStatements::IngestStatements(sql::Database& db)
    : find_file(db, "SELECT file_id FROM files WHERE sha256 = ?"),
      insert_file(
          db, std::string("INSERT INTO files (sha256, name, source, size, ingested_at, outcome, "
                          "config_digest) VALUES (?, ?, ?, ?, ?, 'open', ?)") +
                  db.returning("file_id")),
      finish_file(db,
                  "UPDATE files SET sha256 = ?, outcome = ?, reports = ?, results_stored = ?, "
                  "duplicates = ?, duplicate_messages = ?, superseded = ?, withdrawn = ?, "
                  "refusals = ?, alerts = ?, skipped = ?, promoted = ? WHERE file_id = ?"),
      find_identifier(db, "SELECT person_id FROM identifiers WHERE authority = ? AND mrn = ?"),
      find_agreeing_persons(db,
                            "SELECT person_id, family, given, birth_date, sex FROM persons "
                            "WHERE demographic_key = ? AND merged_into IS NULL "
                            "ORDER BY person_id DESC LIMIT ?"),
      find_persons_born_on(db,
                           "SELECT person_id, family, given, birth_date, sex FROM persons "
                           "WHERE birth_date = ? AND merged_into IS NULL "
                           "ORDER BY person_id DESC LIMIT ?"),
      find_identifiers_of(db, "SELECT authority, mrn FROM identifiers WHERE person_id = ?"),
      refine_sex(db, "UPDATE persons SET sex = ? WHERE person_id = ? AND sex = 'U'"),
      insert_match_candidate(db,
                             "INSERT INTO match_candidates (person_a, person_b, reason, fields, "
                             "state, created_at) VALUES (?, ?, ?, ?, 'open', ?) "
                             "ON CONFLICT (person_a, person_b) DO NOTHING"),
      insert_person(
          db,
          std::string("INSERT INTO persons (family, given, birth_date, sex, match_key, created_at, "
                      "demographic_key) VALUES (?, ?, ?, ?, ?, ?, ?)") +
              db.returning("person_id")),
      insert_identifier(db,
                        "INSERT INTO identifiers (authority, mrn, person_id, family, given, "
                        "birth_date, sex) VALUES (?, ?, ?, ?, ?, ?, ?) "
                        "ON CONFLICT (authority, mrn) DO NOTHING"),
      find_message(db,
                   "SELECT message_id FROM messages WHERE facility = ? AND control_id = ? "
                   "AND control_id <> '' AND raw_digest = ?"),
      insert_message(
          db,
          std::string("INSERT INTO messages (file_id, facility, control_id, raw_digest, "
                      "message_time, person_id, patient_key, pos_message, pos_line, pos_offset, "
                      "time_from_arrival) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)") +
              db.returning("message_id")),
      find_order_group(db,
                       "SELECT r.result_id, m.message_time, r.status, r.state, r.superseded_by, "
                       "r.value, r.comparator, m.facility, r.order_id, r.analyte, r.person_id, "
                       "r.collected_at, m.time_from_arrival "
                       "FROM results r JOIN messages m ON m.message_id = r.message_id "
                       "WHERE r.order_id = ?"),
      find_natural_group(db,
                         "SELECT r.result_id, m.message_time, r.status, r.state, r.superseded_by, "
                         "r.value, r.comparator, m.facility, r.order_id, r.analyte, r.person_id, "
                         "r.collected_at, m.time_from_arrival "
                         "FROM results r JOIN messages m ON m.message_id = r.message_id "
                         "WHERE r.person_id = ? AND r.collected_at = ? AND r.order_id IS NULL"),
      find_draw(db,
                "SELECT r.result_id, m.message_time, r.status, r.state, r.superseded_by, "
                "r.value, r.comparator, m.facility, r.order_id, r.analyte, r.person_id, "
                "r.collected_at, m.time_from_arrival, r.fraction "
                "FROM results r JOIN messages m ON m.message_id = r.message_id "
                "WHERE r.person_id = ? AND r.collected_at = ? AND r.analyte = ?"),
      insert_result(
          db, std::string(
                  "INSERT INTO results (message_id, person_id, order_id, analyte, code, value, "
                  "unit, comparator, raw_value, raw_unit, raw_range, ref_low, ref_high, flags, "
                  "status, collected_at, notes, pos_segment, pos_line, state, superseded_by, "
                  "range_use, tolerance, shown_decimals, fraction) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                  "?, ?)") +
                  db.returning("result_id")),
      update_result_state(db,
                          "UPDATE results SET state = ?, superseded_by = ? WHERE result_id = ?"),
      update_result_status(db, "UPDATE results SET status = ? WHERE result_id = ?"),
      insert_refusal(db,
                     "INSERT INTO refusals (file_id, message_id, level, reason, detail, "
                     "pos_message, pos_segment, segment_id, pos_field, pos_line, pos_column, "
                     "pos_offset, patient_key, code, analyte, collected_at, result_status) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
      insert_not_performed(db,
                           "INSERT INTO not_performed (message_id, person_id, analyte, "
                           "collected_at, code, order_id, raw_value, pos_segment, pos_line) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                           "ON CONFLICT (person_id, analyte, collected_at) DO NOTHING"),
      upsert_unmapped(
          db,
          "INSERT INTO unmapped_codes (facility, code, count, first_seen, last_seen, "
          "last_file_id, name, unit) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
          "ON CONFLICT (facility, code) DO UPDATE SET count = unmapped_codes.count + "
          "excluded.count, "
          "last_seen = excluded.last_seen, last_file_id = excluded.last_file_id, "
          "name = CASE WHEN excluded.name <> '' THEN excluded.name ELSE unmapped_codes.name END, "
          "unit = CASE WHEN excluded.unit <> '' THEN excluded.unit ELSE unmapped_codes.unit END") {}

SqliteFileTransaction::SqliteFileTransaction(sql::Database& db, IngestStatements& statements,
                                             LedgerStatements& ledger_statements,
                                             const FileRecord& file, AlertPolicy targets)
    : db_(db),
      statements_(statements),
      transaction_(std::in_place, db),
      targets_(std::move(targets)),
      file_name_(file.name),
      sha256_(file.sha256),
      intake_(file.intake),
      now_(unix_now()),
      ledger_(db, ledger_statements, targets_, now_, summary_) {
  if (!sha256_.empty() && committed(sha256_)) {
    known_ = true;
    return;
  }
  // Without its digest yet, the row holds '' until commit: only one file transaction is open at a
  // time (the write lock), and no committed row keeps '' (commit requires the digest).
  sql::Statement& insert = fresh(statements_.insert_file);
  insert.bind_no_copy(1, sha256_);
  insert.bind_no_copy(2, file.name);
  insert.bind_no_copy(3, file.source);
  insert.bind(4, file.size);
  insert.bind(5, now_);
  insert.bind_no_copy(6, file.config_digest);
  file_id_ = inserted_id(db_, insert);
}

void SqliteFileTransaction::add_report(const clinical::NormalizedReport& report) {
  if (finished_) {
    throw std::logic_error("add_report after the file transaction ended");
  }
  if (known_) {
    return;
  }
  ++summary_.reports;
  if (const std::optional<std::int64_t> earlier = find_resend(report)) {
    ++summary_.duplicate_messages;
    summary_.duplicates += static_cast<int>(report.results.size());
    // Its refusals are still refusals of this file: the file's verdict counts them.
    for (const parsers::Refusal& refusal : report.refusals) {
      insert_refusal(refusal, "result", *earlier);
    }
    return;
  }
  const std::int64_t person_id = resolve_person(report.patient);
  // A message without a time of its own is ordered by its arrival: the time of this ingest.
  const clinical::UnixSeconds message_time =
      report.message_time_from_arrival ? now_ : report.message_time;
  const std::int64_t message_id = insert_message(report, person_id, message_time);
  ledger_.begin_report(report, person_id, file_name_);
  report_reuses_accession_ = false;
  for (const clinical::NormalizedResult& result : report.results) {
    store_result(report, result, person_id, message_id, message_time);
  }
  if (report_reuses_accession_) {
    // Two results now, one per patient; someone should ask the lab. No patient data here.
    summary_.warnings.push_back({"accession_reused", report.where, report.control_id});
  }
  for (const clinical::SkippedLine& line : report.skipped) {
    record_skipped(line, person_id, message_id);
  }
  for (const parsers::Refusal& refusal : report.refusals) {
    insert_refusal(refusal, "result", message_id);
  }
  count_unmapped(report);
}

void SqliteFileTransaction::record_skipped(const clinical::SkippedLine& line,
                                           std::int64_t person_id, std::int64_t message_id) {
  ++summary_.skipped;
  if (line.reason != clinical::SkipReason::not_performed || line.analyte.empty() ||
      !line.collected_at) {
    return;  // only a not-performed test of a known analyte and draw is a gap in a trend
  }
  sql::Statement& insert = fresh(statements_.insert_not_performed);
  insert.bind(1, message_id);
  insert.bind(2, person_id);
  insert.bind_no_copy(3, line.analyte);
  insert.bind(4, *line.collected_at);
  insert.bind_no_copy(5, line.code);
  if (line.order_id.empty()) {
    insert.bind_null(6);
  } else {
    insert.bind_no_copy(6, line.order_id);
  }
  insert.bind_no_copy(7, line.raw_value);
  bind_position(insert, 8, line.where.segment);
  bind_position(insert, 9, line.where.line);
  insert.exec();
}

void SqliteFileTransaction::add_refusal(const parsers::Refusal& refusal) {
  if (finished_) {
    throw std::logic_error("add_refusal after the file transaction ended");
  }
  if (known_) {
    return;
  }
  // A refusal that names a message of the file (an HL7 message index) is about that message;
  // anything else, even with a line (a CSV header or row), is recorded against the file.
  insert_refusal(refusal, refusal.where.message >= 0 ? "message" : "file", std::nullopt);
}

IngestSummary SqliteFileTransaction::commit() {
  if (finished_) {
    throw std::logic_error("commit after the file transaction ended");
  }
  if (known_) {
    return known();
  }
  if (sha256_.empty()) {
    throw std::logic_error("commit of a file without its digest");
  }
  return finish(sha256_);
}

IngestSummary SqliteFileTransaction::commit(std::string_view sha256) {
  if (finished_) {
    throw std::logic_error("commit after the file transaction ended");
  }
  if (sha256.empty() || (!sha256_.empty() && sha256 != sha256_)) {
    throw std::logic_error("commit with another digest than the file's");
  }
  if (known_) {
    return known();
  }
  const std::string digest(sha256);
  if (sha256_.empty() && committed(digest)) {
    transaction_.reset();  // rolls back everything this file wrote
    finished_ = true;
    IngestSummary summary;
    summary.already_known = true;
    return summary;
  }
  return finish(digest);
}

// The rows of this file are those of its messages (file_id_); they exist only inside this
// transaction, which is rolled back once they are read. Prepared here, not per connection: a dry
// run is one per process.
DryRun SqliteFileTransaction::roll_back_explained() {
  if (finished_) {
    throw std::logic_error("roll_back_explained after the file transaction ended");
  }
  DryRun out;
  out.summary = summary_;
  if (!known_) {
    sql::Statement results(
        db_,
        "SELECT r.result_id, m.pos_message, r.pos_segment, r.pos_line, r.analyte, r.value, "
        "r.unit, r.comparator, r.raw_value, r.raw_unit, r.state, r.shown_decimals, r.flags, "
        "(SELECT count(*) FROM results e WHERE e.superseded_by = r.result_id) "
        "FROM results r JOIN messages m ON m.message_id = r.message_id "
        "WHERE m.file_id = ? OR r.result_id >= ? ORDER BY r.result_id");
    results.bind(1, file_id_);
    // Every row from the first kept fraction on was inserted by this transaction (ids only grow
    // under its write lock): a row of this file's messages, or a kept fraction.
    results.bind(2, kept_fractions_.empty() ? std::numeric_limits<std::int64_t>::max()
                                            : kept_fractions_.front());
    while (results.step()) {
      DryRunResult& row = out.results.emplace_back();
      row.result_id = results.column(0).as_int64();
      const auto position = [&results](int column) {
        return results.column(column).is_null() ? -1 : results.column(column).as_int();
      };
      row.where.message = position(1);
      row.where.segment = position(2);
      row.where.line = position(3);
      row.analyte = results.column(4).as_string();
      row.value = results.column(5).as_double();
      row.unit = results.column(6).as_string();
      row.comparator = results.column(7).as_string();
      row.raw_value = results.column(8).as_string();
      row.raw_unit = results.column(9).as_string();
      row.state = read_state(results.column(10));
      row.shown_decimals = position(11);
      row.flags = results.column(12).as_string();
      row.replaced = results.column(13).as_int();
      row.kept_fraction = std::find(kept_fractions_.begin(), kept_fractions_.end(),
                                    row.result_id) != kept_fractions_.end();
    }
    sql::Statement alerts(
        db_,
        "SELECT a.result_id, r.analyte, a.rule, a.state, a.value, a.target_low, a.target_high "
        "FROM alerts a JOIN results r ON r.result_id = a.result_id "
        "JOIN messages m ON m.message_id = r.message_id "
        "WHERE m.file_id = ? ORDER BY a.alert_id");
    alerts.bind(1, file_id_);
    while (alerts.step()) {
      DryRunAlert& alert = out.alerts.emplace_back();
      alert.result_id = alerts.column(0).as_int64();
      alert.analyte = alerts.column(1).as_string();
      alert.rule = alerts.column(2).as_string();
      alert.state = read_alert_status(alerts.column(3));
      alert.value = alerts.column(4).as_double();
      if (!alerts.column(5).is_null()) {
        alert.target_low = alerts.column(5).as_double();
      }
      if (!alerts.column(6).is_null()) {
        alert.target_high = alerts.column(6).as_double();
      }
    }
  }
  transaction_.reset();  // rolls back everything this file wrote
  finished_ = true;
  return out;
}

bool SqliteFileTransaction::committed(const std::string& sha256) {
  sql::Statement& find = fresh(statements_.find_file);
  const ResetOnExit reset(find);
  find.bind_no_copy(1, sha256);
  return find.step();
}

IngestSummary SqliteFileTransaction::known() {
  transaction_->commit();  // nothing was written
  finished_ = true;
  IngestSummary summary;
  summary.already_known = true;
  return summary;
}

IngestSummary SqliteFileTransaction::finish(const std::string& sha256) {
  flush_unmapped();
  FileVerdict verdict = FileVerdict::accepted;
  if (summary_.refusals > 0) {
    verdict = summary_.reports > 0 ? FileVerdict::partial : FileVerdict::refused;
  }
  sql::Statement& finish = fresh(statements_.finish_file);
  finish.bind_no_copy(1, sha256);
  finish.bind_no_copy(2, sql_text(verdict));
  finish.bind(3, summary_.reports);
  finish.bind(4, summary_.results_stored);
  finish.bind(5, summary_.duplicates);
  finish.bind(6, summary_.duplicate_messages);
  finish.bind(7, summary_.superseded);
  finish.bind(8, summary_.withdrawn);
  finish.bind(9, summary_.refusals);
  finish.bind(10, summary_.alerts);
  finish.bind(11, summary_.skipped);
  finish.bind(12, summary_.promoted);
  finish.bind(13, file_id_);
  finish.exec();
  if (intake_) {
    // The attempt begun for this file ends with it (one statement per file, not worth caching).
    sql::Statement erase(
        db_, "DELETE FROM intake_attempts WHERE name = ? AND size = ? AND mtime_ns = ?");
    erase.bind(1, intake_->name);
    erase.bind(2, intake_->size);
    erase.bind(3, intake_->mtime_ns);
    erase.exec();
  }
  transaction_->commit();
  finished_ = true;
  return summary_;
}

// Identity: the reported identifier (AUTHORITY|MRN) decides when it is known; otherwise the
// stored persons that may be the same (match_candidates) are handed to clinical::plan_person_match,
// and its plan is applied: the person it names, or a new person with the pairs to review. A new
// identifier is linked to that person with its own demographics, so the next report with it
// resolves directly and an unmerge can give it back its own person.
std::int64_t SqliteFileTransaction::resolve_person(const clinical::PersonIdentity& person) {
  std::string identifier_key;
  if (!person.mrn.empty()) {
    identifier_key = person_cache_key(person);
    if (const auto hit = person_by_identifier_.find(identifier_key);
        hit != person_by_identifier_.end()) {
      return hit->second;
    }
    sql::Statement& find = fresh(statements_.find_identifier);
    const ResetOnExit reset(find);
    find.bind_no_copy(1, person.authority);
    find.bind_no_copy(2, person.mrn);
    if (find.step()) {
      const std::int64_t person_id = find.column(0).as_int64();
      remember(person_by_identifier_, std::move(identifier_key), person_id);
      return person_id;
    }
  }

  const FoundCandidates found = match_candidates(person);
  const clinical::MatchPlan plan =
      clinical::plan_person_match(person, found.persons, found.all_agreeing);
  std::int64_t person_id = 0;
  if (plan.person_id) {
    person_id = *plan.person_id;
    if (plan.refine_sex) {
      sql::Statement& refine = fresh(statements_.refine_sex);
      refine.bind(1, std::string(1, *plan.refine_sex));
      refine.bind(2, person_id);
      refine.exec();
    }
  } else {
    const std::optional<std::string> match_key = clinical::person_match_key(person);
    sql::Statement& insert = fresh(statements_.insert_person);
    insert.bind_no_copy(1, person.family);
    insert.bind_no_copy(2, person.given);
    insert.bind_no_copy(3, person.birth_date);
    insert.bind(4, std::string(1, known_sex(person.sex)));
    if (match_key) {
      insert.bind_no_copy(5, *match_key);
    } else {
      insert.bind_null(5);
    }
    insert.bind(6, now_);
    if (const std::optional<std::string> key = clinical::demographic_key(person)) {
      insert.bind(7, *key);
    } else {
      insert.bind_null(7);
    }
    person_id = inserted_id(db_, insert);
    for (const clinical::ReviewPair& pair : plan.review) {
      sql::Statement& candidate = fresh(statements_.insert_match_candidate);
      candidate.bind(1, std::min(person_id, pair.person_id));
      candidate.bind(2, std::max(person_id, pair.person_id));
      candidate.bind(3, std::string(clinical::to_string(pair.reason)));
      candidate.bind(4, clinical::person_fields_text(pair.differing));
      candidate.bind(5, now_);
      candidate.exec();
    }
  }
  if (!person.mrn.empty()) {
    sql::Statement& link = fresh(statements_.insert_identifier);
    link.bind_no_copy(1, person.authority);
    link.bind_no_copy(2, person.mrn);
    link.bind(3, person_id);
    link.bind_no_copy(4, person.family);
    link.bind_no_copy(5, person.given);
    link.bind_no_copy(6, person.birth_date);
    link.bind(7, std::string(1, known_sex(person.sex)));
    link.exec();
    remember(person_by_identifier_, std::move(identifier_key), person_id);
  }
  return person_id;
}

// The stored persons plan_person_match compares, with their identifiers: the most recent ones
// with the identity's demographic key (one more than the window, to know whether that was all of
// them) and the most recent ones born on each date it may be confused with.
SqliteFileTransaction::FoundCandidates SqliteFileTransaction::match_candidates(
    const clinical::PersonIdentity& person) {
  FoundCandidates found;
  std::vector<clinical::MatchCandidate>& persons = found.persons;
  const auto read = [&](sql::Statement& find, const std::string& value, std::size_t limit) {
    const ResetOnExit reset(find);
    find.bind(1, value);
    find.bind(2, static_cast<std::int64_t>(limit));
    std::size_t rows = 0;
    while (find.step()) {
      ++rows;
      const std::int64_t id = find.column(0).as_int64();
      if (std::any_of(persons.begin(), persons.end(), [id](const clinical::MatchCandidate& known) {
            return known.person_id == id;
          })) {
        continue;
      }
      clinical::MatchCandidate& added = persons.emplace_back();
      added.person_id = id;
      added.demographics.family = find.column(1).as_string();
      added.demographics.given = find.column(2).as_string();
      added.demographics.birth_date = find.column(3).as_string();
      const std::string sex = find.column(4).as_string();
      added.demographics.sex = sex.empty() ? 'U' : sex.front();
    }
    return rows;
  };
  if (const std::optional<std::string> key = clinical::demographic_key(person)) {
    found.all_agreeing = read(fresh(statements_.find_agreeing_persons), *key,
                              clinical::kCandidateWindow + 1) <= clinical::kCandidateWindow;
  }
  for (const std::string& date : clinical::match_birth_dates(person.birth_date)) {
    read(fresh(statements_.find_persons_born_on), date, clinical::kCandidateWindow);
  }
  for (clinical::MatchCandidate& candidate : persons) {
    sql::Statement& identifiers = fresh(statements_.find_identifiers_of);
    const ResetOnExit reset(identifiers);
    identifiers.bind(1, candidate.person_id);
    while (identifiers.step()) {
      candidate.identifiers.push_back(
          {identifiers.column(0).as_string(), identifiers.column(1).as_string()});
    }
  }
  return found;
}

// A byte-identical resend carries the same control id and the same digest. Without either (CSV
// rows), only the results are deduplicated, by their natural key. Returns the stored message.
std::optional<std::int64_t> SqliteFileTransaction::find_resend(
    const clinical::NormalizedReport& report) {
  if (report.control_id.empty() || report.raw_digest.empty()) {
    return std::nullopt;
  }
  sql::Statement& find = fresh(statements_.find_message);
  const ResetOnExit reset(find);
  find.bind_no_copy(1, report.facility);
  find.bind_no_copy(2, report.control_id);
  find.bind_no_copy(3, report.raw_digest);
  if (find.step()) {
    return find.column(0).as_int64();
  }
  return std::nullopt;
}

std::int64_t SqliteFileTransaction::insert_message(const clinical::NormalizedReport& report,
                                                   std::int64_t person_id,
                                                   clinical::UnixSeconds message_time) {
  const std::string patient_key = report.patient.patient_key();
  sql::Statement& insert = fresh(statements_.insert_message);
  insert.bind(1, file_id_);
  insert.bind_no_copy(2, report.facility);
  insert.bind_no_copy(3, report.control_id);
  insert.bind_no_copy(4, report.raw_digest);
  insert.bind(5, message_time);
  insert.bind(6, person_id);
  insert.bind_no_copy(7, patient_key);
  bind_position(insert, 8, report.where.message);
  bind_position(insert, 9, report.where.line);
  bind_offset(insert, 10, report.where.offset);
  insert.bind(11, report.message_time_from_arrival ? 1 : 0);
  return inserted_id(db_, insert);
}

void SqliteFileTransaction::store_result(const clinical::NormalizedReport& report,
                                         const clinical::NormalizedResult& result,
                                         std::int64_t person_id, std::int64_t message_id,
                                         clinical::UnixSeconds message_time) {
  std::vector<clinical::StandInMove> replaced_stand_ins;
  if (!clinical::stand_in_fraction(result.analyte).empty()) {
    clinical::StandInPlan stand_in = plan_stand_in(result, person_id);
    if (stand_in.store_as_fraction) {
      // A real total of this draw is current: this stand-in is only its fraction.
      clinical::NormalizedResult as_fraction = result;
      as_fraction.analyte = std::move(as_fraction.fraction);
      as_fraction.fraction.clear();
      store_result(report, as_fraction, person_id, message_id, message_time);
      return;
    }
    replaced_stand_ins = std::move(stand_in.replaced);
  }
  const clinical::VersionKey key = clinical::version_key(report.facility, result, person_id);
  load_group(key);
  report_reuses_accession_ = report_reuses_accession_ || group_reuses_accession_;
  related_.clear();
  for (const GroupVersion& stored : group_) {
    if (stored.analyte == result.analyte) {
      related_.push_back(stored);
    }
  }
  if (related_.empty() &&
      (result.status == clinical::ResultStatus::corrected || !result.parent_order_id.empty())) {
    load_draw(key, result);
  }
  // Stand-ins that a real total replaces are not versions it is ordered among: it replaces them.
  std::erase_if(related_, [&](const GroupVersion& stored) {
    return std::any_of(
        replaced_stand_ins.begin(), replaced_stand_ins.end(),
        [&](const clinical::StandInMove& move) { return move.id == stored.version.id; });
  });
  versions_.clear();
  for (const GroupVersion& stored : related_) {
    versions_.push_back(stored.version);
  }
  if (result.promote_only) {
    promote(clinical::plan_promotion(versions_));
    return;
  }
  const clinical::IncomingVersion incoming{message_time,   result.status,
                                           result.value,   result.comparator,
                                           key.by_order(), report.message_time_from_arrival};
  const clinical::VersionPlan plan = clinical::plan_version(versions_, incoming);
  if (plan.duplicate) {
    ++summary_.duplicates;
    return;
  }

  sql::Statement& insert = fresh(statements_.insert_result);
  insert.bind(1, message_id);
  insert.bind(2, person_id);
  if (result.order_id.empty()) {
    insert.bind_null(3);
  } else {
    insert.bind_no_copy(3, result.order_id);
  }
  insert.bind_no_copy(4, result.analyte);
  insert.bind_no_copy(5, result.code);
  insert.bind(6, result.value);
  insert.bind_no_copy(7, result.unit);
  insert.bind_no_copy(8, result.comparator);
  insert.bind_no_copy(9, result.raw_value);
  insert.bind_no_copy(10, result.raw_unit);
  insert.bind_no_copy(11, result.raw_range);
  bind_optional(insert, 12, result.ref_low);
  bind_optional(insert, 13, result.ref_high);
  insert.bind_no_copy(14, result.flags);
  insert.bind_no_copy(15, sql_text(result.status));
  insert.bind(16, result.collected_at);
  insert.bind_no_copy(17, result.notes);
  bind_position(insert, 18, result.where.segment);
  bind_position(insert, 19, result.where.line);
  insert.bind_no_copy(20, sql_text(plan.state));
  if (plan.superseded_by) {
    insert.bind(21, *plan.superseded_by);
  } else {
    insert.bind_null(21);
  }
  insert.bind_no_copy(22, sql_text(result.range_problem));
  insert.bind(23, result.tolerance);
  bind_position(insert, 24, result.shown_decimals);
  insert.bind_no_copy(25, result.fraction);
  const std::int64_t result_id = inserted_id(db_, insert);
  last_result_id_ = result_id;
  ++summary_.results_stored;

  GroupVersion& added = group_.emplace_back();
  added.analyte = result.analyte;
  added.person_id = person_id;
  added.collected_at = result.collected_at;
  added.version.id = result_id;
  added.version.message_time = message_time;
  added.version.time_from_arrival = report.message_time_from_arrival;
  added.version.status = result.status;
  added.version.state = plan.state;
  added.version.superseded_by = plan.superseded_by;
  added.version.value = result.value;
  added.version.comparator = result.comparator;

  // The versions that leave the current set, noted before the changes rewrite the group.
  struct Left {
    ReplacedVersion version;
    std::int64_t person_id = 0;
    clinical::ResultState to = clinical::ResultState::superseded;
    bool by_incoming = false;
  };
  std::vector<Left> left;
  for (const clinical::VersionChange& change : plan.changes) {
    if (change.from == clinical::ResultState::current &&
        change.to != clinical::ResultState::current) {
      for (const GroupVersion& stored : related_) {
        if (stored.version.id == change.id) {
          left.push_back({{change.id, stored.collected_at},
                          stored.person_id,
                          change.to,
                          change.superseded_by_incoming});
        }
      }
    }
    apply_change(change, result_id);
  }
  // The stand-ins this total takes the place of leave it before the ledger reads the current set.
  for (const clinical::StandInMove& move : replaced_stand_ins) {
    apply_change({move.id, clinical::ResultState::current, clinical::ResultState::superseded,
                  std::nullopt, true},
                 result_id);
    left.push_back(
        {{move.id, result.collected_at}, person_id, clinical::ResultState::superseded, true});
  }
  // Alerts follow their result once every version has its new state: a version that replaces the
  // current one settles its alerts (a stand-in's, told as the total's, are settled by the real
  // total); a withdrawn one withdraws them.
  const bool incoming_current = plan.state == clinical::ResultState::current;
  std::optional<ReplacedVersion> replaced;
  for (const Left& l : left) {
    if (l.to == clinical::ResultState::withdrawn) {
      ledger_.version_withdrawn(l.version, l.person_id, result.analyte);
    } else if (incoming_current && l.by_incoming && !replaced) {
      replaced = l.version;
    } else {
      ledger_.version_superseded(l.version.result_id);
    }
  }
  if (incoming_current) {
    ledger_.version_current({result_id, &result, person_id}, replaced);
  }
  for (const clinical::StandInMove& move : replaced_stand_ins) {
    keep_as_fraction(move);
  }
}

// A stand-in that left the total's place stays what it is: its fraction, stored again under the
// fraction's analyte with its own message, order and values, and versioned among that analyte's
// results like one that arrived after the total (clinical::plan_stand_in).
void SqliteFileTransaction::keep_as_fraction(const clinical::StandInMove& move) {
  sql::Statement read(db_,
                      "SELECT r.order_id, r.code, r.value, r.unit, r.comparator, r.raw_value, "
                      "r.raw_unit, r.raw_range, r.ref_low, r.ref_high, r.flags, r.status, "
                      "r.collected_at, r.notes, r.pos_segment, r.pos_line, r.range_use, "
                      "r.tolerance, r.shown_decimals, r.message_id, m.message_time, "
                      "m.facility, r.person_id, m.time_from_arrival "
                      "FROM results r JOIN messages m ON m.message_id = r.message_id "
                      "WHERE r.result_id = ?");
  read.bind(1, move.id);
  if (!read.step()) {
    return;
  }
  clinical::NormalizedReport report;
  clinical::NormalizedResult fraction;
  fraction.analyte = std::string(move.fraction);
  fraction.order_id = read.column(0).as_string();
  fraction.code = read.column(1).as_string();
  fraction.value = read.column(2).as_double();
  fraction.unit = read.column(3).as_string();
  fraction.comparator = read.column(4).as_string();
  fraction.raw_value = read.column(5).as_string();
  fraction.raw_unit = read.column(6).as_string();
  fraction.raw_range = read.column(7).as_string();
  fraction.ref_low = read_optional(read.column(8));
  fraction.ref_high = read_optional(read.column(9));
  fraction.flags = read.column(10).as_string();
  fraction.status = read_status(read.column(11));
  fraction.collected_at = read.column(12).as_int64();
  fraction.notes = read.column(13).as_string();
  fraction.where.segment = read_position(read.column(14));
  fraction.where.line = read_position(read.column(15));
  fraction.range_problem =
      clinical::range_problem_from_key(read.column(16).as_string())
          .value_or(fraction.ref_low || fraction.ref_high ? clinical::RangeProblem::none
                                                          : clinical::RangeProblem::not_printed);
  fraction.tolerance = read.column(17).as_double();
  fraction.shown_decimals = read_position(read.column(18));
  const std::int64_t message_id = read.column(19).as_int64();
  const clinical::UnixSeconds message_time = read.column(20).as_int64();
  report.facility = read.column(21).as_string();
  const std::int64_t person_id = read.column(22).as_int64();
  // Placed among the fraction's versions as its message was: by the lab's time, else by arrival.
  report.message_time_from_arrival = read.column(23).as_int() != 0;
  read.reset();
  // Its accession was judged when it arrived: its group says nothing new about this report's.
  const bool reuses = report_reuses_accession_;
  const int stored = summary_.results_stored;
  store_result(report, fraction, person_id, message_id, message_time);
  report_reuses_accession_ = reuses;
  if (summary_.results_stored > stored) {
    kept_fractions_.push_back(last_result_id_);
  }
}

namespace {

// results.fraction as one of clinical::stand_in_pairs (a view that outlives the plan): empty for a
// real total. Throws std::runtime_error on text labwatch never writes (a database edited by hand).
std::string_view known_fraction(const sql::Column& column) {
  const std::string_view text = column.as_text();
  if (text.empty()) {
    return {};
  }
  for (const clinical::StandInPair& pair : clinical::stand_in_pairs()) {
    if (pair.fraction == text) {
      return pair.fraction;
    }
  }
  throw std::runtime_error("the database holds a fraction this labwatch does not know: '" +
                           std::string(text) + "'");
}

}  // namespace

// The current totals of the draw of `result` (person, collection time), and which of them stand in.
clinical::StandInPlan SqliteFileTransaction::plan_stand_in(const clinical::NormalizedResult& result,
                                                           std::int64_t person_id) {
  std::vector<clinical::DrawTotal> current;
  sql::Statement& find = fresh(statements_.find_draw);
  const ResetOnExit reset(find);
  find.bind(1, person_id);
  find.bind(2, result.collected_at);
  find.bind_no_copy(3, result.analyte);
  while (find.step()) {
    if (read_state(find.column(3)) == clinical::ResultState::current) {
      current.push_back({find.column(0).as_int64(), known_fraction(find.column(13))});
    }
  }
  return clinical::plan_stand_in(!result.fraction.empty(), current);
}

// Loads the group of `key` unless it is the one already loaded. The index finds the rows by order
// id (or person and time); the facility is compared here, as the index does not hold it.
void SqliteFileTransaction::load_group(const clinical::VersionKey& key) {
  if (group_key_) {
    const clinical::VersionKey loaded{group_key_->facility,
                                      group_key_->order_id,
                                      {},
                                      group_key_->person_id,
                                      group_key_->collected_at};
    if (key.same_group(loaded)) {
      return;
    }
  }
  group_key_.reset();
  group_.clear();
  group_reuses_accession_ = false;
  sql::Statement& find =
      fresh(key.by_order() ? statements_.find_order_group : statements_.find_natural_group);
  const ResetOnExit reset(find);
  if (key.by_order()) {
    find.bind(1, std::string(key.order_id));
  } else {
    find.bind(1, key.person_id);
    find.bind(2, key.collected_at);
  }
  while (find.step()) {
    const clinical::VersionKey stored{find.column(7).as_text(), find.column(8).as_text(),
                                      find.column(9).as_text(), find.column(10).as_int64(),
                                      find.column(11).as_int64()};
    if (!key.same_group(stored)) {
      group_reuses_accession_ = group_reuses_accession_ || key.reuses_accession_of(stored);
      continue;
    }
    GroupVersion& row = group_.emplace_back();
    row.analyte = stored.analyte;
    row.person_id = stored.person_id;
    row.collected_at = stored.collected_at;
    row.version = read_stored_version(find);
  }
  group_key_ = GroupKey{std::string(key.facility), std::string(key.order_id), key.person_id,
                        key.collected_at};
}

// The versions of the same draw under another accession that `result` replaces (see
// clinical::draw_versions): those of its OBR-29 parent order, else those with the same person,
// collection time and analyte. Appends them to related_.
void SqliteFileTransaction::load_draw(const clinical::VersionKey& key,
                                      const clinical::NormalizedResult& result) {
  struct Row {
    std::string facility;
    std::string order_id;
    std::string analyte;
    std::int64_t person_id = 0;
    clinical::UnixSeconds collected_at = 0;
    clinical::StoredVersion version;
  };
  std::vector<Row> rows;
  const bool by_parent = !result.parent_order_id.empty();
  sql::Statement& find = fresh(by_parent ? statements_.find_order_group : statements_.find_draw);
  {
    const ResetOnExit reset(find);
    if (by_parent) {
      find.bind_no_copy(1, result.parent_order_id);
    } else {
      find.bind(1, key.person_id);
      find.bind(2, result.collected_at);
      find.bind_no_copy(3, result.analyte);
    }
    while (find.step()) {
      Row& row = rows.emplace_back();
      row.version = read_stored_version(find);
      row.facility = find.column(7).as_text();
      row.order_id = find.column(8).as_text();
      row.analyte = find.column(9).as_text();
      row.person_id = find.column(10).as_int64();
      row.collected_at = find.column(11).as_int64();
    }
  }
  std::vector<clinical::DrawCandidate> candidates;
  candidates.reserve(rows.size());
  for (const Row& row : rows) {
    candidates.push_back(
        {{row.facility, row.order_id, row.analyte, row.person_id, row.collected_at}, row.version});
  }
  clinical::VersionKey incoming = key;
  incoming.collected_at = result.collected_at;
  const std::vector<clinical::StoredVersion> selected = clinical::draw_versions(
      candidates, {incoming, result.parent_order_id, result.status}, related_.size());
  for (const clinical::StoredVersion& version : selected) {
    for (const Row& row : rows) {
      if (row.version.id == version.id) {
        related_.push_back({row.analyte, row.person_id, row.collected_at, row.version});
      }
    }
  }
}

// OBX-11 U without a value: the stored preliminary `id` becomes final in place (its value and its
// alerts stay; those held as preliminary are decided anew, AlertLedger::version_promoted). Without
// one there is nothing to promote: the line is skipped.
void SqliteFileTransaction::promote(std::optional<std::int64_t> id) {
  if (!id) {
    ++summary_.skipped;
    return;
  }
  sql::Statement& update = fresh(statements_.update_result_status);
  update.bind_no_copy(1, sql_text(clinical::ResultStatus::final));
  update.bind(2, *id);
  update.exec();
  for (GroupVersion& stored : group_) {
    if (stored.version.id == *id) {
      stored.version.status = clinical::ResultStatus::final;
      ledger_.version_promoted(*id, stored.collected_at);
    }
  }
  ++summary_.promoted;
}

void SqliteFileTransaction::apply_change(const clinical::VersionChange& change,
                                         std::int64_t incoming_id) {
  std::optional<std::int64_t> successor = change.superseded_by;
  if (change.superseded_by_incoming) {
    successor = incoming_id;
  }
  sql::Statement& update = fresh(statements_.update_result_state);
  update.bind_no_copy(1, sql_text(change.to));
  if (successor) {
    update.bind(2, *successor);
  } else {
    update.bind_null(2);
  }
  update.bind(3, change.id);
  update.exec();
  for (GroupVersion& stored : group_) {  // the changed version is in the loaded group
    if (stored.version.id == change.id) {
      stored.version.state = change.to;
      stored.version.superseded_by = successor;
    }
  }

  if (change.to == clinical::ResultState::current && change.from != change.to) {
    ledger_.forget_histories();
  }
  if (change.to == clinical::ResultState::superseded && change.from != change.to) {
    ++summary_.superseded;
  } else if (change.to == clinical::ResultState::withdrawn && change.from != change.to) {
    ++summary_.withdrawn;
  }
}

void SqliteFileTransaction::insert_refusal(const parsers::Refusal& refusal, const char* level,
                                           std::optional<std::int64_t> message_id) {
  if (summary_.refusals >= kRefusalsKept) {
    ++summary_.refusals;  // counted, not detailed (see kRefusalsKept)
    return;
  }
  sql::Statement& insert = fresh(statements_.insert_refusal);
  insert.bind(1, file_id_);
  if (message_id) {
    insert.bind(2, *message_id);
  } else {
    insert.bind_null(2);
  }
  insert.bind_no_copy(3, level);
  insert.bind(4, std::string(parsers::to_string(refusal.reason)));
  insert.bind_no_copy(5, refusal.detail);
  bind_position(insert, 6, refusal.where.message);
  bind_position(insert, 7, refusal.where.segment);
  insert.bind_no_copy(8, refusal.where.segment_id);
  bind_position(insert, 9, refusal.where.field);
  bind_position(insert, 10, refusal.where.line);
  insert.bind_no_copy(11, refusal.where.column);
  bind_offset(insert, 12, refusal.where.offset);
  insert.bind_no_copy(13, refusal.patient_key);
  insert.bind_no_copy(14, refusal.code);
  insert.bind_no_copy(15, refusal.analyte);
  insert.bind(16, format_datetime(refusal.collected_at));
  insert.bind(17,
              refusal.result_status != 0 ? std::string(1, refusal.result_status) : std::string());
  insert.exec();
  ++summary_.refusals;
}

// The name and unit kept for a code are those of its latest line that has them.
void SqliteFileTransaction::count_unmapped(const clinical::NormalizedReport& report) {
  for (const auto& [code, count] : report.unmapped) {
    unmapped_[std::make_pair(report.facility, code)].count += count;
  }
  for (const clinical::UnmappedLine& line : report.unmapped_lines) {
    PendingUnmapped& pending = unmapped_[std::make_pair(report.facility, line.code)];
    if (!line.name.empty()) {
      pending.name = line.name;
    }
    if (!line.unit.empty()) {
      pending.unit = line.unit;
    }
  }
  if (unmapped_.size() >= kMaxPendingUnmapped) {
    flush_unmapped();
  }
}

// Every upsert of one transaction writes the same times and file id, so writing the sums once is
// the same as writing each message's counts.
void SqliteFileTransaction::flush_unmapped() {
  for (const auto& [key, pending] : unmapped_) {
    sql::Statement& upsert = fresh(statements_.upsert_unmapped);
    upsert.bind_no_copy(1, key.first);
    upsert.bind_no_copy(2, key.second);
    upsert.bind(3, pending.count);
    upsert.bind(4, now_);
    upsert.bind(5, now_);
    upsert.bind(6, file_id_);
    upsert.bind_no_copy(7, pending.name);
    upsert.bind_no_copy(8, pending.unit);
    upsert.exec();
  }
  unmapped_.clear();
}

void SqliteFileTransaction::remember(std::unordered_map<std::string, std::int64_t>& cache,
                                     std::string key, std::int64_t person_id) {
  if (cache.size() >= kMaxCachedPersons) {
    cache.clear();
  }
  cache.insert_or_assign(std::move(key), person_id);
}

}  // namespace labwatch::storage
