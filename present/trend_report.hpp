// SPDX-License-Identifier: Apache-2.0
// The practitioner's trend report: one self-contained HTML file with a summary table and an SVG
// chart per analyte.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "clinical/analyte_catalogue.hpp"
#include "clinical/normalized.hpp"
#include "clinical/rules.hpp"
#include "config/config.hpp"
#include "storage/store.hpp"

namespace labwatch::daemon {

struct AnalyteSeries {
  const clinical::Analyte* analyte = nullptr;
  const clinical::OptimalRule* rule = nullptr;       // nullptr: no optimal target configured
  std::vector<storage::ExportRow> points;            // oldest first
  std::vector<clinical::UnixSeconds> not_performed;  // draws without a value: gaps, oldest first
  std::vector<storage::SilenceRow> silences;         // in force for this person and analyte, by id
};

struct ReportInput {
  storage::PersonRow person;
  std::vector<AnalyteSeries> series;
  clinical::UnixSeconds generated_at = 0;
};

// The report of person `person_id`: who they are, and for each catalogue analyte they have current
// results of (in catalogue order), those results oldest first with the configured optimal rule
// and the silences in force at `now` (`labwatch silence`); generated at `now`. The series point
// into `config`, which must outlive the result. nullopt when the store knows no such person; throws
// what the store throws.
std::optional<ReportInput> load_report_input(storage::ResultQueries& store,
                                             const config::Config& config, std::int64_t person_id,
                                             clinical::UnixSeconds now);

// A result's reference range for people, in the canonical unit with the lab's text beside it, or
// the catalogue's with why the lab's was not used (clinical::describe_range).
std::string range_text(const storage::ExportRow& row, const clinical::Analyte& analyte);
// The optimal target written for people, for this result's range (clinical::describe_target);
// "" without a rule.
std::string target_text(const clinical::OptimalRule* rule, const storage::ExportRow& row,
                        const clinical::Analyte& analyte);

// Renders the whole report. Every text value is HTML-escaped; no external scripts, fonts or images.
std::string render_trend_report(const ReportInput& input);

// The report without the document around it, for another HTML document to embed: the person's
// heading, the summary table and a <section> with an SVG chart per analyte, every text escaped. It
// looks as in render_trend_report inside an element of class "trend-report" when that document's
// <head> carries trend_report_style().
std::string render_trend_report_content(const ReportInput& input);

// The report's style sheet (CSS text, without the <style> element). Every rule applies only inside
// an element of class "trend-report": the rest of an embedding document keeps its own look.
std::string_view trend_report_style() noexcept;

}  // namespace labwatch::daemon
