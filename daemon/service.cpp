// SPDX-License-Identifier: Apache-2.0
// The daemon loop: watcher -> work queue -> pipeline -> mover, with signals, watchdog and reload.
#include "daemon/service.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/error.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <deque>
#include <exception>
#include <filesystem>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <unordered_set>
#include <utility>
#include <vector>

#include "config/config_loader.hpp"
#include "daemon/config_check.hpp"
#include "daemon/exit_codes.hpp"
#include "daemon/file_mover.hpp"
#include "daemon/file_steps.hpp"
#include "daemon/folder_watcher.hpp"
#include "daemon/notifier.hpp"
#include "ingest/pipeline.hpp"
#include "mail/outbox_dispatcher.hpp"
#include "mail/smtp_mailer.hpp"
#include "os/log.hpp"
#include "present/text_format.hpp"
#include "storage/sql_postgres.hpp"
#include "storage/store.hpp"

namespace labwatch::daemon {
namespace {

// This daemon's name as a sender of the shared outbox: the host and its inbox. One daemon runs
// per inbox (it holds the inbox's lock), so what this name left 'sending' at a crash is no
// other process's to finish.
// Why a store failure is waited out rather than a failure of the file: another writer held the
// database, or the PostgreSQL server cannot be reached (restarting, the network down). nullopt for
// any other failure.
std::optional<std::string> wait_reason(const std::exception& e) {
  if (storage::is_busy(e)) {
    return std::string("the database is held by another writer");
  }
  if (storage::is_unreachable(e)) {
    return std::string("the database cannot be reached");
  }
  return std::nullopt;
}

std::string site_name(const std::string& inbox) {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) {
    host[0] = '\0';
  }
  std::error_code ignored;
  const std::filesystem::path absolute = std::filesystem::absolute(inbox, ignored);
  return std::string(host) + ":" +
         (absolute.empty() ? inbox : absolute.lexically_normal().string());
}

IngestEnd ingest_end(FileOutcome::Kind kind) noexcept {
  switch (kind) {
    case FileOutcome::Kind::accepted:
      return IngestEnd::accepted;
    case FileOutcome::Kind::already_known:
      return IngestEnd::already_known;
    case FileOutcome::Kind::partial:
      return IngestEnd::partial;
    case FileOutcome::Kind::refused:
      return IngestEnd::refused;
    case FileOutcome::Kind::changed:
      return IngestEnd::changed;
  }
  return IngestEnd::refused;
}

using Clock = std::chrono::steady_clock;

// After SIGTERM, cancelled handlers get this long to finish before the loop is stopped regardless.
constexpr std::chrono::seconds kStopFallback{10};
// While files keep coming, directory syncs are batched to at most one per interval.
constexpr std::chrono::milliseconds kSyncInterval{100};
// READY=1 waits for start-up files that are still settling, but no longer than settle + this.
constexpr std::chrono::seconds kReadyGrace{1};
// While a start-up backlog is ingested, ask systemd for more start time this often, by this much.
constexpr std::chrono::seconds kExtendEvery{5};
constexpr std::chrono::seconds kExtendBy{30};
// Start-up time asked for before the database is opened (and perhaps migrated).
constexpr std::chrono::minutes kMigrationGrace{15};
// STATUS= goes to systemd at most this often (a steady trickle of files would send one per file).
constexpr std::chrono::seconds kStatusInterval{1};
// Refusals of one file written to the log; all of them go to the reason file.
constexpr std::size_t kRefusalsLogged = 10;
// Another writer holding the database past the busy timeout: intake pauses, the file stays in the
// inbox, and it is tried again after a wait that doubles from the first to the last of these.
constexpr std::chrono::seconds kBusyRetryFirst{1};
constexpr std::chrono::seconds kBusyRetryMax{15};
// A file whose ingest failed this many times for an operational reason (an exception that is not
// about its content, a busy database excepted) goes to failed/ instead of stopping the daemon.
constexpr int kPoisonAttempts = 3;

// A config that loads but cannot run (directories that cannot work together, an unusable mail
// relay URL): EX_CONFIG at startup, refused on reload.
class UnusableConfig : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// An exclusive flock(2) on one of the layout's directories for as long as this process uses it: a
// second `labwatch run` on the same inbox would race the first for every file, and two sharing
// processed/ or failed/ would share their work files. The lock goes with the descriptor, so a
// crash releases it.
class DirLock {
 public:
  // Locks `dir`, or shares the lock one of `held` already has on the same directory (a reload
  // that keeps it). Throws std::system_error when another process holds it.
  DirLock(const std::string& dir, const std::vector<std::unique_ptr<DirLock>>& held) {
    fd_ = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd_ < 0) {
      throw std::system_error(errno, std::generic_category(), "open " + dir);
    }
    struct stat st {};
    if (::fstat(fd_, &st) != 0) {
      const int error = errno;
      ::close(fd_);
      throw std::system_error(error, std::generic_category(), "stat " + dir);
    }
    dev_ = st.st_dev;
    ino_ = st.st_ino;
    for (const auto& lock : held) {
      if (lock->dev_ == dev_ && lock->ino_ == ino_) {
        ::close(fd_);
        fd_ = ::fcntl(lock->fd_, F_DUPFD_CLOEXEC, 0);  // the same open file, so the same lock
        if (fd_ < 0) {
          throw std::system_error(errno, std::generic_category(), "dup the lock on " + dir);
        }
        return;
      }
    }
    int locked = -1;
    do {
      locked = ::flock(fd_, LOCK_EX | LOCK_NB);
    } while (locked != 0 && errno == EINTR);
    if (locked != 0) {
      const int error = errno;
      ::close(fd_);
      throw std::system_error(error, std::generic_category(),
                              error == EWOULDBLOCK
                                  ? "another labwatch process is already using " + dir
                                  : "lock " + dir);
    }
  }
  ~DirLock() { ::close(fd_); }
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;
  DirLock(DirLock&&) = delete;
  DirLock& operator=(DirLock&&) = delete;

