// SPDX-License-Identifier: Apache-2.0
// Alert mail composition: exact subjects and bodies per PHI level, injection, escaping, threading.
#include "mail/alert_mail.hpp"

#include <catch2/catch.hpp>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "clinical/analyte_catalogue.hpp"
#include "clinical/rules.hpp"
#include "mail/mail_message.hpp"
#include "support/smtp_server.hpp"

namespace {

using labwatch::clinical::AnalyteCatalogue;
using labwatch::clinical::NoticeKind;
using labwatch::daemon::alert_subject;
using labwatch::daemon::compose_alert_mail;
using labwatch::daemon::MailMessage;
using labwatch::daemon::patient_initials;
using labwatch::daemon::render_mime;
using labwatch::daemon::ReportInput;
using labwatch::daemon::single_line;
using labwatch::storage::HistoryPoint;
using labwatch::storage::Notice;
using labwatch::storage::OutboxItem;
using labwatch::test::decode_header_value;
using labwatch::test::header_value;

constexpr labwatch::clinical::UnixSeconds kCollected = 1726920900;  // 2024-09-21T12:15:00Z
constexpr labwatch::clinical::UnixSeconds kEarlier = 1709294400;    // 2024-03-01T12:00:00Z
constexpr labwatch::clinical::UnixSeconds kSendTime = 1727000000;   // 2024-09-22T10:13:20Z
constexpr std::string_view kFrom = "labwatch@clinic.example";
constexpr std::string_view kMessageId = "0123456789abcdef0123456789abcdef@labwatch";

Notice ferritin_alert() {
  Notice n;
  n.alert_id = 41;
  n.kind = NoticeKind::alert;
  n.analyte = "ferritin";
  n.value = 38;
  n.unit = "ng/mL";
  n.collected_at = kCollected;
  n.rule = "ge:50";
  n.target_low = 50;
  n.ref_low = 16;
  n.ref_high = 232;
  n.raw_range = "16-232";
  n.raw_unit = "ng/mL";
  n.range_problem = labwatch::clinical::RangeProblem::none;
  n.history = {HistoryPoint{kEarlier, 45, ""}, HistoryPoint{kCollected, 38, ""}};
  return n;
}

Notice homocysteine_alert() {
  Notice n;
  n.alert_id = 42;
  n.analyte = "homocysteine";
  n.value = 9.7;
  n.unit = "umol/L";
  n.collected_at = kCollected;
  n.rule = "range:6-8";
  n.target_low = 6;
  n.target_high = 8;
  n.raw_range = "<15";
  n.ref_high = 15;
  n.range_problem = labwatch::clinical::RangeProblem::none;
  return n;
}

Notice vitamin_d_alert() {
  Notice n;
  n.alert_id = 43;
  n.analyte = "vitamin_d_25oh";
  n.value = 10;
  n.comparator = "<";
  n.unit = "ng/mL";
  n.collected_at = kCollected;
  n.rule = "range:40-60";
  n.target_low = 40;
  n.target_high = 60;
  return n;
}

OutboxItem three_alerts(bool full_phi) {
  OutboxItem item;
  item.id = 7;
  item.message_id = std::string(kMessageId);
  item.recipient = {"dr-lee", "ada.lee@clinic.example", "Dr. Ada Lee", full_phi};
  item.person_id = 12;
  item.patient_key = "QDX|Q37960593";
  item.family = "Doe";
  item.given = "John";
  item.birth_date = "1970-01-01";
  item.report_ref = "QDX301000001";
  item.notices = {ferritin_alert(), homocysteine_alert(), vitamin_d_alert()};
  return item;
}

MailMessage compose(const OutboxItem& item) {
  // Times in UTC whatever the machine's zone, so the expected texts hold everywhere.
  return compose_alert_mail(item, kFrom, AnalyteCatalogue::builtin(), kSendTime, nullptr,
                            labwatch::daemon::MailWording{nullptr, "UTC"});
}

// The header block of a rendered message (up to the first empty line), unfolded.
std::string headers_of(const std::string& rendered) {
  std::string head = rendered.substr(0, rendered.find("\r\n\r\n") + 2);
  std::string out;
  for (std::size_t i = 0; i < head.size(); ++i) {
    if (head.compare(i, 3, "\r\n ") == 0) {
      i += 2;  // unfold: drop CRLF, keep the space
    }
    out += head[i];
  }
  return out;
}

std::vector<std::string> header_names(const std::string& headers) {
  std::vector<std::string> names;
  std::size_t start = 0;
  while (start < headers.size()) {
    const std::size_t end = headers.find("\r\n", start);
    const std::string line = headers.substr(start, end - start);
    names.push_back(line.substr(0, line.find(':')));
    start = end + 2;
  }
  return names;
}

}  // namespace

