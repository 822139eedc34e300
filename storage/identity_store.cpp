// SPDX-License-Identifier: Apache-2.0
// Reviewing patient identity: merge, unmerge and dismissal as single audited transactions.
#include "storage/identity_store.hpp"

#include <algorithm>
#include <memory>
#include <optional>
#include <utility>

#include "clinical/person_match.hpp"
#include "storage/alert_ledger.hpp"
#include "storage/connect.hpp"
#include "storage/sql.hpp"
#include "storage/sql_values.hpp"

namespace labwatch::storage {

namespace {

std::string person_text(std::int64_t id) { return "person " + std::to_string(id); }

int exec_bound(sql::Database& db, const char* sql, std::int64_t a, std::int64_t b) {
  sql::Statement statement(db, sql);
  statement.bind(1, a);
  statement.bind(2, b);
  return statement.exec();
}

// clinical::demographic_key of a person's stored demographics, or nullopt.
std::optional<std::string> demographic_key_of(const std::string& family, const std::string& given,
                                              const std::string& birth_date) {
  clinical::PersonIdentity person;
  person.family = family;
  person.given = given;
  person.birth_date = birth_date;
  return clinical::demographic_key(person);
}

void bind_key(sql::Statement& statement, int index, const std::optional<std::string>& key) {
  if (key) {
    statement.bind(index, *key);
  } else {
    statement.bind_null(index);
  }
}

class SqliteIdentityStore final : public IdentityStore {
 public:
  explicit SqliteIdentityStore(std::unique_ptr<sql::Database> db)
      : owned_(std::move(db)), db_(*owned_) {}

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

