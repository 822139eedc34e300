// SPDX-License-Identifier: Apache-2.0
// Clinical safety of the value path, table-driven: each case is one small HL7 OBX or CSV row, read
// by the real parsers, normalized against the built-in catalogue and judged by its default
// target, with the stored value, the refusal or the alert it must give.
#include <catch2/catch.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "clinical/analyte_catalogue.hpp"
#include "clinical/normalize.hpp"
#include "clinical/rules.hpp"
#include "parsers/csv_parser.hpp"
#include "parsers/hl7_parser.hpp"

namespace {

using labwatch::clinical::AnalyteCatalogue;
using labwatch::clinical::Decision;
using labwatch::clinical::NormalizedReport;
using labwatch::clinical::RangeProblem;
using labwatch::clinical::SourceContext;
using labwatch::parsers::DecimalMark;

// What one input must give. Exactly one of `value` and `refusal` is set.
struct Expect {
  std::optional<double> value;    // stored, canonical unit
  std::string refusal;            // refusal reason
  std::string alert;              // the decision's rule; "" none
  bool indeterminate = false;     // no alert, judged indeterminate
  std::optional<double> ref_low;  // the usable lab range stored, canonical unit
  std::optional<double> ref_high;
  RangeProblem range = RangeProblem::none;  // checked when the case sets check_range
  bool check_range = false;
  int shown_decimals = -2;  // -2: not checked
};

struct Outcome {
  std::optional<double> value;
  std::string refusal;
  std::string alert;
  bool indeterminate = false;
  std::optional<double> ref_low;
  std::optional<double> ref_high;
  RangeProblem range = RangeProblem::none;
  int shown_decimals = -1;
  std::string analyte;
};

// Judges the first result (or refusal) of a normalized report by the catalogue's default target.
Outcome judge_first(const NormalizedReport& report) {
  Outcome out;
  if (!report.refusals.empty()) {
    out.refusal = to_string(report.refusals.front().reason);
    return out;
  }
  if (report.results.empty()) {
    out.refusal = "(nothing)";
    return out;
  }
  const auto& result = report.results.front();
  const auto& catalogue = AnalyteCatalogue::builtin();
  const auto* analyte = catalogue.by_key(result.analyte);
  REQUIRE(analyte != nullptr);
  const auto rule = labwatch::clinical::parse_optimal_rule(analyte->optimal_rule);
  REQUIRE(rule.has_value());
  const Decision decision = labwatch::clinical::evaluate(result, *rule, *analyte);
  out.value = result.value;
  out.alert = decision.violated ? decision.rule : "";
  out.indeterminate = decision.indeterminate;
  out.ref_low = result.ref_low;
  out.ref_high = result.ref_high;
  out.range = result.range_problem;
  out.shown_decimals = result.shown_decimals;
  out.analyte = result.analyte;
  return out;
}

// One ORU^R01 with one OBX; extra OBX lines (evidence) may follow the first.
NormalizedReport from_hl7(const std::string& obx, const std::string& sex = "F",
                          DecimalMark mark = DecimalMark::unknown,
                          const std::string& extra_obx = "") {
  std::string text =
      "MSH|^~\\&|LAB|QDX|LW|CLINIC|20260315090000-0500||ORU^R01|C1|P|2.5.1\r"
      "PID|1||M100^^^QDX^MR||DOE^JANE||19800101|" +
      sex +
      "\r"
      "OBR|1||ACC1|PANEL|||20260315083000-0500\r" +
      obx + "\r" + extra_obx;
  const auto parsed = labwatch::parsers::parse_hl7_file(text);
  REQUIRE(parsed.reports.size() == 1);
  SourceContext source{"QDX", "QDX", "America/New_York"};
  source.decimal = mark;
  auto normalized =
      labwatch::clinical::normalize(parsed.reports.front(), AnalyteCatalogue::builtin(), source);
  REQUIRE(normalized.has_value());
  return std::move(normalized).value();
}

NormalizedReport from_csv(const std::string& rows, DecimalMark mark = DecimalMark::unknown) {
  const std::string text =
      "patient_id,last_name,first_name,dob,sex,test_name,loinc,value,unit,ref_range,flag,"
      "collected_at\n" +
      rows;
  const auto table = labwatch::parsers::parse_csv(text);
  REQUIRE(table.has_value());
  const auto parsed = labwatch::parsers::csv_to_reports(*table, {});
  REQUIRE(parsed.refusals.empty());
  REQUIRE(!parsed.reports.empty());
  SourceContext source{"WCE", "WCE", "America/Denver"};
  source.decimal = mark;
  auto normalized =
      labwatch::clinical::normalize(parsed.reports.front(), AnalyteCatalogue::builtin(), source);
  REQUIRE(normalized.has_value());
  return std::move(normalized).value();
}

void check(const Outcome& got, const Expect& want) {
  if (want.value) {
    REQUIRE(got.refusal.empty());
    REQUIRE(got.value.has_value());
    CHECK(*got.value == Approx(*want.value).epsilon(1e-9));
    CHECK(got.alert == want.alert);
    CHECK(got.indeterminate == want.indeterminate);
    if (want.ref_low || want.ref_high) {
      CHECK(got.ref_low.has_value() == want.ref_low.has_value());
      CHECK(got.ref_high.has_value() == want.ref_high.has_value());
      if (want.ref_low && got.ref_low) {
        CHECK(*got.ref_low == Approx(*want.ref_low));
      }
      if (want.ref_high && got.ref_high) {
        CHECK(*got.ref_high == Approx(*want.ref_high));
      }
    }
    if (want.check_range) {
      CHECK(labwatch::clinical::to_key(got.range) == labwatch::clinical::to_key(want.range));
    }
    if (want.shown_decimals != -2) {
      CHECK(got.shown_decimals == want.shown_decimals);
    }
  } else {
    CHECK(got.refusal == want.refusal);
    CHECK_FALSE(got.value.has_value());
  }
}

Expect stored(double value, std::string alert = "") {
  Expect e;
  e.value = value;
  e.alert = std::move(alert);
  return e;
}
Expect refused(std::string reason) {
  Expect e;
  e.refusal = std::move(reason);
  return e;
}
Expect with_range(Expect e, std::optional<double> low, std::optional<double> high) {
  e.ref_low = low;
  e.ref_high = high;
  e.range = RangeProblem::none;
  e.check_range = true;
  return e;
}
Expect unusable_range(Expect e, RangeProblem why) {
  e.range = why;
  e.check_range = true;
  return e;
}
Expect indeterminate(double value) {
  Expect e = stored(value);
  e.indeterminate = true;
  return e;
}
Expect shown(Expect e, int decimals) {
  e.shown_decimals = decimals;
  return e;
}

struct Hl7Case {
  Hl7Case(const char* what_, std::string obx_, Expect want_, std::string sex_ = "F",
          DecimalMark mark_ = DecimalMark::unknown, std::string extra_ = "")
      : what(what_),
        obx(std::move(obx_)),
        want(std::move(want_)),
        sex(std::move(sex_)),
        mark(mark_),
        extra(std::move(extra_)) {}
  const char* what;
  std::string obx;  // the OBX segment
  Expect want;
  std::string sex;
  DecimalMark mark;
  std::string extra;  // further segments (evidence)
};

std::string obx(const std::string& type, const std::string& code, const std::string& value,
                const std::string& unit, const std::string& range, const std::string& flag = "",
                const std::string& status = "F") {
  return "OBX|1|" + type + "|" + code + "^X^LN||" + value + "|" + unit + "|" + range + "|" + flag +
         "|||" + status;
}

}  // namespace

