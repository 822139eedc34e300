// SPDX-License-Identifier: Apache-2.0
// Tests of Pipeline::process_file: the content hash, and files whose bytes come in again.
#include "ingest/pipeline.hpp"

#include <SQLiteCpp/SQLiteCpp.h>

#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config_loader.hpp"
#include "ingest/digest.hpp"
#include "storage/store.hpp"
#include "support/daemon_harness.hpp"
#include "support/hl7_messages.hpp"

namespace {

namespace fs = std::filesystem;
using labwatch::daemon::FileOutcome;
using labwatch::daemon::Pipeline;
using Kind = FileOutcome::Kind;
using labwatch::test::oru;

// A store in a temp dir and a pipeline over it with `config`, by default the built-in one.
struct Site {
  explicit Site(labwatch::config::Config c = labwatch::config::default_config())
      : config(std::move(c)) {}

  labwatch::test::TempDir dir;
  labwatch::config::Config config;
  std::unique_ptr<labwatch::storage::Store> store =
      labwatch::storage::open_store((dir.path() / "labwatch.db").string());
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

std::vector<std::string> described(const std::vector<labwatch::parsers::Refusal>& refusals) {
  std::vector<std::string> out;
  out.reserve(refusals.size());
  for (const auto& refusal : refusals) {
    out.push_back(labwatch::daemon::describe(refusal));
  }
  return out;
}

// The built-in config with the corpus's CSV sender WCE (tests/data/corpus/facilities.csv): the
// built-in config has no <source>, and a CSV names no assigning authority, so without one every
// CSV report is refused as unknown_source.
labwatch::config::Config wce_config() {
  labwatch::config::Config config = labwatch::config::default_config();
  labwatch::config::Source wce;
  wce.facility = "WCE";
  wce.authority = "WCE";
  wce.timezone = "America/Denver";
  wce.file_globs = {"d1_wce_*"};
  config.sources.push_back(std::move(wce));
  return config;
}

// How a CSV export's data row is spoiled.
enum class BadRow { none, not_a_number, unknown_unit, bad_date };

// A CSV export in the comma dialect of the corpus's d1_wce files, of `draws` draws of three results
// (ferritin, homocysteine, vitamin D), each draw at its own minute for one of 50 patients, in UTC
// ("Z"). Data row r, on line r + 2, is spoiled as `bad` says.
std::string csv_export(int draws, const std::map<int, BadRow>& bad) {
  struct Test {
    std::string_view name, loinc, value, unit, range;
  };
  static constexpr std::array<Test, 3> kTests{{
      {"Ferritin", "2276-4", "80", "ng/mL", "15-150"},
      {"Homocysteine", "13965-9", "7.2", "umol/L", "0-15"},
      {"Vitamin D", "1989-3", "45", "ng/mL", "30-100"},
  }};
  std::string out =
      "patient_id,last_name,first_name,dob,sex,test_name,loinc,value,unit,ref_range,collected_at\n";
  for (int row = 0; row < 3 * draws; ++row) {
    const int draw = row / 3;
    const Test& test = kTests[static_cast<std::size_t>(row % 3)];
    const auto spoiled = bad.find(row);
    const BadRow how = spoiled == bad.end() ? BadRow::none : spoiled->second;
    std::array<char, 32> time{};
    std::snprintf(time.data(), time.size(), "2024-01-%02dT%02d:%02d:00Z", 1 + draw / 1440,
                  draw / 60 % 24, draw % 60);
    out += "W" + std::to_string(draw % 50) + ",Doe,Jane,1980-01-02,F,";
    out.append(test.name).append(",").append(test.loinc).append(",");
    out.append(how == BadRow::not_a_number ? "pending" : test.value).append(",");
    out.append(how == BadRow::unknown_unit ? "U/L" : test.unit).append(",");
    out.append(test.range).append(",");
    out.append(how == BadRow::bad_date ? "2024-02-30T10:00:00Z" : time.data()).append("\n");
  }
  return out;
}

// Each refusal as "line L, column 'C': reason", the place and the reason without the detail.
std::vector<std::string> places(const std::vector<labwatch::parsers::Refusal>& refusals) {
  std::vector<std::string> out;
  out.reserve(refusals.size());
  for (const auto& refusal : refusals) {
    out.push_back("line " + std::to_string(refusal.where.line) + ", column '" +
                  refusal.where.column + "': " + std::string(to_string(refusal.reason)));
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
  CHECK(to_string(first.refusals[0].reason) == "non_numeric_value");
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
  CHECK(to_string(again.refusals[0].reason) == "unrecognized_format");
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
  CHECK(site.count("SELECT count(*) FROM results") == std::int64_t{2} * outcome.summary.reports);
}

TEST_CASE("Pipeline::process_file refuses the bad rows of a CSV export in file order",
          "[daemon][pipeline][csv]") {
  // A CSV export is read whole, then its reports go over in batches: on this thread for a small
  // export, from a reader thread for one of more than 1 MiB.
  int draws = 0;
  SECTION("a small export") { draws = 500; }
  SECTION("a large export") { draws = 5000; }
  Site site(wce_config());
  const int rows = 3 * draws;
  // Two bad rows in the first draw, one in the middle and the very last row.
  const std::map<int, BadRow> bad{
      {1, BadRow::not_a_number},
      {2, BadRow::unknown_unit},
      {rows / 2, BadRow::unknown_unit},
      {rows - 1, BadRow::not_a_number},
  };
  const std::string bytes = csv_export(draws, bad);
  INFO(bytes.size() << " bytes");
  REQUIRE((bytes.size() > (1u << 20)) == (draws == 5000));
  const fs::path path = site.write("d1_wce_export.csv", bytes);
  const FileOutcome outcome = site.process(path);
  CHECK(outcome.kind == Kind::partial);
  CHECK(outcome.sha256 == labwatch::daemon::sha256_hex(bytes));
  CHECK(outcome.summary.reports == draws);
  CHECK(outcome.summary.results_stored == rows - 4);
  CHECK(outcome.summary.refusals == 4);
  CHECK(places(outcome.refusals) ==
        std::vector<std::string>{
            "line 3, column 'value': non_numeric_value",
            "line 4, column 'unit': unknown_unit",
            "line " + std::to_string(rows / 2 + 2) + ", column 'unit': unknown_unit",
            "line " + std::to_string(rows + 1) + ", column 'value': non_numeric_value",
        });
  CHECK(outcome.refusals.at(0).patient_key == "WCE|W0");
  CHECK(site.count("SELECT count(*) FROM results") == rows - 4);
  CHECK(site.count("SELECT count(*) FROM refusals") == 4);

  const FileOutcome again = site.process(path);
  CHECK(again.kind == Kind::partial);
  CHECK(again.summary.already_known);
  CHECK(described(again.refusals) == described(outcome.refusals));
  CHECK(site.count("SELECT count(*) FROM results") == rows - 4);
}

TEST_CASE("Pipeline::process_file keeps a CSV row refused for its date in file order",
          "[daemon][pipeline][csv]") {
  // A row whose date cannot be read is refused while the table is mapped to reports, a row whose
  // value or unit cannot be used while its report is normalized: both kinds go to the admin in
  // the order of the file's lines.
  Site site(wce_config());
  const std::string bytes = csv_export(
      10, {{4, BadRow::not_a_number}, {13, BadRow::bad_date}, {25, BadRow::unknown_unit}});
  const fs::path path = site.write("d1_wce_dates.csv", bytes);
  const FileOutcome outcome = site.process(path);
  CHECK(outcome.kind == Kind::partial);
  CHECK(outcome.summary.results_stored == 27);
  const std::vector<std::string> in_order{
      "line 6, column 'value': non_numeric_value",
      "line 15, column 'collected_at': bad_date",
      "line 27, column 'unit': unknown_unit",
  };
  CHECK(places(outcome.refusals) == in_order);
  // Read again, the file ends as before: its refusals come from the database, stored in the order
  // they were found, and go to the admin in the order of the file again.
  const FileOutcome again = site.process(path);
  CHECK(again.summary.already_known);
  CHECK(places(again.refusals) == in_order);
}

TEST_CASE("Pipeline::process_file refuses a large file of neither format after hashing it all",
          "[daemon][pipeline]") {
  Site site;
  // 2.5 MiB and a few bytes of noise: three chunks, the last one short.
  std::string bytes(5u << 19, '\0');
  bytes += "\x01tail";
  std::uint32_t state = 12345;
  for (char& c : bytes) {
    state = state * 1664525u + 1013904223u;
    c = static_cast<char>(state >> 24);
  }
  bytes[0] = '\x01';  // no text format starts with a control byte
  int ticks = 0;
  site.pipeline.set_progress([&ticks] { ++ticks; });
  const fs::path path = site.write("e_noise.bin", bytes);
  const FileOutcome first = site.process(path);
  CHECK(first.kind == Kind::refused);
  CHECK(first.sha256 == labwatch::daemon::sha256_hex(bytes));
  REQUIRE(first.refusals.size() == 1);
  CHECK(to_string(first.refusals[0].reason) == "unrecognized_format");
  CHECK(first.summary.reports == 0);
  // The watchdog is pinged while the file is hashed: at least once per chunk of 1 MiB.
  CHECK(ticks >= 3);
  CHECK(site.count("SELECT count(*) FROM files WHERE outcome = 'refused'") == 1);

  const FileOutcome again = site.process(path);
  CHECK(again.kind == Kind::refused);
  CHECK(again.summary.already_known);
  CHECK(again.sha256 == first.sha256);
  CHECK(described(again.refusals) == described(first.refusals));
  CHECK(site.count("SELECT count(*) FROM files") == 1);
  CHECK(site.count("SELECT count(*) FROM results") == 0);
}

TEST_CASE("Pipeline::process_file refuses a CSV export larger than kMaxCsvBytes unparsed",
          "[daemon][pipeline][csv]") {
  Site site(wce_config());
  // A header, then zeros up to one byte past the limit: a sparse file, written at once.
  const std::string header =
      "patient_id,last_name,first_name,dob,sex,test_name,loinc,value,unit,ref_range,collected_at\n";
  const fs::path path = site.write("d1_wce_huge.csv", header);
  constexpr std::size_t kSize = labwatch::parsers::kMaxCsvBytes + 1;
  fs::resize_file(path, kSize);
  labwatch::daemon::Sha256 expected;
  expected.update(header);
  const std::string zeros(1u << 20, '\0');
  for (std::size_t done = header.size(); done < kSize;) {
    const std::size_t n = std::min(zeros.size(), kSize - done);
    expected.update(std::string_view(zeros).substr(0, n));
    done += n;
  }
  const FileOutcome outcome = site.process(path);
  CHECK(outcome.kind == Kind::refused);
  CHECK(outcome.sha256 == expected.finish());
  REQUIRE(outcome.refusals.size() == 1);
  CHECK(to_string(outcome.refusals[0].reason) == "too_large");
  CHECK(outcome.summary.reports == 0);
  CHECK(site.count("SELECT count(*) FROM files WHERE outcome = 'refused'") == 1);
}

TEST_CASE("Pipeline::process_file names the messages of a large HL7 file that do not parse",
          "[daemon][pipeline][hl7]") {
  // Bad messages among good ones in a file of three chunks: the first, one across each chunk
  // boundary, and the last; an ADT message and one without a PID in between.
  Site site;
  constexpr std::size_t kChunk = 1u << 20;
  constexpr std::size_t kSize = 3 * kChunk - 300;
  std::string bytes;
  std::vector<std::string> expected;   // "message M: reason", in file order
  std::vector<std::string> msh_lines;  // "message M, line L": the MSH line of each refused message
  std::vector<int> straddling;
  int lines = 0;
  int stored = 0;
  for (int i = 0; bytes.size() < kSize; ++i) {
    const std::string n = std::to_string(i);
    std::string message = oru("C" + n, "M" + std::to_string(i % 50), "O" + n, "80", "0.5");
    const std::size_t boundary = (bytes.size() / kChunk + 1) * kChunk;
    std::string reason;
    if (i == 0) {
      message.replace(4, 4, "^^\\&");  // MSH-2 repeats a character
      reason = "bad_delimiters";
    } else if (i == 1000) {
      message.replace(message.find("ORU^R01"), 7, "ADT^A01");
      reason = "not_oru";
    } else if (i == 2000) {
      const std::size_t pid = message.find("PID|");
      message.erase(pid, message.find("OBR|") - pid);
      reason = "missing_segment";
    } else if (bytes.size() + message.size() > boundary) {
      straddling.push_back(i);
      message.erase(4, 4);  // MSH-2 empty
      reason = "bad_delimiters";
    } else if (bytes.size() + message.size() >= kSize) {
      message[3] = '#';  // the last one: MSH-1 differs from the separator its fields use
      reason = "bad_delimiters";
    }
    if (reason.empty()) {
      ++stored;
    } else {
      expected.push_back(std::string("message ").append(n).append(": ").append(reason));
      msh_lines.push_back(
          std::string("message ").append(n).append(", line ").append(std::to_string(lines + 1)));
    }
    lines += static_cast<int>(std::count(message.begin(), message.end(), '\r'));
    bytes += message;
  }
  REQUIRE(straddling.size() == 2);
  REQUIRE(straddling[0] > 2000);
  const FileOutcome outcome = site.process(site.write("broken.hl7", bytes));
  CHECK(outcome.kind == Kind::partial);
  CHECK(outcome.sha256 == labwatch::daemon::sha256_hex(bytes));
  CHECK(outcome.summary.reports == stored);
  CHECK(outcome.summary.results_stored == 2 * stored);
  // Message numbers are 0-based here, as in Refusal::where; lines count segments, CR-terminated.
  std::vector<std::string> refused;
  std::vector<std::string> refused_lines;
  for (const auto& refusal : outcome.refusals) {
    const std::string m = std::to_string(refusal.where.message);
    refused.push_back("message " + m + ": " + std::string(to_string(refusal.reason)));
    refused_lines.push_back("message " + m + ", line " + std::to_string(refusal.where.line));
  }
  CHECK(refused == expected);
  CHECK(refused_lines == msh_lines);
  CHECK(site.count("SELECT count(*) FROM results") == std::int64_t{2} * stored);
}
