// SPDX-License-Identifier: Apache-2.0
// run_service end to end: the real `labwatch run` in a temp layout, driven by files and signals.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <string>
#include <thread>
#include <vector>

#include "support/daemon_harness.hpp"

namespace {

using namespace labwatch::test;

constexpr auto kReadyTimeout = 30s;
constexpr auto kFileTimeout = 15s;

// The export rows of one file without person_id (third column), which depends on ingest order.
std::vector<std::string> rows_of(const std::vector<std::string>& rows, const std::string& file) {
  std::vector<std::string> out;
  for (const std::string& row : rows) {
    if (row.substr(0, row.find(',')) == file) {
      const std::size_t second = row.find(',', row.find(',') + 1);
      const std::size_t third = row.find(',', second + 1);
      out.push_back(row.substr(0, second) + row.substr(third));
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

// What `labwatch ingest` stores for these corpus files, in this order, in a fresh database.
std::vector<std::string> reference_rows(const Layout& layout,
                                        const std::vector<std::string>& files) {
  const fs::path db = layout.root() / "reference.db";
  std::vector<std::string> args{"ingest", "--config", layout.config().string(), "--db",
                                db.string()};
  for (const std::string& f : files) {
    args.push_back(corpus_file(f).string());
  }
  const CommandResult ingest = run_labwatch(args);
  REQUIRE(ingest.exit_code == 0);
  const CommandResult exported = run_labwatch(
      {"export", "--config", layout.config().string(), "--db", db.string(), "--format", "csv"});
  REQUIRE(exported.exit_code == 0);
  std::vector<std::string> rows;
  std::size_t start = exported.out.find('\n');
  while (start != std::string::npos && start + 1 < exported.out.size()) {
    const std::size_t end = exported.out.find('\n', start + 1);
    rows.push_back(exported.out.substr(
        start + 1, (end == std::string::npos ? exported.out.size() : end) - start - 1));
    start = end;
  }
  return rows;
}

// A one-connection-at-a-time SMTP server on 127.0.0.1 that accepts every message (no TLS: a
// loopback relay may be plain text). Messages are counted; their text is not kept.
class SmtpSink {
 public:
  SmtpSink() {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    auto* generic = reinterpret_cast<sockaddr*>(&address);  // NOLINT: the sockets API
    if (listener_ < 0 || ::bind(listener_, generic, length) != 0 || ::listen(listener_, 4) != 0 ||
        ::getsockname(listener_, generic, &length) != 0) {
      throw errno_error("smtp sink");
    }
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~SmtpSink() {
    stop_ = true;
    thread_.join();
    ::close(listener_);
  }
  SmtpSink(const SmtpSink&) = delete;
  SmtpSink& operator=(const SmtpSink&) = delete;
  SmtpSink(SmtpSink&&) = delete;
  SmtpSink& operator=(SmtpSink&&) = delete;

  [[nodiscard]] int port() const noexcept { return port_; }
  [[nodiscard]] int messages() const noexcept { return messages_; }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{listener_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) {
        continue;
      }
      const int client = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client >= 0) {
        converse(client);
        ::close(client);
      }
    }
  }

  // Reads one line (CRLF) into `line`; false on end, error or a 5 s silence.
  bool read_line(int fd, std::string& buffer, std::string& line) const {
    for (;;) {
      if (const std::size_t end = buffer.find("\r\n"); end != std::string::npos) {
        line = buffer.substr(0, end);
        buffer.erase(0, end + 2);
        return true;
      }
      pollfd p{fd, POLLIN, 0};
      std::array<char, 4096> chunk{};
      if (stop_ || ::poll(&p, 1, 5000) <= 0) {
        return false;
      }
      const ssize_t n = ::recv(fd, chunk.data(), chunk.size(), 0);
      if (n <= 0) {
        return false;
      }
      buffer.append(chunk.data(), static_cast<std::size_t>(n));
    }
  }

  void converse(int fd) {
    const auto say = [fd](std::string_view reply) {
      ::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL);
    };
    say("220 sink ESMTP\r\n");
    std::string buffer;
    std::string line;
    while (read_line(fd, buffer, line)) {
      const std::string verb = line.substr(0, 4);
      if (verb == "EHLO" || verb == "HELO") {
        say("250 sink\r\n");
      } else if (verb == "DATA") {
        say("354 go on\r\n");
        while (read_line(fd, buffer, line) && line != ".") {
        }
        ++messages_;
        say("250 queued\r\n");
      } else if (verb == "QUIT") {
        say("221 bye\r\n");
        return;
      } else {
        say("250 ok\r\n");  // MAIL FROM, RCPT TO, RSET, NOOP
      }
    }
  }

  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> messages_{0};
  std::thread thread_;  // last: started once everything above exists
};

}  // namespace

