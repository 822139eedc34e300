// SPDX-License-Identifier: Apache-2.0
// Tests of parse_hl7_message and Hl7Message: delimiters, terminators, escapes, charsets, limits.
#include <array>
#include <catch2/catch.hpp>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "parsers/hl7_parser.hpp"

namespace {

using labwatch::parsers::Hl7Charset;
using labwatch::parsers::Hl7Field;
using labwatch::parsers::Hl7Message;
using labwatch::parsers::parse_hl7_message;
using labwatch::parsers::ParseError;
using labwatch::parsers::RefusalReason;

Hl7Message parse_ok(std::string_view text) {
  auto m = parse_hl7_message(text);
  if (!m) {
    FAIL("parse failed: " << labwatch::parsers::to_string(m.error().code) << " at "
                          << m.error().offset);
  }
  return std::move(m).value();
}

ParseError parse_error(std::string_view text) {
  auto m = parse_hl7_message(text);
  REQUIRE_FALSE(m.has_value());
  return m.error();
}

// Decodes one field of the first segment with `id`.
std::string field_text(const Hl7Message& m, std::string_view id, std::size_t n) {
  const auto seg = m.find(id);
  REQUIRE(seg.has_value());
  return seg->field(n).decoded();
}

}  // namespace

TEST_CASE("parse_hl7_message reads the delimiters from MSH-1 and MSH-2", "[parsers][hl7]") {
  SECTION("the usual |^~\\&") {
    const Hl7Message m = parse_ok("MSH|^~\\&|LAB|QDX^CLIA\rPID|1||A1^^^QDX^MR~B2^^^LCA^AN\r");
    CHECK(m.delimiters().field == '|');
    CHECK(m.delimiters().component == '^');
    CHECK(m.delimiters().repetition == '~');
    CHECK(m.delimiters().escape == '\\');
    CHECK(m.delimiters().subcomponent == '&');
    CHECK(m.delimiters().truncation == '\0');
    const auto pid = m.find("PID");
    REQUIRE(pid);
    CHECK(pid->field(3).repetition(2).component(4).raw() == "LCA");
  }
  SECTION("a hospital LIS using $ for components") {
    const Hl7Message m =
        parse_ok("MSH|$~\\&|SYNLIS|SGH\nPID|1||SGH948271$$$SGH$MR||EXAMPLAR$HANA$J\n");
    CHECK(m.delimiters().component == '$');
    const auto pid = m.find("PID");
    REQUIRE(pid);
    CHECK(pid->field(3).component(1).raw() == "SGH948271");
    CHECK(pid->field(3).component(4).raw() == "SGH");
    CHECK(pid->field(3).component(5).raw() == "MR");
    CHECK(pid->field(5).component(2).raw() == "HANA");
  }
  SECTION("an unusual but legal set, escapes included") {
    const Hl7Message m = parse_ok("MSH#!@%*#APP\rNTE#1#a!b@c*d#x%F%y%S%z%E%\r");
    CHECK(m.delimiters().field == '#');
    CHECK(m.delimiters().escape == '%');
    const auto nte = m.find("NTE");
    REQUIRE(nte);
    CHECK(nte->field(2).repetition(1).component(2).subcomponent(1).raw() == "b");
    CHECK(nte->field(2).repetition(2).subcomponent(2).raw() == "d");
    CHECK(nte->field(3).decoded() == "x#y!z%");
  }
  SECTION("v2.7 truncation character and a minimal MSH-2") {
    CHECK(parse_ok("MSH|^~\\&#|A\r").delimiters().truncation == '#');
    const Hl7Message m = parse_ok("MSH|^|A^B~C\r");
    CHECK(m.delimiters().repetition == '\0');
    CHECK(m.delimiters().escape == '\0');
    const auto msh = m.find("MSH");
    CHECK(msh->field(3).repetition_count() == 1);
    CHECK(msh->field(3).component(2).raw() == "B~C");
  }
}

