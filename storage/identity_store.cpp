// SPDX-License-Identifier: Apache-2.0
// Reviewing patient identity: merge, unmerge and dismissal as single audited transactions.
#include "storage/identity_store.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>

#include <algorithm>
#include <utility>

#include "storage/alert_ledger.hpp"
#include "storage/database.hpp"

namespace labwatch::storage {

namespace {

std::string person_text(std::int64_t id) { return "person " + std::to_string(id); }

int exec_bound(SQLite::Database& db, const char* sql, std::int64_t a, std::int64_t b) {
  SQLite::Statement statement(db, sql);
  statement.bind(1, a);
  statement.bind(2, b);
  return statement.exec();
}

class SqliteIdentityStore final : public IdentityStore {
 public:
  explicit SqliteIdentityStore(SQLite::Database db) : db_(std::move(db)) {}

  std::vector<MatchRow> open_matches() override;
  std::vector<AuditRow> audit() override;
  IdentityOutcome merge(std::int64_t kept, std::int64_t absorbed, const ReviewAction& action,
                        const AlertPolicy& targets) override;
  IdentityOutcome unmerge(std::int64_t person, std::string_view authority, std::string_view mrn,
                          const ReviewAction& action, const AlertPolicy& targets) override;
  void dismiss(std::int64_t a, std::int64_t b, const ReviewAction& action) override;

 private:
  void record(const ReviewAction& action, std::string_view what, const std::string& detail);
  bool person_exists(std::int64_t person_id);
  void rejudge(std::int64_t person_id, const AlertPolicy& targets, clinical::UnixSeconds now,
               IngestSummary& summary);