  std::unique_ptr<sql::Database> owned_;
  sql::Database& db_;
};

std::vector<MatchRow> SqliteIdentityStore::open_matches() {
  std::vector<MatchRow> rows;
  sql::Statement query(db_,
                       "SELECT person_a, person_b, reason, fields, created_at "
                       "FROM match_candidates WHERE state = 'open' "
                       "ORDER BY created_at, person_a, person_b");
  while (query.step()) {
    MatchRow& row = rows.emplace_back();
    row.person_a = query.column(0).as_int64();
    row.person_b = query.column(1).as_int64();
    row.reason = clinical::parse_match_reason(query.column(2).as_string())
                     .value_or(clinical::MatchReason::ambiguous);
    row.fields = query.column(3).as_string();
    row.created_at = query.column(4).as_int64();
  }
  return rows;
}

std::vector<AuditRow> SqliteIdentityStore::audit() {
  std::vector<AuditRow> rows;
  sql::Statement query(db_,
                       "SELECT audit_id, at, os_user, action, detail, reason "
                       "FROM identity_audit ORDER BY audit_id");
  while (query.step()) {
    AuditRow& row = rows.emplace_back();
    row.audit_id = query.column(0).as_int64();
    row.at = query.column(1).as_int64();
    row.os_user = query.column(2).as_string();
    row.action = query.column(3).as_string();
    row.detail = query.column(4).as_string();
    row.reason = query.column(5).as_string();
  }
  return rows;
}

bool SqliteIdentityStore::person_exists(std::int64_t person_id) {
  sql::Statement query(db_, "SELECT 1 FROM persons WHERE person_id = ? AND merged_into IS NULL");
  query.bind(1, person_id);
  return query.step();
}

void SqliteIdentityStore::record(const ReviewAction& action, std::string_view what,
                                 const std::string& detail) {
  sql::Statement insert(db_,
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
    sql::Statement query(db_,
                         "SELECT DISTINCT analyte FROM results "
                         "WHERE person_id = ? AND state = 'current' ORDER BY analyte");
    query.bind(1, person_id);
    while (query.step()) {
      analytes.push_back(query.column(0).as_string());
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
  sql::Transaction transaction(db_);
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
  exec_bound(db_,
             "UPDATE not_performed SET person_id = ?1 WHERE person_id = ?2 AND NOT EXISTS "
             "(SELECT 1 FROM not_performed o WHERE o.person_id = ?1 AND "
             "o.analyte = not_performed.analyte AND o.collected_at = not_performed.collected_at)",
             kept, absorbed);
  exec_bound(db_, "DELETE FROM not_performed WHERE person_id = ? AND person_id <> ?", absorbed,
             kept);
  exec_bound(db_, "UPDATE outbox SET person_id = ? WHERE person_id = ?", kept, absorbed);
  // A silence a practitioner set for either identity is about this one patient: both hold for the
  // merged person. (An unmerge leaves them with the person they were set for: the identifier split
  // off is mailed again, the safe side.)
  exec_bound(db_, "UPDATE silences SET person_id = ? WHERE person_id = ?", kept, absorbed);
  // The reviewed pair is settled; the absorbed person's other pairs become the kept person's.
  exec_bound(db_,
             "UPDATE match_candidates SET state = 'merged' WHERE person_a = ? AND person_b = ?",
             std::min(kept, absorbed), std::max(kept, absorbed));
  exec_bound(db_,
             "INSERT INTO match_candidates "
             "(person_a, person_b, reason, fields, state, created_at) "
             "SELECT CASE WHEN ?1 < other THEN ?1 ELSE other END, "
             "CASE WHEN ?1 < other THEN other ELSE ?1 END, reason, fields, state, created_at FROM "
             "(SELECT CASE WHEN person_a = ?2 THEN person_b ELSE person_a END AS other, "
             "reason, fields, state, created_at FROM match_candidates "
             "WHERE person_a = ?2 OR person_b = ?2) AS pairs WHERE other <> ?1 "
             "ON CONFLICT DO NOTHING",
             kept, absorbed);
  exec_bound(db_,
             "DELETE FROM match_candidates WHERE (person_a = ?2 OR person_b = ?2) "
             "AND NOT (person_a = ?1 AND person_b = ?2) AND NOT (person_a = ?2 AND person_b = ?1)",
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
  sql::Transaction transaction(db_);
  const std::string identifier = std::string(authority) + "|" + std::string(mrn);
  std::string family;
  std::string given;
  std::string birth_date;
  std::string sex;
  {
    sql::Statement find(db_,
                        "SELECT person_id, family, given, birth_date, sex FROM identifiers "
                        "WHERE authority = ? AND mrn = ?");
    find.bind(1, std::string(authority));
    find.bind(2, std::string(mrn));
    if (!find.step() || find.column(0).as_int64() != person) {
      throw IdentityError("identifier " + identifier + " is not one of " + person_text(person));
    }
    family = find.column(1).as_string();
    given = find.column(2).as_string();
    birth_date = find.column(3).as_string();
    sex = find.column(4).as_string();
  }
  {
    sql::Statement count(db_, "SELECT count(*) FROM identifiers WHERE person_id = ?");
    count.bind(1, person);
    count.step();
    if (count.column(0).as_int64() < 2) {
      throw IdentityError(identifier + " is the only identifier of " + person_text(person) +
                          ": there is nothing to split");
    }
  }
  sql::Statement insert(db_, std::string("INSERT INTO persons (family, given, birth_date, sex, "
                                         "match_key, created_at, demographic_key) "
                                         "VALUES (?, ?, ?, ?, NULL, ?, ?)") +
                                 db_.returning("person_id"));
  insert.bind(1, family);
  insert.bind(2, given);
  insert.bind(3, birth_date);
  insert.bind(4, sex);
  insert.bind(5, action.now);
  bind_key(insert, 6, demographic_key_of(family, given, birth_date));
  const std::int64_t split = inserted_id(db_, insert);

  const auto move = [&](const char* sql) {
    sql::Statement statement(db_, sql);
    statement.bind(1, split);
    statement.bind(2, person);
    statement.bind(3, identifier);
    return statement.exec();
  };
  sql::Statement relink(db_,
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
  sql::Statement names(db_,
                       "UPDATE persons SET (family, given, birth_date, sex) = "
                       "(SELECT family, given, birth_date, sex FROM identifiers i "
                       "WHERE i.person_id = ?1 ORDER BY (SELECT min(message_id) FROM messages m "
                       "WHERE m.person_id = ?1 AND m.patient_key = i.authority || '|' || i.mrn) "
                       "NULLS LAST, i.authority, i.mrn LIMIT 1) WHERE person_id = ?1");
  names.bind(1, person);
  names.exec();
  {
    sql::Statement names_now(db_,
                             "SELECT family, given, birth_date FROM persons WHERE person_id = ?");
    names_now.bind(1, person);
    std::optional<std::string> demographic_key;
    if (names_now.step()) {
      demographic_key =
          demographic_key_of(names_now.column(0).as_string(), names_now.column(1).as_string(),
                             names_now.column(2).as_string());
    }
    sql::Statement key(db_, "UPDATE persons SET demographic_key = ? WHERE person_id = ?");
    bind_key(key, 1, demographic_key);
    key.bind(2, person);
    key.exec();
  }
  // The reviewer said these are two persons: the pair is not proposed again.
  exec_bound(db_,
             "INSERT INTO match_candidates (person_a, person_b, reason, fields, state, "
             "created_at) VALUES (?, ?, 'ambiguous', '', 'dismissed', 0)",
             std::min(person, split), std::max(person, split));
  rejudge(person, targets, action.now, outcome.alerts);
  rejudge(split, targets, action.now, outcome.alerts);
  record(action, "unmerge",
         "moved " + identifier + " from " + person_text(person) + " to new " + person_text(split) +
             " (" + std::to_string(outcome.moved_results) + " results)");
  transaction.commit();
  return outcome;
}

void SqliteIdentityStore::dismiss(std::int64_t a, std::int64_t b, const ReviewAction& action) {
  sql::Transaction transaction(db_);
  const int changed = exec_bound(db_,
                                 "UPDATE match_candidates SET state = 'dismissed' "
                                 "WHERE person_a = ? AND person_b = ? AND state = 'open'",
                                 std::min(a, b), std::max(a, b));
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
  return std::make_unique<SqliteIdentityStore>(connect(path, options));
}

}  // namespace labwatch::storage
