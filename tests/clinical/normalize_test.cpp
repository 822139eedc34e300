// SPDX-License-Identifier: Apache-2.0
// Tests of normalize on hand-built LabReports: identity, mapping, status, values, units, refusals.
#include "clinical/normalize.hpp"

#include <catch2/catch.hpp>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "clinical/analyte_catalogue.hpp"
#include "parsers/csv_parser.hpp"
#include "parsers/hl7_parser.hpp"

namespace {

using labwatch::clinical::Analyte;
using labwatch::clinical::AnalyteCatalogue;
using labwatch::clinical::normalize;
using labwatch::clinical::NormalizedReport;
using labwatch::clinical::NormalizedResult;
using labwatch::clinical::ResultStatus;
using labwatch::clinical::SourceContext;
using labwatch::parsers::Coded;
using labwatch::parsers::CsvFileResult;
using labwatch::parsers::DateTime;
using labwatch::parsers::Hl7FileResult;
using labwatch::parsers::Identifier;
using labwatch::parsers::LabReport;
using labwatch::parsers::Observation;
using labwatch::parsers::Order;
using labwatch::parsers::Refusal;
using labwatch::parsers::SourceFormat;
using labwatch::parsers::SourcePos;

constexpr std::int64_t kCollectedUtc = 1726920900;  // 2024-09-21T12:15:00Z
const SourceContext kQdx{"QDX", "QDX", "America/New_York"};

DateTime at(int year, int month, int day, int hour, int minute) {
  DateTime t;
  t.year = year;
  t.month = month;
  t.day = day;
  t.hour = hour;
  t.minute = minute;
  t.precision = DateTime::Precision::minute;
  return t;
}

DateTime at_offset(int year, int month, int day, int hour, int minute, int offset_minutes) {
  DateTime t = at(year, month, day, hour, minute);
  t.has_offset = true;
  t.offset_minutes = offset_minutes;
  return t;
}

Coded loinc(std::string code, std::string text) {
  return Coded{std::move(code), std::move(text), "LN", "", "", ""};
}

Observation obx(int set_id, Coded code, std::string value, std::string units,
                std::string range = "", char status = 'F') {
  Observation o;
  o.set_id = set_id;
  o.value_type = "NM";
  o.test_name = code.text;
  o.code = std::move(code);
  o.value = std::move(value);
  o.units = std::move(units);
  o.reference_range = std::move(range);
  o.result_status = status;
  o.where.message = 0;
  o.where.segment = 4 + set_id;
  o.where.segment_id = "OBX";
  o.where.line = 4 + set_id;
  o.where.field = 5;
  o.where.offset = static_cast<std::size_t>(set_id) * 100;
  o.units_where = o.where;
  o.units_where.field = 6;
  o.units_where.offset += 10;
  return o;
}

// A Quest-like message: one order collected 2024-09-21 08:15 -0400, MR-typed id, QDX authority.
LabReport quest_report(std::vector<Observation> observations) {
  LabReport r;
  r.format = SourceFormat::hl7;
  r.sending_facility = "QDX";
  r.control_id = "QDX301000001";
  r.message_time = at_offset(2024, 9, 22, 8, 32, -240);
  r.raw_digest = "ab12";
  r.where.message = 0;
  r.where.line = 1;
  r.where.offset = 0;
  r.patient.identifiers = {Identifier{"Q37960593", "QDX", "MR"}};
  r.patient.family = "FICTORA";
  r.patient.given = "CORA";
  r.patient.middle = "L";
  r.patient.birth_date = at(1973, 4, 4, 0, 0);
  r.patient.birth_date.precision = DateTime::Precision::day;
  r.patient.sex = "F";
  Order order;
  order.filler_order_number = "Q00094E1";
  order.filler_authority = "QDX";
  order.collected_at = at_offset(2024, 9, 21, 8, 15, -240);
  order.ordering_provider_id = "1234567890";
  order.ordering_provider_name = "NOTREAL, DOCTOR";
  order.observations = std::move(observations);
  r.orders.push_back(std::move(order));
  return r;
}

// A CSV report as csv_to_reports builds it: bare id, codes without a system, naive times.
LabReport csv_report(std::vector<Observation> observations) {
  LabReport r;
  r.format = SourceFormat::csv;
  r.patient.identifiers = {Identifier{"36672", "", ""}};
  r.patient.family = "Testwell";
  r.patient.given = "Sol";
  r.patient.birth_date = at(1954, 3, 11, 0, 0);
  r.patient.birth_date.precision = DateTime::Precision::day;
  r.patient.sex = "M";
  Order order;
  order.collected_at = at(2025, 3, 9, 7, 0);  // America/Denver, MDT since 02:00 that day
  for (Observation& o : observations) {
    o.code.system.clear();
    o.where = {};
    o.where.line = 2;
    o.where.field = 8;
    o.where.column = "value";
    o.units_where = {};
    o.units_where.line = 2;
    o.units_where.field = 9;
    o.units_where.column = "unit";
  }
  order.observations = std::move(observations);
  r.orders.push_back(std::move(order));
  return r;
}

NormalizedReport normalized(const LabReport& report, const SourceContext& source = kQdx,
                            const AnalyteCatalogue& catalogue = AnalyteCatalogue::builtin()) {
  auto result = normalize(report, catalogue, source);
  REQUIRE(result.has_value());
  return std::move(result).value();
}

Refusal refused(const LabReport& report, const SourceContext& source) {
  auto result = normalize(report, AnalyteCatalogue::builtin(), source);
  REQUIRE_FALSE(result.has_value());
  return result.error();
}

std::vector<std::string> analytes_of(const NormalizedReport& report) {
  std::vector<std::string> keys;
  for (const NormalizedResult& r : report.results) {
    keys.push_back(r.analyte);
  }
  return keys;
}

}  // namespace

