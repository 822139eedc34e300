// SPDX-License-Identifier: Apache-2.0
// OutboxDispatcher on an in-process io_context, a real SQLite store and a real SMTP server.
#include "mail/outbox_dispatcher.hpp"

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "config/config.hpp"
#include "config/config_loader.hpp"
#include "mail/smtp_mailer.hpp"
#include "storage/store.hpp"
#include "support/smtp_server.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using labwatch::clinical::UnixSeconds;
using labwatch::daemon::DispatcherOptions;
using labwatch::daemon::OutboxDispatcher;
using labwatch::daemon::retry_delay;
using labwatch::daemon::SmtpMailer;
using labwatch::storage::OutboxRow;
using labwatch::storage::OutboxState;
using labwatch::test::header_value;
using labwatch::test::ReceivedMail;
using labwatch::test::server_mode;
using labwatch::test::SmtpTestServer;

constexpr const char* kRecipient = "results@clinic.example";
constexpr std::chrono::milliseconds kQuiet = 300ms;  // how long "nothing happens" is watched

UnixSeconds system_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// One report of one ferritin result below its target (ge:50): one alert, one mail.
labwatch::clinical::NormalizedReport one_alert_report(int patient) {
  labwatch::clinical::NormalizedReport report;
  report.facility = "TST";
  report.control_id = "TST" + std::to_string(100000 + patient);
  report.message_time = 1726921000;
  report.raw_digest = "digest-" + std::to_string(patient);
  report.patient.authority = "TST";
  report.patient.mrn = "T" + std::to_string(patient);
  report.patient.family = "Doe" + std::to_string(patient);
  report.patient.given = "John";
  report.patient.birth_date = "1970-01-01";
  report.patient.sex = 'M';
  labwatch::clinical::NormalizedResult result;
  result.analyte = "ferritin";
  result.value = 38;
  result.unit = "ng/mL";
  result.raw_value = "38";
  result.raw_unit = "ng/mL";
  result.raw_range = "15-150";
  result.ref_low = 15;
  result.ref_high = 150;
  result.collected_at = 1726920900;  // 2024-09-21T12:15:00Z
  result.code = "2276-4";
  result.order_id = "ORD" + std::to_string(patient);
  report.results.push_back(result);
  return report;
}

// A database, a config whose mail goes to `smtp_url`, and a fake clock for the dispatcher.
class Site {
 public:
  explicit Site(const std::string& smtp_url, std::chrono::seconds collect_wait = 0s)
      : dir_(labwatch::test::make_temp_dir("labwatch-dispatch")),
        store_(labwatch::storage::open_store((dir_ / "labwatch.db").string())),
        config_(labwatch::config::default_config()) {
    config_.mail.smtp_url = smtp_url;
    config_.mail.from = "labwatch@clinic.example";
    config_.mail.default_recipient = kRecipient;
    config_.mail.collect_wait = collect_wait;
    config_.mail.retry_min = 10s;
    config_.mail.retry_max = 40s;
    config_.mail.timeout = 10s;
    targets_.by_analyte = config_.targets;
    targets_.catalogue = &config_.catalogue;
    targets_.routing.fallback.push_back({"", kRecipient, "", false});
    targets_.routing.collect_wait_seconds = collect_wait.count();
    targets_.mail_policy.max_age_seconds = std::int64_t{36'500} * 86'400;  // whatever the draw date
  }
  ~Site() {
    dispatcher_.reset();
    store_.reset();
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
  Site(const Site&) = delete;
  Site& operator=(const Site&) = delete;
  Site(Site&&) = delete;
  Site& operator=(Site&&) = delete;

  // Stores a file with one alert for `patient`; the alert is queued for the default recipient.
  void ingest(int patient) {
    labwatch::storage::FileRecord file;
    file.sha256 = std::string(63, '0') + std::to_string(patient % 10);
    file.name = "p" + std::to_string(patient) + ".hl7";
    file.source = "TST";
    auto tx = store_->begin_file(file, targets_);
    tx->add_report(one_alert_report(patient));
    const labwatch::storage::IngestSummary summary = tx->commit();
    REQUIRE(summary.alerts == 1);
    REQUIRE(summary.notices == 1);
  }

  OutboxDispatcher& start_dispatcher(double jitter = 0, std::chrono::milliseconds grace = 2000ms) {
    auto mailer = SmtpMailer::create(config_.mail);
    REQUIRE(mailer.has_value());
    DispatcherOptions options;
    options.clock = [this] { return now; };
    options.jitter = jitter;
    options.shutdown_grace = grace;
    dispatcher_ = std::make_unique<OutboxDispatcher>(
        io, *store_, *store_, std::make_unique<SmtpMailer>(std::move(mailer).value()), config_.mail,
        config_.catalogue, options);
    dispatcher_->start();
    return *dispatcher_;
  }
  void drop_dispatcher() { dispatcher_.reset(); }

  // Runs the loop until `done` holds, at most `timeout`; returns whether it holds.
  template <class Predicate>
  bool run_until(Predicate done, std::chrono::milliseconds timeout = 15s) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
      if (std::chrono::steady_clock::now() >= end) {
        return false;
      }
      if (io.stopped()) {
        io.restart();
      }
      io.run_for(10ms);
    }
    return true;
  }
  // Runs the loop for `span`, so that anything wrongly due would happen.
  void run_for(std::chrono::milliseconds span) {
    run_until([] { return false; }, span);
  }

