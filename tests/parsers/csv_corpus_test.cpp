// SPDX-License-Identifier: Apache-2.0
// The CSV/TSV files of tests/data/corpus through parse_csv and csv_to_reports, plus a truncation
// sweep. Expected counts and fields were taken from the files with Python's csv module.
#include <catch2/catch.hpp>
#include <cstddef>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "parsers/csv_parser.hpp"

namespace labwatch::parsers {
namespace {

std::string read_corpus(std::string_view name) {
  const std::string path = std::string(LABWATCH_TEST_DATA_DIR) + "/corpus/" + std::string(name);
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

struct Parsed {
  CsvTable table;
  CsvFileResult result;
};

Parsed parse_corpus(std::string_view name) {
  Parsed parsed;
  auto table = parse_csv(read_corpus(name));
  REQUIRE(table.has_value());
  parsed.table = std::move(table).value();
  parsed.result = csv_to_reports(parsed.table, {});
  return parsed;
}

std::vector<std::size_t> observations_per_report(const CsvFileResult& result) {
  std::vector<std::size_t> sizes;
  for (const LabReport& report : result.reports) {
    std::size_t count = 0;
    for (const Order& order : report.orders) {
      count += order.observations.size();
    }
    sizes.push_back(count);
  }
  return sizes;
}

const Observation& observation(const CsvFileResult& result, std::size_t report, std::size_t i) {
  REQUIRE(report < result.reports.size());
  REQUIRE(result.reports[report].orders.size() == 1);
  const auto& observations = result.reports[report].orders[0].observations;
  REQUIRE(i < observations.size());
  return observations[i];
}

DateTime make_time(int year, int month, int day, int hour, int minute,
                   DateTime::Precision precision) {
  DateTime t;
  t.year = year;
  t.month = month;
  t.day = day;
  t.hour = hour;
  t.minute = minute;
  t.precision = precision;
  return t;
}

DateTime with_offset(DateTime t, int minutes) {
  t.has_offset = true;
  t.offset_minutes = minutes;
  return t;
}

DateTime birth(int year, int month, int day) {
  return make_time(year, month, day, 0, 0, DateTime::Precision::day);
}

using P = DateTime::Precision;
using Sizes = std::vector<std::size_t>;

void check_patient(const Patient& patient, std::string_view id, std::string_view family,
                   std::string_view given, std::string_view middle, const DateTime& birth_date,
                   std::string_view sex) {
  REQUIRE(patient.identifiers.size() == 1);
  CHECK(patient.identifiers[0].id == id);
  CHECK(patient.identifiers[0].authority.empty());
  CHECK(patient.family == family);
  CHECK(patient.given == given);
  CHECK(patient.middle == middle);
  CHECK(patient.birth_date == birth_date);
  CHECK(patient.sex == sex);
}

}  // namespace

TEST_CASE("csv_to_reports reads d1_wce comma exports", "[parsers][csv][corpus]") {
  SECTION("d1_wce_01.csv") {
    const Parsed p = parse_corpus("d1_wce_01.csv");
    CHECK(p.table.delimiter == ',');
    CHECK(p.table.header.size() == 11);
    CHECK(p.table.rows.size() == 20);
    CHECK(p.result.refusals.empty());
    CHECK(observations_per_report(p.result) == Sizes{10, 6, 4});

    const LabReport& first = p.result.reports.at(0);
    check_patient(first.patient, "69010", "Mockridge", "Faye", "", birth(1956, 3, 6), "F");
    CHECK(first.orders.at(0).collected_at ==
          with_offset(make_time(2024, 11, 19, 10, 50, P::second), -420));
    const Observation& ferritin = observation(p.result, 0, 0);
    CHECK(ferritin.test_name == "Ferritin");
    CHECK(ferritin.code.code == "2276-4");
    CHECK(ferritin.code.system == "LN");
    CHECK(ferritin.value == "132");
    CHECK(ferritin.units == "ng/mL");
    CHECK(ferritin.reference_range == "15-150");
    CHECK(ferritin.result_status == 'F');
    CHECK(ferritin.where.line == 2);
    CHECK(ferritin.where.offset == 90);
    CHECK(ferritin.where.field == 8);
    CHECK(ferritin.where.column == "value");
    CHECK(observation(p.result, 0, 3).test_name == "Zinc, RBC");
    CHECK(observation(p.result, 0, 3).value == "998");
    CHECK(observation(p.result, 0, 4).units == "mmol/mol creatinine");
    CHECK(observation(p.result, 0, 4).reference_range == "<=1.50");
    CHECK(observation(p.result, 0, 9).value == "<0.3");

    const LabReport& second = p.result.reports.at(1);
    CHECK(second.where.line == 12);
    CHECK(second.where.offset == 1108);
    CHECK(second.patient.identifiers.at(0).id == "36672");
    CHECK(second.orders.at(0).collected_at == make_time(2024, 12, 26, 6, 10, P::minute));
    CHECK(p.result.reports.at(2).where.line == 18);
    CHECK(p.result.reports.at(2).orders.at(0).collected_at ==
          with_offset(make_time(2025, 3, 20, 11, 5, P::second), -360));
    const Observation& last = observation(p.result, 2, 3);
    CHECK(last.test_name == "Iron");
    CHECK(last.value == "94");
    CHECK(last.where.line == 21);
    CHECK(last.where.offset == 1932);
  }
  SECTION("d1_wce_02.csv") {
    const Parsed p = parse_corpus("d1_wce_02.csv");
    CHECK(p.table.rows.size() == 21);
    CHECK(p.result.refusals.empty());
    CHECK(observations_per_report(p.result) == Sizes{8, 5, 8});
    const LabReport& second = p.result.reports.at(1);
    check_patient(second.patient, "45082", "Testarossa-Synth", "Nia", "", birth(1951, 7, 15), "F");
    CHECK(second.where.line == 10);
    CHECK(second.where.offset == 832);
    CHECK(second.orders.at(0).collected_at == make_time(2025, 6, 20, 9, 5, P::minute));
    const Observation& last = observation(p.result, 2, 7);
    CHECK(last.test_name == "hs-CRP");
    CHECK(last.value == "4.00");
    CHECK(last.where.line == 22);
    CHECK(last.where.offset == 1930);
  }
}

TEST_CASE("csv_to_reports reads d2_lmb German semicolon exports", "[parsers][csv][corpus]") {
  SECTION("d2_lmb_01.csv") {
    const Parsed p = parse_corpus("d2_lmb_01.csv");
    CHECK(p.table.delimiter == ';');
    CHECK(p.table.header.at(0) == "Patienten-ID");
    CHECK(p.table.header_offset == 3);
    CHECK(p.table.rows.size() == 38);
    CHECK(p.result.refusals.empty());
    CHECK(observations_per_report(p.result) == Sizes{6, 5, 5, 9, 7, 6});

    check_patient(p.result.reports.at(0).patient, "P-276166", "Mockley", "Pax", "",
                  birth(1991, 4, 15), "M");
    CHECK(p.result.reports[0].where.offset == 128);
    CHECK(observation(p.result, 0, 1).test_name == "Fols\xC3\xA4ure (Erythrozyten)");
    CHECK(observation(p.result, 0, 1).reference_range == "> 340");
    const Observation& homocysteine = observation(p.result, 0, 2);
    CHECK(homocysteine.code.code == "13965-9");
    CHECK(homocysteine.value == "7,5");
    CHECK(homocysteine.units == "\xC2\xB5mol/l");
    CHECK(homocysteine.reference_range == "< 10,0");
    CHECK(homocysteine.where.column == "Ergebnis");

    const LabReport& second = p.result.reports.at(1);
    check_patient(second.patient, "P-764146", "F\xC3\xA4lschle", "Ines", "", birth(1955, 9, 15),
                  "W");
    CHECK(second.where.line == 8);
    CHECK(second.where.offset == 684);
    CHECK(second.orders.at(0).collected_at == make_time(2024, 12, 5, 9, 50, P::minute));
    const Observation& last = observation(p.result, 5, 5);
    CHECK(last.test_name == "fT3");
    CHECK(last.value == "3,16");
    CHECK(last.reference_range == "2,00 - 4,40");
    CHECK(last.where.line == 39);
    CHECK(last.where.offset == 3560);
  }
  SECTION("d2_lmb_02.csv") {
    const Parsed p = parse_corpus("d2_lmb_02.csv");
    CHECK(p.table.rows.size() == 34);
    CHECK(p.result.refusals.empty());
    CHECK(observations_per_report(p.result) == Sizes{6, 5, 8, 7, 4, 4});
    const LabReport& last_report = p.result.reports.at(5);
    CHECK(last_report.patient.identifiers.at(0).id == "P-764146");
    CHECK(last_report.where.line == 32);
    CHECK(last_report.where.offset == 2963);
    CHECK(last_report.orders.at(0).collected_at == make_time(2026, 2, 28, 7, 15, P::minute));
    const Observation& last = observation(p.result, 5, 3);
    CHECK(last.value == "434");
    CHECK(last.units == "\xC2\xB5g/l");
    CHECK(last.where.line == 35);
    CHECK(last.where.offset == 3244);
  }
}

TEST_CASE("csv_to_reports reads d3_nls tab-separated exports", "[parsers][csv][corpus]") {
  SECTION("d3_nls_01.tsv") {
    const Parsed p = parse_corpus("d3_nls_01.tsv");
    CHECK(p.table.delimiter == '\t');
    CHECK(p.table.rows.size() == 25);
    CHECK(p.result.refusals.empty());
    CHECK(observations_per_report(p.result) == Sizes{5, 4, 9, 7});
    check_patient(p.result.reports.at(0).patient, "NL6823815", "Testwell", "Sol", "",
                  birth(1954, 3, 11), "M");
    CHECK(p.result.reports[0].orders.at(0).collected_at ==
          with_offset(make_time(2024, 10, 5, 10, 40, P::second), 0));
    const Observation& ferritin = observation(p.result, 0, 0);
    CHECK(ferritin.code.code == "14723-1");
    CHECK(ferritin.value == "177");
    CHECK(ferritin.units == "pmol/L");
    CHECK(ferritin.reference_range == "67-899");
    CHECK(ferritin.where.offset == 103);
    CHECK(observation(p.result, 0, 1).reference_range == ">=906");
    const LabReport& third = p.result.reports.at(2);
    check_patient(third.patient, "NL1637870", "Sampleton", "Ora", "", birth(1958, 4, 13), "F");
    CHECK(third.where.line == 11);
    CHECK(third.where.offset == 964);
    const Observation& last = observation(p.result, 3, 6);
    CHECK(last.value == "771");
    CHECK(last.where.line == 26);
    CHECK(last.where.offset == 2413);
  }
  SECTION("d3_nls_02.tsv") {
    const Parsed p = parse_corpus("d3_nls_02.tsv");
    CHECK(p.table.rows.size() == 34);
    CHECK(p.result.refusals.empty());
    CHECK(observations_per_report(p.result) == Sizes{8, 5, 7, 7, 7});
    const LabReport& fourth = p.result.reports.at(3);
    check_patient(fourth.patient, "NL7393715", "Dummyfield", "Ned", "", birth(1978, 11, 14), "M");
    CHECK(fourth.where.line == 22);
    CHECK(fourth.where.offset == 2014);
    CHECK(fourth.orders.at(0).collected_at ==
          with_offset(make_time(2026, 1, 10, 6, 10, P::second), 0));
  }
}

TEST_CASE("csv_to_reports reads d4_ppe all-quoted exports with multi-line comments",
          "[parsers][csv][corpus]") {
  const std::string hemolysis = "Hemolysis index 1+; result, however, acceptable.\r\nCall patient.";
  SECTION("d4_ppe_01.csv") {
    const Parsed p = parse_corpus("d4_ppe_01.csv");
    CHECK(p.table.delimiter == ',');
    CHECK(p.table.header.size() == 12);
    CHECK(p.table.rows.size() == 52);
    CHECK(p.result.refusals.empty());
    CHECK(observations_per_report(p.result) == Sizes{9, 7, 11, 6, 10, 9});

    const LabReport& first = p.result.reports.at(0);
    check_patient(first.patient, "PP249126", "SYNTHWICK", "NED", "J", birth(1983, 4, 19), "M");
    CHECK(first.orders.at(0).collected_at == make_time(2024, 10, 25, 10, 10, P::minute));
    const Observation& magnesium = observation(p.result, 0, 0);
    CHECK(magnesium.test_name == "Magnesium, RBC");
    CHECK(magnesium.code.code == "26746-8");
    CHECK(magnesium.value == "6.2");
    CHECK(magnesium.units == "mg/dL");
    CHECK(magnesium.reference_range == "4.0-6.4");
    CHECK(magnesium.abnormal_flags.empty());
    CHECK(magnesium.notes.empty());
    CHECK(magnesium.where.line == 2);
    CHECK(magnesium.where.offset == 131);
    CHECK(magnesium.where.column == "Result");
    const Observation& zinc = observation(p.result, 0, 2);
    CHECK(zinc.units == "\xCE\xBCg/dL");
    CHECK(zinc.notes == std::vector<std::string>{hemolysis});
    CHECK(zinc.where.line == 4);
    CHECK(zinc.where.offset == 395);
    const Observation& figlu = observation(p.result, 0, 3);
    CHECK(figlu.test_name == "FIGLU (Formiminoglutamic acid), Urine");
    CHECK(figlu.units == "mmol/mol creat");
    CHECK(figlu.notes == std::vector<std::string>{"Drawn at home visit, arm \"left\", per RN.\n"
                                                  "Patient reports supplement use, see chart."});
    CHECK(figlu.where.line == 6);
    CHECK(figlu.where.offset == 582);
    CHECK(observation(p.result, 0, 5).value == "17");
    CHECK(observation(p.result, 0, 5).abnormal_flags == "L");

    const LabReport& second = p.result.reports.at(1);
    check_patient(second.patient, "PP105595", "NULLMAN", "JAX", "K", birth(1986, 2, 26), "M");
    CHECK(second.where.line == 15);
    CHECK(second.where.offset == 1620);
    CHECK(second.orders.at(0).collected_at == make_time(2024, 11, 18, 7, 45, P::minute));

    const LabReport& last_report = p.result.reports.at(5);
    check_patient(last_report.patient, "PP336192", "FAKEWOOD", "CORA", "S", birth(1954, 6, 23),
                  "F");
    CHECK(last_report.where.line == 61);
    CHECK(last_report.where.offset == 7323);
    CHECK(last_report.orders.at(0).collected_at == make_time(2025, 5, 1, 6, 5, P::minute));
    const Observation& glucose = observation(p.result, 5, 8);
    CHECK(glucose.test_name == "Glucose, Fasting");
    CHECK(glucose.value == "102");
    CHECK(glucose.abnormal_flags == "H");
    CHECK(glucose.where.line == 73);
    CHECK(glucose.where.offset == 8694);
  }
  SECTION("d4_ppe_02.csv") {
    const Parsed p = parse_corpus("d4_ppe_02.csv");
    CHECK(p.table.rows.size() == 50);
    CHECK(p.result.refusals.empty());
    CHECK(observations_per_report(p.result) == Sizes{6, 8, 9, 4, 6, 6, 11});
    CHECK(observation(p.result, 0, 0).value == "106");
    CHECK(observation(p.result, 0, 0).notes == std::vector<std::string>{hemolysis});
    CHECK(observation(p.result, 0, 1).where.line == 4);
    CHECK(observation(p.result, 0, 1).where.offset == 320);
    const LabReport& last_report = p.result.reports.at(6);
    CHECK(last_report.where.line == 51);
    CHECK(last_report.where.offset == 6478);
    CHECK(last_report.orders.at(0).collected_at == make_time(2026, 3, 22, 11, 0, P::minute));
    const Observation& last = observation(p.result, 6, 10);
    CHECK(last.test_name == "hs-CRP");
    CHECK(last.value == "1.1");
    CHECK(last.notes == std::vector<std::string>{"Result verified, repeat analysis, same result."});
    CHECK(last.where.line == 65);
    CHECK(last.where.offset == 8153);
  }
}

TEST_CASE("csv_to_reports handles the malformed e_* corpus files", "[parsers][csv][corpus]") {
  SECTION("e_wce_missing_columns.csv is refused whole") {
    const Parsed p = parse_corpus("e_wce_missing_columns.csv");
    CHECK(p.table.rows.size() == 8);
    CHECK(p.result.reports.empty());
    REQUIRE(p.result.refusals.size() == 1);
    CHECK(to_string(p.result.refusals[0].reason) == "missing_columns");
    CHECK(p.result.refusals[0].detail == "missing required columns: unit, collected_at");
    CHECK(p.result.refusals[0].where.line == 1);
  }
  SECTION("e_wce_not_a_number.csv keeps 'pending' for normalize") {
    const Parsed p = parse_corpus("e_wce_not_a_number.csv");
    CHECK(p.result.refusals.empty());
    CHECK(observations_per_report(p.result) == Sizes{3});
    const Observation& pending = observation(p.result, 0, 0);
    CHECK(pending.value == "pending");
    CHECK(pending.units == "mg/dL");
    CHECK(pending.code.code == "26746-8");
    CHECK(pending.where.line == 2);
    CHECK(pending.where.offset == 90);
    CHECK(p.result.reports[0].orders[0].collected_at == make_time(2025, 3, 9, 7, 0, P::minute));
  }
  SECTION("e_wce_unknown_unit.csv keeps U/L for normalize") {
    const Parsed p = parse_corpus("e_wce_unknown_unit.csv");
    CHECK(p.result.refusals.empty());
    CHECK(observations_per_report(p.result) == Sizes{3});
    CHECK(observation(p.result, 0, 0).value == "81");
    CHECK(observation(p.result, 0, 0).units == "U/L");
    CHECK(observation(p.result, 0, 0).units_where.line == 2);
    CHECK(observation(p.result, 0, 0).units_where.field == 9);
    CHECK(observation(p.result, 0, 0).units_where.column == "unit");
    CHECK(observation(p.result, 0, 2).test_name == "Vitamin D, 25-OH");
  }
  SECTION("e_empty.csv is empty_file") {
    const std::string text = read_corpus("e_empty.csv");
    CHECK(text.empty());
    const auto table = parse_csv(text);
    REQUIRE_FALSE(table.has_value());
    CHECK(table.error().code == RefusalReason::empty_file);
    CHECK(to_string(table.error().code) == "empty_file");
  }
}

// Every prefix of every corpus CSV parses to a value or a ParseError. A prefix that ends where a
// data row starts holds exactly the rows before it, all kept.
TEST_CASE("parse_csv and csv_to_reports survive every truncation of the corpus files",
          "[parsers][csv][corpus]") {
  const std::string_view name = GENERATE(
      as<std::string_view>{}, "d1_wce_01.csv", "d1_wce_02.csv", "d2_lmb_01.csv", "d2_lmb_02.csv",
      "d3_nls_01.tsv", "d3_nls_02.tsv", "d4_ppe_01.csv", "d4_ppe_02.csv", "e_empty.csv",
      "e_wce_missing_columns.csv", "e_wce_not_a_number.csv", "e_wce_unknown_unit.csv");
  CAPTURE(name);
  const std::string text = read_corpus(name);
  std::vector<std::size_t> row_starts;
  if (auto full = parse_csv(text)) {
    for (const CsvRow& row : full->rows) {
      row_starts.push_back(row.offset);
    }
  }
  std::size_t next_row = 0;
  for (std::size_t size = 0; size <= text.size(); ++size) {
    const std::string_view prefix(text.data(), size);
    const auto table = parse_csv(prefix);
    if (!table) {
      const ParseError& error = table.error();
      if (error.code == RefusalReason::unterminated_quote) {
        REQUIRE(error.offset < size);
        REQUIRE(prefix[error.offset] == '"');
      } else {
        REQUIRE(error.code == RefusalReason::empty_file);
      }
      continue;
    }
    const CsvFileResult result = csv_to_reports(*table, {});
    std::size_t observations = 0;
    for (const std::size_t count : observations_per_report(result)) {
      REQUIRE(count > 0);
      observations += count;
    }
    if (next_row < row_starts.size() && size == row_starts[next_row]) {
      CAPTURE(size);
      REQUIRE(table->rows.size() == next_row);
      if (name != "e_wce_missing_columns.csv") {
        REQUIRE(result.refusals.empty());
        REQUIRE(observations == next_row);
      }
      ++next_row;
    }
  }
  CHECK(next_row == row_starts.size());
}

}  // namespace labwatch::parsers
