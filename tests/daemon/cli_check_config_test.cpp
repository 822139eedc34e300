// SPDX-License-Identifier: Apache-2.0
// `labwatch check-config`: the validation `run` applies, what a config sets, and warnings.
#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <system_error>

#include "daemon/config_check.hpp"
#include "support/daemon_harness.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using labwatch::test::CommandResult;
using labwatch::test::run_labwatch;
using labwatch::test::TempDir;

fs::path write_config(const TempDir& dir, const std::string& body) {
  const fs::path path = dir.path() / "labwatch.xml";
  labwatch::test::write_file(path, "<labwatch>\n" + body + "</labwatch>\n");
  return path;
}

const std::string kSource =
    "  <sources>\n"
    "    <source facility=\"QDX\" authority=\"QDX\" timezone=\"America/New_York\" "
    "files=\"a_qdx*\"/>\n"
    "  </sources>\n";

}  // namespace

TEST_CASE("labwatch check-config exits 78 on the layouts `labwatch run` refuses", "[daemon][cli]") {
  const TempDir dir;
  std::string paths;
  std::string why;
  SECTION("the inbox is processed/") {
    paths = "<paths inbox=\"box\" processed=\"box\" failed=\"failed\"/>";
    why = "must differ from processed/ and failed/";
  }
  SECTION("processed/ is failed/") {
    paths = "<paths inbox=\"inbox\" processed=\"done\" failed=\"done\"/>";
    why = "must be different directories";
  }
  SECTION("the database lies in the inbox") {
    paths = "<paths inbox=\"inbox\" database=\"inbox/labwatch.db\"/>";
    why = "must not be inside the inbox";
    fs::create_directory(dir.path() / "inbox");
  }
  const fs::path config = write_config(dir, "  " + paths + "\n" + kSource);
  const std::size_t entries = labwatch::test::count_entries(dir.path());

  const CommandResult checked = run_labwatch({"check-config", "--config", config.string()});
  INFO(checked.out << checked.err);
  CHECK(checked.exit_code == 78);
  CHECK(checked.err.find(why) != std::string::npos);
  CHECK(checked.out.find("ok") == std::string::npos);
  // check-config created nothing.
  CHECK(labwatch::test::count_entries(dir.path()) == entries);

  const CommandResult run = run_labwatch({"run", "--config", config.string()}, 30s);
  INFO(run.err);
  CHECK(run.exit_code == 78);
  CHECK(run.err.find(why) != std::string::npos);
}

TEST_CASE("labwatch check-config prints sources, targets, mail and routing", "[daemon][cli]") {
  const TempDir dir;
  const fs::path password = dir.path() / "smtp-password";
  labwatch::test::write_file(password, "secret\n");
  const fs::path config = write_config(
      dir, kSource + "  <mail smtp=\"smtp://127.0.0.1:2525\" username=\"lw\" password-file=\"" +
               password.string() +
               "\" default-recipient=\"desk@clinic.example.org\"/>\n"
               "  <practitioners>\n"
               "    <practitioner id=\"dr-lee\" name=\"Dr Lee\" email=\"lee@clinic.example.org\" "
               "phi=\"full\" facilities=\"QDX\"/>\n"
               "  </practitioners>\n");
  const CommandResult r = run_labwatch({"check-config", "--config", config.string()});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("config: " + config.string() + "\n") != std::string::npos);
  CHECK(r.out.find("sources: 1\n  QDX: authority QDX, timezone America/New_York, files a_qdx*\n") !=
        std::string::npos);
  CHECK(r.out.find("  ferritin: ") != std::string::npos);
  CHECK(r.out.find("mail: on, relay smtp://127.0.0.1:2525") != std::string::npos);
  CHECK(r.out.find("routing: 1 practitioners, default desk@clinic.example.org\n") !=
        std::string::npos);
  CHECK(r.out.find("  dr-lee <lee@clinic.example.org>, phi full, facilities QDX\n") !=
        std::string::npos);
  CHECK(r.out.find("warning:") == std::string::npos);
  CHECK(r.out.ends_with("ok\n"));
}

TEST_CASE("labwatch check-config warns of what may not be meant, and still exits 0",
          "[daemon][cli]") {
  const TempDir dir;
  const fs::path config = write_config(
      dir, "  <mail smtp=\"smtp://127.0.0.1:0\" username=\"lw\" password-file=\"" +
               (dir.path() / "missing-password").string() +
               "\"/>\n"
               "  <practitioners>\n"
               "    <practitioner id=\"dr-lee\" name=\"Dr Lee\" email=\"lee@clinic.example.org\" "
               "facilities=\"ZZZ\"/>\n"
               "  </practitioners>\n");
  const CommandResult r = run_labwatch({"check-config", "--config", config.string()});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("warning: no <source>") != std::string::npos);
  CHECK(r.out.find("warning: practitioner 'dr-lee' is routed facility 'ZZZ', which no <source> "
                   "has") != std::string::npos);
  CHECK(r.out.find("warning: password-file " + (dir.path() / "missing-password").string() +
                   " is missing") != std::string::npos);
  CHECK(r.out.find("warning: the SMTP port of smtp://127.0.0.1:0 is out of range") !=
        std::string::npos);
  CHECK(r.out.ends_with("ok (4 warnings)\n"));
}

TEST_CASE("present_config means defaults only when no config is there", "[daemon][config]") {
  const TempDir dir;
  const fs::path file = dir.path() / "labwatch.xml";
  labwatch::test::write_file(file, "<labwatch/>");
  CHECK(labwatch::daemon::present_config(file.string()) == file.string());
  CHECK_FALSE(labwatch::daemon::present_config((dir.path() / "none.xml").string()));
  CHECK_FALSE(labwatch::daemon::present_config((file / "below-a-file.xml").string()));
  // A path that cannot be looked at may hide a config: an error, never the defaults.
  fs::create_symlink(dir.path() / "loop", dir.path() / "loop");
  CHECK_THROWS_AS(labwatch::daemon::present_config((dir.path() / "loop").string()),
                  std::system_error);
}
