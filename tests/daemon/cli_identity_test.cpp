// SPDX-License-Identifier: Apache-2.0
// The identity review commands on the real binary: persons, matches, merge, unmerge, audit.
#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "support/daemon_harness.hpp"
#include "support/hl7_messages.hpp"

namespace {

using labwatch::test::CommandResult;
using labwatch::test::Layout;
using labwatch::test::TempDir;

std::size_t lines(const std::string& text) {
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

}  // namespace

TEST_CASE("labwatch merge, unmerge and matches --dismiss act on the review queue and are audited",
          "[daemon][cli][identity]") {
  const Layout layout(TempDir::fast_base());
  const std::string config = layout.config().string();
  const auto run = [&](std::vector<std::string> args) {
    args.insert(args.begin() + 1, {"--config", config});
    return labwatch::test::run_program_with(labwatch::test::labwatch_argv(args),
                                            {"SUDO_USER=carol", "USER=root"});
  };
  // Two MRNs of one authority (QDX), equal demographics: kept apart, one pair to review.
  for (const char* mrn : {"M1", "M2"}) {
    const auto file = layout.stage() / (std::string("gen_") + mrn + ".hl7");
    labwatch::test::write_file(file, labwatch::test::oru(std::string("C") + mrn, mrn,
                                                         std::string("O") + mrn, "81", "1.5"));
    REQUIRE(run({"ingest", file.string()}).exit_code == 0);
  }
  CHECK(lines(run({"persons"}).out) == 2);
  const CommandResult matches = run({"matches"});
  CHECK(matches.exit_code == 0);
  CHECK(matches.out.rfind("1 2  same_authority  differing: none  since ", 0) == 0);

  SECTION("merge joins them; unmerge splits them again; audit tells who, what and why") {
    CHECK(run({"merge", "1", "2"}).exit_code == 64);  // no reason
    const CommandResult merged = run({"merge", "1", "2", "--reason", "one patient"});
    INFO(merged.err);
    CHECK(merged.exit_code == 0);
    CHECK(merged.out.rfind("merged person 2 into person 1 (2 results moved)\n", 0) == 0);
    const CommandResult persons = run({"persons"});
    CHECK(lines(persons.out) == 1);
    CHECK(persons.out.find("QDX|M1 QDX|M2") != std::string::npos);
    CHECK(lines(run({"persons", "--search", "qdx|m2"}).out) == 1);
    CHECK(run({"persons", "--search", "nobody"}).out.empty());
    CHECK(run({"matches"}).out.empty());

    CHECK(run({"unmerge", "1", "--identifier", "QDX|M9", "--reason", "x"}).exit_code == 64);
    CHECK(run({"unmerge", "1", "--identifier", "QDX", "--reason", "x"}).exit_code == 64);
    const CommandResult split =
        run({"unmerge", "1", "--identifier", "QDX|M2", "--reason", "twins after all"});
    CHECK(split.exit_code == 0);
    CHECK(split.out.rfind("moved QDX|M2 to new person 3 (2 results moved)\n", 0) == 0);
    CHECK(lines(run({"persons"}).out) == 2);

    const CommandResult audit = run({"audit"});
    CHECK(audit.exit_code == 0);
    const std::string body = audit.out.substr(audit.out.find('\n') + 1);
    REQUIRE(lines(body) == 2);
    CHECK(body.find(",carol,merge,merged person 2 into person 1 (2 results),one patient\n") !=
          std::string::npos);
    CHECK(body.find(",carol,unmerge,moved QDX|M2 from person 1 to new person 3 (2 results),"
                    "twins after all\n") != std::string::npos);
  }
  SECTION("dismiss closes the pair once") {
    CHECK(run({"matches", "--dismiss", "1", "2", "--reason", "siblings"}).exit_code == 0);
    CHECK(run({"matches"}).out.empty());
    CHECK(run({"matches", "--dismiss", "1", "2", "--reason", "again"}).exit_code == 64);
    CHECK(run({"matches", "--dismiss", "1"}).exit_code == 64);
    CHECK(run({"audit"}).out.find(",carol,dismiss,persons 1 and 2 are not the same person,"
                                  "siblings\n") != std::string::npos);
  }
  SECTION("every command explains itself") {
    for (const char* command : {"persons", "matches", "merge", "unmerge", "audit"}) {
      const CommandResult help = run({command, "--help"});
      CHECK(help.exit_code == 0);
      CHECK(help.out.find(std::string("labwatch ") + command) != std::string::npos);
    }
  }
}

TEST_CASE("labwatch merge runs while the daemon ingests, and no result is lost or misplaced",
          "[daemon][cli][identity]") {
  using namespace std::chrono_literals;
  const Layout layout(TempDir::fast_base(), 20);
  const std::string config = layout.config().string();
  for (const char* mrn : {"M1", "M2"}) {
    const auto file = layout.stage() / (std::string("gen_") + mrn + ".hl7");
    labwatch::test::write_file(file, labwatch::test::oru(std::string("C") + mrn, mrn,
                                                         std::string("O") + mrn, "81", "1.5"));
    REQUIRE(labwatch::test::run_labwatch({"ingest", "--config", config, file.string()}).exit_code ==
            0);
  }
  const auto daemon = layout.start();
  constexpr int kFiles = 30;
  std::thread feeder([&] {
    for (int i = 0; i < kFiles; ++i) {
      const std::string n = std::to_string(i);
      layout.drop("gen_feed_" + n + ".hl7",
                  labwatch::test::oru("F" + n, "M2", "OF" + n, std::to_string(50 + i), "1.5"));
      std::this_thread::sleep_for(5ms);
    }
  });
  const CommandResult merged =
      labwatch::test::run_labwatch({"merge", "--config", config, "1", "2", "--reason", "one"});
  feeder.join();
  INFO(merged.err);
  CHECK(merged.exit_code == 0);
  CHECK(labwatch::test::wait_until(
      [&] { return labwatch::test::count_entries(layout.processed(), ".hl7") == kFiles; }, 60s));
  CHECK(labwatch::test::count_entries(layout.failed()) == 0);
  const std::vector<std::string> rows = layout.export_rows();
  CHECK(rows.size() == 2 * (kFiles + 2));
  for (const std::string& row : rows) {
    INFO(row);
    const std::size_t key_end = row.find(',', row.find(',') + 1);
    // person 1: every result, whenever it came
    CHECK(row.substr(key_end + 1, row.find(',', key_end + 1) - key_end - 1) == "1");
  }
}
