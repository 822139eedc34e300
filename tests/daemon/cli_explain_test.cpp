// SPDX-License-Identifier: Apache-2.0
// `labwatch explain`: a dry run through the real binary that says line by line what an ingest
// would do, and writes nothing.
#include <sqlite3.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "support/daemon_harness.hpp"

namespace {

namespace fs = std::filesystem;
using labwatch::test::CommandResult;
using labwatch::test::Layout;
using labwatch::test::run_labwatch;
using labwatch::test::TempDir;

fs::path explain_file(const std::string& name) {
  return fs::path(LABWATCH_TEST_DATA_DIR) / "explain" / name;
}

// The database as bytes and modification time: a dry run changes neither.
struct FileState {
  std::string bytes;
  std::int64_t mtime_ns = 0;
  bool operator==(const FileState&) const = default;
};
FileState state_of(const fs::path& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return {labwatch::test::read_file(path),
          std::int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec};
}

}  // namespace

TEST_CASE("labwatch explain says per line what an ingest would store, skip, refuse and alert",
          "[daemon][cli][explain]") {
  const Layout layout(TempDir::fast_base());
  const std::string config = layout.config().string();
  // Message 1 of the mixed file is this file's message: stored before.
  const CommandResult stored =
      run_labwatch({"ingest", "--config", config, explain_file("gen_explain_stored.hl7")});
  INFO(stored.err);
  REQUIRE(stored.exit_code == 0);
  const fs::path db = layout.root() / "labwatch.db";
  const FileState before = state_of(db);
  layout.drop("gen_waiting.hl7", labwatch::test::read_file(explain_file("gen_explain_stored.hl7")));

  const CommandResult r =
      run_labwatch({"explain", "--config", config, explain_file("gen_explain_mixed.hl7")});
  INFO(r.out << r.err);
  // Something would be refused: exit 2, as `ingest` would.
  CHECK(r.exit_code == 2);
  CHECK(r.out.starts_with(explain_file("gen_explain_mixed.hl7").string() +
                          ": would be partially refused (dry run: nothing was written)\n"));
  CHECK(r.out.find("message 1 (line 1), control id EX1, facility GEN:\n"
                   "  line 4, segment 4 OBX, field 5: already stored: ferritin 80 ng/mL "
                   "(lab: 80 ng/mL)\n"
                   "message 2 (line 5), control id EX2, facility GEN:\n"
                   "  line 8, segment 4 OBX, field 5: store: ferritin 20 ng/mL (lab: 20 ng/mL)\n"
                   "    alert: ferritin, rule ge:50, tier target: below the minimum of 50 "
                   "(mail: historical)\n"
                   // The shipped trend rule of ferritin: 80 to 20 is a fall of 75 %.
                   "    alert: ferritin, rule trend:falling:30:365, tier trend: fell by at least "
                   "30 % within 365 days (mail: historical)\n"
                   "  line 9, segment 5 OBX, field 5: skip: unmapped code 99999-9 'MYSTERY' "
                   "[mmol/L]: no analyte maps it (see labwatch unmapped)\n"
                   "  line 10, segment 6 OBX, field 5: refuse: implausible_value: OBX-5 is below "
                   "what is possible for hs_crp\n"
                   "  line 11, segment 7 OBX, field 5: skip: comment\n"
                   "summary: 1 to store, 1 already stored, 0 superseded, 0 withdrawn, 1 skipped, "
                   "1 unmapped, 1 refused, 2 alerts\n") != std::string::npos);
  // The refusal names no patient: neither the MRN nor the name is printed anywhere.
  CHECK(r.out.find("EX-1") == std::string::npos);
  CHECK(r.out.find("DOE") == std::string::npos);

  // Nothing was written: the database, the inbox, the exports and the lists are as they were.
  CHECK(state_of(db) == before);
  CHECK(labwatch::test::count_entries(layout.inbox()) == 1);
  CHECK(labwatch::test::count_entries(layout.processed()) == 0);
  CHECK(labwatch::test::count_entries(layout.failed()) == 0);
  CHECK(layout.export_rows().size() == 1);
  const CommandResult unmapped = run_labwatch({"unmapped", "--config", config});
  CHECK(unmapped.out.find("99999-9") == std::string::npos);
  const CommandResult alerts = run_labwatch({"alerts", "--config", config, "--all"});
  CHECK(alerts.out.find("ferritin") == std::string::npos);

  SECTION("a correction replaces the stored version") {
    const CommandResult corrected =
        run_labwatch({"explain", "--config", config, explain_file("gen_explain_corrected.hl7")});
    INFO(corrected.out << corrected.err);
    CHECK(corrected.exit_code == 0);
    CHECK(corrected.out.find("  line 4, segment 4 OBX, field 5: store: ferritin 85 ng/mL "
                             "(lab: 85 ng/mL), replacing 1 stored version\n") != std::string::npos);
    CHECK(corrected.out.find("1 to store, 0 already stored, 1 superseded,") != std::string::npos);
  }
  SECTION("bytes ingested before: an ingest would store nothing") {
    const CommandResult known =
        run_labwatch({"explain", "--config", config, explain_file("gen_explain_stored.hl7")});
    CHECK(known.exit_code == 0);
    CHECK(known.out.find(": already ingested as gen_explain_stored.hl7 (accepted then): an "
                         "ingest would store nothing") != std::string::npos);
  }
  SECTION("--format json") {
    const CommandResult json = run_labwatch(
        {"explain", "--config", config, "--format", "json", explain_file("gen_explain_mixed.hl7")});
    CHECK(json.exit_code == 2);
    CHECK(json.out.find("\"verdict\":\"would be partially refused\"") != std::string::npos);
    CHECK(json.out.find("{\"message\":2,\"line\":10,\"segment\":6,\"action\":\"refuse\","
                        "\"reason\":\"implausible_value\"") != std::string::npos);
    CHECK(json.out.find("\"alerts\":[{\"analyte\":\"ferritin\",\"rule\":\"ge:50\",\"tier\":"
                        "\"target\",\"finding\":\"below the minimum of 50\",\"mail\":"
                        "\"historical\"},{\"analyte\":\"ferritin\",\"rule\":"
                        "\"trend:falling:30:365\",\"tier\":\"trend\"") != std::string::npos);
  }
  CHECK(state_of(db) == before);
}

