// SPDX-License-Identifier: Apache-2.0
// The trend report in the alert mail: loaded from a real SQLite store, embedded for full-PHI
// recipients only, and switched by <mail attach-report>.
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "config/config_loader.hpp"
#include "mail/alert_mail.hpp"
#include "mail/mail_message.hpp"
#include "mail/outbox_dispatcher.hpp"
#include "mail/smtp_mailer.hpp"
#include "present/trend_report.hpp"
#include "storage/store.hpp"
#include "storage/store_fixture.hpp"
#include "support/smtp_server.hpp"

namespace {

using namespace std::chrono_literals;
using labwatch::clinical::UnixSeconds;
using labwatch::daemon::compose_alert_mail;
using labwatch::daemon::DispatcherOptions;
using labwatch::daemon::load_report_input;
using labwatch::daemon::MailMessage;
using labwatch::daemon::OutboxDispatcher;
using labwatch::daemon::ReportInput;
using labwatch::daemon::SmtpMailer;
using labwatch::storage::AlertPolicy;
using labwatch::storage::OutboxItem;
using labwatch::storage::Recipient;
using labwatch::storage::testing::Fixture;
using labwatch::storage::testing::kT0;
using labwatch::test::body_part;
using labwatch::test::header_value;
using labwatch::test::ReceivedMail;
using labwatch::test::SmtpTestServer;
namespace fixture = labwatch::storage::testing;

constexpr UnixSeconds kDay = 86'400;
constexpr const char* kFullEmail = "full@clinic.example";
constexpr const char* kMinimalEmail = "minimal@clinic.example";
constexpr const char* kChart = "<svg class=\"chart\"";

std::size_t count(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos;
       at = text.find(needle, at + needle.size())) {
    ++n;
  }
  return n;
}

// The data-analyte of every chart in `html`, in document order.
std::vector<std::string> chart_analytes(const std::string& html) {
  std::vector<std::string> keys;
  const std::string attribute = "data-analyte=\"";
  for (std::size_t at = html.find(kChart); at != std::string::npos;
       at = html.find(kChart, at + 1)) {
    const std::size_t value = html.find(attribute, at) + attribute.size();
    keys.push_back(html.substr(value, html.find('"', value) - value));
  }
  return keys;
}

// A store with two people, and alerts for both queued to a full-PHI and a minimal-PHI recipient.
// Jane has ferritin (two draws), homocysteine and vitamin D; John has zinc only.
class Clinic {
 public:
  Clinic() {
    targets_.by_analyte = config.targets;
    targets_.catalogue = &config.catalogue;
    targets_.routing.fallback = {Recipient{"dr-full", kFullEmail, "Dr. Full", true},
                                 Recipient{"dr-min", kMinimalEmail, "Dr. Min", false}};
    targets_.routing.collect_wait_seconds = 0;
    targets_.mail_policy.max_age_seconds = std::int64_t{36'500} * 86'400;  // results of 2024-25
    const auto jane = fixture::person("QDX", "Q100", "Canary & <Sons>", "Jane", "1980-02-03", 'F');
    const auto john = fixture::person("QDX", "Q200", "Other", "John", "1975-05-06", 'M');
    const auto at = [](std::string analyte, double value, std::string unit, std::string order,
                       UnixSeconds when) {
      return fixture::result(std::move(analyte), value, std::move(unit), std::move(order),
                             labwatch::clinical::ResultStatus::final, when);
    };
    fixture::ingest(*db_.store, "a.hl7",
                    {fixture::report("QDX", "C1", kT0 - 180 * kDay, jane,
                                     {at("ferritin", 45, "ng/mL", "O1", kT0 - 180 * kDay)})},
                    targets_);
    fixture::ingest(*db_.store, "b.hl7",
                    {fixture::report("QDX", "C2", kT0, jane,
                                     {at("ferritin", 38, "ng/mL", "O2", kT0),
                                      at("homocysteine", 9.7, "umol/L", "O3", kT0),
                                      at("vitamin_d_25oh", 50, "ng/mL", "O4", kT0)})},
                    targets_);
    fixture::ingest(*db_.store, "c.hl7",
                    {fixture::report("QDX", "C3", kT0, john, {at("zinc", 40, "ug/dL", "O5", kT0)})},
                    targets_);
    jane_ = db_.store->find_person("QDX|Q100").value();
    john_ = db_.store->find_person("QDX|Q200").value();
  }

  labwatch::storage::Store& store() { return *db_.store; }
  [[nodiscard]] std::int64_t jane() const { return jane_; }
  [[nodiscard]] std::int64_t john() const { return john_; }

  // Every queued item, claimed as the dispatcher would.
  std::vector<OutboxItem> claim_all() {
    return db_.store->claim_due_mail(fixture::from_now(3600), 100);
  }

  labwatch::config::Config config = labwatch::config::default_config();

 private:
  Fixture db_;
  AlertPolicy targets_;
  std::int64_t jane_ = 0;
  std::int64_t john_ = 0;
};

}  // namespace