TEST_CASE("run_service mails the alerts of an ingested file and never waits for the relay",
          "[daemon][service][mail]") {
  SmtpSink sink;
  const Layout layout(TempDir::default_base());
  const auto mail_config = [&](int port) {
    layout.write_config(
        150, "  <mail smtp=\"smtp://127.0.0.1:" + std::to_string(port) +
                 "\" default-recipient=\"results@clinic.example.org\" "
                 "collect-wait-seconds=\"0\" retry-min-seconds=\"1\" timeout-seconds=\"2\"/>\n"
                 "  <alerts mail-max-age-days=\"36500\" mail-preliminary=\"true\"/>\n");
  };
  mail_config(sink.port());
  NotifySocket notify(layout.notify_path());
  auto daemon = layout.start({notify.env()});
  REQUIRE(notify.wait_for("READY=1", kReadyTimeout));

  // a_qdx_01.hl7 holds results outside their optimal targets (expected_alerts.csv, P024).
  layout.drop("a_qdx_01.hl7", read_file(corpus_file("a_qdx_01.hl7")));
  REQUIRE(
      wait_until([&] { return fs::exists(layout.processed() / "a_qdx_01.hl7"); }, kFileTimeout));
  // Every alert of the file is mailed (one mail per patient) before the relay goes away.
  const bool mailed = wait_until(
      [&] {
        const CommandResult a = run_labwatch({"alerts", "--config", layout.config().string()});
        return sink.messages() > 0 && a.exit_code == 0 &&
               a.out.find(",pending,") == std::string::npos;
      },
      10s);
  INFO(layout.daemon_log());
  CHECK(mailed);

  // A relay that refuses connections: mail waits in the outbox, files keep flowing, stop is prompt.
  const int sent = sink.messages();
  mail_config(1);  // nothing listens on port 1
  daemon->signal(SIGHUP);
  REQUIRE(notify.wait_for("RELOADING=1", 5s));
  REQUIRE(notify.wait_for("READY=1", 5s));
  layout.drop("b_lca_01.hl7", read_file(corpus_file("b_lca_01.hl7")));
  layout.drop("d1_wce_01.csv", read_file(corpus_file("d1_wce_01.csv")));
  CHECK(wait_until([&] { return fs::exists(layout.processed() / "d1_wce_01.csv"); }, kFileTimeout));
  CHECK(fs::exists(layout.processed() / "b_lca_01.hl7"));
  const Clock::time_point term = Clock::now();
  daemon->signal(SIGTERM);
  REQUIRE(daemon->wait_exit(5s) == 0);
  CHECK(Clock::now() - term < 5s);
  CHECK(sink.messages() == sent);
  const CommandResult alerts = run_labwatch({"alerts", "--config", layout.config().string()});
  CHECK(alerts.exit_code == 0);
  CHECK(alerts.out.find("homocysteine") != std::string::npos);
}

