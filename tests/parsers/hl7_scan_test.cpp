// SPDX-License-Identifier: Apache-2.0
// Tests of the HL7 byte scans: every instruction set against a plain byte-by-byte reference.
#include "parsers/hl7_scan.hpp"

#include <array>
#include <catch2/catch.hpp>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace {

using labwatch::parsers::hl7_scan::Isa;
using labwatch::parsers::hl7_scan::kEscapedEnd;
using labwatch::parsers::hl7_scan::kScanBlock;
using labwatch::parsers::hl7_scan::StructureScan;

// The sets this machine runs; scalar always, AVX2 only where the CPU has it.
std::vector<Isa> supported_isas() {
  std::vector<Isa> out;
  for (const Isa isa : {Isa::scalar, Isa::sse2, Isa::avx2}) {
    if (labwatch::parsers::hl7_scan::isa_supported(isa)) {
      out.push_back(isa);
    }
  }
  return out;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::scalar:
      return "scalar";
    case Isa::sse2:
      return "sse2";
    case Isa::avx2:
      return "avx2";
  }
  return "?";
}

bool is_line_end(char c) { return c == '\r' || c == '\n' || c == '\x0b' || c == '\x1c'; }

std::vector<std::size_t> reference_line_ends(std::string_view data, std::size_t from) {
  std::vector<std::size_t> out;
  for (std::size_t i = from; i < data.size(); ++i) {
    if (is_line_end(data[i])) {
      out.push_back(i);
    }
  }
  return out;
}

// All line ends from `from`, collected through an output of `capacity` entries at a time.
std::vector<std::size_t> line_ends(Isa isa, std::string_view data, std::size_t from,
                                   std::size_t capacity) {
  std::vector<std::size_t> out;
  std::vector<std::size_t> buffer(capacity);
  while (true) {
    const std::size_t n =
        labwatch::parsers::hl7_scan::find_line_ends(isa, data, from, {buffer.data(), capacity});
    REQUIRE(n <= capacity);
    out.insert(out.end(), buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(n));
    if (n < capacity) {
      return out;
    }
    from = buffer[n - 1] + 1;
  }
}

// What a structural scan must report, computed byte by byte.
struct Structure {
  std::vector<std::uint32_t> seps;
  std::vector<std::uint32_t> ends;  // index into seps, plus kEscapedEnd
  bool escape_pending = false;
  bool any_8bit = false;
  friend bool operator==(const Structure&, const Structure&) = default;
};

Structure reference_structure(std::string_view text, std::size_t from, char field, char escape) {
  Structure r;
  bool escaped = false;
  for (std::size_t i = from; i < text.size(); ++i) {
    const char c = text[i];
    r.any_8bit = r.any_8bit || static_cast<unsigned char>(c) >= 0x80;
    if (c == '\r' || c == '\n') {
      const auto index = static_cast<std::uint32_t>(r.seps.size());
      r.ends.push_back(escaped ? index | kEscapedEnd : index);
      r.seps.push_back(static_cast<std::uint32_t>(i));
      escaped = false;
    } else if (c == field) {
      r.seps.push_back(static_cast<std::uint32_t>(i));
    } else if (escape != '\0' && c == escape) {
      escaped = true;
    }
  }
  r.escape_pending = escaped;
  return r;
}

// The scan through outputs of the given capacities (at least kScanBlock), drained between calls.
Structure scan(Isa isa, std::string_view text, std::size_t from, char field, char escape,
               std::size_t sep_capacity, std::size_t end_capacity) {
  std::vector<std::uint32_t> seps(sep_capacity);
  std::vector<std::uint32_t> ends(end_capacity);
  StructureScan s;
  s.text = text;
  s.field = field;
  s.escape = escape;
  s.pos = from;
  s.seps = seps.data();
  s.sep_capacity = seps.size();
  s.ends = ends.data();
  s.end_capacity = ends.size();
  Structure r;
  std::size_t base = 0;  // seps already moved to r
  for (int calls = 0; calls < 100000; ++calls) {
    const bool done = labwatch::parsers::hl7_scan::scan_structure(isa, s);
    for (std::size_t k = 0; k < s.end_count; ++k) {
      r.ends.push_back(s.ends[k] + static_cast<std::uint32_t>(base));
    }
    r.seps.insert(r.seps.end(), seps.begin(),
                  seps.begin() + static_cast<std::ptrdiff_t>(s.sep_count));
    base += s.sep_count;
    s.sep_count = 0;
    s.end_count = 0;
    if (done) {
      REQUIRE(s.pos == text.size());
      r.escape_pending = s.escape_pending;
      r.any_8bit = s.any_8bit;
      return r;
    }
  }
  FAIL("scan_structure made no progress");
  return r;
}

// Bytes a scan must tell apart: delimiters, line ends, near misses, NUL, 8-bit bytes, text.
using namespace std::string_view_literals;
constexpr std::string_view kAlphabet =
    "|||^~\\\\&\r\r\n\n\x0b\x1c\t\x1b\x1d\x1a\x01\x0c\x0e"
    "\x7f\x80\xc3\xff\0AZaz09 #"sv;

std::string random_text(std::mt19937& rng, std::size_t size) {
  std::uniform_int_distribution<std::size_t> pick(0, kAlphabet.size() - 1);
  std::string s(size, ' ');
  for (char& c : s) {
    c = kAlphabet[pick(rng)];
  }
  return s;
}

}  // namespace

