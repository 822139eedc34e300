// SPDX-License-Identifier: Apache-2.0
// Tests of to_lab_report: patient, orders, observations, notes, positions and errors.
#include <catch2/catch.hpp>
#include <string>
#include <string_view>

#include "parsers/csv_parser.hpp"
#include "parsers/hl7_parser.hpp"

namespace {

using labwatch::parsers::DateTime;
using labwatch::parsers::Hl7Message;
using labwatch::parsers::LabReport;
using labwatch::parsers::Observation;
using labwatch::parsers::ParseError;
using labwatch::parsers::RawMessage;
using labwatch::parsers::RefusalReason;

// Segments joined with CR.
std::string message(std::initializer_list<std::string_view> segments) {
  std::string out;
  for (const std::string_view s : segments) {
    out.append(s).push_back('\r');
  }
  return out;
}

const std::string kFull = message({
    "MSH|^~\\&|LAB^1.2^ISO|QDX^00D0000001^CLIA|EHR|CLINIC|20240922083200-0400||ORU^R01^ORU_R01|"
    "CTRL1|P|2.5.1",
    "PID|1||ACC1^^^LCA^AN~MRN7^^^SGH&1.2.3&ISO^MR~^^^X^PI||DOE&VAN^JANE^Q^^^^L~ALIAS^A||19730404|F",
    "NTE|1|L|a note on the patient",
    "ORC|RE|ORD1|FIL1^LAB||CM||||20240922|||99^ORCDOC^ANN",
    "OBR|1||Q1^QDX|7444^NUTRITION "
    "PANEL^L|||20240921081500-0400|||||||||1234^NOTREAL^DOCTOR^^^^MD||||||"
    "20240922083200-0400|||F",
    "NTE|1|L|order note \\T\\ more",
    "OBX|1|NM|2276-4^FERRITIN^LN^457^FERRITIN^99QDX||80|ng/mL^ng/"
    "mL^UCUM|16-232|H~A|||F|||20240921081500-0400",
    "NTE|1|L|first",
    "NTE|2|L|second~third",
    "OBX|2|SN|1989-3^VITAMIN D^LN||<^0.3|ng/mL|>5.4||||P",
    "OBX|3|SN|x^y^L||^5.2",
    "OBX|4|SN|x^ratio||^1^:^128",
    "OBX|5|TX|977390^Please Note:^L||line one~line \\F\\ two\\.br\\three||||||F",
    "OBX|6|CWE|x^organism||12345^E. coli^SCT||||||C",
    "OBX| 7 |ST|x||<5||||||X",
    "OBR|2|P2|F2^LAB|N2^second",
    "OBX|1|NM|a^b||1||||||F",
});

LabReport report_of(std::string_view text, RawMessage pos = {}) {
  auto m = labwatch::parsers::parse_hl7_message(text);
  REQUIRE(m.has_value());
  pos.bytes = text;
  auto r = labwatch::parsers::to_lab_report(m.value(), pos);
  if (!r) {
    FAIL("to_lab_report failed: " << labwatch::parsers::to_string(r.error().code) << " "
                                  << r.error().detail);
  }
  return std::move(r).value();
}

ParseError error_of(std::string_view text, RawMessage pos = {}) {
  auto m = labwatch::parsers::parse_hl7_message(text);
  REQUIRE(m.has_value());
  pos.bytes = text;
  auto r = labwatch::parsers::to_lab_report(m.value(), pos);
  REQUIRE_FALSE(r.has_value());
  return r.error();
}

}  // namespace

TEST_CASE("to_lab_report reads the MSH header", "[parsers][hl7][oru]") {
  const LabReport r = report_of(kFull);
  CHECK(r.format == labwatch::parsers::SourceFormat::hl7);
  CHECK(r.sending_application == "LAB");
  CHECK(r.sending_facility == "QDX");
  CHECK(r.control_id == "CTRL1");
  CHECK(r.version == "2.5.1");
  CHECK(r.message_type == "ORU^R01^ORU_R01");
  CHECK(r.message_time.year == 2024);
  CHECK(r.message_time.hour == 8);
  CHECK(r.message_time.offset_minutes == -240);
  CHECK(r.raw_digest.empty());
}