TEST_CASE("run_service ingests a renamed file at once and a slowly written one once complete",
          "[daemon][service]") {
  const Layout layout(TempDir::default_base(), 400);
  NotifySocket notify(layout.notify_path());
  auto daemon = layout.start({notify.env()});
  REQUIRE(notify.wait_for("READY=1", kReadyTimeout));

  // Renamed in: complete by construction, read at once (well before the 400 ms settle time).
  const std::string renamed = read_file(corpus_file("a_qdx_01.hl7"));
  const Clock::time_point dropped = Clock::now();
  layout.drop("a_qdx_01.hl7", renamed);
  REQUIRE(
      wait_until([&] { return fs::exists(layout.processed() / "a_qdx_01.hl7"); }, kFileTimeout));
  CHECK(Clock::now() - dropped < 5s);

  // Written in place in six pieces, closed after each, with pauses shorter than the settle time:
  // it must be read once, whole, after the last piece.
  const std::string slow = read_file(corpus_file("d1_wce_01.csv"));
  const std::size_t piece = slow.size() / 6 + 1;
  for (std::size_t at = 0; at < slow.size(); at += piece) {
    write_file(layout.inbox() / "d1_wce_01.csv", std::string_view(slow).substr(at, piece),
               O_APPEND);
    std::this_thread::sleep_for(150ms);
    REQUIRE_FALSE(fs::exists(layout.processed() / "d1_wce_01.csv"));
  }
  REQUIRE(
      wait_until([&] { return fs::exists(layout.processed() / "d1_wce_01.csv"); }, kFileTimeout));
  CHECK(read_file(layout.processed() / "d1_wce_01.csv") == slow);

  // An aborted upload keeps its temporary name and is never touched.
  const std::string aborted = read_file(corpus_file("b_lca_01.hl7"));
  write_file(layout.inbox() / "b_lca_01.hl7.part",
             std::string_view(aborted).substr(0, aborted.size() / 2));
  std::this_thread::sleep_for(1s);
  CHECK(fs::exists(layout.inbox() / "b_lca_01.hl7.part"));

  daemon->signal(SIGTERM);
  REQUIRE(daemon->wait_exit(10s) == 0);

  CHECK(count_entries(layout.processed()) == 2);
  CHECK(count_entries(layout.failed()) == 0);
  const std::vector<std::string> rows = layout.export_rows();
  const auto per_file = rows_per_file(rows);
  CHECK(per_file.count("b_lca_01.hl7") == 0);
  CHECK(per_file.count("b_lca_01.hl7.part") == 0);
  const std::vector<std::string> reference =
      reference_rows(layout, {"a_qdx_01.hl7", "d1_wce_01.csv"});
  CHECK(rows.size() == reference.size());
  CHECK(rows_of(rows, "a_qdx_01.hl7") == rows_of(reference, "a_qdx_01.hl7"));
  CHECK(rows_of(rows, "d1_wce_01.csv") == rows_of(reference, "d1_wce_01.csv"));
  CHECK_FALSE(rows_of(rows, "d1_wce_01.csv").empty());
}

TEST_CASE("run_service ingests every file already in the inbox before READY=1",
          "[daemon][service]") {
  const Layout layout(TempDir::fast_base());
  for (int i = 0; i < 100; ++i) {
    write_file(layout.inbox() / ("gen_" + std::to_string(10000 + i) + ".csv"), generated_csv(i));
  }
  NotifySocket notify(layout.notify_path());
  auto daemon = layout.start({notify.env()});
  REQUIRE(notify.wait_for("READY=1", kReadyTimeout));
  // Moving a file is the last step of ingesting it: at READY all are stored and moved.
  CHECK(count_entries(layout.processed()) == 100);
  CHECK(count_entries(layout.inbox()) == 0);

  daemon->signal(SIGTERM);
  REQUIRE(daemon->wait_exit(10s) == 0);
  const auto per_file = rows_per_file(layout.export_rows());
  CHECK(per_file.size() == 100);
  CHECK(std::all_of(per_file.begin(), per_file.end(),
                    [](const auto& entry) { return entry.second == 1; }));
}

TEST_CASE("run_service rescans the inbox when the inotify queue overflows",
          "[daemon][service][slow]") {
  constexpr int kFiles = 20'000;  // above the default max_queued_events (16384)
  const Layout layout(TempDir::fast_base());
  NotifySocket notify(layout.notify_path());
  auto daemon = layout.start({notify.env()});
  REQUIRE(notify.wait_for("READY=1", kReadyTimeout));

  // Stopped, the daemon reads no events, so the kernel queue overflows while the files come in.
  daemon->signal(SIGSTOP);
  for (int i = 0; i < kFiles; ++i) {
    write_file(layout.inbox() / ("gen_" + std::to_string(100000 + i) + ".csv"), generated_csv(i));
  }
  daemon->signal(SIGCONT);
  // Listing 20,000 entries is not free: poll gently, the daemon shares the CPU with this test.
  CHECK(wait_until([&] { return count_entries(layout.processed()) == kFiles; }, 120s, 500ms));
  CHECK(count_entries(layout.inbox()) == 0);
  CHECK(count_entries(layout.failed()) == 0);

  daemon->signal(SIGTERM);
  REQUIRE(daemon->wait_exit(10s) == 0);
  CHECK(layout.daemon_log().find("overflowed") != std::string::npos);
  CHECK(layout.export_rows().size() == kFiles);
}

