// SPDX-License-Identifier: Apache-2.0
// `labwatch silence` on the real binary and a real SQLite file: a silenced alert is recorded and
// not mailed; a value that crosses into another state, or one after the silence ended, is mailed.
#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <chrono>
#include <ctime>
#include <sstream>
#include <string>
#include <vector>

#include "support/daemon_harness.hpp"

namespace {

using labwatch::test::CommandResult;
using labwatch::test::Layout;
using labwatch::test::TempDir;

// Mail goes to one default recipient; nothing is sent (`ingest` only queues).
constexpr const char* kMail =
    "  <mail smtp=\"smtp://127.0.0.1:9\" from=\"labwatch@example.org\" "
    "default-recipient=\"doc@example.org\"/>\n";

// A WCE export with one ferritin value of patient 99001 drawn `hours_ago` hours ago (lab range
// 15-150 ng/mL; the target is ge:50, ideally gt:70).
std::string ferritin_csv(const std::string& value, int hours_ago) {
  const auto drawn = std::chrono::system_clock::now() - std::chrono::hours(hours_ago);
  const std::time_t t = std::chrono::system_clock::to_time_t(drawn);
  std::tm utc{};
  ::gmtime_r(&t, &utc);
  std::array<char, 32> when{};
  std::strftime(when.data(), when.size(), "%Y-%m-%dT%H:%M:%S+00:00", &utc);
  return "patient_id,last_name,first_name,dob,sex,test_name,loinc,value,unit,ref_range,"
         "collected_at\n"
         "99001,Quiet,Nora,1980-01-02,F,Ferritin,2276-4," +
         value + ",ng/mL,15-150," + std::string(when.data()) + "\n";
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    out.push_back(line);
  }
  return out;
}

// One alert as `alerts --format csv` lists it: the columns a test looks at.
struct Listed {
  std::string value;
  std::string rule;
  std::string state;
  std::string note;
};

class Site {
 public:
  Site() : layout_(TempDir::fast_base()) { layout_.write_config(150, kMail); }

  [[nodiscard]] CommandResult run(std::vector<std::string> args,
                                  const std::vector<std::string>& env = {"SUDO_USER=drwho",
                                                                         "USER=root"}) const {
    args.insert(args.begin() + 1, {"--config", layout_.config().string()});
    return labwatch::test::run_program_with(labwatch::test::labwatch_argv(args), env);
  }

  // Ingests one ferritin value; `mail` false adds --no-mail.
  void ingest(const std::string& value, int hours_ago, bool mail = true) {
    const auto file = layout_.stage() / ("d1_wce_" + std::to_string(++files_) + ".csv");
    labwatch::test::write_file(file, ferritin_csv(value, hours_ago));
    std::vector<std::string> args = {"ingest"};
    if (!mail) {
      args.emplace_back("--no-mail");
    }
    args.push_back(file.string());
    const CommandResult r = run(args);
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
  }

  // The target alerts (not trend ones) of the result of value `value`.
  [[nodiscard]] std::vector<Listed> alerts_of(const std::string& value) const {
    std::vector<Listed> out;
    const CommandResult r = run({"alerts", "--format", "csv"});
    REQUIRE(r.exit_code == 0);
    const std::vector<std::string> rows = split_lines(r.out);
    REQUIRE_FALSE(rows.empty());
    CHECK(rows.front().ends_with(",comparator,note"));
    for (std::size_t i = 1; i < rows.size(); ++i) {
      std::vector<std::string> cells;
      std::istringstream in(rows[i]);
      std::string cell;
      while (std::getline(in, cell, ',')) {
        cells.push_back(cell);
      }
      if (cells.size() < 12) {
        continue;
      }
      const std::string note = cells.size() > 12 ? cells[12] : "";
      if (cells[3] == value && !cells[6].starts_with("trend:")) {
        out.push_back({cells[3], cells[6], cells[7], note});
      }
    }
    return out;
  }

  // The outbox items not yet sent (header dropped).
  [[nodiscard]] std::size_t outbox_items() const {
    const CommandResult r = run({"outbox"});
    REQUIRE(r.exit_code == 0);
    return split_lines(r.out).size() - 1;
  }

  [[nodiscard]] std::string until_in_days(int days) const {
    const auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now() +
                                                        std::chrono::hours(24 * days));
    std::tm utc{};
    ::gmtime_r(&t, &utc);
    std::array<char, 16> day{};
    std::strftime(day.data(), day.size(), "%Y-%m-%d", &utc);
    return day.data();
  }

  [[nodiscard]] const Layout& layout() const { return layout_; }

 private:
  Layout layout_;
  int files_ = 0;
};

}  // namespace

