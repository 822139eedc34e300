// SPDX-License-Identifier: Apache-2.0
// Opening the SQLite database (file mode, pragmas) and its versioned schema migrations.
#include "storage/database.hpp"

#include <SQLiteCpp/Transaction.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>

#include "clinical/person_match.hpp"

namespace labwatch::storage {

namespace {

constexpr int kPageSizeBytes = 16384;

// Version 1: the ledger of files, persons, messages, result versions, refusals, unmapped codes and
// alerts. Times are Unix seconds, UTC. Indexes exist only where a query or the per-result
// reconciliation needs them: every index costs each of the million inserts of a batch file.
// CHECKs compare with OR, never `IN (...)`: SQLite evaluates an IN list of more than two
// constants through a temporary b-tree built on every statement execution, i.e. on every row.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE files (
  file_id            INTEGER PRIMARY KEY,
  sha256             TEXT NOT NULL UNIQUE,     -- the idempotency key
  name               TEXT NOT NULL,
  source             TEXT NOT NULL,            -- facility of the matching source, or ''
  size               INTEGER NOT NULL,
  ingested_at        INTEGER NOT NULL,
  outcome            TEXT NOT NULL CHECK (outcome = 'open' OR outcome = 'accepted' OR
                                          outcome = 'partial' OR outcome = 'refused'),
  reports            INTEGER NOT NULL DEFAULT 0,
  results_stored     INTEGER NOT NULL DEFAULT 0,
  duplicates         INTEGER NOT NULL DEFAULT 0,
  duplicate_messages INTEGER NOT NULL DEFAULT 0,
  superseded         INTEGER NOT NULL DEFAULT 0,
  withdrawn          INTEGER NOT NULL DEFAULT 0,
  refusals           INTEGER NOT NULL DEFAULT 0,
  alerts             INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE persons (
  person_id  INTEGER PRIMARY KEY,
  family     TEXT NOT NULL,                    -- as first reported
  given      TEXT NOT NULL,
  birth_date TEXT NOT NULL,                    -- YYYY-MM-DD, '' when unknown
  sex        TEXT NOT NULL CHECK (sex = 'F' OR sex = 'M' OR sex = 'U'),
  match_key  TEXT,                             -- clinical::person_match_key; NULL: by identifier only
  created_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX persons_by_match_key ON persons (match_key) WHERE match_key IS NOT NULL;

CREATE TABLE identifiers (
  authority TEXT NOT NULL,
  mrn       TEXT NOT NULL,
  person_id INTEGER NOT NULL REFERENCES persons (person_id),
  PRIMARY KEY (authority, mrn)
) WITHOUT ROWID;

CREATE TABLE messages (
  message_id   INTEGER PRIMARY KEY,
  file_id      INTEGER NOT NULL REFERENCES files (file_id),
  facility     TEXT NOT NULL,
  control_id   TEXT NOT NULL,
  raw_digest   TEXT NOT NULL,                  -- of the message's bytes; '' when unknown (CSV)
  message_time INTEGER NOT NULL,               -- 0 when the message carried none
  person_id    INTEGER NOT NULL REFERENCES persons (person_id),
  patient_key  TEXT NOT NULL,                  -- AUTHORITY|MRN as reported
  pos_message  INTEGER,
  pos_line     INTEGER,
  pos_offset   INTEGER
);
-- A resend is found by its control id, then compared by digest: control ids are not trusted to be
-- unique, but senders number them in sequence, so this index grows at its end.
CREATE INDEX messages_by_control_id ON messages (facility, control_id) WHERE control_id <> '';

-- results.message_id, results.person_id and alerts.result_id declare no REFERENCES: they are
-- written only with the rowids that the same transaction has just inserted, once per result of a
-- million-result file, and their checks cost 13% of the ingest path (callgrind). Foreign keys
-- stay on for every other column.
CREATE TABLE results (
  result_id     INTEGER PRIMARY KEY,
  message_id    INTEGER NOT NULL,              -- messages.message_id
  person_id     INTEGER NOT NULL,              -- persons.person_id
  order_id      TEXT,                          -- filler order number; NULL without one (CSV)
  analyte       TEXT NOT NULL,
  code          TEXT NOT NULL,
  value         REAL NOT NULL,                 -- canonical unit
  unit          TEXT NOT NULL,
  comparator    TEXT NOT NULL,
  raw_value     TEXT NOT NULL,
  raw_unit      TEXT NOT NULL,
  raw_range     TEXT NOT NULL,
  ref_low       REAL,                          -- canonical unit
  ref_high      REAL,
  flags         TEXT NOT NULL,
  status        TEXT NOT NULL CHECK (status = 'final' OR status = 'corrected' OR
                                     status = 'preliminary' OR status = 'cancelled'),
  collected_at  INTEGER NOT NULL,
  notes         TEXT NOT NULL,
  pos_segment   INTEGER,
  pos_line      INTEGER,
  state         TEXT NOT NULL CHECK (state = 'current' OR state = 'superseded' OR
                                     state = 'withdrawn' OR state = 'cancelled'),
  superseded_by INTEGER REFERENCES results (result_id)
);
-- The versions of a result are found through its group (clinical::VersionKey): the filler order
-- number, or for CSV the person and collection time. Order numbers are assigned in sequence too.
-- The partial indexes test NULL, not '': a condition like order_id = '' makes SQLite re-prepare
-- every statement that binds order_id = ?, to check whether the bound value selects the index.
CREATE INDEX results_by_order ON results (order_id) WHERE order_id IS NOT NULL;
CREATE INDEX results_by_person_time ON results (person_id, collected_at) WHERE order_id IS NULL;

CREATE TABLE refusals (
  refusal_id    INTEGER PRIMARY KEY,
  file_id       INTEGER NOT NULL REFERENCES files (file_id),
  message_id    INTEGER REFERENCES messages (message_id),
  -- result: inside a stored message; message: an HL7 message of the file; file: the rest
  level         TEXT NOT NULL CHECK (level = 'file' OR level = 'message' OR level = 'result'),
  reason        TEXT NOT NULL,
  detail        TEXT NOT NULL,
  pos_message   INTEGER,
  pos_segment   INTEGER,
  segment_id    TEXT NOT NULL,
  pos_field     INTEGER,
  pos_line      INTEGER,
  pos_column    TEXT NOT NULL,
  pos_offset    INTEGER,
  patient_key   TEXT NOT NULL,
  code          TEXT NOT NULL,
  analyte       TEXT NOT NULL,
  collected_at  TEXT NOT NULL,                 -- as the sender wrote it, ISO 8601; '' when unknown
  result_status TEXT NOT NULL                  -- 'F', 'P', 'C', 'X' or ''
);

CREATE TABLE unmapped_codes (
  facility     TEXT NOT NULL,
  code         TEXT NOT NULL,
  count        INTEGER NOT NULL,
  first_seen   INTEGER NOT NULL,
  last_seen    INTEGER NOT NULL,
  last_file_id INTEGER NOT NULL REFERENCES files (file_id),
  PRIMARY KEY (facility, code)
) WITHOUT ROWID;

-- No CHECK on state: the outbox adds states without rebuilding the table.
CREATE TABLE alerts (
  alert_id    INTEGER PRIMARY KEY,
  result_id   INTEGER NOT NULL,                -- results.result_id (no REFERENCES: see results)
  rule        TEXT NOT NULL,
  state       TEXT NOT NULL,                   -- pending, sent, failed, resolved, superseded, withdrawn
  value       REAL NOT NULL,
  target_low  REAL,
  target_high REAL,
  ref_low     REAL,
  ref_high    REAL,
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL,
  UNIQUE (result_id, rule)
);
)sql";

// Version 2: the mail outbox and the alert ledger's notices, and an index for a person's results
// of one analyte: trend rules judge them at ingest, each mail shows the last five, and
// `labwatch trend` / `report` list them. Its b-tree insert costs about a fifth more ingest CPU (a
// 170,000-result HL7 file: 1.0 s -> 1.25 s user); every query it serves would otherwise scan all
// results.
// Alerts of version 1 were never mailed (there was no outbox): they become 'unmailed', so an
// upgrade does not mail a backlog. An outbox item is one mail to one address about one person;
// a notice is one line of it about one alert. States: pending (queued; with attempts = 0 it is
// still open for the rest of a panel), sending (claimed), sent, failed (permanently).
constexpr const char* kSchemaV2 = R"sql(
CREATE TABLE outbox (
  outbox_id       INTEGER PRIMARY KEY,
  message_id      TEXT NOT NULL UNIQUE,        -- "<hex>@labwatch", kept across retries
  practitioner_id TEXT NOT NULL,               -- '' for the default recipient
  email           TEXT NOT NULL,
  name            TEXT NOT NULL,
  full_phi        INTEGER NOT NULL CHECK (full_phi = 0 OR full_phi = 1),
  person_id       INTEGER NOT NULL REFERENCES persons (person_id),
  patient_key     TEXT NOT NULL,               -- AUTHORITY|MRN of the report that opened it
  report_ref      TEXT NOT NULL,               -- control ids (or order ids, file name), ', '
  state           TEXT NOT NULL CHECK (state = 'pending' OR state = 'sending' OR
                                       state = 'sent' OR state = 'failed'),
  created_at      INTEGER NOT NULL,
  due_at          INTEGER NOT NULL,            -- created_at + the collect wait
  next_attempt_at INTEGER NOT NULL,            -- the retry time after a transient failure
  attempts        INTEGER NOT NULL DEFAULT 0,
  last_error      TEXT NOT NULL DEFAULT '',
  sent_at         INTEGER
);
-- The open mail of a recipient about a person, that a new notice joins.
CREATE INDEX outbox_open ON outbox (email, person_id) WHERE state = 'pending' AND attempts = 0;
CREATE INDEX outbox_pending ON outbox (due_at) WHERE state = 'pending';

CREATE TABLE notices (
  notice_id           INTEGER PRIMARY KEY,
  outbox_id           INTEGER NOT NULL REFERENCES outbox (outbox_id),
  alert_id            INTEGER NOT NULL REFERENCES alerts (alert_id),
  result_id           INTEGER NOT NULL,        -- the version whose value the line shows
  kind                TEXT NOT NULL CHECK (kind = 'alert' OR kind = 'correction' OR
                                           kind = 'resolution' OR kind = 'retraction'),
  previous_value      REAL,                    -- correction, resolution: the alerted value
  previous_message_id TEXT NOT NULL            -- the mail about the earlier alert, or ''
);
CREATE INDEX notices_by_outbox ON notices (outbox_id);
CREATE INDEX notices_by_alert ON notices (alert_id);

CREATE INDEX results_by_person_analyte ON results (person_id, analyte, collected_at);

UPDATE alerts SET state = 'unmailed' WHERE state = 'pending';
)sql";

// Version 3: one index on a person's results in time order instead of two. An ingest inserts
// results by person in arrival order, i.e. at random places of a (person, analyte, time) index: the
// ten results of one panel went to ten places, each found by comparing analyte text. Keyed by
// (person, time, analyte) they go to one place, found by comparing integers. For 850,043 results
// (100,000 messages) inserted alone, with the order index: 2.07 s CPU without a person index,
// 3.65 s with (person, analyte, time), 2.79 s with (person, time, analyte) (bench/README.md).
// The queries keep their plans' shape: a person's results of one analyte (trend rules, the values
// in a mail, `labwatch trend`) scan that person's entries in time order and check the analyte in
// the index, reading only the matching rows; the export sorts each person's rows by analyte.
// The new index also finds a CSV report's versions (person and collection time), which replaces
// the partial index of version 1. refusals_by_file lists a file's refusals when its bytes come in
// again (IngestStore::find_file).
constexpr const char* kSchemaV3 = R"sql(
DROP INDEX results_by_person_analyte;
DROP INDEX results_by_person_time;
CREATE INDEX results_by_person_time_analyte ON results (person_id, collected_at, analyte);
CREATE INDEX refusals_by_file ON refusals (file_id);
)sql";