TEST_CASE("normalize turns a Quest-like message into canonical results", "[clinical][normalize]") {
  Observation ferritin = obx(1, Coded{"2276-4", "FERRITIN", "LN", "457", "FERRITIN", "99QDX"}, "80",
                             "ng/mL", "16-232");
  ferritin.abnormal_flags = "H";
  ferritin.notes = {"Line one.", "Line two."};
  const NormalizedReport report = normalized(quest_report({ferritin}));

  CHECK(report.facility == "QDX");
  CHECK(report.control_id == "QDX301000001");
  CHECK(report.message_time == 1727008320);  // 2024-09-22T12:32:00Z
  CHECK(report.raw_digest == "ab12");
  CHECK(report.ordering_provider_id == "1234567890");
  CHECK(report.ordering_provider_name == "NOTREAL, DOCTOR");
  CHECK(report.where.line == 1);
  CHECK(report.patient.authority == "QDX");
  CHECK(report.patient.mrn == "Q37960593");
  CHECK(report.patient.patient_key() == "QDX|Q37960593");
  CHECK(report.patient.family == "FICTORA");
  CHECK(report.patient.given == "CORA");
  CHECK(report.patient.birth_date == "1973-04-04");
  CHECK(report.patient.sex == 'F');
  CHECK(report.refusals.empty());
  CHECK(report.unmapped.empty());

  REQUIRE(report.results.size() == 1);
  const NormalizedResult& r = report.results[0];
  CHECK(r.analyte == "ferritin");
  CHECK(r.value == 80.0);
  CHECK(r.comparator.empty());
  CHECK(r.unit == "ng/mL");
  CHECK(r.raw_value == "80");
  CHECK(r.raw_unit == "ng/mL");
  CHECK(r.raw_range == "16-232");
  CHECK(r.ref_low == 16.0);
  CHECK(r.ref_high == 232.0);
  CHECK(r.flags == "H");
  CHECK(r.status == ResultStatus::final);
  CHECK(r.collected_at == kCollectedUtc);
  CHECK(r.code == "2276-4");
  CHECK(r.order_id == "Q00094E1");
  CHECK(r.notes == "Line one.\nLine two.");
  CHECK(r.where.segment == 5);
  CHECK(r.where.offset == 100);
}

TEST_CASE("normalize maps by primary LOINC, alternate LOINC, local code, then name",
          "[clinical][normalize]") {
  AnalyteCatalogue catalogue = AnalyteCatalogue::builtin();
  Analyte local;
  local.key = "ferritin";
  local.local_codes = {"FERR"};
  catalogue.upsert(local);

  SECTION("the primary coding's LOINC (Quest: LOINC^NAME^LN^local^NAME^99QDX)") {
    const auto report = normalized(
        quest_report({obx(1, Coded{"26746-8", "MAGNESIUM, RBC", "LN", "5900945", "X", "99QDX"},
                          "3.9", "mg/dL")}),
        kQdx, catalogue);
    CHECK(analytes_of(report) == std::vector<std::string>{"rbc_magnesium"});
    CHECK(report.results[0].code == "26746-8");
  }
  SECTION("a primary code that is a catalogue LOINC, with no coding system (CSV)") {
    const auto report = normalized(
        quest_report({obx(1, Coded{"2283-0", "Folate, RBC", "", "", "", ""}, "407", "ng/mL")}),
        kQdx, catalogue);
    CHECK(analytes_of(report) == std::vector<std::string>{"rbc_folate"});
  }
  SECTION("the alternate coding's LOINC (LabCorp: local^name^L^LOINC^name^LN)") {
    const auto report = normalized(
        quest_report(
            {obx(1, Coded{"004598", "Ferritin", "L", "2276-4", "Ferritin", "LN"}, "4", "ng/mL")}),
        kQdx, catalogue);
    CHECK(analytes_of(report) == std::vector<std::string>{"ferritin"});
    CHECK(report.results[0].code == "2276-4");
  }
  SECTION("a configured local code") {
    const auto report = normalized(
        quest_report(
            {obx(1, Coded{"FERR", "Ferritin level", "99SGH", "", "", ""}, "110", "ng/mL")}),
        kQdx, catalogue);
    CHECK(analytes_of(report) == std::vector<std::string>{"ferritin"});
    CHECK(report.results[0].code == "FERR");
  }
  SECTION("a configured local code in the alternate coding") {
    const auto report = normalized(
        quest_report(
            {obx(1, Coded{"77", "?", "99X", "FERR", "Ferritin", "99SGH"}, "110", "ng/mL")}),
        kQdx, catalogue);
    CHECK(analytes_of(report) == std::vector<std::string>{"ferritin"});
    CHECK(report.results[0].code == "FERR");
  }
  SECTION("the test name, when no code maps") {
    Observation by_name = obx(1, Coded{}, "5.3", "mg/dL");
    by_name.test_name = "RBC Magnesium";
    const auto report = normalized(quest_report({by_name}), kQdx, catalogue);
    CHECK(analytes_of(report) == std::vector<std::string>{"rbc_magnesium"});
    CHECK(report.results[0].code.empty());
  }
  SECTION("the coded text, when there is no test name") {
    Observation by_text =
        obx(1, Coded{"LOCAL9", "Vitamin B12 (cobalamin)", "99X", "", "", ""}, "412", "pg/mL");
    by_text.test_name.clear();
    const auto report = normalized(quest_report({by_text}), kQdx, catalogue);
    CHECK(analytes_of(report) == std::vector<std::string>{"vitamin_b12"});
  }
}

TEST_CASE("normalize counts results outside the catalogue as unmapped, not refused",
          "[clinical][normalize]") {
  Observation hemoglobin = obx(1, loinc("718-7", "HEMOGLOBIN"), "13.1", "g/dL");
  Observation hemoglobin_again = obx(2, loinc("718-7", "HEMOGLOBIN"), "13.3", "g/dL");
  Observation tibc = obx(3, Coded{"TIBC1", "TIBC", "L", "2500-7", "TIBC", "LN"}, "300", "ug/dL");
  Observation local_only = obx(4, Coded{"ZZ9", "Mystery", "99X", "", "", ""}, "1", "U");
  Observation name_only = obx(5, Coded{}, "2", "U");
  name_only.test_name = "Hemoglobin A1c";
  Observation nothing = obx(6, Coded{}, "3", "U");
  nothing.test_name.clear();
  // An explicit LOINC outside the catalogue is a different test, even with a catalogue name:
  // 8245-3 is whole-blood zinc, not serum zinc.
  Observation whole_blood_zinc = obx(7, loinc("8245-3", "Zinc"), "600", "ug/dL");
  Observation ferritin = obx(8, loinc("2276-4", "FERRITIN"), "80", "ng/mL");

  const auto report = normalized(quest_report({hemoglobin, hemoglobin_again, tibc, local_only,
                                               name_only, nothing, whole_blood_zinc, ferritin}));
  CHECK(report.unmapped == std::map<std::string, int>{{"718-7", 2},
                                                      {"2500-7", 1},
                                                      {"ZZ9", 1},
                                                      {"Hemoglobin A1c", 1},
                                                      {"(no code or name)", 1},
                                                      {"8245-3", 1}});
  // One line per result, in order, with the name and unit the lab sent and where it stands.
  REQUIRE(report.unmapped_lines.size() == 7);
  CHECK(report.unmapped_lines[0].code == "718-7");
  CHECK(report.unmapped_lines[0].name == "HEMOGLOBIN");
  CHECK(report.unmapped_lines[0].unit == "g/dL");
  CHECK(report.unmapped_lines[0].where.segment == hemoglobin.where.segment);
  CHECK(report.unmapped_lines[1].where.segment == hemoglobin_again.where.segment);
  CHECK(report.unmapped_lines[2].name == "TIBC");
  CHECK(report.unmapped_lines[3].code == "ZZ9");
  CHECK(report.unmapped_lines[3].name == "Mystery");
  CHECK(report.unmapped_lines[3].unit == "U");
  CHECK(report.unmapped_lines[4].name == "Hemoglobin A1c");
  CHECK(report.unmapped_lines[5].name.empty());
  CHECK(report.unmapped_lines[6].name == "Zinc");
  CHECK(report.refusals.empty());
  CHECK(analytes_of(report) == std::vector<std::string>{"ferritin"});
}