  // Moves the clock to the latest due time of the items queued so far (the store dates them by
  // the system clock, which may have passed a second since `now` was read) and returns it.
  UnixSeconds due_now() {
    for (const OutboxRow& row : store_->outbox(true)) {
      now = std::max(now, row.due_at);
    }
    return now;
  }

  // The one outbox item (sent ones included).
  OutboxRow item() {
    const std::vector<OutboxRow> rows = store_->outbox(true);
    REQUIRE(rows.size() == 1);
    return rows.front();
  }
  std::vector<std::string> alert_states() {
    std::vector<std::string> states;
    for (const auto& alert : store_->alerts(false)) {
      states.emplace_back(to_string(alert.state));
    }
    return states;
  }

  labwatch::storage::Store& store() { return *store_; }
  boost::asio::io_context io;
  UnixSeconds now = system_now();

 private:
  fs::path dir_;
  std::unique_ptr<labwatch::storage::Store> store_;
  labwatch::config::Config config_;
  labwatch::storage::AlertPolicy targets_;
  std::unique_ptr<OutboxDispatcher> dispatcher_;  // last: it uses the store and the loop
};

std::string message_id_of(const ReceivedMail& mail) {
  return header_value(mail.data, "Message-ID");
}

}  // namespace

TEST_CASE("retry_delay doubles from retry_min and stops at retry_max",
          "[daemon][mail][dispatcher]") {
  CHECK(retry_delay(0, 30s, 3600s) == 30s);
  CHECK(retry_delay(1, 30s, 3600s) == 60s);
  CHECK(retry_delay(6, 30s, 3600s) == 1920s);
  CHECK(retry_delay(7, 30s, 3600s) == 3600s);
  CHECK(retry_delay(100000, 30s, 3600s) == 3600s);
  CHECK(retry_delay(-3, 30s, 3600s) == 30s);
  CHECK(retry_delay(0, 0s, 0s) == 1s);
  CHECK(retry_delay(3, 10s, 5s) == 10s);  // a maximum below the minimum is the minimum
}

TEST_CASE("OutboxDispatcher sends a due item once, and not before it is due",
          "[daemon][mail][dispatcher]") {
  const SmtpTestServer server;
  Site site(server.url(), 60s);
  site.ingest(1);
  const OutboxRow queued = site.item();
  REQUIRE(queued.state == OutboxState::pending);
  REQUIRE(queued.due_at >= site.now + 59);

  site.now = queued.due_at - 1;
  OutboxDispatcher& dispatcher = site.start_dispatcher();
  site.run_for(kQuiet);
  CHECK(server.received().empty());
  dispatcher.poke();
  site.run_for(kQuiet);
  CHECK(server.received().empty());
  CHECK(site.item().state == OutboxState::pending);
  CHECK(site.item().attempts == 0);

  site.now = queued.due_at;
  dispatcher.poke();
  REQUIRE(site.run_until([&] { return dispatcher.counts().sent == 1; }));
  const std::vector<ReceivedMail> mails = server.received();
  REQUIRE(mails.size() == 1);
  CHECK(mails[0].rcpt_to == std::vector<std::string>{kRecipient});
  CHECK(mails[0].mail_from == "labwatch@clinic.example");
  CHECK(message_id_of(mails[0]) == "<" + queued.message_id + ">");
  CHECK(header_value(mails[0].data, "Subject") ==
        "labwatch: 1 result outside optimal target (person 1)");
  const OutboxRow sent = site.item();
  CHECK(sent.state == OutboxState::sent);
  CHECK(sent.attempts == 1);
  CHECK(sent.sent_at == queued.due_at);
  CHECK(site.alert_states() == std::vector<std::string>{"sent"});

  // Later pokes and a day passing send nothing more.
  site.now += 86'400;
  dispatcher.poke();
  site.run_for(kQuiet);
  dispatcher.poke();
  site.run_for(kQuiet);
  CHECK(server.received().size() == 1);
  CHECK(dispatcher.counts().sent == 1);
}

