// SPDX-License-Identifier: Apache-2.0
// Alert mail end to end: the real daemon ingests the corpus and mails a real SMTP server.
#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "clinical/analyte_catalogue.hpp"
#include "storage/store.hpp"
#include "support/corpus_sources.hpp"
#include "support/csv_records.hpp"
#include "support/daemon_harness.hpp"
#include "support/smtp_server.hpp"

namespace {

using namespace labwatch::test;
using labwatch::clinical::AlertStatus;
using labwatch::storage::OutboxRow;
using labwatch::storage::OutboxState;

constexpr auto kReadyTimeout = 30s;
constexpr auto kDrainTimeout = 120s;
constexpr const char* kProviderDoctor = "ada.lee@clinic.example";    // OBR-16 1234567890
constexpr const char* kFacilityDoctor = "c.okafor@clinic.example";   // WCE, LMB and NLS exports
constexpr const char* kDefaultRecipient = "results@clinic.example";  // the rest: PPE exports
constexpr std::string_view kDefaultRouted = "d4_ppe";  // the files whose alerts go to the default

fs::path corpus_dir() { return fs::path(LABWATCH_TEST_DATA_DIR) / "corpus"; }

std::vector<std::string> corpus_names() {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(corpus_dir())) {
    const std::string name = entry.path().filename().string();
    if (name != "README.md" && name != "expected.csv" && name != "expected_alerts.csv" &&
        name != "facilities.csv") {
      names.push_back(name);
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

// The whole config: the corpus senders (as facilities.csv says), mail to `port`, and who gets what.
// `alerts` is the <alerts> element: by default every alert of the corpus (draws of 2025 and 2026)
// is mailed whatever its age, as the delivery checks below expect.
std::string site_config(int port,
                        const std::string& alerts =
                            "  <alerts mail-max-age-days=\"36500\" mail-preliminary=\"true\"/>\n") {
  std::string xml =
      "<labwatch>\n"
      "  <paths inbox=\"inbox\" processed=\"processed\" failed=\"failed\" "
      "database=\"labwatch.db\"/>\n"
      "  <intake settle-ms=\"100\"/>\n"
      "  <sources>\n";
  xml += labwatch::test::corpus_source_lines(read_file(corpus_dir() / "facilities.csv"));
  xml += "  </sources>\n";
  xml += R"(  <mail smtp="smtp://127.0.0.1:)" + std::to_string(port) +
         R"(" from="labwatch@clinic.example" default-recipient=")" + kDefaultRecipient +
         R"(" collect-wait-seconds="1" retry-min-seconds="1" retry-max-seconds="2")"
         R"( timeout-seconds="10" timezone="UTC"/>)"
         "\n" +
         alerts + "  <practitioners>\n" +
         R"(    <practitioner id="dr-lee" name="Dr. Ada Lee" email=")" + kProviderDoctor +
         R"(" phi="full" providers="1234567890"/>)"
         "\n" +
         R"(    <practitioner id="dr-okafor" name="Dr. Chidi Okafor" email=")" + kFacilityDoctor +
         R"(" phi="full" facilities="WCE;LMB;NLS"/>)"
         "\n  </practitioners>\n</labwatch>\n";
  return xml;
}

// One notice as a full-PHI mail states it.
struct MailedNotice {
  std::string kind;  // alert, correction, resolution, retraction
  std::string analyte;
  std::string value;         // without comparator
  std::string collected_at;  // "2024-09-21T12:15:00Z"
  std::string rule;
};

struct ParsedMail {
  std::string recipient;
  std::string message_id;
  std::string patient_key;  // empty at minimal PHI
  std::string report;
  std::vector<MailedNotice> notices;
};

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    lines.push_back(line);
  }
  return lines;
}

