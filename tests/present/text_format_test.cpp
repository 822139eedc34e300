// SPDX-License-Identifier: Apache-2.0
// Text formatting: escaping for CSV, JSON, HTML and the one-line printable form of names.
#include "present/text_format.hpp"

#include <catch2/catch.hpp>
#include <limits>
#include <optional>
#include <string>

using labwatch::daemon::csv_field;
using labwatch::daemon::csv_text;
using labwatch::daemon::format_number;
using labwatch::daemon::html_escape;
using labwatch::daemon::json_number;
using labwatch::daemon::json_string;
using labwatch::daemon::printable;
using labwatch::daemon::utf8_sequence_length;

TEST_CASE("printable keeps a name with no control bytes as it is", "[daemon][text]") {
  CHECK(printable("a_qdx_01.hl7") == "a_qdx_01.hl7");
  CHECK(printable("Müller résultats.csv") == "Müller résultats.csv");
  CHECK(printable("") == "");
}

TEST_CASE("printable writes newlines and other control bytes as \\xNN so no line is forged",
          "[daemon][text]") {
  const std::string forged = printable("x.hl7\n- forged line\r\t\x1b[2J\x7f");
  CHECK(forged == "x.hl7\\x0A- forged line\\x0D\\x09\\x1B[2J\\x7F");
  CHECK(forged.find('\n') == std::string::npos);
  CHECK(printable(std::string("a\0b", 3)) == "a\\x00b");
}

TEST_CASE("printable escapes the backslash so an escape cannot be faked", "[daemon][text]") {
  CHECK(printable("a\\x0Ab") == "a\\\\x0Ab");
}

TEST_CASE("printable shows bytes that are not UTF-8 as \\xNN", "[daemon][text]") {
  CHECK(printable("bad\xff\xfe.hl7") == "bad\\xFF\\xFE.hl7");
  CHECK(printable("\xc3") == "\\xC3");                    // truncated sequence
  CHECK(printable("\xc0\xaf") == "\\xC0\\xAF");           // overlong '/'
  CHECK(printable("\xed\xa0\x80") == "\\xED\\xA0\\x80");  // a UTF-16 surrogate
  CHECK(printable("\xf0\x9f\x98\x80") == "\xf0\x9f\x98\x80");
}

TEST_CASE("printable escapes characters that reorder or break a line as shown", "[daemon][text]") {
  CHECK(printable("a\xc2\x85"
                  "b") == "a\\xC2\\x85b");  // NEL, a C1 control
  CHECK(printable("a\xe2\x80\xa8"
                  "b") == "a\\xE2\\x80\\xA8b");                           // LINE SEPARATOR
  CHECK(printable("x\xe2\x80\xaegnp.hl7") == "x\\xE2\\x80\\xAEgnp.hl7");  // RIGHT-TO-LEFT OVERRIDE
  CHECK(printable("\xe2\x81\xa6"
                  "a") ==
        "\\xE2\\x81\\xA6"
        "a");                                                          // LEFT-TO-RIGHT ISOLATE
  CHECK(printable("\xc2\xa0\xe2\x80\x94") == "\xc2\xa0\xe2\x80\x94");  // NBSP and an em dash stay
}

TEST_CASE("utf8_sequence_length follows the well-formed byte ranges of Unicode", "[daemon][text]") {
  CHECK(utf8_sequence_length("a", 0) == 1);
  CHECK(utf8_sequence_length("\xc3\xa9", 0) == 2);
  CHECK(utf8_sequence_length("\xe2\x82\xac", 0) == 3);
  CHECK(utf8_sequence_length("\xf4\x8f\xbf\xbf", 0) == 4);
  CHECK(utf8_sequence_length("\xf4\x90\x80\x80", 0) == 0);  // beyond U+10FFFF
  CHECK(utf8_sequence_length("\xe0\x80\x80", 0) == 0);      // overlong
  CHECK(utf8_sequence_length("\x80", 0) == 0);              // a lone continuation byte
  CHECK(utf8_sequence_length("x\xe2\x82", 1) == 0);         // cut short
}

TEST_CASE("csv_field, json_string and html_escape quote what their format needs",
          "[daemon][text]") {
  CHECK(csv_field("plain") == "plain");
  CHECK(csv_field("a,b") == "\"a,b\"");
  CHECK(csv_field("say \"hi\"") == "\"say \"\"hi\"\"\"");
  CHECK(json_string("a\"b\n") == "\"a\\\"b\\n\"");
  CHECK(html_escape("<script>&'\"") == "&lt;script&gt;&amp;&#39;&quot;");
}

TEST_CASE("csv_text puts a quote before a cell a spreadsheet would run as a formula",
          "[daemon][text]") {
  CHECK(csv_text("=HYPERLINK(\"http://x\")") == "\"'=HYPERLINK(\"\"http://x\"\")\"");
  CHECK(csv_text("+1") == "'+1");
  CHECK(csv_text("-2+3") == "'-2+3");
  CHECK(csv_text("@SUM(A1)") == "'@SUM(A1)");
  CHECK(csv_text("\t=1") == "'\t=1");
  CHECK(csv_text("\r=1") == "\"'\r=1\"");
  CHECK(csv_text("a=b") == "a=b");
  CHECK(csv_text("SGH|SGH948271") == "SGH|SGH948271");
  CHECK(csv_text("") == "");
  // Numbers are not text: their minus sign stays.
  CHECK(format_number(-4.5) == "-4.5");
}

TEST_CASE("json_string is valid JSON for control bytes and bytes that are not UTF-8",
          "[daemon][text]") {
  CHECK(json_string(std::string("a\x01"
                                "b\x7f",
                                4)) == "\"a\\u0001b\\u007f\"");
  CHECK(json_string("\xff\xfe") == "\"\\ufffd\\ufffd\"");
  CHECK(json_string("x\xe2\x82") == "\"x\\ufffd\\ufffd\"");
  CHECK(json_string("M\xc3\xbcller") == "\"M\xc3\xbcller\"");
  CHECK(json_string(std::string("\0", 1)) == "\"\\u0000\"");
}

TEST_CASE("json_number writes null where there is no plain decimal", "[daemon][text]") {
  CHECK(json_number(std::optional<double>(-4.5)) == "-4.5");
  CHECK(json_number(std::nullopt) == "null");
  CHECK(json_number(std::optional<double>(std::numeric_limits<double>::quiet_NaN())) == "null");
  CHECK(json_number(std::optional<double>(std::numeric_limits<double>::infinity())) == "null");
  CHECK(json_number(std::optional<double>(1e300)) == "null");
}