TEST_CASE("compose_alert_mail at minimal PHI shows initials and the report, no values or dates",
          "[daemon][mail][alert_mail]") {
  const MailMessage m = compose(three_alerts(false));
  CHECK(m.subject == "labwatch: 3 results outside optimal target (person 12)");
  CHECK(m.from.display_name == "labwatch");
  CHECK(m.from.address == kFrom);
  CHECK(m.to.display_name == "Dr. Ada Lee");
  CHECK(m.to.address == "ada.lee@clinic.example");
  CHECK(m.message_id == kMessageId);
  CHECK(m.references.empty());
  CHECK(m.date == kSendTime);
  CHECK(m.text_body ==
        "3 results outside optimal target.\n"
        "\n"
        "Patient: J.D. (initials only)\n"
        "Report: QDX301000001\n"
        "\n"
        "1. Ferritin: below the optimal target\n"
        "   Optimal target: >= 50 ng/mL (rule ge:50)\n"
        "   Lab range: 16-232 ng/mL\n"
        "\n"
        "2. Homocysteine (total): above the optimal target\n"
        "   Optimal target: 6 - 8 umol/L (rule range:6-8)\n"
        "   Lab range: <= 15 umol/L (lab: <15)\n"
        "\n"
        "3. 25-hydroxyvitamin D (total D2+D3): below the optimal target\n"
        "   Optimal target: 40 - 60 ng/mL (rule range:40-60)\n"
        "   Lab range: 30-100 ng/mL (catalogue range; the lab printed none)\n"
        "\n"
        "Names, birth dates, dates and values are left out of this e-mail.\n"
        "Look up report QDX301000001 in labwatch for the details: labwatch report --patient "
        "\"QDX301000001\" --out report.html\n");
  for (const std::string& body : {m.text_body, m.html_body}) {
    for (const char* secret :
         {"Doe", "John", "1970", "38", "9.7", "<10", "&lt;10", "Q37960593", "2024-09-21", "45"}) {
      CAPTURE(secret);
      CHECK(body.find(secret) == std::string::npos);
    }
  }
}