// Version 4 (not performed, issue 14): lines that are no result are skipped and counted instead of
// refused; a file counts them (skipped), and the preliminaries that OBX-11 U made final
// (promoted). A line that says its test was not performed (TNP, QNS, ...) is kept as a gap of
// that person's analyte at its collection time, which `trend` and the report show; one per draw.
constexpr const char* kSchemaV4NotPerformed = R"sql(
ALTER TABLE files ADD COLUMN skipped INTEGER NOT NULL DEFAULT 0;
ALTER TABLE files ADD COLUMN promoted INTEGER NOT NULL DEFAULT 0;
CREATE TABLE not_performed (
  not_performed_id INTEGER PRIMARY KEY,
  message_id       INTEGER NOT NULL REFERENCES messages (message_id),
  person_id        INTEGER NOT NULL REFERENCES persons (person_id),
  analyte          TEXT NOT NULL,
  collected_at     INTEGER NOT NULL,
  code             TEXT NOT NULL,
  order_id         TEXT,                       -- filler order number; NULL without one (CSV)
  raw_value        TEXT NOT NULL,              -- as sent: TNP, QNS, ...
  pos_segment      INTEGER,
  pos_line         INTEGER,
  UNIQUE (person_id, analyte, collected_at)
);
)sql";

// Version 5 (intake attempts, issue 18): inbox files whose ingest failed for an operational
// reason (an exception, not their content), known by name, size and modification time since their
// digest is known only once they are read whole. A file that fails kPoisonAttempts times goes to
// failed/ instead of stopping the daemon at every start; a row goes once its file is ingested.
constexpr const char* kSchemaV5IntakeAttempts = R"sql(
CREATE TABLE intake_attempts (
  name        TEXT NOT NULL,
  size        INTEGER NOT NULL,
  mtime_ns    INTEGER NOT NULL,
  failures    INTEGER NOT NULL,
  last_error  TEXT NOT NULL,
  last_at     INTEGER NOT NULL,             -- unix seconds
  PRIMARY KEY (name, size, mtime_ns)
);
)sql";

