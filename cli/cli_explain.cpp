// SPDX-License-Identifier: Apache-2.0
// `labwatch explain FILE`: a dry run's results, skipped lines, refusals and alerts, line by line.
#include "cli/cli_explain.hpp"

#include <algorithm>
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "clinical/alert_status.hpp"
#include "clinical/reconcile.hpp"
#include "clinical/rules.hpp"
#include "clinical/wording.hpp"
#include "present/text_format.hpp"

namespace labwatch::daemon {
namespace {

// One line of the explanation: a result, a skipped or unmapped line, or a refusal, at its place.
struct Entry {
  parsers::SourcePos where;
  std::size_t order = 0;  // its place among entries of the same line (file order)
  std::string action;     // store, stored_before, promote, skip, unmapped, refuse, warn
  std::string text;       // what the text form says after the place
  std::string json;       // the JSON members after "action" (",\"analyte\":..."), or ""
  std::vector<std::string> alert_texts;
  std::vector<std::string> alert_json;
};

// "line 5, segment 5 OBX": where a line of a message is; the message is its group's heading.
std::string place(parsers::SourcePos where) {
  where.message = -1;
  const std::string out = printable(parsers::describe(where));
  return out.empty() ? std::string("file") : out;
}

std::string value_text(std::string_view comparator, double value, int decimals,
                       std::string_view unit) {
  std::string out(comparator);
  out += clinical::format_shown(value, decimals);
  if (!unit.empty()) {
    out += ' ';
    out += unit;
  }
  return out;
}

std::string lab_text(std::string_view raw_value, std::string_view raw_unit) {
  std::string out = "(lab: " + printable(raw_value);
  if (!raw_unit.empty()) {
    out += " " + printable(raw_unit);
  }
  return out + ")";
}

std::string json_member(std::string_view key, const std::string& json_value) {
  return ",\"" + std::string(key) + "\":" + json_value;
}

// The position of a stored row: the same message, segment and line as the result it came from.
using RowKey = std::tuple<int, int, int>;
RowKey row_key(const parsers::SourcePos& where) {
  return {where.message, where.segment, where.line};
}

class Explainer {
 public:
  Explainer(const FileExplanation& explanation, const config::Config& config)
      : explanation_(explanation), config_(config) {
    for (std::size_t i = 0; i < explanation.stored.results.size(); ++i) {
      // A kept fraction's place is in an earlier file: it is shown beside the total of this one.
      if (!explanation.stored.results[i].kept_fraction) {
        rows_by_place_[row_key(explanation.stored.results[i].where)].push_back(i);
      }
    }
    used_.assign(explanation.stored.results.size(), false);
  }

  std::vector<Entry> entries() {
    for (const clinical::NormalizedReport& report : explanation_.reports) {
      for (const clinical::NormalizedResult& result : report.results) {
        add_result(result);
      }
      for (const clinical::SkippedLine& line : report.skipped) {
        Entry& e = add(line.where, "skip");
        e.text = "skip: " + std::string(clinical::to_string(line.reason)) +
                 (line.analyte.empty() ? std::string() : " (" + line.analyte + ")");
        e.json = json_member("reason", json_string(clinical::to_string(line.reason))) +
                 json_member("analyte", json_string(line.analyte));
      }
      for (const parsers::Warning& warning : report.warnings) {
        // What `ingest` logs as a warning (a reason and a place, no patient data): stored, but
        // worth a look (a plain N on a value outside the printed range, an unknown charset).
        Entry& e = add(warning.where, "warn");
        e.text = "warning: " + warning.reason +
                 (warning.detail.empty() ? std::string() : ": " + warning.detail);
        e.json = json_member("reason", json_string(warning.reason)) +
                 json_member("detail", json_string(warning.detail));
      }
      for (const clinical::UnmappedLine& line : report.unmapped_lines) {
        Entry& e = add(line.where, "unmapped");
        e.text = "skip: unmapped code " + printable(line.code) +
                 (line.name.empty() ? std::string() : " '" + printable(line.name) + "'") +
                 (line.unit.empty() ? std::string() : " [" + printable(line.unit) + "]") +
                 ": no analyte maps it (see labwatch unmapped)";
        e.json = json_member("code", json_string(line.code)) +
                 json_member("name", json_string(line.name)) +
                 json_member("unit", json_string(line.unit));
      }
    }
    for (const parsers::Refusal& refusal : explanation_.outcome.refusals) {
      Entry& e = add(refusal.where, "refuse");
      // The reason and detail `ingest` prints (no patient data); the place is the line's.
      const std::string reason(parsers::to_string(refusal.reason));
      e.text = "refuse: " + reason +
               (refusal.detail.empty() || refusal.detail == reason ? std::string()
                                                                   : ": " + refusal.detail);
      e.json = json_member("reason", json_string(reason)) +
               json_member("detail", json_string(refusal.detail)) +
               json_member("where", json_string(describe_place(refusal)));
    }
    // Rows no result of the reports accounts for (none are expected) are still shown.
    for (std::size_t i = 0; i < used_.size(); ++i) {
      if (!used_[i]) {
        add_row(explanation_.stored.results[i], parsers::SourcePos{});
      }
    }
    std::stable_sort(entries_.begin(), entries_.end(), [](const Entry& a, const Entry& b) {
      return std::tie(a.where.message, a.where.line, a.where.segment, a.order) <
             std::tie(b.where.message, b.where.line, b.where.segment, b.order);
    });
    return std::move(entries_);
  }

