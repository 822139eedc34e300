// SPDX-License-Identifier: Apache-2.0
// The progress line of `ingest` and `reprocess`: on a terminal only, never in logs or pipes.
#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "ingest/progress_line.hpp"
#include "support/daemon_harness.hpp"
#include "support/hl7_messages.hpp"

namespace {

namespace fs = std::filesystem;
using labwatch::test::CommandResult;
using labwatch::test::Layout;
using labwatch::test::TempDir;

// Runs labwatch with its stdin, stdout and stderr on a new pseudo-terminal (Debian's python3 pty
// module) and returns what the terminal showed, as out, with labwatch's exit code.
CommandResult run_on_terminal(const std::vector<std::string>& args) {
  static const std::string kScript =
      "import os, pty, sys\n"
      "pid, fd = pty.fork()\n"
      "if pid == 0:\n"
      "    os.execv(sys.argv[1], sys.argv[1:])\n"
      "out = b''\n"
      "while True:\n"
      "    try:\n"
      "        data = os.read(fd, 65536)\n"
      "    except OSError:\n"
      "        break\n"
      "    if not data:\n"
      "        break\n"
      "    out += data\n"
      "_, status = os.waitpid(pid, 0)\n"
      "sys.stdout.buffer.write(out)\n"
      "sys.exit(os.waitstatus_to_exitcode(status))\n";
  std::vector<std::string> argv = {"/usr/bin/python3", "-c", kScript};
  for (const std::string& a : labwatch::test::labwatch_argv(args)) {
    argv.push_back(a);
  }
  return labwatch::test::run_program(argv);
}

std::vector<std::string> ingest_args(const Layout& layout) {
  std::vector<std::string> args = {"ingest", "--config", layout.config().string()};
  for (int i = 1; i <= 3; ++i) {
    const std::string n = std::to_string(i);
    const fs::path file = layout.stage() / ("gen_progress_" + n + ".hl7");
    labwatch::test::write_file(file, labwatch::test::oru("P" + n, "M" + n, "O" + n, "80", "1.5"));
    args.push_back(file.string());
  }
  return args;
}

}  // namespace

TEST_CASE("ProgressLine::text says files, messages, results, rate and time left",
          "[daemon][cli][progress]") {
  using labwatch::daemon::ProgressLine;
  CHECK(ProgressLine::text(2, 3, 1200, 3400, 2.0, 50, 100) ==
        "file 2 of 3, 1200 messages, 3400 results, 1700 results/s, 0:02 left");
  CHECK(ProgressLine::text(1, 1, 1, 1, 0.5, 1, 7201) ==
        "file 1 of 1, 1 message, 1 result, 2 results/s, 1:00:00 left");
  // Nothing read yet: no rate, no time left to tell.
  CHECK(ProgressLine::text(1, 4, 0, 0, 0.0, 0, 100) == "file 1 of 4, 0 messages, 0 results");
}

TEST_CASE("labwatch ingest prints no progress line when stderr is no terminal",
          "[daemon][cli][progress]") {
  const Layout layout(TempDir::fast_base());
  const CommandResult r = labwatch::test::run_labwatch(ingest_args(layout));
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.err.find('\r') == std::string::npos);
  CHECK(r.err.find('\x1b') == std::string::npos);
  CHECK(r.err.find("file 1 of 3") == std::string::npos);
  // Only the log lines: one per file and the total.
  CHECK(r.err ==
        "labwatch: gen_progress_1.hl7: accepted, 2 results stored, 0 duplicates, 0 skipped, 0 "
        "refused\n"
        "labwatch: gen_progress_2.hl7: accepted, 2 results stored, 0 duplicates, 0 skipped, 0 "
        "refused\n"
        "labwatch: gen_progress_3.hl7: accepted, 2 results stored, 0 duplicates, 0 skipped, 0 "
        "refused\n"
        "labwatch: 3 files, 6 results stored\n");
}

TEST_CASE("labwatch ingest shows a progress line on a terminal and wipes it",
          "[daemon][cli][progress]") {
  const Layout layout(TempDir::fast_base());
  const CommandResult r = run_on_terminal(ingest_args(layout));
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  // Drawn in place (\r, erase to the end of the line) at the first file at least, then wiped
  // before each log line.
  CHECK(r.out.find("\rfile 1 of 3, 1 message, 2 results") != std::string::npos);
  CHECK(r.out.find("\r\x1b[K") != std::string::npos);
  CHECK(r.out.find("labwatch: 3 files, 6 results stored") != std::string::npos);
}

TEST_CASE("labwatch reprocess shows the progress line on a terminal only",
          "[daemon][cli][progress]") {
  const Layout layout(TempDir::fast_base());
  std::vector<std::string> args = ingest_args(layout);
  REQUIRE(labwatch::test::run_labwatch(args).exit_code == 0);
  args[0] = "reprocess";
  const CommandResult piped = labwatch::test::run_labwatch(args);
  INFO(piped.err);
  CHECK(piped.exit_code == 0);
  CHECK(piped.err.find('\r') == std::string::npos);
  CHECK(piped.err.find("file 1 of 3") == std::string::npos);

  const CommandResult shown = run_on_terminal(args);
  INFO(shown.out);
  CHECK(shown.exit_code == 0);
  CHECK(shown.out.find("\rfile 1 of 3, 1 message, 2 results") != std::string::npos);
  CHECK(shown.out.find("3 files reprocessed, 3 accepted") != std::string::npos);
}