TEST_CASE("compose_alert_mail at full PHI shows name, birth date, values, times and history",
          "[daemon][mail][alert_mail]") {
  const MailMessage m = compose(three_alerts(true));
  CHECK(m.subject == "labwatch: 3 results outside optimal target (person 12)");
  CHECK(m.text_body ==
        "3 results outside optimal target.\n"
        "\n"
        "Patient: Doe, John, born 1970-01-01 (QDX|Q37960593)\n"
        "Report: QDX301000001\n"
        "\n"
        "1. Ferritin 38 ng/mL, collected 2024-09-21 12:15 UTC: below the optimal target\n"
        "   Optimal target: >= 50 ng/mL (rule ge:50)\n"
        "   Lab range: 16-232 ng/mL\n"
        "   Recent values (ng/mL): 2024-03-01 45; 2024-09-21 38\n"
        "\n"
        "2. Homocysteine (total) 9.7 umol/L, collected 2024-09-21 12:15 UTC: above the optimal "
        "target\n"
        "   Optimal target: 6 - 8 umol/L (rule range:6-8)\n"
        "   Lab range: <= 15 umol/L (lab: <15)\n"
        "\n"
        "3. 25-hydroxyvitamin D (total D2+D3) <10 ng/mL, collected 2024-09-21 12:15 UTC: below "
        "the optimal target\n"
        "   Optimal target: 40 - 60 ng/mL (rule range:40-60)\n"
        "   Lab range: 30-100 ng/mL (catalogue range; the lab printed none)\n"
        "\n"
        "This e-mail contains patient data. Do not forward it.\n");
  CHECK(m.html_body ==
        "<!DOCTYPE html>\n"
        "<html><head><meta charset=\"utf-8\"><title>labwatch: 3 results outside optimal target "
        "(person 12)</title></head>\n"
        "<body>\n"
        "<p>3 results outside optimal target.</p>\n"
        "<p>Patient: Doe, John, born 1970-01-01 (QDX|Q37960593)<br>\n"
        "Report: QDX301000001</p>\n"
        "<ol>\n"
        "<li><strong>Ferritin 38 ng/mL, collected 2024-09-21 12:15 UTC: below the optimal "
        "target</strong><br>\n"
        "Optimal target: &gt;= 50 ng/mL (rule ge:50)<br>\n"
        "Lab range: 16-232 ng/mL<br>\n"
        "Recent values (ng/mL): 2024-03-01 45; 2024-09-21 38</li>\n"
        "<li><strong>Homocysteine (total) 9.7 umol/L, collected 2024-09-21 12:15 UTC: above the "
        "optimal target</strong><br>\n"
        "Optimal target: 6 - 8 umol/L (rule range:6-8)<br>\n"
        "Lab range: &lt;= 15 umol/L (lab: &lt;15)</li>\n"
        "<li><strong>25-hydroxyvitamin D (total D2+D3) &lt;10 ng/mL, collected 2024-09-21 12:15 "
        "UTC: below the optimal target</strong><br>\n"
        "Optimal target: 40 - 60 ng/mL (rule range:40-60)<br>\n"
        "Lab range: 30-100 ng/mL (catalogue range; the lab printed none)</li>\n"
        "</ol>\n"
        "<p>This e-mail contains patient data. Do not forward it.</p>\n"
        "</body></html>\n");
}

TEST_CASE("compose_alert_mail words corrections, resolutions and retractions and threads them",
          "[daemon][mail][alert_mail]") {
  OutboxItem item = three_alerts(true);
  Notice correction = homocysteine_alert();
  correction.kind = NoticeKind::correction;
  correction.value = 4.9;
  correction.previous_value = 5.8;
  correction.previous_message_id = "<aaaa@labwatch>";
  Notice resolution = ferritin_alert();
  resolution.kind = NoticeKind::resolution;
  resolution.value = 87;
  resolution.previous_value = 74;
  resolution.previous_message_id = "bbbb@labwatch";
  resolution.history.clear();
  Notice retraction = ferritin_alert();
  retraction.kind = NoticeKind::retraction;
  retraction.previous_message_id = "aaaa@labwatch";  // the same earlier mail: named once
  item.notices = {correction, resolution, retraction};

  SECTION("full PHI") {
    const MailMessage m = compose(item);
    CHECK(m.subject ==
          "labwatch: 1 corrected result outside optimal target, 1 result back within target, 1 "
          "result cancelled by the lab (person 12)");
    CHECK(m.references == std::vector<std::string>{"aaaa@labwatch", "bbbb@labwatch"});
    CHECK(m.text_body.find(
              "1. Homocysteine (total): corrected value 4.9 umol/L (earlier 5.8 umol/L), "
              "collected 2024-09-21 12:15 UTC: still below the optimal target\n"
              "   It replaces the value of an earlier alert (e-mail <aaaa@labwatch>).\n"
              "   Optimal target: 6 - 8 umol/L (rule range:6-8)\n") != std::string::npos);
    CHECK(m.text_body.find("2. Ferritin: corrected value 87 ng/mL (earlier 74 ng/mL), collected "
                           "2024-09-21 12:15 UTC: back within the optimal target\n"
                           "   The earlier alert (e-mail <bbbb@labwatch>) is resolved.\n") !=
          std::string::npos);
    CHECK(m.text_body.find("3. Ferritin, collected 2024-09-21 12:15 UTC: the lab cancelled this "
                           "result\n"
                           "   Disregard the earlier alert (e-mail <aaaa@labwatch>).\n\n") !=
          std::string::npos);
  }
  SECTION("minimal PHI") {
    item.recipient.full_phi = false;
    const MailMessage m = compose(item);
    CHECK(m.text_body.find("1. Homocysteine (total): corrected value still below the optimal "
                           "target\n") != std::string::npos);
    CHECK(m.text_body.find("2. Ferritin: corrected value back within the optimal target\n") !=
          std::string::npos);
    CHECK(m.text_body.find("3. Ferritin: the lab cancelled this result\n") != std::string::npos);
    CHECK(m.text_body.find("4.9") == std::string::npos);
    CHECK(m.text_body.find("87") == std::string::npos);
  }
  SECTION("a resolution without a new value says the history changed, not a correction") {
    // A trend judged again after a merge or an unmerge: no value of the result changed.
    resolution.previous_value.reset();
    resolution.rule = "trend:falling:30:365";
    item.notices = {resolution};
    const MailMessage full = compose(item);
    CHECK(full.text_body.find("1. Ferritin 87 ng/mL, collected 2024-09-21 12:15 UTC: no longer "
                              "outside the optimal target (its history changed)\n") !=
          std::string::npos);
    CHECK(full.text_body.find("corrected") == std::string::npos);
    item.recipient.full_phi = false;
    const MailMessage minimal = compose(item);
    CHECK(minimal.text_body.find(
              "1. Ferritin: no longer outside the optimal target (its history changed)\n") !=
          std::string::npos);
    CHECK(minimal.text_body.find("87") == std::string::npos);
  }
  SECTION("the rendered message carries In-Reply-To and References") {
    const auto rendered = render_mime(compose(item));
    REQUIRE(rendered.has_value());
    const std::string headers = headers_of(*rendered);
    CHECK(headers.find("\r\nMessage-ID: <" + std::string(kMessageId) + ">\r\n") !=
          std::string::npos);
    CHECK(headers.find("\r\nIn-Reply-To: <bbbb@labwatch>\r\n") != std::string::npos);
    CHECK(headers.find("\r\nReferences: <aaaa@labwatch> <bbbb@labwatch>\r\n") != std::string::npos);
  }
}

