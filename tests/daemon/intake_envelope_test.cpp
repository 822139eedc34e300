// SPDX-License-Identifier: Apache-2.0
// Tests of the envelope through the real binary: init's default time zone, CSV charsets and MSH-18
// labels outside table 0211.
#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "support/daemon_harness.hpp"

namespace {

namespace fs = std::filesystem;
using labwatch::test::CommandResult;
using labwatch::test::read_file;
using labwatch::test::run_program_with;
using labwatch::test::TempDir;
using labwatch::test::write_file;

// An ORU^R01 whose times carry no UTC offset, from a facility that no <source> names.
const std::string kNaiveHl7 =
    "MSH|^~\\&|LIS|NEWLAB|EHR|CLINIC|202503170900||ORU^R01|N1|P|2.5.1\r"
    "PID|1||N123^^^NEWLAB^MR||NAIVE^NORA||19800101|F\r"
    "OBR|1||A1^NEWLAB|x|||202503150830\r"
    "OBX|1|NM|2276-4^FERRITIN^LN||80|ng/mL|16-232||||F\n";

CommandResult labwatch_with(const std::vector<std::string>& args,
                            const std::vector<std::string>& env = {}) {
  return run_program_with(labwatch::test::labwatch_argv(args), env);
}

}  // namespace

TEST_CASE("labwatch init writes the machine's time zone, and naive times are read in it",
          "[daemon][cli][init]") {
  const TempDir tmp;
  const fs::path dir = tmp.path() / "site";
  const CommandResult init = labwatch_with({"init", dir.string()}, {"TZ=America/Chicago"});
  REQUIRE(init.exit_code == 0);
  CHECK(init.out.find("America/Chicago (from $TZ)") != std::string::npos);
  const std::string xml = read_file(dir / "labwatch.xml");
  CHECK(xml.find("<intake default-timezone=\"America/Chicago\"/>") != std::string::npos);

  const fs::path file = tmp.path() / "newlab_1.hl7";
  write_file(file, kNaiveHl7);
  const std::string config = (dir / "labwatch.xml").string();
  const CommandResult ingest = labwatch_with({"ingest", "--config", config, file.string()});
  INFO(ingest.err);
  CHECK(ingest.exit_code == 0);
  const CommandResult exported = labwatch_with({"export", "--config", config});
  REQUIRE(exported.exit_code == 0);
  // 08:30 in Chicago on 15 March 2025 (CDT, UTC-5).
  CHECK(exported.out.find("NEWLAB|N123") != std::string::npos);
  CHECK(exported.out.find("2025-03-15T13:30:00Z") != std::string::npos);
}

TEST_CASE(
    "labwatch init writes no default time zone for a UTC or unknown one, and naive times "
    "stay refused",
    "[daemon][cli][init]") {
  for (const std::string tz : {"TZ=Etc/UTC", "TZ=:UTC", "TZ=Mars/Olympus"}) {
    CAPTURE(tz);
    const TempDir tmp;
    const fs::path dir = tmp.path() / "site";
    const CommandResult init = labwatch_with({"init", dir.string()}, {tz});
    REQUIRE(init.exit_code == 0);
    CHECK(read_file(dir / "labwatch.xml").find("<intake default-timezone=") == std::string::npos);
    CHECK(init.out.find("no default time zone") != std::string::npos);

    const fs::path file = tmp.path() / "newlab_1.hl7";
    write_file(file, kNaiveHl7);
    const CommandResult ingest = labwatch_with(
        {"ingest", "--config", (dir / "labwatch.xml").string(), file.string()}, {"TZ=Etc/UTC"});
    CHECK(ingest.exit_code == 2);
    CHECK(ingest.err.find("unknown_timezone") != std::string::npos);
  }
}

TEST_CASE("labwatch ingest stores a Windows-1252 CSV as UTF-8", "[daemon][cli][charset]") {
  const TempDir tmp;
  const fs::path config = tmp.path() / "labwatch.xml";
  write_file(config,
             "<labwatch><paths database=\"lw.db\"/><sources>"
             "<source facility=\"WCE\" timezone=\"America/Denver\" files=\"wce*\"/>"
             "<source facility=\"LAT\" timezone=\"Europe/Berlin\" files=\"lat*\" "
             "charset=\"iso-8859-15\" date-order=\"dmy\"/>"
             "</sources></labwatch>");
  const fs::path detected = tmp.path() / "wce_1.csv";
  write_file(detected,
             "patient_id,last_name,first_name,dob,sex,test_name,loinc,value,unit,collected_at\n"
             "W1,M\xFCller,J\xE9r\xF4me,1970-01-02,M,Ferritin,2276-4,80,ng/mL,"
             "2025-03-15 08:30\n");
  const fs::path declared = tmp.path() / "lat_1.csv";
  write_file(declared,
             "patient_id,last_name,first_name,dob,sex,test_name,loinc,value,unit,collected_at\n"
             "L1,\xA6"
             "egrt,Ana,03/04/1971,F,Ferritin,2276-4,81,ng/mL,03/04/2025 08:30\n");
  const CommandResult ingest =
      labwatch_with({"ingest", "--config", config.string(), detected.string(), declared.string()});
  INFO(ingest.err);
  CHECK(ingest.exit_code == 0);
  const CommandResult patients = labwatch_with({"patients", "--config", config.string()});
  REQUIRE(patients.exit_code == 0);
  CHECK(patients.out.find("M\xC3\xBCller,J\xC3\xA9r\xC3\xB4me,1970-01-02") != std::string::npos);
  // 8859-15 0xA6 is Š; the date order of the source reads 03/04 as 3 April.
  CHECK(patients.out.find("\xC5\xA0"
                          "egrt,Ana,1971-04-03") != std::string::npos);
  const CommandResult exported = labwatch_with({"export", "--config", config.string()});
  CHECK(exported.out.find("2025-04-03T06:30:00Z") != std::string::npos);  // CEST, UTC+2
}

TEST_CASE("labwatch ingest accepts an MSH-18 label outside table 0211 with a warning",
          "[daemon][cli][charset]") {
  const TempDir tmp;
  const fs::path config = tmp.path() / "labwatch.xml";
  write_file(config,
             "<labwatch><paths database=\"lw.db\"/><sources>"
             "<source facility=\"NEWLAB\" timezone=\"America/Chicago\"/></sources></labwatch>");
  std::string hl7 = kNaiveHl7;
  hl7.replace(hl7.find("2.5.1\r"), 6, "2.5.1||||||WINDOWS-LATIN\r");
  hl7.replace(hl7.find("NAIVE"), 5, "N\xC4IVE");
  const fs::path file = tmp.path() / "odd_charset.hl7";
  write_file(file, hl7);
  const CommandResult ingest =
      labwatch_with({"ingest", "--config", config.string(), file.string()});
  CHECK(ingest.exit_code == 0);
  CHECK(ingest.err.find("odd_charset.hl7: message 1, line 1, segment 1 MSH, field 18: "
                        "unknown_charset") != std::string::npos);
  CHECK(ingest.err.find("N\xC4IVE") == std::string::npos);  // no patient data in the log
  const CommandResult patients = labwatch_with({"patients", "--config", config.string()});
  CHECK(patients.out.find("N\xC3\x84IVE") != std::string::npos);
}
