// SPDX-License-Identifier: Apache-2.0
// Tests of `labwatch ingest` when no reader thread can be started for a large file.
#include <SQLiteCpp/SQLiteCpp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "support/daemon_harness.hpp"
#include "support/hl7_messages.hpp"

namespace {

namespace fs = std::filesystem;
using labwatch::test::CommandResult;
using labwatch::test::run_labwatch;
using labwatch::test::run_program;
using labwatch::test::TempDir;

// `argv` as the user nobody when run as root (root is exempt from RLIMIT_NPROC), with a limit of
// zero processes: the process itself runs, but can start no thread. Under ASan, LeakSanitizer's
// check at exit needs a thread of its own: it is left out there.
std::vector<std::string> without_threads(const std::vector<std::string>& argv) {
  std::vector<std::string> out;
  if (::geteuid() == 0) {
    out = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"};
  }
  const char* asan = std::getenv("ASAN_OPTIONS");  // NOLINT(concurrency-mt-unsafe): one thread
  out.insert(out.end(), {"/usr/bin/env", std::string("ASAN_OPTIONS=") +
                                             (asan != nullptr ? asan : "") + ":detect_leaks=0"});
  out.insert(out.end(), {"/usr/bin/prlimit", "--nproc=0", "--"});
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

// A file of `messages` ORU^R01 messages of QDX, two results each: more than 1 MiB for 5,000.
std::string large_oru_file(int messages) {
  std::string bytes;
  for (int i = 0; i < messages; ++i) {
    const std::string n = std::to_string(i);
    bytes += labwatch::test::oru("C" + n, "M" + std::to_string(i % 40), "O" + n,
                                 std::to_string(20 + i % 90), "0." + std::to_string(i % 10));
  }
  return bytes;
}

}  // namespace

TEST_CASE("labwatch ingest reads a large file on the calling thread when no thread can start",
          "[daemon][cli][pipeline]") {
  const TempDir dir;
  // The user nobody writes the database here and reads the file.
  fs::permissions(dir.path(), fs::perms::all);
  const fs::path file = dir.path() / "large.hl7";
  const std::string bytes = large_oru_file(5000);
  REQUIRE(bytes.size() > (1u << 20));
  labwatch::test::write_file(file, bytes);
  fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                            fs::perms::others_read);

  const CommandResult probe = run_program(without_threads({"/bin/sh", "-c", "/bin/true"}));
  if (probe.exit_code == 0) {
    WARN("RLIMIT_NPROC is not enforced here: the fallback is not exercised");
    return;
  }

  // The build tree may lie where the user nobody cannot enter (a clone under /root, a mktemp -d
  // folder): it runs a copy of the binary kept beside its database.
  const fs::path binary = dir.path() / "labwatch";
  fs::copy_file(LABWATCH_BINARY, binary);
  fs::permissions(binary, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                              fs::perms::others_read | fs::perms::others_exec);
  const CommandResult reach = run_program(without_threads({binary.string(), "--version"}));
  if (reach.exit_code != 0) {
    WARN("the user nobody cannot run " + binary.string() + " (is " + dir.path().string() +
         " under a folder only its owner can enter? set TMPDIR): " + reach.err);
    return;
  }

  const fs::path limited_db = dir.path() / "limited.db";
  const CommandResult limited = run_program(
      without_threads({binary.string(), "ingest", "--db", limited_db.string(), file.string()}));
  INFO(limited.err);
  REQUIRE(limited.exit_code == 0);

  const fs::path normal_db = dir.path() / "normal.db";
  REQUIRE(run_labwatch({"ingest", "--db", normal_db.string(), file.string()}).exit_code == 0);

  SQLite::Database db(limited_db.string());
  CHECK(db.execAndGet("SELECT count(*) FROM results").getInt() == 10000);
  CHECK(db.execAndGet("SELECT count(*) FROM messages").getInt() == 5000);
  CHECK(db.execAndGet("SELECT outcome FROM files").getString() == "accepted");
  // The same rows as read on a reader thread.
  const CommandResult a = run_labwatch({"export", "--db", limited_db.string(), "--format", "csv"});
  const CommandResult b = run_labwatch({"export", "--db", normal_db.string(), "--format", "csv"});
  REQUIRE(a.exit_code == 0);
  REQUIRE(b.exit_code == 0);
  CHECK(a.out.size() > bytes.size() / 4);
  CHECK(a.out == b.out);
}