TEST_CASE("compose_alert_mail never lets a name add a header or a recipient",
          "[daemon][mail][alert_mail]") {
  OutboxItem item = three_alerts(true);
  item.family = "Doe\r\nBcc: x@y";
  item.given = "John\nTo: eve@evil.example";
  item.recipient.name = "Dr. Lee\r\nCc: x@y";
  item.report_ref = "R1\r\nBcc: x@y";
  const MailMessage m = compose(item);
  CHECK(m.subject == "labwatch: 3 results outside optimal target (person 12)");
  CHECK(m.to.display_name == "Dr. Lee Cc: x@y");
  CHECK(m.to.address == "ada.lee@clinic.example");

  const auto rendered = render_mime(m);
  REQUIRE(rendered.has_value());
  const std::string headers = headers_of(*rendered);
  CHECK(header_names(headers) ==
        std::vector<std::string>{"Date", "From", "To", "Subject", "Message-ID", "Auto-Submitted",
                                 "X-Labwatch-Outbox", "MIME-Version", "Content-Type"});
  // The body holds the name on one line, and no line of the message starts a header.
  CHECK(m.text_body.find("Patient: Doe Bcc: x@y, John To: eve@evil.example, born 1970-01-01") !=
        std::string::npos);
  CHECK(rendered->find("\r\nBcc:") == std::string::npos);
  CHECK(rendered->find("\r\nCc:") == std::string::npos);
  CHECK(rendered->find("\r\nTo: eve") == std::string::npos);

  SECTION("minimal PHI takes initials from the letters only") {
    item.recipient.full_phi = false;
    item.family = "\r\nBcc: x@y";
    item.given = " \x01john";
    CHECK(compose(item).text_body.find("Patient: J.B. (initials only)\nReport: R1 Bcc: x@y\n") !=
          std::string::npos);
  }
}