TEST_CASE("to_lab_report reads every PID-3 repetition and the name", "[parsers][hl7][oru]") {
  const LabReport r = report_of(kFull);
  REQUIRE(r.patient.identifiers.size() == 2);  // the repetition without an id is skipped
  CHECK(r.patient.identifiers[0].id == "ACC1");
  CHECK(r.patient.identifiers[0].authority == "LCA");
  CHECK(r.patient.identifiers[0].type == "AN");
  CHECK(r.patient.identifiers[1].id == "MRN7");
  CHECK(r.patient.identifiers[1].authority ==
        "SGH");  // CX.4 namespace id, before its subcomponents
  CHECK(r.patient.identifiers[1].type == "MR");
  CHECK(r.patient.family == "DOE");
  CHECK(r.patient.given == "JANE");
  CHECK(r.patient.middle == "Q");
  CHECK(r.patient.sex == "F");
  CHECK(r.patient.birth_date.year == 1973);
  CHECK(r.patient.birth_date.month == 4);
  CHECK(r.patient.birth_date.day == 4);
  CHECK(r.patient.birth_date.precision == DateTime::Precision::day);
}

TEST_CASE("to_lab_report reads ORC/OBR groups", "[parsers][hl7][oru]") {
  const LabReport r = report_of(kFull);
  REQUIRE(r.orders.size() == 2);
  const auto& o = r.orders[0];
  CHECK(o.placer_order_number == "ORD1");  // OBR-2 empty: ORC-2
  CHECK(o.filler_order_number == "Q1");
  CHECK(o.filler_authority == "QDX");
  CHECK(o.service.code == "7444");
  CHECK(o.service.text == "NUTRITION PANEL");
  CHECK(o.service.system == "L");
  CHECK(o.collected_at.day == 21);
  CHECK(o.collected_at.hour == 8);
  CHECK(o.collected_at.minute == 15);
  CHECK(o.collected_at.has_offset);
  CHECK(o.ordering_provider_id == "1234");
  CHECK(o.ordering_provider_name == "NOTREAL, DOCTOR");
  CHECK(o.result_status == 'F');
  REQUIRE(o.notes.size() == 1);
  CHECK(o.notes[0] == "order note & more");
  CHECK(o.observations.size() == 7);

  const auto& o2 = r.orders[1];
  CHECK(o2.placer_order_number == "P2");
  CHECK(o2.filler_order_number == "F2");
  CHECK(o2.filler_authority == "LAB");
  CHECK(o2.service.text == "second");
  CHECK(o2.ordering_provider_id.empty());  // no ORC before this OBR
  CHECK(o2.result_status == '\0');
  CHECK(o2.collected_at.empty());
  REQUIRE(o2.observations.size() == 1);
  CHECK(o2.observations[0].value == "1");
}

