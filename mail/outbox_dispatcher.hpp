// SPDX-License-Identifier: Apache-2.0
// OutboxDispatcher: drains the mail outbox on the event loop, sending on a worker thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>

#include "clinical/analyte_catalogue.hpp"
#include "clinical/normalized.hpp"
#include "config/config.hpp"
#include "mail/mailer.hpp"
#include "present/trend_report.hpp"
#include "storage/mail_outbox.hpp"
#include "storage/outbox.hpp"
#include "storage/store.hpp"

namespace labwatch::daemon {

// The wait before retry number `failed_attempts` + 1: retry_min * 2^failed_attempts, capped at
// retry_max (at least one second). Jitter is added by the caller.
std::chrono::seconds retry_delay(int failed_attempts, std::chrono::seconds retry_min,
                                 std::chrono::seconds retry_max) noexcept;

struct DispatcherOptions {
  // Unix time now; empty = the system clock. Tests pass a clock they move by hand.
  std::function<clinical::UnixSeconds()> clock;
  // Random extra wait added to each retry, as a fraction of it (spreads retries of many items).
  double jitter = 0.1;
  // At destruction, how long an unfinished send may still take before it is abandoned (it is then
  // sent again after the next start, with the same Message-ID).
  std::chrono::milliseconds shutdown_grace{2000};
};

// What the dispatcher did since it was made.
struct DispatchCounts {
  std::uint64_t sent = 0;
  std::uint64_t retried = 0;  // transient failures, each rescheduled
  std::uint64_t failed = 0;   // permanent failures
};

// Sends due outbox items one at a time. Store access (claim, mark) happens on the loop thread;
// only Mailer::send runs on the worker thread, whose result is posted back to the loop, so a slow
// or dead relay never blocks ingestion. A transient failure reschedules the item with exponential
// backoff; when the relay itself fails (no reply, 421, a dropped connection, a 5xx refusing the
// session rather than the recipient) no other item is tried before that retry time either, and
// the wait grows with the relay's failures in a row. A permanent failure (a recipient refused
// with 5xx, a message that cannot be rendered) marks the item failed. Delivery is
// at least once: an item claimed when the process dies is sent again after
// reset_interrupted_mail() at the next start, with the same Message-ID.
class OutboxDispatcher {
 public:
  // Uses `io`, `outbox` and `results` (all must outlive it; the outbox's items are claimed and
  // marked, the results read for an attached report); owns `mailer` and its copy of `config`: its
  // mail settings, the catalogue naming the analytes in the mail, and the targets that judge the
  // trend report a full-PHI recipient's mail carries when mail.attach_report is on. Starts the
  // worker thread; sends nothing before start().
  OutboxDispatcher(boost::asio::io_context& io, storage::MailOutbox& outbox,
                   storage::ResultQueries& results, std::unique_ptr<Mailer> mailer,
                   config::Config config, DispatcherOptions options = {});
  // As above from the mail settings and the catalogue alone. Without the configured targets a
  // report could not be judged, so none is attached whatever mail.attach_report says (a warning is
  // logged when it asks for one).
  OutboxDispatcher(boost::asio::io_context& io, storage::MailOutbox& outbox,
                   storage::ResultQueries& results, std::unique_ptr<Mailer> mailer,
                   config::Mail mail, clinical::AnalyteCatalogue catalogue,
                   DispatcherOptions options = {});
  // Stops; waits up to options.shutdown_grace for a send in flight and records its result, else
  // abandons it to its thread (the item stays claimed and is sent again after the next start).
  ~OutboxDispatcher();
  OutboxDispatcher(const OutboxDispatcher&) = delete;
  OutboxDispatcher& operator=(const OutboxDispatcher&) = delete;
  OutboxDispatcher(OutboxDispatcher&&) = delete;
  OutboxDispatcher& operator=(OutboxDispatcher&&) = delete;

  // Returns items a crash left claimed to the queue, then looks for due mail. Call once, at process
  // start, on the loop thread. Throws what the store throws for reset_interrupted_mail().
  void start();
  // As start(), but after a reload: an item left 'sending' belongs to the dispatcher of the
  // previous config, whose send is still running; it is neither reset nor claimed here, so that
  // no Message-ID goes out twice.
  void resume();
  // `idle` runs (posted to the loop) once this stopped dispatcher has no send in flight any more
  // and has recorded its result; at once if none is in flight. Lets a reload keep the previous
  // dispatcher until its send ends.
  void when_idle(std::function<void()> idle);
  // Looks for due mail now (after a file was ingested) instead of at the next timer.
  void poke();
  // Cancels the timer and claims nothing more. A send in flight finishes or times out; its result
  // is recorded if the loop still runs. Holds no work on the loop, so run() can return.
  void stop();

  // True while a send runs on the worker.
  [[nodiscard]] bool sending() const noexcept { return in_flight_.has_value(); }
  [[nodiscard]] const DispatchCounts& counts() const noexcept { return counts_; }

 private:
  struct Courier;  // the worker's side: job, result and wake-up, shared with the worker thread
  struct InFlight {
    std::int64_t outbox_id = 0;
    int attempts = 0;       // including this one
    std::string recipient;  // practitioner id, for log lines
  };

  void post_check();
  void check();
  void arm_timer(clinical::UnixSeconds now, std::optional<clinical::UnixSeconds> due);
  void dispatch(const storage::OutboxItem& item, clinical::UnixSeconds now);
  [[nodiscard]] std::optional<ReportInput> report_for(const storage::OutboxItem& item,
                                                      clinical::UnixSeconds now);
  void on_send_done();
  void record(const InFlight& item, const SendResult& result) noexcept;
  [[nodiscard]] clinical::UnixSeconds now() const;
  [[nodiscard]] std::chrono::seconds jittered(std::chrono::seconds delay);

  boost::asio::io_context& io_;
  storage::MailOutbox& outbox_;
  storage::ResultQueries& results_;  // read for the report a mail attaches
  config::Config config_;            // mail settings, catalogue and targets; nothing else is used
  DispatcherOptions options_;
  boost::asio::steady_timer timer_;
  std::shared_ptr<Courier> courier_;
  std::thread worker_;
  // Handlers posted to the loop hold a weak reference to this: once it is gone they do nothing.
  std::shared_ptr<char> alive_ = std::make_shared<char>();
  std::optional<InFlight> in_flight_;
  DispatchCounts counts_;
  std::minstd_rand jitter_source_;
  clinical::UnixSeconds relay_pause_until_ = 0;  // after a failure to reach the relay
  int relay_failures_ = 0;  // relay faults in a row (no reply, 421, 5xx to the session): backoff
  std::function<void()> idle_;  // see when_idle
  bool started_ = false;
  bool stopping_ = false;
  bool check_posted_ = false;
};

}  // namespace labwatch::daemon