TEST_CASE("parse_hl7_message refuses invalid encoding characters with their offset",
          "[parsers][hl7]") {
  struct Case {
    std::string_view text;
    std::size_t offset;
    int field;
  };
  const Case cases[] = {
      {"MSH|0|||||||||||0", 4, 2},  // MSH-2 is a digit
      {"MSHH0\r", 3, 1},            // the field separator is a letter
      {"MSH", 3, 1},                // nothing after the id
      {"MSH |^~\\&|A", 3, 1},       // a space
      {"MSH||A", 4, 2},             // empty MSH-2
      {"MSH|^^\\&|A", 4, 2},        // a repeated character
      {"MSH|^~\\&#!|A", 4, 2},      // six characters
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    auto m = parse_hl7_message(c.text);
    REQUIRE_FALSE(m.has_value());
    CHECK(m.error().code == RefusalReason::bad_delimiters);
    CHECK(m.error().offset == c.offset);
    CHECK(m.error().segment == 1);
    CHECK(m.error().field == c.field);
  }
  // The field separator ends MSH-2: "^~" (no escape, no subcomponent) is a legal set.
  const Hl7Message m = parse_ok("MSH|^~|&|A");
  CHECK(m.delimiters().escape == '\0');
  CHECK(m.segment(0).field(3).raw() == "&");
}

TEST_CASE("parse_hl7_message accepts CR, LF, CR LF, mixed terminators and blank lines",
          "[parsers][hl7]") {
  const std::string_view variants[] = {
      "MSH|^~\\&|A\rPID|1\rOBX|1|NM\r",
      "MSH|^~\\&|A\nPID|1\nOBX|1|NM\n",
      "MSH|^~\\&|A\r\nPID|1\r\nOBX|1|NM\r\n",
      "MSH|^~\\&|A\r\nPID|1\nOBX|1|NM\r",
      "\r\n\nMSH|^~\\&|A\r\n\r\n  \r\nPID|1\n\n\rOBX|1|NM",
      "\xEF\xBB\xBFMSH|^~\\&|A\rPID|1\rOBX|1|NM\r",
  };
  for (const std::string_view text : variants) {
    CAPTURE(text);
    const Hl7Message m = parse_ok(text);
    REQUIRE(m.segment_count() == 3);
    CHECK(m.segment(0).id() == "MSH");
    CHECK(m.segment(1).id() == "PID");
    CHECK(m.segment(1).field(1).raw() == "1");
    CHECK(m.segment(2).id() == "OBX");
    CHECK(m.segment(2).field(2).raw() == "NM");
    CHECK(m.segment(2).field_count() == 2);
  }
}

TEST_CASE("Hl7Segment reports offsets and physical lines", "[parsers][hl7]") {
  // Lines end at CR, LF or CR LF: the blank line between PID and OBX counts.
  const std::string_view text = "MSH|^~\\&|A\r\nPID|1|x\r\n\nOBX|1|NM|c\rNTE";
  const Hl7Message m = parse_ok(text);
  REQUIRE(m.segment_count() == 4);
  CHECK(m.segment(0).line() == 0);
  CHECK(m.segment(1).line() == 1);
  CHECK(m.segment(1).offset() == 12);
  CHECK(m.segment(1).number() == 2);
  CHECK(m.segment(2).line() == 3);
  CHECK(m.segment(2).offset() == 22);
  CHECK(m.segment(2).field_offset(3) == 31);
  CHECK(text.substr(31, 1) == "c");
  CHECK(m.segment(2).field_offset(9) == 32);  // absent: the end of the segment
  CHECK(m.segment(3).id() == "NTE");
  CHECK(m.segment(3).field_count() == 0);
  CHECK(m.segment(3).line() == 4);
}

TEST_CASE("Hl7Segment numbers MSH fields as the standard does", "[parsers][hl7]") {
  const Hl7Message m =
      parse_ok("MSH|^~\\&|LAB|QDX^00D0000001^CLIA|||20240922083200-0400||ORU^R01|C1|P|2.3\r");
  const auto msh = m.segment(0);
  CHECK(msh.field(0).raw() == "MSH");
  CHECK(msh.field(1).raw() == "|");
  CHECK(msh.field(2).raw() == "^~\\&");
  CHECK(msh.field(3).raw() == "LAB");
  CHECK(msh.field(4).component(1).raw() == "QDX");
  CHECK(msh.field(9).component(2).raw() == "R01");
  CHECK(msh.field(12).raw() == "2.3");
  CHECK(msh.field_count() == 12);
  CHECK(msh.field(13).empty());
  CHECK(msh.field(500).raw().empty());
}

