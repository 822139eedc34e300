// SPDX-License-Identifier: Apache-2.0
// Tests of the single-byte charsets and of reading a text file's bytes as UTF-8.
#include "parsers/text_charset.hpp"

#include <catch2/catch.hpp>
#include <string>

namespace labwatch::parsers {

TEST_CASE("to_utf8 reads Windows-1252 and the ISO 8859 parts by their tables",
          "[parsers][charset]") {
  std::string out;
  to_utf8("M\xFCller \x80 \x93ok\x94", ByteCharset::windows_1252, out);
  CHECK(out == "M\xC3\xBCller \xE2\x82\xAC \xE2\x80\x9Cok\xE2\x80\x9D");
  to_utf8("\x81", ByteCharset::windows_1252, out);
  CHECK(out == "\xC2\x81");  // unassigned in 1252: its C1 control, as Windows reads it
  to_utf8("\x80 \xFC", ByteCharset::iso8859_1, out);
  CHECK(out == "\xC2\x80 \xC3\xBC");
  to_utf8("\xA4", ByteCharset::iso8859_15, out);
  CHECK(out == "\xE2\x82\xAC");
  to_utf8("\xA5", ByteCharset::iso8859_3, out);
  CHECK(out == "\xEF\xBF\xBD");  // unassigned in 8859-3: U+FFFD
  to_utf8("plain", ByteCharset::iso8859_7, out);
  CHECK(out == "plain");
  CHECK(is_valid_utf8(out));
}

TEST_CASE("text_to_utf8 detects UTF-8, else reads Windows-1252, unless told",
          "[parsers][charset]") {
  SECTION("detect: valid UTF-8 stays as it is") {
    std::string text = "Fr\xC3\xA4nkel;5";
    CHECK(text_to_utf8(text, TextEncoding{}));
    CHECK(text == "Fr\xC3\xA4nkel;5");
  }
  SECTION("detect: anything else is Windows-1252") {
    std::string text = "Fr\xE4nkel;\x80";
    CHECK(text_to_utf8(text, TextEncoding{}));
    CHECK(text == "Fr\xC3\xA4nkel;\xE2\x82\xAC");
    CHECK(is_valid_utf8(text));
  }
  SECTION("declared UTF-8 that is not is refused, untouched") {
    std::string text = "Fr\xE4nkel";
    CHECK_FALSE(text_to_utf8(text, *text_encoding_from_name("UTF-8")));
    CHECK(text == "Fr\xE4nkel");
  }
  SECTION("a declared byte set is used even on bytes that are valid UTF-8") {
    std::string text = "\xC3\xA4";
    CHECK(text_to_utf8(text, *text_encoding_from_name("iso-8859-1")));
    CHECK(text == "\xC3\x83\xC2\xA4");
  }
  SECTION("names") {
    CHECK(text_encoding_from_name("windows-1252")->bytes == ByteCharset::windows_1252);
    CHECK(text_encoding_from_name("ISO-8859-15")->bytes == ByteCharset::iso8859_15);
    CHECK(text_encoding_from_name("utf8")->kind == TextEncoding::Kind::utf8);
    CHECK_FALSE(text_encoding_from_name("ebcdic"));
    CHECK_FALSE(text_encoding_from_name(""));
  }
}

}  // namespace labwatch::parsers