 private:
  int fd_ = -1;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
};

// Everything built from one config. Members are destroyed bottom-up: the watcher first, and the
// pipeline and dispatcher before the store and config they refer to.
struct Runtime {
  std::vector<std::unique_ptr<DirLock>> locks;  // inbox, processed, failed
  std::unique_ptr<config::Config> config;
  std::unique_ptr<storage::Store> store;
  std::unique_ptr<OutboxDispatcher> dispatcher;  // null without <mail smtp=...>
  std::unique_ptr<Pipeline> pipeline;
  std::unique_ptr<FileMover> mover;
  std::unique_ptr<FolderWatcher> watcher;
  // Inbox files whose ingest failed before (the database's intake_attempts): usually none.
  std::vector<storage::IntakeAttempt> failing;
};

struct Counts {
  std::uint64_t accepted = 0;
  std::uint64_t partial = 0;
  std::uint64_t refused = 0;
  std::uint64_t known = 0;
};

std::string plural(std::uint64_t n, const char* what) {
  return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
}

storage::IntakeKey intake_key(const std::string& name, const struct stat& st) {
  storage::IntakeKey key;
  key.name = name;
  key.size = static_cast<std::int64_t>(st.st_size);
  key.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 +
                 static_cast<std::int64_t>(st.st_mtim.tv_nsec);
  return key;
}

// The reason file of a file set aside after kPoisonAttempts attempts that did not complete: they
// failed for an operational reason, or the process ended during them (`error` is then
// storage::kIntakeNotCompleted). Names no patient data.
std::string poison_reason(const std::string& name, int failures, const std::string& error) {
  const bool ended = error == storage::kIntakeNotCompleted;
  return "labwatch did not ingest all of " + printable(name) + "\noutcome: not ingested: " +
         (ended ? "abandoned after " + std::to_string(failures) +
                      " attempts that did not complete (labwatch ended while ingesting it: a "
                      "crash, a kill or a power loss)"
                : "its ingest failed " + std::to_string(failures) +
                      " times for an operational reason, not for its content") +
         "; nothing of it was stored\n" + (ended ? "" : "last error: " + printable(error) + "\n") +
         "Move it back into the inbox once the cause is fixed: it is then tried again.\n";
}

// The reason file of a file moved to failed/: what happened and each refusal, without patient data.
std::string reason_text(const FileOutcome& outcome) {
  // Names and details are shown escaped: a name holding a newline must not forge a line.
  std::string out = "labwatch did not ingest all of " + printable(outcome.file_name) + "\n";
  out += "outcome: " + std::string(to_string(outcome.kind)) + "\n";
  if (!outcome.sha256.empty()) {
    out += "sha256: " + outcome.sha256 + "\n";
  }
  const storage::IngestSummary& s = outcome.summary;
  if (s.reports > 0 || s.results_stored > 0 || s.duplicates > 0) {
    out += "stored: " + plural(static_cast<std::uint64_t>(s.reports), "report") + ", " +
           plural(static_cast<std::uint64_t>(s.results_stored), "result") + ", " +
           plural(static_cast<std::uint64_t>(s.duplicates), "duplicate") + "\n";
  }
  out += "refused (" + std::to_string(outcome.refused()) +
         (outcome.refusals_dropped > 0
              ? ", the first " + std::to_string(outcome.refusals.size()) + " listed"
              : std::string()) +
         "):\n";
  for (const parsers::Refusal& r : outcome.refusals) {
    out += "- " + printable(describe(r)) + "\n";
  }
  if (outcome.refusals_dropped > 0) {
    out += "and " + plural(outcome.refusals_dropped, "more refusal") +
           ", counted but not kept in detail\n";
  }
  return out;
}

class Service {
 public:
  explicit Service(std::string config_path) : config_path_(std::move(config_path)) {}

  int run(const config::Config& initial);

 private:
  std::unique_ptr<Runtime> build(config::Config config);
  void wait_stop_signal();
  void wait_reload_signal();
  void arm_watchdog();
  void arm_rescan();
  void arm_ready_deadline();

  void rescan(const char* why);
  void enqueue(const std::string& name);
  [[nodiscard]] bool has_unfinished_attempt(const std::string& name) const;
  void post_work();
  void work();
  void handle(const std::string& name);
  void pause_for_busy_database(const std::string& name, const std::string& reason,
                               const std::string& what);
  // Start-up: builds the runtime, waiting with backoff while another writer holds the database.
  // Returns false when a stop signal came first (or the config is unusable: exit_code_ says).
  bool start_runtime(const config::Config& initial);
  // Runs the loop until `wait` has passed or a stop was requested.
  void wait_unless_stopped(std::chrono::seconds wait);
  // Counts an attempt of `name` before it is read; false when it is not to be read now.
  bool begin_attempt(const std::string& name, const storage::IntakeKey& key);
  // Sets `name` aside in failed/ when kPoisonAttempts attempts of it did not complete; true when
  // it was handled so.
  bool set_aside_abandoned(const std::string& name, const storage::IntakeKey& key);
  bool set_aside(const std::string& name, const storage::IntakeKey& key, int failures,
                 const std::string& what);
  // Handles a failed ingest of `name` (not a busy database); returns false when the daemon stops.
  bool count_failure(const std::string& name, const storage::IntakeKey& key,
                     const std::string& what);
  void forget_failures(const storage::IntakeKey& key);
  void report(const FileOutcome& outcome, const std::string& moved_to);
  void leave(const std::string& name, ino_t ino, const std::string& why);
  void sync_moves();
  void maybe_ready();
  void publish_status();
  void reload();
  void request_stop(int exit_code, const std::string& why);
  [[nodiscard]] std::string status_text() const;

