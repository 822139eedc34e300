// SPDX-License-Identifier: Apache-2.0
// The default rules against the corpus: a sample of stored results with the range printed beside
// them, and whether tests/data/corpus/expected_alerts.csv lists an alert for them.
#include <array>
#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <string_view>
#include <utility>

#include "clinical/analyte_catalogue.hpp"
#include "clinical/normalize.hpp"
#include "clinical/rules.hpp"

namespace {

using labwatch::clinical::Analyte;
using labwatch::clinical::AnalyteCatalogue;
using labwatch::clinical::Decision;
using labwatch::clinical::evaluate;
using labwatch::clinical::normalize;
using labwatch::clinical::parse_optimal_rule;
using labwatch::clinical::SourceContext;
using labwatch::parsers::Coded;
using labwatch::parsers::DateTime;
using labwatch::parsers::LabReport;
using labwatch::parsers::Observation;
using labwatch::parsers::Order;

struct CorpusSample {
  std::string_view file;
  std::string_view analyte;
  std::string_view value;  // as printed (OBX-5 or the value column)
  std::string_view unit;
  std::string_view range;
  std::string_view alert;   // the rule expected_alerts.csv names, "" when it lists none
  std::string_view person;  // person_ref and collected_at, to find the row
};

// Per rule outcome of the corpus, the stored results closest to the rule's bounds, with varied
// units, censored values and one-sided ranges (picked by joining expected.csv, the source files
// and expected_alerts.csv; that join reproduces all 414 alerts).
constexpr auto kSamples = std::to_array<CorpusSample>({
    {"a_qdx_01.hl7", "rbc_folate", "407", "ng/mL", ">280", "", "P024 2024-09-21T12:15:00Z"},
    {"d3_nls_02.tsv", "rbc_folate", "992", "nmol/L", ">=906", "", "P011 2025-08-20T08:40:00Z"},
    {"d2_lmb_02.csv", "rbc_folate", "649", "ng/ml", "> 340", "", "P021 2025-11-14T06:40:00Z"},
    {"d1_wce_01.csv", "rbc_folate", "408", "ng/mL", "499-1504", "lab_range",
     "P011 2024-12-26T13:10:00Z"},
    {"c_sgh_01_mllp.hl7", "rbc_folate", "395", "ng/mL", ">=366", "ge:400",
     "P017 2025-03-15T15:15:00Z"},
    {"d3_nls_01.tsv", "rbc_folate", "885", "nmol/L", ">=906", "ge:400",
     "P011 2024-10-05T10:40:00Z"},
    {"b_lca_07.hl7", "rbc_folate", "389", "ng/mL", "499-1504", "ge:400",
     "P023 2025-10-10T14:50:00Z"},
    {"c_sgh_02_batch.hl7", "rbc_folate", "385", "ng/mL", ">=366", "ge:400",
     "P007 2025-05-29T13:15:00Z"},
    {"a_qdx_06.hl7", "ferritin", "71", "ng/mL", "16-232", "", "P033 2025-08-20T11:10:00Z"},
    {"d3_nls_02.tsv", "ferritin", "164", "pmol/L", "67-899", "", "P018 2025-08-21T05:30:00Z"},
    {"d2_lmb_01.csv", "ferritin", "88", "ng/ml", "30 - 400", "", "P028 2025-03-10T08:05:00Z"},
    {"a_qdx_09.hl7", "ferritin", ">1000", "ng/mL", "38-380", "lab_range",
     "P010 2026-03-19T11:00:00Z"},
    {"d2_lmb_01.csv", "ferritin", "49", "ng/ml", "13 - 150", "ge:50", "P040 2025-07-12T05:20:00Z"},
    {"a_qdx_07.hl7", "ferritin", "46", "ng/mL", "38-380", "ge:50", "P015 2025-11-07T13:00:00Z"},
    {"a_qdx_01.hl7", "ferritin", "<5", "ng/mL", "16-232", "ge:50", "P038 2024-10-09T12:50:00Z"},
    {"d2_lmb_02.csv", "ferritin", "49", "ng/ml", "13 - 150", "ge:50", "P040 2026-02-28T06:15:00Z"},
    {"a_qdx_05.hl7", "ferritin", "52", "ng/mL", "38-380", "ideal:gt:70",
     "P032 2025-06-21T11:50:00Z"},
    {"b_lca_07.hl7", "ferritin", "52", "ng/mL", "15-150", "ideal:gt:70",
     "P034 2025-10-28T12:10:00Z"},
    {"b_lca_02.hl7", "ferritin", "67", "ng/mL", "30-400", "ideal:gt:70",
     "P029 2024-12-01T15:45:00Z"},
    {"b_lca_05.hl7", "ferritin", "67", "ng/mL", "15-150", "ideal:gt:70",
     "P019 2025-07-17T14:40:00Z"},
    {"c_sgh_04_mllp.hl7", "hs_crp", "0.9", "mg/L", "<=3.0", "", "P016 2025-08-06T15:00:00Z"},
    {"b_lca_04.hl7", "hs_crp", "<0.3", "mg/L", "0.00-3.00", "", "P029 2025-04-03T11:20:00Z"},
    {"d2_lmb_02.csv", "hs_crp", "<0,2", "mg/l", "< 3,0", "", "P021 2025-08-11T08:20:00Z"},
    {"d4_ppe_01.csv", "hs_crp", "0.6", "mg/L", "<3.0", "", "P003 2025-01-29T12:10:00Z"},
    {"d2_lmb_01.csv", "hs_crp", "1,1", "mg/l", "< 3,0", "lt:1.0", "P028 2025-03-10T08:05:00Z"},
    {"d4_ppe_02.csv", "hs_crp", "1.1", "mg/L", "<3.0", "lt:1.0", "P036 2026-03-22T15:00:00Z"},
    {"d4_ppe_01.csv", "hs_crp", "1.2", "mg/L", "<3.0", "lt:1.0", "P036 2024-11-18T12:45:00Z"},
    {"a_qdx_06.hl7", "hs_crp", "1.4", "mg/L", "<3.0", "lt:1.0", "P001 2025-08-11T12:45:00Z"},
    {"b_lca_09.hl7", "vitamin_d_25oh", "40.4", "ng/mL", "30.0-100.0", "",
     "P026 2026-03-25T16:15:00Z"},
    {"d3_nls_01.tsv", "vitamin_d_25oh", "106", "nmol/L", "75-250", "", "P018 2025-03-23T06:15:00Z"},
    {"d2_lmb_01.csv", "vitamin_d_25oh", "108", "nmol/l", "75 - 250", "",
     "P028 2025-03-10T08:05:00Z"},
    {"d4_ppe_02.csv", "vitamin_d_25oh", "59", "ng/mL", "30-100", "", "P003 2025-11-05T13:45:00Z"},
    {"b_lca_02.hl7", "vitamin_d_25oh", "39.6", "ng/mL", "30.0-100.0", "range:40-60",
     "P026 2025-01-14T15:00:00Z"},
    {"d3_nls_02.tsv", "vitamin_d_25oh", "153", "nmol/L", "75-250", "range:40-60",
     "P009 2026-03-18T10:15:00Z"},
    {"d2_lmb_02.csv", "vitamin_d_25oh", "88", "nmol/l", "75 - 250", "range:40-60",
     "P021 2025-08-11T08:20:00Z"},
    {"a_qdx_01.hl7", "vitamin_d_25oh", "39", "ng/mL", "30-100", "range:40-60",
     "P035 2024-10-01T15:45:00Z"},
    {"a_qdx_05.hl7", "vitamin_a", "79", "mcg/dL", "38-98", "", "P010 2025-07-03T15:10:00Z"},
    {"d3_nls_02.tsv", "vitamin_a", "2.73", "umol/L", "1.05-2.80", "", "P018 2025-08-21T05:30:00Z"},
    {"d4_ppe_01.csv", "vitamin_a", "41",
     "\xCE\xBC"
     "g/dL",
     "38-98", "", "P003 2024-10-25T14:10:00Z"},
    {"d2_lmb_02.csv", "vitamin_a", "777",
     "\xC2\xB5"
     "g/l",
     "300 - 700", "lab_range", "P021 2025-11-14T06:40:00Z"},
    {"a_qdx_03.hl7", "vitamin_a", "81", "mcg/dL", "38-98", "range:40-80",
     "P004 2025-02-19T12:30:00Z"},
    {"b_lca_02.hl7", "vitamin_a", "39.5", "ug/dL", "20.1-62.0", "range:40-80",
     "P026 2025-01-14T15:00:00Z"},
    {"a_qdx_08.hl7", "vitamin_a", "81", "mcg/dL", "38-98", "range:40-80",
     "P010 2025-11-13T12:10:00Z"},
    {"a_qdx_09.hl7", "vitamin_a", "81", "mcg/dL", "38-98", "range:40-80",
     "P032 2026-03-17T13:20:00Z"},
    {"c_sgh_03_batch.hl7", "homocysteine", "7.9", "umol/L", "0.0-15.0", "",
     "P017 2024-11-14T13:40:00Z"},
    {"d2_lmb_01.csv", "homocysteine", "7,8",
     "\xC2\xB5"
     "mol/l",
     "< 10,0", "", "P028 2025-03-10T08:05:00Z"},
    {"c_sgh_03_batch.hl7", "homocysteine", "7.9", "umol/L", "0.0-15.0", "",
     "P017 2025-07-24T15:00:00Z"},
    {"b_lca_02.hl7", "homocysteine", "7.8", "umol/L", "0.0-14.5", "", "P026 2025-01-14T15:00:00Z"},
    {"d2_lmb_01.csv", "homocysteine", "8,1",
     "\xC2\xB5"
     "mol/l",
     "< 10,0", "range:6-8", "P028 2024-12-20T08:30:00Z"},
    {"e_qdx_truncated.hl7", "homocysteine", "8.1", "umol/L", "<11.4", "range:6-8",
     "P024 2025-10-27T11:20:00Z"},
    {"d4_ppe_01.csv", "homocysteine", "9.0",
     "\xC2\xB5"
     "mol/L",
     "<11.4", "range:6-8", "P036 2025-03-23T14:20:00Z"},
    {"a_qdx_04.hl7", "homocysteine", "5.9", "umol/L", "<11.4", "range:6-8",
     "P030 2025-03-18T12:15:00Z"},
    {"d4_ppe_01.csv", "figlu", "0.69", "mmol/mol creat", "0.00-1.50", "",
     "P003 2025-01-29T12:10:00Z"},
    {"d1_wce_01.csv", "figlu", "0.53", "mmol/mol creatinine", "<=1.50", "",
     "P012 2024-11-19T17:50:00Z"},
    {"d4_ppe_01.csv", "figlu", "0.57", "mmol/mol creat", "0.00-1.50", "",
     "P003 2024-10-25T14:10:00Z"},
    {"d4_ppe_02.csv", "figlu", "0.53", "mmol/mol creat", "0.00-1.50", "",
     "P003 2025-05-01T13:00:00Z"},
    {"d4_ppe_01.csv", "figlu", "1.64", "mmol/mol creat", "0.00-1.50", "ref_lower_half",
     "P035 2025-02-24T15:40:00Z"},
    {"d1_wce_02.csv", "figlu", "1.82", "mmol/mol creatinine", "<=1.50", "ref_lower_half",
     "P011 2025-05-31T14:10:00Z"},
    {"d4_ppe_02.csv", "figlu", "1.66", "mmol/mol creat", "0.00-1.50", "ref_lower_half",
     "P035 2025-07-16T10:15:00Z"},
    {"d4_ppe_02.csv", "figlu", "1.66", "mmol/mol creat", "0.00-1.50", "ref_lower_half",
     "P036 2026-03-22T15:00:00Z"},
    {"a_qdx_05.hl7", "rbc_zinc", "14.6", "mg/L", "9.0-14.7", "", "P010 2025-07-03T15:10:00Z"},
    {"d4_ppe_02.csv", "rbc_zinc", "1196",
     "\xCE\xBC"
     "g/dL",
     "900-1470", "", "P003 2025-05-01T13:00:00Z"},
    {"b_lca_08.hl7", "rbc_zinc", "1213", "ug/dL", "822-1571", "", "P005 2025-12-22T13:20:00Z"},
    {"d3_nls_02.tsv", "rbc_zinc", "189", "umol/L", "126-240", "", "P018 2025-08-21T05:30:00Z"},
    {"a_qdx_02.hl7", "rbc_zinc", "14.8", "mg/L", "9.0-14.7", "ref_upper_half",
     "P001 2024-10-10T11:20:00Z"},
    {"b_lca_03.hl7", "rbc_zinc", "1186", "ug/dL", "822-1571", "ref_upper_half",
     "P019 2025-03-24T11:20:00Z"},
    {"d4_ppe_01.csv", "rbc_zinc", "1151",
     "\xCE\xBC"
     "g/dL",
     "900-1470", "ref_upper_half", "P003 2024-10-25T14:10:00Z"},
    {"a_qdx_08.hl7", "rbc_zinc", "14.8", "mg/L", "9.0-14.7", "ref_upper_half",
     "P001 2026-01-11T11:20:00Z"},
    {"b_lca_02.hl7", "rbc_magnesium", "6.0", "mg/dL", "4.2-6.8", "", "P029 2024-12-01T15:45:00Z"},
    {"b_lca_03.hl7", "rbc_magnesium", "6.0", "mg/dL", "4.2-6.8", "", "P027 2025-03-16T14:20:00Z"},
    {"b_lca_06.hl7", "rbc_magnesium", "6.0", "mg/dL", "4.2-6.8", "", "P029 2025-07-20T14:05:00Z"},
    {"a_qdx_04.hl7", "rbc_magnesium", "6.3", "mg/dL", "4.0-6.4", "", "P006 2025-04-17T12:15:00Z"},
    {"a_qdx_03.hl7", "rbc_magnesium", "6.5", "mg/dL", "4.0-6.4", "ref_upper_third",
     "P006 2025-01-14T13:15:00Z"},
    {"d4_ppe_01.csv", "rbc_magnesium", "6.5", "mg/dL", "4.0-6.4", "ref_upper_third",
     "P035 2025-05-01T10:05:00Z"},
    {"d4_ppe_02.csv", "rbc_magnesium", "5.5", "mg/dL", "4.0-6.4", "ref_upper_third",
     "P036 2026-03-22T15:00:00Z"},
    {"b_lca_06.hl7", "rbc_magnesium", "5.8", "mg/dL", "4.2-6.8", "ref_upper_third",
     "P002 2025-08-01T12:15:00Z"},
    {"b_lca_09.hl7", "glucose_fasting", "71", "mg/dL", "70-99", "", "P026 2026-03-25T16:15:00Z"},
    {"a_qdx_02.hl7", "serum_folate", "5.5", "ng/mL", ">5.4", "", "P035 2024-12-14T16:00:00Z"},
    {"d4_ppe_01.csv", "vitamin_b12", "1072", "pg/mL", "200-1100", "", "P003 2024-10-25T14:10:00Z"},
    {"a_qdx_01.hl7", "serum_magnesium", "2.4", "mg/dL", "1.5-2.5", "", "P035 2024-10-01T15:45:00Z"},
    {"b_lca_05.hl7", "glucose_fasting", "100", "mg/dL", "70-99", "within_ref",
     "P031 2025-06-15T15:45:00Z"},
    {"c_sgh_03_batch.hl7", "vitamin_b12", "926", "pg/mL", "180-914", "within_ref",
     "P024 2025-06-09T18:15:00Z"},
    {"c_sgh_04_mllp.hl7", "serum_folate", "5.8", "ng/mL", ">=5.9", "within_ref",
     "P004 2025-07-24T17:40:00Z"},
    {"c_sgh_02_batch.hl7", "iron", "36", "ug/dL", "37-181", "within_ref",
     "P016 2025-05-20T13:00:00Z"},
});

// Runs one sample through normalize, as a single-result report, and judges it by the default rule.
Decision judge(const CorpusSample& sample) {
  const Analyte* analyte = AnalyteCatalogue::builtin().by_key(sample.analyte);
  REQUIRE(analyte != nullptr);
  Observation obs;
  obs.code = Coded{analyte->loinc_codes.front(), "", "LN", "", "", ""};
  obs.value = sample.value;
  obs.units = sample.unit;
  obs.reference_range = sample.range;
  obs.result_status = 'F';
  Order order;
  order.collected_at.year = 2025;
  order.collected_at.precision = DateTime::Precision::day;
  order.collected_at.has_offset = true;
  order.observations.push_back(obs);
  LabReport report;
  report.patient.identifiers.push_back({"1", "CORPUS", "MR"});
  report.orders.push_back(order);

  auto normalized = normalize(report, AnalyteCatalogue::builtin(), SourceContext{});
  REQUIRE(normalized.has_value());
  REQUIRE(normalized->refusals.empty());
  REQUIRE(normalized->results.size() == 1);
  auto rule = parse_optimal_rule(analyte->optimal_rule);
  REQUIRE(rule.has_value());
  return evaluate(normalized->results.front(), *rule, *analyte);
}

}  // namespace

TEST_CASE("evaluate agrees with expected_alerts.csv on a sample of the corpus",
          "[clinical][rules][corpus]") {
  for (const CorpusSample& sample : kSamples) {
    CAPTURE(sample.file, sample.analyte, sample.value, sample.unit, sample.range, sample.person);
    const Decision decision = judge(sample);
    CHECK(decision.violated == !sample.alert.empty());
    CHECK(decision.rule == sample.alert);
  }
}

TEST_CASE("the corpus sample covers every default rule outcome at least three times each way",
          "[clinical][rules][corpus]") {
  std::map<std::string, std::pair<int, int>> by_rule;  // rule -> {within target, violated}
  for (const CorpusSample& sample : kSamples) {
    const std::string rule = AnalyteCatalogue::builtin().by_key(sample.analyte)->optimal_rule;
    auto& [within, violated] = by_rule[rule];
    ++(sample.alert.empty() ? within : violated);
  }
  CHECK(by_rule.size() == 10);
  for (const auto& [rule, counts] : by_rule) {
    CAPTURE(rule);
    CHECK(counts.first >= 3);
    CHECK(counts.second >= 3);
  }
}