TEST_CASE("The HL7 value path reads every number, unit and range as the lab meant it",
          "[clinical][safety]") {
  const std::vector<Hl7Case> cases = {
      // ---- Numbers: grouping and decimal marks
      {"a comma and three digits with no evidence is ambiguous",
       obx("NM", "2276-4", "1,050", "ng/mL", "16-232"), refused("ambiguous_number")},
      {"a point-decimal witness in the message resolves 1,050 as a thousands separator",
       obx("NM", "2276-4", "1,050", "ng/mL", "16.0-232.0"), stored(1050, "lab_range")},
      {"a decimal-comma witness in the message resolves 1,050 as 1.05",
       obx("NM", "2276-4", "1,050", "ng/mL", "13,0-150,0"), stored(1.05, "ge:50")},
      {"the source's decimal mark resolves it: point", obx("NM", "2276-4", "1,050", "ng/mL", ""),
       stored(1050), "F", DecimalMark::point},
      {"the source's decimal mark resolves it: comma", obx("NM", "2276-4", "1,050", "ng/mL", ""),
       stored(1.05, "ge:50"), "F", DecimalMark::comma},
      {"another OBX of the message is a witness", obx("NM", "2276-4", "1,050", "ng/mL", ""),
       stored(1050), "F", DecimalMark::unknown,
       "OBX|2|NM|718-7^Hgb^LN||13.5|g/dL|12.0-16.0||||F\r"},
      {"grouping with a decimal point", obx("NM", "2276-4", "1,234.5", "ng/mL", ""),
       stored(1234.5)},
      {"grouping with a decimal comma", obx("NM", "2276-4", "1.234,5", "ng/mL", ""),
       stored(1234.5)},
      {"grouping that contradicts the source's mark is refused",
       obx("NM", "2276-4", "1,234.5", "ng/mL", ""), refused("ambiguous_number"), "F",
       DecimalMark::comma},
      {"a lone decimal comma that cannot group", obx("NM", "2276-4", "45,2", "ng/mL", ""),
       stored(45.2, "ge:50")},
      {"a leading zero never groups", obx("NM", "2276-4", "0,125", "ng/mL", ""),
       stored(0.125, "ge:50")},
      {"HL7 NM: a point and three digits is the decimal point",
       obx("NM", "3016-3", "1.250", "uIU/mL", ""), stored(1.25)},
      {"a broken grouping is not a number", obx("NM", "2276-4", "1,23,4", "ng/mL", ""),
       refused("non_numeric_value")},
      {"text is not a number", obx("ST", "2276-4", "pending", "ng/mL", ""),
       refused("non_numeric_value")},
      // ---- The lab's flag as a second witness
      {"H on a value below the printed low is a misreading",
       obx("NM", "2276-4", "10", "ng/mL", "16-232", "H"), refused("flag_mismatch")},
      {"L on a value above the printed high is a misreading",
       obx("NM", "2276-4", "400", "ng/mL", "16-232", "L"), refused("flag_mismatch")},
      {"HH counts as high", obx("NM", "2276-4", "10", "ng/mL", "16-232", "HH"),
       refused("flag_mismatch")},
      {"a flag agreeing with the value raises the lab-range alert",
       obx("NM", "2276-4", "400", "ng/mL", "16-232", "H"), stored(400, "lab_range")},
      {"abnormal flag on a value inside the printed range alerts by the flag",
       obx("NM", "2276-4", "120", "ng/mL", "16-232", "H"), stored(120, "lab_flag")},
      {"A (abnormal) inside the range alerts by the flag",
       obx("NM", "3016-3", "2.1", "uIU/mL", "0.4-4.5", "A"), stored(2.1, "lab_flag")},
      {"N on a value outside the range is stored and the range alerts",
       obx("NM", "2276-4", "400", "ng/mL", "16-232", "N"), stored(400, "lab_range")},
      {"a flag that only repeats the censoring raises nothing of its own",
       obx("ST", "30522-7", "<0.3", "mg/L", "0.00-3.00", "L"), stored(0.3)},
      {"a flag with a censored value on the right side is no mismatch",
       obx("ST", "2276-4", "<5", "ng/mL", "16-232", "L"), stored(5, "ge:50")},
      {"a flag mismatch on a converted value", obx("NM", "2276-4", "5", "pmol/L", "16-232", "H"),
       refused("flag_mismatch")},
      {"a converted value at the printed bound is no mismatch",
       obx("NM", "2276-4", "16", "pmol/L", "16-232", "H"), stored(16 * 0.445038, "ge:50")},
      // ---- Plausibility
      {"a negative ferritin is implausible", obx("NM", "2276-4", "-12", "ng/mL", ""),
       refused("implausible_value")},
      {"vitamin D of 600 ng/mL is rare but real", obx("NM", "62292-8", "600", "ng/mL", "30-100"),
       stored(600, "range:40-60")},
      {"vitamin D of 60,000 ng/mL is a misreading", obx("NM", "62292-8", "60000", "ng/mL", ""),
       refused("implausible_value")},
      {"an implausible value after conversion", obx("NM", "62292-8", "20000", "nmol/L", ""),
       refused("implausible_value")},
      // ---- Units (UCUM)
      {"UCUM m[IU]/L is mIU/L", obx("NM", "3016-3", "2.0", "m[IU]/L", "0.4-4.5"), stored(2.0)},
      {"UCUM u[IU]/mL is uIU/mL", obx("NM", "3016-3", "2.0", "u[IU]/mL", "0.4-4.5"), stored(2.0)},
      {"a UCUM annotation {creat}", obx("NM", "79620-1", "0.5", "mmol/mol{creat}", "0-1.43"),
       stored(0.5)},
      {"ug/mg{creat} converts", obx("NM", "79620-1", "1.0", "ug/mg{creat}", ""), stored(0.649533)},
      {"umol/mmol creatinine is mmol/mol creatinine",
       obx("NM", "79620-1", "0.5", "umol/mmol creatinine", ""), stored(0.5)},
      {"a missing unit is never guessed", obx("NM", "2276-4", "80", "", ""),
       refused("unknown_unit")},
      {"an unknown unit is refused", obx("NM", "2276-4", "80", "U/L", ""), refused("unknown_unit")},
      // ---- Range shapes
      {"'4.3 to 6.2'", obx("NM", "26746-8", "5.0", "mg/dL", "4.3 to 6.2"),
       with_range(stored(5.0, "ref_upper_third"), 4.3, 6.2)},
      {"a range with a matching unit suffix", obx("NM", "26746-8", "6.0", "mg/dL", "4.0-6.4 mg/dL"),
       with_range(stored(6.0), 4.0, 6.4)},
      {"a range with another unit's suffix is not used",
       obx("NM", "26746-8", "6.0", "mg/dL", "1.6-2.6 mmol/L"),
       unusable_range(stored(6.0), RangeProblem::unit_mismatch)},
      {"a sex-specific range picks the patient's sex",
       obx("NM", "2276-4", "100", "ng/mL", "M: 70-380 F: 15-150"), with_range(stored(100), 15, 150),
       "F"},
      {"the male part for a male patient",
       obx("NM", "2276-4", "100", "ng/mL", "M: 70-380 F: 15-150"), with_range(stored(100), 70, 380),
       "M"},
      {"a sex-specific range for an unknown sex is not used",
       obx("NM", "2276-4", "100", "ng/mL", "M: 70-380 F: 15-150"),
       unusable_range(stored(100), RangeProblem::sex_unknown), "U"},
      {"sex-specific ranges as repetitions",
       obx("NM", "5761-2", "1000", "ug/dL", "M: 800-1600~F: 822-1571"),
       with_range(stored(1000, "ref_upper_half"), 822, 1571), "F"},
      {"a one-sex range for the other sex is not used",
       obx("NM", "5761-2", "1000", "ug/dL", "F: 822-1571"),
       unusable_range(stored(1000, "ref_upper_half"), RangeProblem::sex_unknown), "M"},
      {"'<0.50 IU/mL'-style one-sided range with a unit",
       obx("NM", "30522-7", "0.3", "mg/L", "<3.0 mg/L"),
       with_range(stored(0.3), std::nullopt, 3.0)},
      {"'>=4.0'", obx("NM", "26746-8", "5.0", "mg/dL", ">=4.0"),
       with_range(stored(5.0, "ref_upper_third"), 4.0, std::nullopt)},
      {"thousands in a range, read by the message's decimal point",
       obx("NM", "5761-2", "1000.0", "ug/dL", "822-1,571"),
       with_range(stored(1000, "ref_upper_half"), 822, 1571)},
      {"thousands in a range with no decimal mark known make it unusable",
       obx("NM", "5761-2", "1000", "ug/dL", "822-1,571"),
       unusable_range(stored(1000, "ref_upper_half"), RangeProblem::ambiguous_number)},
      {"a range whose magnitude does not fit the unit is not scaled",
       obx("NM", "26746-8", "2.3", "mmol/L", "4.2-6.8"),
       unusable_range(stored(2.3 * 2.4305, "ref_upper_third"), RangeProblem::does_not_fit)},
      {"garbage in the range field is not used", obx("NM", "2276-4", "80", "ng/mL", "see note"),
       unusable_range(stored(80), RangeProblem::not_a_range)},
      // ---- Optimal, not just normal
      {"RBC folate 450 below the lab's 499", obx("NM", "2283-0", "450", "ng/mL", "499-1504"),
       stored(450, "lab_range")},
      {"vitamin A 62 above the lab's 57.3", obx("NM", "2923-1", "62", "ug/dL", "18.9-57.3"),
       stored(62, "lab_range")},
      {"ferritin 850 above 16-232", obx("NM", "2276-4", "850", "ng/mL", "16-232"),
       stored(850, "lab_range")},
      {"ferritin >2000 above 16-232", obx("ST", "2276-4", ">2000", "ng/mL", "16-232"),
       stored(2000, "lab_range")},
      {"RBC Mg 3.0 with '>=4.0' flagged L alerts",
       obx("NM", "26746-8", "3.0", "mg/dL", ">=4.0", "L"), stored(3.0, "ref_upper_third")},
      {"a one-sided range never switches the relative rule off",
       obx("NM", "26746-8", "4.5", "mg/dL", ">=4.0"), stored(4.5, "ref_upper_third")},
      // ---- Censored values are intervals
      {"hs-CRP <1.0 under lt:1.0 raises nothing", obx("ST", "30522-7", "<1.0", "mg/L", ""),
       stored(1.0)},
      {"ferritin <5 is wholly below 50", obx("ST", "2276-4", "<5", "ng/mL", ""),
       stored(5, "ge:50")},
      {"homocysteine <10 straddles 6-8", obx("ST", "13965-9", "<10", "umol/L", ""),
       indeterminate(10)},
      {"homocysteine >20 is wholly above 8", obx("ST", "13965-9", ">20", "umol/L", ""),
       stored(20, "range:6-8")},
      {"an SN comparator is read the same way", obx("SN", "30522-7", "<^1.0", "mg/L", ""),
       stored(1.0)},
      // ---- The lab's precision
      {"vitamin D 150 nmol/L is not above 60 ng/mL", obx("NM", "62292-8", "150", "nmol/L", ""),
       shown(indeterminate(150 * 0.40064), 1)},
      {"vitamin D 160 nmol/L is above 60 ng/mL", obx("NM", "62292-8", "160", "nmol/L", ""),
       stored(160 * 0.40064, "range:40-60")},
      {"ferritin 112 pmol/L is not below 50 (only below the ideal 70)",
       obx("NM", "14723-1", "112", "pmol/L", ""), stored(112 * 0.445038, "ideal:gt:70")},
      {"ferritin 100 pmol/L is below 50", obx("NM", "14723-1", "100", "pmol/L", ""),
       stored(100 * 0.445038, "ge:50")},
      {"B12 648 pmol/L is shown to the lab's precision", obx("NM", "2132-9", "648", "pmol/L", ""),
       shown(stored(648 * 1.35537), 0)},
      {"an unconverted value is exact at its bound", obx("NM", "2276-4", "49.9", "ng/mL", ""),
       shown(stored(49.9, "ge:50"), 1)},
      // ---- 25-OH vitamin D fractions
      {"a D3-only result stands in for the total", obx("NM", "1989-3", "45", "ng/mL", ""),
       stored(45)},
  };
  for (const Hl7Case& c : cases) {
    INFO(c.what);
    check(judge_first(from_hl7(c.obx, c.sex, c.mark, c.extra)), c.want);
  }
}