  boost::asio::io_context io_;
  std::string config_path_;
  // The dispatchers of configs replaced by a reload whose send was still in flight, each with the
  // store it records into; dropped once that send ended. Declared before rt_: destroyed after it.
  struct Retired {
    std::unique_ptr<storage::Store> store;
    std::unique_ptr<OutboxDispatcher> dispatcher;
  };
  std::vector<std::unique_ptr<Retired>> retired_;
  std::unique_ptr<Runtime> rt_;
  Notifier notifier_;
  boost::asio::signal_set stop_signals_{io_};
  boost::asio::signal_set reload_signal_{io_};
  boost::asio::steady_timer watchdog_timer_{io_};
  boost::asio::steady_timer rescan_timer_{io_};
  boost::asio::steady_timer ready_timer_{io_};
  boost::asio::steady_timer status_timer_{io_};
  boost::asio::steady_timer busy_timer_{io_};
  std::optional<Clock::duration> watchdog_period_;
  Clock::time_point last_watchdog_;

  // Complete files waiting for their turn, in order, each name once.
  std::deque<std::string> queue_;
  std::unordered_set<std::string> queued_;
  bool work_posted_ = false;
  // The database was held by another writer: no file is taken until busy_timer_ fires.
  bool paused_ = false;
  std::chrono::seconds busy_wait_{0};
  // The file whose attempt is counted and not yet settled: one a busy database paused is not
  // counted again when it is tried again.
  std::optional<storage::IntakeKey> attempt_begun_;
  // A SIGHUP that came while start-up waited for the database: the config is read again after.
  bool reload_pending_ = false;
  // Entries refused and left in the inbox (directories, unmovable things): logged once per inode.
  std::map<std::string, ino_t> left_;

  Counts counts_;
  bool ready_sent_ = false;
  bool ready_timer_armed_ = false;
  bool status_timer_armed_ = false;
  Clock::time_point last_status_;
  Clock::time_point ready_deadline_;
  Clock::time_point last_sync_;
  Clock::time_point last_extend_;
  bool stopping_ = false;
  int exit_code_ = kExitOk;
};

int Service::run(const config::Config& initial) {
  // Signals first: one that arrives while the database migrates waits for the loop instead of
  // killing the process (SIGHUP's default action).
  stop_signals_.add(SIGTERM);
  stop_signals_.add(SIGINT);
  reload_signal_.add(SIGHUP);
  wait_stop_signal();
  wait_reload_signal();
  // Opening the database migrates it when it is older; on a large one that may outlast
  // TimeoutStartSec, and a migration killed midway rolls back and starts over at every restart.
  notifier_.extend_timeout(kMigrationGrace);
  if (!start_runtime(initial)) {
    return exit_code_;
  }
  const config::Config& config = *rt_->config;
  watchdog_period_ = Notifier::watchdog_interval();
  log::info("started: config " + (config_path_.empty() ? "(built-in defaults)" : config_path_) +
            ", mail " + (config.mail.smtp_url.empty() ? "off" : "on") + ", inbox " +
            config.paths.inbox + ", processed " + config.paths.processed + ", failed " +
            config.paths.failed + ", database " +
            storage::sql::redact_postgresql_url(config.paths.database) + ", " +
            plural(config.sources.size(), "source") + ", settle " +
            std::to_string(config.intake.settle.count()) + " ms, rescan " +
            (config.intake.rescan.count() > 0 ? std::to_string(config.intake.rescan.count()) + " s"
                                              : "off") +
            ", watchdog " + (watchdog_period_ ? "on" : "off"));

  if (watchdog_period_) {
    // Ping at half the interval so one late wake-up is not fatal.
    *watchdog_period_ /= 2;
    notifier_.watchdog();
    last_watchdog_ = Clock::now();
    arm_watchdog();
  }
  arm_rescan();

  // The watch is already in place (build), so nothing dropped from here on can be missed.
  last_sync_ = last_extend_ = Clock::now();
  ready_deadline_ = Clock::now() + config.intake.settle + kReadyGrace;
  if (reload_pending_) {
    reload_pending_ = false;
    reload();
  }
  rescan("start-up");
  maybe_ready();

  while (!stopping_) {
    if (io_.run_one() == 0) {
      break;
    }
  }
  // Stopping: the watcher, timers and signals are cancelled; let their handlers return.
  io_.run_for(kStopFallback);
  if (!io_.stopped()) {
    log::warning("handlers still pending " + std::to_string(kStopFallback.count()) +
                 " s after stop; forcing exit");
    io_.stop();
  }
  log::info("stopped: " + status_text());
  return exit_code_;
}

