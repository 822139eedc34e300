// SPDX-License-Identifier: Apache-2.0
// The command line as an admin meets it: exit codes, arguments, versions and where reports go.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "support/daemon_harness.hpp"
#include "support/hl7_messages.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using labwatch::test::CommandResult;
using labwatch::test::Layout;
using labwatch::test::run_labwatch;
using labwatch::test::TempDir;

// A layout whose database holds the SGH corpus files (person 1 among them).
struct SghLayout {
  Layout layout{TempDir::fast_base()};
  SghLayout() {
    const CommandResult r =
        run_labwatch({"ingest", "--config", layout.config().string(),
                      labwatch::test::corpus_file("c_sgh_01_mllp.hl7").string()});
    REQUIRE(r.exit_code == 0);
  }
  [[nodiscard]] std::string config() const { return layout.config().string(); }
};

}  // namespace

TEST_CASE("labwatch ingest exits 2 for a file refused before, each time it is ingested again",
          "[daemon][cli]") {
  const Layout layout(TempDir::fast_base());
  const fs::path file = layout.stage() / "gen_crp.hl7";
  // The hs-CRP is text: refused, the ferritin stored.
  labwatch::test::write_file(file, labwatch::test::oru("C1", "M1", "O1", "80", "high"));
  const std::vector<std::string> ingest = {"ingest", "--config", layout.config().string(),
                                           file.string()};

  const CommandResult first = run_labwatch(ingest);
  CHECK(first.exit_code == 2);
  CHECK(first.err.find("non_numeric_value") != std::string::npos);

  const CommandResult again = run_labwatch(ingest);
  INFO(again.err);
  CHECK(again.exit_code == 2);
  CHECK(again.err.find("non_numeric_value") != std::string::npos);
  CHECK(again.err.find("refused when first ingested") != std::string::npos);
  CHECK(layout.export_rows().size() == 1);

  SECTION("a file accepted before still exits 0") {
    const fs::path good = layout.stage() / "gen_good.hl7";
    labwatch::test::write_file(good, labwatch::test::oru("C2", "M2", "O2", "81", "1.5"));
    const std::vector<std::string> args = {"ingest", "--config", layout.config().string(),
                                           good.string()};
    CHECK(run_labwatch(args).exit_code == 0);
    CHECK(run_labwatch(args).exit_code == 0);
  }
}

TEST_CASE("labwatch ingest of a missing path exits 1 and ingests nothing", "[daemon][cli]") {
  const Layout layout(TempDir::fast_base());
  const fs::path good = layout.stage() / "gen_good.hl7";
  labwatch::test::write_file(good, labwatch::test::oru("C2", "M2", "O2", "81", "1.5"));
  const fs::path missing = layout.stage() / "no_such_file.hl7";

  const CommandResult r = run_labwatch(
      {"ingest", "--config", layout.config().string(), good.string(), missing.string()});
  CHECK(r.exit_code == 1);
  CHECK(r.err.find(missing.string() + ": no such file or directory") != std::string::npos);
  CHECK(layout.export_rows().empty());
}

TEST_CASE("labwatch commands refuse positional arguments they do not take", "[daemon][cli]") {
  const TempDir dir;
  const std::string db = (dir.path() / "x.db").string();
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"export", "--db", db, "extra"},
           {"alerts", "--db", db, "extra"},
           {"patients", "--db", db, "extra"},
           {"check-config", "extra"},
           {"run", "extra"},
           {"version", "extra"},
           {"init", (dir.path() / "a").string(), "extra"},
       }) {
    const CommandResult r = run_labwatch(args);
    INFO(args.front());
    CHECK(r.exit_code == 64);
    CHECK(r.err.find("unexpected argument 'extra'") != std::string::npos);
  }
  CHECK_FALSE(fs::exists(dir.path() / "a"));
  CHECK_FALSE(fs::exists(db));
}

TEST_CASE("labwatch prints its version with --version on every command and with `version`",
          "[daemon][cli]") {
  const CommandResult top = run_labwatch({"--version"});
  REQUIRE(top.exit_code == 0);
  REQUIRE(top.out.starts_with("labwatch "));
  CHECK(run_labwatch({"version"}).out == top.out);
  for (const std::string command : {"init", "run", "ingest", "export", "trend", "alerts", "report",
                                    "patients", "check-config", "version"}) {
    INFO(command);
    const CommandResult r = run_labwatch({command, "--version"});
    CHECK(r.exit_code == 0);
    CHECK(r.out == top.out);
  }
}