TEST_CASE(
    "The lab's own range is compared with the value as printed, our thresholds with its "
    "precision",
    "[clinical][safety]") {
  // B12 is canonical in pg/mL (pmol/L x 1.35537). The lab's range came in the value's own unit and
  // both were converted by the same factor: a value on its printed bound is on it, not unsure.
  const std::vector<Hl7Case> cases = {
      {"B12 616 pmol/L on the printed high 148-616 is within",
       obx("NM", "2132-9", "616", "pmol/L", "148-616"),
       with_range(stored(616 * 1.35537), 148 * 1.35537, 616 * 1.35537)},
      {"B12 148 pmol/L on the printed low 148-616 is within",
       obx("NM", "2132-9", "148", "pmol/L", "148-616"), stored(148 * 1.35537)},
      {"B12 617 pmol/L is outside 148-616", obx("NM", "2132-9", "617", "pmol/L", "148-616"),
       stored(617 * 1.35537, "within_ref")},
      {"B12 147 pmol/L is outside 148-616", obx("NM", "2132-9", "147", "pmol/L", "148-616"),
       stored(147 * 1.35537, "within_ref")},
      {"B12 616.0 pmol/L with a decimal is within 148-616",
       obx("NM", "2132-9", "616.0", "pmol/L", "148-616"), stored(616 * 1.35537)},
      {"B12 <148 pmol/L against 148-616 is wholly below",
       obx("ST", "2132-9", "<148", "pmol/L", "148-616"), stored(148 * 1.35537, "within_ref")},
      {"B12 616 pmol/L against a finer printed 148-615.8 is outside, not unsure",
       obx("NM", "2132-9", "616", "pmol/L", "148-615.8"), stored(616 * 1.35537, "within_ref")},
      {"B12 148 pmol/L flagged H below a finer printed low 148.3 is a flag mismatch",
       obx("NM", "2132-9", "148", "pmol/L", "148.3-616", "H"), refused("flag_mismatch")},
      // No printed range: the catalogue's 232-1245 pg/mL is ours, the lab's precision counts.
      {"B12 919 pmol/L straddles the catalogue's 1245 pg/mL",
       obx("NM", "2132-9", "919", "pmol/L", ""), indeterminate(919 * 1.35537)},
      {"B12 616 pmol/L without a range is inside the catalogue's",
       obx("NM", "2132-9", "616", "pmol/L", ""), stored(616 * 1.35537)},
      // Our own thresholds in the canonical unit keep the tolerance, with a range printed or not.
      {"vitamin D 150 nmol/L against 60 ng/mL stays indeterminate with a printed range",
       obx("NM", "62292-8", "150", "nmol/L", "75-250"), indeterminate(150 * 0.40064)},
      {"ferritin 112 pmol/L is still not below 50 with a printed range",
       obx("NM", "14723-1", "112", "pmol/L", "36-700"), stored(112 * 0.445038, "ideal:gt:70")},
  };
  for (const Hl7Case& c : cases) {
    INFO(c.what);
    check(judge_first(from_hl7(c.obx, c.sex, c.mark, c.extra)), c.want);
  }
}