TEST_CASE("labwatch silence records a new low draw unmailed and mails one that crossed",
          "[daemon][cli][silence]") {
  Site site;
  site.ingest("40", 300, false);  // below the minimum of 50: known, not mailed (--no-mail)
  REQUIRE(site.alerts_of("40").size() == 1);
  CHECK(site.alerts_of("40")[0].state == "unmailed");
  const std::string until = site.until_in_days(60);

  const CommandResult set = site.run({"silence", "--patient", "WCE|99001", "--analyte", "FERRITIN",
                                      "--until", until, "--reason", "on iron, recheck in 8 weeks"});
  INFO(set.err);
  REQUIRE(set.exit_code == 0);
  CHECK(set.out == "silence 1: no mail about ferritin of person 1 until " + until + "\n");

  const CommandResult listed = site.run({"silence", "--list"});
  REQUIRE(listed.exit_code == 0);
  const std::vector<std::string> rows = split_lines(listed.out);
  REQUIRE(rows.size() == 2);
  CHECK(rows[0] == "id,person_id,analyte,until,who,when,reason,status");
  CHECK(rows[1].starts_with("1,1,ferritin," + until + ",drwho,"));
  // The reason holds a comma: quoted as CSV quotes it.
  CHECK(rows[1].ends_with(",\"on iron, recheck in 8 weeks\",active"));

  SECTION("a new low draw: alert recorded as silenced, no outbox item") {
    site.ingest("38", 200);
    const auto alerts = site.alerts_of("38");
    REQUIRE(alerts.size() == 1);
    CHECK(alerts[0].rule == "ge:50");
    CHECK(alerts[0].state == "silenced");
    CHECK(alerts[0].note == "silenced until " + until);
    CHECK(site.outbox_items() == 0);
    CHECK(site.run({"alerts", "--state", "silenced", "--format", "csv"}).out.find(",38,") !=
          std::string::npos);

    // The report shows the silence under the analyte's heading.
    const CommandResult report = site.run({"report", "--patient", "1", "--out", "-"});
    REQUIRE(report.exit_code == 0);
    CHECK(report.out.find("<p class=\"silence\">Mail silenced until " + until +
                          " by drwho (set ") != std::string::npos);
    CHECK(report.out.find("on iron, recheck in 8 weeks</p>") != std::string::npos);
  }
  SECTION("a value that crossed to the other side (above the lab's range) is mailed") {
    site.ingest("400", 200);
    const auto alerts = site.alerts_of("400");
    REQUIRE(alerts.size() == 1);
    CHECK(alerts[0].rule == "lab_range");
    CHECK(alerts[0].state == "pending");
    CHECK(alerts[0].note.empty());
    CHECK(site.outbox_items() == 1);
  }
  SECTION("after --expire, a new low draw is mailed") {
    const CommandResult expired = site.run({"silence", "--expire", "1"});
    CHECK(expired.exit_code == 0);
    CHECK(expired.out == "silence 1 expired: alerts it covered are mailed again\n");
    CHECK(split_lines(site.run({"silence", "--list"}).out)[1].find(",expired ") !=
          std::string::npos);
    CHECK(site.run({"silence", "--expire", "1"}).exit_code == 1);  // already ended
    CHECK(site.run({"silence", "--expire", "7"}).exit_code == 1);  // no such silence
    site.ingest("37", 200);
    const auto alerts = site.alerts_of("37");
    REQUIRE(alerts.size() == 1);
    CHECK(alerts[0].state == "pending");
    CHECK(site.outbox_items() == 1);
  }
}

TEST_CASE("labwatch silence set for an ideal-tier miss still mails a hard-tier one",
          "[daemon][cli][silence]") {
  Site site;
  site.ingest("60", 300, false);  // above the minimum, below the ideal of 70
  REQUIRE(site.run({"silence", "--patient", "1", "--analyte", "ferritin", "--until",
                    site.until_in_days(30), "--reason", "mild, diet advised"})
              .exit_code == 0);
  site.ingest("65", 250);  // the same state: silenced
  REQUIRE(site.alerts_of("65").size() == 1);
  CHECK(site.alerts_of("65")[0].state == "silenced");
  CHECK(site.outbox_items() == 0);
  site.ingest("42", 200);  // below the minimum now: a hard-tier miss is news
  REQUIRE(site.alerts_of("42").size() == 1);
  CHECK(site.alerts_of("42")[0].rule == "ge:50");
  CHECK(site.alerts_of("42")[0].state == "pending");
  CHECK(site.outbox_items() == 1);
}

TEST_CASE("labwatch silence refuses bad input with a usage error", "[daemon][cli][silence]") {
  Site site;
  site.ingest("40", 300, false);
  const std::string until = site.until_in_days(10);
  struct Case {
    std::vector<std::string> args;
    int exit_code;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{"silence", "--patient", "WCE|00000", "--analyte", "ferritin", "--until", until, "--reason",
        "x"},
       64,
       "no patient 'WCE|00000'"},
      {{"silence", "--patient", "1", "--analyte", "feritin", "--until", until, "--reason", "x"},
       64,
       "unknown analyte 'feritin' (closest: ferritin)"},
      {{"silence", "--patient", "1", "--analyte", "ferritin", "--until", "2027-02-30", "--reason",
        "x"},
       64,
       "--until takes a date, YYYY-MM-DD"},
      {{"silence", "--patient", "1", "--analyte", "ferritin", "--until", "next week", "--reason",
        "x"},
       64,
       "--until takes a date, YYYY-MM-DD"},
      {{"silence", "--patient", "1", "--analyte", "ferritin", "--until", "2001-01-01", "--reason",
        "x"},
       64,
       "--until 2001-01-01 is not in the future"},
      {{"silence", "--patient", "1", "--analyte", "ferritin", "--until", until},
       64,
       "--reason TEXT is required"},
      {{"silence", "--patient", "1", "--analyte", "ferritin", "--until", until, "--reason", "  "},
       64,
       "--reason TEXT is required"},
      {{"silence", "--patient", "1", "--until", until, "--reason", "x"},
       64,
       "a silence needs --patient ID, --analyte KEY"},
      {{"silence"}, 64, "give either"},
      {{"silence", "--list", "--expire", "1"}, 64, "give either"},
      {{"silence", "--expire", "x"}, 64, "--expire takes a silence id"},
  };
  for (const Case& c : cases) {
    const CommandResult r = site.run(c.args);
    INFO(r.err);
    CHECK(r.exit_code == c.exit_code);
    CHECK(r.err.find(c.says) != std::string::npos);
  }
  CHECK(split_lines(site.run({"silence", "--list"}).out).size() == 1);  // nothing recorded
}