TEST_CASE("normalize takes the status from OBX-11", "[clinical][normalize]") {
  auto status_of = [](char obx11) {
    const auto report =
        normalized(quest_report({obx(1, loinc("2276-4", "FERRITIN"), "80", "ng/mL", "", obx11)}));
    REQUIRE(report.results.size() == 1);
    return report.results[0].status;
  };
  CHECK(status_of('F') == ResultStatus::final);
  CHECK(status_of('C') == ResultStatus::corrected);
  CHECK(status_of('c') == ResultStatus::corrected);
  CHECK(status_of('P') == ResultStatus::preliminary);
  CHECK(status_of('X') == ResultStatus::cancelled);
  // D (delete) and W (posted as wrong) withdraw like X; R (not verified) and S (partial) are
  // preliminary; A (amended) corrects; an absent status is final.
  CHECK(status_of('D') == ResultStatus::cancelled);
  CHECK(status_of('W') == ResultStatus::cancelled);
  CHECK(status_of('R') == ResultStatus::preliminary);
  CHECK(status_of('S') == ResultStatus::preliminary);
  CHECK(status_of('A') == ResultStatus::corrected);
  CHECK(status_of('U') == ResultStatus::final);
  CHECK(status_of(0) == ResultStatus::final);
}

TEST_CASE("normalize keeps a cancelled result without a value, so it can withdraw",
          "[clinical][normalize]") {
  Observation cancelled = obx(1, loinc("2276-4", "FERRITIN"), "", "", "", 'X');
  Observation cancelled_with_text =
      obx(2, loinc("26746-8", "MAGNESIUM, RBC"), "CANCELLED", "U/L", "4.0-6.4", 'X');
  const auto report = normalized(quest_report({cancelled, cancelled_with_text}));
  CHECK(report.refusals.empty());
  REQUIRE(report.results.size() == 2);
  for (const NormalizedResult& r : report.results) {
    CHECK(r.status == ResultStatus::cancelled);
    CHECK(r.value == 0.0);
    CHECK(r.comparator.empty());
    CHECK_FALSE(r.ref_low.has_value());
    CHECK(r.collected_at == kCollectedUtc);
  }
  CHECK(report.results[0].unit == "ng/mL");
  CHECK(report.results[1].raw_value == "CANCELLED");
}

TEST_CASE("normalize reads censored values, decimal commas and converts units exactly",
          "[clinical][normalize]") {
  Observation censored_st = obx(1, loinc("2276-4", "FERRITIN"), "<5", "ng/mL", "16-232");
  censored_st.value_type = "ST";
  Observation censored_sn = obx(2, loinc("30522-7", "HS-CRP"), "0.3", "mg/L", "0.00-3.00");
  censored_sn.value_type = "SN";
  censored_sn.comparator = "<";
  Observation sn_equal = obx(3, loinc("2132-9", "B12"), "412", "pg/mL");
  sn_equal.comparator = "=";
  Observation comma = obx(4, loinc("13965-9", "HOMOCYSTEINE"), "7,8", "\xC2\xB5mol/l", "< 10,0");
  Observation molar = obx(5, loinc("14723-1", "Ferritin"), "177", "pmol/L", "67-899");
  Observation odd_range = obx(6, loinc("2498-4", "IRON"), "96", "ug/dL", "see note");
  const auto report =
      normalized(quest_report({censored_st, censored_sn, sn_equal, comma, molar, odd_range}));
  REQUIRE(report.refusals.empty());
  REQUIRE(report.results.size() == 6);

  const NormalizedResult& st = report.results[0];
  CHECK(st.value == 5.0);
  CHECK(st.comparator == "<");
  CHECK(st.raw_value == "<5");
  const NormalizedResult& sn = report.results[1];
  CHECK(sn.value == 0.3);
  CHECK(sn.comparator == "<");
  CHECK(sn.raw_value == "<0.3");
  CHECK(report.results[2].comparator.empty());
  CHECK(report.results[2].value == 412.0);
  const NormalizedResult& hcy = report.results[3];
  CHECK(hcy.value == 7.8);
  CHECK_FALSE(hcy.ref_low.has_value());
  CHECK(hcy.ref_high == 10.0);
  // 177 pmol/L x 0.445038 = 78.771726 ng/mL, kept as the exact product.
  const NormalizedResult& ferritin = report.results[4];
  CHECK(ferritin.analyte == "ferritin");
  CHECK(ferritin.unit == "ng/mL");
  CHECK(ferritin.value == 177 * 0.445038);
  CHECK(ferritin.value == Approx(78.771726).epsilon(1e-12));
  CHECK(ferritin.ref_low == 67 * 0.445038);
  CHECK(ferritin.ref_high == 899 * 0.445038);
  CHECK(ferritin.raw_unit == "pmol/L");
  const NormalizedResult& iron = report.results[5];
  CHECK(iron.value == 96.0);
  CHECK(iron.raw_range == "see note");
  CHECK_FALSE(iron.ref_low.has_value());
  CHECK_FALSE(iron.ref_high.has_value());
}

