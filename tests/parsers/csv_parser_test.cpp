// SPDX-License-Identifier: Apache-2.0
// Tests of parse_csv: RFC 4180 fields, line ends, BOM, delimiter sniffing, positions and limits.
#include "parsers/csv_parser.hpp"

#include <catch2/catch.hpp>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace labwatch::parsers {
namespace {

using Fields = std::vector<std::string>;

CsvTable parse_ok(std::string_view text) {
  auto table = parse_csv(text);
  if (!table) {
    FAIL("parse_csv failed: " << to_string(table.error().code) << " at " << table.error().offset);
  }
  return std::move(table).value();
}

ParseError parse_error(std::string_view text) {
  auto table = parse_csv(text);
  REQUIRE_FALSE(table.has_value());
  return table.error();
}

}  // namespace

TEST_CASE("parse_csv reads a header and rows with their lines and offsets", "[parsers][csv]") {
  const CsvTable table = parse_ok("id,value,unit\n1,5.2,mg/dL\n2,,\n");
  CHECK(table.delimiter == ',');
  CHECK(table.header == Fields{"id", "value", "unit"});
  CHECK(table.header_line == 1);
  CHECK(table.header_offset == 0);
  REQUIRE(table.rows.size() == 2);
  CHECK(table.rows[0].fields == Fields{"1", "5.2", "mg/dL"});
  CHECK(table.rows[0].line == 2);
  CHECK(table.rows[0].offset == 14);
  CHECK(table.rows[1].fields == Fields{"2", "", ""});
  CHECK(table.rows[1].line == 3);
  CHECK(table.rows[1].offset == 26);
}

TEST_CASE("parse_csv unquotes RFC 4180 fields", "[parsers][csv]") {
  SECTION("a quoted field keeps its delimiters") {
    const CsvTable table = parse_ok("a,b\n\"Folate, RBC\",2283-0\n");
    REQUIRE(table.rows.size() == 1);
    CHECK(table.rows[0].fields == Fields{"Folate, RBC", "2283-0"});
  }
  SECTION("a doubled quote is one quote") {
    const CsvTable table = parse_ok("a,b\n\"arm \"\"left\"\", per RN\",\"\"\"\"\n");
    REQUIRE(table.rows.size() == 1);
    CHECK(table.rows[0].fields == Fields{"arm \"left\", per RN", "\""});
  }
  SECTION("a quoted field keeps embedded LF and CRLF as sent") {
    const CsvTable table = parse_ok("a,b\r\n\"one\ntwo\",\"three\r\nfour\"\r\nx,y\r\n");
    REQUIRE(table.rows.size() == 2);
    CHECK(table.rows[0].fields == Fields{"one\ntwo", "three\r\nfour"});
    CHECK(table.rows[1].fields == Fields{"x", "y"});
  }
  SECTION("a quoted empty field is empty") {
    const CsvTable table = parse_ok("a,b,c\n\"\",x,\"\"\n");
    REQUIRE(table.rows.size() == 1);
    CHECK(table.rows[0].fields == Fields{"", "x", ""});
  }
  SECTION("a quote inside an unquoted field is data") {
    const CsvTable table = parse_ok("a,b\n5\" tube,x\"y\n");
    REQUIRE(table.rows.size() == 1);
    CHECK(table.rows[0].fields == Fields{"5\" tube", "x\"y"});
  }
  SECTION("bytes after a closing quote are kept as written") {
    const CsvTable table = parse_ok("a,b\n\"abc\"def,x\n");
    REQUIRE(table.rows.size() == 1);
    CHECK(table.rows[0].fields == Fields{"abcdef", "x"});
  }
  SECTION("a trailing delimiter makes a last empty field") {
    const CsvTable table = parse_ok("a,b,\n1,2,\n");
    CHECK(table.header == Fields{"a", "b", ""});
    REQUIRE(table.rows.size() == 1);
    CHECK(table.rows[0].fields == Fields{"1", "2", ""});
  }
  SECTION("spaces around fields are data") {
    const CsvTable table = parse_ok("a,b\n 1 , 2\n");
    REQUIRE(table.rows.size() == 1);
    CHECK(table.rows[0].fields == Fields{" 1 ", " 2"});
  }
}

