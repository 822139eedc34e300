// SPDX-License-Identifier: Apache-2.0
// The real binary on a PostgreSQL URL (issue 20): the public corpus answers as on SQLite, init,
// status and the daemon work on a URL, and an unreachable server or a password is one clear line.
#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "support/corpus_sources.hpp"
#include "support/csv_records.hpp"
#include "support/daemon_harness.hpp"
#include "support/pg_database.hpp"

namespace {

namespace fs = std::filesystem;
using labwatch::test::CommandResult;
using labwatch::test::CsvRecord;
using labwatch::test::Layout;
using labwatch::test::read_csv_records;
using labwatch::test::read_file;
using labwatch::test::run_labwatch;
using labwatch::test::TempDir;
using labwatch::test::wait_until;
using labwatch::testing::PgDatabase;
using namespace std::chrono_literals;

const fs::path kCorpus = fs::path(LABWATCH_TEST_DATA_DIR) / "corpus";

// The config of the corpus senders, from facilities.csv, as cli_corpus_test builds it.
fs::path write_corpus_config(const fs::path& dir) {
  std::string xml = "<labwatch>\n  <sources>\n";
  xml += labwatch::test::corpus_source_lines(read_file(kCorpus / "facilities.csv"));
  xml += "  </sources>\n</labwatch>\n";
  const fs::path config = dir / "labwatch.xml";
  labwatch::test::write_file(config, xml);
  return config;
}

std::vector<std::string> corpus_files() {
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(kCorpus)) {
    const std::string name = e.path().filename().string();
    if (name != "expected.csv" && name != "expected_alerts.csv" && name != "facilities.csv" &&
        name != "README.md") {
      files.push_back(e.path().string());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

// `text` without the lines that start with one of `prefixes` (what differs by nature: the
// database's own line, a time of ingest or of generation).
std::string without_lines(const std::string& text, const std::vector<std::string_view>& prefixes) {
  std::string out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    const bool dropped = std::any_of(prefixes.begin(), prefixes.end(),
                                     [&](std::string_view p) { return line.starts_with(p); });
    if (!dropped) {
      out += line + "\n";
    }
  }
  return out;
}

// `text` with each UTC time (YYYY-MM-DDTHH:MM:SSZ) replaced by "TIME": for listings that show
// when each backend's ingest ran.
std::string without_times(const std::string& text) {
  constexpr std::string_view kForm = "dddd-dd-ddTdd:dd:ddZ";
  const auto is_time = [&](std::size_t at) {
    for (std::size_t i = 0; i < kForm.size(); ++i) {
      const char c = text[at + i];
      if (kForm[i] == 'd' ? (c < '0' || c > '9') : c != kForm[i]) {
        return false;
      }
    }
    return true;
  };
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    if (i + kForm.size() <= text.size() && is_time(i)) {
      out += "TIME";
      i += kForm.size();
    } else {
      out += text[i++];
    }
  }
  return out;
}

std::size_t lines_of(const std::string& text) {
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

// The one line of `err` that holds `needle`, or "" when none does.
std::string line_with(const std::string& err, std::string_view needle) {
  std::istringstream in(err);
  for (std::string line; std::getline(in, line);) {
    if (line.find(needle) != std::string::npos) {
      return line;
    }
  }
  return {};
}

// The cluster's socket directory, from a URI of the form pg_cluster_uri writes.
std::string socket_dir_of(const std::string& uri) {
  const std::size_t host = uri.find("host=") + 5;
  return uri.substr(host, uri.find('&', host) - host);
}

}  // namespace

TEST_CASE(
    "labwatch ingest into PostgreSQL gives the public corpus the same export, alerts, persons, "
    "trend and report as SQLite",
    "[daemon][pg]") {
  if (!PgDatabase::available()) {
    WARN("no throwaway PostgreSQL cluster (LABWATCH_TEST_PG_STATE): skipped");
    return;
  }
  const TempDir dir;
  const fs::path config = write_corpus_config(dir.path());
  const std::string sqlite = (dir.path() / "labwatch.db").string();
  const PgDatabase pg;
  const auto on = [&](const std::string& db, std::vector<std::string> args) {
    args.insert(args.begin() + 1, {"--config", config.string(), "--db", db});
    return run_labwatch(args, 300s);
  };

  std::vector<std::string> ingest = {"ingest", "--no-mail"};
  const std::vector<std::string> files = corpus_files();
  ingest.insert(ingest.end(), files.begin(), files.end());
  const CommandResult into_sqlite = on(sqlite, ingest);
  const CommandResult into_pg = on(pg.uri(), ingest);
  // Some corpus files are refused in part or whole: exit 2, the same reasons on both.
  REQUIRE(into_sqlite.exit_code == 2);
  REQUIRE(into_pg.exit_code == 2);
  CHECK(into_pg.err == into_sqlite.err);
  CHECK(into_pg.err.find("e_garbage.hl7: unrecognized_format") != std::string::npos);

  const std::vector<std::vector<std::string>> queries = {
      {"export", "--format", "csv"},
      {"export", "--format", "json"},
      {"alerts", "--all"},
      {"alerts", "--all", "--format", "json"},
      {"persons"},
      {"patients"},
      {"matches"},
      {"unmapped"},
      {"outbox", "--all"},
      {"audit"},
      {"trend", "--patient", "SGH|SGH948271", "--analyte", "ferritin"},
      {"trend", "--patient", "QDX|Q37960593", "--analyte", "rbc_magnesium"},
      {"trend", "--patient", "LCA|60951714489", "--analyte", "ferritin"},
      {"report", "--patient", "SGH|SGH948271", "--out", "-"},
      {"report", "--patient", "LCA|60951714489", "--out", "-"},
      {"report", "--patient", "PPE|PP105595", "--out", "-"},
      {"explain", (kCorpus / "a_qdx_01.hl7").string()},
  };
  for (const std::vector<std::string>& query : queries) {
    const CommandResult a = on(sqlite, query);
    const CommandResult b = on(pg.uri(), query);
    std::string shown;
    for (const std::string& word : query) {
      shown += word + " ";
    }
    INFO(shown << "\nSQLite stderr: " << a.err << "\nPostgreSQL stderr: " << b.err);
    REQUIRE(a.exit_code == 0);
    CHECK(b.exit_code == 0);
    if (query.front() == "report") {
      // "Generated <now> by labwatch": the only line that depends on when it ran.
      CHECK(without_lines(b.out, {"<p class=\"meta\">Generated "}) ==
            without_lines(a.out, {"<p class=\"meta\">Generated "}));
      CHECK(b.out.find("</html>") != std::string::npos);
    } else if (query.front() == "unmapped") {
      // first_seen and last_seen are when each ingest ran.
      CHECK(lines_of(a.out) > 2);
      CHECK(without_times(b.out) == without_times(a.out));
    } else {
      CHECK(b.out == a.out);
    }
  }

  // The answers are the corpus's, not two empty ones alike.
  const CommandResult exported = on(pg.uri(), {"export"});
  CHECK(lines_of(exported.out) == 1161);  // header and the 1160 stored results
  CHECK(exported.out.find("a_qdx_01.hl7,QDX|Q37960593,") != std::string::npos);
  const CommandResult alerts = on(pg.uri(), {"alerts", "--all"});
  CHECK(lines_of(alerts.out) > 400);
  const CommandResult persons = on(pg.uri(), {"persons"});
  CHECK(persons.out.find("SGH|SGH948271") != std::string::npos);
  const CommandResult trend =
      on(pg.uri(), {"trend", "--patient", "SGH|SGH948271", "--analyte", "ferritin"});
  CHECK(trend.out.rfind("Ferritin (ng/mL), optimal target >= 50 ng/mL", 0) == 0);

  // The identity review writes through the same store: a merge moves the same results, and the
  // audit trail reads alike (its times aside).
  for (const std::string& db : {sqlite, pg.uri()}) {
    const CommandResult merge = on(db, {"merge", "1", "2", "--reason", "one patient"});
    INFO(db << ": " << merge.err);
    CHECK(merge.exit_code == 0);
    CHECK(merge.out.rfind("merged person 2 into person 1 (", 0) == 0);
  }
  CHECK(on(pg.uri(), {"persons"}).out == on(sqlite, {"persons"}).out);
  CHECK(on(pg.uri(), {"export"}).out == on(sqlite, {"export"}).out);
  const CommandResult audit = on(pg.uri(), {"audit"});
  CHECK(audit.out.find(",merge,merged person 2 into person 1 (") != std::string::npos);
  CHECK(without_times(audit.out) == without_times(on(sqlite, {"audit"}).out));

  // status: the same counts; only the database line (and the second of the last ingest) differ.
  const CommandResult status_sqlite = on(sqlite, {"status"});
  const CommandResult status_pg = on(pg.uri(), {"status"});
  CHECK(status_pg.exit_code == 3);  // no daemon runs on this config
  CHECK(status_pg.out.find("database: " + pg.uri() + " (PostgreSQL), schema version ") !=
        std::string::npos);
  CHECK(without_lines(status_pg.out, {"database: ", "last file: "}) ==
        without_lines(status_sqlite.out, {"database: ", "last file: "}));
  const std::string last_pg = line_with(status_pg.out, "last file: ");
  const std::string last_sqlite = line_with(status_sqlite.out, "last file: ");
  CHECK(last_pg.substr(0, last_pg.find(" at ")) == last_sqlite.substr(0, last_sqlite.find(" at ")));
  CHECK(status_pg.out.find("today: ") != std::string::npos);
}

TEST_CASE("labwatch names a PostgreSQL database it cannot reach, and hides a password",
          "[daemon][pg]") {
  if (!PgDatabase::available()) {
    WARN("no throwaway PostgreSQL cluster (LABWATCH_TEST_PG_STATE): skipped");
    return;
  }
  const PgDatabase pg;
  const std::string missing =
      "postgresql:///labwatch_no_such_db?host=" + socket_dir_of(pg.uri()) + "&user=labwatch_test";
  const TempDir dir;
  const fs::path config = write_corpus_config(dir.path());

  SECTION("a database that is not there: one line naming it and libpq's reason, exit 1") {
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"export"},
          {"persons"},
          {"unmapped"},
          {"ingest", (kCorpus / "a_qdx_01.hl7").string()},
          {"explain", (kCorpus / "a_qdx_01.hl7").string()}}) {
      std::vector<std::string> argv = args;
      argv.insert(argv.begin() + 1, {"--config", config.string(), "--db", missing});
      const CommandResult r = run_labwatch(argv);
      INFO(args.front() << ": " << r.err);
      CHECK(r.exit_code == 1);
      CHECK(r.out.empty());
      CHECK(lines_of(r.err) == 1);
      const std::string line = line_with(r.err, "cannot open the PostgreSQL database " + missing);
      CHECK_FALSE(line.empty());
      CHECK(line.find("\"labwatch_no_such_db\" does not exist") != std::string::npos);
    }
  }
  SECTION("status says so on its database line, and goes on") {
    const CommandResult r = run_labwatch({"status", "--config", config.string(), "--db", missing});
    CHECK(r.exit_code == 3);  // no daemon runs on this config
    CHECK(r.out.find("database: " + missing +
                     " (PostgreSQL), cannot read it: connection to server") != std::string::npos);
    CHECK(line_with(r.out, "database: ").find("\"labwatch_no_such_db\" does not exist") !=
          std::string::npos);
    CHECK(r.out.find("inbox: ") != std::string::npos);
  }
  SECTION("a server that does not listen: the same, with libpq's reason") {
    const std::string nowhere =
        "postgresql:///x?host=" + dir.path().string() + "&connect_timeout=5";
    const CommandResult r = run_labwatch({"export", "--config", config.string(), "--db", nowhere});
    INFO(r.err);
    CHECK(r.exit_code == 1);
    CHECK(lines_of(r.err) == 1);
    CHECK(r.err.find("cannot open the PostgreSQL database " + nowhere + ": ") != std::string::npos);
    CHECK(r.err.find(".s.PGSQL.5432") != std::string::npos);  // the socket libpq looked for
  }
  SECTION("a database without labwatch's tables is refused, not silently given them") {
    const CommandResult r = run_labwatch({"export", "--config", config.string(), "--db", pg.uri()});
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("holds no labwatch schema yet") != std::string::npos);
    const CommandResult status =
        run_labwatch({"status", "--config", config.string(), "--db", pg.uri()});
    CHECK(status.out.find("database: " + pg.uri() + " (PostgreSQL), no labwatch schema yet\n") !=
          std::string::npos);
  }
  SECTION("a password in the URL is refused and never repeated") {
    const std::string with_password = "postgresql://u:secret@localhost/x";
    for (const std::vector<std::string>& args : {std::vector<std::string>{"export"},
                                                 {"status"},
                                                 {"ingest", (kCorpus / "a_qdx_01.hl7").string()}}) {
      std::vector<std::string> argv = args;
      argv.insert(argv.begin() + 1, {"--config", config.string(), "--db", with_password});
      const CommandResult r = run_labwatch(argv);
      INFO(args.front() << ": " << r.err);
      CHECK(r.exit_code == 64);
      CHECK(r.err.find("postgresql://u:***@localhost/x") != std::string::npos);
      CHECK(r.err.find("passfile") != std::string::npos);
      CHECK(r.out.find("secret") == std::string::npos);
      CHECK(r.err.find("secret") == std::string::npos);
    }
    // In a config: exit 78 for check-config, run and the one-shot commands alike.
    const fs::path bad = dir.path() / "password.xml";
    labwatch::test::write_file(
        bad,
        "<labwatch><paths database=\"postgresql:///x?user=u&amp;password=secret\"/></labwatch>\n");
    for (const char* command : {"check-config", "run", "export"}) {
      const CommandResult r = run_labwatch({command, "--config", bad.string()});
      INFO(command << ": " << r.err);
      CHECK(r.exit_code == 78);
      CHECK(r.err.find("password=***") != std::string::npos);
      CHECK(r.out.find("secret") == std::string::npos);
      CHECK(r.err.find("secret") == std::string::npos);
    }
  }
  SECTION("a URL of another kind of server is refused") {
    const CommandResult r =
        run_labwatch({"export", "--config", config.string(), "--db", "mysql://db/labwatch"});
    CHECK(r.exit_code == 64);
    CHECK(r.err.find("neither a SQLite file nor a postgresql:// URL") != std::string::npos);
  }
}

