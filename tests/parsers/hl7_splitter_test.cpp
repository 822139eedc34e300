// SPDX-License-Identifier: Apache-2.0
// Tests of Hl7Splitter: MLLP, batches, terminators, chunked feeding, truncation, bounded memory.
#include <catch2/catch.hpp>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "parsers/hl7_parser.hpp"

namespace {

using labwatch::parsers::Hl7Splitter;
using labwatch::parsers::RawMessage;
using labwatch::parsers::RefusalReason;

struct Piece {
  std::string bytes;
  int index = 0;
  std::size_t offset = 0;
  int first_line = 0;
  bool truncated = false;
  friend bool operator==(const Piece&, const Piece&) = default;
};

Piece copy(const RawMessage& m) {
  return {std::string(m.bytes), m.index, m.offset, m.first_line, m.truncated};
}

// Splits `input` fed in chunks of `chunk` bytes; chunk 0 splits it in place.
std::vector<Piece> split(std::string_view input, std::size_t chunk = 0) {
  std::vector<Piece> out;
  if (chunk == 0) {
    Hl7Splitter s(input);
    while (auto m = s.next()) {
      out.push_back(copy(*m));
    }
    return out;
  }
  Hl7Splitter s;
  for (std::size_t i = 0; i < input.size(); i += chunk) {
    s.feed(input.substr(i, chunk));
    while (auto m = s.next()) {
      out.push_back(copy(*m));
    }
  }
  s.finish();
  while (auto m = s.next()) {
    out.push_back(copy(*m));
  }
  return out;
}

// Splits `input` as a reader of a file would with feed_in_place: each chunk is read into one
// reused buffer, which is overwritten (here first with junk) once next() has returned nullopt.
// `drain_every` > 1 feeds that many chunks, each in a buffer of its own, before draining.
std::vector<Piece> split_in_place(std::string_view input, std::size_t chunk,
                                  std::size_t drain_every = 1) {
  std::vector<Piece> out;
  Hl7Splitter s;
  std::vector<std::string> buffers(drain_every, std::string(chunk, '\0'));
  std::size_t fed = 0;
  for (std::size_t i = 0; i < input.size(); i += chunk) {
    std::string& buffer = buffers[fed % drain_every];
    const std::string_view piece = input.substr(i, chunk);
    buffer.replace(0, piece.size(), piece);
    s.feed_in_place(std::string_view(buffer).substr(0, piece.size()));
    if (++fed % drain_every != 0) {
      continue;
    }
    while (auto m = s.next()) {
      out.push_back(copy(*m));
    }
    for (std::string& b : buffers) {
      b.assign(chunk, '\r');  // a splitter still reading a buffer now sees other bytes
    }
  }
  s.finish();
  while (auto m = s.next()) {
    out.push_back(copy(*m));
  }
  return out;
}

const std::string kMsgA =
    "MSH|^~\\&|A|F|||20240101||ORU^R01|A1|P|2.5\rPID|1||1\rOBX|1|NM|x||1||||||F";
const std::string kMsgB =
    "MSH|^~\\&|A|F|||20240101||ORU^R01|B1|P|2.5\rPID|1||2\rOBX|1|NM|x||2||||||F";

}  // namespace

TEST_CASE("Hl7Splitter cuts a file into messages with offsets and lines",
          "[parsers][hl7][splitter]") {
  const std::string input = kMsgA + "\r" + kMsgB + "\r";
  const auto pieces = split(input);
  REQUIRE(pieces.size() == 2);
  CHECK(pieces[0].bytes == kMsgA);
  CHECK(pieces[0].index == 0);
  CHECK(pieces[0].offset == 0);
  CHECK(pieces[0].first_line == 1);
  CHECK_FALSE(pieces[0].truncated);
  CHECK(pieces[1].bytes == kMsgB);
  CHECK(pieces[1].index == 1);
  CHECK(pieces[1].offset == kMsgA.size() + 1);
  CHECK(pieces[1].first_line == 4);
  CHECK_FALSE(pieces[1].truncated);
}

TEST_CASE("Hl7Splitter accepts LF, CR LF, blank lines and a BOM", "[parsers][hl7][splitter]") {
  const std::string input =
      "\xEF\xBB\xBF\r\n\r\nMSH|^~\\&|A\r\nPID|1\r\n\r\n   \r\nMSH|^~\\&|B\nPID|2\n\n";
  const auto pieces = split(input);
  REQUIRE(pieces.size() == 2);
  CHECK(pieces[0].bytes == "MSH|^~\\&|A\r\nPID|1");
  CHECK(pieces[0].offset == 7);
  CHECK(pieces[0].first_line == 3);
  CHECK(pieces[1].bytes == "MSH|^~\\&|B\nPID|2");
  CHECK(pieces[1].first_line == 7);
}