TEST_CASE("parse_csv accepts LF, CRLF and lone CR line ends", "[parsers][csv]") {
  const std::string_view text = GENERATE(as<std::string_view>{}, "h1,h2\n1,2\n3,4",
                                         "h1,h2\r\n1,2\r\n3,4\r\n", "h1,h2\r1,2\r3,4\r");
  const CsvTable table = parse_ok(text);
  CHECK(table.header == Fields{"h1", "h2"});
  REQUIRE(table.rows.size() == 2);
  CHECK(table.rows[0].fields == Fields{"1", "2"});
  CHECK(table.rows[1].fields == Fields{"3", "4"});
  CHECK(table.rows[1].line == 3);
}

TEST_CASE("parse_csv drops a UTF-8 BOM and counts offsets from the first byte", "[parsers][csv]") {
  const CsvTable table = parse_ok("\xEF\xBB\xBFPatienten-ID;Wert\r\nP-1;7,5\r\n");
  CHECK(table.delimiter == ';');
  CHECK(table.header == Fields{"Patienten-ID", "Wert"});
  CHECK(table.header_offset == 3);
  REQUIRE(table.rows.size() == 1);
  CHECK(table.rows[0].fields == Fields{"P-1", "7,5"});
  CHECK(table.rows[0].offset == 22);
}

TEST_CASE("parse_csv sniffs the delimiter from the header line", "[parsers][csv]") {
  SECTION("comma") {
    const CsvTable table = parse_ok("a,b;c,d\n1,2;3,4\n");
    CHECK(table.delimiter == ',');
    CHECK(table.header == Fields{"a", "b;c", "d"});
  }
  SECTION("semicolon") {
    const CsvTable table = parse_ok("a;b,c;d\n1;2,5;3\n");
    CHECK(table.delimiter == ';');
    CHECK(table.rows.at(0).fields == Fields{"1", "2,5", "3"});
  }
  SECTION("tab") {
    const CsvTable table = parse_ok("mrn\tresult\tunit\nNL1\t1.59\tumol/L\n");
    CHECK(table.delimiter == '\t');
    CHECK(table.rows.at(0).fields == Fields{"NL1", "1.59", "umol/L"});
  }
  SECTION("only delimiters outside quotes count") {
    const CsvTable table = parse_ok("\"a,b,c\";\"d,e\";f\n1;2;3\n");
    CHECK(table.delimiter == ';');
    CHECK(table.header == Fields{"a,b,c", "d,e", "f"});
  }
  SECTION("only the header line counts") {
    const CsvTable table = parse_ok("a;b\n1,2,3,4,5;6\n");
    CHECK(table.delimiter == ';');
  }
  SECTION("a tie goes to the comma") {
    CHECK(parse_ok("a,b;c\n").delimiter == ',');
    CHECK(parse_ok("a;b\tc\n").delimiter == ';');
  }
  SECTION("a single column is read as comma separated") {
    const CsvTable table = parse_ok("id\n1\n");
    CHECK(table.delimiter == ',');
    CHECK(table.header == Fields{"id"});
  }
  SECTION("blank lines before the header are skipped") {
    const CsvTable table = parse_ok("\n  \r\n\t\na;b\n1;2\n");
    CHECK(table.delimiter == ';');
    CHECK(table.header == Fields{"a", "b"});
    CHECK(table.header_line == 4);
    CHECK(table.header_offset == 7);
    CHECK(table.rows.at(0).line == 5);
  }
}

TEST_CASE("parse_csv counts physical lines across embedded newlines", "[parsers][csv]") {
  const CsvTable table =
      parse_ok("id,note\r\n1,\"a\r\nb\"\r\n2,\"c\nd\ne\"\r\n3,\"f\rg\"\r\n4,x\r\n");
  REQUIRE(table.rows.size() == 4);
  CHECK(table.rows[0].line == 2);
  CHECK(table.rows[1].line == 4);
  CHECK(table.rows[2].line == 7);
  CHECK(table.rows[3].line == 9);
  CHECK(table.rows[3].offset == 39);
  CHECK(table.rows[3].fields == Fields{"4", "x"});
}

TEST_CASE("parse_csv skips blank lines and rows of empty fields", "[parsers][csv]") {
  const CsvTable table = parse_ok("a,b\n\n1,2\n,\n  ,\t\n\"\",\"\"\n\r\n3,4\n\n");
  REQUIRE(table.rows.size() == 2);
  CHECK(table.rows[0].fields == Fields{"1", "2"});
  CHECK(table.rows[1].fields == Fields{"3", "4"});
  CHECK(table.rows[1].line == 8);
}

TEST_CASE("parse_csv keeps rows of any width for the mapper to judge", "[parsers][csv]") {
  const CsvTable table = parse_ok("a,b,c\n1\n1,2,3,4\n");
  REQUIRE(table.rows.size() == 2);
  CHECK(table.rows[0].fields == Fields{"1"});
  CHECK(table.rows[1].fields == Fields{"1", "2", "3", "4"});
}