// Why wait at start-up too: opening may need the write lock (a schema migration after an upgrade,
// mail a crash left half-sent), and another writer (a long `labwatch ingest`) may hold it for
// minutes. Exiting would have systemd restart the daemon into the same lock again and again.
bool Service::start_runtime(const config::Config& initial) {
  std::chrono::seconds wait{0};
  for (;;) {
    try {
      rt_ = build(initial);
      if (rt_->dispatcher) {
        rt_->dispatcher->start();  // mail a crash left half-sent goes out again first
      }
      if (wait.count() > 0) {
        log::info("the database is free again; starting");
      }
      return true;
    } catch (const UnusableConfig& e) {
      log::error(std::string("invalid config: ") + e.what());
      exit_code_ = kExitConfig;
      return false;
    } catch (const std::exception& e) {
      const std::optional<std::string> reason = wait_reason(e);
      if (!reason) {
        throw;
      }
      rt_.reset();
      wait = wait.count() == 0 ? kBusyRetryFirst : std::min(wait * 2, kBusyRetryMax);
      log::warning("waiting for the database " +
                   storage::sql::redact_postgresql_url(initial.paths.database) + ": " + *reason +
                   " (" + e.what() + "); trying again in " + std::to_string(wait.count()) + " s");
      notifier_.status("waiting for the database: " + *reason);
      notifier_.extend_timeout(wait + kExtendBy);
    }
    wait_unless_stopped(wait);
    if (stopping_) {
      log::info("stopped while waiting for the database");
      return false;
    }
  }
}

void Service::wait_unless_stopped(std::chrono::seconds wait) {
  bool done = false;
  busy_timer_.expires_after(wait);
  busy_timer_.async_wait([&done](const boost::system::error_code& /*ec*/) { done = true; });
  while (!done && io_.run_one() > 0) {
    // a stop signal cancels the timer (request_stop)
  }
}

std::unique_ptr<Runtime> Service::build(config::Config config) {
  auto rt = std::make_unique<Runtime>();
  rt->config = std::make_unique<config::Config>(std::move(config));
  const config::Paths& paths = rt->config->paths;
  storage::StoreOptions store_options;
  store_options.site = site_name(paths.inbox);
  rt->store = storage::open_store(paths.database, store_options);  // opens and migrates
  for (const std::string& dir : {paths.inbox, paths.processed, paths.failed}) {
    std::filesystem::create_directories(dir);
  }
  // The same checks as `labwatch check-config` (daemon/config_check.hpp).
  if (auto why = unusable_reason(*rt->config)) {
    throw UnusableConfig(*why);
  }
  static const std::vector<std::unique_ptr<DirLock>> kNone;
  for (const std::string& dir : {paths.inbox, paths.processed, paths.failed}) {
    rt->locks.push_back(std::make_unique<DirLock>(dir, rt_ ? rt_->locks : kNone));
  }
  rt->failing = rt->store->intake_attempts();
  rt->pipeline = std::make_unique<Pipeline>(*rt->config, *rt->store);
  // A refused file moved back into the inbox is read again once the config has changed.
  rt->pipeline->set_config_digest(config_fingerprint(*rt->config), true);
  // One large file holds the loop for seconds: keep the watchdog fed between its chunks.
  rt->pipeline->set_progress([this] {
    if (watchdog_period_ && Clock::now() - last_watchdog_ >= *watchdog_period_) {
      notifier_.watchdog();
      last_watchdog_ = Clock::now();
    }
  });
  if (!rt->config->mail.smtp_url.empty()) {
    // Mail goes out from its own worker thread; a slow or dead relay never holds up ingestion.
    SmtpOptions options;
    options.ca_file = rt->config->mail.ca_file;
    auto mailer = SmtpMailer::create(rt->config->mail, std::move(options));
    if (!mailer) {
      throw UnusableConfig("<mail smtp=...>: " + mailer.error());
    }
    rt->dispatcher = std::make_unique<OutboxDispatcher>(
        io_, *rt->store, *rt->store, std::make_unique<SmtpMailer>(std::move(mailer.value())),
        *rt->config);
  }
  rt->mover = std::make_unique<FileMover>(paths.inbox, paths.processed, paths.failed);
  FolderWatcher::Handlers handlers;
  handlers.ready = [this](const std::string& name) { enqueue(name); };
  handlers.overflow = [this] {
    log::warning("the inotify event queue overflowed; rescanning the inbox");
    rescan("overflow");
  };
  handlers.lost = [this](std::error_code ec) {
    log::error("lost the watch on the inbox (" + ec.message() + "); was it removed or unmounted?");
    request_stop(kExitFailure, "the inbox watch was lost");
  };
  rt->watcher = std::make_unique<FolderWatcher>(io_, paths.inbox, rt->config->intake.settle,
                                                std::move(handlers));
  rt->watcher->start();
  return rt;
}

void Service::wait_stop_signal() {
  stop_signals_.async_wait([this](const boost::system::error_code& ec, int signal) {
    if (ec == boost::asio::error::operation_aborted) {
      return;
    }
    request_stop(kExitOk, signal == SIGINT ? "SIGINT" : "SIGTERM");
  });
}

void Service::wait_reload_signal() {
  reload_signal_.async_wait([this](const boost::system::error_code& ec, int /*signal*/) {
    if (ec == boost::asio::error::operation_aborted || stopping_) {
      return;
    }
    if (!rt_) {
      reload_pending_ = true;  // start-up is waiting for the database
    } else {
      reload();
    }
    wait_reload_signal();
  });
}

void Service::arm_watchdog() {
  watchdog_timer_.expires_after(*watchdog_period_);
  watchdog_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec == boost::asio::error::operation_aborted || stopping_) {
      return;
    }
    notifier_.watchdog();
    last_watchdog_ = Clock::now();
    arm_watchdog();
  });
}

void Service::arm_rescan() {
  // Network file systems (NFS, SMB) report no inotify events for changes made by other machines.
  const std::chrono::seconds every = rt_->config->intake.rescan;
  if (every.count() == 0) {
    rescan_timer_.cancel();
    return;
  }
  rescan_timer_.expires_after(every);
  rescan_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec == boost::asio::error::operation_aborted || stopping_) {
      return;
    }
    rescan("periodic");
    arm_rescan();
  });
}