TEST_CASE("The CSV value path reads grouping by the whole file's decimal mark",
          "[clinical][safety]") {
  const std::string row = "M1,DOE,JANE,1980-01-01,F,Ferritin,2276-4,";
  SECTION("a quoted 1,234 with no witness is ambiguous") {
    check(judge_first(from_csv(row + "\"1,234\",ng/mL,,,2026-03-15T08:30:00Z\n")),
          refused("ambiguous_number"));
  }
  SECTION("a later row's 45.2 is the witness of a decimal point") {
    check(judge_first(from_csv(row + "\"1,234\",ng/mL,,,2026-03-15T08:30:00Z\n"
                                     "M2,ROE,JOHN,1970-01-01,M,Ferritin,2276-4,45.2,ng/mL,,,"
                                     "2026-03-15T08:30:00Z\n")),
          stored(1234, ""));
  }
  SECTION("a later row's 45,2 is the witness of a decimal comma") {
    check(judge_first(from_csv(row + "\"1,234\",ng/mL,,,2026-03-15T08:30:00Z\n"
                                     "M2,ROE,JOHN,1970-01-01,M,Ferritin,2276-4,\"45,2\",ng/mL,,,"
                                     "2026-03-15T08:30:00Z\n")),
          stored(1.234, "ge:50"));
  }
  SECTION("a file that shows both marks resolves nothing") {
    check(judge_first(from_csv(row + "\"1,234\",ng/mL,,,2026-03-15T08:30:00Z\n"
                                     "M2,ROE,JOHN,1970-01-01,M,Ferritin,2276-4,\"45,2\",ng/mL,"
                                     "16.5-232.5,,2026-03-15T08:30:00Z\n")),
          refused("ambiguous_number"));
  }
  SECTION("a CSV has no standard decimal point: 1.234 alone is ambiguous") {
    check(judge_first(from_csv(row + "1.234,ng/mL,,,2026-03-15T08:30:00Z\n")),
          refused("ambiguous_number"));
  }
  SECTION("the source's mark reads it") {
    check(
        judge_first(from_csv(row + "\"1,234\",ng/mL,,,2026-03-15T08:30:00Z\n", DecimalMark::point)),
        stored(1234));
  }
  SECTION("the CSV flag column is a witness") {
    check(judge_first(from_csv(row + "10,ng/mL,16-232,H,2026-03-15T08:30:00Z\n")),
          refused("flag_mismatch"));
    check(judge_first(from_csv(row + "120,ng/mL,16-232,High,2026-03-15T08:30:00Z\n")),
          stored(120, "lab_flag"));
  }
}