TEST_CASE("labwatch report --out - writes the report to stdout", "[daemon][cli][report]") {
  const SghLayout site;
  const CommandResult r =
      run_labwatch({"report", "--config", site.config(), "--patient", "1", "--out", "-"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.starts_with("<!DOCTYPE html>"));
  CHECK(r.out.find("</html>") != std::string::npos);
  CHECK_FALSE(fs::exists(fs::current_path() / "-"));
}

TEST_CASE("labwatch report --out never writes through a symbolic link", "[daemon][cli][report]") {
  const SghLayout site;
  const fs::path dir = site.layout.stage();
  const fs::path victim = dir / "victim.txt";
  labwatch::test::write_file(victim, "untouched");
  const fs::path out = dir / "report.html";

  SECTION("a link at the final name is refused") {
    fs::create_symlink(victim, out);
    const CommandResult r = run_labwatch(
        {"report", "--config", site.config(), "--patient", "1", "--out", out.string()});
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("symbolic link") != std::string::npos);
    CHECK(fs::is_symlink(out));
  }
  SECTION("a link at the old temporary name is left alone") {
    fs::create_symlink(victim, dir / "report.html.tmp");
    const CommandResult r = run_labwatch(
        {"report", "--config", site.config(), "--patient", "1", "--out", out.string()});
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(fs::is_regular_file(fs::symlink_status(out)));
    CHECK(labwatch::test::read_file(out).starts_with("<!DOCTYPE html>"));
    CHECK((fs::status(out).permissions() & (fs::perms::group_all | fs::perms::others_all)) ==
          fs::perms::none);
  }
  CHECK(labwatch::test::read_file(victim) == "untouched");
  // No temporary file is left behind.
  std::size_t left = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    left += entry.path().filename().string().starts_with("report.html.") ? 1U : 0U;
  }
  CHECK(left == (fs::is_symlink(dir / "report.html.tmp") ? 1u : 0u));
}

TEST_CASE("labwatch export neutralises formula cells and keeps JSON valid for any file name",
          "[daemon][cli]") {
  const Layout layout(TempDir::fast_base());
  // Names a producer might send: a formula, and bytes that are neither printable nor UTF-8.
  const std::string formula = "=1+2 gen.hl7";
  const std::string odd = std::string("gen_\x01\xff.hl7");
  labwatch::test::write_file(layout.stage() / formula,
                             labwatch::test::oru("C1", "M1", "O1", "80", "1.5"));
  labwatch::test::write_file(layout.stage() / odd,
                             labwatch::test::oru("C2", "M2", "O2", "81", "1.5"));
  const CommandResult ingest =
      run_labwatch({"ingest", "--config", layout.config().string(),
                    (layout.stage() / formula).string(), (layout.stage() / odd).string()});
  INFO(ingest.err);
  REQUIRE(ingest.exit_code == 0);

  const std::vector<std::string> rows = layout.export_rows();
  REQUIRE(rows.size() == 4);
  std::size_t neutralised = 0;
  for (const std::string& row : rows) {
    neutralised += row.starts_with("'=1+2 gen.hl7,") ? 1U : 0U;
    CHECK_FALSE(row.starts_with("="));
  }
  CHECK(neutralised == 2);

  for (const std::string command : {"export", "alerts"}) {
    INFO(command);
    const CommandResult json =
        run_labwatch({command, "--config", layout.config().string(), "--format", "json"});
    REQUIRE(json.exit_code == 0);
    const fs::path saved = layout.stage() / "out.json";
    labwatch::test::write_file(saved, json.out);
    const CommandResult parsed = labwatch::test::run_program(
        {"/usr/bin/python3", "-c",
         "import json, sys\n"
         "rows = json.load(open(sys.argv[1], encoding='utf-8'))\n"
         "print(len(rows), sum(1 for r in rows if r.get('source_file') == 'gen_\\x01\\ufffd.hl7'))",
         saved.string()});
    INFO(parsed.err);
    CHECK(parsed.exit_code == 0);
    if (std::string(command) == "export") {
      CHECK(parsed.out == "4 2\n");
    }
  }
}