void Service::arm_ready_deadline() {
  if (ready_timer_armed_) {
    return;
  }
  ready_timer_armed_ = true;
  ready_timer_.expires_at(ready_deadline_);
  ready_timer_.async_wait([this](const boost::system::error_code& ec) {
    ready_timer_armed_ = false;
    if (ec == boost::asio::error::operation_aborted || stopping_) {
      return;
    }
    maybe_ready();
  });
}

void Service::rescan(const char* why) {
  std::vector<std::string> names;
  try {
    names = rt_->watcher->scan();
  } catch (const std::system_error& e) {
    log::error(std::string(why) + " scan: " + e.what());
    request_stop(kExitFailure, "the inbox cannot be read");
    return;
  }
  // Forget refused entries that are no longer there, so a new file of the same name is seen afresh.
  const std::unordered_set<std::string> present(names.begin(), names.end());
  std::erase_if(left_, [&present](const auto& entry) { return !present.contains(entry.first); });
  std::size_t added = 0;
  for (const std::string& name : names) {
    if (!queued_.contains(name) && !left_.contains(name)) {
      ++added;
    }
    enqueue(name);
  }
  if (added > 0 || std::string_view(why) != "periodic") {
    log::info(std::string(why) + " scan: " + plural(added, "file") + " to ingest, " +
              std::to_string(rt_->watcher->settling()) + " settling");
  }
}

// Why a file with an earlier attempt that did not complete waits behind the others: the process
// that ended during its ingest may have been killed from outside (a stop that timed out, an admin's
// SIGKILL, a power loss) right after it started, and a restart would begin with the same file and
// count it again, until an innocent file is set aside as poison. Behind the others, a file is only
// counted again when it is itself being read; a file that really crashes the process still
// reaches kPoisonAttempts, and meanwhile everything else is ingested.
void Service::enqueue(const std::string& name) {
  if (stopping_ || !queued_.insert(name).second) {
    return;
  }
  auto at = queue_.end();
  if (!has_unfinished_attempt(name)) {
    while (at != queue_.begin() && has_unfinished_attempt(*std::prev(at))) {
      --at;
    }
  }
  queue_.insert(at, name);
  post_work();
}

bool Service::has_unfinished_attempt(const std::string& name) const {
  return rt_ && std::ranges::any_of(rt_->failing, [&name](const storage::IntakeAttempt& a) {
           return a.key.name == name;
         });
}

void Service::post_work() {
  if (work_posted_ || paused_ || queue_.empty()) {
    return;
  }
  // One file per handler: signals, the watchdog and inotify reads run between files, and a stop
  // never splits one.
  work_posted_ = true;
  boost::asio::post(io_, [this] { work(); });
}

void Service::work() {
  work_posted_ = false;
  if (stopping_ || queue_.empty()) {
    return;
  }
  const std::string name = std::move(queue_.front());
  queue_.pop_front();
  queued_.erase(name);
  handle(name);
  if (stopping_ || paused_) {
    return;
  }
  const Clock::time_point now = Clock::now();
  if (!ready_sent_ && now - last_extend_ >= kExtendEvery) {
    notifier_.extend_timeout(kExtendBy);  // a long start-up backlog is progress, not a hang
    last_extend_ = now;
  }
  if (queue_.empty()) {
    sync_moves();
    maybe_ready();
    publish_status();
  } else {
    if (now - last_sync_ >= kSyncInterval) {
      sync_moves();
    }
    post_work();
  }
}