TEST_CASE("run_service speaks the notify protocol and exits 0 promptly on SIGTERM",
          "[daemon][service]") {
  const Layout layout(TempDir::default_base());
  NotifySocket notify(layout.notify_path());
  auto daemon = layout.start({notify.env(), "WATCHDOG_USEC=400000"}, /*watchdog_pid=*/true);
  REQUIRE(notify.wait_for("READY=1", kReadyTimeout));
  CHECK(notify.count("STOPPING=1") == 0);
  // Time for a migration is asked for before the database is opened: 15 minutes.
  CHECK(notify.count("EXTEND_TIMEOUT_USEC=900000000") == 1);

  // WATCHDOG=1 every 200 ms (half the interval): at least four in a second.
  const Clock::time_point start = Clock::now();
  while (Clock::now() - start < 1s) {
    notify.wait_for("WATCHDOG=1", 500ms);
  }
  CHECK(notify.count("WATCHDOG=1") >= 4);

  const Clock::time_point term = Clock::now();
  daemon->signal(SIGTERM);
  CHECK(notify.wait_for("STOPPING=1", 5s));
  REQUIRE(daemon->wait_exit(5s) == 0);
  CHECK(Clock::now() - term < 5s);
  CHECK(layout.daemon_log().find("<6>stopping (SIGTERM)") != std::string::npos);
}

TEST_CASE("run_service refuses to watch an inbox another labwatch process already watches",
          "[daemon][service]") {
  const Layout layout(TempDir::default_base());
  NotifySocket notify(layout.notify_path());
  auto first = layout.start({notify.env()});
  REQUIRE(notify.wait_for("READY=1", kReadyTimeout));

  const CommandResult second = run_labwatch({"run", "--config", layout.config().string()}, 30s);
  CHECK(second.exit_code == 1);
  CHECK(second.err.find("another labwatch process is already using " + layout.inbox().string()) !=
        std::string::npos);

  // The first one still owns the inbox and works; once it stops, the inbox is free again.
  layout.drop("d1_wce_01.csv", read_file(corpus_file("d1_wce_01.csv")));
  CHECK(wait_until([&] { return fs::exists(layout.processed() / "d1_wce_01.csv"); }, kFileTimeout));
  first->signal(SIGTERM);
  REQUIRE(first->wait_exit(10s) == 0);
  const std::size_t ready_before = notify.count("READY=1");
  auto third = layout.start({notify.env()});
  CHECK(wait_until([&] { return notify.count("READY=1") > ready_before; }, kReadyTimeout));
  third->signal(SIGTERM);
  CHECK(third->wait_exit(10s) == 0);
}

TEST_CASE("run_service keeps its config when SIGHUP brings a broken one, and applies a valid one",
          "[daemon][service]") {
  const Layout layout(TempDir::default_base(), 100);
  NotifySocket notify(layout.notify_path());
  auto daemon = layout.start({notify.env()});
  REQUIRE(notify.wait_for("READY=1", kReadyTimeout));

  write_file(layout.config(), "<labwatch><intake settle-ms=\"soon\"/></labwatch>\n");
  daemon->signal(SIGHUP);
  REQUIRE(notify.wait_for("RELOADING=1", 5s));
  REQUIRE(notify.wait_for("READY=1", 5s));
  CHECK(layout.daemon_log().find("reload refused") != std::string::npos);
  layout.drop("d1_wce_01.csv", read_file(corpus_file("d1_wce_01.csv")));
  CHECK(wait_until([&] { return fs::exists(layout.processed() / "d1_wce_01.csv"); }, kFileTimeout));

  // A valid config takes effect: processed files now go to another directory.
  layout.write_config(100, {},
                      "  <paths inbox=\"inbox\" processed=\"processed-2\" failed=\"failed\" "
                      "database=\"labwatch.db\"/>\n");
  daemon->signal(SIGHUP);
  REQUIRE(notify.wait_for("RELOADING=1", 5s));
  REQUIRE(notify.wait_for("READY=1", 5s));
  layout.drop("d1_wce_02.csv", read_file(corpus_file("d1_wce_02.csv")));
  CHECK(wait_until([&] { return fs::exists(layout.root() / "processed-2" / "d1_wce_02.csv"); },
                   kFileTimeout));

  CHECK(daemon->running());
  daemon->signal(SIGTERM);
  REQUIRE(daemon->wait_exit(10s) == 0);
  const auto per_file = rows_per_file(layout.export_rows());
  CHECK(per_file.count("d1_wce_01.csv") == 1);
  CHECK(per_file.count("d1_wce_02.csv") == 1);
}

