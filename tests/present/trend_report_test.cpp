// SPDX-License-Identifier: Apache-2.0
// Tests for the trend report: charts, bands, markers and escaping, read back from the generated
// SVG.
#include "present/trend_report.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "clinical/analyte_catalogue.hpp"
#include "clinical/rules.hpp"

using labwatch::clinical::AnalyteCatalogue;
using labwatch::clinical::parse_optimal_rule;
using labwatch::clinical::ResultStatus;
using labwatch::daemon::AnalyteSeries;
using labwatch::daemon::render_trend_report;
using labwatch::daemon::ReportInput;
using labwatch::storage::ExportRow;

namespace {

std::size_t count(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t pos = text.find(needle); pos != std::string::npos;
       pos = text.find(needle, pos + 1)) {
    ++n;
  }
  return n;
}

// The value of attribute `name` in the first element that starts with `tag` after `from`.
std::string attribute(const std::string& html, const std::string& tag, const std::string& name,
                      std::size_t from = 0) {
  const std::size_t at = html.find(tag, from);
  REQUIRE(at != std::string::npos);
  const std::size_t end = html.find('>', at);
  const std::string element = html.substr(at, end - at);
  const std::size_t a = element.find(" " + name + "=\"");
  REQUIRE(a != std::string::npos);
  const std::size_t v = a + name.size() + 3;
  return element.substr(v, element.find('"', v) - v);
}

ExportRow row(double value, std::int64_t t, std::string facility = "QDX",
              std::optional<double> low = std::nullopt, std::optional<double> high = std::nullopt,
              ResultStatus status = ResultStatus::final) {
  ExportRow r;
  r.value = value;
  r.collected_at = t;
  r.facility = std::move(facility);
  r.ref_low = low;
  r.ref_high = high;
  r.range_problem = low || high ? labwatch::clinical::RangeProblem::none
                                : labwatch::clinical::RangeProblem::not_printed;
  r.status = status;
  return r;
}

}  // namespace