TEST_CASE("normalize refuses one result at a time and keeps the rest of the report",
          "[clinical][normalize]") {
  const Observation good = obx(1, loinc("2276-4", "FERRITIN"), "80", "ng/mL");
  auto check_refusal = [&](Observation bad, const char* reason, const std::string& detail,
                           const char* analyte) {
    const Observation copy = bad;
    const auto report = normalized(quest_report({good, std::move(bad)}));
    CHECK(analytes_of(report) == std::vector<std::string>{"ferritin"});
    REQUIRE(report.refusals.size() == 1);
    const Refusal& r = report.refusals[0];
    CHECK(to_string(r.reason) == reason);
    CHECK(r.detail == detail);
    CHECK(r.detail.find("FICTORA") == std::string::npos);
    CHECK(r.detail.find("CORA") == std::string::npos);
    // A unit refusal points at OBX-6, every other one at OBX-5.
    const SourcePos& pos =
        std::string_view(reason) == "unknown_unit" ? copy.units_where : copy.where;
    CHECK(r.where.segment == pos.segment);
    CHECK(r.where.field == pos.field);
    CHECK(r.where.offset == pos.offset);
    CHECK(r.patient_key == "QDX|Q37960593");
    CHECK(r.code == copy.code.code);
    CHECK(r.analyte == analyte);
    CHECK(r.collected_at == at_offset(2024, 9, 21, 8, 15, -240));
    CHECK(r.result_status == copy.result_status);
  };
  SECTION("non_numeric_value") {
    // "TNP" is skipped as not performed (see below); other words are still refused.
    check_refusal(obx(2, loinc("2276-4", "FERRITIN"), "pending", "ng/mL"), "non_numeric_value",
                  "OBX-5 is not a number", "ferritin");
    check_refusal(obx(2, loinc("2276-4", "FERRITIN"), "", "ng/mL", "", 'P'), "non_numeric_value",
                  "OBX-5 is empty", "ferritin");
    check_refusal(obx(2, loinc("2276-4", "FERRITIN"), "5-10", "ng/mL"), "non_numeric_value",
                  "OBX-5 is not a number", "ferritin");
    check_refusal(obx(2, loinc("2276-4", "FERRITIN"),
                      "Specimen hemolyzed; please redraw and resubmit the sample", "ng/mL"),
                  "non_numeric_value", "OBX-5 is not a number", "ferritin");
    Observation sn = obx(2, loinc("2276-4", "FERRITIN"), "5", "ng/mL");
    sn.comparator = "<>";
    check_refusal(sn, "non_numeric_value", "OBX-5 is not a number", "ferritin");
  }
  SECTION("implausible_value") {
    check_refusal(obx(2, loinc("2276-4", "FERRITIN"), "-12", "ng/mL"), "implausible_value",
                  "OBX-5 is below what is possible for ferritin", "ferritin");
  }
  SECTION("unknown_unit, never stored as canonical") {
    check_refusal(obx(2, loinc("2276-4", "FERRITIN"), "81", "U/L"), "unknown_unit",
                  "OBX-6 'U/L' is not a known unit for ferritin (canonical ng/mL)", "ferritin");
    check_refusal(obx(2, loinc("26746-8", "MAGNESIUM, RBC"), "5.1", ""), "unknown_unit",
                  "OBX-6 is empty for rbc_magnesium (canonical mg/dL)", "rbc_magnesium");
  }
}

TEST_CASE("normalize takes the collection time from OBR-7, else OBX-14, and refuses without one",
          "[clinical][normalize]") {
  Observation ferritin = obx(1, loinc("2276-4", "FERRITIN"), "80", "ng/mL");
  ferritin.observed_at = at_offset(2024, 9, 21, 9, 48, -240);  // analysis time: not collection

  SECTION("OBR-7 wins over OBX-14") {
    const auto report = normalized(quest_report({ferritin}));
    REQUIRE(report.results.size() == 1);
    CHECK(report.results[0].collected_at == kCollectedUtc);
  }
  SECTION("OBX-14 stands in for an empty OBR-7") {
    LabReport message = quest_report({ferritin});
    message.orders[0].collected_at = {};
    const auto report = normalized(message);
    REQUIRE(report.results.size() == 1);
    CHECK(report.results[0].collected_at == kCollectedUtc + std::int64_t{93} * 60);
  }
  SECTION("missing_time when both are empty") {
    ferritin.observed_at = {};
    LabReport message = quest_report({ferritin, obx(2, loinc("2498-4", "IRON"), "96", "ug/dL")});
    message.orders[0].collected_at = {};
    const auto report = normalized(message);
    CHECK(report.results.empty());
    REQUIRE(report.refusals.size() == 2);
    CHECK(to_string(report.refusals[0].reason) == "missing_time");
    CHECK(report.refusals[0].detail ==
          "no specimen collection time: OBR-7, OBX-14 and SPM-17 are empty");
    CHECK(report.refusals[1].analyte == "iron");
  }
  SECTION("invalid_time for a date that does not exist") {
    LabReport message = quest_report({ferritin});
    message.orders[0].collected_at = at(2025, 2, 30, 8, 0);
    const auto report = normalized(message);
    REQUIRE(report.refusals.size() == 1);
    CHECK(to_string(report.refusals[0].reason) == "invalid_time");
    CHECK(report.refusals[0].detail == "OBR-7 is not a real date and time");
    CHECK(report.refusals[0].collected_at == at(2025, 2, 30, 8, 0));
  }
  SECTION("a naive time is local time of the source's zone") {
    LabReport message = quest_report({ferritin});
    message.orders[0].collected_at = at(2024, 9, 21, 8, 15);
    const auto report = normalized(message);
    REQUIRE(report.results.size() == 1);
    CHECK(report.results[0].collected_at == kCollectedUtc);  // EDT, UTC-4
  }
  SECTION("unknown_timezone for a naive time without a source zone") {
    LabReport message = quest_report({ferritin});
    message.orders[0].collected_at = at(2024, 9, 21, 8, 15);
    const auto report = normalized(message, SourceContext{});
    REQUIRE(report.refusals.size() == 1);
    CHECK(to_string(report.refusals[0].reason) == "unknown_timezone");
    CHECK(report.refusals[0].detail ==
          "OBR-7 has no UTC offset, and neither a <source> of the file nor <intake "
          "default-timezone> names a timezone");
    CHECK(report.facility == "QDX");  // the rest of the report is still there
    CHECK(report.patient.patient_key() == "QDX|Q37960593");
  }
  SECTION("unknown_timezone for a zone name the system does not know") {
    ferritin.observed_at = at(2024, 9, 21, 8, 15);
    LabReport message = quest_report({ferritin});
    message.orders[0].collected_at = {};
    const auto report = normalized(message, SourceContext{"QDX", "QDX", "America/Gotham"});
    REQUIRE(report.refusals.size() == 1);
    CHECK(to_string(report.refusals[0].reason) == "unknown_timezone");
    CHECK(report.refusals[0].detail ==
          "OBX-14 has no UTC offset and the timezone 'America/Gotham' is not a known IANA zone");
  }
}