// Reads the text part of an alert mail back into notices (the format alert_mail_test pins down).
ParsedMail parse_mail(const ReceivedMail& mail) {
  const auto& catalogue = labwatch::clinical::AnalyteCatalogue::builtin();
  ParsedMail out;
  out.recipient = mail.rcpt_to.empty() ? std::string() : mail.rcpt_to.front();
  out.message_id = header_value(mail.data, "Message-ID");
  for (const std::string& line : lines_of(body_part(mail.data, "plain"))) {
    if (line.starts_with("Patient: ")) {
      const std::size_t open = line.rfind('(');
      if (!line.ends_with("(initials only)") && open != std::string::npos) {
        out.patient_key = line.substr(open + 1, line.size() - open - 2);
      }
      continue;
    }
    if (line.starts_with("Report: ")) {
      out.report = line.substr(8);
      continue;
    }
    if (line.starts_with("   Optimal target: ") && !out.notices.empty()) {
      const std::size_t rule = line.rfind("rule ");
      std::string text = line.substr(rule + 5);
      if (!text.empty() && text.back() == ')') {
        text.pop_back();
      }
      out.notices.back().rule = text;
      continue;
    }
    const std::size_t dot = line.find(". ");
    if (line.empty() || line[0] < '1' || line[0] > '9' || dot == std::string::npos) {
      continue;
    }
    const std::string headline = line.substr(dot + 2);
    MailedNotice notice;
    std::size_t best = 0;
    for (const auto& analyte : catalogue.analytes()) {
      const std::string& name = analyte.display_name;
      if (name.size() > best && headline.starts_with(name) && headline.size() > name.size() &&
          std::string_view(" :,").find(headline[name.size()]) != std::string_view::npos) {
        best = name.size();
        notice.analyte = analyte.key;
      }
    }
    std::string rest = headline.substr(best);
    std::string value;
    if (rest.ends_with("the lab cancelled this result")) {
      notice.kind = "retraction";
    } else if (rest.starts_with(": corrected value ")) {
      notice.kind = rest.find("back within the optimal target") != std::string::npos ? "resolution"
                                                                                     : "correction";
      value = rest.substr(18, rest.find(' ', 18) - 18);
    } else {
      notice.kind = "alert";
      value = rest.substr(1, rest.find(' ', 1) - 1);
    }
    notice.value = value.substr(std::min(value.find_first_not_of("<>="), value.size()));
    const std::size_t at = rest.find(", collected ");
    if (at != std::string::npos) {
      const std::string when = rest.substr(at + 12, 16);  // "2024-09-21 12:15"
      notice.collected_at = when.substr(0, 10) + "T" + when.substr(11, 5) + ":00Z";
    }
    out.notices.push_back(std::move(notice));
  }
  return out;
}

// True when `mailed` ("35", "6.0") is `expected` (35.256) as the mail shows it: rounded to the
// decimals the mail printed, the lab's precision.
bool shown_as(const std::string& mailed, const std::string& expected) {
  const std::size_t dot = mailed.find('.');
  const int decimals = dot == std::string::npos ? 0 : static_cast<int>(mailed.size() - dot - 1);
  const double x = std::strtod(mailed.c_str(), nullptr);
  const double y = std::strtod(expected.c_str(), nullptr);
  return std::fabs(x - y) <= 0.5 * std::pow(10.0, -decimals) + 1e-9 * std::fabs(y);
}

// An expected alert with the file and patient key of the result it is about.
struct ExpectedAlert {
  CsvRecord row;  // person_ref, analyte, collected_at, value, rule
  std::string source_file;
  // Every key of the person: one mail tells about one person, whichever lab's report came first.
  std::set<std::string> patient_keys;
  [[nodiscard]] std::string name() const {
    return row.at("person_ref") + " " + row.at("analyte") + " " + row.at("collected_at") + " " +
           row.at("rule");
  }
};

std::vector<ExpectedAlert> expected_alerts() {
  std::map<std::string, std::string> file_of;  // person analyte time -> file of the stored result
  std::map<std::string, std::set<std::string>> keys_of;  // person -> patient keys
  for (const CsvRecord& row : read_csv_records(read_file(corpus_dir() / "expected.csv"))) {
    if (row.at("expected_fate") == "stored") {
      file_of[row.at("person_ref") + " " + row.at("analyte") + " " + row.at("collected_at")] =
          row.at("source_file");
      keys_of[row.at("person_ref")].insert(row.at("patient_key"));
    }
  }
  std::vector<ExpectedAlert> out;
  for (const CsvRecord& row : read_csv_records(read_file(corpus_dir() / "expected_alerts.csv"))) {
    out.push_back(
        {row,
         file_of.at(row.at("person_ref") + " " + row.at("analyte") + " " + row.at("collected_at")),
         keys_of.at(row.at("person_ref"))});
  }
  return out;
}

