// SPDX-License-Identifier: Apache-2.0
// Tests of Pipeline::process_file: the content hash, and files whose bytes come in again.
#include "daemon/pipeline.hpp"

#include <SQLiteCpp/SQLiteCpp.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "config/config_loader.hpp"
#include "daemon/digest.hpp"
#include "storage/store.hpp"
#include "support/daemon_harness.hpp"

namespace {

namespace fs = std::filesystem;
using labwatch::daemon::FileOutcome;
using labwatch::daemon::Pipeline;
using Kind = FileOutcome::Kind;

// A store in a temp dir and a pipeline over it with the built-in config.
struct Site {
  labwatch::test::TempDir dir;
  labwatch::config::Config config = labwatch::config::default_config();
  std::unique_ptr<labwatch::storage::Store> store =
      labwatch::storage::open_sqlite_store((dir.path() / "labwatch.db").string());
  Pipeline pipeline{config, *store};

  fs::path write(const std::string& name, const std::string& bytes) const {
    fs::path path = dir.path() / name;
    std::ofstream out(path, std::ios::binary);
    out << bytes;
    out.close();
    REQUIRE(out.good());
    return path;
  }
  FileOutcome process(const fs::path& path) {
    return pipeline.process_file(path, labwatch::daemon::ClaimPolicy{});
  }
  [[nodiscard]] std::int64_t count(const std::string& sql) const {
    SQLite::Database db((dir.path() / "labwatch.db").string());
    return db.execAndGet(sql).getInt64();
  }
};

// One ORU^R01 message of QDX about patient `mrn`: a ferritin of `ferritin` ng/mL, and an hs-CRP
// of `crp` (a number, or text that is refused as non_numeric_value).
std::string oru(const std::string& control_id, const std::string& mrn, const std::string& order,
                const std::string& ferritin, const std::string& crp) {
  return "MSH|^~\\&|LAB|QDX|APP|CLINIC|20250811110500-0500||ORU^R01|" + control_id +
         "|P|2.3\r"
         "PID|1||" +
         mrn +
         "^^^QDX^MR||DOE^JANE||19800102|F\r"
         "OBR|1|" +
         order + "|" + order +
         "^QDX|7444^PANEL^L|||20250810090500-0500\r"
         "OBX|1|NM|2276-4^FERRITIN^LN||" +
         ferritin +
         "|ng/mL|16-232||||F\r"
         "OBX|2|NM|30522-7^HS CRP^LN||" +
         crp + "|mg/L|<3.0||||F\r";
}

std::vector<std::string> described(const std::vector<labwatch::parsers::Refusal>& refusals) {
  std::vector<std::string> out;
  out.reserve(refusals.size());
  for (const auto& refusal : refusals) {
    out.push_back(labwatch::daemon::describe(refusal));
  }
  return out;
}

}  // namespace

TEST_CASE("Pipeline::process_file hashes every byte of a file read in several chunks",
          "[daemon][pipeline]") {
  Site site;
  std::string bytes;
  for (int i = 0; bytes.size() < (5u << 19); ++i) {  // 2.5 MiB: three chunks of 1 MiB
    const std::string n = std::to_string(i);
    bytes += oru("C" + n, "M" + std::to_string(i % 50), "O" + n, "80", "0.5");
  }
  int ticks = 0;
  site.pipeline.set_progress([&ticks] { ++ticks; });
  const FileOutcome outcome = site.process(site.write("big.hl7", bytes));
  // The daemon's watchdog is pinged while one large file is stored: after each batch of reports
  // and at least after each of the three chunks.
  CHECK(ticks >= 3);
  CHECK(ticks >= outcome.summary.reports / static_cast<int>(labwatch::daemon::BatchSink::kItems));
  CHECK(outcome.kind == Kind::accepted);
  CHECK(outcome.sha256 == labwatch::daemon::sha256_hex(bytes));
  CHECK(site.count("SELECT count(*) FROM files WHERE sha256 = '" + outcome.sha256 + "'") == 1);
  CHECK(outcome.summary.results_stored == 2 * outcome.summary.reports);
}

TEST_CASE("Pipeline::process_file reports an accepted file read again as already known",
          "[daemon][pipeline]") {
  Site site;
  const std::string bytes = oru("C1", "M1", "O1", "80", "0.5");
  fs::path path = site.write("a_qdx_01.hl7", bytes);
  const FileOutcome first = site.process(path);
  REQUIRE(first.kind == Kind::accepted);
  CHECK(first.summary.results_stored == 2);

  SECTION("under its own name") {}
  SECTION("under another name") { path = site.write("copy.hl7", bytes); }
  const FileOutcome again = site.process(path);
  CHECK(again.kind == Kind::already_known);
  CHECK(again.summary.already_known);
  CHECK(again.summary.results_stored == 0);
  CHECK(again.summary.reports == 0);
  CHECK(again.refusals.empty());
  CHECK(again.sha256 == first.sha256);
  CHECK(site.count("SELECT count(*) FROM results") == 2);
  CHECK(site.count("SELECT count(*) FROM files") == 1);
}