TEST_CASE("compose_alert_mail escapes every value it puts into HTML",
          "[daemon][mail][alert_mail]") {
  OutboxItem item = three_alerts(true);
  item.family = "<script>alert(1)</script>";
  item.given = "Jo & \"Ann\" 'x'";
  item.notices[0].raw_range = "<b>16</b>";
  item.notices[0].ref_low.reset();
  item.notices[0].ref_high.reset();
  item.notices[0].range_problem = labwatch::clinical::RangeProblem::not_a_range;
  item.notices[0].unit = "<i>u</i>";
  item.notices[0].analyte = "<unknown analyte>";
  const MailMessage m = compose(item);
  CHECK(m.html_body.find("<script>") == std::string::npos);
  CHECK(m.html_body.find("<b>") == std::string::npos);
  CHECK(m.html_body.find("<i>") == std::string::npos);
  CHECK(m.html_body.find("<unknown") == std::string::npos);
  CHECK(m.html_body.find("Patient: &lt;script&gt;alert(1)&lt;/script&gt;, Jo &amp; &quot;Ann&quot; "
                         "&#39;x&#39;, born 1970-01-01") != std::string::npos);
  CHECK(m.html_body.find("<title>labwatch: 3 results outside optimal target (person 12)</title>") !=
        std::string::npos);
  CHECK(
      m.html_body.find("<li><strong>&lt;unknown analyte&gt; 38 &lt;i&gt;u&lt;/i&gt;, collected") !=
      std::string::npos);
  CHECK(m.html_body.find("Lab range: lab range &lt;b&gt;16&lt;/b&gt; unusable: the printed range "
                         "is not a range") != std::string::npos);
  // The text body is plain text: it shows the characters as they are.
  CHECK(m.text_body.find("Patient: <script>alert(1)</script>, Jo & \"Ann\" 'x'") !=
        std::string::npos);
}

TEST_CASE("compose_alert_mail renders non-ASCII names as RFC 2047 words",
          "[daemon][mail][alert_mail]") {
  OutboxItem item = three_alerts(true);
  item.family = "Müller";
  item.given = "Jürgen";
  item.recipient.name = "Dr. Zoë Ng";
  const MailMessage m = compose(item);
  CHECK(m.text_body.find("Patient: Müller, Jürgen, born 1970-01-01") != std::string::npos);
  const auto rendered = render_mime(m);
  REQUIRE(rendered.has_value());
  const std::string to = header_value(*rendered, "To");
  CHECK(to.starts_with("=?UTF-8?"));
  CHECK(decode_header_value(to) == "Dr. Zoë Ng <ada.lee@clinic.example>");
  // The subject names no patient, so it stays plain ASCII.
  CHECK(header_value(*rendered, "Subject") ==
        "labwatch: 3 results outside optimal target (person 12)");

  item.recipient.full_phi = false;
  item.family = "Ärzteblatt";
  CHECK(compose(item).text_body.find("Patient: J.Ä. (initials only)\n") != std::string::npos);
}

TEST_CASE("alert_subject carries the findings and labwatch's person number, nothing else",
          "[daemon][mail][alert_mail]") {
  OutboxItem item = three_alerts(true);
  CHECK(alert_subject(item) == "labwatch: 3 results outside optimal target (person 12)");
  item.recipient.full_phi = false;
  CHECK(alert_subject(item) == "labwatch: 3 results outside optimal target (person 12)");
  item.notices = {ferritin_alert()};
  item.person_id = 4711;
  CHECK(alert_subject(item) == "labwatch: 1 result outside optimal target (person 4711)");
  item.person_id = 0;  // not a stored person: nothing to refer to
  CHECK(alert_subject(item) == "labwatch: 1 result outside optimal target");
}

