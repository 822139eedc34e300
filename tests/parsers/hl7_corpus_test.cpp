// SPDX-License-Identifier: Apache-2.0
// Tests of the HL7 parser on every HL7 file of the synthetic corpus, and the truncation sweep.
#include <algorithm>
#include <catch2/catch.hpp>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "parsers/hl7_parser.hpp"

namespace {

using labwatch::parsers::Hl7FileResult;
using labwatch::parsers::Hl7Splitter;
using labwatch::parsers::LabReport;
using labwatch::parsers::Observation;
using labwatch::parsers::parse_hl7_file;
using labwatch::parsers::RefusalReason;

std::string read_corpus(std::string_view name) {
  const std::string path = std::string(LABWATCH_TEST_DATA_DIR) + "/corpus/" + std::string(name);
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<const Observation*> observations(const LabReport& r) {
  std::vector<const Observation*> out;
  for (const auto& o : r.orders) {
    for (const auto& obs : o.observations) {
      out.push_back(&obs);
    }
  }
  return out;
}

std::size_t count_observations(const Hl7FileResult& f) {
  std::size_t n = 0;
  for (const auto& r : f.reports) {
    n += observations(r).size();
  }
  return n;
}

std::size_t count_notes(const Hl7FileResult& f) {
  std::size_t n = 0;
  for (const auto& r : f.reports) {
    for (const auto& o : r.orders) {
      n += o.notes.size();
      for (const auto& obs : o.observations) {
        n += obs.notes.size();
      }
    }
  }
  return n;
}

struct Expect {
  std::string_view file;
  std::size_t messages;
  std::size_t obx;
  std::size_t nte;
};

// Counted independently of this parser (split at CR/LF/MLLP bytes, segments counted by id).
constexpr Expect kCorpus[] = {
    {"a_qdx_01.hl7", 5, 39, 18},      {"a_qdx_02.hl7", 5, 38, 15},
    {"a_qdx_03.hl7", 5, 36, 17},      {"a_qdx_04.hl7", 5, 32, 18},
    {"a_qdx_05.hl7", 5, 45, 23},      {"a_qdx_06.hl7", 5, 37, 14},
    {"a_qdx_07.hl7", 5, 39, 21},      {"a_qdx_08.hl7", 5, 43, 11},
    {"a_qdx_09.hl7", 5, 46, 19},      {"b_lca_01.hl7", 5, 45, 12},
    {"b_lca_02.hl7", 5, 39, 11},      {"b_lca_03.hl7", 6, 58, 14},
    {"b_lca_04.hl7", 5, 35, 9},       {"b_lca_05.hl7", 5, 44, 15},
    {"b_lca_06.hl7", 5, 37, 9},       {"b_lca_07.hl7", 6, 49, 12},
    {"b_lca_08.hl7", 5, 40, 8},       {"b_lca_09.hl7", 5, 49, 9},
    {"c_sgh_01_mllp.hl7", 6, 47, 0},  {"c_sgh_02_batch.hl7", 5, 34, 1},
    {"c_sgh_03_batch.hl7", 7, 45, 1}, {"c_sgh_04_mllp.hl7", 4, 29, 0},
    {"c_sgh_05_batch.hl7", 4, 31, 0}, {"c_sgh_06_batch.hl7", 3, 20, 0},
    {"c_sgh_07_mllp.hl7", 6, 34, 1},  {"e_lca_implausible.hl7", 1, 5, 0},
};

}  // namespace

TEST_CASE("parse_hl7_file reads every message and OBX of the corpus", "[parsers][hl7][corpus]") {
  for (const Expect& e : kCorpus) {
    CAPTURE(e.file);
    const std::string text = read_corpus(e.file);
    CHECK(labwatch::parsers::looks_like_hl7(text));
    const Hl7FileResult f = parse_hl7_file(text);
    CHECK(f.errors.empty());
    CHECK(f.reports.size() == e.messages);
    CHECK(f.raw_messages.size() == e.messages);
    CHECK(count_observations(f) == e.obx);
    CHECK(count_notes(f) == e.nte);
    for (const LabReport& r : f.reports) {
      CHECK(r.patient.identifiers.size() >= 1);
      CHECK_FALSE(r.control_id.empty());
      for (const auto& o : r.orders) {
        CHECK_FALSE(o.collected_at.empty());
      }
      for (const Observation* o : observations(r)) {
        CHECK_FALSE(o->code.code.empty());
        CHECK(o->result_status != '\0');
      }
    }
  }
}

TEST_CASE("Hl7Splitter streams the corpus in any chunk size like the whole file",
          "[parsers][hl7][corpus]") {
  for (const Expect& e : kCorpus) {
    CAPTURE(e.file);
    const std::string text = read_corpus(e.file);
    std::vector<std::string> whole;
    Hl7Splitter in_place(text);
    while (auto m = in_place.next()) {
      whole.emplace_back(m->bytes);
    }
    REQUIRE(whole.size() == e.messages);
    for (const std::size_t chunk : std::initializer_list<std::size_t>{1, 13, 4096}) {
      CAPTURE(chunk);
      Hl7Splitter s;
      std::vector<std::string> streamed;
      for (std::size_t i = 0; i < text.size(); i += chunk) {
        s.feed(std::string_view(text).substr(i, chunk));
        while (auto m = s.next()) {
          streamed.emplace_back(m->bytes);
        }
      }
      s.finish();
      while (auto m = s.next()) {
        streamed.emplace_back(m->bytes);
      }
      CHECK(streamed == whole);

      // In place, through one buffer reused for every chunk as a reader of the file would.
      Hl7Splitter r;
      std::vector<std::string> read;
      std::string buffer(chunk, '\0');
      for (std::size_t i = 0; i < text.size(); i += chunk) {
        const std::string_view piece = std::string_view(text).substr(i, chunk);
        buffer.replace(0, piece.size(), piece);
        r.feed_in_place(std::string_view(buffer).substr(0, piece.size()));
        while (auto m = r.next()) {
          read.emplace_back(m->bytes);
        }
        buffer.assign(chunk, 'M');
      }
      r.finish();
      while (auto m = r.next()) {
        read.emplace_back(m->bytes);
      }
      CHECK(read == whole);
    }
  }
}

TEST_CASE("parse_hl7_file reads the Quest-like dialect exactly", "[parsers][hl7][corpus]") {
  const Hl7FileResult f = parse_hl7_file(read_corpus("a_qdx_01.hl7"));
  REQUIRE(f.reports.size() == 5);
  const LabReport& r = f.reports[0];
  CHECK(r.control_id == "QDX301000001");
  CHECK(r.sending_facility == "QDX");
  CHECK(r.version == "2.3");
  CHECK(r.message_type == "ORU^R01");
  REQUIRE(r.patient.identifiers.size() == 1);
  CHECK(r.patient.identifiers[0].id == "Q37960593");
  CHECK(r.patient.identifiers[0].authority == "QDX");
  CHECK(r.patient.identifiers[0].type == "MR");
  CHECK(r.patient.family == "FICTORA");
  CHECK(r.patient.given == "CORA");
  CHECK(r.patient.birth_date.year == 1973);
  REQUIRE(r.orders.size() == 2);
  CHECK(r.orders[0].filler_order_number == "Q00094E1");
  CHECK(r.orders[0].collected_at.offset_minutes == -240);
  const auto obs = observations(r);
  REQUIRE(obs.size() == 11);
  CHECK(obs[0]->code.code == "2276-4");
  CHECK(obs[0]->code.system == "LN");
  CHECK(obs[0]->code.alt_system == "99QDX");
  CHECK(obs[0]->value == "80");
  CHECK(obs[0]->units == "ng/mL");
  CHECK(obs[0]->reference_range == "16-232");
  CHECK(obs[1]->abnormal_flags == "L");
  CHECK(obs[0]->where.line == 5);
  CHECK(obs[0]->where.segment == 5);

  // A censored value in an ST result stays text.
  const auto censored = observations(f.reports[4]);
  CHECK(censored.at(0)->value_type == "ST");
  CHECK(censored.at(0)->value == "<5");
  CHECK(censored.at(0)->comparator.empty());
}

TEST_CASE("parse_hl7_file reads the LabCorp-like dialect exactly", "[parsers][hl7][corpus]") {
  const Hl7FileResult f = parse_hl7_file(read_corpus("b_lca_01.hl7"));
  REQUIRE(f.reports.size() == 5);
  const LabReport& r = f.reports[0];
  CHECK(r.message_type == "ORU^R01^ORU_R01");
  REQUIRE(r.patient.identifiers.size() == 2);
  CHECK(r.patient.identifiers[0].id == "751150557");
  CHECK(r.patient.identifiers[0].type == "AN");
  CHECK(r.patient.identifiers[1].id == "60951714489");
  CHECK(r.patient.identifiers[1].authority == "LCA");
  CHECK(r.patient.identifiers[1].type == "MR");
  CHECK(r.patient.family == "TESTAROSSA-SYNTH");
  const auto obs = observations(r);
  REQUIRE(obs.size() == 8);
  // The LOINC code is only in the alternate triplet.
  CHECK(obs[0]->code.code == "004598");
  CHECK(obs[0]->code.system == "L");
  CHECK(obs[0]->code.alt_code == "2276-4");
  CHECK(obs[0]->code.alt_text == "Ferritin");
  CHECK(obs[0]->code.alt_system == "LN");
  CHECK(obs[0]->units == "ng/mL");  // OBX-6 is CWE: its identifier
  CHECK(obs[0]->value == "4");
  CHECK(obs[0]->where.line == 5);
  REQUIRE(obs[2]->notes.size() == 1);
  CHECK(obs[2]->notes[0] ==
        "Adults & adolescents: see note\nMethod: ECLIA | Roche\nRatio 1^2 ~ approx \\ "
        "footnote\rEnd of comment");
  CHECK(obs[7]->value_type == "TX");
  CHECK(obs[7]->value == "Results reviewed;\nsee interpretive report | Ref: A&B ~ 1^2");
}

TEST_CASE("parse_hl7_file reads the hospital LIS dialect exactly", "[parsers][hl7][corpus]") {
  const Hl7FileResult batch = parse_hl7_file(read_corpus("c_sgh_02_batch.hl7"));
  REQUIRE(batch.reports.size() == 5);
  const LabReport& r = batch.reports[0];
  CHECK(r.control_id == "SGH301000095");
  CHECK(r.message_type == "ORU^R01^ORU_R01");
  REQUIRE(r.patient.identifiers.size() == 1);
  CHECK(r.patient.identifiers[0].id == "SGH948271");
  CHECK(r.patient.identifiers[0].authority == "SGH");
  CHECK(r.patient.identifiers[0].type == "MR");
  CHECK(r.patient.given == "HANA");
  const auto obs = observations(r);
  REQUIRE(obs.size() == 2);
  CHECK(obs[0]->code.code == "FERR");
  CHECK(obs[0]->code.alt_code == "20567-4");
  CHECK(obs[0]->code.alt_system == "LN");
  CHECK(obs[0]->value == "87");
  CHECK(obs[0]->result_status == 'C');
  CHECK(obs[0]->observed_at.precision == labwatch::parsers::DateTime::Precision::minute);
  CHECK_FALSE(obs[0]->observed_at.has_offset);
  CHECK(obs[0]->notes ==
        std::vector<std::string>{
            "Corrected result. Previously reported as 74; instrument recalibrated."});
  CHECK(r.where.line == 3);  // after FHS and BHS

  const Hl7FileResult mllp = parse_hl7_file(read_corpus("c_sgh_01_mllp.hl7"));
  REQUIRE(mllp.reports.size() == 6);
  CHECK(mllp.reports[1].where.offset ==
        mllp.reports[0].where.offset + mllp.raw_messages[0].size() + 4);
  CHECK(mllp.raw_messages[0].front() == 'M');

  const Hl7FileResult cancelled = parse_hl7_file(read_corpus("c_sgh_03_batch.hl7"));
  REQUIRE(cancelled.reports.size() == 7);
  const auto x = observations(cancelled.reports[2]);
  REQUIRE(x.size() >= 8);
  CHECK(x[7]->result_status == 'X');
  CHECK(x[7]->value.empty());
}

TEST_CASE("parse_hl7_file refuses the cut message of e_qdx_truncated and keeps the first",
          "[parsers][hl7][corpus]") {
  const std::string text = read_corpus("e_qdx_truncated.hl7");
  const Hl7FileResult f = parse_hl7_file(text);
  REQUIRE(f.reports.size() == 1);
  CHECK(f.reports[0].control_id == "QDX301000127");
  CHECK(count_observations(f) == 8);
  REQUIRE(f.errors.size() == 1);
  CHECK(f.errors[0].code == RefusalReason::truncated_message);
  CHECK(f.errors[0].message == 1);
  CHECK(f.errors[0].segment == 6);
  CHECK(f.errors[0].offset == text.size());
  CHECK(labwatch::parsers::to_string(f.errors[0].code) == "truncated_message");
}

TEST_CASE("parse_hl7_file refuses e_garbage as not HL7", "[parsers][hl7][corpus]") {
  const std::string text = read_corpus("e_garbage.hl7");
  CHECK_FALSE(labwatch::parsers::looks_like_hl7(text));
  const Hl7FileResult f = parse_hl7_file(text);
  CHECK(f.reports.empty());
  REQUIRE(f.errors.size() == 1);
  CHECK(f.errors[0].code == RefusalReason::unrecognized_format);
  const Hl7FileResult empty = parse_hl7_file("");
  REQUIRE(empty.errors.size() == 1);
  CHECK(empty.errors[0].code == RefusalReason::empty_file);
}

// Sanitizer builds run the sweep below some 30 times slower. There every prefix of a few files (the
// e_* files and small ones of two dialects; e_lca stands for the third) is read, and every 13th
// prefix of the others (a different residue per file); the plain build reads every prefix of every
// file.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

// Every prefix of every corpus file gives reports or errors, and never more messages than the file.
// The messages before the one that is cut parse the same whatever follows, so each prefix is read
// from the start of the cut message (or of its predecessor while the cut is inside the new MSH's
// first bytes, which then still belong to the predecessor): the same cuts at a fraction of the
// cost. Files of up to 4 KiB are swept from their first byte.
TEST_CASE("parse_hl7_file survives every prefix of every corpus file",
          "[parsers][hl7][corpus][sweep]") {
  std::vector<std::string_view> files;
  for (const Expect& e : kCorpus) {
    files.push_back(e.file);
  }
  files.push_back("e_qdx_truncated.hl7");
  files.push_back("e_garbage.hl7");
  constexpr std::string_view kAlwaysFull[] = {"a_qdx_04.hl7",        "c_sgh_04_mllp.hl7",
                                              "c_sgh_06_batch.hl7",  "e_lca_implausible.hl7",
                                              "e_qdx_truncated.hl7", "e_garbage.hl7"};
  std::size_t prefixes = 0;
  std::size_t bytes = 0;
  for (std::size_t file = 0; file < files.size(); ++file) {
    const std::string_view name = files[file];
    const bool full = !kSanitized || std::find(std::begin(kAlwaysFull), std::end(kAlwaysFull),
                                               name) != std::end(kAlwaysFull);
    CAPTURE(name);
    const std::string text = read_corpus(name);
    bytes += text.size();
    const std::string_view all(text);
    std::vector<std::size_t> starts;  // where each message's line (with its MLLP byte) begins
    for (std::size_t p = all.find("MSH"); p != std::string_view::npos; p = all.find("MSH", p + 1)) {
      if (p == 0 || all[p - 1] == '\r' || all[p - 1] == '\n') {
        starts.push_back(p);
      } else if (all[p - 1] == '\x0b') {
        starts.push_back(p - 1);
      }
    }
    if (starts.empty() || starts.front() != 0) {
      starts.insert(starts.begin(), 0);
    }
    const bool from_zero = text.size() <= 4096;
    std::size_t k = 0;
    for (std::size_t len = 0; len <= text.size(); ++len) {
      if (!full && len % 13 != file % 13 && len != text.size()) {
        continue;
      }
      while (k + 1 < starts.size() && starts[k + 1] <= len) {
        ++k;
      }
      const bool near_start = k > 0 && len - starts[k] < 8;  // "MS", "\x0bMSH|^": not yet an MSH
      const std::size_t from = from_zero ? 0 : starts[near_start ? k - 1 : k];
      const Hl7FileResult f = parse_hl7_file(all.substr(from, len - from));
      if (f.reports.size() + f.errors.size() > starts.size() + 1 ||
          f.reports.size() != f.raw_messages.size()) {
        FAIL_CHECK("prefix of " << len << " bytes gave " << f.reports.size() << " reports");
      }
      ++prefixes;
    }
  }
  if (!kSanitized) {
    CHECK(prefixes == bytes + files.size());
    CHECK(prefixes > 250'000);
  }
}
