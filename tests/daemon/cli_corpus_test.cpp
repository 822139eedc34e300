// SPDX-License-Identifier: Apache-2.0
// The public corpus through the CLI contract: every expected result, person and alert exactly
// right.
#include <sys/wait.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "support/corpus_sources.hpp"
#include "support/csv_records.hpp"

namespace fs = std::filesystem;

namespace {

using labwatch::test::CsvRecord;
using labwatch::test::read_csv_records;

const fs::path kCorpus = fs::path(LABWATCH_TEST_DATA_DIR) / "corpus";

struct Run {
  int status = -1;
  std::string out;
  std::string err;
};

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'') {
      q += "'\\''";
    } else {
      q += c;
    }
  }
  return q + "'";
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs the real binary with `args`, capturing stdout and stderr.
Run run_labwatch(const fs::path& work, const std::vector<std::string>& args) {
  std::string cmd = quote(LABWATCH_BINARY);
  for (const auto& a : args) {
    cmd += " " + quote(a);
  }
  const fs::path out = work / "stdout.txt";
  const fs::path err = work / "stderr.txt";
  cmd += " >" + quote(out.string()) + " 2>" + quote(err.string());
  const int rc =
      std::system(cmd.c_str());  // NOLINT(concurrency-mt-unsafe): tests run one at a time
  Run r;
  r.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

// The <sources> part of the config, from facilities.csv, as the corpus checker builds it.
fs::path write_config(const fs::path& work) {
  std::string xml = "<labwatch>\n  <sources>\n";
  xml += labwatch::test::corpus_source_lines(slurp(kCorpus / "facilities.csv"));
  xml += "  </sources>\n</labwatch>\n";
  const fs::path cfg = work / "labwatch.xml";
  std::ofstream(cfg) << xml;
  return cfg;
}

std::vector<std::string> corpus_files() {
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(kCorpus)) {
    const std::string name = e.path().filename().string();
    if (name == "expected.csv" || name == "expected_alerts.csv" || name == "facilities.csv" ||
        name == "README.md") {
      continue;
    }
    files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

bool close_enough(const std::string& a, const std::string& b) {
  const double x = std::strtod(a.c_str(), nullptr);
  const double y = std::strtod(b.c_str(), nullptr);
  return std::fabs(x - y) <= 1e-3 * std::max({std::fabs(x), std::fabs(y), 1e-9});
}

struct Workspace {
  fs::path dir;
  fs::path config;
  fs::path db;
  explicit Workspace(const std::string& name) {
    dir =
        fs::temp_directory_path() / ("labwatch-corpus-" + name + "-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    config = write_config(dir);
    db = dir / "labwatch.db";
  }
  ~Workspace() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
  Workspace(Workspace&&) = delete;
  Workspace& operator=(Workspace&&) = delete;

  Run run(std::vector<std::string> args) const {
    args.insert(args.begin() + 1, {"--config", config.string(), "--db", db.string()});
    return run_labwatch(dir, args);
  }
  Run ingest(const std::vector<std::string>& files) const {
    std::vector<std::string> args = {"ingest"};
    args.insert(args.end(), files.begin(), files.end());
    return run(args);
  }
};

std::string key(const CsvRecord& r) {
  return r.at("patient_key") + " " + r.at("analyte") + " " + r.at("collected_at");
}

}  // namespace

TEST_CASE("labwatch ingest and export reproduce every expected result of the public corpus",
          "[daemon][corpus]") {
  Workspace ws("exact");
  const Run ingest = ws.ingest(corpus_files());
  // Some corpus files hold refused results, so exit 2 with the reasons on stderr.
  REQUIRE(ingest.status == 2);
  CHECK(ingest.err.find("e_wce_missing_columns.csv: line 1") != std::string::npos);
  CHECK(ingest.err.find("missing_columns") != std::string::npos);
  CHECK(ingest.err.find("e_empty.csv: empty_file") != std::string::npos);
  CHECK(ingest.err.find("e_garbage.hl7: unrecognized_format") != std::string::npos);
  CHECK(ingest.err.find("truncated_message") != std::string::npos);
  CHECK(ingest.err.find("unknown_unit") != std::string::npos);
  CHECK(ingest.err.find("non_numeric_value") != std::string::npos);
  CHECK(ingest.err.find("implausible_value") != std::string::npos);

  const Run exported = ws.run({"export", "--format", "csv"});
  REQUIRE(exported.status == 0);
  REQUIRE(exported.out.rfind(
              "source_file,patient_key,person_id,analyte,value,unit,collected_at,status,comparator",
              0) == 0);
  const std::vector<CsvRecord> got = read_csv_records(exported.out);

  std::map<std::string, std::vector<const CsvRecord*>> got_by_key;
  for (const CsvRecord& r : got) {
    got_by_key[key(r)].push_back(&r);
  }
  const std::vector<CsvRecord> expected = read_csv_records(slurp(kCorpus / "expected.csv"));
  std::set<std::string> expected_keys;
  std::map<std::string, std::set<std::string>> person_ids_of_ref;
  std::map<std::string, std::set<std::string>> refs_of_person_id;
  int stored = 0;
  int right = 0;
  for (const CsvRecord& e : expected) {
    if (e.at("expected_fate") != "stored") {
      continue;
    }
    ++stored;
    expected_keys.insert(key(e));
    const auto it = got_by_key.find(key(e));
    if (it == got_by_key.end()) {
      FAIL_CHECK("missing " << e.at("source_file") << " " << key(e));
      continue;
    }
    const CsvRecord& r = *it->second.front();
    INFO(e.at("source_file") << " " << key(e));
    CHECK(it->second.size() == 1);
    CHECK(close_enough(r.at("value"), e.at("value")));
    CHECK(r.at("unit") == e.at("unit"));
    CHECK(r.at("status") == e.at("status"));
    CHECK(r.at("comparator") == e.at("comparator"));
    CHECK(r.at("source_file") == e.at("source_file"));
    if (it->second.size() == 1 && close_enough(r.at("value"), e.at("value")) &&
        r.at("unit") == e.at("unit") && r.at("status") == e.at("status") &&
        r.at("comparator") == e.at("comparator")) {
      ++right;
    }
    person_ids_of_ref[e.at("person_ref")].insert(r.at("person_id"));
    refs_of_person_id[r.at("person_id")].insert(e.at("person_ref"));
  }
  CHECK(stored == 1160);
  CHECK(right == 1160);
  for (const CsvRecord& r : got) {
    if (expected_keys.count(key(r)) == 0) {
      FAIL_CHECK("extra " << r.at("source_file") << " " << key(r));
    }
  }
  CHECK(got.size() == 1160);
  for (const auto& [ref, ids] : person_ids_of_ref) {
    INFO("person " << ref);
    CHECK(ids.size() == 1);
  }
  for (const auto& [id, refs] : refs_of_person_id) {
    INFO("person id " << id);
    CHECK(refs.size() == 1);
  }

  SECTION("every expected alert is raised and no other") {
    const Run alerts = ws.run({"alerts", "--format", "csv"});
    REQUIRE(alerts.status == 0);
    std::set<std::string> got_alerts;
    for (const CsvRecord& a : read_csv_records(alerts.out)) {
      if (a.at("rule").rfind("trend:", 0) == 0) {
        continue;
      }
      const auto& refs = refs_of_person_id[a.at("person_id")];
      REQUIRE(refs.size() == 1);
      got_alerts.insert(*refs.begin() + " " + a.at("analyte") + " " + a.at("collected_at"));
    }
    std::set<std::string> want;
    for (const CsvRecord& a : read_csv_records(slurp(kCorpus / "expected_alerts.csv"))) {
      want.insert(a.at("person_ref") + " " + a.at("analyte") + " " + a.at("collected_at"));
    }
    CHECK(want.size() == 439);
    for (const auto& k : want) {
      if (got_alerts.count(k) == 0) {
        FAIL_CHECK("no alert " << k);
      }
    }
    for (const auto& k : got_alerts) {
      if (want.count(k) == 0) {
        FAIL_CHECK("unexpected alert " << k);
      }
    }
  }

  SECTION("ingesting the corpus again changes nothing and exits 2 again") {
    // The files refused the first time are refused still: the same bytes, the same verdict.
    const Run again = ws.ingest(corpus_files());
    CHECK(again.status == 2);
    CHECK(again.err.find("(refused when first ingested)") != std::string::npos);
    CHECK(ws.run({"export", "--format", "csv"}).out == exported.out);
  }
}

TEST_CASE("labwatch ingest gives the same current results whatever the file order",
          "[daemon][corpus]") {
  std::vector<std::string> files = corpus_files();
  Workspace forward("forward");
  REQUIRE(forward.ingest(files).status == 2);
  Workspace backward("backward");
  std::reverse(files.begin(), files.end());
  REQUIRE(backward.ingest(files).status == 2);

  // Person ids and the storing file may differ with the order; the results themselves must not.
  const auto normalize = [](const std::string& csv) {
    std::vector<std::string> lines;
    for (const CsvRecord& r : read_csv_records(csv)) {
      lines.push_back(key(r) + " " + r.at("value") + " " + r.at("unit") + " " + r.at("status") +
                      " " + r.at("comparator"));
    }
    std::sort(lines.begin(), lines.end());
    return lines;
  };
  const auto a = normalize(forward.run({"export"}).out);
  const auto b = normalize(backward.run({"export"}).out);
  CHECK(a.size() == 1160);
  CHECK(a == b);
}

TEST_CASE("labwatch export --format json prints the same results as csv", "[daemon][corpus]") {
  Workspace ws("json");
  REQUIRE(ws.ingest({(kCorpus / "a_qdx_01.hl7").string()}).status == 0);
  const Run csv = ws.run({"export"});
  const Run json = ws.run({"export", "--format", "json"});
  REQUIRE(json.status == 0);
  const auto rows = read_csv_records(csv.out);
  REQUIRE(!rows.empty());
  CHECK(json.out.front() == '[');
  std::size_t objects = 0;
  for (std::size_t pos = json.out.find("{\"source_file\":"); pos != std::string::npos;
       pos = json.out.find("{\"source_file\":", pos + 1)) {
    ++objects;
  }
  CHECK(objects == rows.size());
  CHECK(json.out.find("\"analyte\":\"ferritin\",\"value\":80,\"unit\":\"ng/mL\","
                      "\"collected_at\":\"2024-09-21T12:15:00Z\"") != std::string::npos);
}

TEST_CASE("labwatch commands report bad usage and a missing database clearly", "[daemon][cli]") {
  Workspace ws("usage");
  SECTION("unknown command") {
    const Run r = run_labwatch(ws.dir, {"frobnicate"});
    CHECK(r.status == 64);
    CHECK(r.err.find("unknown command 'frobnicate'") != std::string::npos);
  }
  SECTION("every command has --help") {
    for (const char* c :
         {"init", "run", "ingest", "export", "trend", "alerts", "patients", "check-config"}) {
      const Run r = run_labwatch(ws.dir, {c, "--help"});
      INFO(c);
      CHECK(r.status == 0);
      CHECK(r.out.find(std::string("labwatch ") + c) != std::string::npos);
    }
  }
  SECTION("ingest without paths") {
    const Run r = ws.run({"ingest"});
    CHECK(r.status == 64);
    CHECK(r.err.find("needs at least one PATH") != std::string::npos);
  }
  SECTION("export without a database") {
    const Run r = ws.run({"export"});
    CHECK(r.status == 1);
    CHECK(r.err.find("does not exist") != std::string::npos);
  }
  SECTION("a broken config exits 78 naming the file and line") {
    const fs::path bad = ws.dir / "bad.xml";
    std::ofstream(bad)
        << "<labwatch>\n<sources><source facility=\"X\" timezone=\"Nowhere/Land\"/></sources>\n"
           "</labwatch>\n";
    const Run r = run_labwatch(ws.dir, {"check-config", "--config", bad.string()});
    CHECK(r.status == 78);
    CHECK(
        r.err.find(bad.string() + ":2: <source facility=\"X\">: unknown timezone 'Nowhere/Land'") !=
        std::string::npos);
  }
  SECTION("an unreadable database directory is an operational failure") {
    const Run r = run_labwatch(
        ws.dir, {"ingest", "--db", "/nonexistent/dir/x.db", (kCorpus / "a_qdx_01.hl7").string()});
    CHECK(r.status == 1);
  }
}

TEST_CASE("labwatch trend prints a patient's values with the optimal verdict", "[daemon][cli]") {
  Workspace ws("trend");
  REQUIRE(ws.ingest({(kCorpus / "c_sgh_01_mllp.hl7").string(),
                     (kCorpus / "c_sgh_02_batch.hl7").string()})
              .status == 0);
  const Run r = ws.run({"trend", "--patient", "SGH|SGH948271", "--analyte", "ferritin"});
  REQUIRE(r.status == 0);
  // The target written for people, not rule syntax.
  CHECK(r.out.rfind("Ferritin (ng/mL), optimal target >= 50 ng/mL, ideally > 70\n", 0) == 0);
  // The corrected value (87) replaced the final one (74).
  CHECK(r.out.find("87") != std::string::npos);
  CHECK(r.out.find("corrected") != std::string::npos);
  const Run unknown = ws.run({"trend", "--patient", "NOPE|1", "--analyte", "ferritin"});
  CHECK(unknown.status == 1);
  CHECK(unknown.err.find("no patient 'NOPE|1'") != std::string::npos);
}

TEST_CASE("labwatch report --patient takes a person id, AUTHORITY|ID or a mail's report reference",
          "[daemon][cli]") {
  Workspace ws("report_ref");
  REQUIRE(ws.ingest({(kCorpus / "c_sgh_01_mllp.hl7").string()}).status == 0);
  // "labwatch person 3" in the report's heading: who the report is about.
  const auto person_of = [](const Run& r) {
    const std::string marker = "labwatch person ";
    const std::size_t at = r.out.find(marker);
    return at == std::string::npos
               ? std::string()
               : r.out.substr(at + marker.size(),
                              r.out.find_first_not_of("0123456789", at + marker.size()) - at -
                                  marker.size());
  };
  const Run by_key = ws.run({"report", "--patient", "SGH|SGH948271", "--out", "-"});
  REQUIRE(by_key.status == 0);
  const std::string hana = person_of(by_key);
  REQUIRE_FALSE(hana.empty());
  CHECK(by_key.out.find("EXAMPLAR, HANA") != std::string::npos);
  // The second message of the file (control id SGH301000094) is Hana's.
  const Run by_ref = ws.run({"report", "--patient", "SGH301000094", "--out", "-"});
  REQUIRE(by_ref.status == 0);
  CHECK(person_of(by_ref) == hana);
  const Run by_id = ws.run({"report", "--patient", hana, "--out", "-"});
  REQUIRE(by_id.status == 0);
  CHECK(person_of(by_id) == hana);
  // A mail's reference may list several reports: all of them Hana's is Hana.
  const Run several = ws.run({"report", "--patient", "SGH301000094, SGH301000094", "--out", "-"});
  CHECK(several.status == 0);
  CHECK(person_of(several) == hana);
  // Reports of two people name no one: refused, not guessed.
  const Run two = ws.run({"report", "--patient", "SGH301000093, SGH301000094", "--out", "-"});
  CHECK(two.status == 1);
  CHECK(two.err.find("names more than one") != std::string::npos);
  CHECK(two.out.empty());
}