TEST_CASE(
    "normalize takes SPM-17 when OBR-7 and OBX-14 are empty, and never skips an unreadable "
    "time",
    "[clinical][normalize]") {
  Observation ferritin = obx(1, loinc("2276-4", "FERRITIN"), "80", "ng/mL");
  LabReport message = quest_report({ferritin});
  message.orders[0].collected_at = {};
  message.orders[0].specimen_collected_at = at(2024, 9, 21, 8, 15);  // naive: New York, EDT

  SECTION("SPM-17 stands in for OBR-7 and OBX-14") {
    const auto report = normalized(message);
    REQUIRE(report.results.size() == 1);
    CHECK(report.results[0].collected_at == kCollectedUtc);
  }
  SECTION("OBX-14 comes before SPM-17") {
    message.orders[0].observations[0].observed_at = at(2024, 9, 21, 8, 45);
    const auto report = normalized(message);
    REQUIRE(report.results.size() == 1);
    CHECK(report.results[0].collected_at == kCollectedUtc + 30 * 60);
  }
  SECTION("OBR-7 comes before both") {
    message.orders[0].collected_at = at(2024, 9, 21, 7, 15);
    message.orders[0].observations[0].observed_at = at(2024, 9, 21, 8, 45);
    const auto report = normalized(message);
    REQUIRE(report.results.size() == 1);
    CHECK(report.results[0].collected_at == kCollectedUtc - 60 * 60);
  }
  SECTION("a refusal about the time names SPM-17 when SPM-17 was used") {
    const auto report = normalized(message, SourceContext{});
    REQUIRE(report.refusals.size() == 1);
    CHECK(to_string(report.refusals[0].reason) == "unknown_timezone");
    CHECK(report.refusals[0].detail.starts_with("SPM-17 has no UTC offset"));
  }
  SECTION("an unreadable OBR-7 is refused, not passed over for OBX-14 or SPM-17") {
    message.orders[0].collected_at.unreadable = true;
    message.orders[0].observations[0].observed_at = at(2024, 9, 21, 8, 45);
    const auto report = normalized(message);
    CHECK(report.results.empty());
    REQUIRE(report.refusals.size() == 1);
    CHECK(to_string(report.refusals[0].reason) == "invalid_time");
    CHECK(report.refusals[0].detail == "OBR-7 is not a date and time");
  }
  SECTION("SPM segments that disagree are refused, naming SPM-17") {
    message.orders[0].specimen_collected_at = {};
    message.orders[0].specimen_collected_at.unreadable = true;
    const auto report = normalized(message);
    REQUIRE(report.refusals.size() == 1);
    CHECK(to_string(report.refusals[0].reason) == "invalid_time");
    CHECK(report.refusals[0].detail.starts_with("SPM-17 is not a date and time, or the order's"));
  }
  SECTION("parsed from HL7: OBR-6 (the request time) is never the collection time") {
    const Hl7FileResult parsed = labwatch::parsers::parse_hl7_file(
        "MSH|^~\\&|LAB|QDX|||20240922083200-0400||ORU^R01|C1|P|2.5.1\r"
        "PID|1||Q1^^^QDX^MR||DOE^JANE\r"
        "OBR|1||F1|x||20240920080000-0400\r"
        "OBX|1|NM|2276-4^FERRITIN^LN||80|ng/mL|||||F\r"
        "SPM|1|||BLD" +
        std::string(13, '|') + "20240921081500-0400\r");
    REQUIRE(parsed.reports.size() == 1);
    const auto report = normalized(parsed.reports[0]);
    REQUIRE(report.results.size() == 1);
    CHECK(report.results[0].collected_at == kCollectedUtc);
  }
}

TEST_CASE("normalize reads HL7 times NN/NN/YYYY in the source's date order, as CSV does",
          "[clinical][normalize]") {
  const auto parse = [](const std::string& obr7, const std::string& msh7 = "") {
    const Hl7FileResult parsed = labwatch::parsers::parse_hl7_file(
        "MSH|^~\\&|LAB|QDX|||" + msh7 + "||ORU^R01|C1|P|2.5.1\r" +
        "PID|1||Q1^^^QDX^MR||DOE^JANE||03/04/1970\r" + "OBR|1||F1|x|||" + obr7 + "\r" +
        "OBX|1|NM|2276-4^FERRITIN^LN||80|ng/mL|||||F\r");
    REQUIRE(parsed.reports.size() == 1);
    return parsed.reports[0];
  };
  SourceContext mdy = kQdx;
  mdy.date_order = labwatch::parsers::DateOrder::mdy;
  SourceContext dmy = kQdx;
  dmy.date_order = labwatch::parsers::DateOrder::dmy;
  // 2025-03-04 08:30 and 2025-04-03 08:30 in New York (EST, then EDT).
  constexpr std::int64_t kMarch4 = 1741095000;
  constexpr std::int64_t kApril3 = 1743683400;

  SECTION("03/04/2025 is read month first or day first as the source says") {
    const LabReport message = parse("03/04/2025 08:30", "03/04/2025 09:00");
    const auto us = normalized(message, mdy);
    REQUIRE(us.results.size() == 1);
    CHECK(us.results[0].collected_at == kMarch4);
    CHECK(us.message_time == kMarch4 + 30 * 60);
    CHECK(us.patient.birth_date == "1970-03-04");
    const auto uk = normalized(message, dmy);
    REQUIRE(uk.results.size() == 1);
    CHECK(uk.results[0].collected_at == kApril3);
    CHECK(uk.message_time == kApril3 + 30 * 60);
    CHECK(uk.patient.birth_date == "1970-04-03");
  }
  SECTION("without a date order it is refused as ambiguous_date, not as invalid_time") {
    const auto report = normalized(parse("03/04/2025 08:30"), kQdx);
    CHECK(report.results.empty());
    REQUIRE(report.refusals.size() == 1);
    CHECK(to_string(report.refusals[0].reason) == "ambiguous_date");
    CHECK(report.refusals[0].detail.starts_with("OBR-7 is a date NN/NN/YYYY"));
    CHECK(report.patient.birth_date.empty());  // two readings: not guessed
  }
  SECTION("a date with one reading is read without an order, and refused in the other") {
    const LabReport message = parse("13/04/2025 08:30");
    REQUIRE(normalized(message, kQdx).results.size() == 1);
    CHECK(normalized(message, dmy).results.size() == 1);
    const auto us = normalized(message, mdy);
    CHECK(us.results.empty());
    REQUIRE(us.refusals.size() == 1);
    CHECK(to_string(us.refusals[0].reason) == "invalid_time");
    CHECK(us.refusals[0].detail == "OBR-7 is no real date in the <source> date-order \"mdy\"");
  }
}

TEST_CASE("normalize skips a coded value that says the test was not performed, as parsed",
          "[clinical][normalize]") {
  const auto parse = [](const std::string& obx) {
    const Hl7FileResult parsed = labwatch::parsers::parse_hl7_file(
        "MSH|^~\\&|LAB|QDX|||20240922083200-0400||ORU^R01|C1|P|2.5.1\r"
        "PID|1||Q1^^^QDX^MR||DOE^JANE\r"
        "OBR|1||F1|x|||20240921081500-0400\r"
        "OBX|1|NM|1989-3^VITAMIN D^LN||38|ng/mL|||||F\r" +
        obx + "\r");
    REQUIRE(parsed.reports.size() == 1);
    return normalized(parsed.reports[0]);
  };
  SECTION("CWE TNP^Test not performed is a test not performed at its draw") {
    const auto report = parse("OBX|2|CWE|2276-4^Ferritin^LN||TNP^Test not performed^L||||||F");
    CHECK(report.refusals.empty());
    REQUIRE(report.skipped.size() == 1);
    CHECK(report.skipped[0].reason == labwatch::clinical::SkipReason::not_performed);
    CHECK(report.skipped[0].analyte == "ferritin");
    CHECK(report.skipped[0].collected_at == kCollectedUtc);
    CHECK(report.results.size() == 1);
  }
  SECTION("CE with only a text that says cancelled by the lab") {
    const auto report = parse("OBX|2|CE|2276-4^Ferritin^LN||^Cancelled by lab||||||F");
    CHECK(report.refusals.empty());
    REQUIRE(report.skipped.size() == 1);
    CHECK(report.skipped[0].reason == labwatch::clinical::SkipReason::not_performed);
  }
  SECTION("a coded result or free text that is no not-performed statement is still refused") {
    for (const std::string obx :
         {"OBX|2|CWE|2276-4^Ferritin^LN||POS^Positive^L||||||F",
          "OBX|2|ST|2276-4^Ferritin^LN||Specimen hemolyzed, see TNP||||||F"}) {
      INFO(obx);
      const auto report = parse(obx);
      CHECK(report.skipped.empty());
      REQUIRE(report.refusals.size() == 1);
      CHECK(to_string(report.refusals[0].reason) == "non_numeric_value");
    }
  }
}

