// SPDX-License-Identifier: Apache-2.0
// Notifier: thin wrappers over libsystemd's sd_notify and sd_watchdog_enabled.
#include "daemon/notifier.hpp"

#include <systemd/sd-daemon.h>

#include <cstdint>
#include <ctime>
#include <string>
#include <system_error>

#include "os/log.hpp"

namespace labwatch::daemon {
namespace {

// STATUS= ends at a newline; a status never carries one of its own.
std::string status_line(std::string_view status) {
  std::string line = "STATUS=";
  for (char c : status) {
    line += (c == '\n' || c == '\r') ? ' ' : c;
  }
  return line;
}

}  // namespace

void Notifier::ready(std::string_view status) {
  const std::string message = "READY=1\n" + status_line(status);
  send(message.c_str());
}

void Notifier::status(std::string_view status) { send(status_line(status).c_str()); }

void Notifier::reloading() {
  // systemd >= 253 (Type=notify-reload) wants MONOTONIC_USEC with RELOADING=1; 252 ignores it.
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  const auto usec = static_cast<std::uint64_t>(now.tv_sec) * 1'000'000u +
                    static_cast<std::uint64_t>(now.tv_nsec) / 1'000u;
  const std::string message = "RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec);
  send(message.c_str());
}

void Notifier::stopping() { send("STOPPING=1"); }

void Notifier::watchdog() { send("WATCHDOG=1"); }

void Notifier::extend_timeout(std::chrono::microseconds extra) {
  const std::string message = "EXTEND_TIMEOUT_USEC=" + std::to_string(extra.count());
  send(message.c_str());
}

std::optional<std::chrono::microseconds> Notifier::watchdog_interval() {
  std::uint64_t usec = 0;
  if (::sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) {
    return std::nullopt;
  }
  return std::chrono::microseconds(static_cast<std::chrono::microseconds::rep>(usec));
}

void Notifier::send(const char* message) {
  const int rc = ::sd_notify(0, message);
  if (rc < 0 && !warned_) {
    warned_ = true;
    log::warning("sd_notify: " + std::generic_category().message(-rc));
  }
}

}  // namespace labwatch::daemon