TEST_CASE("labwatch init and status work on a PostgreSQL URL", "[daemon][pg]") {
  if (!PgDatabase::available()) {
    WARN("no throwaway PostgreSQL cluster (LABWATCH_TEST_PG_STATE): skipped");
    return;
  }
  const PgDatabase pg;
  const TempDir dir;
  const fs::path site = dir.path() / "site";
  const CommandResult init = run_labwatch({"init", site.string(), "--db", pg.uri()});
  INFO(init.err);
  REQUIRE(init.exit_code == 0);
  CHECK(init.out.find("database: " + pg.uri() + " (PostgreSQL, schema ready)") !=
        std::string::npos);
  CHECK_FALSE(fs::exists(site / "labwatch.db"));  // no SQLite file beside the config
  // The config names the URL as given (escaped for XML), not a path made of it.
  const std::string xml = read_file(site / "labwatch.xml");
  std::string escaped = pg.uri();
  escaped.replace(escaped.find('&'), 1, "&amp;");
  CHECK(xml.find("database=\"" + escaped + "\"") != std::string::npos);

  // The schema is there: the tables and the version this release migrates to.
  const auto connection = labwatch::testing::pg_connect(pg.uri());
  CHECK(labwatch::testing::pg_value(connection.get(), "SELECT count(*) FROM persons") == "0");
  const std::string version =
      labwatch::testing::pg_value(connection.get(), "SELECT max(version) FROM labwatch_schema");
  CHECK(std::stoi(version) > 0);

  const std::string config = (site / "labwatch.xml").string();
  const CommandResult check = run_labwatch({"check-config", "--config", config});
  CHECK(check.exit_code == 0);
  CHECK(check.out.find("database: " + pg.uri() + " (PostgreSQL") != std::string::npos);

  const CommandResult empty = run_labwatch({"status", "--config", config});
  CHECK(empty.exit_code == 3);
  CHECK(empty.out.find("database: " + pg.uri() + " (PostgreSQL), schema version " + version +
                       "\n") != std::string::npos);
  CHECK(empty.out.find("last file: none yet\n") != std::string::npos);
  CHECK(empty.out.find("today: 0 accepted, 0 partly refused, 0 refused\n") != std::string::npos);

  // The config's database is the one the commands use: no --db needed.
  const CommandResult ingest = run_labwatch(
      {"ingest", "--config", config, "--no-mail", (kCorpus / "a_qdx_01.hl7").string()});
  INFO(ingest.err);
  REQUIRE(ingest.exit_code == 0);
  const CommandResult status = run_labwatch({"status", "--config", config});
  CHECK(status.out.find("last file: a_qdx_01.hl7, accepted at ") != std::string::npos);
  CHECK(status.out.find("today: 1 accepted, 0 partly refused, 0 refused\n") != std::string::npos);
  CHECK(status.out.find("outbox: 0 pending, 0 failed (mail is off)\n") != std::string::npos);
  CHECK(labwatch::testing::pg_value(connection.get(), "SELECT count(*) FROM files") == "1");

  // init again on the same database: a new layout, the schema left as it is.
  const CommandResult again =
      run_labwatch({"init", (dir.path() / "other").string(), "--db", pg.uri()});
  CHECK(again.exit_code == 0);
  CHECK(labwatch::testing::pg_value(connection.get(), "SELECT count(*) FROM files") == "1");
}