TEST_CASE("to_lab_report reads OBX fields", "[parsers][hl7][oru]") {
  const LabReport r = report_of(kFull);
  const auto& obs = r.orders[0].observations;
  REQUIRE(obs.size() == 7);
  const Observation& nm = obs[0];
  CHECK(nm.set_id == 1);
  CHECK(nm.value_type == "NM");
  CHECK(nm.code.code == "2276-4");
  CHECK(nm.code.text == "FERRITIN");
  CHECK(nm.code.system == "LN");
  CHECK(nm.code.alt_code == "457");
  CHECK(nm.code.alt_text == "FERRITIN");
  CHECK(nm.code.alt_system == "99QDX");
  CHECK(nm.test_name == "FERRITIN");
  CHECK(nm.value == "80");
  CHECK(nm.comparator.empty());
  CHECK(nm.units == "ng/mL");
  CHECK(nm.reference_range == "16-232");
  CHECK(nm.abnormal_flags == "H~A");
  CHECK(nm.result_status == 'F');
  CHECK(nm.observed_at.minute == 15);
  CHECK(nm.observed_at.offset_minutes == -240);
  CHECK(nm.notes == std::vector<std::string>{"first", "second\nthird"});

  SECTION("SN structured numerics") {
    CHECK(obs[1].value_type == "SN");
    CHECK(obs[1].comparator == "<");
    CHECK(obs[1].value == "0.3");
    CHECK(obs[1].reference_range == ">5.4");
    CHECK(obs[1].result_status == 'P');
    CHECK(obs[1].code.alt_code.empty());
    CHECK(obs[2].comparator.empty());
    CHECK(obs[2].value == "5.2");
    CHECK(obs[2].result_status == '\0');
    CHECK(obs[3].value == "1:128");
  }
  SECTION("TX repetitions are lines; CWE values keep their components; ST keeps its text") {
    CHECK(obs[4].value == "line one\nline | two\nthree");
    CHECK(obs[4].code.text == "Please Note:");
    CHECK(obs[5].value == "12345^E. coli^SCT");
    CHECK(obs[5].result_status == 'C');
    CHECK(obs[6].set_id == 7);
    CHECK(obs[6].value == "<5");
    CHECK(obs[6].comparator.empty());
    CHECK(obs[6].result_status == 'X');
  }
}

TEST_CASE("to_lab_report uses the standard delimiters in composite values", "[parsers][hl7][oru]") {
  const LabReport r = report_of(
      "MSH|$~\\&|SYNLIS|SGH|||202409270842||ORU$R01$ORU_R01|S1|P|2.5\nPID|1||SGH1$$$SGH$MR||MOCK$"
      "GIA\n"
      "OBR|1|O|F$SGH|NUTR$Nutrition panel$99SGH\n"
      "OBX|1|CWE|c$organism||1$E. coli\\S\\K12$SCT~2$B&x||||||F|||202409260605\n"
      "OBX|2|SN|c||>=$10$-$20\n");
  CHECK(r.message_type == "ORU^R01^ORU_R01");
  const auto& obs = r.orders.at(0).observations;
  REQUIRE(obs.size() == 2);
  CHECK(obs[0].value == "1^E. coli$K12^SCT~2^B&x");
  CHECK(obs[0].observed_at.precision == DateTime::Precision::minute);
  CHECK_FALSE(obs[0].observed_at.has_offset);
  CHECK(obs[1].comparator == ">=");
  CHECK(obs[1].value == "10-20");
}

TEST_CASE("to_lab_report attaches an OBX without OBR to an implicit order", "[parsers][hl7][oru]") {
  const LabReport r = report_of(message(
      {"MSH|^~\\&|A|F|||2024||ORU^R01|1|P|2.3", "PID|1||7", "NTE|1||lost", "OBX|1|NM|a^A||1||||||F",
       "NTE|1||on a", "OBR|1|P|F|S^Svc", "NTE|1||on order", "OBX|1|NM|b^B||2||||||F"}));
  REQUIRE(r.orders.size() == 2);
  CHECK(r.orders[0].placer_order_number.empty());
  CHECK(r.orders[0].filler_order_number.empty());
  CHECK(r.orders[0].service.code.empty());
  CHECK(r.orders[0].notes.empty());
  REQUIRE(r.orders[0].observations.size() == 1);
  CHECK(r.orders[0].observations[0].code.code == "a");
  CHECK(r.orders[0].observations[0].notes == std::vector<std::string>{"on a"});
  CHECK(r.orders[1].notes == std::vector<std::string>{"on order"});
  REQUIRE(r.orders[1].observations.size() == 1);
  CHECK(r.orders[1].observations[0].code.text == "B");
}