TEST_CASE("Hl7Field splits repetitions, components and subcomponents", "[parsers][hl7]") {
  const Hl7Message m = parse_ok("MSH|^~\\&\rPID|1||A1^^^QDX&2.16.840&ISO^MR~B2^^^LCA^AN~~C3\r");
  const Hl7Field f = m.segment(1).field(3);
  CHECK(f.repetition_count() == 4);
  CHECK(f.repetition(1).raw() == "A1^^^QDX&2.16.840&ISO^MR");
  CHECK(f.repetition(3).raw().empty());
  CHECK(f.repetition(4).raw() == "C3");
  CHECK(f.repetition(5).raw().empty());
  CHECK(f.repetition(0).raw().empty());
  // A field's component is its first repetition's component.
  CHECK(f.component(1).raw() == "A1");
  CHECK(f.component(4).raw() == "QDX&2.16.840&ISO");
  CHECK(f.component(4).subcomponent(1).raw() == "QDX");
  CHECK(f.component(4).subcomponent(3).raw() == "ISO");
  CHECK(f.component(4).subcomponent(4).raw().empty());
  CHECK(f.repetition(2).component(5).raw() == "AN");
  CHECK(f.subcomponent(1).raw() == "A1");
  CHECK(f.component(9).raw().empty());
  CHECK(f.component(1).component(1).raw() == "A1");
  CHECK(f.component(1).component(2).raw().empty());

  std::array<Hl7Field, 3> parts;
  CHECK(f.split(parts) == 4);
  CHECK(parts[1].raw() == "B2^^^LCA^AN");
  CHECK(parts[1].level() == Hl7Field::Level::repetition);
  std::array<Hl7Field, 8> comps;
  CHECK(f.repetition(1).split(comps) == 5);
  CHECK(comps[3].raw() == "QDX&2.16.840&ISO");
  CHECK(comps[3].level() == Hl7Field::Level::component);
  CHECK(m.segment(1).field(2).repetition_count() == 0);

  // Found by fuzz_hl7: '_' (one above the repetition separator '^') right after a match in the
  // last, partial word of a search was taken for a separator.
  const Hl7Message r = parse_ok("MSH|+^~\\\rOBR|1|ORU^R01POU^_R01\r");
  const Hl7Field type = r.segment(1).field(2);
  CHECK(type.repetition_count() == 3);
  CHECK(type.split(parts) == 3);
  CHECK(parts[2].raw() == "_R01");
  CHECK(type.repetition(3).raw() == "_R01");
}

TEST_CASE("Hl7Field::decode decodes escape sequences", "[parsers][hl7]") {
  const auto decode_field = [](std::string_view value) {
    const std::string text = "MSH|^~\\&\rNTE|1|L|" + std::string(value) + "|next\r";
    const Hl7Message m = parse_ok(text);
    return m.segment(1).field(3).decoded();
  };
  CHECK(decode_field("a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f") == "a|b^c&d~e\\f");
  CHECK(decode_field("line\\.br\\next") == "line\nnext");
  CHECK(decode_field("\\H\\bold\\N\\ plain") == "bold plain");
  CHECK(decode_field("\\X41\\") == "A");
  CHECK(decode_field("x\\X0D0A\\y") == "x\r\ny");
  CHECK(decode_field("\\X4a4B\\") == "JK");
  CHECK(decode_field("end\\X0D\\") == "end\r");
  // Unknown or malformed sequences stay as sent.
  CHECK(decode_field("\\Zlocal\\") == "\\Zlocal\\");
  CHECK(decode_field("\\X4\\") == "\\X4\\");
  CHECK(decode_field("\\Xzz\\") == "\\Xzz\\");
  CHECK(decode_field("\\X\\") == "\\X\\");
  CHECK(decode_field("\\C2842\\") == "\\C2842\\");
  CHECK(decode_field("\\.sp\\") == "\\.sp\\");
  CHECK(decode_field("a\\\\b") == "a\\\\b");
  // An escape at the very end of a field is not closed by the next field's text.
  CHECK(decode_field("abc\\") == "abc\\");
  CHECK(decode_field("abc\\F") == "abc\\F");
  CHECK(decode_field("\\") == "\\");
  // The HL7 null.
  CHECK(decode_field("\"\"") == "");
  CHECK(decode_field("\"x\"") == "\"x\"");
}