// Checks that each expected alert is stated, with its value, by exactly one mail's alert or
// correction notice. Alerts routed to the default recipient (minimal PHI: no values, dates or
// keys in the mail) are checked by count per analyte and by their report names instead.
void check_every_alert_mailed_once(const std::vector<ParsedMail>& mails) {
  std::map<std::string, int> minimal_expected;  // analyte -> alerts
  for (const ExpectedAlert& expected : expected_alerts()) {
    if (expected.source_file.starts_with(kDefaultRouted)) {
      ++minimal_expected[expected.row.at("analyte")];
      continue;
    }
    std::set<std::string> ids;
    for (const ParsedMail& mail : mails) {
      if (!expected.patient_keys.contains(mail.patient_key)) {
        continue;
      }
      for (const MailedNotice& n : mail.notices) {
        if ((n.kind == "alert" || n.kind == "correction") &&
            n.analyte == expected.row.at("analyte") &&
            n.collected_at == expected.row.at("collected_at") &&
            n.rule == expected.row.at("rule") && shown_as(n.value, expected.row.at("value"))) {
          ids.insert(mail.message_id);
        }
      }
    }
    CAPTURE(expected.name());
    CHECK(ids.size() == 1);
  }
  std::map<std::string, int> minimal_mailed;
  std::set<std::string> ids;
  for (const ParsedMail& mail : mails) {
    if (mail.recipient != kDefaultRecipient || !ids.insert(mail.message_id).second) {
      continue;
    }
    CAPTURE(mail.report);
    CHECK(mail.patient_key.empty());
    CHECK(mail.report.starts_with(kDefaultRouted));
    for (const MailedNotice& n : mail.notices) {
      CHECK(n.kind == "alert");
      ++minimal_mailed[n.analyte];
    }
  }
  CHECK(minimal_mailed == minimal_expected);
}

// A corpus site: a layout whose config sends mail to the test server on `port`.
class MailSite {
 public:
  explicit MailSite(int port) : layout_(TempDir::default_base()) {
    write_file(layout_.config(), site_config(port));
  }
  // A site whose <alerts> element is `alerts` ("" for the defaults).
  MailSite(int port, const std::string& alerts) : layout_(TempDir::default_base()) {
    write_file(layout_.config(), site_config(port, alerts));
  }

  [[nodiscard]] const Layout& layout() const { return layout_; }
  // Points the config at another relay (applied on SIGHUP).
  void use_relay(int port) const { write_file(layout_.config(), site_config(port)); }

  std::unique_ptr<Process> start(NotifySocket& notify) const {
    auto daemon = layout_.start({notify.env()});
    REQUIRE(notify.wait_for("READY=1", kReadyTimeout));
    return daemon;
  }

  void drop_corpus() const {
    for (const std::string& name : corpus_names()) {
      layout_.drop(name, read_file(corpus_dir() / name));
    }
  }

  // The outbox as the daemon left it (read through a second connection).
  [[nodiscard]] std::vector<OutboxRow> outbox() const {
    labwatch::storage::StoreOptions options;
    options.create = false;
    const auto store =
        labwatch::storage::open_store((layout_.root() / "labwatch.db").string(), options);
    return store->outbox(true);
  }

  // The active alerts as the daemon left them.
  [[nodiscard]] std::vector<labwatch::storage::AlertRow> alerts() const {
    labwatch::storage::StoreOptions options;
    options.create = false;
    const auto store =
        labwatch::storage::open_store((layout_.root() / "labwatch.db").string(), options);
    return store->alerts(false);
  }

  // Waits until the inbox is empty and every queued mail is sent (or failed).
  bool drained(std::chrono::milliseconds timeout = kDrainTimeout) const {
    return wait_until(
        [&] {
          if (count_entries(layout_.inbox()) != 0) {
            return false;
          }
          const auto rows = outbox();
          return !rows.empty() && std::all_of(rows.begin(), rows.end(), [](const OutboxRow& r) {
            return r.state == OutboxState::sent || r.state == OutboxState::failed;
          });
        },
        timeout, 200ms);
  }

 private:
  Layout layout_;
};

}  // namespace