// Version 6: what the lab's own witnesses let a result be judged by (issue 13). range_use says
// whether ref_low/ref_high is the lab's printed range ('lab'), none was printed ('none'), or why
// the printed one was not used (clinical::RangeProblem's key); '' on rows of earlier versions,
// read as 'lab' when they have a bound. tolerance is half a unit of the lab's last printed digit
// for a converted value (bounds are judged with it), shown_decimals the precision to show.
// fraction names the analyte a stand-in total was read from (25-OH D3 taken as the total 25-OH
// vitamin D), '' for a real total and every other result (clinical::plan_stand_in).
constexpr const char* kSchemaV6LabWitnesses = R"sql(
ALTER TABLE results ADD COLUMN range_use TEXT NOT NULL DEFAULT '';
ALTER TABLE results ADD COLUMN tolerance REAL NOT NULL DEFAULT 0;
ALTER TABLE results ADD COLUMN shown_decimals INTEGER;
ALTER TABLE results ADD COLUMN fraction TEXT NOT NULL DEFAULT '';
)sql";

// Version 7: patient identity you can trust (issue 17). clinical::plan_person_match decides; a
// match key is no longer unique (one authority may hold two identifiers with equal demographics,
// kept apart for review) nor looked up: its index goes (the column stays, for information) and
// persons are found by birth date instead.
// A merged person stays as a tombstone (merged_into), so that its id is never given to another
// person and the audit trail keeps meaning what it says.
// Each identifier keeps the demographics it was first reported with, so that an unmerge can give
// it back its own person; rows of earlier versions take their person's. match_candidates holds
// the pairs for a reviewer (person_a < person_b; reason: clinical::MatchReason; fields: the
// differing clinical::PersonFields, comma separated), identity_audit every merge, unmerge and
// dismissal with who did it and why.
constexpr const char* kSchemaV7Identity = R"sql(
DROP INDEX persons_by_match_key;
ALTER TABLE persons ADD COLUMN merged_into INTEGER;  -- the person it was merged into; NULL: active
CREATE INDEX persons_by_birth_date ON persons (birth_date) WHERE merged_into IS NULL;
ALTER TABLE identifiers ADD COLUMN family TEXT NOT NULL DEFAULT '';
ALTER TABLE identifiers ADD COLUMN given TEXT NOT NULL DEFAULT '';
ALTER TABLE identifiers ADD COLUMN birth_date TEXT NOT NULL DEFAULT '';
ALTER TABLE identifiers ADD COLUMN sex TEXT NOT NULL DEFAULT 'U';
UPDATE identifiers SET
  family = (SELECT family FROM persons p WHERE p.person_id = identifiers.person_id),
  given = (SELECT given FROM persons p WHERE p.person_id = identifiers.person_id),
  birth_date = (SELECT birth_date FROM persons p WHERE p.person_id = identifiers.person_id),
  sex = (SELECT sex FROM persons p WHERE p.person_id = identifiers.person_id);