TEST_CASE("Hl7Field::decode returns the raw view when there is nothing to decode",
          "[parsers][hl7]") {
  const Hl7Message m = parse_ok("MSH|^~\\&\rOBX|1|NM|2276-4^FERRITIN^LN||80|ng/mL|a\\S\\b\r");
  std::string scratch;
  const Hl7Field value = m.segment(1).field(5);
  const std::string_view v = value.decode(scratch);
  CHECK(v == "80");
  CHECK(v.data() == value.raw().data());
  const std::string_view escaped = m.segment(1).field(7).decode(scratch);
  CHECK(escaped == "a^b");
  CHECK(escaped.data() == scratch.data());
  CHECK(m.encoding().has_escape);
  CHECK_FALSE(m.encoding().has_8bit);
  // MSH-2 holds the escape character itself, which does not count.
  CHECK_FALSE(parse_ok("MSH|^~\\&|A\rPID|1\r").encoding().has_escape);
  CHECK(parse_ok("MSH|^~\\&|A\\T\\B\rPID|1\r").encoding().has_escape);
}

TEST_CASE("Hl7Field::decode searches for escapes only in segments that have one",
          "[parsers][hl7]") {
  // Short segments, so that several share each 64-byte block of the scan, with an escape right
  // before and right after a segment end and in a last segment without a terminator.
  const Hl7Message m = parse_ok(
      "MSH|^~\\&|A\rNTE|1|L|x\\E\\\rNTE|2|L|plain\rNTE|3|L|\\S\\y\rNTE|4|L|plain\rNTE|5|L|\\T\\");
  REQUIRE(m.segment_count() == 6);
  std::string scratch;
  const std::array<std::string_view, 6> expected = {"", "x\\", "plain", "^y", "plain", "&"};
  for (std::size_t i = 1; i < m.segment_count(); ++i) {
    CAPTURE(i);
    const Hl7Field note = m.segment(i).field(3);
    const std::string_view text = note.decode(scratch);
    CHECK(text == expected[i]);
    // Where there is nothing to decode, the raw view itself comes back.
    CHECK((text.data() == note.raw().data()) == (expected[i] == "plain"));
  }
}

TEST_CASE("Hl7Field::decode turns MSH-18 8859/1 text into UTF-8", "[parsers][hl7]") {
  SECTION("declared ISO-8859-1: bytes and \\X escapes") {
    const Hl7Message m = parse_ok(
        "MSH|^~\\&|||||||ORU^R01|1|P|2.5||||||8859/"
        "1\rPID|1||1||M\xFCller^J\xE9r\xF4me||\\XE9\\t\\XE9\\\r");
    CHECK(m.charset() == Hl7Charset::latin1);
    CHECK(field_text(m, "PID", 5) == "M\xC3\xBCller^J\xC3\xA9r\xC3\xB4me");
    CHECK(m.segment(1).field(5).component(1).decoded() == "M\xC3\xBCller");
    CHECK(field_text(m, "PID", 7) == "\xC3\xA9t\xC3\xA9");
  }
  SECTION("declared UTF-8 stays as sent") {
    const Hl7Message m =
        parse_ok("MSH|^~\\&|||||||ORU^R01|1|P|2.5||||||UNICODE UTF-8\rPID|1||1||M\xC3\xBCller\r");
    CHECK(m.charset() == Hl7Charset::utf8);
    CHECK(field_text(m, "PID", 5) == "M\xC3\xBCller");
  }
  SECTION("undeclared: valid UTF-8 kept, other 8-bit text read as Latin-1") {
    const Hl7Message m = parse_ok("MSH|^~\\&\rPID|1||1||M\xC3\xBCller|M\xFCller\r");
    CHECK(m.charset() == Hl7Charset::unspecified);
    CHECK(m.encoding().has_8bit);
    CHECK(field_text(m, "PID", 5) == "M\xC3\xBCller");
    CHECK(field_text(m, "PID", 6) == "M\xC3\xBCller");
  }
  SECTION("MSH-18 repeats: the first repetition is the message's set") {
    const Hl7Message m = parse_ok("MSH|^~\\&|||||||ORU^R01|1|P|2.5||||||8859/1~UNICODE UTF-8\r");
    CHECK(m.charset() == Hl7Charset::latin1);
  }
}