TEST_CASE("normalize scopes a generic assigning authority by the sender", "[clinical][normalize]") {
  const Observation ferritin = obx(1, loinc("2276-4", "FERRITIN"), "80", "ng/mL");
  LabReport message = quest_report({ferritin});  // MSH-4 QDX

  SECTION("a label that names an identifier type or a slot becomes FACILITY:LABEL") {
    for (const auto& [label, key] : std::vector<std::pair<std::string, std::string>>{
             {"MR", "QDX:MR|123"},
             {"mrn", "QDX:MRN|123"},
             {" MRN ", "QDX:MRN|123"},
             {"1", "QDX:1|123"},
             {"PI", "QDX:PI|123"},
             {"Local", "QDX:LOCAL|123"},
         }) {
      CAPTURE(label);
      message.patient.identifiers = {Identifier{"123", label, "MR"}};
      CHECK(normalized(message, SourceContext{}).patient.patient_key() == key);
    }
  }
  SECTION("two labs' MRN|123 never meet") {
    message.patient.identifiers = {Identifier{"123", "MRN", "MR"}};
    const std::string qdx = normalized(message, SourceContext{}).patient.patient_key();
    message.sending_facility = "LCA";
    const std::string lca = normalized(message, SourceContext{}).patient.patient_key();
    CHECK(qdx == "QDX:MRN|123");
    CHECK(lca == "LCA:MRN|123");
  }
  SECTION("the source's authority scopes before MSH-4, the source's facility after it") {
    message.patient.identifiers = {Identifier{"123", "MR", "MR"}};
    CHECK(normalized(message, SourceContext{"QDX", "QDX-AUTH", "America/New_York"})
              .patient.patient_key() == "QDX-AUTH:MR|123");
    message.sending_facility.clear();
    CHECK(
        normalized(message, SourceContext{"QDXF", "", "America/New_York"}).patient.patient_key() ==
        "QDXF:MR|123");
    const Refusal refusal = refused(message, SourceContext{});
    CHECK(to_string(refusal.reason) == "missing_authority");
    CHECK(refusal.detail.find("generic") != std::string::npos);
  }
  SECTION("a real authority is kept as sent") {
    for (const std::string authority : {"SGH", "LCA", "2.16.840.1.113883.3.9999", "1234"}) {
      CAPTURE(authority);
      message.patient.identifiers = {Identifier{"123", authority, "MR"}};
      CHECK(normalized(message, SourceContext{}).patient.patient_key() == authority + "|123");
    }
  }
}

TEST_CASE("normalize picks the MR-typed identifier and its authority", "[clinical][normalize]") {
  const Observation ferritin = obx(1, loinc("2276-4", "FERRITIN"), "80", "ng/mL");

  SECTION("the MR repetition even when it is not the first (LabCorp: account number first)") {
    LabReport message = quest_report({ferritin});
    message.patient.identifiers = {Identifier{"751150557", "LCA", "AN"},
                                   Identifier{"60951714489", "LCA", "MR"}};
    CHECK(normalized(message).patient.patient_key() == "LCA|60951714489");
  }
  SECTION("the first repetition with an id when none is typed MR") {
    LabReport message = quest_report({ferritin});
    message.patient.identifiers = {Identifier{"", "X", "MR"}, Identifier{"A1", "AUTH", "PI"},
                                   Identifier{"B2", "AUTH", "AN"}};
    CHECK(normalized(message).patient.patient_key() == "AUTH|A1");
  }
  SECTION("CX.4, else the source's authority, else MSH-4") {
    LabReport message = quest_report({ferritin});
    message.patient.identifiers = {Identifier{"SGH897744", "", "MR"}};
    CHECK(normalized(message, SourceContext{"SGH", "SGH-AUTH", "America/Phoenix"})
              .patient.patient_key() == "SGH-AUTH|SGH897744");
    CHECK(normalized(message, SourceContext{}).patient.patient_key() == "QDX|SGH897744");
    message.sending_facility.clear();
    const Refusal refusal = refused(message, SourceContext{});
    CHECK(to_string(refusal.reason) == "missing_authority");
    CHECK(
        refusal.detail ==
        "PID-3 has no assigning authority (CX.4), MSH-4 is empty and the file matched no <source>");
    CHECK(refusal.where.line == 1);
  }
  SECTION("no identifier at all") {
    LabReport message = quest_report({ferritin});
    message.patient.identifiers = {Identifier{" ", "QDX", "MR"}};
    const Refusal refusal = refused(message, kQdx);
    CHECK(to_string(refusal.reason) == "missing_patient_id");
    CHECK(refusal.detail == "PID-3 holds no patient identifier");
  }
  SECTION("a CSV id belongs to the source's authority") {
    const Observation b12 = obx(1, Coded{"2132-9", "Vitamin B12", "", "", "", ""}, "773", "pg/mL");
    const auto report =
        normalized(csv_report({b12}), SourceContext{"WCE", "WCE", "America/Denver"});
    CHECK(report.patient.patient_key() == "WCE|36672");
    CHECK(report.facility == "WCE");
    CHECK(report.control_id.empty());
    REQUIRE(report.results.size() == 1);
    CHECK(report.results[0].collected_at == 1741525200);  // 2025-03-09T13:00:00Z (MDT)
  }
  SECTION("a CSV that matched no source is refused whole") {
    const Observation b12 = obx(1, Coded{"2132-9", "Vitamin B12", "", "", "", ""}, "773", "pg/mL");
    const Refusal refusal = refused(csv_report({b12}), SourceContext{});
    CHECK(to_string(refusal.reason) == "unknown_source");
    CHECK(refusal.detail ==
          "the file matched no <source>, so its patient ids have no assigning authority");
  }
}