TEST_CASE("labwatch analytes lists keys, names, LOINC codes, units and targets", "[daemon][cli]") {
  const CommandResult r = run_labwatch({"analytes", "--config", "/dev/null/none.xml"});
  // No config at that path: an error, not defaults.
  CHECK(r.exit_code != 0);
  const TempDir dir;
  labwatch::test::write_file(dir.path() / "labwatch.xml", "<labwatch/>\n");
  const CommandResult list =
      run_labwatch({"analytes", "--config", (dir.path() / "labwatch.xml").string()});
  INFO(list.err);
  REQUIRE(list.exit_code == 0);
  CHECK(list.out.starts_with("key,name,loinc,unit,target\n"));
  CHECK(list.out.find("\nferritin,Ferritin,2276-4") != std::string::npos);
  CHECK(list.out.find(",ng/mL,") != std::string::npos);
}

TEST_CASE("labwatch trend takes an analyte key in any case and names the closest unknown one",
          "[daemon][cli]") {
  const SghLayout site;
  const CommandResult upper =
      run_labwatch({"trend", "--config", site.config(), "--patient", "1", "--analyte", "FERRITIN"});
  const CommandResult lower =
      run_labwatch({"trend", "--config", site.config(), "--patient", "1", "--analyte", "ferritin"});
  INFO(upper.err);
  CHECK(upper.exit_code == 0);
  CHECK(upper.out == lower.out);
  CHECK(upper.out.starts_with("Ferritin (ng/mL)"));

  const CommandResult typo =
      run_labwatch({"trend", "--config", site.config(), "--patient", "1", "--analyte", "feritin"});
  CHECK(typo.exit_code == 64);
  CHECK(typo.err.find("unknown analyte 'feritin' (closest: ferritin)") != std::string::npos);
}

TEST_CASE("labwatch alerts filters by patient, collection date and state", "[daemon][cli]") {
  const Layout layout(TempDir::fast_base());
  std::vector<std::string> ingest = {"ingest", "--config", layout.config().string()};
  for (const auto& entry : fs::directory_iterator(labwatch::test::corpus_file(""))) {
    if (entry.path().filename().string().starts_with("c_sgh")) {
      ingest.push_back(entry.path().string());
    }
  }
  REQUIRE(run_labwatch(ingest).exit_code != 1);
  const auto alerts = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"alerts", "--config", layout.config().string()};
    args.insert(args.end(), extra.begin(), extra.end());
    const CommandResult r = run_labwatch(args);
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    std::vector<std::string> rows;
    std::size_t start = r.out.find('\n') + 1;
    while (start < r.out.size()) {
      const std::size_t end = r.out.find('\n', start);
      rows.push_back(r.out.substr(start, end - start));
      start = end + 1;
    }
    return rows;
  };
  const std::vector<std::string> all = alerts({});
  REQUIRE(all.size() >= 2);
  const std::string person = all.front().substr(0, all.front().find(','));

  const std::vector<std::string> mine = alerts({"--patient", person});
  CHECK(mine.size() ==
        static_cast<std::size_t>(std::count_if(all.begin(), all.end(), [&](const std::string& row) {
          return row.starts_with(person + ",");
        })));
  for (const std::string& row : mine) {
    CHECK(row.starts_with(person + ","));
  }
  CHECK(alerts({"--since", "2999-01-01"}).empty());
  CHECK(alerts({"--since", "1970-01-01"}).size() == all.size());
  CHECK(alerts({"--since", "1970-01-01T00:00:00Z"}).size() == all.size());
  // The corpus was drawn before March 2026: older than <alerts mail-max-age-days> (30), history.
  CHECK(alerts({"--state", "historical"}).size() == all.size());
  CHECK(alerts({"--state", "unmailed"}).empty());
  CHECK(alerts({"--state", "sent"}).empty());

  for (const std::vector<std::string>& bad : std::vector<std::vector<std::string>>{
           {"--state", "mailed"}, {"--since", "2024-02-30"}, {"--since", "yesterday"}}) {
    std::vector<std::string> args = {"alerts", "--config", layout.config().string()};
    args.insert(args.end(), bad.begin(), bad.end());
    CHECK(run_labwatch(args).exit_code == 64);
  }
}