TEST_CASE("run_service refuses symlinks, FIFOs, directories and hard links without reading them",
          "[daemon][service]") {
  const Layout layout(TempDir::default_base());
  // A valid lab file outside the inbox: had any entry below been followed, it would be stored.
  const fs::path outside = layout.root() / "outside.hl7";
  write_file(outside, read_file(corpus_file("a_qdx_02.hl7")));

  const auto make_hostile = [&](const fs::path& dir, const std::string& tag) {
    fs::create_symlink(outside, dir / ("s_" + tag + ".hl7"));
    REQUIRE(::mkfifo((dir / ("f_" + tag + ".hl7")).c_str(), 0600) == 0);
    fs::create_directory(dir / ("d_" + tag + ".hl7"));
    fs::create_hard_link(outside, dir / ("h_" + tag + ".hl7"));
  };
  make_hostile(layout.inbox(), "start");  // found by the start-up scan

  NotifySocket notify(layout.notify_path());
  auto daemon = layout.start({notify.env()});
  REQUIRE(notify.wait_for("READY=1", kReadyTimeout));

  make_hostile(layout.stage(), "live");  // renamed in while the daemon watches
  for (const char* name : {"s_live.hl7", "f_live.hl7", "d_live.hl7", "h_live.hl7"}) {
    fs::rename(layout.stage() / name, layout.inbox() / name);
  }
  // The daemon is still responsive, and a good file behind them goes through.
  layout.drop("d1_wce_01.csv", read_file(corpus_file("d1_wce_01.csv")));
  REQUIRE(
      wait_until([&] { return fs::exists(layout.processed() / "d1_wce_01.csv"); }, kFileTimeout));
  REQUIRE(
      wait_until([&] { return count_entries(layout.failed(), ".reason.txt") == 6; }, kFileTimeout));

  for (const std::string tag : {"start", "live"}) {
    CHECK(fs::is_symlink(layout.failed() / ("s_" + tag + ".hl7")));
    CHECK(read_file(layout.failed() / ("s_" + tag + ".hl7.reason.txt")).find("symlink") !=
          std::string::npos);
    CHECK(fs::is_fifo(layout.failed() / ("f_" + tag + ".hl7")));
    CHECK(read_file(layout.failed() / ("f_" + tag + ".hl7.reason.txt")).find("not_regular_file") !=
          std::string::npos);
    CHECK(read_file(layout.failed() / ("h_" + tag + ".hl7.reason.txt")).find("hard_link") !=
          std::string::npos);
    // Directories may be a producer's staging area: refused in the log, left where they are.
    CHECK(fs::is_directory(layout.inbox() / ("d_" + tag + ".hl7")));
    CHECK(layout.daemon_log().find("d_" + tag + ".hl7: refused (not_regular_file") !=
          std::string::npos);
  }
  CHECK(daemon->running());
  daemon->signal(SIGTERM);
  REQUIRE(daemon->wait_exit(10s) == 0);
  const auto per_file = rows_per_file(layout.export_rows());
  CHECK(per_file.size() == 1);
  CHECK(per_file.count("d1_wce_01.csv") == 1);
}

