// SPDX-License-Identifier: Apache-2.0
// The outbox dispatcher: claim on the loop, send on a worker thread, record the outcome on the
// loop.
#include "mail/outbox_dispatcher.hpp"

#include <algorithm>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "mail/alert_mail.hpp"
#include "os/log.hpp"

namespace labwatch::daemon {
namespace {

// With nothing due, the outbox is still looked at this often: a changed system clock, or a row
// queued by another process (`labwatch ingest` on the same database), is noticed within it.
constexpr std::chrono::seconds kMaxSleep{300};
// After the store failed to answer (e.g. locked by another writer), ask again after this long.
constexpr std::chrono::seconds kStoreRetry{5};

// The failure for a log line, always with the relay's reply code (or that there was none).
std::string failure_text(const SendResult& result) {
  const std::string code =
      result.smtp_code > 0 ? "SMTP " + std::to_string(result.smtp_code) : "no SMTP reply";
  std::string text = result.error.empty() ? std::string("no reason given") : result.error;
  if (text.find(code) == std::string::npos) {
    text += " (" + code + ")";
  }
  return text;
}

// A 4xx reply other than 421 (service closing) refuses this message, not the relay's service.
bool is_message_specific(const SendResult& result) {
  return result.smtp_code >= 400 && result.smtp_code < 500 && result.smtp_code != 421;
}

// The config a dispatcher made from mail settings and a catalogue stands for: no targets, so no
// trend report could be judged and none is attached.
config::Config config_without_targets(config::Mail mail, clinical::AnalyteCatalogue catalogue) {
  if (mail.attach_report) {
    log::warning(
        "mail: attach-report is on, but the mail dispatcher was given no targets; alert mail goes "
        "out without the trend report");
    mail.attach_report = false;
  }
  config::Config config;
  config.mail = std::move(mail);
  config.catalogue = std::move(catalogue);
  return config;
}

}  // namespace

std::chrono::seconds retry_delay(int failed_attempts, std::chrono::seconds retry_min,
                                 std::chrono::seconds retry_max) noexcept {
  const std::chrono::seconds low = std::max(retry_min, std::chrono::seconds(1));
  const std::chrono::seconds high = std::max(retry_max, low);
  std::chrono::seconds delay = low;
  for (int i = 0; i < failed_attempts && delay < high; ++i) {
    delay *= 2;
  }
  return std::min(delay, high);
}

// The worker's side. The worker thread shares ownership, so an abandoned send (see the destructor)
// keeps its mailer and message alive until it ends, whatever happens to the dispatcher.
struct OutboxDispatcher::Courier {
  explicit Courier(std::unique_ptr<Mailer> m) : mailer(std::move(m)) {}

  void run() {
    std::unique_lock lock(mutex);
    for (;;) {
      changed.wait(lock, [this] { return quit || job.has_value(); });
      if (!job) {
        return;
      }
      const MailMessage message = std::move(*job);
      job.reset();
      lock.unlock();
      SendResult outcome = send(message);
      lock.lock();
      result = std::move(outcome);
      busy = false;
      if (wake) {
        wake();
      }
      changed.notify_all();
    }
  }

  // An exception must not end the worker thread (that would terminate the daemon); Mailer promises
  // none for relay trouble, so one here is a local failure (memory, libcurl set-up) that a later
  // attempt may not meet.
  SendResult send(const MailMessage& message) noexcept {
    try {
      return mailer->send(message);
    } catch (const std::exception& e) {
      return SendResult{SendStatus::transient, 0, std::string("send failed: ") + e.what()};
    }
  }