TEST_CASE("Pipeline::process_file ends a partly refused file read again as partial, as before",
          "[daemon][pipeline]") {
  // The move to failed/ of a committed file can be lost in a crash: read again at the next start,
  // it must still go to failed/ with its reason.
  Site site;
  const std::string bytes =
      oru("C1", "M1", "O1", "80", "pending") + oru("C2", "M2", "O2", "45", "1.5");
  const fs::path path = site.write("a_qdx_02.hl7", bytes);
  const FileOutcome first = site.process(path);
  REQUIRE(first.kind == Kind::partial);
  REQUIRE(first.refusals.size() == 1);
  CHECK(first.refusals[0].reason == "non_numeric_value");
  CHECK_FALSE(first.summary.already_known);

  const FileOutcome again = site.process(path);
  CHECK(again.kind == Kind::partial);
  CHECK(again.summary.already_known);
  CHECK(again.sha256 == first.sha256);
  CHECK(described(again.refusals) == described(first.refusals));
  CHECK(again.refusals[0].code == "30522-7");
  CHECK(again.refusals[0].analyte == first.refusals[0].analyte);
  CHECK(again.refusals[0].patient_key == "QDX|M1");
  CHECK(again.summary.reports == first.summary.reports);
  CHECK(again.summary.results_stored == first.summary.results_stored);
  CHECK(again.summary.alerts == first.summary.alerts);
  CHECK(again.summary.refusals == 1);
  CHECK(site.count("SELECT count(*) FROM results") == 3);
  CHECK(site.count("SELECT count(*) FROM refusals") == 1);
}

TEST_CASE("Pipeline::process_file ends a wholly refused file read again as refused, as before",
          "[daemon][pipeline]") {
  Site site;
  const fs::path path = site.write("e_garbage.hl7", std::string("\x01\x02garbage\x7f"));
  const FileOutcome first = site.process(path);
  REQUIRE(first.kind == Kind::refused);

  const FileOutcome again = site.process(path);
  CHECK(again.kind == Kind::refused);
  CHECK(again.summary.already_known);
  CHECK(again.summary.reports == 0);
  REQUIRE(again.refusals.size() == 1);
  CHECK(again.refusals[0].reason == "unrecognized_format");
  CHECK(described(again.refusals) == described(first.refusals));
  CHECK(site.count("SELECT count(*) FROM files WHERE outcome = 'refused'") == 1);
}

TEST_CASE("Pipeline::process_file counts the refusals of a resent message in its new file",
          "[daemon][pipeline]") {
  // The second file holds a byte-identical copy of a stored message with a refused result: its
  // verdict counts that refusal whether the file is read for the first time or again.
  Site site;
  const std::string resent = oru("C1", "M1", "O1", "80", "pending");
  REQUIRE(site.process(site.write("first.hl7", resent)).kind == Kind::partial);
  const fs::path second = site.write("second.hl7", resent + oru("C2", "M2", "O2", "45", "1.5"));
  const FileOutcome outcome = site.process(second);
  CHECK(outcome.kind == Kind::partial);
  CHECK(outcome.summary.duplicate_messages == 1);
  CHECK(outcome.refusals.size() == 1);
  const FileOutcome again = site.process(second);
  CHECK(again.kind == Kind::partial);
  CHECK(described(again.refusals) == described(outcome.refusals));
}

TEST_CASE("Pipeline::process_file keeps refusals and reports of many batches in file order",
          "[daemon][pipeline]") {
  // Many batches of reports, a refused hs-CRP in every seventh message: read on this thread (a
  // file under 1 MiB) and on a reader thread.
  int messages = 0;
  SECTION("a small file") { messages = 1000; }
  SECTION("a large file") { messages = 5000; }
  Site site;
  std::string bytes;
  std::vector<int> refused;
  for (int i = 0; i < messages; ++i) {
    const std::string n = std::to_string(i);
    const bool bad = i % 7 == 3;
    if (bad) {
      refused.push_back(i);
    }
    bytes += oru("C" + n, "M" + n, "O" + n, "80", bad ? "pending" : "0.5");
  }
  INFO(bytes.size() << " bytes");
  CHECK((bytes.size() > (1u << 20)) == (messages == 5000));
  const FileOutcome outcome = site.process(site.write("many.hl7", bytes));
  CHECK(outcome.kind == Kind::partial);
  CHECK(outcome.summary.reports == messages);
  CHECK(outcome.summary.results_stored == 2 * messages - static_cast<int>(refused.size()));
  std::vector<int> where;
  for (const auto& refusal : outcome.refusals) {
    where.push_back(refusal.where.message);
  }
  CHECK(where == refused);
  // The stored results follow the file: message i holds order Oi, stored in that sequence.
  const std::string in_sequence =
      "SELECT count(*) FROM results r1 JOIN results r2 ON r2.result_id = r1.result_id + 1 "
      "WHERE CAST(substr(r2.order_id, 2) AS INTEGER) >= CAST(substr(r1.order_id, 2) AS INTEGER)";
  CHECK(site.count(in_sequence) == site.count("SELECT count(*) FROM results") - 1);
}

TEST_CASE("Pipeline::process_file stops reading and stores nothing when storing fails mid-file",
          "[daemon][pipeline]") {
  Site site;
  std::string bytes;
  for (int i = 0; bytes.size() < (3u << 20); ++i) {  // 3 MiB: many batches, three chunks
    const std::string n = std::to_string(i);
    bytes += oru("C" + n, "M" + std::to_string(i % 50), "O" + n, "80", "0.5");
  }
  const fs::path path = site.write("big.hl7", bytes);
  int ticks = 0;
  site.pipeline.set_progress([&ticks] {
    if (++ticks == 2) {
      throw std::runtime_error("the daemon is stopping");
    }
  });
  CHECK_THROWS_WITH(site.process(path), "the daemon is stopping");
  CHECK(ticks == 2);  // the reader was stopped: no batch was stored after the failure
  CHECK(site.count("SELECT count(*) FROM results") == 0);
  CHECK(site.count("SELECT count(*) FROM files") == 0);

  // The same pipeline reads the whole file the next time.
  site.pipeline.set_progress({});
  const FileOutcome outcome = site.process(path);
  CHECK(outcome.kind == Kind::accepted);
  CHECK(outcome.sha256 == labwatch::daemon::sha256_hex(bytes));
  CHECK(site.count("SELECT count(*) FROM results") == 2 * outcome.summary.reports);
}