CREATE INDEX identifiers_by_person ON identifiers (person_id);
CREATE INDEX messages_by_person ON messages (person_id);

CREATE TABLE match_candidates (
  person_a   INTEGER NOT NULL,                 -- persons.person_id, the smaller of the pair
  person_b   INTEGER NOT NULL,
  reason     TEXT NOT NULL,                    -- clinical::MatchReason
  fields     TEXT NOT NULL,                    -- differing clinical::PersonFields, comma separated
  state      TEXT NOT NULL CHECK (state IN ('open', 'dismissed', 'merged')),
  created_at INTEGER NOT NULL,
  PRIMARY KEY (person_a, person_b),
  CHECK (person_a < person_b)
) WITHOUT ROWID;
CREATE INDEX match_candidates_by_b ON match_candidates (person_b);

CREATE TABLE identity_audit (
  audit_id  INTEGER PRIMARY KEY,
  at        INTEGER NOT NULL,                  -- Unix seconds
  os_user   TEXT NOT NULL,                     -- SUDO_USER, else USER; '' when neither is set
  action    TEXT NOT NULL,                     -- merge, unmerge, dismiss
  detail    TEXT NOT NULL,                     -- the persons and identifier concerned
  reason    TEXT NOT NULL                      -- as the reviewer gave it
);
)sql";