TEST_CASE("load_report_input gathers one person's current results with the configured targets",
          "[daemon][report][mail]") {
  Clinic clinic;
  clinic.config.targets.at("ferritin") =
      labwatch::clinical::parse_optimal_rule("ge:70").value();  // a site's own target
  const std::optional<ReportInput> input =
      load_report_input(clinic.store(), clinic.config, clinic.jane(), kT0 + kDay);
  REQUIRE(input.has_value());
  CHECK(input->person.person_id == clinic.jane());
  CHECK(input->person.family == "Canary & <Sons>");
  CHECK(input->person.patient_keys == std::vector<std::string>{"QDX|Q100"});
  CHECK(input->generated_at == kT0 + kDay);
  REQUIRE(input->series.size() == 3);  // catalogue order
  CHECK(input->series[0].analyte->key == "ferritin");
  CHECK(input->series[1].analyte->key == "homocysteine");
  CHECK(input->series[2].analyte->key == "vitamin_d_25oh");
  REQUIRE(input->series[0].points.size() == 2);  // oldest first
  CHECK(input->series[0].points[0].value == 45);
  CHECK(input->series[0].points[1].value == 38);
  REQUIRE(input->series[0].rule != nullptr);
  CHECK(input->series[0].rule->text == "ge:70");
  CHECK(input->series[1].rule->text == "range:6-8");

  CHECK_FALSE(load_report_input(clinic.store(), clinic.config, 9999, kT0).has_value());
}

TEST_CASE("compose_alert_mail embeds the trend report for a full-PHI recipient only",
          "[daemon][mail][alert_mail][report]") {
  Clinic clinic;
  const std::vector<OutboxItem> items = clinic.claim_all();
  std::map<std::pair<std::int64_t, bool>, int> seen;  // (person, full PHI) -> items composed
  for (const OutboxItem& item : items) {
    CAPTURE(item.person_id, item.recipient.email);
    const std::optional<ReportInput> report =
        load_report_input(clinic.store(), clinic.config, item.person_id, kT0 + kDay);
    REQUIRE(report.has_value());
    const MailMessage with = compose_alert_mail(item, "labwatch@clinic.example",
                                                clinic.config.catalogue, kT0 + kDay, &*report);
    const MailMessage without =
        compose_alert_mail(item, "labwatch@clinic.example", clinic.config.catalogue, kT0 + kDay);
    ++seen[{item.person_id, item.recipient.full_phi}];
    // Without a report nothing changes at either level.
    CHECK(count(without.html_body, kChart) == 0);
    CHECK(without.html_body.find("<style>") == std::string::npos);
    if (!item.recipient.full_phi) {
      CHECK(with.html_body == without.html_body);
      CHECK(with.text_body == without.text_body);
      CHECK(with.html_body.find("Canary") == std::string::npos);
      continue;
    }
    const std::vector<std::string> expected =
        item.person_id == clinic.jane()
            ? std::vector<std::string>{"ferritin", "homocysteine", "vitamin_d_25oh"}
            : std::vector<std::string>{"zinc"};
    CHECK(chart_analytes(with.html_body) == expected);
    CHECK(count(with.html_body, kChart) == expected.size());
    // One document: the report's style in the head, its content after the notices.
    const std::string& html = with.html_body;
    CHECK(count(html, "<!DOCTYPE html>") == 1);
    CHECK(count(html, "<html") == 1);
    CHECK(count(html, "<head>") == 1);
    CHECK(count(html, "<body>") == 1);
    CHECK(count(html, "</body></html>\n") == 1);
    CHECK(html.ends_with("</section>\n</body></html>\n"));
    CHECK(html.find("<style>") < html.find("</head>"));
    CHECK(html.find("</ol>") < html.find("<section class=\"trend-report\">"));
    CHECK(html.find("<section class=\"trend-report\">") < html.find(kChart));
    if (item.person_id == clinic.jane()) {
      CHECK(html.find("<h1>Canary &amp; &lt;Sons&gt;, Jane</h1>") != std::string::npos);
      CHECK(html.find("<Sons>") == std::string::npos);
    }
    CHECK(with.text_body.find("The HTML version of this e-mail also holds the patient's trend "
                              "report.\n") != std::string::npos);
    CHECK(with.subject == without.subject);
    // It still renders as a valid message, and the HTML part reads back whole.
    const auto rendered = labwatch::daemon::render_mime(with);
    REQUIRE(rendered.has_value());
    CHECK(body_part(*rendered, "html") == with.html_body);
  }
  // Both people reached both recipients, so each branch above ran.
  CHECK(seen.size() == 4);
}

