// SPDX-License-Identifier: Apache-2.0
// A hostile drop folder: links, FIFOs, directories, empty and sparse files, and hostile names.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <set>
#include <string>
#include <vector>

#include "reliability/lab_feed.hpp"
#include "reliability/probes.hpp"
#include "reliability/scenario.hpp"
#include "support/daemon_harness.hpp"
#include "support/smtp_server.hpp"

namespace {

using namespace labwatch::test;

constexpr std::string_view kCanary = "CANARY7731";
constexpr auto kWatchdog = 1s;

// A valid lab file about a patient who must never appear anywhere: its name, MRN and values are
// marked kCanary, and its value is far outside target (it would be mailed).
std::string canary_file() {
  const std::string c(kCanary);
  return "patient_id,last_name,first_name,dob,sex,test_name,loinc,value,unit,ref_range,"
         "collected_at\n" +
         c + "MRN," + c + "Family," + c +
         "Given,1950-01-01,F,Ferritin,2276-4,3,ng/mL,15-150,"
         "2024-01-02T08:00:00Z\n";
}

// Closes a descriptor on scope exit.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {
    if (fd_ < 0) {
      throw errno_error("open");
    }
  }
  ~Fd() { ::close(fd_); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&&) = delete;
  Fd& operator=(Fd&&) = delete;
  [[nodiscard]] int get() const noexcept { return fd_; }

 private:
  int fd_;
};

// Everything in `text` of the refusal reason files of failed/ for `name`.
std::string reason_of(const Layout& layout, const std::string& name) {
  const fs::path path = layout.failed() / (name + ".reason.txt");
  return fs::exists(path) ? read_file(path) : std::string("(no reason file)");
}

// True when every line of the daemon's log is one journald record (starts with "<N>").
bool log_lines_intact(const std::string& log) {
  std::size_t start = 0;
  while (start < log.size()) {
    if (log.size() - start < 3 || log[start] != '<' || log[start + 2] != '>') {
      return false;
    }
    const std::size_t end = log.find('\n', start);
    start = end == std::string::npos ? log.size() : end + 1;
  }
  return true;
}

// The number of refusal lines ("- ...") a reason file lists, and the count its header announces.
std::pair<int, int> refusal_lines(const std::string& reason) {
  int listed = 0;
  int announced = -1;
  std::size_t start = 0;
  while (start < reason.size()) {
    const std::size_t end = std::min(reason.find('\n', start), reason.size());
    const std::string_view line(reason.data() + start, end - start);
    if (line.starts_with("- ")) {
      ++listed;
    } else if (line.starts_with("refused (")) {
      announced = std::stoi(std::string(line.substr(9)));
    }
    start = end + 1;
  }
  return {listed, announced};
}

}  // namespace