 private:
  static std::string describe_place(const parsers::Refusal& refusal) {
    parsers::Refusal place_only;
    place_only.where = refusal.where;
    std::string text = describe(place_only);
    if (text.ends_with(": ")) {
      text.resize(text.size() - 2);
    }
    return text;
  }

  Entry& add(const parsers::SourcePos& where, std::string action) {
    Entry& e = entries_.emplace_back();
    e.where = where;
    e.order = entries_.size();
    e.action = std::move(action);
    return e;
  }

  // A result is stored when a row of the transaction stands at its place; otherwise the same
  // result (or its whole message) was stored before and reconcile recognized it.
  void add_result(const clinical::NormalizedResult& result) {
    if (result.promote_only) {
      Entry& e = add(result.where, "promote");
      e.text = "promote: the stored preliminary " + result.analyte + " becomes final";
      e.json = json_member("analyte", json_string(result.analyte));
      return;
    }
    const auto found = rows_by_place_.find(row_key(result.where));
    if (found != rows_by_place_.end()) {
      std::size_t* pick = nullptr;
      for (std::size_t& index : found->second) {
        if (used_[index]) {
          continue;
        }
        const storage::DryRunResult& row = explanation_.stored.results[index];
        if (pick == nullptr || row.analyte == result.analyte) {
          pick = &index;
          if (row.analyte == result.analyte) {
            break;
          }
        }
      }
      if (pick != nullptr) {
        used_[*pick] = true;
        add_row(explanation_.stored.results[*pick], result.where);
        add_kept_fractions(result);
        return;
      }
    }
    Entry& e = add(result.where, "stored_before");
    e.text = "already stored: " + result.analyte + " " +
             value_text(result.comparator, result.value, result.shown_decimals, result.unit) + " " +
             lab_text(result.raw_value, result.raw_unit);
    e.json = json_member("analyte", json_string(result.analyte)) +
             json_member("value", json_number(result.value)) +
             json_member("comparator", json_string(result.comparator)) +
             json_member("unit", json_string(result.unit)) +
             json_member("raw_value", json_string(result.raw_value)) +
             json_member("raw_unit", json_string(result.raw_unit));
  }

  // The stand-ins of earlier files that `total` takes the place of, each stored again as the
  // fraction it is (clinical::plan_stand_in): shown at the total's place.
  void add_kept_fractions(const clinical::NormalizedResult& total) {
    const std::string_view fraction = clinical::stand_in_fraction(total.analyte);
    if (fraction.empty()) {
      return;
    }
    for (std::size_t i = 0; i < used_.size(); ++i) {
      const storage::DryRunResult& row = explanation_.stored.results[i];
      if (!used_[i] && row.kept_fraction && row.analyte == fraction) {
        used_[i] = true;
        add_row(row, total.where);
        entries_.back().text += ", stored before as the total's stand-in: kept as its own analyte";
        entries_.back().json += json_member("kept_fraction", "true");
      }
    }
  }

  void add_row(const storage::DryRunResult& row, const parsers::SourcePos& where) {
    Entry& e = add(where.line > 0 || where.segment > 0 ? where : row.where, "store");
    std::string state;
    if (row.state != clinical::ResultState::current) {
      state =
          " as " + std::string(clinical::to_string(row.state)) +
          (row.state == clinical::ResultState::superseded ? " (a later version is stored)" : "");
    }
    if (row.replaced > 0) {
      state += ", replacing " + std::to_string(row.replaced) + " stored version" +
               (row.replaced == 1 ? "" : "s");
    }
    e.text = "store: " + row.analyte + " " +
             value_text(row.comparator, row.value, row.shown_decimals, row.unit) + " " +
             lab_text(row.raw_value, row.raw_unit) + state;
    e.json = json_member("analyte", json_string(row.analyte)) +
             json_member("value", json_number(row.value)) +
             json_member("comparator", json_string(row.comparator)) +
             json_member("unit", json_string(row.unit)) +
             json_member("raw_value", json_string(row.raw_value)) +
             json_member("raw_unit", json_string(row.raw_unit)) +
             json_member("state", json_string(clinical::to_string(row.state))) +
             json_member("replaces", std::to_string(row.replaced));
    for (const storage::DryRunAlert& alert : explanation_.stored.alerts) {
      if (alert.result_id != row.result_id) {
        continue;
      }
      const auto rule = config_.targets.find(alert.analyte);
      const clinical::OptimalRule* configured =
          rule == config_.targets.end() ? nullptr : &rule->second;
      const std::string_view tier = clinical::alert_tier(alert.rule, configured);
      clinical::FindingFacts facts;
      facts.rule = alert.rule;
      facts.value = alert.value;
      facts.target_low = alert.target_low;
      facts.target_high = alert.target_high;
      facts.flags = row.flags;
      facts.unit = row.unit;
      facts.decimals = row.shown_decimals;
      const std::string finding = clinical::describe_finding(facts, configured);
      e.alert_texts.push_back("alert: " + alert.analyte + ", rule " + alert.rule + ", tier " +
                              std::string(tier) + ": " + finding +
                              " (mail: " + std::string(clinical::to_string(alert.state)) + ")");
      e.alert_json.push_back(
          "{\"analyte\":" + json_string(alert.analyte) + ",\"rule\":" + json_string(alert.rule) +
          ",\"tier\":" + json_string(tier) + ",\"finding\":" + json_string(finding) +
          ",\"mail\":" + json_string(clinical::to_string(alert.state)) + "}");
    }
  }

