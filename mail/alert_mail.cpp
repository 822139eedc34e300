// SPDX-License-Identifier: Apache-2.0
// Alert mail composition: subject, plain text and HTML bodies, PHI level, threading headers.
#include "mail/alert_mail.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "clinical/rule_ref.hpp"
#include "clinical/timezone.hpp"
#include "clinical/wording.hpp"
#include "present/text_format.hpp"

namespace labwatch::daemon {
namespace {

using clinical::NoticeKind;
using storage::Notice;
using storage::OutboxItem;

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD
constexpr std::string_view kSenderName = "labwatch";
constexpr std::array<NoticeKind, 4> kKinds = {NoticeKind::alert, NoticeKind::correction,
                                              NoticeKind::resolution, NoticeKind::retraction};

unsigned char byte(char c) noexcept { return static_cast<unsigned char>(c); }

// Characters that would break a line or change how the rest of it is displayed: C0 and C1
// controls, DEL, the Unicode line and paragraph separators, and the bidirectional embeddings,
// overrides and isolates (U+202A-U+202E, U+2066-U+2069), which can make a name read backwards.
bool is_breaking(std::string_view sequence) noexcept {
  if (sequence.size() == 1) {
    return byte(sequence[0]) < 0x20 || byte(sequence[0]) == 0x7F;
  }
  if (sequence.size() == 2) {
    return byte(sequence[0]) == 0xC2 && byte(sequence[1]) < 0xA0;
  }
  if (sequence.size() == 3 && byte(sequence[0]) == 0xE2) {
    const unsigned char b1 = byte(sequence[1]);
    const unsigned char b2 = byte(sequence[2]);
    return (b1 == 0x80 && b2 >= 0xA8 && b2 <= 0xAE) || (b1 == 0x81 && b2 >= 0xA6 && b2 <= 0xA9);
  }
  return false;
}

std::string plural(std::size_t n, std::string_view one, std::string_view many) {
  return std::to_string(n) + " " + std::string(n == 1 ? one : many);
}

// What the subject and the first line say about the notices of one kind.
std::string count_phrase(NoticeKind kind, std::size_t n) {
  switch (kind) {
    case NoticeKind::alert:
      return plural(n, "result", "results") + " outside optimal target";
    case NoticeKind::correction:
      return plural(n, "corrected result", "corrected results") + " outside optimal target";
    case NoticeKind::resolution:
      // A new value inside target, or a trend judged again over a changed history.
      return plural(n, "result", "results") + " back within target";
    case NoticeKind::retraction:
      return plural(n, "result", "results") + " cancelled by the lab";
  }
  return plural(n, "notice", "notices");
}

std::string summary(const OutboxItem& item) {
  std::string out;
  for (NoticeKind kind : kKinds) {
    std::size_t n = 0;
    for (const Notice& notice : item.notices) {
      n += notice.kind == kind ? 1U : 0U;
    }
    if (n > 0) {
      out += out.empty() ? "" : ", ";
      out += count_phrase(kind, n);
    }
  }
  return out.empty() ? std::string("no new findings") : out;
}

std::string full_name(const OutboxItem& item) {
  const std::string family = single_line(item.family);
  const std::string given = single_line(item.given);
  if (family.empty() || given.empty()) {
    return family + given;
  }
  return family + ", " + given;
}

std::string with_unit(const std::string& number, std::string_view unit) {
  const std::string clean = single_line(unit);
  return clean.empty() ? number : number + " " + clean;
}

// At the lab's precision: "878 pg/mL", never "878.27976 pg/mL".
std::string value_text(double value, std::string_view comparator, std::string_view unit,
                       int decimals) {
  return with_unit(single_line(comparator) + clinical::format_shown(value, decimals), unit);
}

// ">= 50 ng/mL (rule ge:50)", "6 - 8 umol/L (rule range:6-8)", "rule trend:falling:0.2".
std::string notice_target_text(const Notice& notice) {
  const clinical::RuleRef ref = clinical::rule_ref(notice.rule);
  const std::string rule = "rule " + single_line(notice.rule);
  std::string band;
  if (notice.target_low && notice.target_high) {
    band = format_number(*notice.target_low) + " - " + format_number(*notice.target_high);
  } else if (notice.target_low) {
    band = (ref.strict_low() ? "> " : ">= ") + format_number(*notice.target_low);
  } else if (notice.target_high) {
    band = (ref.strict_high() ? "< " : "<= ") + format_number(*notice.target_high);
  }
  return band.empty() ? rule : with_unit(band, notice.unit) + " (" + rule + ")";
}

// A fall measured from an earlier value of the patient's (trend:falling:F, :PCT:DAYS): its
// threshold is a fraction of that value.
bool falls_from_a_value(const clinical::RuleRef& ref) {
  return ref.is_trend() && (ref.trend == clinical::TrendKind::falling ||
                            ref.trend == clinical::TrendKind::falling_within);
}

// Where the value lies against its target: "below", "above", or "outside" when the band cannot
// tell (a trend rule, or a band without the bound that was crossed).
std::string_view direction(const Notice& notice) {
  const clinical::RuleRef ref = clinical::rule_ref(notice.rule);
  if (falls_from_a_value(ref)) {
    return "falling";
  }
  if (ref.is_trend()) {
    return "moving away from";
  }
  const double v = notice.value;
  if (notice.target_low &&
      (v < *notice.target_low || (ref.strict_low() && v <= *notice.target_low))) {
    return "below";
  }
  if (notice.target_high &&
      (v > *notice.target_high || (ref.strict_high() && v >= *notice.target_high))) {
    return "above";
  }
  return "outside";
}

// The configured rule of the notice's analyte when it holds the alert's clause (or the alert is
// about the lab's own range or flag), else nullptr: then the alert's band speaks for itself.
const clinical::OptimalRule* rule_in_force(const Notice& notice, const MailWording& wording) {
  if (wording.targets == nullptr) {
    return nullptr;
  }
  const auto found = wording.targets->find(notice.analyte);
  if (found == wording.targets->end()) {
    return nullptr;
  }
  const clinical::OptimalRule& rule = found->second;
  const bool lab_witness = clinical::rule_ref(notice.rule).is_lab();
  const bool held =
      std::any_of(rule.clauses.begin(), rule.clauses.end(),
                  [&](const clinical::RuleClause& c) { return c.text == notice.rule; });
  return lab_witness || held ? &rule : nullptr;
}

// `evidence`: the results a trend alert rests on as the mail may show them (full PHI: values and
// draw dates; minimal PHI: none, so the trend is only named).
std::string finding(const Notice& notice, bool still, const clinical::OptimalRule* rule,
                    std::span<const clinical::EvidencePoint> evidence = {}) {
  const clinical::RuleRef ref = clinical::rule_ref(notice.rule);
  if (ref.is_trend()) {
    // FindingFacts views its texts: the unit must outlive it.
    const std::string unit = single_line(notice.unit);
    clinical::FindingFacts facts{notice.rule,          notice.value, notice.target_low,
                                 notice.target_high,   notice.flags, unit,
                                 notice.shown_decimals};
    facts.evidence = evidence;
    return clinical::describe_finding(facts, rule);
  }
  if (rule != nullptr || ref.is_lab()) {
    return std::string(still ? "still " : "") +
           clinical::describe_finding(
               {notice.rule, notice.value, notice.target_low, notice.target_high, notice.flags,
                single_line(notice.unit), notice.shown_decimals},
               rule);
  }
  const std::string_view where = direction(notice);
  if (where == "falling") {
    return "a falling trend";
  }
  if (where == "moving away from") {
    return "moving away from the optimal target";
  }
  return std::string(still ? "still " : "") + std::string(where) + " the optimal target";
}

// A notice in the order a mail lists it, with its place among the draws of its analyte.
struct Shown {
  const Notice* notice = nullptr;
  std::string position;  // "most recent of 3 draws"; empty when it is its analyte's only draw
};

// Why grouped: a mail about a backlog or a panel in several messages may hold one analyte many
// times; side by side and in collection order they read as a series. Groups keep the order in
// which their analytes were first queued; several notices of one draw (a correction beside its
// resolution) share its position.
std::vector<Shown> in_reading_order(const std::vector<Notice>& notices) {
  std::vector<std::string> analytes;
  for (const Notice& notice : notices) {
    if (std::find(analytes.begin(), analytes.end(), notice.analyte) == analytes.end()) {
      analytes.push_back(notice.analyte);
    }
  }
  std::vector<Shown> out;
  for (const std::string& analyte : analytes) {
    std::vector<const Notice*> group;
    for (const Notice& notice : notices) {
      if (notice.analyte == analyte) {
        group.push_back(&notice);
      }
    }
    std::stable_sort(group.begin(), group.end(), [](const Notice* a, const Notice* b) {
      return a->collected_at < b->collected_at;
    });
    std::vector<clinical::UnixSeconds> draws;
    for (const Notice* notice : group) {
      if (draws.empty() || draws.back() != notice->collected_at) {
        draws.push_back(notice->collected_at);
      }
    }
    for (const Notice* notice : group) {
      Shown& shown = out.emplace_back();
      shown.notice = notice;
      if (draws.size() < 2) {
        continue;
      }
      const auto at = static_cast<std::size_t>(
          std::find(draws.begin(), draws.end(), notice->collected_at) - draws.begin());
      const std::string of = " of " + std::to_string(draws.size()) + " draws";
      shown.position = at + 1 == draws.size() ? "most recent" + of
                       : at == 0              ? "earliest" + of
                                              : "draw " + std::to_string(at + 1) + of;
    }
  }
  return out;
}

std::string bare_message_id(std::string_view id) {
  std::string out = single_line(id);
  if (out.size() >= 2 && out.front() == '<' && out.back() == '>') {
    out = out.substr(1, out.size() - 2);
  }
  return out;
}

std::string earlier_mail(const Notice& notice) {
  const std::string id = bare_message_id(notice.previous_message_id);
  return id.empty() ? std::string() : " (e-mail <" + id + ">)";
}

// One notice as a headline and detail lines, shared by the text and the HTML body.
struct NoticeText {
  std::string headline;
  std::vector<std::string> details;
};

// The lab's range as the mail shows it: canonical unit and the lab's text, or the catalogue's
// and why the lab's was not used.
std::string range_line(const Notice& notice, const clinical::Analyte* analyte) {
  const clinical::Analyte none{};
  const std::string unit = single_line(notice.unit);
  const std::string raw_range = single_line(notice.raw_range);
  const std::string raw_unit = single_line(notice.raw_unit);
  return clinical::describe_range({notice.ref_low, notice.ref_high, notice.range_problem, raw_range,
                                   raw_unit, unit, notice.shown_decimals},
                                  analyte != nullptr ? *analyte : none);
}

// `position` is what tells this notice from others of its analyte at minimal PHI ("most recent of
// 3 draws"), else empty.
NoticeText describe_notice(const Notice& notice, const clinical::AnalyteCatalogue& catalogue,
                           bool full_phi, const MailWording& wording, const std::string& position) {
  const clinical::Analyte* analyte = catalogue.by_key(notice.analyte);
  const std::string name = single_line(analyte != nullptr && !analyte->display_name.empty()
                                           ? std::string_view(analyte->display_name)
                                           : std::string_view(notice.analyte)) +
                           (full_phi || position.empty() ? std::string() : " (" + position + ")");
  const clinical::OptimalRule* rule = rule_in_force(notice, wording);
  const std::string value =
      value_text(notice.value, notice.comparator, notice.unit, notice.shown_decimals);
  const std::string collected = ", collected " + single_line(clinical::local_time_text(
                                                     notice.collected_at, wording.timezone));
  const std::string previous =
      notice.previous_value
          ? " (earlier " +
                value_text(*notice.previous_value, "", notice.unit, notice.shown_decimals) + ")"
          : std::string();
  std::vector<clinical::EvidencePoint> evidence;
  if (full_phi) {
    for (const clinical::TrendPoint& point : notice.evidence) {
      evidence.push_back(
          {point.value,
           single_line(
               clinical::local_time_text(point.collected_at, wording.timezone).substr(0, 10))});
    }
  }
  NoticeText out;
  switch (notice.kind) {
    case NoticeKind::alert:
      out.headline =
          full_phi ? name + " " + value + collected + ": " + finding(notice, false, rule, evidence)
                   : name + ": " + finding(notice, false, rule);
      break;
    case NoticeKind::correction:
      out.headline = full_phi ? name + ": corrected value " + value + previous + collected + ": " +
                                    finding(notice, true, rule)
                              : name + ": corrected value " + finding(notice, true, rule);
      out.details.push_back("It replaces the value of an earlier alert" + earlier_mail(notice) +
                            ".");
      break;
    case NoticeKind::resolution:
      if (!notice.previous_value) {
        // No value changed: the alert's trend was judged again over a history that changed (a
        // merge or unmerge of identities, an earlier draw arriving late).
        out.headline = name + (full_phi ? " " + value + collected : std::string()) +
                       ": no longer outside the optimal target (its history changed)";
      } else {
        out.headline = full_phi ? name + ": corrected value " + value + previous + collected +
                                      ": back within the optimal target"
                                : name + ": corrected value back within the optimal target";
      }
      out.details.push_back("The earlier alert" + earlier_mail(notice) + " is resolved.");
      break;
    case NoticeKind::retraction:
      out.headline = full_phi ? name + collected + ": the lab cancelled this result"
                              : name + ": the lab cancelled this result";
      out.details.push_back("Disregard the earlier alert" + earlier_mail(notice) + ".");
      return out;
  }
  // The target in words for the range this result was judged by; the rule's name after it, as
  // `labwatch alerts` lists it.
  if (rule != nullptr && analyte != nullptr) {
    const std::string words =
        clinical::describe_target(*rule, *analyte, single_line(notice.unit), notice.ref_low,
                                  notice.ref_high, notice.shown_decimals);
    out.details.push_back("Optimal target: " + (words.empty() ? std::string("none") : words) +
                          " (rule " + single_line(notice.rule) + ")");
  } else {
    // A fall's threshold is a fraction of a value of the patient's: at minimal PHI only the rule.
    const bool from_values = falls_from_a_value(clinical::rule_ref(notice.rule));
    out.details.push_back("Optimal target: " + (from_values && !full_phi
                                                    ? "rule " + single_line(notice.rule)
                                                    : notice_target_text(notice)));
  }
  const std::string range = range_line(notice, analyte);
  out.details.push_back("Lab range: " + (range.empty() ? std::string("none printed") : range));
  if (full_phi && !notice.history.empty()) {
    std::string history;
    for (const storage::HistoryPoint& point : notice.history) {
      history += history.empty() ? "" : "; ";
      history += clinical::local_time_text(point.collected_at, wording.timezone).substr(0, 10) +
                 " " + single_line(point.comparator) +
                 clinical::format_shown(point.value, point.shown_decimals);
    }
    const std::string unit = single_line(notice.unit);
    out.details.push_back("Recent values" + (unit.empty() ? std::string() : " (" + unit + ")") +
                          ": " + history);
  }
  return out;
}

// The patient and report lines, and the closing note, for the recipient's PHI level.
struct Frame {
  std::vector<std::string> header;
  std::vector<std::string> footer;
};

Frame frame_of(const OutboxItem& item) {
  Frame frame;
  const std::string report = single_line(item.report_ref);
  if (item.recipient.full_phi) {
    std::string patient = full_name(item);
    if (const std::string born = single_line(item.birth_date); !born.empty()) {
      patient += (patient.empty() ? "born " : ", born ") + born;
    }
    if (const std::string key = single_line(item.patient_key); !key.empty()) {
      patient += patient.empty() ? key : " (" + key + ")";
    }
    frame.header.push_back("Patient: " + (patient.empty() ? std::string("unknown") : patient));
    frame.footer.emplace_back("This e-mail contains patient data. Do not forward it.");
  } else {
    const std::string initials = patient_initials(item.given, item.family);
    frame.header.push_back("Patient: " + (initials.empty() ? std::string("unknown") : initials) +
                           " (initials only)");
    frame.footer.emplace_back("Names, birth dates, dates and values are left out of this e-mail.");
    frame.footer.emplace_back(
        report.empty() ? std::string("Look the patient up in labwatch for the details.")
                       : "Look up report " + report +
                             " in labwatch for the details: labwatch report --patient \"" + report +
                             "\" --out report.html");
  }
  if (!report.empty()) {
    frame.header.push_back("Report: " + report);
  }
  return frame;
}

std::string text_body(const std::string& first_line, const Frame& frame,
                      const std::vector<NoticeText>& notices) {
  std::string out = first_line + ".\n\n";
  for (const std::string& line : frame.header) {
    out += line + "\n";
  }
  std::size_t number = 0;
  for (const NoticeText& notice : notices) {
    out += "\n" + std::to_string(++number) + ". " + notice.headline + "\n";
    for (const std::string& detail : notice.details) {
      out += "   " + detail + "\n";
    }
  }
  out += "\n";
  for (const std::string& line : frame.footer) {
    out += line + "\n";
  }
  return out;
}

std::string html_lines(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& line : lines) {
    out += out.empty() ? "" : "<br>\n";
    out += html_escape(line);
  }
  return out;
}

// One HTML document: the notices, then, when given, the trend report with its style sheet.
std::string html_body(const std::string& subject, const std::string& first_line, const Frame& frame,
                      const std::vector<NoticeText>& notices, const ReportInput* report) {
  std::string out =
      "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + html_escape(subject) +
      "</title>" +
      (report != nullptr ? "\n<style>" + std::string(trend_report_style()) + "</style>\n"
                         : std::string()) +
      "</head>\n<body>\n<p>" + html_escape(first_line) + ".</p>\n";
  out += "<p>" + html_lines(frame.header) + "</p>\n<ol>\n";
  for (const NoticeText& notice : notices) {
    out += "<li><strong>" + html_escape(notice.headline) + "</strong>";
    for (const std::string& detail : notice.details) {
      out += "<br>\n" + html_escape(detail);
    }
    out += "</li>\n";
  }
  out += "</ol>\n<p>" + html_lines(frame.footer) + "</p>\n";
  if (report != nullptr) {
    out += "<hr>\n<section class=\"trend-report\">\n" + render_trend_report_content(*report) +
           "</section>\n";
  }
  out += "</body></html>\n";
  return out;
}

}  // namespace