TEST_CASE("hl7_charset_from_name maps MSH-18 values", "[parsers][hl7]") {
  using labwatch::parsers::hl7_charset_from_name;
  CHECK(hl7_charset_from_name("") == Hl7Charset::unspecified);
  CHECK(hl7_charset_from_name("  ") == Hl7Charset::unspecified);
  CHECK(hl7_charset_from_name("ASCII") == Hl7Charset::ascii);
  CHECK(hl7_charset_from_name("UNICODE UTF-8") == Hl7Charset::utf8);
  CHECK(hl7_charset_from_name("unicode utf-8 ") == Hl7Charset::utf8);
  CHECK(hl7_charset_from_name("UTF-8") == Hl7Charset::utf8);
  CHECK(hl7_charset_from_name("8859/1") == Hl7Charset::latin1);
  CHECK(hl7_charset_from_name("ISO IR100") == Hl7Charset::latin1);
  CHECK(hl7_charset_from_name("ISO IR6") == Hl7Charset::ascii);
  CHECK(hl7_charset_from_name("ISO IR192") == Hl7Charset::utf8);
  CHECK(hl7_charset_from_name("UNICODE") == Hl7Charset::utf8);
  CHECK(hl7_charset_from_name("ISO-8859-1") == Hl7Charset::latin1);
  CHECK(hl7_charset_from_name("iso_ir 100") == Hl7Charset::latin1);
  CHECK(hl7_charset_from_name("8859/2") == Hl7Charset::iso8859_2);
  CHECK(hl7_charset_from_name("ISO IR101") == Hl7Charset::iso8859_2);
  CHECK(hl7_charset_from_name("8859/3") == Hl7Charset::iso8859_3);
  CHECK(hl7_charset_from_name("8859/4") == Hl7Charset::iso8859_4);
  CHECK(hl7_charset_from_name("8859/5") == Hl7Charset::iso8859_5);
  CHECK(hl7_charset_from_name("ISO IR144") == Hl7Charset::iso8859_5);
  CHECK(hl7_charset_from_name("8859/6") == Hl7Charset::iso8859_6);
  CHECK(hl7_charset_from_name("8859/7") == Hl7Charset::iso8859_7);
  CHECK(hl7_charset_from_name("ISO IR126") == Hl7Charset::iso8859_7);
  CHECK(hl7_charset_from_name("8859/8") == Hl7Charset::iso8859_8);
  CHECK(hl7_charset_from_name("8859/9") == Hl7Charset::iso8859_9);
  CHECK(hl7_charset_from_name("ISO IR148") == Hl7Charset::iso8859_9);
  CHECK(hl7_charset_from_name("8859/15") == Hl7Charset::iso8859_15);
  CHECK(hl7_charset_from_name("ISO-8859-15") == Hl7Charset::iso8859_15);
  CHECK(hl7_charset_from_name("ISO IR87") == Hl7Charset::unsupported);
  CHECK(hl7_charset_from_name("GB 18030-2000") == Hl7Charset::unsupported);
  CHECK(hl7_charset_from_name("UNICODE UTF-16") == Hl7Charset::unsupported);
  CHECK(hl7_charset_from_name("LATIN-1-ISH") == Hl7Charset::unknown);
  CHECK(hl7_charset_from_name("ANSI") == Hl7Charset::unknown);
  CHECK(hl7_charset_from_name(std::string(100, 'x')) == Hl7Charset::unknown);
}