TEST_CASE("OutboxDispatcher retries 451 and 421 later with growing delays, then delivers",
          "[daemon][mail][dispatcher]") {
  const SmtpTestServer server(server_mode("451-rcpt"));
  Site site(server.url());
  site.ingest(1);
  const UnixSeconds t0 = site.due_now();
  OutboxDispatcher& dispatcher = site.start_dispatcher();

  // Attempt 1 at t0 fails: the next one is retry_min (10 s) later.
  REQUIRE(site.run_until([&] { return dispatcher.counts().retried == 1; }));
  OutboxRow row = site.item();
  CHECK(row.state == OutboxState::pending);
  CHECK(row.attempts == 1);
  CHECK(row.due_at == t0 + 10);
  CHECK(row.last_error.find("451") != std::string::npos);

  // Not a second early.
  site.now = t0 + 9;
  dispatcher.poke();
  site.run_for(kQuiet);
  CHECK(dispatcher.counts().retried == 1);
  CHECK(site.item().attempts == 1);

  // Attempt 2 at t0+10 fails: 20 s.
  site.now = t0 + 10;
  dispatcher.poke();
  REQUIRE(site.run_until([&] { return dispatcher.counts().retried == 2; }));
  CHECK(site.item().due_at == t0 + 30);

  // The relay now closes every connection with 421. Attempt 3 at t0+30: 40 s (the maximum).
  server.set_mode("421-connect");
  site.now = t0 + 30;
  dispatcher.poke();
  REQUIRE(site.run_until([&] { return dispatcher.counts().retried == 3; }));
  row = site.item();
  CHECK(row.due_at == t0 + 70);
  CHECK(row.last_error.find("421") != std::string::npos);

  // Attempt 4 at t0+70: still 40 s.
  site.now = t0 + 70;
  dispatcher.poke();
  REQUIRE(site.run_until([&] { return dispatcher.counts().retried == 4; }));
  CHECK(site.item().due_at == t0 + 110);
  CHECK(server.received().empty());

  server.set_mode("ok");
  site.now = t0 + 110;
  dispatcher.poke();
  REQUIRE(site.run_until([&] { return dispatcher.counts().sent == 1; }));
  const std::vector<ReceivedMail> mails = server.received();
  REQUIRE(mails.size() == 1);
  CHECK(message_id_of(mails[0]) == "<" + row.message_id + ">");
  row = site.item();
  CHECK(row.state == OutboxState::sent);
  CHECK(row.attempts == 5);
  CHECK(site.alert_states() == std::vector<std::string>{"sent"});
}

TEST_CASE("OutboxDispatcher adds at most the configured fraction of jitter to a retry",
          "[daemon][mail][dispatcher]") {
  const SmtpTestServer server(server_mode("451-rcpt"));
  Site site(server.url());
  site.ingest(1);
  site.ingest(2);
  const UnixSeconds t0 = site.due_now();
  OutboxDispatcher& dispatcher = site.start_dispatcher(/*jitter=*/0.5);
  REQUIRE(site.run_until([&] { return dispatcher.counts().retried == 2; }));
  for (const OutboxRow& row : site.store().outbox(true)) {
    CHECK(row.due_at >= t0 + 10);
    CHECK(row.due_at <= t0 + 15);
  }
}

