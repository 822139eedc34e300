// SPDX-License-Identifier: Apache-2.0
// Memory under backlog: thousands of alerting files while the mail relay is down, then the drain.
#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "reliability/lab_feed.hpp"
#include "reliability/probes.hpp"
#include "reliability/scenario.hpp"
#include "support/daemon_harness.hpp"
#include "support/smtp_server.hpp"

TEST_CASE(
    "run_service ingests 10,000 alerting files within its memory cap while SMTP is down, "
    "then drains the outbox",
    "[reliability][backlog][slow]") {
  using namespace labwatch::test;
  const int files = scaled(10'000, 200);
  // A patient's alerts join the mail that waits for them: about a thousand mails wait.
  const int patients = scaled(1'000, 20);
  const int port = unused_loopback_port();  // nothing listens there until the relay "returns"
  const Layout layout(TempDir::fast_base(), 100);
  layout.write_config(100, "  <mail smtp=\"smtp://127.0.0.1:" + std::to_string(port) +
                               "\" default-recipient=\"results@clinic.example.org\" "
                               "collect-wait-seconds=\"0\" retry-min-seconds=\"1\" "
                               "retry-max-seconds=\"2\" timeout-seconds=\"5\"/>\n"
                               "  <alerts mail-max-age-days=\"36500\" mail-preliminary=\"true\"/>\n"
                               // One alert per file: no shipped trend rule adds one for a fall.
                               "  <targets><trend analyte=\"ferritin\" rule=\"none\"/>"
                               "<trend analyte=\"vitamin_d_25oh\" rule=\"none\"/>"
                               "<trend analyte=\"rbc_magnesium\" rule=\"none\"/></targets>\n");
  for (int i = 0; i < files; ++i) {
    const FeedFile f = make_feed_file(i, FeedKind::alerting, patients);
    write_file(layout.stage() / f.name, f.bytes);
  }
  const fs::path database = layout.root() / "labwatch.db";

  NotifySocket notify(layout.notify_path());
  auto daemon = layout.start({notify.env()});
  REQUIRE(notify.wait_for("READY=1", kReadyTimeout));
  for (const std::string& name : entry_names(layout.stage())) {
    fs::rename(layout.stage() / name, layout.inbox() / name);
  }
  REQUIRE(wait_until([&] { return count_entries(layout.processed()) == std::size_t(files); }, 600s,
                     500ms));
  CHECK(count_entries(layout.failed()) == 0);
  {
    const Database db(database);
    CHECK(db.count("SELECT count(*) FROM alerts") == files);
    CHECK(db.count("SELECT count(*) FROM outbox WHERE state = 'sent'") == 0);
    CHECK(db.count("SELECT count(*) FROM outbox WHERE state = 'pending' AND attempts > 0") > 0);
  }
  const std::optional<std::uint64_t> backlog_peak = peak_rss_bytes(daemon->pid());
  REQUIRE(backlog_peak.has_value());
  CHECK(*backlog_peak < kRssCapBytes);

  // The relay comes back on the same port: every queued mail goes out once.
  SmtpServerOptions options;
  options.port = port;
  const SmtpTestServer smtp(options);
  const auto unsent = [&] {
    return Database(database).count("SELECT count(*) FROM outbox WHERE state <> 'sent'");
  };
  CHECK(wait_until([&] { return unsent() == 0; }, 600s, 500ms));
  const std::optional<std::uint64_t> peak = peak_rss_bytes(daemon->pid());
  REQUIRE(peak.has_value());
  CHECK(*peak < kRssCapBytes);
  daemon->signal(SIGTERM);
  REQUIRE(daemon->wait_exit(10s) == 0);

  const Database db(database);
  const std::int64_t items = db.count("SELECT count(*) FROM outbox");
  CHECK(unsent() == 0);
  CHECK(db.count("SELECT count(*) FROM alerts WHERE state <> 'sent'") == 0);
  // Each alert is a line of exactly one mail, and each mail reached the relay exactly once.
  CHECK(db.count("SELECT count(*) FROM notices") == files);
  CHECK(db.count("SELECT count(DISTINCT alert_id) FROM notices") == files);
  const std::vector<ReceivedMail> mails = smtp.received();
  CHECK(static_cast<std::int64_t>(mails.size()) == items);
  std::set<std::string> ids;
  for (const ReceivedMail& m : mails) {
    ids.insert(header_value(m.data, "Message-ID"));
  }
  CHECK(ids.size() == mails.size());
  CHECK(phi_leaks(admin_texts(layout)) == Strings{});
}