void Service::handle(const std::string& name) {
  Runtime& rt = *rt_;
  const std::filesystem::path path = std::filesystem::path(rt.config->paths.inbox) / name;
  struct stat before {};
  if (::lstat(path.c_str(), &before) != 0) {
    if (errno != ENOENT) {
      log::warning(name + ": lstat: " + std::generic_category().message(errno));
    }
    return;  // gone since it was reported (already moved, or removed by its producer)
  }
  if (const auto it = left_.find(name); it != left_.end() && it->second == before.st_ino) {
    return;
  }
  if (S_ISDIR(before.st_mode)) {
    // A directory may be a producer's staging area: refuse it, but never move it.
    leave(name, before.st_ino, "not_regular_file: a directory, not a file");
    return;
  }

  if (S_ISREG(before.st_mode) && open_writers(path) == Writers::some) {
    // Renamed in (or reported) while a process still holds it open for writing: not complete yet.
    log::debug(name + ": still open for writing; waiting for it to settle");
    rt.watcher->settle(name);
    return;
  }

  // A regular file's attempt is counted before a byte of it is read (begin_attempt), so that one
  // that crashes the process is counted too.
  std::optional<storage::IntakeKey> intake;
  if (S_ISREG(before.st_mode)) {
    intake = intake_key(name, before);
    if (set_aside_abandoned(name, *intake) || !begin_attempt(name, *intake)) {
      return;
    }
  }
  ClaimPolicy policy;
  policy.strict = true;
  policy.max_bytes = rt.config->intake.max_file_bytes;
  policy.unchanged_after_read = true;
  FileOutcome outcome;
  try {
    outcome = rt.pipeline->process_file(path, policy, intake);
  } catch (const std::exception& e) {
    if (const std::optional<std::string> reason = wait_reason(e)) {
      pause_for_busy_database(name, *reason, e.what());  // attempt_begun_ stays: not counted again
      return;
    }
    attempt_begun_.reset();
    count_failure(name, intake_key(name, before), e.what());
    return;
  }
  attempt_begun_.reset();
  if (intake) {
    if (outcome.sha256.empty() || outcome.summary.already_known) {
      forget_failures(*intake);  // nothing was committed, so the commit did not end the attempt
    } else {
      std::erase_if(rt.failing, [&intake](const storage::IntakeAttempt& a) {
        return a.key == *intake;  // ended by the file's commit
      });
    }
  }
  if (busy_wait_.count() > 0) {
    log::info("the database is free again; intake resumes");
    busy_wait_ = std::chrono::seconds(0);
  }
  const AfterIngest destination = after_ingest(ingest_end(outcome.kind));
  if (destination == AfterIngest::settle_again) {
    log::info(name +
              ": changed while it was read; nothing stored, reading it again once it settles");
    rt.watcher->settle(name);
    return;
  }
  if (outcome.summary.notices > 0 && rt.dispatcher) {
    rt.dispatcher->poke();  // mail was queued in the file's transaction: look at the outbox now
  }

  // Files are moved by name, and a name can be reused for a new file at any moment: the mover
  // claims the entry and moves it only when it is the file that was read, unchanged (an entry
  // refused unopened: the one looked at). Another one goes back to the inbox, to be read on its
  // own.
  const FileIdentity read = outcome.read ? *outcome.read : identity_of(before);
  std::optional<std::string> moved;
  MoveEnd move_end = MoveEnd::moved;
  std::string move_error;
  try {
    moved = destination == AfterIngest::to_processed
                ? rt.mover->to_processed(name, read)
                : rt.mover->to_failed(name, reason_text(outcome), read);
    if (!moved) {
      move_end = MoveEnd::replaced;
    }
  } catch (const std::system_error& e) {
    struct stat now {};
    move_end =
        ::lstat(path.c_str(), &now) != 0 && errno == ENOENT ? MoveEnd::gone : MoveEnd::cannot_move;
    move_error = e.what();
  }
  const std::string kind(to_string(outcome.kind));
  switch (after_move(move_end, destination, S_ISREG(before.st_mode))) {
    case AfterMove::report_and_sync:
      sync_moves();
      report(outcome, *moved);
      return;
    case AfterMove::report:
      report(outcome, *moved);
      return;
    case AfterMove::settle_again:
      log::info(name + ": " + kind +
                "; replaced or changed under its name after it was read: the file there now is "
                "read on its own");
      rt.watcher->settle(name);
      return;
    case AfterMove::forget:
      log::info(name + ": removed from the inbox before it was moved");
      return;
    case AfterMove::leave:
      leave(name, before.st_ino, kind + "; it cannot be moved: " + move_error);
      return;
    case AfterMove::stop:
      log::error(name + ": " + kind + ", but it cannot be moved: " + move_error);
      request_stop(kExitFailure, "a file cannot be moved out of the inbox");
      return;
  }
}

// Why count failures: an exception that is not about the file's content (a bug met by one file, a
// failing disk, a full database) used to stop the daemon; systemd restarted it, it met the same
// file first again, and everything behind that file waited forever. The attempts are counted in
// the database, so restarts count too. Until kPoisonAttempts the daemon still stops (the cause may
// be passing, or the disk failing); then the file is set aside in failed/ and intake goes on.
bool Service::count_failure(const std::string& name, const storage::IntakeKey& key,
                            const std::string& what) {
  Runtime& rt = *rt_;
  int failures = 0;
  try {
    failures = rt.store->record_intake_failure(key, what);
  } catch (const std::exception& e) {
    log::error(name + ": the failure cannot be recorded either: " + e.what());
  }
  if (after_failure(failures, kPoisonAttempts) == AfterFailure::keep_and_stop) {
    // Nothing of this file was committed: keep it where it is for the next start.
    log::error(name + ": not ingested, left in the inbox (failure " + std::to_string(failures) +
               " of " + std::to_string(kPoisonAttempts) + "): " + what);
    request_stop(kExitFailure, "a database or I/O failure");
    return false;
  }
  return set_aside(name, key, failures, what);
}

// Why count before reading: a file that crashes the process (a parser bug met by a segfault, an
// abort, the OOM killer) throws nothing that count_failure could see; systemd restarted the daemon
// into the same file forever. The attempt is committed first, so a crash leaves it counted; a
// completed ingest ends it in its own commit (FileRecord::intake): one small commit per file.
bool Service::begin_attempt(const std::string& name, const storage::IntakeKey& key) {
  if (attempt_begun_ == key) {
    return true;  // begun before a busy database paused it: the same attempt
  }
  int attempts = 0;
  try {
    attempts = rt_->store->begin_intake_attempt(key);
  } catch (const std::exception& e) {
    if (const std::optional<std::string> reason = wait_reason(e)) {
      pause_for_busy_database(name, *reason, e.what());
      return false;
    }
    log::error(name +
               ": not ingested, left in the inbox: its attempt cannot be recorded: " + e.what());
    request_stop(kExitFailure, "a database or I/O failure");
    return false;
  }
  attempt_begun_ = key;
  if (attempts > 1) {
    log::warning(name + ": attempt " + std::to_string(attempts) + " of " +
                 std::to_string(kPoisonAttempts) + "; the earlier ones did not complete");
  }
  return true;
}

bool Service::set_aside_abandoned(const std::string& name, const storage::IntakeKey& key) {
  if (attempt_begun_ == key) {
    return false;  // counted by this process, which is still alive
  }
  const auto it = std::ranges::find_if(
      rt_->failing, [&key](const storage::IntakeAttempt& a) { return a.key == key; });
  if (it == rt_->failing.end() || it->failures < kPoisonAttempts) {
    return false;
  }
  const int failures = it->failures;
  const std::string what = it->last_error;
  set_aside(name, key, failures, what);
  return true;
}