TEST_CASE("labwatch run mails every corpus alert once, grouped per patient report and recipient",
          "[daemon][mail][delivery][slow]") {
  const SmtpTestServer server;
  const MailSite site(server.port());
  NotifySocket notify(site.layout().notify_path());
  auto daemon = site.start(notify);
  site.drop_corpus();
  if (!site.drained()) {
    FAIL("the outbox did not drain; daemon log:\n" << site.layout().daemon_log());
  }

  const std::vector<OutboxRow> rows = site.outbox();
  std::vector<ReceivedMail> received = server.received();
  CHECK(std::all_of(rows.begin(), rows.end(),
                    [](const OutboxRow& r) { return r.state == OutboxState::sent; }));
  REQUIRE(received.size() == rows.size());

  // One mail per outbox item: its Message-ID, its recipient, exactly once.
  std::map<std::string, std::string> recipient_of;
  for (const OutboxRow& row : rows) {
    recipient_of["<" + row.message_id + ">"] = row.email;
  }
  std::vector<ParsedMail> mails;
  std::set<std::string> seen;
  std::map<std::string, int> per_recipient;
  for (const ReceivedMail& mail : received) {
    mails.push_back(parse_mail(mail));
    const ParsedMail& parsed = mails.back();
    CAPTURE(parsed.message_id);
    CHECK(seen.insert(parsed.message_id).second);
    REQUIRE(recipient_of.contains(parsed.message_id));
    CHECK(mail.rcpt_to == std::vector<std::string>{recipient_of.at(parsed.message_id)});
    const std::string to = header_value(mail.data, "To");
    CHECK((to == parsed.recipient || to.ends_with("<" + parsed.recipient + ">")));
    CHECK(!parsed.notices.empty());
    ++per_recipient[parsed.recipient];
  }
  CHECK(per_recipient[kProviderDoctor] > 0);
  CHECK(per_recipient[kFacilityDoctor] > 0);
  CHECK(per_recipient[kDefaultRecipient] > 0);

  check_every_alert_mailed_once(mails);

  // The same files again (under their own names, now gone from the inbox) change nothing.
  site.drop_corpus();
  REQUIRE(wait_until([&] { return count_entries(site.layout().inbox()) == 0; }, 60s));
  std::this_thread::sleep_for(3s);  // past the collect wait and a retry
  CHECK(server.received().size() == received.size());
  CHECK(site.outbox().size() == rows.size());

  daemon->signal(SIGTERM);
  CHECK(daemon->wait_exit(10s) == 0);
}

TEST_CASE("labwatch run delivers every alert at least once across a SIGKILL during a slow send",
          "[daemon][mail][delivery][slow]") {
  SmtpServerOptions options;
  options.mode = "slow-data";
  options.delay_seconds = 4;
  const SmtpTestServer server(options);
  const MailSite site(server.port());
  {
    NotifySocket notify(site.layout().notify_path());
    auto daemon = site.start(notify);
    site.drop_corpus();
    // The relay has a message and is slow to confirm it: the daemon dies waiting for the reply.
    REQUIRE(wait_until([&] { return !server.received().empty(); }, 60s, 50ms));
    daemon->signal(SIGKILL);
    REQUIRE(daemon->wait_exit(5s) == 128 + SIGKILL);
  }
  const std::vector<OutboxRow> before = site.outbox();
  CHECK(std::any_of(before.begin(), before.end(),
                    [](const OutboxRow& r) { return r.state == OutboxState::sending; }));

  server.set_mode("ok");
  NotifySocket notify(site.layout().notify_path().string() + "2");
  auto daemon = site.start(notify);
  if (!site.drained()) {
    FAIL("the outbox did not drain; daemon log:\n" << site.layout().daemon_log());
  }
  const std::vector<OutboxRow> rows = site.outbox();
  CHECK(std::all_of(rows.begin(), rows.end(),
                    [](const OutboxRow& r) { return r.state == OutboxState::sent; }));

  std::vector<ParsedMail> mails;
  std::set<std::string> ids;
  for (const ReceivedMail& mail : server.received()) {
    mails.push_back(parse_mail(mail));
    ids.insert(mails.back().message_id);
  }
  // The mail in flight at the kill arrived twice (the relay had it when the daemon died), both
  // times under its one Message-ID: one id per outbox item.
  CHECK(ids.size() == rows.size());
  CHECK(mails.size() > rows.size());
  check_every_alert_mailed_once(mails);
  daemon->signal(SIGTERM);
  CHECK(daemon->wait_exit(10s) == 0);
}