TEST_CASE("Hl7Splitter drops MLLP framing", "[parsers][hl7][splitter]") {
  const std::string input = "\x0b" + kMsgA + "\r\x1c\r\x0b" + kMsgB + "\r\x1c\r";
  const auto pieces = split(input);
  REQUIRE(pieces.size() == 2);
  CHECK(pieces[0].bytes == kMsgA);
  CHECK(pieces[0].offset == 1);
  CHECK(pieces[0].first_line == 1);
  CHECK_FALSE(pieces[0].truncated);
  CHECK(pieces[1].bytes == kMsgB);
  CHECK(pieces[1].offset == kMsgA.size() + 5);
  CHECK(pieces[1].first_line == 4);  // the CR after 0x1C is framing, not a line
  CHECK_FALSE(pieces[1].truncated);

  SECTION("an end byte right after the last segment, without its CR") {
    const auto p = split("\x0b" + kMsgA + "\x1c\r");
    REQUIRE(p.size() == 1);
    CHECK(p[0].bytes == kMsgA);
    CHECK_FALSE(p[0].truncated);
  }
  SECTION("a block the input ends inside is truncated, even at a segment end") {
    const auto p = split("\x0b" + kMsgA + "\r\x1c\r\x0b" + kMsgB + "\r");
    REQUIRE(p.size() == 2);
    CHECK_FALSE(p[0].truncated);
    CHECK(p[1].truncated);
  }
  SECTION("a block that a new start byte interrupts is truncated") {
    const auto p = split("\x0b" + kMsgA + "\r\x0b" + kMsgB + "\r\x1c\r");
    REQUIRE(p.size() == 2);
    CHECK(p[0].truncated);
    CHECK_FALSE(p[1].truncated);
  }
}

TEST_CASE("Hl7Splitter drops FHS/BHS/BTS/FTS batch envelopes", "[parsers][hl7][splitter]") {
  const std::string input =
      "FHS|^~\\&|LIS\nBHS|^~\\&|LIS\n" + kMsgA + "\n" + kMsgB + "\nBTS|2\nFTS|1\n";
  const auto pieces = split(input);
  REQUIRE(pieces.size() == 2);
  CHECK(pieces[0].bytes == kMsgA);
  CHECK(pieces[0].first_line == 3);
  CHECK(pieces[1].bytes == kMsgB);
  CHECK_FALSE(pieces[1].truncated);
}

TEST_CASE("Hl7Splitter gives stray lines as a message that fails as missing_msh",
          "[parsers][hl7][splitter]") {
  const auto pieces = split("junk line\r" + kMsgA + "\r");
  REQUIRE(pieces.size() == 2);
  CHECK(pieces[0].bytes == "junk line");
  const auto parsed = labwatch::parsers::parse_hl7_message(pieces[0].bytes);
  REQUIRE_FALSE(parsed.has_value());
  CHECK(parsed.error().code == RefusalReason::missing_msh);
  CHECK(pieces[1].index == 1);
  CHECK(pieces[1].bytes == kMsgA);
}

TEST_CASE("Hl7Splitter flags a message cut by the end of input", "[parsers][hl7][splitter]") {
  SECTION("a last segment that only lacks its final CR is complete") {
    const auto p = split(kMsgA + "\r" + kMsgB);
    REQUIRE(p.size() == 2);
    CHECK_FALSE(p[1].truncated);
    CHECK(p[1].bytes == kMsgB);
  }
  SECTION("an OBX that ends right after OBX-5, without a terminator, is complete") {
    const std::string lf_file =
        "MSH|^~\\&|A|F|||20240101||ORU^R01|B1|P|2.5\nPID|1||2\nOBX|1|NM|x||2";
    const auto p = split(kMsgA + "\n" + lf_file);
    REQUIRE(p.size() == 2);
    CHECK_FALSE(p[1].truncated);
    CHECK(p[1].bytes.ends_with("OBX|1|NM|x||2"));
    CHECK_FALSE(split(kMsgA + "\rOBX|2|NM|x||7|mg/L")[0].truncated);
  }
  SECTION("an OBX cut before OBX-5") {
    const auto p = split(kMsgA + "\r" + "MSH|^~\\&|A|F|||20240101||ORU^R01|B1|P|2.5\rOBX|1|NM|x|");
    REQUIRE(p.size() == 2);
    CHECK_FALSE(p[0].truncated);
    CHECK(p[1].truncated);
    CHECK(split(kMsgA + "\rOBX|2|NM|2276-4^FERRI")[0].truncated);  // inside OBX-3
    CHECK(split(kMsgA + "\rOBX|2|NM|x")[0].truncated);
  }
  SECTION("an OBX cut with a terminator after it is not detectable, and not flagged") {
    CHECK_FALSE(split(kMsgA + "\rOBX|2|NM|x|\r")[0].truncated);
  }
  SECTION("cut inside a segment id, or inside MSH") {
    CHECK(split(kMsgA + "\rOB")[0].truncated);
    CHECK(split("MSH|^~\\&|A|F")[0].truncated);
    CHECK(split("MSH")[0].truncated);
    CHECK_FALSE(split("MSH|^~\\&|A|F|||20240101||ORU^R01|A1|P|2.5")[0].truncated);
  }
  SECTION("segments the rule knows nothing about") {
    CHECK_FALSE(split(kMsgA + "\rNTE|1|L|par")[0].truncated);
    CHECK_FALSE(split(kMsgA + "\rZPS|1")[0].truncated);
    CHECK(split(kMsgA + "\rPID|1|x")[0].truncated);
    CHECK(split(kMsgA + "\rOBR|1|x")[0].truncated);
  }
}