TEST_CASE("labwatch unmapped lists codes outside the catalogue with the line that maps them",
          "[daemon][cli]") {
  const Layout layout(TempDir::fast_base());
  std::string message = labwatch::test::oru("C1", "M1", "O1", "80", "1.5");
  const std::string crp = "30522-7^HS CRP^LN";
  message.replace(message.find(crp), crp.size(), "99999-9^MYSTERY^LN");
  const fs::path file = layout.stage() / "gen_mystery.hl7";
  labwatch::test::write_file(file, message);
  const CommandResult ingest =
      run_labwatch({"ingest", "--config", layout.config().string(), file.string()});
  INFO(ingest.err);
  REQUIRE(ingest.exit_code == 0);
  CHECK(ingest.err.find(
            "gen_mystery.hl7: accepted, 1 results stored, 0 duplicates, 0 skipped, 0 refused, 1 "
            "unmapped (see labwatch unmapped)") != std::string::npos);

  const CommandResult r = run_labwatch({"unmapped", "--config", layout.config().string()});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.starts_with("facility,code,name,unit,count,first_seen,last_seen,last_file,config\n"));
  // The name (OBX-3.2) and unit (OBX-6) the lab sent with it tell the admin what it is.
  CHECK(r.out.find("\nGEN,99999-9,MYSTERY,mg/L,1,") != std::string::npos);
  CHECK(r.out.find(
            ",gen_mystery.hl7,\"<analyte key=\"\"KEY\"\"><loinc>99999-9</loinc></analyte>\"\n") !=
        std::string::npos);
}

TEST_CASE("labwatch status says whether a daemon runs on the config, and what came in",
          "[daemon][cli]") {
  const Layout layout(TempDir::fast_base());
  const std::vector<std::string> status = {"status", "--config", layout.config().string()};
  const CommandResult idle = run_labwatch(status);
  INFO(idle.out << idle.err);
  CHECK(idle.exit_code == 3);
  CHECK(idle.out.find("daemon: not running on this config") != std::string::npos);
  CHECK(idle.out.find("last file: none yet\n") != std::string::npos);
  CHECK(idle.out.find("inbox: " + layout.inbox().string() + ", 0 files waiting\n") !=
        std::string::npos);

  const auto daemon = layout.start();
  CommandResult running;
  REQUIRE(labwatch::test::wait_until(
      [&] {
        running = run_labwatch(status);
        return running.exit_code == 0;
      },
      10s, 50ms));
  CHECK(running.out.find("daemon: running (pid " + std::to_string(daemon->pid()) + ")") !=
        std::string::npos);

  CHECK(layout.daemon_log().find("<6>started: config " + layout.config().string() +
                                 ", mail off, inbox ") != std::string::npos);

  layout.drop("gen_0001.csv", labwatch::test::generated_csv(1));
  REQUIRE(labwatch::test::wait_until(
      [&] { return labwatch::test::count_entries(layout.processed()) == 1; }, 10s));
  const CommandResult after = run_labwatch(status);
  INFO(after.out << after.err << layout.daemon_log());
  CHECK(after.exit_code == 0);
  CHECK(after.out.find("last file: gen_0001.csv, accepted at ") != std::string::npos);
  CHECK(after.out.find("today: 1 accepted, 0 partly refused, 0 refused\n") != std::string::npos);
  CHECK(after.out.find("outbox: 0 pending, 0 failed (mail is off)\n") != std::string::npos);
  CHECK(after.out.find("database: " + (layout.root() / "labwatch.db").string() + ", ") !=
        std::string::npos);

  daemon->signal(SIGTERM);
  REQUIRE(daemon->wait_exit(15s) == 0);
  CHECK(run_labwatch(status).exit_code == 3);
}

TEST_CASE("labwatch names owner, mode and the fix when it may not open the database",
          "[daemon][cli]") {
  if (::geteuid() != 0) {
    WARN("not root: no other user to be; the message is not exercised");
    return;
  }
  const TempDir dir;
  // The user nobody enters this folder and runs a copy of the binary kept here (the build tree may
  // lie where nobody cannot enter).
  fs::permissions(dir.path(), fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                  fs::perms::others_read | fs::perms::others_exec);
  const fs::path binary = dir.path() / "labwatch";
  fs::copy_file(LABWATCH_BINARY, binary);
  fs::permissions(binary, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                              fs::perms::others_read | fs::perms::others_exec);
  const std::vector<std::string> as_nobody = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534",
                                              "--clear-groups"};
  auto probe = as_nobody;
  probe.insert(probe.end(), {binary.string(), "--version"});
  if (const CommandResult reach = labwatch::test::run_program(probe); reach.exit_code != 0) {
    WARN("the user nobody cannot run " + binary.string() + " (set TMPDIR): " + reach.err);
    return;
  }
  // Created by root, as `sudo labwatch ingest` would.
  REQUIRE(run_labwatch({"init", (dir.path() / "site").string()}).exit_code == 0);
  const fs::path site_db = dir.path() / "site" / "labwatch.db";
  fs::permissions(dir.path() / "site",
                  fs::perms::owner_all | fs::perms::others_read | fs::perms::others_exec);
  for (const std::string command : {"export", "patients"}) {
    auto argv = as_nobody;
    argv.insert(argv.end(), {binary.string(), command, "--db", site_db.string()});
    const CommandResult r = labwatch::test::run_program(argv);
    INFO(command << ": " << r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("cannot open the database " + site_db.string()) != std::string::npos);
    CHECK(r.err.find("is owned by root (uid 0), mode 0600") != std::string::npos);
    CHECK(r.err.find("sudo chown labwatch: " + site_db.string()) != std::string::npos);
  }
}