TEST_CASE("to_lab_report fills SourcePos on the report and each observation",
          "[parsers][hl7][oru]") {
  const std::string text =
      "MSH|^~\\&|A|F|||2024||ORU^R01|1|P|2.3\r\nPID|1||7\r\n\r\nOBR|1\r\nOBX|1|NM|a||42|U/L\r\n"
      "OBX|2|NM|b||7\r\n";
  RawMessage pos;
  pos.index = 3;
  pos.offset = 1000;
  pos.first_line = 50;
  const LabReport r = report_of(text, pos);
  CHECK(r.where.message == 3);
  CHECK(r.where.segment == 1);
  CHECK(r.where.segment_id == "MSH");
  CHECK(r.where.line == 50);
  CHECK(r.where.offset == 1000);
  const Observation& o = r.orders.at(0).observations.at(0);
  CHECK(o.where.message == 3);
  CHECK(o.where.segment == 4);
  CHECK(o.where.segment_id == "OBX");
  CHECK(o.where.field == 5);
  CHECK(o.where.line == 54);
  CHECK(o.where.offset == 1000 + text.find("42"));
  CHECK(o.units_where.message == 3);
  CHECK(o.units_where.segment == 4);
  CHECK(o.units_where.segment_id == "OBX");
  CHECK(o.units_where.field == 6);
  CHECK(o.units_where.line == 54);
  CHECK(o.units_where.offset == 1000 + text.find("U/L"));
  // Without OBX-6 the unit's position is the end of its segment.
  const Observation& no_unit = r.orders.at(0).observations.at(1);
  CHECK(no_unit.units_where.segment == 5);
  CHECK(no_unit.units_where.field == 6);
  CHECK(no_unit.units_where.line == 55);
  CHECK(no_unit.units_where.offset == 1000 + text.rfind("\r\n"));
}

TEST_CASE("to_lab_report refuses what is not a usable ORU message", "[parsers][hl7][oru]") {
  RawMessage pos;
  pos.index = 2;
  pos.offset = 500;
  pos.first_line = 10;
  SECTION("not ORU") {
    const std::string text = "MSH|^~\\&|A|F|||2024||ADT^A01|1|P|2.3\rPID|1||7\r";
    const ParseError e = error_of(text, pos);
    CHECK(e.code == RefusalReason::not_oru);
    CHECK(e.message == 2);
    CHECK(e.segment == 1);
    CHECK(e.field == 9);
    CHECK(e.offset == 500 + text.find("ADT"));
    CHECK(e.line == 10);
    CHECK(error_of("MSH|^~\\&|A\r").code == RefusalReason::not_oru);
  }
  SECTION("no PID") {
    const std::string text = "MSH|^~\\&|A|F|||2024||ORU^R01|1|P|2.3\rOBR|1\rOBX|1|NM|a||1\r";
    const ParseError e = error_of(text, pos);
    CHECK(e.code == RefusalReason::missing_segment);
    CHECK(e.message == 2);
    CHECK(e.offset == 500 + text.size());
    CHECK(e.line == 10);  // no segment to point at: the message's MSH
  }
  SECTION("two patients") {
    const ParseError e =
        error_of("MSH|^~\\&|A|F|||2024||ORU^R01|1|P|2.3\rPID|1||7\rOBX|1\rPID|2||8\r", pos);
    CHECK(e.code == RefusalReason::unrecognized_format);
    CHECK(e.segment == 4);
    CHECK(e.line == 13);
  }
  SECTION("a multi-byte character set of table 0211") {
    const ParseError e =
        error_of("MSH|^~\\&|A|F|||2024||ORU^R01|1|P|2.3||||||ISO IR87\rPID|1||7\r", pos);
    CHECK(e.code == RefusalReason::bad_encoding);
    CHECK(e.field == 18);
  }
  SECTION("a message the splitter found cut") {
    pos.truncated = true;
    const std::string text = "MSH|^~\\&|A|F|||2024||ORU^R01|1|P|2.3\rPID|1||7\rOBX|1|NM|62";
    const ParseError e = error_of(text, pos);
    CHECK(e.code == RefusalReason::truncated_message);
    CHECK(e.message == 2);
    CHECK(e.segment == 3);
    CHECK(e.field == 3);
    CHECK(e.offset == 500 + text.size());
  }
}

