// SPDX-License-Identifier: Apache-2.0
// Tests of csv_to_reports: grouping, observation and patient fields, whole-file and row refusals.
#include <catch2/catch.hpp>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "parsers/csv_parser.hpp"

namespace labwatch::parsers {
namespace {

CsvFileResult reports_of(std::string_view text, const CsvVocabulary& vocabulary = {}) {
  auto table = parse_csv(text);
  REQUIRE(table.has_value());
  return csv_to_reports(*table, vocabulary);
}

DateTime minute_time(int year, int month, int day, int hour, int minute) {
  DateTime t;
  t.year = year;
  t.month = month;
  t.day = day;
  t.hour = hour;
  t.minute = minute;
  t.precision = DateTime::Precision::minute;
  return t;
}

DateTime day_date(int year, int month, int day) {
  DateTime t;
  t.year = year;
  t.month = month;
  t.day = day;
  t.precision = DateTime::Precision::day;
  return t;
}

constexpr std::string_view kHeader =
    "MRN,Surname,Given Name,DOB,Sex,Test,LOINC,Test Code,Result,Units,Ref Range,Flag,Collected,"
    "Comments,Accession,Status\n";

}  // namespace

TEST_CASE("csv_to_reports groups consecutive rows of one patient and collection time",
          "[parsers][csv]") {
  const std::string text = std::string(kHeader) +
                           "A1,Doe,Jane,1970-01-02,F,Ferritin,2276-4,FER,40,ng/mL,15-150,L,"
                           "2025-03-01 08:00,,ACC1,\n"  // line 2
                           "A1,Doe,Jane,1970-01-02,F,Zinc,5763-8,,91,ug/dL,44-115,,"
                           "2025-03-01 08:00,,ACC1,\n"  // line 3, same report
                           "A1,Doe,Jane,1970-01-02,F,Zinc,5763-8,,88,ug/dL,44-115,,"
                           "2025-03-01 08:00,,ACC2,\n"  // line 4, same report, new order
                           "B7,Roe,Max,,M,Ferritin,2276-4,,120,ng/mL,30-400,,"
                           "2025-03-01 08:00,,,\n"  // line 5, other patient
                           "A1,Doe,Jane,1970-01-02,F,Ferritin,2276-4,,44,ng/mL,15-150,,"
                           "2025-03-01T08:00,,,\n";  // line 6, same instant but other text
  const CsvFileResult result = reports_of(text);
  CHECK(result.refusals.empty());
  REQUIRE(result.reports.size() == 3);

  const LabReport& first = result.reports[0];
  CHECK(first.format == SourceFormat::csv);
  CHECK(first.sending_facility.empty());
  CHECK(first.control_id.empty());
  CHECK(first.where.line == 2);
  CHECK(first.where.offset == kHeader.size());
  REQUIRE(first.orders.size() == 2);
  CHECK(first.orders[0].filler_order_number == "ACC1");
  CHECK(first.orders[0].collected_at == minute_time(2025, 3, 1, 8, 0));
  CHECK(first.orders[0].placer_order_number.empty());
  CHECK(first.orders[0].ordering_provider_id.empty());
  REQUIRE(first.orders[0].observations.size() == 2);
  CHECK(first.orders[0].observations[0].set_id == 1);
  CHECK(first.orders[0].observations[1].set_id == 2);
  CHECK(first.orders[0].observations[1].value == "91");
  CHECK(first.orders[1].filler_order_number == "ACC2");
  REQUIRE(first.orders[1].observations.size() == 1);
  CHECK(first.orders[1].observations[0].set_id == 1);
  CHECK(first.orders[1].observations[0].value == "88");
  CHECK(first.orders[1].observations[0].where.line == 4);

  CHECK(result.reports[1].patient.identifiers.at(0).id == "B7");
  CHECK(result.reports[1].patient.birth_date.empty());
  CHECK(result.reports[1].where.line == 5);
  REQUIRE(result.reports[2].orders.size() == 1);
  CHECK(result.reports[2].orders[0].filler_order_number.empty());
  CHECK(result.reports[2].where.line == 6);
}

TEST_CASE("csv_to_reports fills an observation from its row", "[parsers][csv]") {
  const std::string text = std::string(kHeader) +
                           "A1,Doe,Jane,1970-01-02,F,Ferritin,2276-4,FER,\"  7,5 \",ng/mL,15-150,L,"
                           "2025-03-01 08:00,\"Hemolysed, repeat\",ACC1,prelim\n";
  const CsvFileResult result = reports_of(text);
  REQUIRE(result.refusals.empty());
  REQUIRE(result.reports.size() == 1);
  const Observation& obs = result.reports[0].orders.at(0).observations.at(0);
  CHECK(obs.value == "7,5");
  CHECK(obs.comparator.empty());
  CHECK(obs.value_type.empty());
  CHECK(obs.units == "ng/mL");
  CHECK(obs.reference_range == "15-150");
  CHECK(obs.abnormal_flags == "L");
  CHECK(obs.result_status == 'P');
  CHECK(obs.test_name == "Ferritin");
  CHECK(obs.code.code == "2276-4");
  CHECK(obs.code.system == "LN");
  CHECK(obs.code.text == "Ferritin");
  CHECK(obs.code.alt_code == "FER");
  CHECK(obs.code.alt_system == "L");
  CHECK(obs.notes == std::vector<std::string>{"Hemolysed, repeat"});
  CHECK(obs.observed_at.empty());
  CHECK(obs.where.line == 2);
  CHECK(obs.where.offset == kHeader.size());
  CHECK(obs.where.field == 9);
  CHECK(obs.where.column == "Result");
  CHECK(obs.units_where.line == 2);
  CHECK(obs.units_where.offset == kHeader.size());
  CHECK(obs.units_where.field == 10);
  CHECK(obs.units_where.column == "Units");
}

TEST_CASE("csv_to_reports takes the code from LOINC, else the local code", "[parsers][csv]") {
  const CsvFileResult result = reports_of(
      "patient_id,test,loinc,code,value,unit,collected\n"
      "1,Ferritin,,FER,40,ng/mL,2025-03-01\n"
      "1,Ferritin,2276-4,,41,ng/mL,2025-03-01\n"
      "1,Mystery,,,1,U,2025-03-01\n");
  REQUIRE(result.reports.size() == 1);
  const auto& obs = result.reports[0].orders.at(0).observations;
  REQUIRE(obs.size() == 3);
  CHECK(obs[0].code.code == "FER");
  CHECK(obs[0].code.system == "L");
  CHECK(obs[0].code.alt_code.empty());
  CHECK(obs[1].code.code == "2276-4");
  CHECK(obs[1].code.system == "LN");
  CHECK(obs[1].code.alt_code.empty());
  CHECK(obs[2].code.code.empty());
  CHECK(obs[2].code.system.empty());
  CHECK(obs[2].test_name == "Mystery");
  CHECK(obs[2].result_status == 'F');
}

TEST_CASE("csv_to_reports keeps values and units as text for normalize", "[parsers][csv]") {
  const CsvFileResult result = reports_of(
      "Patienten-ID;Untersuchung;Ergebnis;Einheit;Entnahmezeitpunkt\r\n"
      "P-1;Homocystein;7,5;\xC2\xB5mol/l;09.10.2024 11:30\r\n"
      "P-1;Magnesium;pending;mg/dL;09.10.2024 11:30\r\n"
      "P-1;hs-CRP;<0,3;;09.10.2024 11:30\r\n");
  CHECK(result.refusals.empty());
  REQUIRE(result.reports.size() == 1);
  const auto& obs = result.reports[0].orders.at(0).observations;
  REQUIRE(obs.size() == 3);
  CHECK(obs[0].value == "7,5");
  CHECK(obs[0].units == "\xC2\xB5mol/l");
  CHECK(obs[1].value == "pending");
  CHECK(obs[2].value == "<0,3");
  CHECK(obs[2].units.empty());
  CHECK(result.reports[0].orders[0].collected_at == minute_time(2024, 10, 9, 11, 30));
}

TEST_CASE("csv_to_reports reads the patient from one or two name columns", "[parsers][csv]") {
  SECTION("one column LAST, FIRST M") {
    const CsvFileResult result = reports_of(
        "\"Patient ID\",\"Patient Name\",\"Date of Birth\",\"Sex\",\"Test\",\"Result\","
        "\"Units\",\"Collected\"\r\n"
        "\"PP1\",\"SYNTHWICK, NED J\",\"04/19/1983\",\"M\",\"Ferritin\",\"106\","
        "\"ng/mL\",\"05/01/2025 09:00 AM\"\r\n");
    REQUIRE(result.reports.size() == 1);
    const Patient& patient = result.reports[0].patient;
    REQUIRE(patient.identifiers.size() == 1);
    CHECK(patient.identifiers[0].id == "PP1");
    CHECK(patient.identifiers[0].authority.empty());
    CHECK(patient.identifiers[0].type.empty());
    CHECK(patient.family == "SYNTHWICK");
    CHECK(patient.given == "NED");
    CHECK(patient.middle == "J");
    CHECK(patient.birth_date == day_date(1983, 4, 19));
    CHECK(patient.sex == "M");
  }
  SECTION("two columns") {
    const CsvFileResult result = reports_of(
        "Patienten-ID;Nachname;Vorname;Geburtsdatum;Geschlecht;LOINC;Wert;Einheit;"
        "Entnahmedatum\n"
        "P-7;F\xC3\xA4lschle;Ines;15.09.1955;W;2276-4;30;ng/ml;05.12.2024\n");
    REQUIRE(result.reports.size() == 1);
    const Patient& patient = result.reports[0].patient;
    CHECK(patient.family == "F\xC3\xA4lschle");
    CHECK(patient.given == "Ines");
    CHECK(patient.middle.empty());
    CHECK(patient.birth_date == day_date(1955, 9, 15));
    CHECK(patient.sex == "W");
  }
  SECTION("a surname column beside a name column fills what the name leaves out") {
    const CsvFileResult result = reports_of(
        "Name,Vorname,Patient ID,Test,Value,Unit,Collected\n"
        "Mustermann,Erika,9,Ferritin,30,ng/mL,2025-01-01\n");
    REQUIRE(result.reports.size() == 1);
    CHECK(result.reports[0].patient.family == "Mustermann");
    CHECK(result.reports[0].patient.given == "Erika");
  }
  SECTION("a birth date written with a time keeps only the day") {
    const CsvFileResult result = reports_of(
        "patient_id,dob,test,value,unit,collected\n"
        "1,04/19/1983 12:00 AM,Ferritin,30,ng/mL,2025-01-01T10:00:00-05:00\n");
    REQUIRE(result.reports.size() == 1);
    CHECK(result.reports[0].patient.birth_date == day_date(1983, 4, 19));
  }
}

TEST_CASE("csv_to_reports refuses a file without required columns, naming each", "[parsers][csv]") {
  SECTION("unit and collection time") {
    const CsvFileResult result =
        reports_of("patient_id,test_name,loinc,value,ref_range\n1,Ferritin,2276-4,42,15-150\n");
    CHECK(result.reports.empty());
    REQUIRE(result.refusals.size() == 1);
    const Refusal& refusal = result.refusals[0];
    CHECK(to_string(refusal.reason) == "missing_columns");
    CHECK(refusal.detail == "missing required columns: unit, collected_at");
    CHECK(refusal.where.line == 1);
    CHECK(refusal.where.offset == 0);
    CHECK(refusal.where.field == -1);
    CHECK(refusal.patient_key.empty());
  }
  SECTION("every required column") {
    const CsvFileResult result = reports_of("\xEF\xBB\xBF\nName,Sex\nDoe,F\n");
    CHECK(result.reports.empty());
    REQUIRE(result.refusals.size() == 1);
    CHECK(result.refusals[0].detail ==
          "missing required columns: patient_id, loinc|local_code|test_name, value, unit, "
          "collected_at");
    CHECK(result.refusals[0].where.line == 2);
    CHECK(result.refusals[0].where.offset == 4);
  }
  SECTION("any one of LOINC, local code or test name is enough") {
    for (const std::string_view test : {"LOINC", "Test Code", "Analyte"}) {
      CAPTURE(test);
      const CsvFileResult result =
          reports_of("MRN," + std::string(test) + ",Value,Unit,Collected\n1,x,2,mg/L,2025-01-01\n");
      CHECK(result.refusals.empty());
      CHECK(result.reports.size() == 1);
    }
  }
}

TEST_CASE("csv_to_reports refuses a bad row alone and keeps the others", "[parsers][csv]") {
  const std::string text =
      std::string(kHeader) +
      "A1,Doe,Jane,1970-01-02,F,Ferritin,2276-4,,40,ng/mL,15-150,,2025-03-01 08:00,,,\n"  // 2 ok
      "A1,Doe,Jane,1970-01-02,F,Zinc,5763-8,,91,ug/dL\n"                                  // 3 short
      "A1,Doe,Jane,1970-01-02,F,Zinc,5763-8,,91,ug/dL,44-115,,2025-03-01 08:00,,,,x\n"    // 4 long
      "A1,Doe,Jane,1970-01-02,F,B12,2132-9,,500,pg/mL,,,2025-02-30 08:00,,,\n"            // 5 date
      "A1,Doe,Jane,1970-13-02,F,B12,2132-9,,500,pg/mL,,,2025-03-01 08:00,,,\n"            // 6 dob
      "A1,Doe,Jane,1970-01-02,F,B12,2132-9,,500,pg/mL,,,2025-03-01 08:00,,,done\n"  // 7 status
      ",Doe,Jane,1970-01-02,F,B12,2132-9,,500,pg/mL,,,2025-03-01 08:00,,,\n"        // 8 no id
      "A1,Doe,Jane,1970-01-02,F,,,,500,pg/mL,,,2025-03-01 08:00,,,\n"               // 9 no test
      "A1,Doe,Jane,1970-01-02,F,B12,2132-9,,500,pg/mL,,,,,,\n"                      // 10 no time
      "A1,Doe,Jane,1970-01-02,F,Iron,2498-4,,94,ug/dL,,,2025-03-01 08:00,,,F,,\n";  // 11 ok
  const CsvFileResult result = reports_of(text);

  // The refused rows do not split the run: rows 2 and 11 form one report.
  REQUIRE(result.reports.size() == 1);
  const auto& obs = result.reports[0].orders.at(0).observations;
  REQUIRE(obs.size() == 2);
  CHECK(obs[0].where.line == 2);
  CHECK(obs[1].where.line == 11);
  CHECK(obs[1].test_name == "Iron");

  REQUIRE(result.refusals.size() == 8);
  const Refusal& short_row = result.refusals[0];
  CHECK(to_string(short_row.reason) == "bad_row");
  CHECK(short_row.detail == "row has 10 fields, the header has 16");
  CHECK(short_row.where.line == 3);
  CHECK(short_row.where.field == 11);
  CHECK(short_row.where.column == "Ref Range");
  CHECK(short_row.patient_key.empty());

  const Refusal& long_row = result.refusals[1];
  CHECK(to_string(long_row.reason) == "bad_row");
  CHECK(long_row.detail == "row has 17 fields, the header has 16");
  CHECK(long_row.where.line == 4);
  CHECK(long_row.where.field == 17);
  CHECK(long_row.where.column.empty());

  const Refusal& bad_time = result.refusals[2];
  CHECK(to_string(bad_time.reason) == "bad_date");
  // The detail names the cell, never the date it holds (patient data).
  CHECK(bad_time.detail ==
        "collection time is not a valid date (YYYY-MM-DD, YYYY/MM/DD, YYYY.MM.DD, YYYYMMDD, "
        "DD.MM.YYYY or NN/NN/YYYY, with an optional time)");
  CHECK(bad_time.detail.find("2025-02-30") == std::string::npos);
  CHECK(bad_time.where.line == 5);
  CHECK(bad_time.where.field == 13);
  CHECK(bad_time.where.column == "Collected");
  CHECK(bad_time.patient_key == "|A1");
  CHECK(bad_time.code == "2132-9");
  CHECK(bad_time.collected_at.empty());

  const Refusal& bad_birth = result.refusals[3];
  CHECK(to_string(bad_birth.reason) == "bad_date");
  CHECK(bad_birth.detail.starts_with("birth date is not a valid date ("));
  CHECK(bad_birth.where.line == 6);
  CHECK(bad_birth.where.field == 4);
  CHECK(bad_birth.where.column == "DOB");
  CHECK(bad_birth.collected_at == minute_time(2025, 3, 1, 8, 0));

  const Refusal& bad_status = result.refusals[4];
  CHECK(to_string(bad_status.reason) == "bad_status");
  CHECK(bad_status.where.line == 7);
  CHECK(bad_status.where.field == 16);
  CHECK(bad_status.where.column == "Status");

  const Refusal& no_id = result.refusals[5];
  CHECK(to_string(no_id.reason) == "missing_value");
  CHECK(no_id.detail == "patient id is empty");
  CHECK(no_id.where.line == 8);
  CHECK(no_id.where.column == "MRN");
  CHECK(no_id.patient_key.empty());

  const Refusal& no_test = result.refusals[6];
  CHECK(to_string(no_test.reason) == "missing_value");
  CHECK(no_test.detail == "test code and name are empty");
  CHECK(no_test.where.line == 9);
  CHECK(no_test.where.column == "LOINC");

  const Refusal& no_time = result.refusals[7];
  CHECK(to_string(no_time.reason) == "missing_value");
  CHECK(no_time.detail == "collection time is empty");
  CHECK(no_time.where.line == 10);
  CHECK(no_time.where.field == 13);

  for (const Refusal& refusal : result.refusals) {
    CHECK(refusal.detail.find("Doe") == std::string::npos);
    CHECK(refusal.detail.find("1970") == std::string::npos);
  }
}

TEST_CASE("csv_to_reports maps a status column to F, P, C and X", "[parsers][csv]") {
  const CsvFileResult result = reports_of(
      "patient_id,test,value,unit,collected,status\n"
      "1,a,1,U,2025-01-01,Final\n1,b,1,U,2025-01-01,P\n1,c,1,U,2025-01-01,corrected\n"
      "1,d,,U,2025-01-01,cancelled\n1,e,1,U,2025-01-01,\n");
  REQUIRE(result.refusals.empty());
  REQUIRE(result.reports.size() == 1);
  const auto& obs = result.reports[0].orders.at(0).observations;
  REQUIRE(obs.size() == 5);
  CHECK(obs[0].result_status == 'F');
  CHECK(obs[1].result_status == 'P');
  CHECK(obs[2].result_status == 'C');
  CHECK(obs[3].result_status == 'X');
  CHECK(obs[3].value.empty());
  CHECK(obs[4].result_status == 'F');
}

TEST_CASE("csv_to_reports of a header without rows is empty", "[parsers][csv]") {
  const CsvFileResult result = reports_of("MRN,Test,Value,Unit,Collected\r\n");
  CHECK(result.reports.empty());
  CHECK(result.refusals.empty());
}

TEST_CASE("csv_to_reports reads NN/NN/YYYY in the order the file proves, else refuses it",
          "[parsers][csv]") {
  const std::string header = "MRN,DOB,Test,Value,Unit,Collected\n";
  SECTION("one month-first date settles the file's other dates") {
    const CsvFileResult result = reports_of(header +
                                            "1,04/19/1983,Ferritin,30,ng/mL,03/04/2025 10:10 AM\n"
                                            "2,02/03/1990,Ferritin,31,ng/mL,03/05/2025 10:10 AM\n");
    CHECK(result.refusals.empty());
    REQUIRE(result.reports.size() == 2);
    CHECK(result.reports[0].orders[0].collected_at.month == 3);
    CHECK(result.reports[0].orders[0].collected_at.day == 4);
    CHECK(result.reports[1].patient.birth_date == day_date(1990, 2, 3));
  }
  SECTION("one day-first date settles them the other way") {
    const CsvFileResult result =
        reports_of(header + "1,19/04/1983,Ferritin,30,ng/mL,03/04/2025 10:10\n");
    CHECK(result.refusals.empty());
    REQUIRE(result.reports.size() == 1);
    CHECK(result.reports[0].orders[0].collected_at.month == 4);
    CHECK(result.reports[0].orders[0].collected_at.day == 3);
  }
  SECTION("no evidence, or both ways: the ambiguous date is refused, naming line and column") {
    // The second row proves nothing, or proves both orders (25/10 day first, 12/25 month first).
    for (const std::string& other : {std::string("2,1990-02-03"), std::string("2,25/10/1990")}) {
      const bool contradicts = other.find('/') != std::string::npos;
      const std::string text = header + "1,01/02/1983,Ferritin,30,ng/mL,2025-03-04\n" + other +
                               ",Ferritin,31,ng/mL," + (contradicts ? "12/25/2025" : "03/04/2025") +
                               "\n";
      CAPTURE(text);
      const CsvFileResult result = reports_of(text);
      REQUIRE_FALSE(result.refusals.empty());
      const Refusal& refusal = result.refusals[0];
      CHECK(to_string(refusal.reason) == "ambiguous_date");
      CHECK(refusal.where.line == 2);
      CHECK(refusal.where.column == "DOB");
      CHECK(refusal.detail.find("<source date-order>") != std::string::npos);
      CHECK(refusal.detail.find("01/02") == std::string::npos);
    }
  }
  SECTION("a configured order wins over the file's evidence") {
    const CsvTable table =
        parse_csv(header + "1,19/04/1983,Ferritin,30,ng/mL,03/04/2025 10:10\n").value();
    const CsvFileResult result = csv_to_reports(table, CsvVocabulary{}, DateOrder::mdy);
    REQUIRE(result.refusals.size() == 1);
    CHECK(to_string(result.refusals[0].reason) == "bad_date");
    CHECK(result.refusals[0].where.column == "DOB");
    const CsvFileResult dmy =
        csv_to_reports(parse_csv(header + "1,01/02/1983,Ferritin,30,ng/mL,03/04/2025\n").value(),
                       CsvVocabulary{}, DateOrder::dmy);
    CHECK(dmy.refusals.empty());
    REQUIRE(dmy.reports.size() == 1);
    CHECK(dmy.reports[0].patient.birth_date == day_date(1983, 2, 1));
  }
}

}  // namespace labwatch::parsers