TEST_CASE("labwatch prefixes priorities only when stderr is the journal, and takes --log-level",
          "[daemon][cli][log]") {
  const TempDir dir;
  const fs::path good = dir.path() / "good.hl7";
  labwatch::test::write_file(good, labwatch::test::oru("C1", "M1", "O1", "80", "1.5"));
  const fs::path err = dir.path() / "err";
  const fs::path out = dir.path() / "out";
  const auto run = [&](const std::vector<std::string>& args, bool journal) {
    labwatch::test::write_file(err, "");
    struct stat st {};
    REQUIRE(::stat(err.c_str(), &st) == 0);
    std::vector<std::string> env;
    if (journal) {
      env.push_back("JOURNAL_STREAM=" + std::to_string(st.st_dev) + ":" +
                    std::to_string(st.st_ino));
    } else {
      env.emplace_back("JOURNAL_STREAM=1:1");  // some other stream: not ours
    }
    labwatch::test::Process p(labwatch::test::labwatch_argv(args), out, err, env);
    const std::optional<int> code = p.wait_exit(60s);
    return std::make_pair(code.value_or(-1), labwatch::test::read_file(err));
  };
  const std::string db = (dir.path() / "x.db").string();

  const auto [journal_code, journal_err] = run({"ingest", "--db", db, good.string()}, true);
  CHECK(journal_code == 0);
  CHECK(journal_err.starts_with("<6>good.hl7: "));

  const auto [plain_code, plain_err] = run({"ingest", "--db", db, good.string()}, false);
  CHECK(plain_code == 0);
  CHECK(plain_err.starts_with("labwatch: good.hl7: already ingested"));

  const auto [quiet_code, quiet_err] =
      run({"ingest", "--log-level", "warning", "--db", db, good.string()}, false);
  CHECK(quiet_code == 0);
  CHECK(quiet_err.empty());

  const auto [bad_code, bad_err] =
      run({"ingest", "--log-level=loud", "--db", db, good.string()}, false);
  CHECK(bad_code == 64);
  CHECK(bad_err.find("--log-level must be") != std::string::npos);
}

TEST_CASE("labwatch reprocess ingests a refused file again once the config is fixed",
          "[daemon][cli]") {
  const Layout layout(TempDir::fast_base());
  // A CSV export of a sender the config does not know yet: refused whole (unknown source).
  const fs::path file = layout.failed() / "zz_0001.csv";
  labwatch::test::write_file(file, labwatch::test::generated_csv(1));
  labwatch::test::write_file(layout.failed() / "zz_0001.csv.reason.txt", "unknown source\n");
  const std::string config = layout.config().string();
  REQUIRE(run_labwatch({"ingest", "--config", config, file.string()}).exit_code == 2);

  const CommandResult unchanged = run_labwatch({"reprocess", "--config", config, "--failed"});
  CHECK(unchanged.exit_code == 2);
  CHECK(fs::exists(file));

  // The admin adds the sender.
  std::string xml = labwatch::test::read_file(layout.config());
  const std::string sources = "  <sources>\n";
  xml.insert(xml.find(sources) + sources.size(),
             "    <source facility=\"ZZ\" timezone=\"Europe/London\" files=\"zz_*\"/>\n");
  labwatch::test::write_file(layout.config(), xml);

  const CommandResult fixed = run_labwatch({"reprocess", "--config", config, "--failed"});
  INFO(fixed.err);
  CHECK(fixed.exit_code == 0);
  CHECK(fixed.err.find("zz_0001.csv: refused before, accepted now, 1 results stored") !=
        std::string::npos);
  CHECK_FALSE(fs::exists(file));
  CHECK_FALSE(fs::exists(layout.failed() / "zz_0001.csv.reason.txt"));
  CHECK(fs::exists(layout.processed() / "zz_0001.csv"));
  CHECK(layout.export_rows().size() == 1);

  // Once accepted, the same bytes are known: nothing is stored twice, and ingest says 0.
  const fs::path moved = layout.processed() / "zz_0001.csv";
  CHECK(run_labwatch({"reprocess", "--config", config, moved.string()}).exit_code == 0);
  CHECK(run_labwatch({"ingest", "--config", config, moved.string()}).exit_code == 0);
  CHECK(layout.export_rows().size() == 1);

  CHECK(run_labwatch({"reprocess", "--config", config}).exit_code == 64);
  CHECK(run_labwatch({"reprocess", "--config", config, "--failed", moved.string()}).exit_code ==
        64);
}