// Moves `name` to failed/ with its poison reason; false when the daemon stops instead.
bool Service::set_aside(const std::string& name, const storage::IntakeKey& key, int failures,
                        const std::string& what) {
  Runtime& rt = *rt_;
  std::optional<std::string> moved;
  try {
    moved = rt.mover->to_failed(name, poison_reason(name, failures, what));
    sync_moves();
  } catch (const std::system_error& e) {
    log::error(name + ": failed " + std::to_string(failures) +
               " times, but it cannot be moved: " + e.what());
    request_stop(kExitFailure, "a file cannot be moved out of the inbox");
    return false;
  }
  ++counts_.refused;
  log::error(name + ": not ingested after " + std::to_string(failures) +
             " attempts that did not complete; set aside -> failed/" + moved.value_or(name) +
             " (last error: " + what + ")");
  forget_failures(key);
  return true;
}

void Service::forget_failures(const storage::IntakeKey& key) {
  std::vector<storage::IntakeAttempt>& failing = rt_->failing;
  std::erase_if(failing, [&key](const storage::IntakeAttempt& a) { return a.key == key; });
  try {
    rt_->store->forget_intake_attempt(key);
  } catch (const std::exception& e) {
    log::warning(key.name + ": cannot forget its earlier failures: " + e.what());
  }
}

// Why wait rather than exit: another writer (a long `labwatch ingest`, a backup, an admin's
// sqlite3) holds the lock for a while and then lets go. Exiting would only have systemd restart
// the daemon into the same lock, again and again. Nothing of the file was committed; it goes back
// to the head of the queue and everything behind it waits with it, in order.
void Service::pause_for_busy_database(const std::string& name, const std::string& reason,
                                      const std::string& what) {
  busy_wait_ = busy_wait_.count() == 0 ? kBusyRetryFirst : std::min(busy_wait_ * 2, kBusyRetryMax);
  log::warning(name + ": " + reason + " (" + what + "); left in the inbox, trying again in " +
               std::to_string(busy_wait_.count()) + " s");
  if (queued_.insert(name).second) {
    queue_.push_front(name);
  }
  paused_ = true;
  if (!ready_sent_) {
    notifier_.extend_timeout(kExtendBy);  // a start-up backlog waiting for the lock is no hang
  }
  busy_timer_.expires_after(busy_wait_);
  busy_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec == boost::asio::error::operation_aborted || stopping_) {
      return;
    }
    paused_ = false;
    post_work();
  });
}

void Service::report(const FileOutcome& outcome, const std::string& moved_to) {
  switch (outcome.kind) {
    case FileOutcome::Kind::accepted:
      ++counts_.accepted;
      break;
    case FileOutcome::Kind::partial:
      ++counts_.partial;
      break;
    case FileOutcome::Kind::refused:
      ++counts_.refused;
      break;
    case FileOutcome::Kind::already_known:
      ++counts_.known;
      break;
    case FileOutcome::Kind::changed:
      break;  // not moved, never reported
  }
  const storage::IngestSummary& s = outcome.summary;
  const bool whole = outcome.kind == FileOutcome::Kind::accepted ||
                     outcome.kind == FileOutcome::Kind::already_known;
  std::string line = outcome.file_name + ": " + std::string(to_string(outcome.kind));
  if (s.already_known && outcome.kind != FileOutcome::Kind::already_known) {
    // Stored before a crash took the move: filed now as it was judged then, nothing stored again.
    line += " when first ingested, " + std::to_string(outcome.refused()) +
            " refused; already in the database";
  } else if (outcome.kind != FileOutcome::Kind::already_known) {
    line += ", " + plural(static_cast<std::uint64_t>(s.results_stored), "result") + " stored, " +
            plural(static_cast<std::uint64_t>(s.duplicates), "duplicate") + ", " +
            std::to_string(outcome.refused()) + " refused";
    if (s.alerts > 0) {
      line += ", " + plural(static_cast<std::uint64_t>(s.alerts), "alert");
    }
    if (const int unmapped = unmapped_results(outcome); unmapped > 0) {
      line += ", " + std::to_string(unmapped) + " unmapped (see labwatch unmapped)";
    }
  }
  line += std::string(" -> ") + (whole ? "processed/" : "failed/") + moved_to;
  if (whole) {
    log::info(line);
  } else {
    log::warning(line);
    const std::size_t shown = std::min(outcome.refusals.size(), kRefusalsLogged);
    for (std::size_t i = 0; i < shown; ++i) {
      log::warning(outcome.file_name + ": " + describe(outcome.refusals[i]));
    }
    if (outcome.refused() > shown) {
      log::warning(outcome.file_name + ": " + std::to_string(outcome.refused() - shown) +
                   " more refusals in failed/" + moved_to + ".reason.txt");
    }
  }
}

void Service::leave(const std::string& name, ino_t ino, const std::string& why) {
  left_[name] = ino;
  log::warning(name + ": refused (" + why + "); left in the inbox");
}

void Service::sync_moves() {
  last_sync_ = Clock::now();
  if (!rt_ || !rt_->mover->dirty()) {
    return;
  }
  try {
    rt_->mover->sync();
  } catch (const std::system_error& e) {
    // The files are stored; a move that is lost in a crash is redone (the hash makes it harmless).
    log::error(e.what());
  }
}