TEST_CASE("Hl7Splitter gives the same messages whatever the chunk size",
          "[parsers][hl7][splitter]") {
  const std::string input =
      "\xEF\xBB\xBF"
      "FHS|^~\\&\r\nBHS|^~\\&\r\n" +
      kMsgA + "\r\n\r\n" + kMsgB + "\r\nBTS|2\r\nFTS|1\r\n\x0b" + kMsgA + "\n\x1c\r\n\x0b" + kMsgB +
      "\r\x1c\r" + "junk\n" + kMsgA + "\r" + kMsgB.substr(0, 60);
  const auto whole = split(input);
  REQUIRE(whole.size() == 7);
  CHECK(whole[4].bytes == "junk");
  CHECK(whole[6].truncated);
  CHECK(whole[2].first_line == 12);
  CHECK(whole[3].first_line == 16);  // "\x1c\r\n": the framing CR is no line break, the LF is
  CHECK(whole[5].first_line == 20);
  for (const std::size_t chunk : std::initializer_list<std::size_t>{1, 2, 3, 5, 16, 64, 1000}) {
    CAPTURE(chunk);
    CHECK(split(input, chunk) == whole);
    CHECK(split_in_place(input, chunk) == whole);
    CHECK(split_in_place(input, chunk, 3) == whole);
  }
}

TEST_CASE("Hl7Splitter::feed_in_place gives views of the chunk and copies only what straddles",
          "[parsers][hl7][splitter]") {
  // A message ends where the next one starts, so the last message of a chunk always waits for
  // the next chunk (or finish) and is copied; so is one that the chunk boundary cuts.
  const std::string chunk1 = kMsgA + "\r" + kMsgB + "\r" + kMsgA.substr(0, 20);
  const std::string chunk2 = kMsgA.substr(20) + "\r" + kMsgB + "\r" + kMsgA + "\r";
  const auto in = [](const RawMessage& m, const std::string& chunk) {
    return m.bytes.data() >= chunk.data() && m.bytes.data() < chunk.data() + chunk.size();
  };
  Hl7Splitter s;
  s.feed_in_place(chunk1);
  auto m = s.next();
  REQUIRE(m);
  CHECK(m->bytes == kMsgA);
  CHECK(m->bytes.data() == chunk1.data());  // in place: no copy
  CHECK_FALSE(s.next());                    // B waits for the line after it

  s.feed_in_place(chunk2);
  m = s.next();
  REQUIRE(m);
  CHECK(m->bytes == kMsgB);
  CHECK_FALSE(in(*m, chunk1));
  CHECK(m->offset == kMsgA.size() + 1);
  CHECK(m->first_line == 4);
  m = s.next();
  REQUIRE(m);
  CHECK(m->bytes == kMsgA);  // cut by the chunk boundary: stitched from both chunks
  CHECK_FALSE(in(*m, chunk2));
  CHECK(m->offset == kMsgA.size() + kMsgB.size() + 2);
  CHECK(m->first_line == 7);
  m = s.next();
  REQUIRE(m);
  CHECK(m->bytes == kMsgB);
  CHECK(m->bytes.data() == chunk2.data() + (kMsgA.size() - 20) + 1);  // in place again
  CHECK(m->offset == 2 * kMsgA.size() + kMsgB.size() + 3);
  CHECK(m->first_line == 10);
  CHECK_FALSE(s.next());
  s.finish();
  m = s.next();
  REQUIRE(m);
  CHECK(m->bytes == kMsgA);
  CHECK(m->index == 4);
  CHECK(m->first_line == 13);
  CHECK_FALSE(s.next());
}