TEST_CASE("normalize names CSV fields in refusal details", "[clinical][normalize]") {
  const SourceContext wce{"WCE", "WCE", "America/Denver"};
  const auto report = normalized(
      csv_report({obx(1, Coded{"26746-8", "RBC Magnesium", "", "", "", ""}, "pending", "mg/dL"),
                  obx(2, Coded{"2276-4", "Ferritin", "", "", "", ""}, "81", "U/L"),
                  obx(3, Coded{"2132-9", "Vitamin B12", "", "", "", ""}, "773", "pg/mL")}),
      wce);
  CHECK(analytes_of(report) == std::vector<std::string>{"vitamin_b12"});
  REQUIRE(report.refusals.size() == 2);
  CHECK(to_string(report.refusals[0].reason) == "non_numeric_value");
  CHECK(report.refusals[0].detail == "the value is not a number");  // never the value itself
  CHECK(report.refusals[0].where.line == 2);
  CHECK(report.refusals[0].where.field == 8);
  CHECK(report.refusals[0].where.column == "value");
  CHECK(report.refusals[0].patient_key == "WCE|36672");
  CHECK(to_string(report.refusals[1].reason) == "unknown_unit");
  CHECK(report.refusals[1].detail ==
        "the unit 'U/L' is not a known unit for ferritin (canonical ng/mL)");
  CHECK(report.refusals[1].where.line == 2);
  CHECK(report.refusals[1].where.field == 9);
  CHECK(report.refusals[1].where.column == "unit");
}

TEST_CASE("normalize points an unknown_unit refusal at the CSV unit column the parser read",
          "[clinical][normalize]") {
  const std::string text =
      "patient_id,test_name,loinc,value,unit,collected_at\n"
      "36672,Ferritin,2276-4,81,U/L,2025-07-10 10:20\n"
      "36672,Ferritin,2276-4,pending,ng/mL,2025-07-10 10:20\n";
  const auto table = labwatch::parsers::parse_csv(text);
  REQUIRE(table.has_value());
  const CsvFileResult parsed = labwatch::parsers::csv_to_reports(*table, {});
  REQUIRE(parsed.refusals.empty());
  REQUIRE(parsed.reports.size() == 1);
  const auto report = normalized(parsed.reports[0], SourceContext{"WCE", "WCE", "America/Denver"});
  REQUIRE(report.refusals.size() == 2);
  const Refusal& unit = report.refusals[0];
  CHECK(to_string(unit.reason) == "unknown_unit");
  CHECK(unit.where.line == 2);
  CHECK(unit.where.column == "unit");
  CHECK(unit.where.field == 5);
  CHECK(unit.where.offset == text.find("36672"));
  // The value's refusal still names the value's column.
  const Refusal& value = report.refusals[1];
  CHECK(to_string(value.reason) == "non_numeric_value");
  CHECK(value.where.line == 3);
  CHECK(value.where.column == "value");
  CHECK(value.where.field == 4);
}

TEST_CASE("normalize points an unknown_unit refusal at OBX-6 of the segment the parser read",
          "[clinical][normalize]") {
  const std::string text =
      "MSH|^~\\&|LAB|QDX|||20240922083200-0400||ORU^R01|C1|P|2.5.1\r"
      "PID|1||Q1^^^QDX^MR||FICTORA^CORA||19730404|F\r"
      "OBR|1||F1^QDX|x|||20240921081500-0400\r"
      "OBX|1|NM|2276-4^FERRITIN^LN||81|U/L|||||F\r"
      "OBX|2|NM|2498-4^IRON^LN||96|ug/dL|||||F\r";
  const Hl7FileResult parsed = labwatch::parsers::parse_hl7_file(text);
  REQUIRE(parsed.errors.empty());
  REQUIRE(parsed.reports.size() == 1);
  const auto report = normalized(parsed.reports[0]);
  CHECK(analytes_of(report) == std::vector<std::string>{"iron"});
  REQUIRE(report.refusals.size() == 1);
  const Refusal& r = report.refusals[0];
  CHECK(to_string(r.reason) == "unknown_unit");
  CHECK(r.detail == "OBX-6 'U/L' is not a known unit for ferritin (canonical ng/mL)");
  CHECK(r.where.message == 0);
  CHECK(r.where.segment == 4);
  CHECK(r.where.segment_id == "OBX");
  CHECK(r.where.field == 6);
  CHECK(r.where.line == 4);
  CHECK(r.where.offset == text.find("U/L"));
}

TEST_CASE("normalize reads names, birth date and sex as reconciliation needs them",
          "[clinical][normalize]") {
  LabReport message = quest_report({});
  auto sex_of = [&](const char* sex) {
    message.patient.sex = sex;
    return normalized(message).patient.sex;
  };
  for (const char* female : {"F", "f", "W", "Female", "FEMALE", "weiblich", "Weiblich"}) {
    CAPTURE(female);
    CHECK(sex_of(female) == 'F');
  }
  for (const char* male : {"M", "m", "Male", "männlich", "MÄNNLICH"}) {
    CAPTURE(male);
    CHECK(sex_of(male) == 'M');
  }
  for (const char* unknown : {"", "U", "O", "X", "divers", "Fe"}) {
    CAPTURE(unknown);
    CHECK(sex_of(unknown) == 'U');
  }

  message.patient.given = "  Mary Ann ";
  message.patient.family = " Müller-Lüdenscheidt ";
  message.patient.birth_date = at(1956, 3, 6, 0, 0);
  message.patient.birth_date.precision = DateTime::Precision::day;
  NormalizedReport report = normalized(message);
  CHECK(report.patient.given == "Mary");  // the first given name only
  CHECK(report.patient.family == "Müller-Lüdenscheidt");
  CHECK(report.patient.birth_date == "1956-03-06");

  message.patient.birth_date.precision = DateTime::Precision::month;
  CHECK(normalized(message).patient.birth_date.empty());
  message.patient.birth_date = at(1956, 2, 30, 0, 0);
  message.patient.birth_date.precision = DateTime::Precision::day;
  CHECK(normalized(message).patient.birth_date.empty());
  message.patient.birth_date = {};
  CHECK(normalized(message).patient.birth_date.empty());
}

TEST_CASE("normalize takes facility, message time and ordering provider with their fallbacks",
          "[clinical][normalize]") {
  LabReport message = quest_report({});
  SECTION("the source's facility over MSH-4") {
    CHECK(normalized(message, SourceContext{"QUEST-EAST", "QDX", ""}).facility == "QUEST-EAST");
    CHECK(normalized(message, SourceContext{}).facility == "QDX");
  }
  SECTION("MSH-7 in UTC, 0 when absent or not convertible") {
    message.message_time = at(2024, 9, 22, 8, 32);
    CHECK(normalized(message).message_time == 1727008320);  // naive, America/New_York
    CHECK(normalized(message, SourceContext{}).message_time == 0);
    message.message_time = {};
    CHECK(normalized(message).message_time == 0);
  }
  SECTION("the first order that names a provider") {
    Order second = message.orders[0];
    message.orders[0].ordering_provider_id.clear();
    message.orders[0].ordering_provider_name.clear();
    second.ordering_provider_id = "999";
    second.ordering_provider_name = "SECOND, DOC";
    Order third = second;
    third.ordering_provider_id = "111";
    message.orders.push_back(second);
    message.orders.push_back(third);
    const auto report = normalized(message);
    CHECK(report.ordering_provider_id == "999");
    CHECK(report.ordering_provider_name == "SECOND, DOC");
  }
}