void Service::maybe_ready() {
  if (ready_sent_ || stopping_ || !queue_.empty()) {
    return;
  }
  if (rt_->watcher->settling() > 0 && Clock::now() < ready_deadline_) {
    arm_ready_deadline();  // start-up files still settling: wait for them, up to the deadline
    return;
  }
  ready_sent_ = true;
  ready_timer_.cancel();
  notifier_.ready(status_text());
  last_status_ = Clock::now();
  log::info("ready: " + status_text());
}

void Service::publish_status() {
  if (!ready_sent_ || status_timer_armed_) {
    return;  // READY=1 carries the status, or an update is already due
  }
  const Clock::time_point due = last_status_ + kStatusInterval;
  if (Clock::now() >= due) {
    notifier_.status(status_text());
    last_status_ = Clock::now();
    return;
  }
  status_timer_armed_ = true;
  status_timer_.expires_at(due);
  status_timer_.async_wait([this](const boost::system::error_code& ec) {
    status_timer_armed_ = false;
    if (ec == boost::asio::error::operation_aborted || stopping_) {
      return;
    }
    notifier_.status(status_text());
    last_status_ = Clock::now();
  });
}

void Service::reload() {
  if (config_path_.empty()) {
    log::warning("SIGHUP: running on the built-in defaults; there is no config file to reload");
    return;
  }
  log::info("SIGHUP: reloading " + config_path_);
  if (ready_sent_) {
    notifier_.reloading();
  }
  std::unique_ptr<Runtime> next;
  auto loaded = config::load_config(config_path_);
  if (!loaded) {
    log::error("reload refused, still running on the previous config: " +
               loaded.error().to_string());
  } else {
    try {
      next = build(std::move(loaded.value()));
    } catch (const std::exception& e) {
      log::error(std::string("reload refused, still running on the previous config: ") + e.what());
    }
  }
  if (next) {
    rt_->watcher->close();
    if (rt_->dispatcher) {
      // Why the old dispatcher is kept: its send may still be running (a slow relay). Destroyed
      // now, it would abandon the item claimed ('sending'), and the next start would send it
      // again. Kept with its store until the send ends, it records the outcome itself; the new
      // dispatcher resumes without resetting claimed items, so it never takes that one.
      rt_->dispatcher->stop();
      if (rt_->dispatcher->sending()) {
        auto retired = std::make_unique<Retired>();
        retired->store = std::move(rt_->store);
        retired->dispatcher = std::move(rt_->dispatcher);
        Retired* const key = retired.get();
        retired->dispatcher->when_idle([this, key] {
          std::erase_if(retired_, [key](const auto& r) { return r.get() == key; });
        });
        retired_.push_back(std::move(retired));
      }
    }
    sync_moves();
    // The old watcher's queued handlers see that it is gone and return; its files settling and the
    // queue are rebuilt by the scan below (the inbox may have changed).
    rt_ = std::move(next);
    queue_.clear();
    queued_.clear();
    left_.clear();
    arm_rescan();
    if (rt_->dispatcher) {
      try {
        rt_->dispatcher->resume();
      } catch (const std::exception& e) {
        log::error(std::string("mail outbox: ") + e.what());
        request_stop(kExitFailure, "the database failed");
        return;
      }
    }
    log::info("reloaded " + config_path_ + ": inbox " + rt_->config->paths.inbox + ", " +
              plural(rt_->config->sources.size(), "source"));
    rescan("reload");
  }
  if (ready_sent_) {
    notifier_.ready(status_text());
  }
}

void Service::request_stop(int exit_code, const std::string& why) {
  if (stopping_) {
    return;
  }
  stopping_ = true;
  exit_code_ = exit_code;
  notifier_.stopping();
  log::info("stopping (" + why + ")");
  boost::system::error_code ignored;
  // Default dispositions come back, so a second SIGTERM or Ctrl-C ends the process at once.
  stop_signals_.clear(ignored);
  reload_signal_.clear(ignored);
  stop_signals_.cancel(ignored);
  reload_signal_.cancel(ignored);
  watchdog_timer_.cancel();
  rescan_timer_.cancel();
  ready_timer_.cancel();
  status_timer_.cancel();
  busy_timer_.cancel();
  if (rt_) {
    rt_->watcher->close();
    if (rt_->dispatcher) {
      rt_->dispatcher->stop();  // a send in flight finishes or times out; nothing new is claimed
    }
    sync_moves();
  }
  // Files still queued stay in the inbox; the next start finds them.
  queue_.clear();
  queued_.clear();
}

std::string Service::status_text() const {
  const std::uint64_t total = counts_.accepted + counts_.partial + counts_.refused + counts_.known;
  std::string out = plural(total, "file") + ": " + std::to_string(counts_.accepted) +
                    " accepted, " + std::to_string(counts_.partial) + " partially refused, " +
                    std::to_string(counts_.refused) + " refused, " + std::to_string(counts_.known) +
                    " already known";
  if (!queue_.empty() || (rt_ && rt_->watcher->settling() > 0)) {
    out += "; " + std::to_string(queue_.size()) + " queued, " +
           std::to_string(rt_ ? rt_->watcher->settling() : 0) + " settling";
  }
  if (!left_.empty()) {
    out += "; left in the inbox: " + std::to_string(left_.size());
  }
  if (rt_ && rt_->dispatcher) {
    const DispatchCounts& mail = rt_->dispatcher->counts();
    out += "; mail: " + std::to_string(mail.sent) + " sent, " + std::to_string(mail.retried) +
           " retried, " + std::to_string(mail.failed) + " failed";
  }
  return out;
}

}  // namespace

int run_service(const config::Config& config, const std::string& config_path) {
  Service service(config_path);
  return service.run(config);
}

}  // namespace labwatch::daemon