// Version 8: persons are found by their demographic key (clinical::demographic_key, computed by
// the labwatch_demographic_key function each connection of labwatch installs), so that matching a
// new identity reads a bounded window of persons however many share a name and birth date.
constexpr const char* kSchemaV8DemographicKey = R"sql(
ALTER TABLE persons ADD COLUMN demographic_key TEXT;  -- clinical::demographic_key; NULL: incomplete
UPDATE persons SET demographic_key = labwatch_demographic_key(family, given, birth_date);
CREATE INDEX persons_by_demographic_key ON persons (demographic_key)
  WHERE merged_into IS NULL AND demographic_key IS NOT NULL;
)sql";

// Version 9 (issue 19): the name and unit a lab sent with an unmapped code, as last seen, so
// that an admin can tell what the code is and which analyte and unit it would map to (rows of
// earlier versions have none: ''); and the fingerprint of the config a file was judged under, so
// that a refused file moved back into the inbox is read again once the config has changed, and
// replayed as refused while it has not ('' on rows of earlier versions: unknown, read again).
constexpr const char* kSchemaV9AdminFacts = R"sql(
ALTER TABLE unmapped_codes ADD COLUMN name TEXT NOT NULL DEFAULT '';
ALTER TABLE unmapped_codes ADD COLUMN unit TEXT NOT NULL DEFAULT '';
ALTER TABLE files ADD COLUMN config_digest TEXT NOT NULL DEFAULT '';
)sql";

// Version 10: silences and the results a trend alert rests on (issue 16). A silence keeps one
// person's alerts of one analyte from being mailed until `until_at` (clinical::silence_covers);
// set_side/set_tier are the state of the alert that was active when it was set ('' when none was:
// it covers every alert). expired_at is set by `silence --expire`. alerts.evidence lists a trend
// alert's points as "collected_at=value;..." (clinical::Decision::evidence); '' for other alerts
// and for rows of earlier versions. results_trend_history serves the trend judge's read of one
// person's current results of one analyte in time order: with trend rules shipped for three
// analytes, reading them through the person's time index fetched every result of the person from
// the table for each new result (2.3x slower ingest in bench/run-ingest).
constexpr const char* kSchemaV10Silences = R"sql(
CREATE INDEX results_trend_history ON results
  (person_id, analyte, collected_at, result_id, value, ref_low, ref_high) WHERE state = 'current';
CREATE TABLE silences (
  silence_id INTEGER PRIMARY KEY,
  person_id  INTEGER NOT NULL REFERENCES persons (person_id),
  analyte    TEXT NOT NULL,                    -- catalogue key
  until_at   INTEGER NOT NULL,                 -- Unix seconds: mail resumes then
  reason     TEXT NOT NULL,
  os_user    TEXT NOT NULL,                    -- SUDO_USER, else USER; '' when neither is set
  created_at INTEGER NOT NULL,
  expired_at INTEGER,                          -- ended early by `silence --expire`
  set_side   TEXT NOT NULL,                    -- clinical::AlertSide of the alert then, or ''
  set_tier   TEXT NOT NULL                     -- clinical::AlertTier of the alert then, or ''
);
CREATE INDEX silences_by_person ON silences (person_id, analyte);
ALTER TABLE alerts ADD COLUMN evidence TEXT NOT NULL DEFAULT '';
)sql";