TEST_CASE("run_service reads no entry of a hostile drop folder, and keeps its pulse and memory",
          "[reliability][hostile]") {
  SmtpTestServer smtp;
  const Layout layout(TempDir::default_base(), 100);
  layout.write_config(100,
                      "  <mail smtp=\"" + smtp.url() +
                          "\" default-recipient=\"results@clinic.example.org\" "
                          "collect-wait-seconds=\"0\" retry-min-seconds=\"1\"/>\n"
                          "  <alerts mail-max-age-days=\"36500\" mail-preliminary=\"true\"/>\n");
  const fs::path outside = layout.root() / "outside";
  fs::create_directory(outside);
  const fs::path canary = outside / "canary.csv";
  write_file(canary, canary_file());
  const fs::path database = layout.root() / "labwatch.db";

  // Waiting at start-up: a symlink to the database and a 4 GiB sparse file.
  fs::create_symlink(database, layout.inbox() / "s_database.csv");
  write_file(layout.inbox() / "gen_sparse.hl7", "MSH|^~\\&|");
  fs::resize_file(layout.inbox() / "gen_sparse.hl7", (std::uintmax_t{4} << 30) + 1);
  // Arriving while it runs: a symlink and a hard link to the canary, a FIFO holding the canary's
  // bytes, a directory with a lab file's name, an empty file.
  fs::create_symlink(canary, layout.stage() / "s_canary.csv");
  fs::create_hard_link(canary, layout.stage() / "h_canary.csv");
  REQUIRE(::mkfifo((layout.stage() / "f_pipe.csv").c_str(), 0600) == 0);
  const Fd pipe(::open((layout.stage() / "f_pipe.csv").c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC));
  const std::string canary_bytes = canary_file();
  REQUIRE(::write(pipe.get(), canary_bytes.data(), canary_bytes.size()) ==
          static_cast<ssize_t>(canary_bytes.size()));
  fs::create_directory(layout.stage() / "x.hl7");
  write_file(layout.stage() / "gen_empty.csv", "");
  std::vector<FeedFile> good;
  std::size_t alerting = 0;  // each about another patient: one mail each
  for (int i = 12; i < 16; ++i) {
    good.push_back(make_feed_file(i, FeedKind::csv_single));
    alerting += good.back().rows.front().alert ? 1U : 0U;
  }
  REQUIRE(alerting > 0);

  NotifySocket notify(layout.notify_path());
  auto daemon =
      layout.start({notify.env(), "WATCHDOG_USEC=" +
                                      std::to_string(std::chrono::microseconds(kWatchdog).count())},
                   /*watchdog_pid=*/true);
  PulseMonitor pulse(notify);
  REQUIRE(notify.wait_for("READY=1", kReadyTimeout));
  for (const char* name :
       {"s_canary.csv", "h_canary.csv", "f_pipe.csv", "x.hl7", "gen_empty.csv"}) {
    fs::rename(layout.stage() / name, layout.inbox() / name);
  }
  for (const FeedFile& f : good) {
    layout.drop(f.name, f.bytes);
  }
  REQUIRE(wait_until([&] { return count_entries(layout.processed()) == good.size(); }, 15s));
  REQUIRE(wait_until([&] { return count_entries(layout.failed(), ".reason.txt") == 6; }, 15s));
  // Mail of the good files' alerts goes out; nothing else would.
  CHECK(wait_until([&] { return smtp.received().size() == alerting; }, 15s, 50ms));
  INFO(layout.daemon_log());
  CHECK(smtp.received().size() == alerting);

  // Each entry refused for what it is, before a byte of it was read.
  CHECK(reason_of(layout, "s_database.csv").find("- symlink:") != std::string::npos);
  CHECK(reason_of(layout, "s_canary.csv").find("- symlink:") != std::string::npos);
  CHECK(reason_of(layout, "h_canary.csv").find("- hard_link:") != std::string::npos);
  CHECK(reason_of(layout, "f_pipe.csv").find("- not_regular_file:") != std::string::npos);
  CHECK(reason_of(layout, "gen_empty.csv").find("- empty_file:") != std::string::npos);
  CHECK(reason_of(layout, "gen_sparse.hl7").find("- too_large:") != std::string::npos);
  CHECK(fs::is_directory(layout.inbox() / "x.hl7"));
  CHECK(layout.daemon_log().find("x.hl7: refused (not_regular_file") != std::string::npos);
  // Links are moved as links; what they point to is untouched.
  CHECK(fs::read_symlink(layout.failed() / "s_database.csv") == database);
  CHECK(fs::read_symlink(layout.failed() / "s_canary.csv") == canary);
  CHECK(read_file(canary) == canary_file());
  // The FIFO still holds every byte written into it.
  std::array<char, 4096> back{};
  const ssize_t n = ::read(pipe.get(), back.data(), back.size());
  CHECK(std::string(back.data(), static_cast<std::size_t>(std::max<ssize_t>(n, 0))) ==
        canary_bytes);

  // Alive and lean: pings kept coming, the sparse file was not read, memory stayed small.
  CHECK(wait_until([&] { return pulse.pings() >= 3; }, 3 * kWatchdog));
  CHECK(daemon->running());
  CHECK(pulse.longest_silence() < kWatchdog);
  const std::optional<std::uint64_t> read = bytes_read(daemon->pid());
  REQUIRE(read.has_value());
  CHECK(*read < (std::uint64_t{64} << 20));
  const std::optional<std::uint64_t> peak = peak_rss_bytes(daemon->pid());
  REQUIRE(peak.has_value());
  CHECK(*peak < kRssCapBytes);
  daemon->signal(SIGTERM);
  REQUIRE(daemon->wait_exit(10s) == 0);

  // The canary is nowhere: not in the database, the log, a reason file, the outbox or a mail.
  CHECK(read_file(database).find(kCanary) == std::string::npos);
  CHECK(layout.daemon_log().find(kCanary) == std::string::npos);
  for (const std::string& name : entry_names(layout.failed())) {
    if (name.ends_with(".reason.txt")) {
      INFO(name);
      CHECK(read_file(layout.failed() / name).find(kCanary) == std::string::npos);
    }
  }
  for (const ReceivedMail& mail : smtp.received()) {
    CHECK(mail.data.find(kCanary) == std::string::npos);
  }
  CHECK(Database(database).integrity() == "ok");
  CHECK(Database(database).count("SELECT count(*) FROM outbox WHERE state <> 'sent'") == 0);
  const std::vector<std::string> stored = exported_keys(layout.export_rows(), original_names(good));
  CHECK(stored == expected_keys(good));
}