TEST_CASE("hl7_scan reports AVX2 only on a CPU that has it", "[parsers][hl7][scan]") {
  CHECK(labwatch::parsers::hl7_scan::isa_supported(Isa::scalar));
  CHECK(labwatch::parsers::hl7_scan::isa_supported(labwatch::parsers::hl7_scan::best_isa()));
#if defined(__x86_64__)
  CHECK(labwatch::parsers::hl7_scan::isa_supported(Isa::sse2));
  __builtin_cpu_init();
  CHECK(labwatch::parsers::hl7_scan::isa_supported(Isa::avx2) ==
        (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi") &&
         __builtin_cpu_supports("popcnt")));
#endif
}

TEST_CASE("find_line_ends finds one line end at every position of every alignment",
          "[parsers][hl7][scan]") {
  // A buffer with room for every start alignment within 64 bytes, so that each position lands
  // at every place within a 16-, 32- and 64-byte block and at the very end of the input.
  std::vector<char> buffer(64 + 200, 'x');
  for (const Isa isa : supported_isas()) {
    INFO(isa_name(isa));
    for (std::size_t align = 0; align < 64; align += 13) {
      for (std::size_t size = 0; size <= 140; ++size) {
        const std::string_view data(buffer.data() + align, size);
        for (std::size_t at = 0; at < size; ++at) {
          for (const char end : {'\r', '\n', '\x0b', '\x1c'}) {
            buffer[align + at] = end;
            const std::vector<std::size_t> found = line_ends(isa, data, 0, 32);
            buffer[align + at] = 'x';
            REQUIRE(found.size() == 1);
            REQUIRE(found[0] == at);
          }
        }
        // None at all; and a search from every start position of an empty remainder.
        REQUIRE(line_ends(isa, data, 0, 1).empty());
        REQUIRE(line_ends(isa, data, size, 1).empty());
      }
    }
  }
}

TEST_CASE("find_line_ends agrees with a byte-by-byte search on random input",
          "[parsers][hl7][scan]") {
  std::mt19937 rng(20261127);
  std::uniform_int_distribution<std::size_t> sizes(0, 300);
  for (int round = 0; round < 400; ++round) {
    const std::string text = random_text(rng, sizes(rng));
    const std::size_t from = text.empty() ? 0 : rng() % (text.size() + 1);
    const std::vector<std::size_t> expected = reference_line_ends(text, from);
    for (const Isa isa : supported_isas()) {
      INFO(isa_name(isa) << " round " << round);
      for (const std::size_t capacity : {std::size_t{1}, std::size_t{3}, std::size_t{32}}) {
        REQUIRE(line_ends(isa, text, from, capacity) == expected);
      }
    }
    // The one-result form stops at the first.
    const std::size_t first = labwatch::parsers::hl7_scan::find_line_end(text, from);
    CHECK(first == (expected.empty() ? text.size() : expected.front()));
  }
}

TEST_CASE("scan_structure marks each separator, line end and escape at every position",
          "[parsers][hl7][scan]") {
  std::vector<char> buffer(64 + 200, 'x');
  for (const Isa isa : supported_isas()) {
    INFO(isa_name(isa));
    for (std::size_t align = 0; align < 64; align += 9) {
      for (std::size_t size = 1; size <= 140; size += (size < 70 ? 1 : 3)) {
        const std::string_view text(buffer.data() + align, size);
        for (std::size_t at = 0; at < size; ++at) {
          for (const char c : {'|', '\r', '\n', '\\', '\x80'}) {
            buffer[align + at] = c;
            const Structure expected = reference_structure(text, 0, '|', '\\');
            const Structure got = scan(isa, text, 0, '|', '\\', 256, 64);
            buffer[align + at] = 'x';
            INFO("size " << size << " at " << at << " byte " << static_cast<int>(c));
            REQUIRE(got == expected);
          }
        }
      }
    }
  }
}

TEST_CASE("scan_structure agrees with a byte-by-byte scan on random input",
          "[parsers][hl7][scan]") {
  std::mt19937 rng(7);
  std::uniform_int_distribution<std::size_t> sizes(0, 700);
  for (int round = 0; round < 300; ++round) {
    const std::string text = random_text(rng, sizes(rng));
    const std::size_t from = text.empty() ? 0 : rng() % (text.size() + 1);
    // The usual delimiters; others; and no escape character declared (NUL bytes then match none).
    const char field = round % 3 == 1 ? '#' : '|';
    const char escape = round % 3 == 2 ? '\0' : '\\';
    const Structure expected = reference_structure(text, from, field, escape);
    for (const Isa isa : supported_isas()) {
      INFO(isa_name(isa) << " round " << round);
      // Large outputs; and outputs that fill up after a block or two, so the scan resumes.
      REQUIRE(scan(isa, text, from, field, escape, 4096, 4096) == expected);
      REQUIRE(scan(isa, text, from, field, escape, kScanBlock + 5, kScanBlock) == expected);
    }
  }
}

TEST_CASE("scan_structure stops when an output has no room for a block", "[parsers][hl7][scan]") {
  const std::string text(200, '|');
  std::array<std::uint32_t, kScanBlock + 10> seps{};
  std::array<std::uint32_t, kScanBlock> ends{};
  for (const Isa isa : supported_isas()) {
    INFO(isa_name(isa));
    StructureScan s;
    s.text = text;
    s.seps = seps.data();
    s.sep_capacity = seps.size();
    s.ends = ends.data();
    s.end_capacity = ends.size();
    CHECK_FALSE(labwatch::parsers::hl7_scan::scan_structure(isa, s));
    CHECK(s.pos == kScanBlock);
    CHECK(s.sep_count == kScanBlock);
    CHECK(seps[kScanBlock - 1] == kScanBlock - 1);
    // No room left for another block: nothing moves.
    CHECK_FALSE(labwatch::parsers::hl7_scan::scan_structure(isa, s));
    CHECK(s.pos == kScanBlock);
    CHECK(s.sep_count == kScanBlock);
  }
}