TEST_CASE("Hl7Field::decode reads each declared ISO 8859 part by its table", "[parsers][hl7]") {
  SECTION("8859/2: Polish and Czech letters") {
    const Hl7Message m = parse_ok(
        "MSH|^~\\&|||||||ORU^R01|1|P|2.5||||||8859/2\rPID|1||1||\xA3\xF3"
        "d\xBC^\xA9t\xECp\xE1n\r");
    CHECK(m.charset() == Hl7Charset::iso8859_2);
    // Ł ó d ź ^ Š t ě p á n
    CHECK(field_text(m, "PID", 5) ==
          "\xC5\x81\xC3\xB3"
          "d\xC5\xBA^\xC5\xA0t\xC4\x9Bp\xC3\xA1n");
  }
  SECTION("8859/15: the euro sign where 8859/1 has the currency sign") {
    const Hl7Message m = parse_ok("MSH|^~\\&|||||||ORU^R01|1|P|2.5||||||8859/15\rNTE|1||5 \xA4\r");
    CHECK(field_text(m, "NTE", 3) == "5 \xE2\x82\xAC");
  }
  SECTION("8859/5: Cyrillic") {
    const Hl7Message m =
        parse_ok("MSH|^~\\&|||||||ORU^R01|1|P|2.5||||||ISO IR144\rPID|1||1||\xB8\xD2\xD0\xDD\r");
    CHECK(field_text(m, "PID", 5) == "\xD0\x98\xD0\xB2\xD0\xB0\xD0\xBD");  // Иван
  }
  SECTION("a declared part wins over text that happens to be valid UTF-8") {
    const Hl7Message m =
        parse_ok("MSH|^~\\&|||||||ORU^R01|1|P|2.5||||||8859/1\rPID|1||1||\xC3\xBC\r");
    CHECK(field_text(m, "PID", 5) == "\xC3\x83\xC2\xBC");
  }
  SECTION("an unknown label reads like an empty MSH-18") {
    const Hl7Message m = parse_ok(
        "MSH|^~\\&|||||||ORU^R01|1|P|2.5||||||WIN-LATIN\rPID|1||1||M\xFCller|M\xC3\xBCller\r");
    CHECK(m.charset() == Hl7Charset::unknown);
    CHECK(field_text(m, "PID", 5) == "M\xC3\xBCller");
    CHECK(field_text(m, "PID", 6) == "M\xC3\xBCller");
  }
}

TEST_CASE("parse_hl7_message refuses a bad segment id with its place", "[parsers][hl7]") {
  SECTION("a two-letter id") {
    const ParseError e = parse_error("MSH|^~\\&|A\rPID|1\r\nPI|2\r");
    CHECK(e.code == RefusalReason::bad_segment_id);
    CHECK(e.offset == 18);
    CHECK(e.segment == 3);
    CHECK(e.line == 3);
  }
  SECTION("lower case and a leading space") {
    CHECK(parse_error("MSH|^~\\&\robx|1\r").code == RefusalReason::bad_segment_id);
    CHECK(parse_error("MSH|^~\\&\r OBX|1\r").code == RefusalReason::bad_segment_id);
  }
  SECTION("no MSH") {
    const ParseError e = parse_error("PID|1\rMSH|^~\\&\r");
    CHECK(e.code == RefusalReason::missing_msh);
    CHECK(e.offset == 0);
    CHECK(parse_error("").code == RefusalReason::missing_msh);
    CHECK(parse_error("\r\n\r\n").code == RefusalReason::missing_msh);
  }
}

TEST_CASE("parse_hl7_message survives inputs that broke other parsers", "[parsers][hl7]") {
  CHECK(parse_error("MSH|0|||||||||||0").code == RefusalReason::bad_delimiters);
  CHECK(parse_error("MSHH0\r").code == RefusalReason::bad_delimiters);
  {
    // MSH-2 "^" alone is legal; the next line's id is not.
    const ParseError e = parse_error("MSH|^|||||||^A|||2.2\r^AA");
    CHECK(e.code == RefusalReason::bad_segment_id);
    CHECK(e.offset == 21);
    CHECK(e.segment == 2);
  }
  {
    // An escape character as the last byte of the message and of a component.
    const Hl7Message m = parse_ok("MSH|^~\\&\rNTE|1|L|x^y\\");
    CHECK(m.segment(1).field(3).component(2).decoded() == "y\\");
    CHECK(m.segment(1).field(3).decoded() == "x^y\\");
  }
  {
    const Hl7Message m = parse_ok("MSH|^~\\&|\\");
    CHECK(m.segment(0).field(3).decoded() == "\\");
  }
}