TEST_CASE("OutboxDispatcher marks a 550 failed and never retries it",
          "[daemon][mail][dispatcher]") {
  const SmtpTestServer server(server_mode("550-rcpt"));
  Site site(server.url());
  site.ingest(1);
  site.due_now();
  OutboxDispatcher& dispatcher = site.start_dispatcher();
  REQUIRE(site.run_until([&] { return dispatcher.counts().failed == 1; }));
  OutboxRow row = site.item();
  CHECK(row.state == OutboxState::failed);
  CHECK(row.attempts == 1);
  CHECK(row.last_error.find("550") != std::string::npos);
  CHECK(site.alert_states() == std::vector<std::string>{"failed"});
  // The failed item is listed among those not sent.
  REQUIRE(site.store().outbox(false).size() == 1);
  CHECK(site.store().outbox(false).front().state == OutboxState::failed);

  server.set_mode("ok");
  site.now += 86'400;
  dispatcher.poke();
  site.run_for(kQuiet);
  CHECK(server.received().empty());
  CHECK(dispatcher.counts().failed == 1);
  CHECK(dispatcher.counts().sent == 0);
  CHECK(site.item().attempts == 1);
  CHECK(site.item().state == OutboxState::failed);
}

TEST_CASE("OutboxDispatcher sends again with the same Message-ID after a drop after the final dot",
          "[daemon][mail][dispatcher]") {
  const SmtpTestServer server(server_mode("disconnect-after-data"));
  Site site(server.url());
  site.ingest(1);
  const UnixSeconds t0 = site.due_now();
  OutboxDispatcher& dispatcher = site.start_dispatcher();
  REQUIRE(site.run_until([&] { return dispatcher.counts().retried == 1; }));
  CHECK(site.item().due_at == t0 + 10);
  REQUIRE(server.received().size() == 1);  // the relay may have it: it is sent again anyway

  server.set_mode("ok");
  site.now = t0 + 10;
  dispatcher.poke();
  REQUIRE(site.run_until([&] { return dispatcher.counts().sent == 1; }));
  const std::vector<ReceivedMail> mails = server.received();
  REQUIRE(mails.size() == 2);
  CHECK(message_id_of(mails[0]) == "<" + site.item().message_id + ">");
  CHECK(message_id_of(mails[1]) == message_id_of(mails[0]));
  CHECK(header_value(mails[1].data, "Subject") == header_value(mails[0].data, "Subject"));
  CHECK(site.item().state == OutboxState::sent);
}

TEST_CASE("OutboxDispatcher loses nothing while the relay refuses connections",
          "[daemon][mail][dispatcher]") {
  const int port = labwatch::test::unused_loopback_port();
  Site site("smtp://127.0.0.1:" + std::to_string(port));
  site.ingest(1);
  const UnixSeconds t0 = site.due_now();
  OutboxDispatcher& dispatcher = site.start_dispatcher();
  REQUIRE(site.run_until([&] { return dispatcher.counts().retried == 1; }));

  // A second item queued while the relay is down waits for the relay's retry time instead of
  // failing on its own.
  site.ingest(2);
  dispatcher.poke();
  site.run_for(kQuiet);
  CHECK(dispatcher.counts().retried == 1);
  const std::vector<OutboxRow> rows = site.store().outbox(false);
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].state == OutboxState::pending);
  CHECK(rows[0].due_at == t0 + 10);
  CHECK(rows[1].state == OutboxState::pending);
  CHECK(rows[1].attempts == 0);

  labwatch::test::SmtpServerOptions options;
  options.port = port;
  const SmtpTestServer server(options);
  site.now = t0 + 10;
  dispatcher.poke();
  REQUIRE(site.run_until([&] { return dispatcher.counts().sent == 2; }));
  const std::vector<ReceivedMail> mails = server.received();
  REQUIRE(mails.size() == 2);
  CHECK(message_id_of(mails[0]) != message_id_of(mails[1]));
  CHECK(site.store().outbox(false).empty());
  CHECK(site.alert_states() == std::vector<std::string>{"sent", "sent"});
}