TEST_CASE("A plain N on a value outside the printed range is stored and noted, never refused",
          "[clinical][safety]") {
  struct NoteCase {
    const char* what;
    std::string obx;
    std::string side;  // "below", "above"; "" for no note
  };
  const std::vector<NoteCase> cases = {
      {"N above the printed high", obx("NM", "2132-9", "700", "pmol/L", "148-616", "N"), "above"},
      {"N below the printed low", obx("NM", "2132-9", "100", "pmol/L", "148-616", "N"), "below"},
      {"N on the printed bound, compared as printed",
       obx("NM", "2132-9", "616", "pmol/L", "148-616", "N"), ""},
      {"N inside the range", obx("NM", "2132-9", "300", "pmol/L", "148-616", "N"), ""},
      {"N on a censored value wholly below", obx("ST", "2132-9", "<100", "pmol/L", "148-616", "N"),
       "below"},
      {"N on a censored value that reaches into the range",
       obx("ST", "2132-9", "<200", "pmol/L", "148-616", "N"), ""},
      {"no flag outside the range: the range alone alerts",
       obx("NM", "2132-9", "700", "pmol/L", "148-616"), ""},
      {"N without a usable range", obx("NM", "2132-9", "700", "pmol/L", "", "N"), ""},
  };
  for (const NoteCase& c : cases) {
    INFO(c.what);
    const NormalizedReport report = from_hl7(c.obx);
    CHECK(report.refusals.empty());
    REQUIRE(report.results.size() == 1);
    if (c.side.empty()) {
      CHECK(report.warnings.empty());
      continue;
    }
    REQUIRE(report.warnings.size() == 1);
    const auto& warning = report.warnings.front();
    CHECK(warning.reason == "flag_disagrees");
    CHECK(warning.reason == labwatch::clinical::kFlagDisagrees);
    CHECK(warning.where.segment_id == "OBX");
    CHECK(warning.where.field == 8);
    CHECK(warning.detail == "OBX-8 'N' says normal, but OBX-5 lies " + c.side +
                                " OBX-7; stored (the lab may judge by a range it did not print)");
    // The value outside the range raises its own alert.
    CHECK(judge_first(report).alert == "within_ref");
  }
  SECTION("a CSV flag column names itself, and no value") {
    const NormalizedReport report = from_csv(
        "M1,DOE,JANE,1980-01-01,F,Ferritin,2276-4,300,ng/mL,16-232,N,2026-03-15T08:30:00Z\n");
    REQUIRE(report.results.size() == 1);
    REQUIRE(report.warnings.size() == 1);
    CHECK(report.warnings[0].reason == "flag_disagrees");
    CHECK(
        report.warnings[0].detail.starts_with("the flag 'N' says normal, but the value lies "
                                              "above the reference range"));
    CHECK(report.warnings[0].detail.find("300") == std::string::npos);
    CHECK(report.warnings[0].where.line == 2);
  }
}