std::string single_line(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool space = false;  // a space is owed before the next visible character
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t n = utf8_sequence_length(text, i);
    const std::string_view sequence = text.substr(i, n == 0 ? 1 : n);
    i += sequence.size();
    if (n != 0 && (sequence == " " || is_breaking(sequence))) {
      space = !out.empty();
      continue;
    }
    if (space) {
      out += ' ';
      space = false;
    }
    out += n == 0 ? kReplacement : sequence;
  }
  return out;
}

std::string patient_initials(std::string_view given, std::string_view family) {
  std::string out;
  for (const std::string_view name : {given, family}) {
    for (std::size_t i = 0; i < name.size();) {
      const std::size_t n = utf8_sequence_length(name, i);
      if (n == 0) {
        ++i;
        continue;
      }
      const std::string_view sequence = name.substr(i, n);
      i += n;
      const unsigned char c = byte(sequence[0]);
      const bool ascii_alnum =
          (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
      if (ascii_alnum) {
        out += (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : sequence[0];
      } else if (n > 1 && !is_breaking(sequence)) {
        out += sequence;  // a non-ASCII letter ("Ä"); case mapping needs tables we do not carry
      } else {
        continue;
      }
      out += '.';
      break;
    }
  }
  return out;
}

std::string alert_subject(const OutboxItem& item) {
  std::string subject = "labwatch: " + summary(item);
  if (item.person_id > 0) {
    subject += " (person " + std::to_string(item.person_id) + ")";
  }
  return subject;
}

MailMessage compose_alert_mail(const OutboxItem& item, std::string_view from_address,
                               const clinical::AnalyteCatalogue& catalogue,
                               clinical::UnixSeconds date, const ReportInput* report,
                               const MailWording& wording) {
  MailMessage message;
  message.from = {std::string(kSenderName), std::string(from_address)};
  message.to = {single_line(item.recipient.name), item.recipient.email};
  message.subject = alert_subject(item);
  message.message_id = bare_message_id(item.message_id);
  message.date = date;
  // The earlier mails this one corrects, in notice order, each once: a reader threads them.
  for (const Notice& notice : item.notices) {
    std::string id = bare_message_id(notice.previous_message_id);
    if (id.empty() || id == message.message_id) {
      continue;
    }
    bool seen = false;
    for (const std::string& known : message.references) {
      seen = seen || known == id;
    }
    if (!seen) {
      message.references.push_back(std::move(id));
    }
  }
  message.extra_headers.push_back({"X-Labwatch-Outbox", std::to_string(item.id)});

  std::vector<NoticeText> notices;
  notices.reserve(item.notices.size());
  for (const Shown& shown : in_reading_order(item.notices)) {
    notices.push_back(describe_notice(*shown.notice, catalogue, item.recipient.full_phi, wording,
                                      shown.position));
  }
  std::string first_line = summary(item);
  if (!first_line.empty() && first_line[0] >= 'a' && first_line[0] <= 'z') {
    first_line[0] = static_cast<char>(first_line[0] - 'a' + 'A');
  }
  // The report is full of patient data: only a full-PHI recipient may see it.
  const ReportInput* attached = item.recipient.full_phi ? report : nullptr;
  Frame frame = frame_of(item);
  if (attached != nullptr) {
    frame.footer.insert(frame.footer.begin(),
                        "The HTML version of this e-mail also holds the patient's trend report.");
  }
  message.text_body = text_body(first_line, frame, notices);
  message.html_body = html_body(message.subject, first_line, frame, notices, attached);
  return message;
}

}  // namespace labwatch::daemon