TEST_CASE("compose_alert_mail keeps every patient detail out of the headers at both PHI levels",
          "[daemon][mail][alert_mail][privacy]") {
  // Canaries: values that appear nowhere else in the item, so a hit can only be a leak.
  OutboxItem item = three_alerts(true);
  item.family = "Canaryfamily";
  item.given = "Quillon";
  item.patient_key = "QDX|MRN77316";
  item.birth_date = "1911-11-11";
  item.report_ref = "ACC55210";
  item.notices[0].value = 37.77;
  const std::vector<std::string> canaries = {"Canaryfamily", "Quillon",    "Q.C.",    "MRN77316",
                                             "1911",         "ACC55210",   "37.77",   "2024-09-21",
                                             "21 Sep",       "2024-03-01", "Mar 2024"};
  // The trend report travels in the body of a full-PHI mail; it must not pull anything up.
  ReportInput report;
  report.person.person_id = 12;
  report.person.family = item.family;
  report.person.given = item.given;
  report.person.birth_date = item.birth_date;
  report.person.patient_keys = {item.patient_key};

  for (const bool full_phi : {true, false}) {
    CAPTURE(full_phi);
    item.recipient.full_phi = full_phi;
    const MailMessage m =
        compose_alert_mail(item, kFrom, AnalyteCatalogue::builtin(), kSendTime, &report);
    const auto rendered = render_mime(m, "b0undary");
    REQUIRE(rendered.has_value());
    const std::string headers = headers_of(*rendered);
    // Each header line, decoded as a mail reader would show it.
    std::size_t start = 0;
    while (start < headers.size()) {
      const std::size_t end = headers.find("\r\n", start);
      const std::string line = decode_header_value(headers.substr(start, end - start));
      for (const std::string& canary : canaries) {
        CAPTURE(line, canary);
        CHECK(line.find(canary) == std::string::npos);
      }
      start = end + 2;
    }
    // The canaries did reach the body, so the header check above looked for something real.
    CHECK(m.text_body.find(full_phi ? "Canaryfamily" : "Q.C.") != std::string::npos);
    CHECK(m.text_body.find("ACC55210") != std::string::npos);
  }
}

TEST_CASE("patient_initials takes the first letter or digit of each name",
          "[daemon][mail][alert_mail]") {
  CHECK(patient_initials("John", "Doe") == "J.D.");
  CHECK(patient_initials("mary ann", "van der berg") == "M.V.");
  CHECK(patient_initials("", "Doe") == "D.");
  CHECK(patient_initials("  ", "") == "");
  CHECK(patient_initials("'Ewa", "Łukasz") == "E.Ł.");
  CHECK(patient_initials("\xFF\xFEz", "\r\n-") == "Z.");
}

TEST_CASE("single_line removes line breaks, controls and invalid UTF-8",
          "[daemon][mail][alert_mail]") {
  CHECK(single_line("  a\r\n\tb  c ") == "a b c");
  CHECK(single_line(std::string_view("a\0b", 3)) == "a b");
  CHECK(single_line("a\xC2\x85z") == "a z");         // NEL (C1)
  CHECK(single_line("a\xE2\x80\xA8z") == "a z");     // LINE SEPARATOR
  CHECK(single_line("a\xE2\x80\xAEz") == "a z");     // NOLINT(misc-misleading-bidirectional): input
  CHECK(single_line("a\xFFz") == "a\xEF\xBF\xBDz");  // invalid byte -> U+FFFD
  CHECK(single_line("M\xC3\xBCller") == "M\xC3\xBCller");  // valid UTF-8 kept
  CHECK(single_line("") == "");
}

namespace {

using labwatch::clinical::OptimalRule;
using labwatch::clinical::parse_optimal_rule;
using labwatch::clinical::RangeProblem;
using labwatch::daemon::MailWording;

std::map<std::string, OptimalRule, std::less<>> clinic_targets() {
  std::map<std::string, OptimalRule, std::less<>> targets;
  for (const auto& [analyte, text] :
       {std::pair{"ferritin", "ge:50;ideal:gt:70"}, std::pair{"vitamin_b12", "ge:500"},
        std::pair{"rbc_magnesium", "ref_upper_third"}, std::pair{"homocysteine", "range:6-8"}}) {
    auto rule = parse_optimal_rule(text);
    REQUIRE(rule.has_value());
    targets.emplace(analyte, std::move(rule).value());
  }
  return targets;
}

Notice draw(std::string analyte, double value, labwatch::clinical::UnixSeconds at,
            std::string rule) {
  Notice n;
  n.analyte = std::move(analyte);
  n.value = value;
  n.collected_at = at;
  n.rule = std::move(rule);
  return n;
}

}  // namespace