TEST_CASE("labwatch run stops within 5 s on SIGTERM while the relay delays its reply",
          "[daemon][mail][delivery]") {
  SmtpServerOptions options;
  options.mode = "slow-data";
  options.delay_seconds = 20;
  const SmtpTestServer server(options);
  const MailSite site(server.port());
  NotifySocket notify(site.layout().notify_path());
  auto daemon = site.start(notify);
  site.layout().drop("d1_wce_01.csv", read_file(corpus_dir() / "d1_wce_01.csv"));
  REQUIRE(wait_until([&] { return !server.received().empty(); }, 30s, 50ms));

  const auto term = Clock::now();
  daemon->signal(SIGTERM);
  REQUIRE(daemon->wait_exit(5s) == 0);
  CHECK(Clock::now() - term < 5s);
  // The unconfirmed item stays claimed, and goes out again, with its Message-ID, after a start.
  std::vector<OutboxRow> rows = site.outbox();
  const auto in_flight = std::find_if(
      rows.begin(), rows.end(), [](const OutboxRow& r) { return r.state == OutboxState::sending; });
  REQUIRE(in_flight != rows.end());
  const std::string resent_id = "<" + in_flight->message_id + ">";
  server.set_mode("ok");
  NotifySocket again(site.layout().notify_path().string() + "2");
  auto restarted = site.start(again);
  REQUIRE(site.drained());
  rows = site.outbox();
  CHECK(std::all_of(rows.begin(), rows.end(),
                    [](const OutboxRow& r) { return r.state == OutboxState::sent; }));
  const std::vector<ReceivedMail> mails = server.received();
  CHECK(mails.size() == rows.size() + 1);
  CHECK(std::count_if(mails.begin(), mails.end(), [&](const ReceivedMail& m) {
          return header_value(m.data, "Message-ID") == resent_id;
        }) == 2);
  restarted->signal(SIGTERM);
  CHECK(restarted->wait_exit(10s) == 0);
}

TEST_CASE("labwatch run sends through the relay of a config reloaded by SIGHUP",
          "[daemon][mail][delivery]") {
  const SmtpTestServer first;
  const SmtpTestServer second;
  const MailSite site(first.port());
  NotifySocket notify(site.layout().notify_path());
  auto daemon = site.start(notify);
  site.layout().drop("d1_wce_01.csv", read_file(corpus_dir() / "d1_wce_01.csv"));
  REQUIRE(site.drained());
  const std::size_t before = first.received().size();
  CHECK(before > 0);

  site.use_relay(second.port());
  daemon->signal(SIGHUP);
  REQUIRE(notify.wait_for("RELOADING=1", 5s));
  REQUIRE(notify.wait_for("READY=1", 5s));
  site.layout().drop("d1_wce_02.csv", read_file(corpus_dir() / "d1_wce_02.csv"));
  REQUIRE(site.drained());
  CHECK(first.received().size() == before);
  CHECK(second.received().size() == site.outbox().size() - before);
  CHECK(!second.received().empty());
  daemon->signal(SIGTERM);
  CHECK(daemon->wait_exit(10s) == 0);
}

namespace {

// A WCE export of one ferritin of 20 ng/mL (below the minimum of 50) drawn `hours_ago` hours before
// now, for a patient the corpus does not know.
std::string fresh_ferritin_csv(int hours_ago) {
  const auto drawn = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now() -
                                                              std::chrono::hours(hours_ago));
  const std::time_t t = std::chrono::system_clock::to_time_t(drawn);
  std::tm utc{};
  ::gmtime_r(&t, &utc);
  std::array<char, 32> when{};
  std::strftime(when.data(), when.size(), "%Y-%m-%dT%H:%M:%S+00:00", &utc);
  return "patient_id,last_name,first_name,dob,sex,test_name,loinc,value,unit,ref_range,"
         "collected_at\n"
         "99001,Freshman,Nora,1980-01-02,F,Ferritin,2276-4,20,ng/mL,15-150," +
         std::string(when.data()) + "\n";
}

// The corpus was drawn from 2024 to 2026-03-26: every draw lies before this time.
constexpr std::int64_t kAfterCorpus = 1'774'656'000;  // 2026-03-28T00:00:00Z