TEST_CASE("labwatch trend and report show a censored value straddling its target as indeterminate",
          "[daemon][cli]") {
  const Layout layout(TempDir::fast_base());
  // hs-CRP "<3.0" against lt:1.0 may lie on either side: no alert, and said so.
  const fs::path file = layout.stage() / "gen_censored.hl7";
  labwatch::test::write_file(file, labwatch::test::oru("C1", "M1", "O1", "80", "<3.0"));
  const std::string config = layout.config().string();
  const CommandResult ingest = run_labwatch({"ingest", "--config", config, file.string()});
  INFO(ingest.err);
  REQUIRE(ingest.exit_code == 0);

  const CommandResult trend =
      run_labwatch({"trend", "--config", config, "--patient", "QDX|M1", "--analyte", "hs_crp"});
  INFO(trend.out);
  REQUIRE(trend.exit_code == 0);
  CHECK(trend.out.rfind("hs-CRP (high-sensitivity C-reactive protein) (mg/L), optimal target < 1.0 "
                        "mg/L\n",
                        0) == 0);
  CHECK(trend.out.find("<3.0  mg/L          final        indeterminate    <= 3.0 mg/L (lab: <3.0 "
                       "mg/L)\n") != std::string::npos);

  const CommandResult report =
      run_labwatch({"report", "--config", config, "--patient", "QDX|M1", "--out", "-"});
  REQUIRE(report.exit_code == 0);
  CHECK(report.out.find("<td>&lt; 1.0 mg/L</td>") != std::string::npos);
  CHECK(report.out.find("unsure\">indeterminate (the value straddles a bound)</td>") !=
        std::string::npos);
  CHECK(report.out.find("lt:1.0") == std::string::npos);
}

namespace {

// One ORU^R01 of patient QDX|M1 with one OBX (`obx`, without its set id), under `order`.
std::string one_result(const std::string& control_id, const std::string& order,
                       const std::string& message_time, const std::string& obx) {
  return "MSH|^~\\&|LAB|QDX|APP|CLINIC|" + message_time + "||ORU^R01|" + control_id +
         "|P|2.5.1\r"
         "PID|1||M1^^^QDX^MR||DOE^JANE||19800102|F\r"
         "OBR|1|" +
         order + "|" + order +
         "^QDX|7444^PANEL^L|||20250810090500-0500\r"
         "OBX|1|" +
         obx + "\r";
}

}  // namespace

TEST_CASE("labwatch trend judges a value on the lab's printed bound as within, not indeterminate",
          "[daemon][cli]") {
  const Layout layout(TempDir::fast_base());
  // B12 616 pmol/L against the printed 148-616 pmol/L: both are shown in pg/mL (x 1.35537), and
  // the value is exactly on the bound the lab printed in its own unit.
  const fs::path file = layout.stage() / "gen_b12.hl7";
  labwatch::test::write_file(file, one_result("B1", "O1", "20250811110500-0500",
                                              "NM|2132-9^B12^LN||616|pmol/L|148-616||||F"));
  const std::string config = layout.config().string();
  const CommandResult ingest = run_labwatch({"ingest", "--config", config, file.string()});
  INFO(ingest.err);
  REQUIRE(ingest.exit_code == 0);
  const CommandResult trend = run_labwatch(
      {"trend", "--config", config, "--patient", "QDX|M1", "--analyte", "vitamin_b12"});
  INFO(trend.out);
  REQUIRE(trend.exit_code == 0);
  CHECK(trend.out.find("835  pg/mL         final        within") != std::string::npos);
  CHECK(trend.out.find("indeterminate") == std::string::npos);
}

