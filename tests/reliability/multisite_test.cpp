// SPDX-License-Identifier: Apache-2.0
// Several sites' daemons on one PostgreSQL database (issue 20): every mail once, the results of
// one ingest, and nothing lost or doubled when a daemon or the server is SIGKILLed.
#include <libpq-fe.h>
#include <sys/types.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "reliability/lab_feed.hpp"
#include "reliability/probes.hpp"
#include "reliability/scenario.hpp"
#include "support/corpus_sources.hpp"
#include "support/csv_records.hpp"
#include "support/daemon_harness.hpp"
#include "support/pg_database.hpp"
#include "support/smtp_server.hpp"

namespace {

using namespace labwatch::test;
using labwatch::testing::pg_connect;
using labwatch::testing::pg_value;
using labwatch::testing::PgConnection;
using labwatch::testing::PgDatabase;

const fs::path kCorpus = fs::path(LABWATCH_TEST_DATA_DIR) / "corpus";
const fs::path kPgCluster = fs::path(LABWATCH_SOURCE_DIR) / "tests" / "support" / "pg-cluster";
constexpr auto kSettle = 60s;  // the most a case waits for the daemons to finish their work

std::string xml_escaped(std::string text) {
  for (std::size_t at = text.find('&'); at != std::string::npos; at = text.find('&', at + 1)) {
    text.replace(at, 1, "&amp;");
  }
  return text;
}

std::int64_t pg_count(PGconn* connection, const std::string& sql) {
  return std::stoll(pg_value(connection, sql));
}

// Whether a labwatch write transaction is open in the database of `connection`: every one takes
// the writer's advisory lock first (storage/sql_postgres.cpp), and holds it until it ends.
bool writer_lock_held(PGconn* connection) {
  return pg_count(connection,
                  "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND "
                  "database = (SELECT oid FROM pg_database WHERE datname = current_database())") >
         0;
}

// The corpus files (not its answer sheets), sorted by name.
std::vector<std::string> corpus_names() {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(kCorpus)) {
    const std::string name = e.path().filename().string();
    if (name != "expected.csv" && name != "expected_alerts.csv" && name != "facilities.csv" &&
        name != "README.md") {
      names.push_back(name);
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

// A config on `database` (a URL): the corpus senders as facilities.csv says, GEN for the
// generated feeds (gen_*), then `extra` (mail, alerts).
std::string site_config(const std::string& database, const std::string& extra) {
  std::string xml =
      "<labwatch>\n"
      "  <paths inbox=\"inbox\" processed=\"processed\" failed=\"failed\" database=\"" +
      xml_escaped(database) +
      "\"/>\n"
      "  <intake settle-ms=\"100\"/>\n"
      "  <sources>\n";
  xml += labwatch::test::corpus_source_lines(read_file(kCorpus / "facilities.csv"));
  xml += "    <source facility=\"GEN\" timezone=\"Europe/London\" files=\"gen_*\"/>\n";
  xml += "  </sources>\n" + extra + "</labwatch>\n";
  return xml;
}

// One clinic: its own layout (inbox, processed/, failed/), so its own site name (host:inbox), and
// a daemon on the shared database.
class Site {
 public:
  Site(const std::string& database, const std::string& extra)
      : layout_(TempDir::default_base(), 100) {
    write_file(layout_.config(), site_config(database, extra));
    fs::remove(layout_.root() / "labwatch.db");  // the SQLite file `labwatch init` made
  }

  [[nodiscard]] const Layout& layout() const { return layout_; }
  [[nodiscard]] Process& daemon() { return *daemon_; }

  // Starts `labwatch run` and waits for READY=1 (the schema migrated, the inbox scanned).
  void start() {
    notify_.reset();
    std::error_code ignored;
    fs::remove(layout_.notify_path(), ignored);
    notify_ = std::make_unique<NotifySocket>(layout_.notify_path());
    daemon_ = layout_.start({notify_->env()});
    INFO(layout_.daemon_log());
    REQUIRE(notify_->wait_for("READY=1", kReadyTimeout));
  }

  // SIGTERM, and the clean exit it must give.
  void stop() {
    daemon_->signal(SIGTERM);
    const std::optional<int> code = daemon_->wait_exit(15s);
    INFO(layout_.daemon_log());
    CHECK(code == 0);
  }

  // Whether `name` has left the inbox for processed/ or failed/.
  [[nodiscard]] bool handled(const std::string& name) const {
    return !fs::exists(layout_.inbox() / name) &&
           (fs::exists(layout_.processed() / name) || fs::exists(layout_.failed() / name));
  }

 private:
  Layout layout_;
  std::unique_ptr<NotifySocket> notify_;
  std::unique_ptr<Process> daemon_;
};

// The cells of one CSV line without quoting (the export's fields hold no commas here: checked).
std::vector<std::string> cells_of(const std::string& line) {
  std::vector<std::string> cells;
  std::size_t start = 0;
  for (;;) {
    const std::size_t comma = line.find(',', start);
    cells.push_back(line.substr(start, comma == std::string::npos ? comma : comma - start));
    if (comma == std::string::npos) {
      return cells;
    }
    start = comma + 1;
  }
}

// Where the corpus repeats a message (an exact resend in a later file, expected_fate duplicate in
// expected.csv): "patient_key,analyte,collected_at" -> {the file stored first in name order, the
// file that repeats it}.
std::map<std::string, std::pair<std::string, std::string>> corpus_resends() {
  const std::vector<CsvRecord> rows = read_csv_records(read_file(kCorpus / "expected.csv"));
  std::map<std::string, std::string> stored_in;
  for (const CsvRecord& row : rows) {
    if (row.at("expected_fate") == "stored") {
      stored_in[row.at("patient_key") + "," + row.at("analyte") + "," + row.at("collected_at")] =
          row.at("source_file");
    }
  }
  std::map<std::string, std::pair<std::string, std::string>> out;
  for (const CsvRecord& row : rows) {
    const std::string key =
        row.at("patient_key") + "," + row.at("analyte") + "," + row.at("collected_at");
    if (row.at("expected_fate") == "duplicate" && stored_in.contains(key)) {
      out[key] = {stored_in.at(key), row.at("source_file")};
    }
  }
  return out;
}

// An export (CSV, header first) in a form that does not depend on the order in which the files
// arrived, with everything else of every row kept:
// - person_id (the third column) becomes the smallest patient key of that person: an id is the
//   order in which a person's first result arrived, and three daemons ingesting a third of the
//   files each in parallel meet the patients in another order than one process reading the
//   sorted files. Which keys make one person must still be equal.
// - a result that the corpus sends twice (an exact resend in a later file) is stored once, from
//   whichever of the two files came first; its source_file becomes the first file in name order.
std::string order_free_export(const std::string& csv) {
  static const std::map<std::string, std::pair<std::string, std::string>> resends =
      corpus_resends();
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(csv);
  std::string header;
  std::getline(in, header);
  std::map<std::string, std::string> first_key;  // person_id -> smallest patient key
  for (std::string line; std::getline(in, line);) {
    rows.push_back(cells_of(line));
    if (rows.back().size() < 7) {
      return "malformed row: " + line;
    }
    const std::string& id = rows.back()[2];
    const std::string& key = rows.back()[1];
    const auto [it, added] = first_key.emplace(id, key);
    if (!added && key < it->second) {
      it->second = key;
    }
  }
  std::vector<std::string> lines;
  for (std::vector<std::string>& row : rows) {
    row[2] = "person of " + first_key.at(row[2]);
    const auto resend = resends.find(row[1] + "," + row[3] + "," + row[6]);
    if (resend != resends.end() && row[0] == resend->second.second) {
      row[0] = resend->second.first;
    }
    std::string line;
    for (const std::string& cell : row) {
      line += (line.empty() ? "" : ",") + cell;
    }
    lines.push_back(std::move(line));
  }
  std::sort(lines.begin(), lines.end());
  std::string out = header + "\n";
  for (const std::string& line : lines) {
    out += line + "\n";
  }
  return out;
}

// The active alerts (`labwatch alerts --format csv`) without person_id and state (which says
// whether the alert was mailed: the SQLite reference mails nothing), sorted. Not --all: an alert
// on a preliminary value is raised only when the preliminary arrives before its final (c_sgh_02
// and c_sgh_03 go to two sites here), and is history once the final supersedes it; the alerts
// on current results are the same whatever the order.
std::vector<std::string> alert_facts(const std::string& config, const std::string& db) {
  const CommandResult r =
      run_labwatch({"alerts", "--config", config, "--db", db, "--format", "csv"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  std::vector<std::string> out;
  std::istringstream in(r.out);
  std::string line;
  std::getline(in, line);  // person_id,patient_key,analyte,value,unit,collected_at,rule,state,...
  while (std::getline(in, line)) {
    const std::vector<std::string> cells = cells_of(line);
    if (cells.size() < 7) {
      out.push_back("malformed row: " + line);
      continue;
    }
    out.push_back(cells[1] + "," + cells[2] + "," + cells[3] + "," + cells[4] + "," + cells[5] +
                  "," + cells[6]);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string export_of(const std::string& config, const std::string& db) {
  const CommandResult r = run_labwatch({"export", "--config", config, "--db", db});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  return r.out;
}

// A PostgreSQL cluster of this test's own (tests/support/pg-cluster in a temporary directory),
// for a test that kills the server: the cluster the other tests share must stay up. Stopped and
// removed on destruction, also when the test fails.
class PrivateCluster {
 public:
  PrivateCluster() : state_(dir_.path() / "pg.state") {
    const CommandResult r = run_program({kPgCluster.string(), "start", state_.string()}, 120s);
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
  }
  // A failed stop leaves a server in /tmp that nothing else would end: said on stderr, since a
  // destructor may not throw.
  ~PrivateCluster() {
    try {
      const CommandResult r = run_program({kPgCluster.string(), "stop", state_.string()}, 120s);
      if (r.exit_code != 0) {
        std::fprintf(stderr, "pg-cluster stop %s failed: %s\n", state_.c_str(), r.err.c_str());
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "pg-cluster stop %s failed: %s\n", state_.c_str(), e.what());
    }
  }
  PrivateCluster(const PrivateCluster&) = delete;
  PrivateCluster& operator=(const PrivateCluster&) = delete;
  PrivateCluster(PrivateCluster&&) = delete;
  PrivateCluster& operator=(PrivateCluster&&) = delete;

  [[nodiscard]] const fs::path& state() const { return state_; }

  // SIGKILLs the postmaster and every process it started, as a crash of the server machine's
  // PostgreSQL would end them, and waits until they are gone. Returns how many it killed.
  std::size_t kill_server() const {
    const std::string cluster = read_file(state_).substr(0, read_file(state_).find('\n'));
    const std::string pid_file = read_file(fs::path(cluster) / "data" / "postmaster.pid");
    pid_t postmaster = 0;
    std::from_chars(pid_file.data(), pid_file.data() + pid_file.size(), postmaster);
    REQUIRE(postmaster > 0);
    std::vector<pid_t> victims{postmaster};
    const std::string self = std::to_string(postmaster);
    std::istringstream children(read_file(fs::path("/proc") / self / "task" / self / "children"));
    for (pid_t child = 0; children >> child;) {
      victims.push_back(child);
    }
    for (const pid_t pid : victims) {
      ::kill(pid, SIGKILL);
    }
    for (const pid_t pid : victims) {
      CHECK(wait_until([pid] { return gone(pid); }, 10s));
    }
    return victims.size();
  }

  // Starts the server again on the same data directory (crash recovery); requires success.
  void start_again() const {
    const CommandResult r = run_program({kPgCluster.string(), "restart", state_.string()}, 120s);
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
  }

 private:
  // Whether `pid` has ended: no such process, or a zombie nobody reaped yet (its memory, sockets
  // and shared memory are released all the same).
  static bool gone(pid_t pid) {
    std::string stat;
    try {
      stat = read_file(fs::path("/proc") / std::to_string(pid) / "stat");
    } catch (const std::system_error&) {
      return true;
    }
    const std::size_t paren = stat.rfind(')');
    return stat.empty() || (paren != std::string::npos && paren + 2 < stat.size() &&
                            (stat[paren + 2] == 'Z' || stat[paren + 2] == 'X'));
  }

  TempDir dir_;
  fs::path state_;
};

}  // namespace

TEST_CASE(
    "Three daemons on three inboxes and one PostgreSQL database mail every alert once and store "
    "what one SQLite ingest stores",
    "[reliability][multisite][pg]") {
  if (!PgDatabase::available()) {
    WARN("no throwaway PostgreSQL cluster (LABWATCH_TEST_PG_STATE): skipped");
    return;
  }
  const SmtpTestServer smtp;
  const PgDatabase pg;
  // Every corpus alert is mailed whatever its age (the corpus was drawn in 2024 to 2026, longer
  // ago than the default 30 days), at once (no collect wait), to one relay.
  const std::string mail =
      "  <mail smtp=\"" + smtp.url() +
      "\" from=\"labwatch@clinic.example\" default-recipient=\"results@clinic.example\" "
      "collect-wait-seconds=\"0\" retry-min-seconds=\"1\" retry-max-seconds=\"2\" "
      "timeout-seconds=\"10\" timezone=\"UTC\"/>\n"
      "  <alerts mail-max-age-days=\"36500\" mail-preliminary=\"true\"/>\n"
      "  <practitioners>\n"
      "    <practitioner id=\"dr-lee\" name=\"Dr. Ada Lee\" email=\"lee@clinic.example\" "
      "providers=\"1234567890\"/>\n"
      "    <practitioner id=\"dr-okafor\" name=\"Dr. Chidi Okafor\" "
      "email=\"okafor@clinic.example\" facilities=\"WCE;LMB;NLS\"/>\n"
      "  </practitioners>\n";
  std::vector<std::unique_ptr<Site>> sites;
  for (int i = 0; i < 3; ++i) {
    sites.push_back(std::make_unique<Site>(pg.uri(), mail));
  }
  for (const auto& site : sites) {
    site->start();
  }

  // The corpus split round-robin; each file written beside an inbox and renamed in.
  const std::vector<std::string> names = corpus_names();
  REQUIRE(names.size() > 30);
  for (std::size_t i = 0; i < names.size(); ++i) {
    sites[i % sites.size()]->layout().drop(names[i], read_file(kCorpus / names[i]));
  }
  const PgConnection db = pg_connect(pg.uri());
  const bool settled = wait_until(
      [&] {
        for (std::size_t i = 0; i < names.size(); ++i) {
          if (!sites[i % sites.size()]->handled(names[i])) {
            return false;
          }
        }
        return pg_count(db.get(),
                        "SELECT count(*) FROM outbox WHERE state IN ('pending', 'sending')") == 0;
      },
      kSettle, 100ms);
  if (!settled) {
    for (const auto& site : sites) {
      UNSCOPED_INFO("daemon log of " << site->layout().root() << ":\n"
                                     << site->layout().daemon_log());
    }
    FAIL("the three daemons did not ingest the corpus and send its mail within " << kSettle.count()
                                                                                 << " s");
  }
  for (const auto& site : sites) {
    site->stop();
  }

  // (a) What one process ingesting the same files into SQLite stores.
  const TempDir reference;
  const std::string sqlite = (reference.path() / "labwatch.db").string();
  const std::string config = sites[0]->layout().config().string();
  std::vector<std::string> ingest = {"ingest", "--config", config, "--db", sqlite, "--no-mail"};
  for (const std::string& name : names) {
    ingest.push_back((kCorpus / name).string());
  }
  const CommandResult ingested = run_labwatch(ingest, 300s);
  REQUIRE(ingested.exit_code == 2);  // some corpus files are refused in part or whole
  const std::string sqlite_export = export_of(config, sqlite);
  const std::string pg_export = export_of(config, pg.uri());
  CHECK(std::count(sqlite_export.begin(), sqlite_export.end(), '\n') == 1161);  // 1160 results
  CHECK(corpus_resends().size() == 5);  // c_sgh_03_batch.hl7 repeats a message of c_sgh_01
  CHECK(order_free_export(pg_export) == order_free_export(sqlite_export));
  const std::vector<std::string> sqlite_alerts = alert_facts(config, sqlite);
  CHECK(sqlite_alerts.size() > 100);
  const std::vector<std::string> pg_alerts = alert_facts(config, pg.uri());
  CHECK(missing_from(sqlite_alerts, pg_alerts) == Strings{});
  CHECK(missing_from(pg_alerts, sqlite_alerts) == Strings{});
  // Each file in processed/ or failed/ as a lone ingest files it: refused ones with a reason.
  for (std::size_t i = 0; i < names.size(); ++i) {
    const Layout& layout = sites[i % sites.size()]->layout();
    INFO(names[i]);
    CHECK(fs::exists(layout.failed() / names[i]) ==
          fs::exists(layout.failed() / (names[i] + ".reason.txt")));
  }
  // And each file's outcome (accepted, partial, refused) is the one a lone ingest records.
  const std::string outcomes = "SELECT name || ',' || outcome FROM files ORDER BY name";
  const std::vector<std::string> sqlite_outcomes = Database(sqlite).column(outcomes);
  std::vector<std::string> pg_outcomes;
  const auto pg_files = labwatch::testing::pg_exec(db.get(), outcomes);
  for (int row = 0; row < PQntuples(pg_files.get()); ++row) {
    pg_outcomes.emplace_back(PQgetvalue(pg_files.get(), row, 0));
  }
  CHECK(sqlite_outcomes.size() > 30);
  CHECK(pg_outcomes == sqlite_outcomes);

  // (b) Every mail once: one per outbox item, under its own Message-ID.
  const std::vector<ReceivedMail> mails = smtp.received();
  std::map<std::string, int> arrivals;
  for (const ReceivedMail& m : mails) {
    ++arrivals[header_value(m.data, "Message-ID")];
  }
  std::vector<std::string> repeated;
  for (const auto& [id, n] : arrivals) {
    if (n != 1) {
      repeated.push_back(id + " arrived " + std::to_string(n) + " times");
    }
  }
  CHECK(repeated == Strings{});
  std::set<std::string> sent_ids;
  const auto sent = labwatch::testing::pg_exec(
      db.get(), "SELECT message_id, claimed_by FROM outbox WHERE state = 'sent'");
  std::map<std::string, int> sent_by;  // site -> mails it sent
  for (int row = 0; row < PQntuples(sent.get()); ++row) {
    sent_ids.insert("<" + std::string(PQgetvalue(sent.get(), row, 0)) + ">");
    ++sent_by[PQgetvalue(sent.get(), row, 1)];
  }
  CHECK(mails.size() > 20);
  CHECK(mails.size() == sent_ids.size());
  std::set<std::string> arrived_ids;
  for (const auto& entry : arrivals) {
    arrived_ids.insert(entry.first);
  }
  CHECK(arrived_ids == sent_ids);
  // The mail went out through more than one site's dispatcher, not all through one.
  INFO("mails sent per site: " << [&] {
    std::string shown;
    for (const auto& [site, n] : sent_by) {
      shown += site + " " + std::to_string(n) + "; ";
    }
    return shown;
  }());
  CHECK(sent_by.size() >= 2);
  CHECK(sent_by.count("") == 0);

  // (c) Nothing left claimed, waiting or given up.
  CHECK(pg_count(db.get(), "SELECT count(*) FROM outbox WHERE state <> 'sent'") == 0);
  CHECK(pg_count(db.get(), "SELECT count(*) FROM outbox") ==
        static_cast<std::int64_t>(mails.size()));
}

TEST_CASE(
    "A daemon killed with SIGKILL during a file leaves it to be ingested once, by itself or "
    "another site",
    "[reliability][multisite][pg]") {
  if (!PgDatabase::available()) {
    WARN("no throwaway PostgreSQL cluster (LABWATCH_TEST_PG_STATE): skipped");
    return;
  }
  const PgDatabase pg;
  std::vector<std::unique_ptr<Site>> sites;
  for (int i = 0; i < 3; ++i) {
    sites.push_back(std::make_unique<Site>(pg.uri(), ""));
  }
  for (const auto& site : sites) {
    site->start();
  }
  Site& victim = *sites[0];
  const PgConnection db = pg_connect(pg.uri());

  // A file whose one transaction lasts long enough to be caught open.
  const FeedFile bulk = make_bulk_file(100, 10000);
  victim.layout().drop(bulk.name, bulk.bytes);
  const bool caught = wait_until([&] { return writer_lock_held(db.get()); }, 30s, 1ms);
  victim.daemon().signal(SIGKILL);
  REQUIRE(caught);
  REQUIRE(victim.daemon().wait_exit(10s) == kKilled);
  // The server notices the lost client, and rolls back or (a commit already sent) finishes.
  REQUIRE(wait_until([&] { return !writer_lock_held(db.get()); }, 30s, 10ms));

  CHECK(fs::exists(victim.layout().inbox() / bulk.name));
  CHECK_FALSE(fs::exists(victim.layout().processed() / bulk.name));
  const std::string count_bulk =
      "SELECT count(*) FROM results r JOIN messages m ON m.message_id = r.message_id JOIN files f "
      "ON f.file_id = m.file_id WHERE f.name = '" +
      bulk.name + "'";
  const std::int64_t stored_at_kill = pg_count(db.get(), count_bulk);
  INFO(stored_at_kill << " results of " << bulk.name << " stored when its daemon was killed");
  CHECK((stored_at_kill == 0 || stored_at_kill == static_cast<std::int64_t>(bulk.rows.size())));

  // The other sites go on meanwhile.
  std::vector<FeedFile> feed = make_feed(20);
  for (std::size_t i = 0; i < feed.size(); ++i) {
    sites[1 + i % 2]->layout().drop(feed[i].name, feed[i].bytes);
  }
  const bool others_done = wait_until(
      [&] {
        for (std::size_t i = 0; i < feed.size(); ++i) {
          if (!sites[1 + i % 2]->handled(feed[i].name)) {
            return false;
          }
        }
        return true;
      },
      30s, 50ms);
  CHECK(others_done);

  // Started again, the killed site ingests its file, once.
  victim.start();
  const bool ingested = wait_until([&] { return victim.handled(bulk.name); }, 30s, 50ms);
  INFO(victim.layout().daemon_log());
  REQUIRE(ingested);
  CHECK(fs::exists(victim.layout().processed() / bulk.name));
  for (const auto& site : sites) {
    site->stop();
  }

  feed.push_back(bulk);
  const std::vector<std::string> stored =
      exported_keys(victim.layout().export_rows(), original_names(feed));
  const std::vector<std::string> expected = expected_keys(feed);
  CHECK(stored.size() == expected.size());
  CHECK(missing_from(expected, stored) == Strings{});  // lost
  CHECK(missing_from(stored, expected) == Strings{});  // stored twice
  CHECK(pg_count(db.get(), count_bulk) == static_cast<std::int64_t>(bulk.rows.size()));
  CHECK(pg_count(db.get(), "SELECT count(*) FROM files WHERE outcome = 'open'") == 0);
  std::set<std::string> distinct_bytes;
  for (const FeedFile& f : feed) {
    distinct_bytes.insert(f.bytes);
  }
  CHECK(pg_count(db.get(), "SELECT count(*) FROM files") ==
        static_cast<std::int64_t>(distinct_bytes.size()));
}

namespace {

// The server of a private cluster SIGKILLed while the daemon's transaction for a large file is
// open, with small files waiting behind it; then started again (crash recovery). The daemon
// rides it out (it keeps the file and retries, as for a busy database), and every file ends up
// stored exactly once.
void kill_postgres_during_commit() {
  const PrivateCluster cluster;
  const PgDatabase pg(cluster.state());
  Site site(pg.uri(), "");
  site.start();
  const PgConnection watcher = pg_connect(pg.uri());

  const FeedFile bulk = make_bulk_file(100, 10000);
  std::vector<FeedFile> feed = make_feed(20);
  site.layout().drop(bulk.name, bulk.bytes);
  for (const FeedFile& f : feed) {
    site.layout().drop(f.name, f.bytes);
  }
  feed.push_back(bulk);
  const bool caught = wait_until([&] { return writer_lock_held(watcher.get()); }, 30s, 1ms);
  REQUIRE(caught);
  CHECK(cluster.kill_server() >= 2);  // the postmaster and its children

  // Without its database the daemon gives up no file: the one it was ingesting stays in the inbox.
  std::this_thread::sleep_for(3s);
  INFO(site.layout().daemon_log());
  CHECK(fs::exists(site.layout().inbox() / bulk.name));
  CHECK_FALSE(fs::exists(site.layout().failed() / bulk.name));
  CHECK(site.daemon().running());
  cluster.start_again();
  const PgConnection after = pg_connect(pg.uri());  // the same database, recovered
  CHECK(pg_value(after.get(), "SELECT count(*) FROM labwatch_schema") != "0");

  const bool drained = wait_until(
      [&] {
        return std::all_of(feed.begin(), feed.end(),
                           [&](const FeedFile& f) { return site.handled(f.name); });
      },
      kSettle, 100ms);
  REQUIRE(drained);
  CHECK(site.daemon().running());
  site.stop();

  for (const FeedFile& f : feed) {
    INFO(f.name);
    CHECK(fs::exists((f.whole ? site.layout().processed() : site.layout().failed()) / f.name));
  }
  const std::vector<std::string> stored =
      exported_keys(site.layout().export_rows(), original_names(feed));
  const std::vector<std::string> expected = expected_keys(feed);
  CHECK(stored.size() == expected.size());
  CHECK(missing_from(expected, stored) == Strings{});  // lost
  CHECK(missing_from(stored, expected) == Strings{});  // stored twice
  const PgConnection db = pg_connect(pg.uri());
  CHECK(pg_count(db.get(), "SELECT count(*) FROM files WHERE outcome = 'open'") == 0);
}

}  // namespace

// The daemon treats a lost connection like a busy database: it keeps the file in the inbox,
// tries again with backoff and connects again once the server is back; it never stops.
TEST_CASE("PostgreSQL killed with SIGKILL during a commit loses nothing and doubles nothing",
          "[reliability][multisite][pg]") {
  if (!PgDatabase::available()) {
    WARN("no throwaway PostgreSQL cluster (LABWATCH_TEST_PG_STATE): skipped");
    return;
  }
  kill_postgres_during_commit();
}