// A name holding a newline must not forge a refusal line in its reason file; a 255-byte name
// leaves no room for ".reason.txt" or a ".1" suffix, so the moved name is shortened.
TEST_CASE("run_service refuses files with hostile names with a reason, and keeps running",
          "[reliability][hostile]") {
  const std::string long_stem(255 - 8, 'n');  // "gen_" + stem + ".csv": 255 bytes, the maximum
  struct Case {
    std::string what;
    std::string name;
  };
  const Case c = GENERATE_COPY(values<Case>({
      {"a newline that forges a refusal line", "gen_nl\n- line 1: forged.csv"},
      {"a carriage return and a tab", "gen_cr\r\tx.csv"},
      {"dots", "gen_..csv"},
      {"invalid UTF-8", "gen_\xff\xfe\xc0.csv"},
      {"255 bytes", "gen_" + long_stem + ".csv"},
  }));
  INFO(c.what);
  const Layout layout(TempDir::default_base(), 100);
  NotifySocket notify(layout.notify_path());
  auto daemon = layout.start({notify.env()});
  REQUIRE(notify.wait_for("READY=1", kReadyTimeout));

  // Waits for `done`, or until the daemon has ended.
  const auto settled = [&](auto done) {
    return wait_until([&] { return done() || !daemon->running(); }, 15s) && done();
  };

  // Not a lab file: refused whole, it goes to failed/ with a reason file. (A name may be shortened
  // where it leaves no room for a suffix; the bytes are what identify the file.)
  const std::string garbage = "\x01\x02 labwatch test: not a lab file\n";
  layout.drop(c.name, garbage);
  // The log line comes once the file is moved and its reason file written.
  CHECK(settled([&] { return layout.daemon_log().find("-> failed/") != std::string::npos; }));
  CHECK_FALSE(fs::exists(layout.inbox() / c.name));
  std::vector<std::string> kept;
  std::vector<std::string> reasons;
  for (const std::string& name : entry_names(layout.failed())) {
    (name.ends_with(".reason.txt") ? reasons : kept).push_back(read_file(layout.failed() / name));
  }
  CHECK(kept == Strings{garbage});
  REQUIRE(reasons.size() == 1);
  CHECK(reasons[0].find("- unrecognized_format:") != std::string::npos);
  const auto [listed, announced] = refusal_lines(reasons[0]);
  CHECK(listed == announced);

  // A lab file of the same name, twice with different bytes: both are kept, neither replaced.
  const FeedFile first = make_feed_file(12, FeedKind::csv_single);
  const FeedFile second = make_feed_file(13, FeedKind::csv_single);
  layout.drop(c.name, first.bytes);
  CHECK(settled([&] { return count_entries(layout.processed()) == 1; }));
  layout.drop(c.name, second.bytes);
  CHECK(settled([&] { return count_entries(layout.processed()) == 2; }));
  std::set<std::string> processed;
  for (const std::string& name : entry_names(layout.processed())) {
    processed.insert(read_file(layout.processed() / name));
  }
  CHECK(processed == std::set<std::string>{first.bytes, second.bytes});

  // Still running and still ingesting.
  const FeedFile after = make_feed_file(14, FeedKind::csv_single);
  layout.drop(after.name, after.bytes);
  CHECK(settled([&] { return fs::exists(layout.processed() / after.name); }));
  CHECK(count_entries(layout.inbox()) == 0);
  CHECK(daemon->running());
  daemon->signal(SIGTERM);
  CHECK(daemon->wait_exit(10s) == 0);
  INFO(layout.daemon_log());
  CHECK(log_lines_intact(layout.daemon_log()));
  CHECK(Database(layout.root() / "labwatch.db").count("SELECT count(*) FROM results") == 3);
}
