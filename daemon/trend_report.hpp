// SPDX-License-Identifier: Apache-2.0
// The practitioner's trend report: one self-contained HTML file with a summary table and an SVG
// chart per analyte.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "clinical/analyte_catalogue.hpp"
#include "clinical/rules.hpp"
#include "storage/store.hpp"

namespace labwatch::daemon {

struct AnalyteSeries {
  const clinical::Analyte* analyte = nullptr;
  const clinical::OptimalRule* rule = nullptr;  // nullptr: no optimal target configured
  std::vector<storage::ExportRow> points;       // oldest first
};

struct ReportInput {
  storage::PersonRow person;
  std::vector<AnalyteSeries> series;
  clinical::UnixSeconds generated_at = 0;
};

// The optimal band a rule sets for a result with this reference range: the intersection of its hard
// clauses (ideal clauses are drawn separately). Either bound may be open.
struct Band {
  std::optional<double> low;
  std::optional<double> high;
};
Band optimal_band(const clinical::OptimalRule& rule, const clinical::Analyte& analyte,
                  std::optional<double> ref_low, std::optional<double> ref_high);

// Renders the whole report. Every text value is HTML-escaped; no external scripts, fonts or images.
std::string render_trend_report(const ReportInput& input);

}  // namespace labwatch::daemon