  const std::unique_ptr<Mailer> mailer;  // used by the worker thread only
  std::mutex mutex;
  std::condition_variable changed;
  std::optional<MailMessage> job;    // guarded by mutex
  std::optional<SendResult> result;  // guarded by mutex
  bool busy = false;                 // guarded by mutex: a job waits or is being sent
  bool quit = false;                 // guarded by mutex
  std::function<void()> wake;        // guarded by mutex; empty once the dispatcher is gone
};

OutboxDispatcher::OutboxDispatcher(boost::asio::io_context& io, storage::MailOutbox& outbox,
                                   storage::ResultQueries& results, std::unique_ptr<Mailer> mailer,
                                   config::Mail mail, clinical::AnalyteCatalogue catalogue,
                                   DispatcherOptions options)
    : OutboxDispatcher(io, outbox, results, std::move(mailer),
                       config_without_targets(std::move(mail), std::move(catalogue)),
                       std::move(options)) {}

OutboxDispatcher::OutboxDispatcher(boost::asio::io_context& io, storage::MailOutbox& outbox,
                                   storage::ResultQueries& results, std::unique_ptr<Mailer> mailer,
                                   config::Config config, DispatcherOptions options)
    : io_(io),
      outbox_(outbox),
      results_(results),
      config_(std::move(config)),
      options_(std::move(options)),
      timer_(io),
      courier_(std::make_shared<Courier>(std::move(mailer))),
      jitter_source_(std::random_device{}()) {
  courier_->wake = [this, alive = std::weak_ptr<char>(alive_)] {
    boost::asio::post(io_, [this, alive] {
      if (!alive.expired()) {
        on_send_done();
      }
    });
  };
  worker_ = std::thread([courier = courier_] { courier->run(); });
}

OutboxDispatcher::~OutboxDispatcher() {
  stopping_ = true;
  try {
    timer_.cancel();
    std::unique_lock lock(courier_->mutex);
    courier_->wake = nullptr;
    if (in_flight_) {
      const bool done = courier_->changed.wait_for(lock, options_.shutdown_grace,
                                                   [this] { return !courier_->busy; });
      if (done && courier_->result) {
        const SendResult result = std::move(*courier_->result);
        courier_->result.reset();
        lock.unlock();
        record(*in_flight_, result);
        lock.lock();
      } else if (!done) {
        log::warning("mail: outbox " + std::to_string(in_flight_->outbox_id) +
                     " is still being sent at shutdown; it is sent again after the next start");
      }
    }
    courier_->quit = true;
    const bool abandoned = courier_->busy;
    lock.unlock();
    courier_->changed.notify_all();
    // A send past its grace is left to finish or time out on its own thread, which owns what it
    // uses; waiting for it could hold a stopping daemon for the whole SMTP timeout.
    if (abandoned) {
      worker_.detach();
    } else {
      worker_.join();
    }
  } catch (const std::exception& e) {
    log::error(std::string("mail: dispatcher shutdown: ") + e.what());
    if (worker_.joinable()) {
      worker_.detach();
    }
  }
}

void OutboxDispatcher::start() {
  started_ = true;
  const int reset = outbox_.reset_interrupted_mail();
  if (reset > 0) {
    log::info("mail: " + std::to_string(reset) + (reset == 1 ? " item was" : " items were") +
              " being sent when labwatch last stopped; queued again");
  }
  post_check();
}

void OutboxDispatcher::resume() {
  started_ = true;
  post_check();
}

void OutboxDispatcher::when_idle(std::function<void()> idle) {
  idle_ = std::move(idle);
  if (!in_flight_ && idle_) {
    boost::asio::post(io_, std::exchange(idle_, nullptr));
  }
}

void OutboxDispatcher::poke() {
  if (started_ && !stopping_ && !in_flight_) {
    post_check();
  }
}

void OutboxDispatcher::stop() {
  stopping_ = true;
  timer_.cancel();
}

void OutboxDispatcher::post_check() {
  if (check_posted_ || stopping_) {
    return;
  }
  check_posted_ = true;
  boost::asio::post(io_, [this, alive = std::weak_ptr<char>(alive_)] {
    if (!alive.expired()) {
      check();
    }
  });
}

void OutboxDispatcher::check() {
  check_posted_ = false;
  if (stopping_ || in_flight_) {
    return;
  }
  const clinical::UnixSeconds t = now();
  if (t < relay_pause_until_) {
    arm_timer(t, relay_pause_until_);
    return;
  }
  std::vector<storage::OutboxItem> items;
  std::optional<clinical::UnixSeconds> due;
  // A store failure here is not the daemon's end: ingestion goes on (and meets the same database
  // itself), and the outbox is read again later. Nothing was claimed, so nothing is lost.
  try {
    items = outbox_.claim_due_mail(t, 1);
    if (items.empty()) {
      due = outbox_.next_mail_due();
    }
  } catch (const std::exception& e) {
    log::error(std::string("mail: cannot read the outbox: ") + e.what());
    arm_timer(t, t + kStoreRetry.count());
    return;
  }
  if (items.empty()) {
    arm_timer(t, due);
    return;
  }
  dispatch(items.front(), t);
}

void OutboxDispatcher::arm_timer(clinical::UnixSeconds now,
                                 std::optional<clinical::UnixSeconds> due) {
  std::chrono::seconds wait = kMaxSleep;
  if (due) {
    // At least a second: an item due now that claim did not return must not spin the loop.
    wait = std::clamp(std::chrono::seconds(*due - now), std::chrono::seconds(1), kMaxSleep);
  }
  timer_.expires_after(wait);
  timer_.async_wait(
      [this, alive = std::weak_ptr<char>(alive_)](const boost::system::error_code& ec) {
        if (ec == boost::asio::error::operation_aborted || alive.expired()) {
          return;
        }
        if (ec) {
          log::error("mail: outbox timer: " + ec.message());
        }
        check();
      });
}

void OutboxDispatcher::dispatch(const storage::OutboxItem& item, clinical::UnixSeconds now) {
  InFlight flight;
  flight.outbox_id = item.id;
  flight.attempts = item.attempts;
  flight.recipient = item.recipient.practitioner_id.empty()
                         ? std::string("the default recipient")
                         : "practitioner " + item.recipient.practitioner_id;
  if (item.notices.empty()) {
    // Every notice was withdrawn while the item waited: there is nothing left to tell.
    log::info("mail: outbox " + std::to_string(item.id) + " has nothing left to say; closed");
    record(flight, SendResult{SendStatus::sent, 0, {}});
    post_check();
    return;
  }
  const std::optional<ReportInput> report =
      config_.mail.attach_report && item.recipient.full_phi ? report_for(item, now) : std::nullopt;
  MailMessage message =
      compose_alert_mail(item, config_.mail.from, config_.catalogue, now,
                         report ? &*report : nullptr, {&config_.targets, config_.mail.timezone});
  in_flight_ = std::move(flight);
  {
    const std::lock_guard lock(courier_->mutex);
    courier_->job = std::move(message);
    courier_->busy = true;
  }
  courier_->changed.notify_all();
}

// Why the alert goes out without the report when it cannot be read: the alert is what must not
// wait; a database busy with another writer would otherwise hold it back for the whole retry.
std::optional<ReportInput> OutboxDispatcher::report_for(const storage::OutboxItem& item,
                                                        clinical::UnixSeconds now) {
  const std::string id = "mail: outbox " + std::to_string(item.id);
  try {
    std::optional<ReportInput> report = load_report_input(results_, config_, item.person_id, now);
    if (!report) {
      log::warning(id + ": person " + std::to_string(item.person_id) +
                   " is not in the database; sent without the trend report");
    }
    return report;
  } catch (const std::exception& e) {
    log::warning(id + ": cannot read the trend report (" + e.what() + "); sent without it");
    return std::nullopt;
  }
}

void OutboxDispatcher::on_send_done() {
  std::optional<SendResult> result;
  {
    const std::lock_guard lock(courier_->mutex);
    result = std::move(courier_->result);
    courier_->result.reset();
  }
  if (!result || !in_flight_) {
    return;
  }
  const InFlight flight = std::move(*in_flight_);
  in_flight_.reset();
  record(flight, *result);
  if (idle_) {
    boost::asio::post(io_, std::exchange(idle_, nullptr));
  }
  post_check();
}

void OutboxDispatcher::record(const InFlight& item, const SendResult& result) noexcept {
  // As in check(): a store failure is logged, and the item, still claimed, is sent again after
  // the next start.
  try {
    const std::string id = "mail: outbox " + std::to_string(item.outbox_id);
    const clinical::UnixSeconds t = now();
    switch (result.status) {
      case SendStatus::sent:
        outbox_.mark_mail_sent(item.outbox_id, t);
        relay_failures_ = 0;
        ++counts_.sent;
        log::info(id + " sent to " + item.recipient);
        break;
      case SendStatus::transient: {
        // Why pause everything: unreachable, closing (421), dropping the connection or refusing
        // the session with 5xx (greeting, EHLO, AUTH, MAIL FROM, DATA: see SmtpMailer), the relay
        // would fail every other item the same way, each after its own timeout. Any other 4xx
        // reply concerns this message (e.g. its mailbox) only. The pause grows with the relay's
        // failures in a row, whichever item met them; item.attempts counts this attempt too, so
        // the first failure waits retry_min.
        const bool relay_fault = !is_message_specific(result);
        if (relay_fault) {
          ++relay_failures_;
        }
        const int failures = std::max(item.attempts - 1, relay_fault ? relay_failures_ - 1 : 0);
        const std::chrono::seconds delay = jittered(
            retry_delay(std::max(failures, 0), config_.mail.retry_min, config_.mail.retry_max));
        outbox_.mark_mail_retry(item.outbox_id, t + delay.count(), result.error);
        ++counts_.retried;
        if (relay_fault) {
          relay_pause_until_ = t + delay.count();
        }
        log::warning(id + " to " + item.recipient + " not sent: " + failure_text(result) +
                     "; attempt " + std::to_string(item.attempts) + ", next in " +
                     std::to_string(delay.count()) + " s");
        break;
      }
      case SendStatus::permanent:
        outbox_.mark_mail_failed(item.outbox_id, result.error);
        ++counts_.failed;
        log::warning(id + " to " + item.recipient + " refused: " + failure_text(result) +
                     "; it will not be retried");
        break;
    }
  } catch (const std::exception& e) {
    log::error("mail: outbox " + std::to_string(item.outbox_id) +
               ": cannot record the send result: " + e.what());
  }
}

clinical::UnixSeconds OutboxDispatcher::now() const {
  if (options_.clock) {
    return options_.clock();
  }
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::chrono::seconds OutboxDispatcher::jittered(std::chrono::seconds delay) {
  const auto most = static_cast<std::int64_t>(static_cast<double>(delay.count()) * options_.jitter);
  if (most <= 0) {
    return delay;
  }
  std::uniform_int_distribution<std::int64_t> extra(0, most);
  return delay + std::chrono::seconds(extra(jitter_source_));
}

}  // namespace labwatch::daemon