TEST_CASE("labwatch run on a PostgreSQL URL ingests a dropped file into that database",
          "[daemon][pg]") {
  if (!PgDatabase::available()) {
    WARN("no throwaway PostgreSQL cluster (LABWATCH_TEST_PG_STATE): skipped");
    return;
  }
  const PgDatabase pg;
  const Layout layout(TempDir::default_base());
  std::string escaped = pg.uri();
  escaped.replace(escaped.find('&'), 1, "&amp;");
  layout.write_config(150, {},
                      "  <paths inbox=\"inbox\" processed=\"processed\" failed=\"failed\" "
                      "database=\"" +
                          escaped + "\"/>\n");
  fs::remove(layout.root() / "labwatch.db");  // the SQLite file Layout's `labwatch init` made
  auto daemon = layout.start();
  layout.drop("a_qdx_01.hl7", read_file(kCorpus / "a_qdx_01.hl7"));
  const bool moved =
      wait_until([&] { return fs::exists(layout.processed() / "a_qdx_01.hl7"); }, 30s);
  INFO(layout.daemon_log());
  REQUIRE(moved);
  daemon->signal(SIGTERM);
  CHECK(daemon->wait_exit(10s) == 0);
  // The daemon's log names the URL it stores into.
  CHECK(layout.daemon_log().find("database " + pg.uri()) != std::string::npos);

  const CommandResult exported =
      run_labwatch({"export", "--config", layout.config().string(), "--db", pg.uri()});
  INFO(exported.err);
  REQUIRE(exported.exit_code == 0);
  CHECK(exported.out.find("a_qdx_01.hl7,QDX|Q37960593,") != std::string::npos);
  CHECK(exported.out.find(",ferritin,80,ng/mL,2024-09-21T12:15:00Z,final") != std::string::npos);
  CHECK_FALSE(fs::exists(layout.root() / "labwatch.db"));
  const auto connection = labwatch::testing::pg_connect(pg.uri());
  CHECK(labwatch::testing::pg_value(connection.get(),
                                    "SELECT outcome FROM files WHERE name = 'a_qdx_01.hl7'") ==
        "accepted");
}