TEST_CASE("OutboxDispatcher start sends again what a crash left claimed",
          "[daemon][mail][dispatcher]") {
  const SmtpTestServer server;
  Site site(server.url());
  site.ingest(1);
  site.due_now();
  // A previous process claimed the item and died before it could record anything.
  const auto claimed = site.store().claim_due_mail(site.now, 10);
  REQUIRE(claimed.size() == 1);
  REQUIRE(site.item().state == OutboxState::sending);

  OutboxDispatcher& dispatcher = site.start_dispatcher();
  REQUIRE(site.run_until([&] { return dispatcher.counts().sent == 1; }));
  const std::vector<ReceivedMail> mails = server.received();
  REQUIRE(mails.size() == 1);
  CHECK(message_id_of(mails[0]) == "<" + claimed[0].message_id + ">");
  CHECK(site.item().state == OutboxState::sent);
}

TEST_CASE("OutboxDispatcher stop lets a send in flight finish and holds the loop no longer",
          "[daemon][mail][dispatcher]") {
  labwatch::test::SmtpServerOptions options;
  options.mode = "slow-data";
  options.delay_seconds = 1.5;
  const SmtpTestServer server(options);
  Site site(server.url());
  site.ingest(1);
  site.due_now();

  SECTION("a send that ends while the loop runs is recorded") {
    OutboxDispatcher& dispatcher = site.start_dispatcher();
    REQUIRE(site.run_until([&] { return dispatcher.sending(); }));
    dispatcher.stop();
    // Nothing of the dispatcher keeps the loop busy: run() returns at once.
    const auto start = std::chrono::steady_clock::now();
    site.io.restart();
    site.io.run();
    CHECK(std::chrono::steady_clock::now() - start < 500ms);
    // The result still arrives and is recorded while the loop runs.
    REQUIRE(site.run_until([&] { return dispatcher.counts().sent == 1; }));
    CHECK(site.item().state == OutboxState::sent);
    CHECK(server.received().size() == 1);
  }
  SECTION("a send that outlasts the grace is abandoned, and sent again after a restart") {
    OutboxDispatcher& dispatcher = site.start_dispatcher(0, /*grace=*/100ms);
    REQUIRE(site.run_until([&] { return dispatcher.sending(); }));
    REQUIRE(site.run_until([&] { return !server.received().empty(); }));
    const auto start = std::chrono::steady_clock::now();
    site.drop_dispatcher();
    CHECK(std::chrono::steady_clock::now() - start < 1s);
    CHECK(site.item().state == OutboxState::sending);

    server.set_mode("ok");
    OutboxDispatcher& next = site.start_dispatcher();
    REQUIRE(site.run_until([&] { return next.counts().sent == 1; }));
    const std::vector<ReceivedMail> mails = server.received();
    REQUIRE(mails.size() == 2);
    CHECK(message_id_of(mails[0]) == message_id_of(mails[1]));
    CHECK(site.item().state == OutboxState::sent);
  }
}

TEST_CASE("OutboxDispatcher pauses a relay that refuses the session with 5xx, failing nothing",
          "[daemon][mail][dispatcher]") {
  const SmtpTestServer server(server_mode("530-mail"));
  Site site(server.url());
  site.ingest(1);
  site.ingest(2);
  const UnixSeconds t0 = site.due_now();
  OutboxDispatcher& dispatcher = site.start_dispatcher();

  // The first item meets 530: a relay fault. Both stay pending; the relay waits retry_min (10 s).
  REQUIRE(site.run_until([&] { return dispatcher.counts().retried == 1; }));
  site.run_for(kQuiet);
  CHECK(dispatcher.counts().retried == 1);  // the second item is not tried during the pause
  std::vector<OutboxRow> rows = site.store().outbox(false);
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].state == OutboxState::pending);
  CHECK(rows[0].last_error.find("530") != std::string::npos);
  CHECK(rows[1].state == OutboxState::pending);
  CHECK(rows[1].attempts == 0);

  // At t0+10 the second item, first attempted, meets the relay's second fault in a row: 20 s.
  site.now = t0 + 10;
  dispatcher.poke();
  REQUIRE(site.run_until([&] { return dispatcher.counts().retried == 2; }));
  rows = site.store().outbox(false);
  CHECK(rows[1].attempts == 1);
  CHECK(rows[1].due_at == t0 + 30);
  CHECK(dispatcher.counts().failed == 0);

  server.set_mode("ok");
  site.now = t0 + 30;
  dispatcher.poke();
  REQUIRE(site.run_until([&] { return dispatcher.counts().sent == 2; }));
  CHECK(dispatcher.counts().failed == 0);
  CHECK(server.received().size() == 2);
}