TEST_CASE("run_service files refusals with a reason and never overwrites a moved file",
          "[daemon][service]") {
  const Layout layout(TempDir::default_base());
  NotifySocket notify(layout.notify_path());
  auto daemon = layout.start({notify.env()});
  REQUIRE(notify.wait_for("READY=1", kReadyTimeout));
  const auto settled = [&](const fs::path& path) {
    return wait_until([&] { return fs::exists(path); }, kFileTimeout);
  };

  // Partly refused: the good rows are stored, the file goes to failed/ with its reasons.
  layout.drop("e_wce_not_a_number.csv", read_file(corpus_file("e_wce_not_a_number.csv")));
  REQUIRE(settled(layout.failed() / "e_wce_not_a_number.csv.reason.txt"));
  const std::string reason = read_file(layout.failed() / "e_wce_not_a_number.csv.reason.txt");
  CHECK(reason.find("outcome: partially refused") != std::string::npos);
  CHECK(reason.find("\n- ") != std::string::npos);
  CHECK(fs::exists(layout.failed() / "e_wce_not_a_number.csv"));

  // Three files of one name: the second (other bytes) and the third (already known) get numbers.
  const std::string first = read_file(corpus_file("d1_wce_01.csv"));
  const std::string second = read_file(corpus_file("d1_wce_02.csv"));
  layout.drop("d1_wce_01.csv", first);
  REQUIRE(settled(layout.processed() / "d1_wce_01.csv"));
  layout.drop("d1_wce_01.csv", second);
  REQUIRE(settled(layout.processed() / "d1_wce_01.1.csv"));
  layout.drop("d1_wce_01.csv", first);
  REQUIRE(settled(layout.processed() / "d1_wce_01.2.csv"));
  CHECK(read_file(layout.processed() / "d1_wce_01.csv") == first);
  CHECK(read_file(layout.processed() / "d1_wce_01.1.csv") == second);
  CHECK(read_file(layout.processed() / "d1_wce_01.2.csv") == first);

  // Two refused files of one name: both kept, each with its own reason file.
  layout.drop("e_garbage.hl7", read_file(corpus_file("e_garbage.hl7")));
  REQUIRE(settled(layout.failed() / "e_garbage.hl7.reason.txt"));
  layout.drop("e_garbage.hl7", "\x01\x02 not a lab file either\n");
  REQUIRE(settled(layout.failed() / "e_garbage.1.hl7.reason.txt"));
  CHECK(read_file(layout.failed() / "e_garbage.hl7") == read_file(corpus_file("e_garbage.hl7")));
  CHECK(read_file(layout.failed() / "e_garbage.1.hl7.reason.txt").find("unrecognized_format") !=
        std::string::npos);

  daemon->signal(SIGTERM);
  REQUIRE(daemon->wait_exit(10s) == 0);
  CHECK(count_entries(layout.inbox()) == 0);
}

TEST_CASE(
    "run_service waits while another writer holds the database past its busy timeout, the file "
    "staying in the inbox",
    "[daemon][service]") {
  const Layout layout(TempDir::default_base());
  NotifySocket notify(layout.notify_path());
  auto daemon = layout.start({notify.env()});
  REQUIRE(notify.wait_for("READY=1", kReadyTimeout));

  // Another writer holds the database's write lock past the daemon's busy timeout (5 s).
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open((layout.root() / "labwatch.db").c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK);
  layout.drop("d1_wce_01.csv", read_file(corpus_file("d1_wce_01.csv")));
  const std::optional<int> code = daemon->wait_exit(7s);
  const bool kept = fs::exists(layout.inbox() / "d1_wce_01.csv");
  sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  INFO(layout.daemon_log());
  CHECK_FALSE(code.has_value());
  CHECK(kept);
  CHECK(notify.count("STOPPING=1") == 0);
  CHECK(layout.daemon_log().find("<4>d1_wce_01.csv: the database is held by another writer") !=
        std::string::npos);

  // The lock is gone: the next try ingests it.
  CHECK(wait_until([&] { return fs::exists(layout.processed() / "d1_wce_01.csv"); }, 20s));
  daemon->signal(SIGTERM);
  REQUIRE(daemon->wait_exit(10s) == 0);
  CHECK(rows_per_file(layout.export_rows()).count("d1_wce_01.csv") == 1);
}