TEST_CASE("to_lab_report reads SPM-17 as the order's specimen collection time",
          "[parsers][hl7][oru]") {
  SECTION("2.5: a DR of TS, the time in subcomponent 1; 2.6+: a DR of DTM") {
    for (const std::string_view spm17 :
         {"202503150830&M^202503150845", "202503150830^202503150845", "202503150830"}) {
      CAPTURE(spm17);
      const LabReport r = report_of(message({
          "MSH|^~\\&|A|F|||2024||ORU^R01|1|P|2.5.1",
          "PID|1||7^^^F^MR",
          "OBR|1||F1|x",
          "OBX|1|NM|2276-4^FERRITIN^LN||80|ng/mL|||||F",
          "SPM|1|||BLD" + std::string(13, '|') + std::string(spm17),
      }));
      REQUIRE(r.orders.size() == 1);
      const DateTime& t = r.orders[0].specimen_collected_at;
      CHECK(t.year == 2025);
      CHECK(t.day == 15);
      CHECK(t.hour == 8);
      CHECK(t.minute == 30);
      CHECK_FALSE(t.has_offset);
      CHECK(r.orders[0].collected_at.empty());
    }
  }
  SECTION("two SPM of one order with different times give none") {
    const LabReport r = report_of(message({
        "MSH|^~\\&|A|F|||2024||ORU^R01|1|P|2.5.1",
        "PID|1||7^^^F^MR",
        "OBR|1||F1|x",
        "OBX|1|NM|2276-4^FERRITIN^LN||80|ng/mL|||||F",
        "SPM|1|||BLD" + std::string(13, '|') + "202503150830",
        "SPM|2|||SER" + std::string(13, '|') + "202503150930",
    }));
    CHECK(r.orders[0].specimen_collected_at.empty());
    CHECK(r.orders[0].specimen_collected_at.unreadable);
  }
}

TEST_CASE("to_lab_report reads ISO dates in TS fields and marks text that is no time",
          "[parsers][hl7][oru]") {
  const LabReport r = report_of(message({
      "MSH|^~\\&|A|F|||2024||ORU^R01|1|P|2.5.1",
      "PID|1||7^^^F^MR",
      "OBR|1||F1|x|||2025-03-15T08:30:00-05:00",
      "OBX|1|NM|2276-4^FERRITIN^LN||80|ng/mL|||||F|||yesterday",
      "OBR|2||F2|x|||\"\"",
      "OBX|1|NM|2276-4^FERRITIN^LN||80|ng/mL|||||F|||03/04/2025",
  }));
  REQUIRE(r.orders.size() == 2);
  const DateTime& iso = r.orders[0].collected_at;
  CHECK(iso.year == 2025);
  CHECK(iso.hour == 8);
  CHECK(iso.has_offset);
  CHECK(iso.offset_minutes == -300);
  CHECK(r.orders[0].observations[0].observed_at.unreadable);
  CHECK(r.orders[1].collected_at.empty());  // the HL7 null
  CHECK_FALSE(r.orders[1].collected_at.unreadable);
  // Two readings: kept both for the sender's date-order, which only normalize knows.
  const DateTime& slashed = r.orders[1].observations[0].observed_at;
  CHECK_FALSE(slashed.unreadable);
  CHECK(slashed.slashed == labwatch::parsers::SlashedDate::both);
  CHECK(slashed.month == 3);
  CHECK(slashed.day == 4);
}