TEST_CASE("labwatch explain without a database explains against an empty one and creates none",
          "[daemon][cli][explain]") {
  const Layout layout(TempDir::fast_base());
  const fs::path db = layout.root() / "other.db";
  const CommandResult r = run_labwatch({"explain", "--config", layout.config().string(), "--db",
                                        db.string(), explain_file("gen_explain_stored.hl7")});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("would be accepted (dry run: nothing was written)\n"
                   "message 1 (line 1), control id EX1, facility GEN:\n"
                   "  line 4, segment 4 OBX, field 5: store: ferritin 80 ng/mL (lab: 80 ng/mL)\n"
                   "summary: 1 to store, 0 already stored,") != std::string::npos);
  CHECK(r.err.find("does not exist yet: explaining against an empty one in memory") !=
        std::string::npos);
  CHECK_FALSE(fs::exists(db));
}

TEST_CASE("labwatch explain refuses a bad command line", "[daemon][cli][explain]") {
  const Layout layout(TempDir::fast_base());
  const std::string config = layout.config().string();
  CHECK(run_labwatch({"explain", "--config", config}).exit_code == 64);
  CHECK(run_labwatch({"explain", "--config", config, "--format", "csv",
                      explain_file("gen_explain_stored.hl7")})
            .exit_code == 64);
  const CommandResult missing =
      run_labwatch({"explain", "--config", config, (layout.stage() / "nothing.hl7").string()});
  CHECK(missing.exit_code == 1);
  const CommandResult help = run_labwatch({"explain", "--help"});
  CHECK(help.exit_code == 0);
  CHECK(help.out.find("labwatch explain [--config FILE] [--db DB] [--format text|json] FILE...") !=
        std::string::npos);
}

TEST_CASE("labwatch explain leaves a database of an older schema as it is",
          "[daemon][cli][explain]") {
  const Layout layout(TempDir::fast_base());
  const std::string config = layout.config().string();
  REQUIRE(run_labwatch({"ingest", "--config", config, explain_file("gen_explain_stored.hl7")})
              .exit_code == 0);
  const fs::path db = layout.root() / "labwatch.db";
  const auto user_version = [&db](const char* set) {
    sqlite3* handle = nullptr;
    REQUIRE(sqlite3_open(db.c_str(), &handle) == SQLITE_OK);
    if (set != nullptr) {
      REQUIRE(sqlite3_exec(handle, set, nullptr, nullptr, nullptr) == SQLITE_OK);
    }
    sqlite3_stmt* statement = nullptr;
    REQUIRE(sqlite3_prepare_v2(handle, "PRAGMA user_version", -1, &statement, nullptr) ==
            SQLITE_OK);
    REQUIRE(sqlite3_step(statement) == SQLITE_ROW);
    const int version = sqlite3_column_int(statement, 0);
    sqlite3_finalize(statement);
    sqlite3_close(handle);
    return version;
  };
  const int older = user_version("PRAGMA user_version = 1");
  REQUIRE(older == 1);
  const CommandResult r =
      run_labwatch({"explain", "--config", config, explain_file("gen_explain_mixed.hl7")});
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("has schema version 1, older than this labwatch's") != std::string::npos);
  CHECK(user_version(nullptr) == 1);  // not migrated
}