TEST_CASE("parse_csv reports an unterminated quote where it opened", "[parsers][csv]") {
  SECTION("in a data row") {
    const ParseError error = parse_error("id,note\n1,ok\n2,\"never\nclosed\n3,x\n");
    CHECK(error.code == RefusalReason::unterminated_quote);
    CHECK(error.line == 3);
    CHECK(error.offset == 15);
    CHECK(error.field == 2);
  }
  SECTION("after a doubled quote at the very end") {
    const ParseError error = parse_error("a\n\"x\"\"");
    CHECK(error.code == RefusalReason::unterminated_quote);
    CHECK(error.line == 2);
    CHECK(error.offset == 2);
    CHECK(error.field == 1);
  }
  SECTION("in the header") {
    const ParseError error = parse_error("\"id,value\n");
    CHECK(error.code == RefusalReason::unterminated_quote);
    CHECK(error.line == 1);
    CHECK(error.offset == 0);
  }
}

TEST_CASE("parse_csv refuses input without a header as empty_file", "[parsers][csv]") {
  const std::string_view text = GENERATE(as<std::string_view>{}, "", "\xEF\xBB\xBF",
                                         "\xEF\xBB\xBF\r\n", "\n\n  \t\r\n", ",,,\n,,\n");
  const ParseError error = parse_error(text);
  CHECK(error.code == RefusalReason::empty_file);
  CHECK(error.offset == 0);
  CHECK(to_string(error.code) == "empty_file");
}

TEST_CASE("parse_csv enforces its size limits", "[parsers][csv]") {
  SECTION("kMaxCsvColumns columns are accepted, one more is too_many_columns") {
    std::string row(kMaxCsvColumns - 1, ',');
    const CsvTable table = parse_ok("h" + row + "\n");
    CHECK(table.header.size() == kMaxCsvColumns);

    const ParseError error = parse_error("a,b\n1,2\n" + row + ",x\n");
    CHECK(error.code == RefusalReason::too_many_columns);
    CHECK(error.line == 3);
    CHECK(error.field == static_cast<int>(kMaxCsvColumns + 1));
    CHECK(error.offset == 8 + kMaxCsvColumns);
  }
  SECTION("a field of kMaxCsvFieldBytes is accepted, one byte more is field_too_long") {
    const std::string longest(kMaxCsvFieldBytes, 'x');
    CHECK(parse_ok("a,b\n1," + longest + "\n").rows.at(0).fields[1].size() == kMaxCsvFieldBytes);
    CHECK(parse_ok("a,b\n1,\"" + longest + "\"\n").rows.at(0).fields[1] == longest);

    const ParseError plain = parse_error("a,b\n1," + longest + "y\n");
    CHECK(plain.code == RefusalReason::field_too_long);
    CHECK(plain.line == 2);
    CHECK(plain.field == 2);
    CHECK(plain.offset == 6);

    // Folded quotes count once: this field holds kMaxCsvFieldBytes + 1 bytes after unquoting.
    const ParseError quoted = parse_error("a\n\"" + longest + "\"\"\"\n");
    CHECK(quoted.code == RefusalReason::field_too_long);
    CHECK(quoted.offset == 2);
  }
  SECTION("more than kMaxCsvCells cells is too_many_fields") {
    // Rows of 256 one-byte cells: the header plus 8191 rows is exactly the limit.
    std::string row(2 * kMaxCsvColumns, ',');
    for (std::size_t i = 0; i < row.size(); i += 2) {
      row[i] = '1';
    }
    row.back() = '\n';
    const std::size_t rows_at_limit = kMaxCsvCells / kMaxCsvColumns;
    std::string text;
    for (std::size_t i = 0; i < rows_at_limit; ++i) {
      text += row;
    }
    CHECK(parse_ok(text).rows.size() == rows_at_limit - 1);

    text += row;
    const ParseError error = parse_error(text);
    CHECK(error.code == RefusalReason::too_many_fields);
    CHECK(error.line == static_cast<int>(rows_at_limit + 1));
    CHECK(error.offset == rows_at_limit * row.size());
  }
  SECTION("more than kMaxCsvBytes is input_too_large") {
    const std::string text(kMaxCsvBytes + 1, 'a');
    const ParseError error = parse_error(text);
    CHECK(error.code == RefusalReason::input_too_large);
    CHECK(error.offset == kMaxCsvBytes);
  }
}

}  // namespace labwatch::parsers