TEST_CASE("parse_hl7_message enforces its explicit limits", "[parsers][hl7][limits]") {
  using labwatch::parsers::kMaxFieldBytes;
  using labwatch::parsers::kMaxMessageBytes;
  using labwatch::parsers::kMaxSegmentsPerMessage;
  SECTION("a field of exactly the limit is accepted, one byte more is refused") {
    const std::string head = "MSH|^~\\&\rOBX|1|TX|c||";
    std::string text = head + std::string(kMaxFieldBytes, 'x') + "|u\r";
    const Hl7Message m = parse_ok(text);
    CHECK(m.segment(1).field(5).raw().size() == kMaxFieldBytes);
    CHECK(m.segment(1).field(6).raw() == "u");
    text = head + std::string(kMaxFieldBytes + 1, 'x') + "|u\r";
    const ParseError e = parse_error(text);
    CHECK(e.code == RefusalReason::field_too_long);
    CHECK(e.offset == head.size());
    CHECK(e.segment == 2);
    CHECK(e.field == 5);
  }
  SECTION("in MSH, too, fields are numbered as the standard does") {
    const std::string head = "MSH|^~\\&|";
    const ParseError e = parse_error(head + std::string(kMaxFieldBytes + 1, 'x') + "|F\r");
    CHECK(e.code == RefusalReason::field_too_long);
    CHECK(e.offset == head.size());
    CHECK(e.segment == 1);
    CHECK(e.field == 3);
    const ParseError two =
        parse_error("MSH|^~\\&\rPID|1\rZZ1|" + std::string(kMaxFieldBytes + 1, 'y'));
    CHECK(two.field == 1);
    CHECK(two.segment == 3);
  }
  SECTION("many segments and fields, beyond what the first storage holds") {
    std::string text = "MSH|^~\\&|A\r";
    for (int i = 0; i < 3000; ++i) {
      text += "OBX|" + std::to_string(i) + "|NM|c||" + std::to_string(i * 7) + "|u\n";
    }
    const Hl7Message m = parse_ok(text);
    REQUIRE(m.segment_count() == 3001);
    for (const std::size_t i : {std::size_t{1}, std::size_t{600}, std::size_t{3000}}) {
      const auto obx = m.segment(i);
      CHECK(obx.field_count() == 6);
      CHECK(obx.field(1).raw() == std::to_string(i - 1));
      CHECK(obx.field(5).raw() == std::to_string((i - 1) * 7));
      CHECK(obx.field(6).raw() == "u");
      CHECK(obx.line() == static_cast<int>(i));
    }
  }
  SECTION("a 1 MB field that ends the message") {
    const std::string text = "MSH|^~\\&\rNTE|1|L|" + std::string(1'000'000, '\\');
    const Hl7Message m = parse_ok(text);
    CHECK(m.segment(1).field(3).raw().size() == 1'000'000);
    CHECK(m.segment(1).field(3).decoded() == std::string(1'000'000, '\\'));
  }
  SECTION("too many segments") {
    std::string text = "MSH|^~\\&\r";
    for (std::size_t i = 0; i < kMaxSegmentsPerMessage; ++i) {
      text += "NTE\r";
    }
    const ParseError e = parse_error(text);
    CHECK(e.code == RefusalReason::too_many_segments);
    CHECK(e.segment == static_cast<int>(kMaxSegmentsPerMessage) + 1);
    CHECK(e.offset == text.size() - 4);
    text.resize(text.size() - 4);
    CHECK(parse_ok(text).segment_count() == kMaxSegmentsPerMessage);
  }
  SECTION("too many fields") {
    const std::string text =
        "MSH|^~\\&\rZZZ" + std::string(labwatch::parsers::kMaxFieldsPerMessage, '|');
    const ParseError e = parse_error(text);
    CHECK(e.code == RefusalReason::too_many_fields);
    CHECK(e.segment == 2);
  }
  SECTION("a message larger than the message limit") {
    const std::string text = "MSH|^~\\&\rNTE|1|L|" + std::string(kMaxMessageBytes, 'x');
    const ParseError e = parse_error(text);
    CHECK(e.code == RefusalReason::input_too_large);
    CHECK(e.offset == 0);
  }
}