TEST_CASE("normalize skips pending, not-asked and order-detail lines without refusing them",
          "[clinical][normalize]") {
  const auto report = normalized(quest_report({
      obx(1, loinc("2276-4", "FERRITIN"), "", "", "", 'I'),
      obx(2, loinc("26746-8", "MAGNESIUM, RBC"), "", "", "", 'N'),
      obx(3, loinc("2132-9", "VITAMIN B12"), "pending", "", "", 'I'),
      obx(4, loinc("2276-4", "FERRITIN"), "", "", "", 'O'),
      obx(5, loinc("1989-3", "VITAMIN D"), "32", "ng/mL"),
  }));
  CHECK(report.refusals.empty());
  CHECK(analytes_of(report) == std::vector<std::string>{"vitamin_d_25oh"});
  REQUIRE(report.skipped.size() == 4);
  CHECK(report.skipped[0].reason == labwatch::clinical::SkipReason::pending);
  CHECK(report.skipped[0].analyte == "ferritin");
  CHECK(report.skipped[1].reason == labwatch::clinical::SkipReason::not_asked);
  CHECK(report.skipped[2].reason == labwatch::clinical::SkipReason::pending);
  CHECK(report.skipped[3].reason == labwatch::clinical::SkipReason::order_detail);
  CHECK(report.skipped[0].where.segment == 5);
}

TEST_CASE("normalize skips text comments, mapped or not, and keeps a number sent as text",
          "[clinical][normalize]") {
  Observation comment = obx(1, loinc("2276-4", "FERRITIN"), "(Ref Range: 4 k/uL)", "");
  comment.value_type = "TX";
  Observation unknown_comment =
      obx(2, Coded{"COMMENT", "Comment", "L", "", "", ""}, "Fasting specimen.\nSee lab notes.", "");
  unknown_comment.value_type = "FT";
  Observation number_as_text = obx(3, loinc("1989-3", "VITAMIN D"), "41", "ng/mL");
  number_as_text.value_type = "TX";
  const auto report = normalized(quest_report({comment, unknown_comment, number_as_text}));
  CHECK(report.refusals.empty());
  CHECK(report.unmapped.empty());
  CHECK(analytes_of(report) == std::vector<std::string>{"vitamin_d_25oh"});
  REQUIRE(report.skipped.size() == 2);
  CHECK(report.skipped[0].reason == labwatch::clinical::SkipReason::comment);
  CHECK(report.skipped[1].reason == labwatch::clinical::SkipReason::comment);
  CHECK(report.skipped[1].analyte.empty());
  CHECK(report.skipped[1].code == "COMMENT");
}

TEST_CASE("normalize records a test not performed as a skipped line at its draw",
          "[clinical][normalize]") {
  for (const std::string value : {"TNP", "qns", "CANC", "Test not performed", "See note"}) {
    INFO(value);
    const auto report = normalized(quest_report({obx(1, loinc("2276-4", "FERRITIN"), value, "")}));
    CHECK(report.refusals.empty());
    CHECK(report.results.empty());
    REQUIRE(report.skipped.size() == 1);
    const labwatch::clinical::SkippedLine& line = report.skipped[0];
    CHECK(line.reason == labwatch::clinical::SkipReason::not_performed);
    CHECK(line.analyte == "ferritin");
    CHECK(line.collected_at == kCollectedUtc);
    CHECK(line.order_id == "Q00094E1");
    CHECK(line.raw_value == value);
  }
  // Other words are still refused: "pending" with status F is no value and no known phrase.
  const auto refused =
      normalized(quest_report({obx(1, loinc("2276-4", "FERRITIN"), "pending", "ng/mL")}));
  REQUIRE(refused.refusals.size() == 1);
  CHECK(to_string(refused.refusals[0].reason) == "non_numeric_value");
}

TEST_CASE("normalize withdraws with X, W and D whatever OBX-5 holds, and promotes with U",
          "[clinical][normalize]") {
  const auto report = normalized(quest_report({
      obx(1, loinc("2276-4", "FERRITIN"), "", "", "", 'D'),
      obx(2, loinc("26746-8", "MAGNESIUM, RBC"), "5.1", "mg/dL", "", 'D'),
      obx(3, loinc("2132-9", "VITAMIN B12"), "TNP", "", "", 'W'),
      obx(4, loinc("1989-3", "VITAMIN D"), "", "", "", 'U'),
      obx(5, loinc("2284-8", "FOLATE"), "12.1", "ng/mL", "", 'U'),
  }));
  CHECK(report.refusals.empty());
  CHECK(report.skipped.empty());
  REQUIRE(report.results.size() == 5);
  for (int i = 0; i < 3; ++i) {
    CHECK(report.results[static_cast<std::size_t>(i)].status == ResultStatus::cancelled);
  }
  CHECK(report.results[3].status == ResultStatus::final);
  CHECK(report.results[3].promote_only);
  CHECK(report.results[4].status == ResultStatus::final);
  CHECK_FALSE(report.results[4].promote_only);
  CHECK(report.results[4].value == Approx(12.1));
}

TEST_CASE("normalize orders a message without MSH-7 by OBR-22, else by arrival",
          "[clinical][normalize]") {
  LabReport report = quest_report({obx(1, loinc("2276-4", "FERRITIN"), "80", "ng/mL")});
  SECTION("MSH-7 first") {
    report.orders[0].status_changed_at = at_offset(2024, 9, 23, 9, 0, 0);
    const auto out = normalized(report);
    CHECK(out.message_time == 1727008320);  // 2024-09-22T12:32:00Z
    CHECK_FALSE(out.message_time_from_arrival);
  }
  SECTION("OBR-22 when MSH-7 is empty") {
    report.message_time = {};
    report.orders[0].status_changed_at = at_offset(2024, 9, 23, 9, 0, 0);
    const auto out = normalized(report);
    CHECK(out.message_time == 1727082000);  // 2024-09-23T09:00:00Z
    CHECK_FALSE(out.message_time_from_arrival);
  }
  SECTION("arrival when both are empty, never time 0 as a version time") {
    report.message_time = {};
    const auto out = normalized(report);
    CHECK(out.message_time_from_arrival);
  }
}

TEST_CASE("normalize passes OBR-29's parent order on to each result", "[clinical][normalize]") {
  LabReport report = quest_report({obx(1, loinc("2276-4", "FERRITIN"), "80", "ng/mL", "", 'C')});
  report.orders[0].filler_order_number = "Q00094E2";
  report.orders[0].parent_filler_id = "Q00094E1";
  const auto out = normalized(report);
  REQUIRE(out.results.size() == 1);
  CHECK(out.results[0].order_id == "Q00094E2");
  CHECK(out.results[0].parent_order_id == "Q00094E1");
}
