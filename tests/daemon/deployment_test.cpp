// SPDX-License-Identifier: Apache-2.0
// Deployment files: the systemd unit passes systemd-analyze, the shipped configs load.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <charconv>
#include <string>
#include <vector>

#include "support/daemon_harness.hpp"

namespace {

using namespace labwatch::test;

fs::path unit_path() { return fs::path(LABWATCH_SOURCE_DIR) / "systemd" / "labwatch.service"; }

std::optional<std::string> find_systemd_analyze() {
  for (const char* path : {"/usr/bin/systemd-analyze", "/bin/systemd-analyze"}) {
    if (::access(path, X_OK) == 0) {
      return std::string(path);
    }
  }
  return std::nullopt;
}

// The unit with ExecStart pointing at the binary just built (verify checks that it exists).
fs::path unit_for_this_build(const TempDir& dir) {
  std::string unit = read_file(unit_path());
  const std::string installed = "ExecStart=/usr/bin/labwatch ";
  const std::size_t at = unit.find(installed);
  REQUIRE(at != std::string::npos);
  unit.replace(at, installed.size(), std::string("ExecStart=") + LABWATCH_BINARY + " ");
  fs::path path = dir.path() / "labwatch.service";
  write_file(path, unit);
  return path;
}

}  // namespace

TEST_CASE("labwatch.service passes systemd-analyze verify", "[daemon][systemd]") {
  const auto analyze = find_systemd_analyze();
  if (!analyze) {
    WARN("systemd-analyze is not installed; unit not verified");
    return;
  }
  const TempDir dir;
  const CommandResult r = run_program({*analyze, "verify", unit_for_this_build(dir).string()});
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.err.empty());
}

TEST_CASE("labwatch.service has a systemd-analyze exposure of at most 2.0", "[daemon][systemd]") {
  const auto analyze = find_systemd_analyze();
  if (!analyze) {
    WARN("systemd-analyze is not installed; exposure not measured");
    return;
  }
  const CommandResult r =
      run_program({*analyze, "security", "--offline=true", unit_path().string()});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  // "→ Overall exposure level for labwatch.service: 1.1 OK"
  const std::string marker = "Overall exposure level for labwatch.service: ";
  const std::size_t at = r.out.find(marker);
  REQUIRE(at != std::string::npos);
  const char* first = r.out.data() + at + marker.size();
  double exposure = 99;
  const auto [end, ec] = std::from_chars(first, r.out.data() + r.out.size(), exposure);
  REQUIRE(ec == std::errc());
  CHECK(end != first);
  CHECK(exposure <= 2.0);

  const std::string unit = read_file(unit_path());
  for (const char* line :
       {"Type=notify\n", "NotifyAccess=main\n", "WatchdogSec=30\n", "User=labwatch\n",
        "StateDirectory=labwatch\n", "UMask=0077\n", "LimitCORE=0\n",
        "ExecReload=kill -s HUP $MAINPID\n", "Restart=on-failure\n",
        "RestartPreventExitStatus=78\n", "ProtectSystem=strict\n",
        "ReadWritePaths=/var/lib/labwatch\n", "NoNewPrivileges=yes\n"}) {
    CHECK(unit.find(line) != std::string::npos);
  }
}

TEST_CASE("labwatch.example.xml is a valid config", "[daemon][config]") {
  const fs::path example = fs::path(LABWATCH_SOURCE_DIR) / "config" / "labwatch.example.xml";
  const CommandResult r = run_labwatch({"check-config", "--config", example.string()});
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("inbox: /var/lib/labwatch/inbox") != std::string::npos);
  CHECK(r.out.find("database: /var/lib/labwatch/labwatch.db") != std::string::npos);
}

TEST_CASE("the packaged first labwatch.xml is a valid config", "[daemon][config]") {
  const fs::path first = fs::path(LABWATCH_SOURCE_DIR) / "packaging" / "labwatch.xml";
  const CommandResult r = run_labwatch({"check-config", "--config", first.string()});
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("failed: /var/lib/labwatch/failed") != std::string::npos);
}

TEST_CASE("the manual page and the bash completion know every command of labwatch --help",
          "[daemon][packaging]") {
  const CommandResult help = run_labwatch({"--help"});
  REQUIRE(help.exit_code == 0);
  std::vector<std::string> commands;
  const std::size_t list = help.out.find("commands:\n");
  REQUIRE(list != std::string::npos);
  for (std::size_t at = list + 10; at + 2 < help.out.size() && help.out.compare(at, 2, "  ") == 0;
       at = help.out.find('\n', at) + 1) {
    const std::size_t end = help.out.find(' ', at + 2);
    commands.push_back(help.out.substr(at + 2, end - at - 2));
  }
  REQUIRE(commands.size() >= 10);
  const fs::path packaging = fs::path(LABWATCH_SOURCE_DIR) / "packaging";
  const std::string page = read_file(packaging / "man" / "labwatch.1");
  const std::string completion = read_file(packaging / "bash-completion" / "labwatch");
  // The words of its `local commands="..."` line, each between spaces.
  const std::size_t words_at = completion.find("commands=\"");
  REQUIRE(words_at != std::string::npos);
  const std::size_t words_end = completion.find('"', words_at + 10);
  const std::string words = " " + completion.substr(words_at + 10, words_end - words_at - 10) + " ";
  for (const std::string& command : commands) {
    INFO(command);
    std::string roff = command;
    for (std::size_t dash = roff.find('-'); dash != std::string::npos;
         dash = roff.find('-', dash + 2)) {
      roff.replace(dash, 1, "\\-");
    }
    CHECK((page.find("\n.B " + roff) != std::string::npos ||
           page.find("\n.BI \"" + roff + " ") != std::string::npos));
    CHECK(words.find(" " + command + " ") != std::string::npos);
  }
  // The pages render without a warning where man(1) is installed.
  if (::access("/usr/bin/man", X_OK) == 0) {
    for (const char* name : {"labwatch.1", "labwatch.xml.5"}) {
      const CommandResult r =
          run_program({"/usr/bin/env", "LC_ALL=C.UTF-8", "/usr/bin/man", "--warnings", "-l",
                       (packaging / "man" / name).string()});
      INFO(name << ": " << r.err);
      CHECK(r.exit_code == 0);
      CHECK(r.err.empty());
    }
  }
}
