// SPDX-License-Identifier: Apache-2.0
// The trend report: summary table and inline SVG charts, rendered as one self-contained HTML file.
#include "present/trend_report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string_view>
#include <utility>

#include "clinical/wording.hpp"
#include "present/text_format.hpp"

namespace labwatch::daemon {
namespace {

constexpr double kWidth = 640;
constexpr double kHeight = 220;
constexpr double kLeft = 56;
constexpr double kRight = 16;
constexpr double kTop = 14;
constexpr double kBottom = 30;

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

clinical::Decision judge(const AnalyteSeries& s, const storage::ExportRow& r) {
  return s.rule != nullptr ? clinical::evaluate(storage::as_result(r), *s.rule, *s.analyte)
                           : clinical::Decision{};
}

// The value as the lab vouches for it: "<10", "878" (never 878.27976).
std::string shown_value(const storage::ExportRow& r) {
  return r.comparator + clinical::format_shown(r.value, r.shown_decimals);
}

// The band the chart shades for a result: the one the alerts judge by, hard clauses only.
clinical::TargetBand band_for(const AnalyteSeries& s, const storage::ExportRow& r) {
  if (s.rule == nullptr) {
    return {};
  }
  return clinical::target_band(*s.rule, *s.analyte, {r.value, r.ref_low, r.ref_high},
                               clinical::BandTiers::hard);
}

}  // namespace

std::string range_text(const storage::ExportRow& r, const clinical::Analyte& analyte) {
  return clinical::describe_range(
      {r.ref_low, r.ref_high, r.range_problem, r.raw_range, r.raw_unit, r.unit, r.shown_decimals},
      analyte);
}

std::string target_text(const clinical::OptimalRule* rule, const storage::ExportRow& r,
                        const clinical::Analyte& analyte) {
  if (rule == nullptr) {
    return "";
  }
  // ref_low/ref_high are stored only when the lab's range is usable, as evaluate reads them.
  return clinical::describe_target(*rule, analyte, r.unit, r.ref_low, r.ref_high, r.shown_decimals);
}

namespace {

std::string chart(const AnalyteSeries& s) {
  const auto& pts = s.points;
  const storage::ExportRow& latest = pts.back();
  const clinical::TargetBand band = band_for(s, latest);

  // Value axis: every point, the band and the lab range in view, with a margin.
  double lo = pts.front().value;
  double hi = lo;
  for (const auto& p : pts) {
    lo = std::min(lo, p.value);
    hi = std::max(hi, p.value);
    for (const auto& b : {p.ref_low, p.ref_high}) {
      if (b) {
        lo = std::min(lo, *b);
        hi = std::max(hi, *b);
      }
    }
  }
  for (const auto& b : {band.low, band.high}) {
    if (b) {
      lo = std::min(lo, *b);
      hi = std::max(hi, *b);
    }
  }
  if (hi - lo < 1e-9) {
    hi = lo + std::max(1.0, std::fabs(lo) * 0.2);
    lo = lo - std::max(1.0, std::fabs(lo) * 0.2);
  }
  const double pad = (hi - lo) * 0.08;
  lo = std::max(lo - pad, lo >= 0 ? 0.0 : lo - pad);
  hi += pad;

  const double t0 = static_cast<double>(pts.front().collected_at);
  const double t1 = static_cast<double>(pts.back().collected_at);
  const double plot_w = kWidth - kLeft - kRight;
  const double plot_h = kHeight - kTop - kBottom;
  const auto x_of = [&](clinical::UnixSeconds t) {
    if (t1 <= t0) {
      return kLeft + plot_w / 2;
    }
    return kLeft + (static_cast<double>(t) - t0) / (t1 - t0) * plot_w;
  };
  const auto y_of = [&](double v) { return kTop + (hi - v) / (hi - lo) * plot_h; };

  std::string svg = "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 " +
                    num(kWidth) + " " + num(kHeight) + "\" role=\"img\" aria-label=\"" +
                    html_escape(s.analyte->display_name) + " over time\" data-analyte=\"" +
                    html_escape(s.analyte->key) + "\" data-points=\"" + std::to_string(pts.size()) +
                    "\">\n";
  svg += "<rect x=\"" + num(kLeft) + "\" y=\"" + num(kTop) + "\" width=\"" + num(plot_w) +
         "\" height=\"" + num(plot_h) + "\" class=\"plot\"/>\n";
  if (band.low || band.high) {
    const double y_top = y_of(band.high.value_or(hi));
    const double y_bottom = y_of(band.low.value_or(lo));
    svg += "<rect class=\"band\" x=\"" + num(kLeft) + "\" y=\"" + num(y_top) + "\" width=\"" +
           num(plot_w) + "\" height=\"" + num(std::max(0.0, y_bottom - y_top)) + "\" data-low=\"" +
           format_number(band.low) + "\" data-high=\"" + format_number(band.high) +
           "\"><title>optimal " + html_escape(target_text(s.rule, latest, *s.analyte)) +
           "</title></rect>\n";
  }
  for (const auto& [bound, name] :
       {std::pair{latest.ref_low, "low"}, std::pair{latest.ref_high, "high"}}) {
    if (bound) {
      svg += "<line class=\"ref\" data-ref=\"" + std::string(name) + "\" data-value=\"" +
             format_number(*bound) + "\" x1=\"" + num(kLeft) + "\" x2=\"" + num(kLeft + plot_w) +
             "\" y1=\"" + num(y_of(*bound)) + "\" y2=\"" + num(y_of(*bound)) + "\"/>\n";
    }
  }
  // Axis labels: the value range and the first/last dates.
  svg += "<text class=\"axis\" x=\"" + num(kLeft - 6) + "\" y=\"" + num(kTop + 10) +
         "\" text-anchor=\"end\">" + format_number(std::round(hi * 100) / 100) + "</text>\n";
  svg += "<text class=\"axis\" x=\"" + num(kLeft - 6) + "\" y=\"" + num(kTop + plot_h) +
         "\" text-anchor=\"end\">" + format_number(std::round(lo * 100) / 100) + "</text>\n";
  svg += "<text class=\"axis\" x=\"" + num(kLeft) + "\" y=\"" + num(kHeight - 8) + "\">" +
         iso_date(pts.front().collected_at) + "</text>\n";
  if (pts.size() > 1) {
    svg += "<text class=\"axis\" x=\"" + num(kLeft + plot_w) + "\" y=\"" + num(kHeight - 8) +
           "\" text-anchor=\"end\">" + iso_date(pts.back().collected_at) + "</text>\n";
  }
  // A change of lab or reference range between draws: the trend is not one smooth line there.
  for (std::size_t i = 1; i < pts.size(); ++i) {
    const bool lab_changed = pts[i].facility != pts[i - 1].facility;
    const bool range_changed = range_text(pts[i], *s.analyte) != range_text(pts[i - 1], *s.analyte);
    if (lab_changed || range_changed) {
      const double x = (x_of(pts[i - 1].collected_at) + x_of(pts[i].collected_at)) / 2;
      svg += "<line class=\"change\" x1=\"" + num(x) + "\" x2=\"" + num(x) + "\" y1=\"" +
             num(kTop) + "\" y2=\"" + num(kTop + plot_h) + "\"><title>" +
             (lab_changed ? "lab changed: " + html_escape(pts[i - 1].facility) + " to " +
                                html_escape(pts[i].facility)
                          : std::string("reference range changed")) +
             "</title></line>\n";
    }
  }
  // A draw whose test was not performed is a gap: a marker at its date, and the line does not
  // join the values on either side of it.
  for (const clinical::UnixSeconds t : s.not_performed) {
    const double x = std::clamp(x_of(t), kLeft, kLeft + plot_w);
    svg += "<line class=\"gap\" x1=\"" + num(x) + "\" x2=\"" + num(x) + "\" y1=\"" + num(kTop) +
           "\" y2=\"" + num(kTop + plot_h) + "\"><title>" + iso_date(t) +
           ": not performed</title></line>\n";
  }
  if (pts.size() > 1) {
    std::string path;
    std::size_t gap = 0;
    for (std::size_t i = 0; i < pts.size(); ++i) {
      bool broken = false;
      for (; gap < s.not_performed.size() && s.not_performed[gap] < pts[i].collected_at; ++gap) {
        broken = broken || (i > 0 && s.not_performed[gap] > pts[i - 1].collected_at);
      }
      path += (path.empty() || broken ? (path.empty() ? "M" : " M") : " L") +
              num(x_of(pts[i].collected_at)) + " " + num(y_of(pts[i].value));
    }
    svg += "<path class=\"line\" d=\"" + path + "\"/>\n";
  }
  for (const auto& p : pts) {
    const clinical::Decision decision = judge(s, p);
    const bool out = decision.violated;
    std::string cls = out ? "point out" : (decision.indeterminate ? "point unsure" : "point in");
    if (p.status == clinical::ResultStatus::corrected) {
      cls += " corrected";
    }
    svg += "<circle class=\"" + cls + "\" cx=\"" + num(x_of(p.collected_at)) + "\" cy=\"" +
           num(y_of(p.value)) + "\" r=\"" +
           (p.status == clinical::ResultStatus::corrected ? "6" : "4") + "\" data-value=\"" +
           format_number(p.value) + "\"><title>" + iso_date(p.collected_at) + ": " +
           html_escape(shown_value(p)) + " " + html_escape(p.unit) +
           (p.status == clinical::ResultStatus::corrected ? " (corrected)" : "") +
           (out ? ", outside target" : (decision.indeterminate ? ", indeterminate" : "")) +
           "</title></circle>\n";
  }
  svg += "</svg>\n";
  return svg;
}

// Every rule is scoped to the report's element (class "trend-report"), so that a document that
// embeds the report (an alert mail) keeps its own look above it.
constexpr std::string_view kStyle = R"(
.trend-report{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;color:#1f2933;max-width:60rem}
.trend-report h1{font-size:1.5rem;margin-bottom:.2rem} .trend-report h2{font-size:1.15rem;margin-top:2rem}
.trend-report .meta{color:#52606d;margin:.2rem 0}
.trend-report table{border-collapse:collapse;margin-top:1rem;width:100%}
.trend-report th,.trend-report td{border-bottom:1px solid #d9e2ec;padding:.35rem .5rem;text-align:left;font-size:.92rem}
.trend-report td.num{text-align:right;font-variant-numeric:tabular-nums} .trend-report td.nowrap{white-space:nowrap}
.trend-report .outside{color:#b42318;font-weight:600} .trend-report .within{color:#1e7b34}
.trend-report svg.chart{width:100%;max-width:640px;height:auto;display:block}
.trend-report .plot{fill:#fff;stroke:#bcccdc} .trend-report .band{fill:#c6f6d5;opacity:.7}
.trend-report .ref{stroke:#7b8794;stroke-dasharray:4 3}
.trend-report .line{fill:none;stroke:#3e4c59;stroke-width:1.5} .trend-report .point.in{fill:#2f855a}
.trend-report .point.out{fill:#c53030} .trend-report .point.unsure{fill:#d69e2e}
.trend-report .unsure{color:#975a16;font-weight:600} .trend-report .point.corrected{stroke:#d69e2e;stroke-width:3}
.trend-report .change{stroke:#805ad5;stroke-dasharray:2 2;stroke-width:1.5}
.trend-report .gap{stroke:#a0aec0;stroke-dasharray:6 3;stroke-width:2}
.trend-report .axis{font-size:11px;fill:#52606d} .trend-report .legend span{margin-right:1rem;font-size:.85rem}
)";

}  // namespace

std::optional<ReportInput> load_report_input(storage::ResultQueries& store,
                                             const config::Config& config, std::int64_t person_id,
                                             clinical::UnixSeconds now) {
  std::optional<ReportInput> input;
  std::optional<storage::PersonRow> person = store.person(person_id);
  if (!person) {
    return input;
  }
  input.emplace();
  input->person = std::move(*person);
  std::vector<storage::SilenceRow> silences = store.silences();
  std::erase_if(silences, [&](const storage::SilenceRow& s) {
    return s.person_id != person_id || !s.active(now);
  });
  for (const clinical::Analyte& analyte : config.catalogue.analytes()) {
    AnalyteSeries series;
    series.analyte = &analyte;
    const auto rule = config.targets.find(analyte.key);
    series.rule = rule == config.targets.end() ? nullptr : &rule->second;
    series.points = store.trend(person_id, analyte.key);
    series.not_performed = store.not_performed(person_id, analyte.key);
    for (const storage::SilenceRow& silence : silences) {
      if (silence.analyte == analyte.key) {
        series.silences.push_back(silence);
      }
    }
    if (!series.points.empty()) {
      input->series.push_back(std::move(series));
    }
  }
  input->generated_at = now;
  return input;
}

std::string_view trend_report_style() noexcept { return kStyle; }

std::string render_trend_report(const ReportInput& in) {
  const storage::PersonRow& p = in.person;
  return "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Lab "
         "trends: " +
         html_escape(p.family) + ", " + html_escape(p.given) +
         "</title>\n<style>body{margin:2rem}" + std::string(kStyle) +
         "</style>\n</head>\n<body>\n<main class=\"trend-report\">\n" +
         render_trend_report_content(in) + "</main>\n</body>\n</html>\n";
}

std::string render_trend_report_content(const ReportInput& in) {
  const storage::PersonRow& p = in.person;
  std::string ids;
  for (const auto& k : p.patient_keys) {
    ids += (ids.empty() ? "" : ", ") + html_escape(k);
  }
  std::string html = "<h1>" + html_escape(p.family) + ", " + html_escape(p.given) + "</h1>\n";
  html += "<p class=\"meta\">Born " + html_escape(p.birth_date.empty() ? "unknown" : p.birth_date) +
          " &middot; sex " + html_escape(std::string(1, p.sex)) + " &middot; labwatch person " +
          std::to_string(p.person_id) + "</p>\n";
  html += "<p class=\"meta\">Identifiers: " + ids + "</p>\n";
  html += "<p class=\"meta\">Generated " + iso_utc(in.generated_at) + " by labwatch.</p>\n";

  html +=
      "<h2>Summary</h2>\n<table "
      "class=\"summary\">\n<thead><tr><th>Analyte</th><th>Latest</th><th>Unit</th>"
      "<th>Collected</th><th>Optimal target</th><th>Lab range</th><th>Status</th><th>Since "
      "previous</th>"
      "</tr></thead>\n<tbody>\n";
  for (const AnalyteSeries& s : in.series) {
    if (s.points.empty()) {
      continue;
    }
    const storage::ExportRow& last = s.points.back();
    const clinical::Decision decision = judge(s, last);
    const std::string status = decision.violated ? "outside\">outside target"
                               : decision.indeterminate
                                   ? "unsure\">indeterminate (the value straddles a bound)"
                                   : "within\">within";
    std::string direction = "&ndash;";
    if (s.points.size() > 1 && s.rule != nullptr) {
      const storage::ExportRow& prev = s.points[s.points.size() - 2];
      const double before = band_for(s, prev).distance(prev.value);
      const double after = band_for(s, last).distance(last.value);
      direction = after < before   ? "toward optimal"
                  : after > before ? "away from optimal"
                                   : "unchanged";
      if (before == 0 && after == 0) {
        direction = last.value > prev.value   ? "up, within"
                    : last.value < prev.value ? "down, within"
                                              : "unchanged";
      }
    }
    html += "<tr data-analyte=\"" + html_escape(s.analyte->key) + "\"><td>" +
            html_escape(s.analyte->display_name) + "</td><td class=\"num\">" +
            html_escape(shown_value(last)) + "</td><td>" + html_escape(last.unit) +
            "</td><td class=\"nowrap\">" + iso_date(last.collected_at) + "</td><td>" +
            (s.rule != nullptr ? html_escape(target_text(s.rule, last, *s.analyte)) : "&ndash;") +
            "</td><td>" + html_escape(range_text(last, *s.analyte)) + "</td><td class=\"nowrap " +
            status + "</td><td>" + direction + "</td></tr>\n";
  }
  html += "</tbody>\n</table>\n";
  html +=
      "<p class=\"legend\"><span>green band: optimal target</span><span>dashed grey: lab reference "
      "range</span>"
      "<span>red point: outside target</span><span>amber point: indeterminate</span>"
      "<span>ringed point: corrected result</span>"
      "<span>purple dashes: lab or range changed</span></p>\n";

  for (const AnalyteSeries& s : in.series) {
    if (s.points.empty()) {
      continue;
    }
    html += "<section class=\"analyte\">\n<h2>" + html_escape(s.analyte->display_name) + " (" +
            html_escape(s.analyte->canonical_unit) + ")</h2>\n";
    for (const storage::SilenceRow& silence : s.silences) {
      html += "<p class=\"silence\">Mail silenced until " + iso_date(silence.until) + " by " +
              html_escape(silence.os_user.empty() ? "an unknown user" : silence.os_user) +
              " (set " + iso_date(silence.created_at) + "): " + html_escape(silence.reason) +
              "</p>\n";
    }
    html += chart(s);
    html += "</section>\n";
  }
  return html;
}

}  // namespace labwatch::daemon