TEST_CASE("OutboxDispatcher attaches the report only when attach-report is on and only at full PHI",
          "[daemon][mail][dispatcher][report]") {
  const SmtpTestServer server;
  Clinic clinic;
  clinic.config.mail.smtp_url = server.url();
  clinic.config.mail.from = "labwatch@clinic.example";
  clinic.config.mail.timeout = 10s;
  bool attach = false;
  bool given_targets = true;
  SECTION("on") { attach = true; }
  SECTION("off") { attach = false; }
  SECTION("on, but a dispatcher made without the targets") {
    attach = true;
    given_targets = false;
  }
  clinic.config.mail.attach_report = attach;
  const std::size_t queued = clinic.store().outbox(false).size();
  REQUIRE(queued >= 4);

  boost::asio::io_context io;
  auto mailer = SmtpMailer::create(clinic.config.mail);
  REQUIRE(mailer.has_value());
  auto smtp = std::make_unique<SmtpMailer>(std::move(mailer).value());
  DispatcherOptions options;
  options.clock = [] { return fixture::from_now(3600); };
  options.jitter = 0;
  std::unique_ptr<OutboxDispatcher> dispatcher =
      given_targets ? std::make_unique<OutboxDispatcher>(io, clinic.store(), clinic.store(),
                                                         std::move(smtp), clinic.config, options)
                    : std::make_unique<OutboxDispatcher>(io, clinic.store(), clinic.store(),
                                                         std::move(smtp), clinic.config.mail,
                                                         clinic.config.catalogue, options);
  dispatcher->start();
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (dispatcher->counts().sent < queued && std::chrono::steady_clock::now() < deadline) {
    if (io.stopped()) {
      io.restart();
    }
    io.run_for(10ms);
  }
  REQUIRE(dispatcher->counts().sent == queued);
  dispatcher.reset();

  const std::vector<ReceivedMail> mails = server.received();
  REQUIRE(mails.size() == queued);
  const std::string jane_subject = "(person " + std::to_string(clinic.jane()) + ")";
  for (const ReceivedMail& mail : mails) {
    REQUIRE(mail.rcpt_to.size() == 1);
    const bool full = mail.rcpt_to[0] == kFullEmail;
    const bool about_jane = header_value(mail.data, "Subject").ends_with(jane_subject);
    const std::string html = body_part(mail.data, "html");
    CAPTURE(mail.rcpt_to[0], about_jane);
    REQUIRE_FALSE(html.empty());
    const std::size_t expected = !attach || !given_targets || !full ? 0 : about_jane ? 3 : 1;
    CHECK(count(html, kChart) == expected);
    if (!full) {
      CHECK(mail.data.find("Canary") == std::string::npos);
    }
  }
}