TEST_CASE(
    "labwatch check-config shows a PostgreSQL URL as written and warns of a remote one with a "
    "weaker sslmode than verify-full",
    "[daemon][cli]") {
  const TempDir dir;
  const fs::path config = dir.path() / "labwatch.xml";
  const auto check = [&](const std::string& url_in_xml) {
    labwatch::test::write_file(config,
                               "<labwatch><paths database=\"" + url_in_xml + "\"/></labwatch>\n");
    return run_labwatch({"check-config", "--config", config.string()});
  };
  const std::string warning = "instead of verify-full";

  // No sslmode: labwatch asks for verify-full itself (sql::with_default_tls), nothing to warn of.
  const CommandResult remote = check("postgresql://db.example.org:5432/labwatch?user=lw");
  INFO(remote.err);
  CHECK(remote.exit_code == 0);
  CHECK(
      remote.out.find("database: postgresql://db.example.org:5432/labwatch?user=lw (PostgreSQL") !=
      std::string::npos);
  CHECK(remote.out.find(warning) == std::string::npos);
  const CommandResult by_parameter =
      check("postgresql:///labwatch?host=db.example.org&amp;sslmode=require");
  CHECK(by_parameter.out.find(
            "warning: the PostgreSQL database is on db.example.org with sslmode=require " +
            warning) != std::string::npos);
  CHECK(check("postgresql://db.example.org/labwatch?sslmode=prefer").out.find(warning) !=
        std::string::npos);

  const CommandResult verified = check(
      "postgresql://lw@db.example.org/labwatch?sslmode=verify-full&amp;sslrootcert=/etc/ca.pem");
  CHECK(verified.exit_code == 0);
  CHECK(verified.out.find(warning) == std::string::npos);
  const CommandResult socket = check("postgresql:///labwatch?host=/run/postgresql");
  CHECK(socket.exit_code == 0);
  CHECK(socket.out.find(warning) == std::string::npos);
  CHECK(socket.out.find("database: postgresql:///labwatch?host=/run/postgresql (PostgreSQL") !=
        std::string::npos);
  const CommandResult local = check("postgresql://localhost/labwatch");
  CHECK(local.out.find(warning) == std::string::npos);
}