TEST_CASE("to_lab_report keeps the readings of NN/NN/YYYY times for the sender's date order",
          "[parsers][hl7][oru]") {
  using labwatch::parsers::DateOrder;
  using labwatch::parsers::in_date_order;
  using labwatch::parsers::SlashedDate;
  const LabReport r = report_of(message({
      "MSH|^~\\&|A|F|||03/04/2025 09:00||ORU^R01|1|P|2.5.1",
      "PID|1||7^^^F^MR",
      "OBR|1||F1|x|||03/04/2025 08:30",
      "OBX|1|NM|2276-4^FERRITIN^LN||80|ng/mL|||||F|||13/04/2025 08:30",
      "OBX|2|NM|2276-4^FERRITIN^LN||80|ng/mL|||||F|||04/13/2025",
      "OBX|3|NM|2276-4^FERRITIN^LN||80|ng/mL|||||F|||31/31/2025",
  }));
  REQUIRE(r.orders.size() == 1);
  const DateTime& both = r.orders[0].collected_at;
  CHECK(both.slashed == SlashedDate::both);
  CHECK(r.message_time.slashed == SlashedDate::both);
  REQUIRE(in_date_order(both, DateOrder::mdy));
  CHECK(in_date_order(both, DateOrder::mdy)->month == 3);
  CHECK(in_date_order(both, DateOrder::mdy)->day == 4);
  CHECK(in_date_order(both, DateOrder::mdy)->hour == 8);
  CHECK(in_date_order(both, DateOrder::mdy)->minute == 30);
  CHECK(in_date_order(both, DateOrder::mdy)->slashed == SlashedDate::none);
  REQUIRE(in_date_order(both, DateOrder::dmy));
  CHECK(in_date_order(both, DateOrder::dmy)->month == 4);
  CHECK(in_date_order(both, DateOrder::dmy)->day == 3);
  REQUIRE_FALSE(in_date_order(both, DateOrder::unknown));
  CHECK(in_date_order(both, DateOrder::unknown).error() == labwatch::parsers::DateErrc::ambiguous);

  const auto& obs = r.orders[0].observations;
  REQUIRE(obs.size() == 3);
  // 13/04 is only a date day first: read without an order and day first, refused month first,
  // as read_csv_datetime does for a CSV.
  CHECK(obs[0].observed_at.slashed == SlashedDate::day_first);
  CHECK(in_date_order(obs[0].observed_at, DateOrder::unknown)->month == 4);
  CHECK(in_date_order(obs[0].observed_at, DateOrder::dmy)->day == 13);
  REQUIRE_FALSE(in_date_order(obs[0].observed_at, DateOrder::mdy));
  CHECK(in_date_order(obs[0].observed_at, DateOrder::mdy).error() ==
        labwatch::parsers::DateErrc::invalid);
  CHECK(obs[1].observed_at.slashed == SlashedDate::month_first);
  CHECK(in_date_order(obs[1].observed_at, DateOrder::mdy)->day == 13);
  CHECK_FALSE(in_date_order(obs[1].observed_at, DateOrder::dmy));
  CHECK(obs[2].observed_at.unreadable);  // no date in either order
  // The same day in both readings is no question.
  DateTime same = both;
  same.day = 3;
  same.month = 3;
  CHECK(in_date_order(same, DateOrder::unknown)->day == 3);
}

TEST_CASE("to_lab_report warns of an MSH-18 label outside table 0211 and reads the message",
          "[parsers][hl7][oru]") {
  RawMessage pos;
  pos.index = 1;
  pos.first_line = 4;
  const LabReport r = report_of(
      "MSH|^~\\&|A|F|||2024||ORU^R01|1|P|2.5.1||||||CP-850\rPID|1||7^^^F^MR||M\xFCller\r", pos);
  CHECK(r.patient.family == "M\xC3\xBCller");
  REQUIRE(r.warnings.size() == 1);
  CHECK(r.warnings[0].reason == "unknown_charset");
  CHECK(r.warnings[0].where.field == 18);
  CHECK(r.warnings[0].where.segment_id == "MSH");
  CHECK(r.warnings[0].where.message == 1);
  CHECK(r.warnings[0].where.line == 4);
  CHECK(r.warnings[0].detail.find("M\xFC") == std::string::npos);
  SECTION("a known label warns of nothing") {
    CHECK(report_of("MSH|^~\\&|A|F|||2024||ORU^R01|1|P|2.5.1||||||8859/1\rPID|1||7\r")
              .warnings.empty());
  }
}