TEST_CASE("Hl7Splitter streams random inputs like the whole input, copied or in place",
          "[parsers][hl7][splitter]") {
  // Lines that open, continue, frame and end messages, joined by every kind of line end.
  std::vector<std::string> lines = {"MSH|^~\\&|A|F|||20240101||ORU^R01|1|P|2.5",
                                    "PID|1||1||N^G",
                                    "OBX|1|NM|x||1||||||F",
                                    "NTE|1|L|note",
                                    "FHS|^~\\&",
                                    "BHS|^~\\&",
                                    "BTS|1",
                                    "FTS|1",
                                    "",
                                    "   ",
                                    "MRG|1",
                                    "FT1|1",
                                    "BLG|1",
                                    "junk",
                                    "OB",
                                    "MSH",
                                    "\x0b",
                                    "\x1c",
                                    "\xEF\xBB\xBF"};
  lines.push_back("OBX|2|ST|y||" + std::string(300, 'v') + "||||||F");
  const std::vector<std::string> ends = {"\r", "\n", "\r\n", "\r\r", "\x1c\r", ""};
  std::mt19937 rng(42);
  for (int round = 0; round < 300; ++round) {
    std::string input;
    const std::size_t count = rng() % 40;
    for (std::size_t k = 0; k < count; ++k) {
      input += lines[rng() % lines.size()];
      input += ends[rng() % ends.size()];
    }
    const auto whole = split(input);
    for (int trial = 0; trial < 4; ++trial) {
      const std::size_t chunk = 1 + rng() % (trial < 2 ? 16 : 700);
      INFO("round " << round << " chunk " << chunk);
      REQUIRE(split(input, chunk) == whole);
      REQUIRE(split_in_place(input, chunk) == whole);
      REQUIRE(split_in_place(input, chunk, 2) == whole);
    }
  }
}

TEST_CASE("Hl7Splitter keeps memory bounded on an oversized message",
          "[parsers][hl7][splitter][limits]") {
  using labwatch::parsers::kMaxMessageBytes;
  constexpr std::size_t kChunk = 1u << 20;
  Hl7Splitter s;
  std::vector<Piece> pieces;
  std::size_t longest = 0;
  const auto drain = [&] {
    while (auto m = s.next()) {
      longest = std::max(longest, m->bytes.size());
      Piece p = copy(*m);
      p.bytes.resize(std::min<std::size_t>(p.bytes.size(), 64));
      pieces.push_back(std::move(p));
    }
  };
  const std::string head = "MSH|^~\\&|A\rNTE|1|L|";
  s.feed(head);
  drain();
  const std::string filler(kChunk, 'x');
  std::size_t fed = head.size();
  for (std::size_t i = 0; i < 3 * kMaxMessageBytes / kChunk; ++i) {  // one line, 48 MiB, no CR
    s.feed(filler);
    fed += filler.size();
    drain();
  }
  s.feed("\rOBX|1|NM|x||1\r" + kMsgB + "\r");
  s.finish();
  drain();
  REQUIRE(pieces.size() == 2);
  CHECK(longest > kMaxMessageBytes);
  CHECK(longest <= kMaxMessageBytes + kChunk);
  CHECK(pieces[0].bytes == head + std::string(64 - head.size(), 'x'));
  CHECK(pieces[1].bytes == kMsgB.substr(0, 64));
  CHECK(pieces[1].offset == fed + 15);
  CHECK(pieces[1].first_line == 4);
  CHECK(pieces[1].index == 1);

  // The oversized piece is refused by the parser, by size.
  std::string big = head + std::string(kMaxMessageBytes, 'x');
  const auto parsed = labwatch::parsers::parse_hl7_message(big);
  REQUIRE_FALSE(parsed.has_value());
  CHECK(parsed.error().code == RefusalReason::input_too_large);
}

TEST_CASE("Hl7Splitter bounds an endless line outside any message",
          "[parsers][hl7][splitter][limits]") {
  using labwatch::parsers::kMaxMessageBytes;
  Hl7Splitter s;
  const std::string filler(1u << 20, ' ');
  int produced = 0;
  for (std::size_t i = 0; i < kMaxMessageBytes / filler.size() + 2; ++i) {
    s.feed(filler);
    while (auto m = s.next()) {
      ++produced;
      CHECK(m->bytes.size() > kMaxMessageBytes);
    }
  }
  s.feed("\r" + kMsgA);
  s.finish();
  std::vector<Piece> rest;
  while (auto m = s.next()) {
    rest.push_back(copy(*m));
  }
  CHECK(produced == 1);
  REQUIRE(rest.size() == 1);
  CHECK(rest[0].bytes == kMsgA);
  CHECK(rest[0].index == 1);
}
