// SPDX-License-Identifier: Apache-2.0
// Patient data never leaks into logs, reason files or mail headers; the daemon's files are private.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <string>
#include <vector>

#include "reliability/lab_feed.hpp"
#include "reliability/probes.hpp"
#include "reliability/scenario.hpp"
#include "support/daemon_harness.hpp"
#include "support/smtp_server.hpp"

namespace {

using namespace labwatch::test;

// Files that are refused in part or whole while they carry canaries (lab_feed.hpp) in the very
// fields that are wrong or too long: the refusal must explain without repeating them.
std::vector<FeedFile> broken_files() {
  const std::string header =
      "patient_id,last_name,first_name,dob,sex,test_name,loinc,value,unit,ref_range,"
      "collected_at\n";
  const FeedFile panel = make_feed_file(902, FeedKind::hl7_panel);
  std::vector<FeedFile> out;
  const auto add = [&out](std::string name, std::string bytes) {
    FeedFile f;
    f.name = std::move(name);
    f.bytes = std::move(bytes);
    f.whole = false;
    out.push_back(std::move(f));
  };
  add("gen_90001_bad_time.csv",
      header +
          "QZMRN00001,Qzphifamab,Qzphigivab,1917-01-02,F,Ferritin,2276-4,40,ng/mL,15-150,"
          "2011-03-14T25:61:00\n");
  add("gen_90002_bad_birth.csv",
      header +
          "QZMRN00002,Qzphifamac,Qzphigivac,1917-02-31,F,Ferritin,2276-4,40,ng/mL,15-150,"
          "2011-03-14T08:30:00Z\n");
  add("gen_90003_no_id.csv",
      header +
          ",Qzphifamad,Qzphigivad,1917-01-04,F,Ferritin,2276-4,40,ng/mL,15-150,"
          "2011-03-14T08:30:00Z\n");
  add("gen_90004_long_name.csv",
      header + "QZMRN00004,Qzphifam" + std::string(70'000, 'x') +
          ",Qzphigivae,1917-01-05,F,Ferritin,2276-4,40,ng/mL,15-150,2011-03-14T08:30:00Z\n");
  add("gen_90005_truncated.hl7", panel.bytes.substr(0, panel.bytes.find("PID|") + 40));
  std::string long_pid = panel.bytes;
  long_pid.insert(long_pid.find("^Qzphigiv"), std::string((1U << 20) + 16, 'Q'));
  add("gen_90006_long_field.hl7", long_pid);
  std::string bad_obx_time = panel.bytes;
  bad_obx_time.replace(bad_obx_time.rfind("|2011") + 1, 14, "20110314256199");
  add("gen_90007_bad_obx_time.hl7", bad_obx_time);
  return out;
}

// The header block of a message (up to the first empty line): what relays log and show.
std::string header_block(const std::string& message) {
  return message.substr(0, message.find("\r\n\r\n"));
}

}  // namespace

TEST_CASE("labwatch never writes patient data to its log, reason files, stderr or mail headers",
          "[reliability][privacy]") {
  SmtpTestServer smtp;
  const Layout layout(TempDir::default_base(), 100);
  const std::string mail =
      "  <mail smtp=\"" + smtp.url() +
      "\" default-recipient=\"results@clinic.example.org\" collect-wait-seconds=\"0\" "
      "retry-min-seconds=\"1\" retry-max-seconds=\"2\" timeout-seconds=\"5\"/>\n"
      "  <alerts mail-max-age-days=\"36500\" mail-preliminary=\"true\"/>\n"
      "  <practitioners>\n"
      "    <practitioner id=\"dr-min\" name=\"Dr. Min\" email=\"min@clinic.example.org\" "
      "phi=\"minimal\" facilities=\"GEN\"/>\n"
      "    <practitioner id=\"dr-full\" name=\"Dr. Full\" email=\"full@clinic.example.org\" "
      "phi=\"full\" providers=\"1234567890\"/>\n"
      "  </practitioners>\n";
  layout.write_config(100, mail);
  const std::vector<FeedFile> feed = make_feed(80);
  const std::vector<FeedFile> broken = broken_files();

  {
    NotifySocket notify(layout.notify_path());
    auto daemon = layout.start({notify.env()});
    REQUIRE(notify.wait_for("READY=1", kReadyTimeout));
    // Relay trouble while files arrive: temporary refusals, then permanent ones, then recovery.
    smtp.set_mode("451-rcpt");
    for (std::size_t i = 0; i < 30; ++i) {
      layout.drop(feed[i].name, feed[i].bytes);
    }
    for (const FeedFile& f : broken) {
      layout.drop(f.name, f.bytes);
    }
    REQUIRE(wait_until([&] { return count_entries(layout.inbox()) == 0; }, 30s, 20ms));
    REQUIRE(wait_until([&] { return layout.daemon_log().find("451") != std::string::npos; }, 15s,
                       50ms));
    smtp.set_mode("550-rcpt");
    for (std::size_t i = 30; i < 45; ++i) {
      layout.drop(feed[i].name, feed[i].bytes);
    }
    REQUIRE(wait_until([&] { return layout.daemon_log().find("550") != std::string::npos; }, 15s,
                       50ms));
    smtp.set_mode("ok");
    // A reload, then a crash with files waiting.
    daemon->signal(SIGHUP);
    REQUIRE(notify.wait_for("RELOADING=1", 5s));
    REQUIRE(notify.wait_for("READY=1", 5s));
    for (std::size_t i = 45; i < 60; ++i) {
      layout.drop(feed[i].name, feed[i].bytes);
    }
    daemon->signal(SIGKILL);
    REQUIRE(daemon->wait_exit(5s) == kKilled);
  }
  for (std::size_t i = 60; i < feed.size(); ++i) {
    layout.drop(feed[i].name, feed[i].bytes);
  }
  {
    std::error_code ignored;
    fs::remove(layout.notify_path(), ignored);
    NotifySocket notify(layout.notify_path());
    auto daemon = layout.start({notify.env()});
    REQUIRE(notify.wait_for("READY=1", kReadyTimeout));
    // Everything not refused for good is mailed once the relay is back.
    CHECK(wait_until(
        [&] {
          return Database(layout.root() / "labwatch.db")
                     .count(
                         "SELECT count(*) FROM outbox WHERE state = 'pending' OR "
                         "state = 'sending'") == 0;
        },
        30s, 200ms));
    daemon->signal(SIGTERM);
    REQUIRE(daemon->wait_exit(10s) == 0);
  }
  // The same files once more through `labwatch ingest`, whose stderr lists every refusal.
  std::vector<std::string> ingest{"ingest", "--config", layout.config().string(), "--db",
                                  (layout.root() / "ingest.db").string()};
  for (const std::string& name : entry_names(layout.processed())) {
    ingest.push_back((layout.processed() / name).string());
  }
  for (const std::string& name : entry_names(layout.failed())) {
    if (!name.ends_with(".reason.txt")) {
      ingest.push_back((layout.failed() / name).string());
    }
  }
  const CommandResult ingested = run_labwatch(ingest);
  CHECK(ingested.exit_code == 2);
  const CommandResult checked =
      run_labwatch({"check-config", "--config", layout.config().string()});
  CHECK(checked.exit_code == 0);

  // The canaries are real: the database holds them, and so does the full-PHI practitioner's mail.
  const std::vector<ReceivedMail> mails = smtp.received();
  REQUIRE_FALSE(mails.empty());
  CHECK_FALSE(find_phi(read_file(layout.root() / "labwatch.db")).empty());
  bool full_mail_has_phi = false;
  for (const ReceivedMail& m : mails) {
    if (m.rcpt_to == std::vector<std::string>{"full@clinic.example.org"}) {
      full_mail_has_phi = full_mail_has_phi || !find_phi(body_part(m.data, "plain")).empty();
    }
  }
  CHECK(full_mail_has_phi);
  CHECK(layout.daemon_log().find("550") != std::string::npos);

  // ... and appear nowhere else.
  std::vector<std::pair<std::string, std::string>> texts = admin_texts(layout);
  texts.emplace_back("labwatch ingest stderr", ingested.err);
  texts.emplace_back("labwatch check-config output", checked.out + checked.err);
  for (std::size_t i = 0; i < mails.size(); ++i) {
    std::string envelope = mails[i].mail_from;
    for (const std::string& r : mails[i].rcpt_to) {
      envelope += " " + r;
    }
    texts.emplace_back("mail " + std::to_string(i) + " envelope", envelope);
    const std::string header = header_block(mails[i].data);
    texts.emplace_back("mail " + std::to_string(i) + " header", header);
    texts.emplace_back("mail " + std::to_string(i) + " header, decoded",
                       decode_header_value(header));
  }
  CHECK(phi_leaks(texts) == Strings{});
}

TEST_CASE("run_service creates its files and directories private whatever its umask",
          "[reliability][privacy]") {
  const Layout layout(TempDir::default_base(), 100);
  // Nothing of this layout exists yet: the daemon creates it all.
  layout.write_config(100, {},
                      "  <paths inbox=\"fresh/inbox\" processed=\"fresh/processed\" "
                      "failed=\"fresh/failed\" database=\"fresh.db\"/>\n");
  const fs::path fresh = layout.root() / "fresh";
  NotifySocket notify(layout.notify_path());
  const mode_t previous = ::umask(0);
  auto daemon = layout.start({notify.env()});
  ::umask(previous);
  REQUIRE(notify.wait_for("READY=1", kReadyTimeout));
  const FeedFile whole = make_feed_file(12, FeedKind::csv_single);
  const FeedFile partial = make_feed_file(21, FeedKind::csv_partial);
  for (const FeedFile& f : {whole, partial}) {
    write_file(layout.stage() / f.name, f.bytes);
    fs::rename(layout.stage() / f.name, fresh / "inbox" / f.name);
  }
  REQUIRE(wait_until([&] { return count_entries(fresh / "inbox") == 0; }, 15s));
  REQUIRE(
      wait_until([&] { return layout.daemon_log().find("-> failed/") != std::string::npos; }, 15s));

  // While it runs, the write-ahead log and shared-memory index exist too.
  for (const fs::path& path :
       {layout.root() / "fresh.db", layout.root() / "fresh.db-wal", layout.root() / "fresh.db-shm",
        fresh, fresh / "inbox", fresh / "processed", fresh / "failed",
        fresh / "failed" / (partial.name + ".reason.txt")}) {
    INFO(path.string());
    REQUIRE(fs::exists(path));
    CHECK((mode_of(path) & 077U) == 0U);
  }
  daemon->signal(SIGTERM);
  REQUIRE(daemon->wait_exit(10s) == 0);
}