TEST_CASE("run_service killed mid-stream loses nothing and stores nothing twice",
          "[daemon][service]") {
  constexpr int kFiles = 400;
  const Layout layout(TempDir::fast_base());
  for (int i = 0; i < kFiles; ++i) {
    write_file(layout.stage() / ("gen_" + std::to_string(10000 + i) + ".csv"), generated_csv(i));
  }
  {
    NotifySocket notify(layout.notify_path());
    auto daemon = layout.start({notify.env()});
    REQUIRE(notify.wait_for("READY=1", kReadyTimeout));
    for (int i = 0; i < kFiles; ++i) {
      const std::string name = "gen_" + std::to_string(10000 + i) + ".csv";
      fs::rename(layout.stage() / name, layout.inbox() / name);
    }
    REQUIRE(wait_until([&] { return count_entries(layout.processed()) >= 40; }, kFileTimeout));
    daemon->signal(SIGKILL);
    REQUIRE(daemon->wait_exit(5s) == 128 + SIGKILL);
  }
  const std::size_t moved_before = count_entries(layout.processed());
  CHECK(moved_before < static_cast<std::size_t>(kFiles));
  fs::remove(layout.notify_path());

  NotifySocket notify(layout.notify_path());
  auto daemon = layout.start({notify.env()});
  REQUIRE(notify.wait_for("READY=1", 60s));
  daemon->signal(SIGTERM);
  REQUIRE(daemon->wait_exit(10s) == 0);
  // Every file moved exactly once under its own name (a committed file is recognized by its hash),
  // and exactly one result per file.
  CHECK(count_entries(layout.processed()) == static_cast<std::size_t>(kFiles));
  CHECK(count_entries(layout.inbox()) == 0);
  const auto per_file = rows_per_file(layout.export_rows());
  CHECK(per_file.size() == static_cast<std::size_t>(kFiles));
  CHECK(std::all_of(per_file.begin(), per_file.end(),
                    [](const auto& entry) { return entry.second == 1; }));
}

TEST_CASE("run_service reads a refused file moved back into the inbox once the config changed",
          "[daemon][service][reprocess]") {
  const Layout layout(TempDir::fast_base());
  NotifySocket notify(layout.notify_path());
  auto daemon = layout.start({notify.env()});
  REQUIRE(notify.wait_for("READY=1", kReadyTimeout));

  // A CSV export of a sender the config does not know yet: refused whole (unknown source).
  layout.drop("zz_0001.csv", generated_csv(1));
  const fs::path failed = layout.failed() / "zz_0001.csv";
  const fs::path reason = layout.failed() / "zz_0001.csv.reason.txt";
  REQUIRE(wait_until([&] { return fs::exists(failed); }, kFileTimeout));

  // Moved back under the same config: the refusal of these bytes is replayed, as before.
  fs::remove(reason);
  fs::rename(failed, layout.inbox() / "zz_0001.csv");
  REQUIRE(wait_until([&] { return fs::exists(failed) && fs::exists(reason); }, kFileTimeout));
  INFO(layout.daemon_log());
  CHECK(layout.daemon_log().find("zz_0001.csv: refused when first ingested") != std::string::npos);
  CHECK(layout.daemon_log().find("reading it again") == std::string::npos);
  CHECK(layout.export_rows().empty());

  // The admin adds the sender and reloads; the file moved back is read again and accepted.
  std::string xml = read_file(layout.config());
  const std::string sources = "  <sources>\n";
  xml.insert(xml.find(sources) + sources.size(),
             "    <source facility=\"ZZ\" timezone=\"Europe/London\" files=\"zz_*\"/>\n");
  write_file(layout.config(), xml);
  daemon->signal(SIGHUP);
  REQUIRE(notify.wait_for("RELOADING=1", 5s));
  REQUIRE(notify.wait_for("READY=1", 5s));
  fs::remove(reason);
  fs::rename(failed, layout.inbox() / "zz_0001.csv");
  REQUIRE(wait_until([&] { return fs::exists(layout.processed() / "zz_0001.csv"); }, kFileTimeout));
  CHECK_FALSE(fs::exists(failed));
  CHECK(layout.daemon_log().find(
            "zz_0001.csv: refused under another config before; reading it again") !=
        std::string::npos);
  CHECK(layout.export_rows().size() == 1);
  daemon->signal(SIGTERM);
  CHECK(daemon->wait_exit(10s) == 0);
}
