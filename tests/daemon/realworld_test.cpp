// SPDX-License-Identifier: Apache-2.0
// Real-world-shaped lab messages (tests/data/realworld, written after the shapes of public Quest,
// LabCorp, WinPath, Sunquest, NIST LRI and public-health ELR samples; every name and id fake)
// through `labwatch ingest`: none is refused, and exactly the expected values are current.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "support/csv_records.hpp"

namespace fs = std::filesystem;

namespace {

using labwatch::test::CsvRecord;
using labwatch::test::read_csv_records;

const fs::path kData = fs::path(LABWATCH_TEST_DATA_DIR) / "realworld";

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string quote(const std::string& s) {
  std::string q = "'";
  for (const char c : s) {
    q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  }
  return q + "'";
}

struct Run {
  int status = -1;
  std::string out;
  std::string err;
};

// A config of <sources> from facilities.csv, a database and a scratch folder of its own.
class Workspace {
 public:
  explicit Workspace(const std::string& name)
      : dir_(fs::temp_directory_path() /
             ("labwatch-realworld-" + name + "-" + std::to_string(::getpid()))) {
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::string xml = "<labwatch>\n  <sources>\n";
    for (const CsvRecord& f : read_csv_records(slurp(kData / "facilities.csv"))) {
      xml += "    <source facility=\"" + f.at("facility") + "\" authority=\"" +
             f.at("assigning_authority") + "\" timezone=\"" + f.at("timezone") + "\" files=\"" +
             f.at("file_prefixes") + "*\"/>\n";
    }
    xml += "  </sources>\n</labwatch>\n";
    std::ofstream(dir_ / "labwatch.xml") << xml;
  }
  ~Workspace() {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
  Workspace(Workspace&&) = delete;
  Workspace& operator=(Workspace&&) = delete;

  // Writes `text` as the file `name` of the scratch folder; returns its path.
  [[nodiscard]] std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(dir_ / name, std::ios::binary) << text;
    return (dir_ / name).string();
  }

  // Runs the real binary: `labwatch COMMAND --config ... --db ... ARGS...`.
  Run run(const std::string& command, const std::vector<std::string>& args) const {
    std::string cmd = quote(LABWATCH_BINARY) + " " + command + " --config " +
                      quote((dir_ / "labwatch.xml").string()) + " --db " +
                      quote((dir_ / "labwatch.db").string());
    for (const std::string& a : args) {
      cmd += " " + quote(a);
    }
    cmd += " >" + quote((dir_ / "out.txt").string()) + " 2>" + quote((dir_ / "err.txt").string());
    const int rc = std::system(cmd.c_str());  // NOLINT(concurrency-mt-unsafe): one test at a time
    Run r;
    r.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    r.out = slurp(dir_ / "out.txt");
    r.err = slurp(dir_ / "err.txt");
    return r;
  }