TEST_CASE("A total 25-OH vitamin D keeps its D3 fraction apart in the same draw",
          "[clinical][safety]") {
  const NormalizedReport report =
      from_hl7(obx("NM", "1989-3", "40", "ng/mL", ""), "F", DecimalMark::unknown,
               "OBX|2|NM|62292-8^Total^LN||45|ng/mL|30-100||||F\r");
  REQUIRE(report.results.size() == 2);
  CHECK(report.results[0].analyte == "vitamin_d3_25oh");
  CHECK(report.results[1].analyte == "vitamin_d_25oh");
  CHECK(report.results[1].value == 45);

  const NormalizedReport alone = from_hl7(obx("NM", "1989-3", "40", "ng/mL", ""));
  REQUIRE(alone.results.size() == 1);
  CHECK(alone.results[0].analyte == "vitamin_d_25oh");
  CHECK(alone.results[0].code == "1989-3");

  const NormalizedReport d2 = from_hl7(obx("NM", "49054-0", "4", "ng/mL", ""));
  REQUIRE(d2.results.size() == 1);
  CHECK(d2.results[0].analyte == "vitamin_d2_25oh");
}

TEST_CASE("A site's analyte may be negative or unitless when its catalogue entry says so",
          "[clinical][safety]") {
  AnalyteCatalogue catalogue = AnalyteCatalogue::builtin();
  labwatch::clinical::Analyte base_excess;
  base_excess.key = "base_excess";
  base_excess.canonical_unit = "mmol/L";
  base_excess.loinc_codes = {"11555-0"};
  base_excess.plausible_low = -40;
  base_excess.plausible_high = 40;
  catalogue.upsert(base_excess);
  labwatch::clinical::Analyte ph;
  ph.key = "ph";
  ph.canonical_unit = "1";
  ph.loinc_codes = {"2744-1"};
  ph.plausible_low = 6;
  ph.plausible_high = 8;
  catalogue.upsert(ph);
  auto run = [&](const std::string& obx_segment) {
    const std::string text =
        "MSH|^~\\&|LAB|QDX|LW|CLINIC|20260315090000-0500||ORU^R01|C1|P|2.5.1\r"
        "PID|1||M100^^^QDX^MR||DOE^JANE||19800101|F\r"
        "OBR|1||ACC1|PANEL|||20260315083000-0500\r" +
        obx_segment + "\r";
    const auto parsed = labwatch::parsers::parse_hl7_file(text);
    REQUIRE(parsed.reports.size() == 1);
    auto normalized = labwatch::clinical::normalize(parsed.reports.front(), catalogue,
                                                    SourceContext{"QDX", "QDX", "UTC"});
    REQUIRE(normalized.has_value());
    return std::move(normalized).value();
  };
  const NormalizedReport negative = run(obx("NM", "11555-0", "-3.5", "mmol/L", "-2-3"));
  REQUIRE(negative.results.size() == 1);
  CHECK(negative.results[0].value == -3.5);
  CHECK(negative.results[0].ref_low == -2.0);
  CHECK(to_string(run(obx("NM", "11555-0", "-45", "mmol/L", "")).refusals.at(0).reason) ==
        "implausible_value");
  const NormalizedReport unitless = run(obx("NM", "2744-1", "7.41", "", "7.35-7.45"));
  REQUIRE(unitless.results.size() == 1);
  CHECK(unitless.results[0].value == 7.41);
  CHECK(to_string(run(obx("NM", "2744-1", "9.9", "", "")).refusals.at(0).reason) ==
        "implausible_value");
  // A unit is still never guessed for an analyte that has one.
  CHECK(to_string(run(obx("NM", "2276-4", "80", "", "")).refusals.at(0).reason) == "unknown_unit");
}