TEST_CASE("compose_alert_mail says the tier, the target and the lab's range for people",
          "[daemon][mail][alert_mail]") {
  const auto targets = clinic_targets();
  OutboxItem item = three_alerts(true);
  // Ferritin 60: above the minimum of 50, below the ideal of 70; the lab's range usable.
  Notice ferritin = draw("ferritin", 60, kCollected, "ideal:gt:70");
  ferritin.unit = "ng/mL";
  ferritin.target_low = 70;
  ferritin.ref_low = 16;
  ferritin.ref_high = 232;
  ferritin.range_problem = RangeProblem::none;
  ferritin.raw_range = "16-232";
  ferritin.raw_unit = "ng/mL";
  ferritin.shown_decimals = 0;
  // B12 converted from pmol/L: shown at the lab's precision, its range in pg/mL beside the lab's.
  Notice b12 = draw("vitamin_b12", 878.27976, kCollected, "ge:500");
  b12.rule = "lab_range";
  b12.unit = "pg/mL";
  b12.ref_low = 200.59476;
  b12.ref_high = 834.90792;
  b12.target_low = b12.ref_low;
  b12.target_high = b12.ref_high;
  b12.range_problem = RangeProblem::none;
  b12.raw_range = "148-616";
  b12.raw_unit = "pmol/L";
  b12.shown_decimals = 0;
  // RBC magnesium with a range that does not fit: the catalogue's, and the mail says why.
  Notice magnesium = draw("rbc_magnesium", 4.86, kCollected, "ref_upper_third");
  magnesium.unit = "mg/dL";
  magnesium.target_low = 4.2 + 2.6 * 2 / 3;
  magnesium.target_high = 6.8;
  magnesium.range_problem = RangeProblem::does_not_fit;
  magnesium.raw_range = "4.2-6.8";
  magnesium.raw_unit = "mmol/L";
  magnesium.shown_decimals = 2;
  // Flagged by the lab inside the printed range.
  Notice flagged = draw("homocysteine", 7.5, kCollected, "lab_flag");
  flagged.unit = "umol/L";
  flagged.flags = "H";
  flagged.ref_high = 15;
  flagged.range_problem = RangeProblem::none;
  flagged.raw_range = "<15";
  flagged.raw_unit = "umol/L";
  flagged.shown_decimals = 1;
  item.notices = {ferritin, b12, magnesium, flagged};

  const MailMessage m = compose_alert_mail(item, kFrom, AnalyteCatalogue::builtin(), kSendTime,
                                           nullptr, MailWording{&targets, "Europe/Berlin"});
  CAPTURE(m.text_body);
  const auto has = [&](std::string_view text) {
    INFO(text);
    CHECK(m.text_body.find(text) != std::string::npos);
  };
  has("1. Ferritin 60 ng/mL, collected 2024-09-21 14:15 CEST: above the minimum, below the ideal "
      "of 70\n"
      "   Optimal target: >= 50 ng/mL, ideally > 70 (rule ideal:gt:70)\n"
      "   Lab range: 16-232 ng/mL\n");
  has("2. Vitamin B12 (cobalamin) 878 pg/mL, collected 2024-09-21 14:15 CEST: outside the lab's "
      "range 201-835 pg/mL\n"
      "   Optimal target: >= 500 pg/mL (rule lab_range)\n"
      "   Lab range: 201-835 pg/mL (lab: 148-616 pmol/L)\n");
  has("3. RBC magnesium 4.86 mg/dL, collected 2024-09-21 14:15 CEST: below the upper third of the "
      "reference range (>= 5.933 mg/dL)\n"
      "   Optimal target: upper third of the catalogue's range: >= 5.933 mg/dL (rule "
      "ref_upper_third)\n"
      "   Lab range: 4.20-6.80 mg/dL (catalogue range; lab range 4.2-6.8 mmol/L unusable: the "
      "printed range's magnitude does not fit the value's unit)\n");
  has("4. Homocysteine (total) 7.5 umol/L, collected 2024-09-21 14:15 CEST: flagged high by the "
      "lab\n");
  CHECK(m.text_body.find("878.27976") == std::string::npos);
  CHECK(m.html_body.find("878.27976") == std::string::npos);
  CHECK(m.text_body.find("UTC") == std::string::npos);
}