  const FileExplanation& explanation_;
  const config::Config& config_;
  std::map<RowKey, std::vector<std::size_t>> rows_by_place_;
  std::vector<bool> used_;
  std::vector<Entry> entries_;
};

// What an ingest would end with: the dry run's verdict, or for bytes ingested before, that one.
std::string verdict_of(const FileExplanation& e) {
  if (!e.known) {
    return "would be " + std::string(to_string(e.outcome.kind));
  }
  const char* then = e.known->verdict == storage::FileVerdict::accepted  ? "accepted"
                     : e.known->verdict == storage::FileVerdict::partial ? "partially refused"
                                                                         : "refused";
  return "already ingested as " + printable(e.known->name) + " (" + then +
         " then): an ingest would store nothing";
}

// The message heading of a group: "message 2 (line 14), control id C2, facility QDX".
std::string message_heading(const FileExplanation& e, int message) {
  std::string out = "message " + std::to_string(message + 1);
  for (const clinical::NormalizedReport& report : e.reports) {
    if (report.where.message == message) {
      if (report.where.line > 0) {
        out += " (line " + std::to_string(report.where.line) + ")";
      }
      if (!report.control_id.empty()) {
        out += ", control id " + printable(report.control_id);
      }
      if (!report.facility.empty()) {
        out += ", facility " + printable(report.facility);
      }
      break;
    }
  }
  return out;
}

std::string summary_text(const FileExplanation& e) {
  const storage::IngestSummary& s = e.outcome.summary;
  return std::to_string(s.results_stored) + " to store, " + std::to_string(s.duplicates) +
         " already stored, " + std::to_string(s.superseded) + " superseded, " +
         std::to_string(s.withdrawn) + " withdrawn, " + std::to_string(s.skipped) + " skipped, " +
         std::to_string(unmapped_results(e.outcome)) + " unmapped, " +
         std::to_string(e.outcome.refused()) + " refused, " +
         std::to_string(e.stored.alerts.size()) +
         (e.stored.alerts.size() == 1 ? " alert" : " alerts");
}

}  // namespace

bool would_refuse(const FileExplanation& explanation) noexcept {
  if (explanation.known) {
    return explanation.known->verdict != storage::FileVerdict::accepted;
  }
  return explanation.outcome.refused() > 0;
}

std::string explain_output(const std::string& file, const FileExplanation& explanation,
                           const config::Config& config, bool json) {
  const std::vector<Entry> entries = Explainer(explanation, config).entries();
  std::string out;
  if (json) {
    out = "{\"file\":" + json_string(file) +
          ",\"verdict\":" + json_string(verdict_of(explanation)) +
          ",\"ingested_before\":" + (explanation.known ? "true" : "false") +
          ",\"summary\":" + json_string(summary_text(explanation)) + ",\"lines\":[";
    bool first = true;
    for (const Entry& e : entries) {
      out += first ? "\n  " : ",\n  ";
      first = false;
      out += "{\"message\":" +
             (e.where.message >= 0 ? std::to_string(e.where.message + 1) : std::string("null")) +
             ",\"line\":" + (e.where.line > 0 ? std::to_string(e.where.line) : "null") +
             ",\"segment\":" + (e.where.segment > 0 ? std::to_string(e.where.segment) : "null") +
             ",\"action\":" + json_string(e.action) + e.json + ",\"alerts\":[";
      for (std::size_t i = 0; i < e.alert_json.size(); ++i) {
        out += (i == 0 ? "" : ",") + e.alert_json[i];
      }
      out += "]}";
    }
    out += "\n]}\n";
    return out;
  }
  out = printable(file) + ": " + verdict_of(explanation) + " (dry run: nothing was written)\n";
  std::optional<int> message;
  bool first = true;
  for (const Entry& e : entries) {
    if (e.where.message >= 0 && (first || message != e.where.message)) {
      out += message_heading(explanation, e.where.message) + ":\n";
    }
    first = false;
    message = e.where.message;
    out += "  " + place(e.where) + ": " + e.text + "\n";
    for (const std::string& alert : e.alert_texts) {
      out += "    " + alert + "\n";
    }
  }
  if (explanation.outcome.refusals_dropped > 0) {
    out += "  " + std::to_string(explanation.outcome.refusals_dropped) +
           " more refusals, counted but not kept in detail\n";
  }
  out += "summary: " + summary_text(explanation) + "\n";
  return out;
}

}  // namespace labwatch::daemon