 private:
  fs::path dir_;
};

std::vector<std::string> message_files() {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(kData)) {
    if (e.path().extension() == ".hl7") {
      names.push_back(e.path().filename().string());
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

// A current value as compared: patient, analyte, unit, status, comparator; the value apart.
using Key = std::tuple<std::string, std::string, std::string, std::string, std::string>;

struct Value {
  Key key;
  double value = 0;
};

std::vector<Value> values_of(const std::vector<CsvRecord>& rows) {
  std::vector<Value> out;
  for (const CsvRecord& r : rows) {
    out.push_back(
        {{r.at("patient_key"), r.at("analyte"), r.at("unit"), r.at("status"), r.at("comparator")},
         std::strtod(r.at("value").c_str(), nullptr)});
  }
  std::sort(out.begin(), out.end(), [](const Value& a, const Value& b) { return a.key < b.key; });
  return out;
}

std::vector<CsvRecord> expected_for(const std::string& file) {
  std::vector<CsvRecord> rows;
  for (const CsvRecord& r : read_csv_records(slurp(kData / "expected.csv"))) {
    if (r.at("file") == file) {
      rows.push_back(r);
    }
  }
  return rows;
}

void check_values(const std::vector<CsvRecord>& got_rows,
                  const std::vector<CsvRecord>& expected_rows) {
  const std::vector<Value> got = values_of(got_rows);
  const std::vector<Value> expected = values_of(expected_rows);
  REQUIRE(got.size() == expected.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    const auto& [patient, analyte, unit, status, comparator] = expected[i].key;
    INFO(patient << " " << analyte << " " << unit << " " << status << " '" << comparator << "'");
    CHECK(got[i].key == expected[i].key);
    CHECK(got[i].value == Approx(expected[i].value).epsilon(1e-6));
  }
}

}  // namespace

TEST_CASE("labwatch ingest stores every real-world-shaped message without a refusal",
          "[daemon][realworld]") {
  const std::vector<std::string> files = message_files();
  REQUIRE(files.size() >= 20);
  for (const std::string& file : files) {
    INFO(file);
    const Workspace work(file);
    const Run ingest = work.run("ingest", {(kData / file).string()});
    INFO(ingest.err);
    CHECK(ingest.status == 0);  // 2 would mean a refusal
    CHECK(ingest.err.find("refused") != std::string::npos);
    CHECK(ingest.err.find(", 0 refused") != std::string::npos);
    const Run exported = work.run("export", {"--format", "csv"});
    REQUIRE(exported.status == 0);
    const std::vector<CsvRecord> expected = expected_for(file);
    CHECK_FALSE(expected.empty());
    check_values(read_csv_records(exported.out), expected);
  }
}

TEST_CASE("labwatch ingest takes the whole real-world set in one database", "[daemon][realworld]") {
  const Workspace work("all");
  std::vector<std::string> paths;
  for (const std::string& file : message_files()) {
    paths.push_back((kData / file).string());
  }
  const Run ingest = work.run("ingest", paths);
  INFO(ingest.err);
  CHECK(ingest.status == 0);
  const Run exported = work.run("export", {"--format", "csv"});
  REQUIRE(exported.status == 0);
  check_values(read_csv_records(exported.out), read_csv_records(slurp(kData / "expected.csv")));
}

TEST_CASE("labwatch ingest warns of a reused accession number without naming the patients",
          "[daemon][realworld]") {
  const Workspace work("reused");
  const Run ingest = work.run("ingest", {(kData / "quest_07_reused_accession.hl7").string()});
  CHECK(ingest.status == 0);
  CHECK(ingest.err.find("accession_reused: message 2 (control id QST000100010)") !=
        std::string::npos);
  for (const std::string_view phi : {"QST1007", "QST1008", "FAUXMAN", "NOBODY", "HUGO", "64"}) {
    INFO(phi);
    CHECK(ingest.err.find(phi) == std::string::npos);
  }
}

TEST_CASE("labwatch trend shows a test not performed as a gap, and export leaves it out",
          "[daemon][realworld]") {
  const Workspace work("gap");
  REQUIRE(work.run("ingest", {(kData / "labcorp_02_tnp.hl7").string()}).status == 0);
  const Run exported = work.run("export", {"--format", "csv"});
  CHECK(exported.out.find("hs_crp") == std::string::npos);
  const Run trend = work.run("trend", {"--patient", "LCB|LCB2002", "--analyte", "hs_crp"});
  REQUIRE(trend.status == 0);
  CHECK(trend.out.find("2025-03-15") != std::string::npos);
  CHECK(trend.out.find("not performed") != std::string::npos);
  const Run ferritin = work.run("trend", {"--patient", "LCB|LCB2002", "--analyte", "ferritin"});
  CHECK(ferritin.out.find("not performed") != std::string::npos);  // QNS
  const Run glucose =
      work.run("trend", {"--patient", "LCB|LCB2002", "--analyte", "glucose_fasting"});
  CHECK(glucose.out.find("not performed") == std::string::npos);
}

TEST_CASE(
    "labwatch ingest lets a later message with MSH-7 withdraw or replace one timed by arrival",
    "[daemon][realworld][versions]") {
  // The first version carries neither MSH-7 nor OBR-22, so it is ordered by its arrival; the
  // second carries a real MSH-7 earlier than the clock of the first one's ingest (every date of
  // 2026 is), which compared with that clock lost: a deletion did not withdraw the value.
  const std::string msh = "MSH|^~\\&|LAB|QST|CLINIC|C1|";
  const std::string pid = "PID|1||WA^^^QST^MR||DOE^WA||19700101|F\r";
  const auto message = [&](const std::string& msh7, const std::string& obr22,
                           const std::string& value, const std::string& status) {
    return msh + msh7 + "||ORU^R01|CTL" + status + "|P|2.5.1\r" + pid +
           "OBR|1|PLWW1|WW1|FER^FERRITIN^L|||202612051000-0500" +
           (obr22.empty() ? "" : "|||||||||||||||" + obr22) + "\r" +
           "OBX|1|NM|2276-4^Ferritin^LN||" + value + "|ng/mL|15-150||||" + status + "\r";
  };
  struct Case {
    const char* name;
    std::string first;
    std::string second;
    std::string current;  // the value export shows, "" for none
  };
  const std::vector<Case> cases = {
      {"a deletion with MSH-7 withdraws a final timed by arrival", message("", "", "30", "F"),
       message("202612060900-0500", "", "", "D"), ""},
      {"a wrong result (W) with MSH-7 withdraws it", message("", "", "30", "F"),
       message("202612060900-0500", "", "30", "W"), ""},
      {"a final with MSH-7 replaces a preliminary timed by arrival", message("", "", "30", "P"),
       message("202612060900-0500", "", "40", "F"), "40"},
      {"a correction with OBR-22 only replaces a final timed by arrival",
       message("", "", "30", "F"), message("", "202612060900-0500", "44", "C"), "44"},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    const Workspace work("arrival");
    const std::string a = work.write("quest_w1a.hl7", c.first);
    const std::string b = work.write("quest_w1b.hl7", c.second);
    const Run first = work.run("ingest", {a});
    INFO(first.err);
    REQUIRE(first.status == 0);
    const Run second = work.run("ingest", {b});
    INFO(second.err);
    REQUIRE(second.status == 0);
    const std::vector<CsvRecord> rows =
        read_csv_records(work.run("export", {"--format", "csv"}).out);
    if (c.current.empty()) {
      CHECK(rows.empty());
      // The alert of 30 (below the optimal target) closes with its result.
      CHECK(work.run("alerts", {}).out.find("ferritin") == std::string::npos);
    } else {
      REQUIRE(rows.size() == 1);
      CHECK(rows[0].at("value") == c.current);
    }
  }
}

TEST_CASE("labwatch ingest reads an HL7 date NN/NN/YYYY in the source's date-order",
          "[daemon][realworld][dates]") {
  const std::string text =
      "MSH|^~\\&|LAB|DOX|CLINIC|C1|20250405120000+0100||ORU^R01|CTL1|P|2.5.1\r"
      "PID|1||D1^^^DOX^MR||DOE^DA||19700101|F\r"
      "OBR|1|PL1|D1|FER^FERRITIN^L|||03/04/2025 08:30\r"
      "OBX|1|NM|2276-4^Ferritin^LN||80|ng/mL|15-150||||F\r";
  const auto config = [](const std::string& order) {
    return "<labwatch>\n  <sources>\n    <source facility=\"DOX\" authority=\"DOX\" "
           "timezone=\"Europe/London\" files=\"dox_*\"" +
           (order.empty() ? std::string() : " date-order=\"" + order + "\"") +
           "/>\n  </sources>\n</labwatch>\n";
  };
  struct Case {
    std::string order;
    std::string collected_at;  // "" when refused
  };
  for (const Case& c :
       {Case{"dmy", "2025-04-03T07:30:00Z"}, Case{"mdy", "2025-03-04T08:30:00Z"}, Case{"", ""}}) {
    INFO("date-order '" << c.order << "'");
    const Workspace work("dates");
    static_cast<void>(work.write("labwatch.xml", config(c.order)));
    const Run ingest = work.run("ingest", {work.write("dox_1.hl7", text)});
    INFO(ingest.err);
    const std::vector<CsvRecord> rows =
        read_csv_records(work.run("export", {"--format", "csv"}).out);
    if (c.collected_at.empty()) {
      CHECK(ingest.status == 2);
      CHECK(ingest.err.find("ambiguous_date") != std::string::npos);
      CHECK(rows.empty());
    } else {
      CHECK(ingest.status == 0);
      REQUIRE(rows.size() == 1);
      CHECK(rows[0].at("collected_at") == c.collected_at);
    }
  }
}

TEST_CASE("labwatch ingest skips a coded not-performed value instead of refusing the file",
          "[daemon][realworld]") {
  const Workspace work("coded-tnp");
  const std::string file =
      work.write("quest_tnp.hl7",
                 "MSH|^~\\&|LAB|QST|CLINIC|C1|202503150900-0500||ORU^R01|CTL9|P|2.5.1\r"
                 "PID|1||WB^^^QST^MR||DOE^WB||19700101|F\r"
                 "OBR|1|PL9|W9|FER^FERRITIN^L|||202503150800-0500\r"
                 "OBX|1|NM|1989-3^Vitamin D 25-OH D3^LN||38|ng/mL|30-100||||F\r"
                 "OBX|2|CWE|2276-4^Ferritin^LN||TNP^Test not performed^L||||||F\r");
  const Run ingest = work.run("ingest", {file});
  INFO(ingest.err);
  CHECK(ingest.status == 0);
  CHECK(ingest.err.find("1 skipped, 0 refused") != std::string::npos);
  const Run trend = work.run("trend", {"--patient", "QST|WB", "--analyte", "ferritin"});
  CHECK(trend.out.find("not performed") != std::string::npos);
}