// Version 11: results_trend_history of version 10 goes. It cost more than it saved: results
// arrive in no order of person, so each of its wide entries landed on a random page (2.5 s of a
// 6 s bench/run-ingest). The trend judge now keeps the histories it read for the rest of its file
// transaction (AlertLedger), so it reads a person's analyte once per file, through
// results_by_person_time_analyte (the analyte checked in the index, only its rows fetched).
constexpr const char* kSchemaV11HistoryIndex = R"sql(
DROP INDEX results_trend_history;
)sql";

// Version 12: whether a message's time came from its arrival (it had neither MSH-7 nor OBR-22),
// so that clinical::plan_version orders its results by arrival instead of comparing the clock of
// their ingest with the lab's times. Such a message was stored with its file's ingest time as
// its message time, and only that: the rows of earlier versions with exactly that time are
// marked (a real MSH-7 equal to the ingest second is its arrival too).
constexpr const char* kSchemaV12ArrivalTime = R"sql(
ALTER TABLE messages ADD COLUMN time_from_arrival INTEGER NOT NULL DEFAULT 0;
UPDATE messages SET time_from_arrival = 1
 WHERE message_time = (SELECT f.ingested_at FROM files f WHERE f.file_id = messages.file_id);
)sql";

// Version 13: who is sending an outbox item, and until when. Daemons of several sites share one
// PostgreSQL outbox: an item claimed by a daemon that dies mid-send (its lease ends) is taken by
// another, and a daemon that starts again takes back at once only what its own site left
// 'sending'. The same columns on SQLite keep both backends one schema.
constexpr const char* kSchemaV13MailLease = R"sql(
ALTER TABLE outbox ADD COLUMN claimed_by TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;
CREATE INDEX outbox_sending ON outbox (lease_until) WHERE state = 'sending';
)sql";

constexpr auto kMigrations = std::to_array<Migration>({
    {1, kSchemaV1},
    {2, kSchemaV2},
    {3, kSchemaV3},
    {4, kSchemaV4NotPerformed},
    {5, kSchemaV5IntakeAttempts},
    {6, kSchemaV6LabWitnesses},
    {7, kSchemaV7Identity},
    {8, kSchemaV8DemographicKey},
    {9, kSchemaV9AdminFacts},
    {10, kSchemaV10Silences},
    {11, kSchemaV11HistoryIndex},
    {12, kSchemaV12ArrivalTime},
    {13, kSchemaV13MailLease},
});

bool is_in_memory(const std::string& path) noexcept { return path.empty() || path == ":memory:"; }

// Creates `path` with mode 0600 unless it exists. The mode is set again with fchmod because the
// umask may have cleared owner bits; group and other bits can only have been cleared by it.
void create_private_file(const std::string& path) {
  int fd = -1;
  do {
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                S_IRUSR | S_IWUSR);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    if (errno == EEXIST) {
      return;
    }
    throw std::system_error(errno, std::generic_category(), "open");
  }
  if (::fchmod(fd, S_IRUSR | S_IWUSR) != 0) {
    const int error = errno;
    ::close(fd);
    throw std::system_error(error, std::generic_category(), "fchmod");
  }
  if (::close(fd) != 0) {
    throw std::system_error(errno, std::generic_category(), "close");
  }
}

// Turns off SQLite's memory statistics before the process first uses SQLite. Debian builds SQLite
// without lookaside memory, so every statement execution mallocs and frees its registers, and with
// statistics on each of those takes a global mutex to count bytes nobody reads. The setting is
// global and only possible before SQLite initializes: later (a connection opened elsewhere
// first) sqlite3_config refuses with SQLITE_MISUSE, which changes nothing and is ignored.
void configure_sqlite_once() noexcept {
  static const int configured = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  static_cast<void>(configured);
}