// The <alerts> element that makes the whole corpus history at the clock `now` (the limit ends a
// day after the corpus's last draw) while a draw of a few hours ago stays fresh: the test holds
// on any date, not only on one more than 30 days after the corpus (the default limit).
std::string history_alerts(std::int64_t now) {
  const std::int64_t days = std::max<std::int64_t>(1, (now - kAfterCorpus) / 86'400);
  return "  <alerts mail-max-age-days=\"" + std::to_string(days) + "\"/>\n";
}

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

TEST_CASE("labwatch run mails nothing about a bulk import of old results, then a fresh one",
          "[daemon][mail][delivery][storm]") {
  // The clock the daemon judges by is the machine's; the age limit is set from the same clock, so
  // that the corpus is history whatever today's date (a clock before its last draw is broken).
  const std::int64_t now = unix_now();
  REQUIRE(now > kAfterCorpus + 86'400);
  const SmtpTestServer server;
  const MailSite site(server.port(), history_alerts(now));  // no preliminaries, as by default
  NotifySocket notify(site.layout().notify_path());
  auto daemon = site.start(notify);
  site.drop_corpus();
  REQUIRE(wait_until([&] { return count_entries(site.layout().inbox()) == 0; }, 120s));
  std::this_thread::sleep_for(3s);  // past the collect wait of 1 s
  CHECK(server.received().empty());
  CHECK(site.outbox().empty());
  const auto old_alerts = site.alerts();
  CHECK(old_alerts.size() > 100);  // recorded and listed like any other
  CHECK(std::all_of(old_alerts.begin(), old_alerts.end(),
                    [](const auto& a) { return a.state == AlertStatus::historical; }));

  site.layout().drop("d1_wce_fresh.csv", fresh_ferritin_csv(2));
  if (!site.drained()) {
    FAIL("the outbox did not drain; daemon log:\n" << site.layout().daemon_log());
  }
  const std::vector<ReceivedMail> received = server.received();
  REQUIRE(received.size() == 1);
  CHECK(received[0].rcpt_to == std::vector<std::string>{kFacilityDoctor});
  CHECK(body_part(received[0].data, "plain").find("erritin") != std::string::npos);
  const auto rows = site.outbox();
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].state == OutboxState::sent);

  daemon->signal(SIGTERM);
  CHECK(daemon->wait_exit(10s) == 0);
}

TEST_CASE("labwatch ingest --no-mail records a fresh alert and queues no mail",
          "[daemon][mail][storm]") {
  const SmtpTestServer server;
  const MailSite site(server.port(), "");
  const fs::path fresh = site.layout().root() / "d1_wce_fresh.csv";  // a WCE export
  write_file(fresh, fresh_ferritin_csv(1));

  SECTION("--no-mail: the alert is unmailed, the outbox empty") {
    const CommandResult r = run_labwatch(
        {"ingest", "--config", site.layout().config().string(), "--no-mail", fresh.string()});
    REQUIRE(r.exit_code == 0);
    CHECK(site.outbox().empty());
    const auto alerts = site.alerts();
    REQUIRE(alerts.size() == 1);
    CHECK(alerts[0].state == AlertStatus::unmailed);
  }
  SECTION("without it, the same file queues its mail") {
    const CommandResult r =
        run_labwatch({"ingest", "--config", site.layout().config().string(), fresh.string()});
    REQUIRE(r.exit_code == 0);
    CHECK(site.outbox().size() == 1);
    const auto alerts = site.alerts();
    REQUIRE(alerts.size() == 1);
    CHECK(alerts[0].state == AlertStatus::pending);

    // `labwatch outbox` lists it; --retry takes only a failed item.
    const std::string config = site.layout().config().string();
    const CommandResult listed = run_labwatch({"outbox", "--config", config});
    REQUIRE(listed.exit_code == 0);
    const std::string id = std::to_string(site.outbox().at(0).id);
    CHECK(listed.out.starts_with("id,person_id,recipient,state,attempts,next_attempt,last_error\n" +
                                 id + "," + std::to_string(alerts[0].person_id) + "," +
                                 kFacilityDoctor + ",pending,0,"));
    CHECK(run_labwatch({"outbox", "--config", config, "--retry", id}).exit_code == 1);
    CHECK(run_labwatch({"outbox", "--config", config, "--retry", "x"}).exit_code == 64);
    CHECK(run_labwatch({"outbox", "--config", config, "--retry", id, "--retry-failed"}).exit_code ==
          64);
    const CommandResult none = run_labwatch({"outbox", "--config", config, "--retry-failed"});
    CHECK(none.exit_code == 0);
    CHECK(none.out == "0 failed items queued again\n");
  }
}

