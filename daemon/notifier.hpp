// SPDX-License-Identifier: Apache-2.0
// Notifier: the daemon's side of the systemd notify protocol (READY, STATUS, WATCHDOG, ...).
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace labwatch::daemon {

// Sends sd_notify(3) messages. Every call is a no-op when the process was not started by systemd
// (no $NOTIFY_SOCKET); a failed send is logged once and never stops the daemon.
class Notifier {
 public:
  // READY=1 with a STATUS= line: start-up (or a reload) is complete.
  void ready(std::string_view status);
  // STATUS=: a one-line, human-readable state for `systemctl status` (no patient data).
  void status(std::string_view status);
  // RELOADING=1 with MONOTONIC_USEC=, sent before a reload; ready() ends it.
  void reloading();
  // STOPPING=1: shutdown has begun.
  void stopping();
  // WATCHDOG=1: the event loop is alive.
  void watchdog();
  // EXTEND_TIMEOUT_USEC=: asks for `extra` more time to finish starting or stopping.
  void extend_timeout(std::chrono::microseconds extra);

  // The interval systemd expects WATCHDOG=1 within ($WATCHDOG_USEC, when $WATCHDOG_PID is this
  // process or unset); nullopt when the watchdog is off.
  static std::optional<std::chrono::microseconds> watchdog_interval();

 private:
  void send(const char* message);

  bool warned_ = false;
};

}  // namespace labwatch::daemon