// labwatch_demographic_key(family, given, birth_date): clinical::demographic_key, NULL when it
// has none.
void demographic_key_function(sqlite3_context* context, int argc, sqlite3_value** argv) {
  const auto text = [&](int i) -> std::string {
    const unsigned char* bytes = i < argc ? sqlite3_value_text(argv[i]) : nullptr;
    return bytes == nullptr ? std::string()
                            : std::string(reinterpret_cast<const char*>(bytes),
                                          static_cast<std::size_t>(sqlite3_value_bytes(argv[i])));
  };
  clinical::PersonIdentity person;
  person.family = text(0);
  person.given = text(1);
  person.birth_date = text(2);
  const std::optional<std::string> key = clinical::demographic_key(person);
  if (key) {
    sqlite3_result_text(context, key->data(), static_cast<int>(key->size()), SQLITE_TRANSIENT);
  } else {
    sqlite3_result_null(context);
  }
}

}  // namespace

void install_sql_functions(SQLite::Database& db) {
  db.createFunction("labwatch_demographic_key", 3, true, nullptr, demographic_key_function);
}

std::span<const Migration> schema_migrations() noexcept { return kMigrations; }

int latest_schema_version() noexcept { return kMigrations.back().version; }

int schema_version(SQLite::Database& db) { return db.execAndGet("PRAGMA user_version").getInt(); }

void migrate(SQLite::Database& db, std::span<const Migration> steps) {
  install_sql_functions(db);
  for (std::size_t i = 0; i < steps.size(); ++i) {
    if (steps[i].version != static_cast<int>(i) + 1) {
      throw std::logic_error("schema migrations must be numbered 1, 2, 3, ...");
    }
  }
  const int latest = static_cast<int>(steps.size());
  // Up to date (the usual case): no write transaction, so opening waits for no other writer. A
  // version only ever grows, so reading it outside a transaction cannot miss a needed step.
  if (schema_version(db) == latest) {
    return;
  }
  for (;;) {
    // The version is read inside the write transaction, so two processes opening the same new
    // database cannot both apply a step.
    SQLite::Transaction transaction(db, SQLite::TransactionBehavior::IMMEDIATE);
    const int current = schema_version(db);
    if (current > latest) {
      throw std::runtime_error("database schema version " + std::to_string(current) +
                               " is newer than this labwatch supports (" + std::to_string(latest) +
                               "); use a newer labwatch");
    }
    if (current < 0) {
      throw std::runtime_error("database schema version " + std::to_string(current) +
                               " was not written by labwatch");
    }
    if (current == latest) {
      transaction.commit();
      return;
    }
    const Migration& step = steps[static_cast<std::size_t>(current)];
    db.exec(step.sql);
    db.exec("PRAGMA user_version = " + std::to_string(step.version));
    transaction.commit();
  }
}

SQLite::Database open_database(const std::string& path, const StoreOptions& options) {
  configure_sqlite_once();
  const bool in_memory = is_in_memory(path);
  if (options.create && !in_memory) {
    create_private_file(path);
  }
  // NOMUTEX: a store is used by one thread at a time anyway (its statements and transaction state
  // are not shared), so SQLite's per-call connection mutex only costs (6% of the ingest path).
  const int flags =
      SQLite::OPEN_READWRITE | SQLite::OPEN_NOMUTEX | (options.create ? SQLite::OPEN_CREATE : 0);
  SQLite::Database db(path, flags, options.busy_timeout_ms);

  // A new database gets 16 KiB pages (a database that has any keeps its own: WAL cannot change
  // it). Batch files are bound by index maintenance on pages taken in no order: with pages four
  // times larger, an index is shallower and a transaction dirties fewer of them (bench/run-ingest
  // 5.7 -> 4.8 s), while a small file's commit still writes a few pages.
  db.exec("PRAGMA page_size = " + std::to_string(kPageSizeBytes));
  // foreign_keys and journal_mode cannot change inside a transaction: set them first.
  db.exec("PRAGMA foreign_keys = ON");
  const std::string journal = db.execAndGet("PRAGMA journal_mode = WAL").getString();
  if (!in_memory && journal != "wal") {
    throw std::runtime_error("database " + path + ": WAL journal mode is not available (got " +
                             journal + ")");
  }
  // The source file is moved away after its commit, so a commit must survive a power loss: FULL
  // syncs the WAL on every commit. A batch file leaves a large WAL behind; cap what stays on disk.
  db.exec("PRAGMA synchronous = FULL");
  db.exec("PRAGMA journal_size_limit = 67108864");
  // A negative cache_size is in KiB.
  db.exec("PRAGMA cache_size = " + std::to_string(-std::max(options.cache_kib, 64)));
  migrate(db, schema_migrations());
  return db;
}

}  // namespace labwatch::storage