namespace {

// How often each Message-ID arrived at `server`.
std::map<std::string, int> message_id_counts(const SmtpTestServer& server) {
  std::map<std::string, int> counts;
  for (const ReceivedMail& mail : server.received()) {
    ++counts[header_value(mail.data, "Message-ID")];
  }
  return counts;
}

}  // namespace

TEST_CASE(
    "labwatch run keeps every item pending while the relay misbehaves, then delivers each once",
    "[daemon][mail][delivery][relay]") {
  const std::string mode = GENERATE(as<std::string>{}, "554-greeting", "530-mail", "550-data",
                                    "451-rcpt", "disconnect-after-data");
  CAPTURE(mode);
  const SmtpTestServer server(server_mode(mode));
  const MailSite site(server.port());
  NotifySocket notify(site.layout().notify_path());
  auto daemon = site.start(notify);
  site.layout().drop("d1_wce_01.csv", read_file(corpus_dir() / "d1_wce_01.csv"));
  // At least two refused attempts (the relay paused and tried again), and nothing failed for good.
  REQUIRE(wait_until(
      [&] {
        int attempts = 0;
        for (const OutboxRow& row : site.outbox()) {
          attempts += row.attempts;
        }
        return attempts >= 2;
      },
      60s, 100ms));
  for (const OutboxRow& row : site.outbox()) {
    CAPTURE(row.last_error);
    CHECK(row.state != OutboxState::failed);
    CHECK(row.state != OutboxState::sent);
  }

  server.set_mode("ok");
  if (!site.drained()) {
    FAIL("the outbox did not drain; daemon log:\n" << site.layout().daemon_log());
  }
  const std::vector<OutboxRow> rows = site.outbox();
  CHECK(std::all_of(rows.begin(), rows.end(),
                    [](const OutboxRow& r) { return r.state == OutboxState::sent; }));
  const std::map<std::string, int> ids = message_id_counts(server);
  CHECK(ids.size() == rows.size());
  for (const auto& [id, count] : ids) {
    CAPTURE(id);
    // A relay that dropped the connection after the final dot kept that message: the retry
    // delivers it again under the same Message-ID, for the relay or the reader to drop.
    if (mode != "disconnect-after-data") {
      CHECK(count == 1);
    }
  }
  daemon->signal(SIGTERM);
  CHECK(daemon->wait_exit(10s) == 0);
}

TEST_CASE("labwatch run sends no Message-ID twice when reloaded during a slow acknowledgement",
          "[daemon][mail][delivery][relay]") {
  SmtpServerOptions options;
  options.mode = "slow-data";
  options.delay_seconds = 4;  // past the 2 s the dispatcher waits for a send when destroyed
  const SmtpTestServer server(options);
  const MailSite site(server.port());
  NotifySocket notify(site.layout().notify_path());
  auto daemon = site.start(notify);
  site.layout().drop("d1_wce_01.csv", read_file(corpus_dir() / "d1_wce_01.csv"));
  REQUIRE(wait_until([&] { return !server.received().empty(); }, 60s, 50ms));

  daemon->signal(SIGHUP);  // the same config: a new runtime and dispatcher
  REQUIRE(notify.wait_for("RELOADING=1", 5s));
  REQUIRE(notify.wait_for("READY=1", 10s));
  server.set_mode("ok");
  if (!site.drained()) {
    FAIL("the outbox did not drain; daemon log:\n" << site.layout().daemon_log());
  }
  const std::vector<OutboxRow> rows = site.outbox();
  CHECK(std::all_of(rows.begin(), rows.end(),
                    [](const OutboxRow& r) { return r.state == OutboxState::sent; }));
  const std::map<std::string, int> ids = message_id_counts(server);
  CHECK(ids.size() == rows.size());
  for (const auto& [id, count] : ids) {
    CAPTURE(id);
    CHECK(count == 1);
  }
  daemon->signal(SIGTERM);
  CHECK(daemon->wait_exit(10s) == 0);
}