  SQLite::Database db_;
};

std::vector<MatchRow> SqliteIdentityStore::open_matches() {
  std::vector<MatchRow> rows;
  SQLite::Statement query(db_,
                          "SELECT person_a, person_b, reason, fields, created_at "
                          "FROM match_candidates WHERE state = 'open' "
                          "ORDER BY created_at, person_a, person_b");
  while (query.executeStep()) {
    MatchRow& row = rows.emplace_back();
    row.person_a = query.getColumn(0).getInt64();
    row.person_b = query.getColumn(1).getInt64();
    row.reason = clinical::parse_match_reason(query.getColumn(2).getString())
                     .value_or(clinical::MatchReason::ambiguous);
    row.fields = query.getColumn(3).getString();
    row.created_at = query.getColumn(4).getInt64();
  }
  return rows;
}

std::vector<AuditRow> SqliteIdentityStore::audit() {
  std::vector<AuditRow> rows;
  SQLite::Statement query(db_,
                          "SELECT audit_id, at, os_user, action, detail, reason "
                          "FROM identity_audit ORDER BY audit_id");
  while (query.executeStep()) {
    AuditRow& row = rows.emplace_back();
    row.audit_id = query.getColumn(0).getInt64();
    row.at = query.getColumn(1).getInt64();
    row.os_user = query.getColumn(2).getString();
    row.action = query.getColumn(3).getString();
    row.detail = query.getColumn(4).getString();
    row.reason = query.getColumn(5).getString();
  }
  return rows;
}

bool SqliteIdentityStore::person_exists(std::int64_t person_id) {
  SQLite::Statement query(db_, "SELECT 1 FROM persons WHERE person_id = ? AND merged_into IS NULL");
  query.bind(1, person_id);
  return query.executeStep();
}

void SqliteIdentityStore::record(const ReviewAction& action, std::string_view what,
                                 const std::string& detail) {
  SQLite::Statement insert(db_,
                           "INSERT INTO identity_audit (at, os_user, action, detail, reason) "
                           "VALUES (?, ?, ?, ?, ?)");
  insert.bind(1, action.now);
  insert.bind(2, action.os_user);
  insert.bind(3, std::string(what));
  insert.bind(4, detail);
  insert.bind(5, action.reason);
  insert.exec();
}

// Whose results changed is known, not which of them a trend run now crosses: every analyte of
// the person that has trend rules is judged again over its whole history. The ledger decides
// what happens to each alert, as it does at ingest.
void SqliteIdentityStore::rejudge(std::int64_t person_id, const AlertPolicy& targets,
                                  clinical::UnixSeconds now, IngestSummary& summary) {
  std::vector<std::string> analytes;
  {
    SQLite::Statement query(db_,
                            "SELECT DISTINCT analyte FROM results "
                            "WHERE person_id = ? AND state = 'current' ORDER BY analyte");
    query.bind(1, person_id);
    while (query.executeStep()) {
      analytes.push_back(query.getColumn(0).getString());
    }
  }
  LedgerStatements statements(db_);
  AlertLedger ledger(db_, statements, targets, now, summary);
  for (const std::string& analyte : analytes) {
    if (targets.trends.contains(analyte)) {
      ledger.rejudge_person(person_id, analyte);
    }
  }
}

IdentityOutcome SqliteIdentityStore::merge(std::int64_t kept, std::int64_t absorbed,
                                           const ReviewAction& action, const AlertPolicy& targets) {
  SQLite::Transaction transaction(db_, SQLite::TransactionBehavior::IMMEDIATE);
  if (kept == absorbed) {
    throw IdentityError("cannot merge " + person_text(kept) + " with itself");
  }
  for (const std::int64_t id : {kept, absorbed}) {
    if (!person_exists(id)) {
      throw IdentityError("no " + person_text(id) + " in the database");
    }
  }
  IdentityOutcome outcome;
  outcome.person_id = kept;
  exec_bound(db_, "UPDATE identifiers SET person_id = ? WHERE person_id = ?", kept, absorbed);
  exec_bound(db_, "UPDATE messages SET person_id = ? WHERE person_id = ?", kept, absorbed);
  outcome.moved_results =
      exec_bound(db_, "UPDATE results SET person_id = ? WHERE person_id = ?", kept, absorbed);
  // One draw reported not performed under both identities stays one line.
  exec_bound(db_, "UPDATE OR IGNORE not_performed SET person_id = ? WHERE person_id = ?", kept,
             absorbed);
  exec_bound(db_, "DELETE FROM not_performed WHERE person_id = ? AND person_id <> ?", absorbed,
             kept);
  exec_bound(db_, "UPDATE outbox SET person_id = ? WHERE person_id = ?", kept, absorbed);
  // A silence a practitioner set for either identity is about this one patient: both hold for the
  // merged person. (An unmerge leaves them with the person they were set for: the identifier split
  // off is mailed again, the safe side.)
  exec_bound(db_, "UPDATE silences SET person_id = ? WHERE person_id = ?", kept, absorbed);
  // The reviewed pair is settled; the absorbed person's other pairs become the kept person's.
  exec_bound(db_,
             "UPDATE match_candidates SET state = 'merged' "
             "WHERE person_a = min(?1, ?2) AND person_b = max(?1, ?2)",
             kept, absorbed);
  exec_bound(db_,
             "INSERT OR IGNORE INTO match_candidates "
             "(person_a, person_b, reason, fields, state, created_at) "
             "SELECT min(?1, other), max(?1, other), reason, fields, state, created_at FROM "
             "(SELECT CASE WHEN person_a = ?2 THEN person_b ELSE person_a END AS other, "
             "reason, fields, state, created_at FROM match_candidates "
             "WHERE person_a = ?2 OR person_b = ?2) WHERE other <> ?1",
             kept, absorbed);
  exec_bound(db_,
             "DELETE FROM match_candidates WHERE (person_a = ?2 OR person_b = ?2) "
             "AND NOT (person_a = min(?1, ?2) AND person_b = max(?1, ?2))",
             kept, absorbed);
  // The kept person's sex, when unknown, is learnt from the absorbed one.
  exec_bound(db_,
             "UPDATE persons SET sex = (SELECT sex FROM persons WHERE person_id = ?2) "
             "WHERE person_id = ?1 AND sex = 'U'",
             kept, absorbed);
  // A tombstone, not a deletion: the id is never reused, and persons merged into the absorbed
  // one earlier now point at the kept one.
  exec_bound(db_, "UPDATE persons SET merged_into = ?1 WHERE merged_into = ?2 OR person_id = ?2",
             kept, absorbed);
  rejudge(kept, targets, action.now, outcome.alerts);
  {
    // The alerts each identity queued before the merge meet the other's silences now.
    LedgerStatements statements(db_);
    AlertLedger ledger(db_, statements, targets, action.now, outcome.alerts);
    ledger.resilence_person(kept);
  }
  record(action, "merge",
         "merged " + person_text(absorbed) + " into " + person_text(kept) + " (" +
             std::to_string(outcome.moved_results) + " results)");
  transaction.commit();
  return outcome;
}

IdentityOutcome SqliteIdentityStore::unmerge(std::int64_t person, std::string_view authority,
                                             std::string_view mrn, const ReviewAction& action,
                                             const AlertPolicy& targets) {
  SQLite::Transaction transaction(db_, SQLite::TransactionBehavior::IMMEDIATE);
  const std::string identifier = std::string(authority) + "|" + std::string(mrn);
  std::string family;
  std::string given;
  std::string birth_date;
  std::string sex;
  {
    SQLite::Statement find(db_,
                           "SELECT person_id, family, given, birth_date, sex FROM identifiers "
                           "WHERE authority = ? AND mrn = ?");
    find.bind(1, std::string(authority));
    find.bind(2, std::string(mrn));
    if (!find.executeStep() || find.getColumn(0).getInt64() != person) {
      throw IdentityError("identifier " + identifier + " is not one of " + person_text(person));
    }
    family = find.getColumn(1).getString();
    given = find.getColumn(2).getString();
    birth_date = find.getColumn(3).getString();
    sex = find.getColumn(4).getString();
  }
  {
    SQLite::Statement count(db_, "SELECT count(*) FROM identifiers WHERE person_id = ?");
    count.bind(1, person);
    count.executeStep();
    if (count.getColumn(0).getInt64() < 2) {
      throw IdentityError(identifier + " is the only identifier of " + person_text(person) +
                          ": there is nothing to split");
    }
  }
  SQLite::Statement insert(db_,
                           "INSERT INTO persons (family, given, birth_date, sex, match_key, "
                           "created_at, demographic_key) VALUES (?1, ?2, ?3, ?4, NULL, ?5, "
                           "labwatch_demographic_key(?1, ?2, ?3))");
  insert.bind(1, family);
  insert.bind(2, given);
  insert.bind(3, birth_date);
  insert.bind(4, sex);
  insert.bind(5, action.now);
  insert.exec();
  const std::int64_t split = db_.getLastInsertRowid();

  const auto move = [&](const char* sql) {
    SQLite::Statement statement(db_, sql);
    statement.bind(1, split);
    statement.bind(2, person);
    statement.bind(3, identifier);
    return statement.exec();
  };
  SQLite::Statement relink(db_,
                           "UPDATE identifiers SET person_id = ? WHERE authority = ? AND mrn = ?");
  relink.bind(1, split);
  relink.bind(2, std::string(authority));
  relink.bind(3, std::string(mrn));
  relink.exec();
  move("UPDATE messages SET person_id = ?1 WHERE person_id = ?2 AND patient_key = ?3");
  IdentityOutcome outcome;
  outcome.person_id = split;
  outcome.moved_results = move(
      "UPDATE results SET person_id = ?1 WHERE person_id = ?2 AND message_id IN "
      "(SELECT message_id FROM messages WHERE person_id = ?1 AND patient_key = ?3)");
  move(
      "UPDATE not_performed SET person_id = ?1 WHERE person_id = ?2 AND message_id IN "
      "(SELECT message_id FROM messages WHERE person_id = ?1 AND patient_key = ?3)");
  move("UPDATE outbox SET person_id = ?1 WHERE person_id = ?2 AND patient_key = ?3");
  // The person keeps the demographics of an identifier it still has (the one it was first
  // reported under), not those of the identifier that left.
  SQLite::Statement names(db_,
                          "UPDATE persons SET (family, given, birth_date, sex) = "
                          "(SELECT family, given, birth_date, sex FROM identifiers i "
                          "WHERE i.person_id = ?1 ORDER BY (SELECT min(message_id) FROM messages m "
                          "WHERE m.person_id = ?1 AND m.patient_key = i.authority || '|' || i.mrn) "
                          "NULLS LAST, i.authority, i.mrn LIMIT 1) WHERE person_id = ?1");
  names.bind(1, person);
  names.exec();
  SQLite::Statement key(db_,
                        "UPDATE persons SET demographic_key = labwatch_demographic_key(family, "
                        "given, birth_date) WHERE person_id = ?");
  key.bind(1, person);
  key.exec();
  // The reviewer said these are two persons: the pair is not proposed again.
  exec_bound(db_,
             "INSERT INTO match_candidates (person_a, person_b, reason, fields, state, "
             "created_at) VALUES (min(?1, ?2), max(?1, ?2), 'ambiguous', '', 'dismissed', 0)",
             person, split);
  rejudge(person, targets, action.now, outcome.alerts);
  rejudge(split, targets, action.now, outcome.alerts);
  record(action, "unmerge",
         "moved " + identifier + " from " + person_text(person) + " to new " + person_text(split) +
             " (" + std::to_string(outcome.moved_results) + " results)");
  transaction.commit();
  return outcome;
}

void SqliteIdentityStore::dismiss(std::int64_t a, std::int64_t b, const ReviewAction& action) {
  SQLite::Transaction transaction(db_, SQLite::TransactionBehavior::IMMEDIATE);
  const int changed = exec_bound(db_,
                                 "UPDATE match_candidates SET state = 'dismissed' "
                                 "WHERE person_a = min(?1, ?2) AND person_b = max(?1, ?2) "
                                 "AND state = 'open'",
                                 a, b);
  if (changed == 0) {
    throw IdentityError("no open match between " + person_text(a) + " and " + person_text(b));
  }
  record(action, "dismiss",
         "persons " + std::to_string(std::min(a, b)) + " and " + std::to_string(std::max(a, b)) +
             " are not the same person");
  transaction.commit();
}

}  // namespace

std::unique_ptr<IdentityStore> open_identity_store(const std::string& path,
                                                   const StoreOptions& options) {
  return std::make_unique<SqliteIdentityStore>(open_database(path, options));
}

}  // namespace labwatch::storage