TEST_CASE("parse_hl7_message reuses an Hl7Message across messages and errors", "[parsers][hl7]") {
  Hl7Message m;
  REQUIRE_FALSE(parse_hl7_message("MSH|^~\\&\rOBX|1|NM|a||1\rOBX|2|NM|b||2\r", m));
  CHECK(m.segment_count() == 3);
  const auto error = parse_hl7_message("MSH|^~\\&\rXX|1\r", m);
  REQUIRE(error);
  CHECK(error->code == RefusalReason::bad_segment_id);
  REQUIRE_FALSE(parse_hl7_message("MSH|$~\\&\nPID|1||id$$$A\n", m));
  CHECK(m.segment_count() == 2);
  CHECK(m.delimiters().component == '$');
  CHECK(m.segment(1).field(3).component(4).raw() == "A");
  CHECK_FALSE(m.find("OBX").has_value());
}

TEST_CASE("Hl7Field splits random text exactly like a naive splitter", "[parsers][hl7]") {
  // The views test up to 16 bytes at once, a short piece as its first and last 8 (or 4) bytes
  // side by side; this compares them with the obvious byte loop on text full of delimiters,
  // 8-bit bytes and NULs, of every length up to 70. Each text sits alone in a buffer of its exact
  // size, so that a sanitizer build catches any read past it.
  const auto pieces = [](std::string_view s, char sep) {
    std::vector<std::string_view> out;
    std::size_t start = 0;
    for (std::size_t i = 0; i <= s.size(); ++i) {
      if (i == s.size() || (sep != '\0' && s[i] == sep)) {
        out.push_back(s.substr(start, i - start));
        start = i + 1;
      }
    }
    return out;
  };
  // '_', DEL, ']' and '\'' follow '^', '~', '\\' and '&': a borrow from a match marks such a byte.
  const std::string_view alphabet("ab^~&\\\x80\xff\x01\0^~_\x7f]'", 16);
  labwatch::parsers::Hl7Encoding no_repetition;
  no_repetition.delimiters.repetition = '\0';
  std::mt19937 rng(20260301);
  std::size_t mismatches = 0;
  for (int round = 0; round < 6000; ++round) {
    const std::size_t size = round < 710 ? static_cast<std::size_t>(round) % 71 : rng() % 71;
    std::vector<char> buffer(size);
    for (char& c : buffer) {
      c = alphabet[rng() % alphabet.size()];
    }
    const std::string_view raw(buffer.data(), size);
    const labwatch::parsers::Hl7Encoding& enc =
        round % 5 == 4 ? no_repetition : labwatch::parsers::kDefaultHl7Encoding;
    const char rep = enc.delimiters.repetition;
    const Hl7Field f(raw, enc);
    const auto reps = pieces(raw, rep);
    mismatches += f.repetition_count() != (raw.empty() ? 0 : reps.size());
    for (std::size_t r = 0; r <= reps.size(); ++r) {
      mismatches += f.repetition(r + 1).raw() != (r < reps.size() ? reps[r] : std::string_view{});
    }
    const auto comps = pieces(reps[0], '^');
    for (std::size_t c = 0; c <= comps.size() + 1; ++c) {
      mismatches += f.component(c + 1).raw() != (c < comps.size() ? comps[c] : std::string_view{});
    }
    mismatches += !f.component(0).raw().empty();
    const auto subs = pieces(comps.back(), '&');
    for (std::size_t s = 0; s <= subs.size(); ++s) {
      const std::string_view expected = s < subs.size() ? subs[s] : std::string_view{};
      mismatches += f.component(comps.size()).subcomponent(s + 1).raw() != expected;
    }
    mismatches += f.subcomponent(1).raw() != pieces(comps[0], '&')[0];
    std::array<Hl7Field, 4> parts;
    mismatches += f.split(parts) != reps.size();
    for (std::size_t r = 0; r < reps.size() && r < parts.size(); ++r) {
      mismatches += parts[r].raw() != reps[r];
    }
    const std::size_t last = reps.size() - 1;
    const auto last_comps = pieces(reps[last], '^');
    mismatches += f.repetition(last + 1).split(parts) != last_comps.size();
    for (std::size_t c = 0; c < last_comps.size() && c < parts.size(); ++c) {
      mismatches += parts[c].raw() != last_comps[c];
    }
  }
  CHECK(mismatches == 0);
}