TEST_CASE("compose_alert_mail groups notices by analyte in collection order and tells draws apart",
          "[daemon][mail][alert_mail]") {
  constexpr labwatch::clinical::UnixSeconds kDay = 86400;
  OutboxItem item = three_alerts(false);
  Notice h3 = draw("homocysteine", 9.9, kCollected, "range:6-8");
  Notice h1 = draw("homocysteine", 9.1, kCollected - 2 * kDay, "range:6-8");
  Notice f = draw("ferritin", 30, kCollected - kDay, "ge:50");
  Notice h2 = draw("homocysteine", 9.5, kCollected - kDay, "range:6-8");
  for (Notice* n : {&h3, &h1, &h2}) {
    n->unit = "umol/L";
    n->target_low = 6;
    n->target_high = 8;
  }
  f.unit = "ng/mL";
  f.target_low = 50;
  item.notices = {h3, f, h1, h2};  // queued out of order, the ferritin between
  const auto targets = clinic_targets();
  const MailWording wording{&targets, "UTC"};

  SECTION("minimal PHI: each draw by its position, no dates") {
    const MailMessage m =
        compose_alert_mail(item, kFrom, AnalyteCatalogue::builtin(), kSendTime, nullptr, wording);
    CAPTURE(m.text_body);
    const std::size_t first = m.text_body.find(
        "1. Homocysteine (total) (earliest of 3 draws): "
        "above the optimal range 6-8\n");
    const std::size_t second = m.text_body.find("2. Homocysteine (total) (draw 2 of 3 draws): ");
    const std::size_t third =
        m.text_body.find("3. Homocysteine (total) (most recent of 3 draws): ");
    const std::size_t fourth = m.text_body.find("4. Ferritin: below the minimum of 50\n");
    CHECK(first != std::string::npos);
    CHECK(second > first);
    CHECK(third > second);
    CHECK(fourth > third);
    CHECK(second != std::string::npos);
    CHECK(third != std::string::npos);
    CHECK(fourth != std::string::npos);
    CHECK(m.text_body.find("2024-09") == std::string::npos);
    CHECK(m.text_body.find("Look up report QDX301000001 in labwatch for the details: labwatch "
                           "report --patient \"QDX301000001\" --out report.html\n") !=
          std::string::npos);
  }
  SECTION("full PHI: each draw by its date, in collection order") {
    item.recipient.full_phi = true;
    const MailMessage m =
        compose_alert_mail(item, kFrom, AnalyteCatalogue::builtin(), kSendTime, nullptr, wording);
    CAPTURE(m.text_body);
    const std::size_t first = m.text_body.find(
        "1. Homocysteine (total) 9.1 umol/L, collected "
        "2024-09-19 12:15 UTC: above the optimal range 6-8");
    const std::size_t second = m.text_body.find(
        "2. Homocysteine (total) 9.5 umol/L, collected "
        "2024-09-20 12:15 UTC");
    const std::size_t third = m.text_body.find(
        "3. Homocysteine (total) 9.9 umol/L, collected "
        "2024-09-21 12:15 UTC");
    CHECK(first != std::string::npos);
    CHECK(second > first);
    CHECK(third > second);
    CHECK(second != std::string::npos);
    CHECK(third != std::string::npos);
    CHECK(m.text_body.find("draws") == std::string::npos);
  }
}

TEST_CASE("compose_alert_mail names the values a trend alert rests on, dated only at full PHI",
          "[daemon][mail][alert_mail][trend]") {
  Notice n = ferritin_alert();
  n.value = 60;
  n.rule = "trend:falling:30:365";
  n.target_low = 70;
  n.evidence = {{100, std::nullopt, std::nullopt, kEarlier},
                {60, std::nullopt, std::nullopt, kCollected}};
  OutboxItem item = three_alerts(true);
  item.notices = {n};
  const std::string full = compose(item).text_body;
  INFO(full);
  CHECK(full.find("1. Ferritin 60 ng/mL, collected 2024-09-21 12:15 UTC: fell 40 % within 365 "
                  "days: 100 ng/mL (2024-03-01) to 60 ng/mL (2024-09-21)\n") != std::string::npos);

  item.recipient.full_phi = false;
  const std::string minimal = compose(item).text_body;
  INFO(minimal);
  CHECK(minimal.find("1. Ferritin: fell by at least 30 % within 365 days\n"
                     "   Optimal target: rule trend:falling:30:365\n") != std::string::npos);
  CHECK(minimal.find("70") == std::string::npos);  // the threshold is 70 % of a value
  CHECK(minimal.find("100 ng/mL") == std::string::npos);
  CHECK(minimal.find("2024-03-01") == std::string::npos);
}
