// SPDX-License-Identifier: Apache-2.0
// Tests of the CSV header vocabulary, one-cell names and result status words.
#include "parsers/csv_fields.hpp"

#include <array>
#include <catch2/catch.hpp>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "parsers/csv_parser.hpp"

namespace labwatch::parsers {
namespace {

using C = CsvColumn;
using Header = std::vector<std::string>;

std::optional<C> column_of(std::string_view header_name) {
  return builtin_csv_column(csv_header_key(header_name));
}

// Column `expected[i]` sits at header position i.
void check_positions(const CsvColumnMap& map, const std::vector<C>& expected) {
  for (std::size_t i = 0; i < expected.size(); ++i) {
    CAPTURE(i);
    CHECK(map[expected[i]] == i);
  }
}

// The d2_lmb and d3_nls layout: id, surname, given name, birth date, sex, test, LOINC, value,
// unit, reference range, collection time.
const std::vector<C> kTwoNameColumns = {
    C::patient_id, C::last_name, C::first_name, C::birth_date,      C::sex,         C::test_name,
    C::loinc,      C::value,     C::unit,       C::reference_range, C::collected_at};

}  // namespace

TEST_CASE("csv_header_key folds case, spaces, underscores and hyphens", "[parsers][csv]") {
  CHECK(csv_header_key("Patient ID") == "patientid");
  CHECK(csv_header_key("patient_id") == "patientid");
  CHECK(csv_header_key("PATIENT-ID") == "patientid");
  CHECK(csv_header_key(" Patienten-ID ") == "patientenid");
  CHECK(csv_header_key("collection_time_utc") == "collectiontimeutc");
  CHECK(csv_header_key("Maßeinheit") == "maßeinheit");
  CHECK(csv_header_key("") == "");
}

TEST_CASE("builtin_csv_column knows common English and German headers", "[parsers][csv]") {
  const auto cases = std::to_array<std::pair<std::string_view, C>>({
      {"patient_id", C::patient_id},
      {"Patient ID", C::patient_id},
      {"PatientID", C::patient_id},
      {"MRN", C::patient_id},
      {"Patienten-ID", C::patient_id},
      {"mrn", C::patient_id},
      {"Patient Name", C::patient_name},
      {"Name", C::patient_name},
      {"last_name", C::last_name},
      {"Surname", C::last_name},
      {"Family Name", C::last_name},
      {"Nachname", C::last_name},
      {"first_name", C::first_name},
      {"Given Name", C::first_name},
      {"given_name", C::first_name},
      {"Vorname", C::first_name},
      {"dob", C::birth_date},
      {"DOB", C::birth_date},
      {"Date of Birth", C::birth_date},
      {"Geburtsdatum", C::birth_date},
      {"birth_date", C::birth_date},
      {"Sex", C::sex},
      {"Gender", C::sex},
      {"Geschlecht", C::sex},
      {"Test", C::test_name},
      {"Test Name", C::test_name},
      {"test_name", C::test_name},
      {"Analyte", C::test_name},
      {"Untersuchung", C::test_name},
      {"Parameter", C::test_name},
      {"LOINC", C::loinc},
      {"LOINC Code", C::loinc},
      {"loinc", C::loinc},
      {"Test Code", C::local_code},
      {"Code", C::local_code},
      {"Result", C::value},
      {"Value", C::value},
      {"Ergebnis", C::value},
      {"Wert", C::value},
      {"Unit", C::unit},
      {"Units", C::unit},
      {"Einheit", C::unit},
      {"Reference Range", C::reference_range},
      {"Ref Range", C::reference_range},
      {"ref_range", C::reference_range},
      {"Referenzbereich", C::reference_range},
      {"Normalbereich", C::reference_range},
      {"reference_interval", C::reference_range},
      {"Flag", C::flag},
      {"Abnormal Flag", C::flag},
      {"Collected", C::collected_at},
      {"Collection Time", C::collected_at},
      {"collected_at", C::collected_at},
      {"collection_time_utc", C::collected_at},
      {"Entnahmezeitpunkt", C::collected_at},
      {"Entnahmedatum", C::collected_at},
      {"Specimen Collected", C::collected_at},
      {"Comments", C::comments},
      {"Kommentar", C::comments},
      {"Notes", C::comments},
      {"Accession", C::accession},
      {"Accession Number", C::accession},
      {"Status", C::status},
      {"Result Status", C::status},
  });
  for (const auto& [name, column] : cases) {
    CAPTURE(name);
    CHECK(column_of(name) == column);
  }
  CHECK_FALSE(column_of("Ordering Provider").has_value());
  CHECK_FALSE(column_of("Date").has_value());
  // A bare "ID" may number rows or results; taking it for the patient would merge strangers.
  CHECK_FALSE(column_of("ID").has_value());
  CHECK_FALSE(column_of("").has_value());
}

TEST_CASE("to_string names each CsvColumn in snake_case", "[parsers][csv]") {
  CHECK(to_string(C::patient_id) == "patient_id");
  CHECK(to_string(C::loinc) == "loinc");
  CHECK(to_string(C::reference_range) == "reference_range");
  CHECK(to_string(C::collected_at) == "collected_at");
  CHECK(to_string(C::status) == "status");
}

TEST_CASE("resolve_csv_columns maps the four corpus header shapes", "[parsers][csv]") {
  SECTION("d1_wce comma") {
    const CsvColumnMap map = resolve_csv_columns(
        Header{"patient_id", "last_name", "first_name", "dob", "sex", "test_name", "loinc", "value",
               "unit", "ref_range", "collected_at"},
        {});
    CHECK(map[C::patient_id] == 0u);
    CHECK(map[C::last_name] == 1u);
    CHECK(map[C::first_name] == 2u);
    CHECK(map[C::birth_date] == 3u);
    CHECK(map[C::sex] == 4u);
    CHECK(map[C::test_name] == 5u);
    CHECK(map[C::loinc] == 6u);
    CHECK(map[C::value] == 7u);
    CHECK(map[C::unit] == 8u);
    CHECK(map[C::reference_range] == 9u);
    CHECK(map[C::collected_at] == 10u);
    CHECK_FALSE(map.has(C::patient_name));
    CHECK_FALSE(map.has(C::local_code));
    CHECK_FALSE(map.has(C::flag));
    CHECK_FALSE(map.has(C::comments));
    CHECK_FALSE(map.has(C::accession));
    CHECK_FALSE(map.has(C::status));
  }
  SECTION("d2_lmb German") {
    const CsvColumnMap map = resolve_csv_columns(
        Header{"Patienten-ID", "Nachname", "Vorname", "Geburtsdatum", "Geschlecht", "Untersuchung",
               "LOINC", "Ergebnis", "Einheit", "Referenzbereich", "Entnahmezeitpunkt"},
        {});
    check_positions(map, kTwoNameColumns);
  }
  SECTION("d3_nls TSV") {
    const CsvColumnMap map = resolve_csv_columns(
        Header{"mrn", "surname", "given_name", "birth_date", "sex", "analyte", "loinc", "result",
               "unit", "reference_interval", "collection_time_utc"},
        {});
    check_positions(map, kTwoNameColumns);
  }
  SECTION("d4_ppe quoted") {
    const CsvColumnMap map = resolve_csv_columns(
        Header{"Patient ID", "Patient Name", "Date of Birth", "Sex", "Test", "LOINC", "Result",
               "Units", "Reference Range", "Flag", "Collected", "Comments"},
        {});
    check_positions(map, std::vector<C>{C::patient_id, C::patient_name, C::birth_date, C::sex,
                                        C::test_name, C::loinc, C::value, C::unit,
                                        C::reference_range, C::flag, C::collected_at, C::comments});
    CHECK_FALSE(map.has(C::last_name));
    CHECK_FALSE(map.has(C::first_name));
  }
}

TEST_CASE("resolve_csv_columns tries the config's aliases before the built-ins", "[parsers][csv]") {
  SECTION("an extra alias wins over an earlier built-in match") {
    CsvVocabulary vocabulary;
    vocabulary.extra[C::value] = {"final_result"};
    const CsvColumnMap map = resolve_csv_columns(Header{"Result", "Final Result"}, vocabulary);
    CHECK(map[C::value] == 1u);
  }
  SECTION("an extra alias can take a built-in name for another column") {
    CsvVocabulary vocabulary;
    vocabulary.extra[C::loinc] = {"Code"};
    const CsvColumnMap map = resolve_csv_columns(Header{"Code", "Wert"}, vocabulary);
    CHECK(map[C::loinc] == 0u);
    CHECK_FALSE(map.has(C::local_code));
    CHECK(map[C::value] == 1u);
  }
  SECTION("extra aliases are folded like headers and empty ones are ignored") {
    CsvVocabulary vocabulary;
    vocabulary.extra[C::patient_id] = {"", "Pat-Nr. Labor"};
    const CsvColumnMap map = resolve_csv_columns(Header{"", "PAT NR. LABOR"}, vocabulary);
    CHECK(map[C::patient_id] == 1u);
  }
}

TEST_CASE("resolve_csv_columns takes the first of repeated columns and ignores unknown ones",
          "[parsers][csv]") {
  const CsvColumnMap map =
      resolve_csv_columns(Header{"Ordering Provider", "Value", "MRN", "Result", "Patient ID"}, {});
  CHECK(map[C::value] == 1u);
  CHECK(map[C::patient_id] == 2u);
  std::size_t assigned = 0;
  for (const auto& index : map.index) {
    assigned += index.has_value() ? 1u : 0u;
  }
  CHECK(assigned == 2);
}

TEST_CASE("split_csv_person_name splits LAST, FIRST M", "[parsers][csv]") {
  auto check = [](std::string_view text, std::string_view family, std::string_view given,
                  std::string_view middle) {
    CAPTURE(text);
    const CsvPersonName name = split_csv_person_name(text);
    CHECK(name.family == family);
    CHECK(name.given == given);
    CHECK(name.middle == middle);
  };
  check("SYNTHWICK, NED J", "SYNTHWICK", "NED", "J");
  check("FAKEWOOD, CORA S", "FAKEWOOD", "CORA", "S");
  check("Doe,Jane", "Doe", "Jane", "");
  check("  Doe ,  Jane  ", "Doe", "Jane", "");
  check("Doe, Mary Ann", "Doe", "Mary", "Ann");
  check("Doe, Mary Ann Lee", "Doe", "Mary", "Ann Lee");
  check("Smith, John A, Jr", "Smith", "John", "A");
  check("O'Neil-Barry, Siobhán", "O'Neil-Barry", "Siobhán", "");
  check("Fälschle", "Fälschle", "", "");
  check("Jane Doe", "Jane Doe", "", "");
  check("", "", "", "");
  check("Doe,", "Doe", "", "");
}

TEST_CASE("csv_result_status maps letters and words to F, P, C and X", "[parsers][csv]") {
  const auto cases = std::to_array<std::pair<std::string_view, char>>({
      {"", 'F'},
      {"  ", 'F'},
      {"F", 'F'},
      {"final", 'F'},
      {"Final", 'F'},
      {"Endbefund", 'F'},
      {"P", 'P'},
      {"p", 'P'},
      {"Preliminary", 'P'},
      {"prelim", 'P'},
      {"vorläufig", 'P'},
      {"C", 'C'},
      {"Corrected", 'C'},
      {"amended", 'C'},
      {"korrigiert", 'C'},
      {"X", 'X'},
      {"Cancelled", 'X'},
      {"canceled", 'X'},
      {"entered-in-error", 'X'},
      {"storniert", 'X'},
  });
  for (const auto& [text, status] : cases) {
    CAPTURE(text);
    CHECK(csv_result_status(text) == status);
  }
  CHECK_FALSE(csv_result_status("pending").has_value());
  CHECK_FALSE(csv_result_status("Q").has_value());
  CHECK_FALSE(csv_result_status("FINAL!").has_value());
}

}  // namespace labwatch::parsers