TEST_CASE("labwatch ends a D3-only result and the total of its draw alike in either order",
          "[daemon][cli]") {
  // The same draw: D3 only (1989-3) under accession ACC2, the total (62292-8) under ACC1.
  const std::string d3 =
      one_result("D3", "ACC2", "20250811120000-0500", "NM|1989-3^VITAMIN D3^LN||40|ng/mL|||||F");
  const std::string total = one_result("DT", "ACC1", "20250811110500-0500",
                                       "NM|62292-8^VITAMIN D^LN||45|ng/mL|30-100||||F");
  auto exported = [](const std::vector<std::pair<std::string, std::string>>& files) {
    const Layout layout(TempDir::fast_base());
    const std::string config = layout.config().string();
    for (const auto& [name, text] : files) {
      const fs::path path = layout.stage() / name;
      labwatch::test::write_file(path, text);
      const CommandResult ingest = run_labwatch({"ingest", "--config", config, path.string()});
      INFO(ingest.err);
      REQUIRE(ingest.exit_code == 0);
    }
    const CommandResult out = run_labwatch({"export", "--config", config, "--format", "csv"});
    REQUIRE(out.exit_code == 0);
    return out.out;
  };
  const std::string total_first = exported({{"gen_total.hl7", total}, {"gen_d3.hl7", d3}});
  const std::string d3_first = exported({{"gen_d3.hl7", d3}, {"gen_total.hl7", total}});
  INFO(total_first);
  CHECK(d3_first == total_first);
  CHECK(total_first.find("gen_total.hl7,QDX|M1,1,vitamin_d_25oh,45,ng/mL,") != std::string::npos);
  CHECK(total_first.find("gen_d3.hl7,QDX|M1,1,vitamin_d3_25oh,40,ng/mL,") != std::string::npos);

  SECTION("explain says that the stand-in stays as its own analyte") {
    const Layout layout(TempDir::fast_base());
    const std::string config = layout.config().string();
    const fs::path d3_path = layout.stage() / "gen_d3.hl7";
    const fs::path total_path = layout.stage() / "gen_total.hl7";
    labwatch::test::write_file(d3_path, d3);
    labwatch::test::write_file(total_path, total);
    REQUIRE(run_labwatch({"ingest", "--config", config, d3_path.string()}).exit_code == 0);
    const CommandResult r = run_labwatch({"explain", "--config", config, total_path.string()});
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("  line 4, segment 4 OBX, field 5: store: vitamin_d_25oh 45 ng/mL (lab: 45 "
                     "ng/mL), replacing 1 stored version\n"
                     "  line 4, segment 4 OBX, field 5: store: vitamin_d3_25oh 40 ng/mL (lab: 40 "
                     "ng/mL), stored before as the total's stand-in: kept as its own analyte\n"
                     "summary: 2 to store,") != std::string::npos);
  }
}

TEST_CASE("labwatch ingest and explain note a plain N on a value outside the printed range",
          "[daemon][cli]") {
  const Layout layout(TempDir::fast_base());
  const fs::path file = layout.stage() / "gen_flag_n.hl7";
  labwatch::test::write_file(file, one_result("N1", "O1", "20250811110500-0500",
                                              "NM|2132-9^B12^LN||700|pmol/L|148-616|N|||F"));
  const std::string config = layout.config().string();
  const std::string note =
      "flag_disagrees: OBX-8 'N' says normal, but OBX-5 lies above OBX-7; stored (the lab may "
      "judge by a range it did not print)";

  const CommandResult explain = run_labwatch({"explain", "--config", config, file.string()});
  INFO(explain.out << explain.err);
  CHECK(explain.exit_code == 0);  // noted, not refused
  CHECK(explain.out.find("segment 4 OBX, field 8: warning: " + note) != std::string::npos);

  const CommandResult ingest = run_labwatch({"ingest", "--config", config, file.string()});
  INFO(ingest.err);
  CHECK(ingest.exit_code == 0);
  CHECK(ingest.err.find("segment 4 OBX, field 8: " + note) != std::string::npos);
  CHECK(ingest.err.find("700") == std::string::npos);  // never the value
  const CommandResult exported = run_labwatch({"export", "--config", config});
  CHECK(exported.out.find(",vitamin_b12,948.759,") != std::string::npos);
}