TEST_CASE("render_trend_report draws one chart per analyte with every point and the band",
          "[daemon][report]") {
  const auto& catalogue = AnalyteCatalogue::builtin();
  const auto ferritin_rule = parse_optimal_rule("ge:50;ideal:gt:70").value();
  const auto mg_rule = parse_optimal_rule("ref_upper_third").value();

  ReportInput in;
  in.person.person_id = 7;
  in.person.family = "Doe";
  in.person.given = "Jane";
  in.person.birth_date = "1980-02-03";
  in.person.sex = 'F';
  in.person.patient_keys = {"QDX|Q1", "LCA|L2"};
  in.generated_at = 1'700'000'000;

  AnalyteSeries ferritin;
  ferritin.analyte = catalogue.by_key("ferritin");
  ferritin.rule = &ferritin_rule;
  ferritin.points = {row(80, 1'600'000'000), row(62, 1'610'000'000), row(41, 1'620'000'000, "LCA"),
                     row(38, 1'630'000'000, "LCA", {}, {}, ResultStatus::corrected)};
  AnalyteSeries mg;
  mg.analyte = catalogue.by_key("rbc_magnesium");
  mg.rule = &mg_rule;
  mg.points = {row(5.0, 1'600'000'000, "QDX", 4.2, 6.8)};
  in.series = {ferritin, mg};

  const std::string html = render_trend_report(in);
  CHECK(html.rfind("<!DOCTYPE html>", 0) == 0);
  CHECK(count(html, "<svg class=\"chart\"") == 2);
  // Self-contained: nothing loaded from elsewhere.
  CHECK(html.find("<script") == std::string::npos);
  CHECK(html.find("src=") == std::string::npos);
  CHECK(html.find("href=") == std::string::npos);

  const std::size_t ferritin_chart = html.find("data-analyte=\"ferritin\" data-points=");
  REQUIRE(ferritin_chart != std::string::npos);
  CHECK(attribute(html, "<svg class=\"chart\"", "data-points", ferritin_chart - 200) == "4");
  CHECK(attribute(html, "<rect class=\"band\"", "data-low", ferritin_chart) == "50");
  CHECK(attribute(html, "<rect class=\"band\"", "data-high", ferritin_chart).empty());
  const std::size_t mg_chart = html.find("data-analyte=\"rbc_magnesium\" data-points=");
  REQUIRE(mg_chart != std::string::npos);
  const std::string mg_svg = html.substr(mg_chart, html.find("</svg>", mg_chart) - mg_chart);
  CHECK(count(mg_svg, "<circle") == 1);  // a chart with one point still renders
  CHECK(attribute(html, "<rect class=\"band\"", "data-low", mg_chart) == "5.933333");
  CHECK(attribute(html, "<rect class=\"band\"", "data-high", mg_chart) == "6.8");
  CHECK(count(mg_svg, "<line class=\"ref\"") == 2);

  const std::string ferritin_svg = html.substr(ferritin_chart, mg_chart - ferritin_chart);
  CHECK(count(ferritin_svg, "<circle") == 4);
  CHECK(count(ferritin_svg, "class=\"point out") ==
        3);  // 62 fails the ideal tier, 41 and 38 fail ge:50
  CHECK(count(ferritin_svg, "corrected\"") == 1);
  CHECK(count(ferritin_svg, "<line class=\"change\"") == 1);  // QDX -> LCA
  CHECK(ferritin_svg.find("lab changed: QDX to LCA") != std::string::npos);

  // Summary: latest value, target, verdict and direction.
  const std::size_t summary_row = html.find("<tr data-analyte=\"ferritin\">");
  REQUIRE(summary_row != std::string::npos);
  const std::string tr = html.substr(summary_row, html.find("</tr>", summary_row) - summary_row);
  CHECK(tr.find(">38<") != std::string::npos);
  CHECK(tr.find("outside target") != std::string::npos);
  CHECK(tr.find("away from optimal") != std::string::npos);
}

TEST_CASE("render_trend_report escapes every text value", "[daemon][report]") {
  const auto& catalogue = AnalyteCatalogue::builtin();
  ReportInput in;
  in.person.family = "<script>alert(1)</script>";
  in.person.given = "\"Eve\" & 'Co'";
  in.person.patient_keys = {"X|<b>"};
  AnalyteSeries s;
  s.analyte = catalogue.by_key("zinc");
  ExportRow r = row(70, 1'600'000'000, "<i>lab</i>");
  r.raw_range = "60-<120>";
  ExportRow r2 = row(80, 1'610'000'000, "other");
  s.points = {r, r2};
  in.series = {s};
  const std::string html = render_trend_report(in);
  CHECK(html.find("<script>") == std::string::npos);
  CHECK(html.find("&lt;script&gt;alert(1)&lt;/script&gt;") != std::string::npos);
  CHECK(html.find("&quot;Eve&quot; &amp; &#39;Co&#39;") != std::string::npos);
  CHECK(html.find("X|&lt;b&gt;") != std::string::npos);
  CHECK(html.find("<i>") == std::string::npos);
  CHECK(html.find("lab changed: &lt;i&gt;lab&lt;/i&gt; to other") != std::string::npos);
}

TEST_CASE("trend_report_style styles nothing outside the report's element", "[daemon][report]") {
  // An alert mail embeds the report under its notices: a bare `body`, `table` or `td` rule would
  // restyle the notices too.
  const std::string_view css = labwatch::daemon::trend_report_style();
  std::vector<std::string> selectors;
  std::size_t start = 0;
  while (true) {
    const std::size_t open = css.find('{', start);
    if (open == std::string_view::npos) {
      break;
    }
    const std::size_t close = css.find('}', open);
    REQUIRE(close != std::string_view::npos);
    std::string_view group = css.substr(start, open - start);
    while (!group.empty()) {
      const std::size_t comma = std::min(group.find(','), group.size());
      std::string_view one = group.substr(0, comma);
      while (!one.empty() && (one.front() == ' ' || one.front() == '\n')) {
        one.remove_prefix(1);
      }
      selectors.emplace_back(one);
      group.remove_prefix(std::min(comma + 1, group.size()));
    }
    start = close + 1;
  }
  CHECK(selectors.size() > 20);
  for (const std::string& selector : selectors) {
    INFO(selector);
    CHECK(selector.starts_with(".trend-report"));
  }
  // The whole document wraps the report in that element.
  ReportInput in;
  in.person.family = "Doe";
  const std::string html = render_trend_report(in);
  CHECK(html.find("<body>\n<main class=\"trend-report\">\n<h1>Doe, ") != std::string::npos);
  CHECK(html.find("</main>\n</body>") != std::string::npos);
}

TEST_CASE("render_trend_report marks a test not performed and breaks the line there",
          "[daemon][report]") {
  const auto& catalogue = AnalyteCatalogue::builtin();
  const auto rule = parse_optimal_rule("ge:50;ideal:gt:70").value();
  ReportInput in;
  in.person.person_id = 7;
  in.generated_at = 1'700'000'000;
  AnalyteSeries ferritin;
  ferritin.analyte = catalogue.by_key("ferritin");
  ferritin.rule = &rule;
  ferritin.points = {row(80, 1'600'000'000), row(62, 1'610'000'000), row(41, 1'630'000'000)};
  ferritin.not_performed = {1'620'000'000};
  in.series = {ferritin};

  const std::string html = render_trend_report(in);
  CHECK(count(html, "<line class=\"gap\"") == 1);
  CHECK(html.find(": not performed</title>") != std::string::npos);
  // Two pieces: the first two values joined, then a new start after the gap.
  const std::string path = attribute(html, "<path class=\"line\"", "d");
  CHECK(count(path, "M") == 2);
  CHECK(count(path, "L") == 1);

  ferritin.not_performed.clear();
  in.series = {ferritin};
  const std::string whole = render_trend_report(in);
  CHECK(count(whole, "<line class=\"gap\"") == 0);
  CHECK(count(attribute(whole, "<path class=\"line\"", "d"), "M") == 1);
}

TEST_CASE(
    "render_trend_report shows ranges in the canonical unit, lab precision and targets in words",
    "[daemon][report]") {
  const auto& catalogue = AnalyteCatalogue::builtin();
  const auto b12_rule = parse_optimal_rule("ge:500").value();
  const auto d_rule = parse_optimal_rule("range:6-8").value();
  ReportInput in;
  in.person.person_id = 3;
  AnalyteSeries b12;
  b12.analyte = catalogue.by_key("vitamin_b12");
  b12.rule = &b12_rule;
  ExportRow converted = row(878.27976, 1726920900, "QDX", 200.59476, 834.90792);
  converted.unit = "pg/mL";
  converted.raw_range = "148-616";
  converted.raw_unit = "pmol/L";
  converted.shown_decimals = 0;
  b12.points = {converted};
  // A censored value straddling the target: indeterminate, not outside and not within.
  AnalyteSeries d;
  d.analyte = catalogue.by_key("homocysteine");
  d.rule = &d_rule;
  ExportRow censored = row(10, 1726920900);
  censored.comparator = "<";
  censored.unit = "umol/L";
  censored.range_problem = labwatch::clinical::RangeProblem::unit_mismatch;
  censored.raw_range = "1-2 g/L";
  censored.raw_unit = "umol/L";
  censored.shown_decimals = 0;
  d.points = {censored};
  in.series = {b12, d};
  const std::string html = render_trend_report(in);
  CAPTURE(html);
  CHECK(html.find("<td class=\"num\">878</td>") != std::string::npos);
  // Shown text only at the lab's precision (the chart's data attributes keep the stored value).
  CHECK(html.find(">878.27976") == std::string::npos);
  CHECK(html.find("878.27976 pg/mL") == std::string::npos);
  CHECK(html.find("<td>&gt;= 500 pg/mL</td><td>201-835 pg/mL (lab: 148-616 pmol/L)</td>") !=
        std::string::npos);
  CHECK(html.find("ge:500") == std::string::npos);
  CHECK(html.find("<td>&lt;10</td>") == std::string::npos);
  CHECK(html.find("<td class=\"num\">&lt;10</td>") != std::string::npos);
  CHECK(html.find("<td>6-8 umol/L</td><td>0-15 umol/L (catalogue range; lab range 1-2 g/L "
                  "unusable: the printed range is in another unit than the value)</td>") !=
        std::string::npos);
  CHECK(html.find("unsure\">indeterminate") != std::string::npos);
  CHECK(html.find("class=\"point unsure\"") != std::string::npos);
  CHECK(html.find(", indeterminate</title>") != std::string::npos);
}
