// SPDX-License-Identifier: Apache-2.0
// Reliability scenarios: a daemon under strace, the final clean run, and the end state to check.
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <charconv>
#include <csignal>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "reliability/lab_feed.hpp"
#include "reliability/probes.hpp"
#include "support/daemon_harness.hpp"

namespace labwatch::test {

constexpr auto kReadyTimeout = 120s;
constexpr int kKilled = 128 + SIGKILL;

// A command run under a wrapper that execs it in a child (strace): the wrapper is the Process,
// the daemon its only child. The daemon is SIGKILLed on destruction, so that a failed test never
// leaves one running detached from its tracer.
class Wrapped {
 public:
  Wrapped(std::vector<std::string> argv, const fs::path& log,
          const std::vector<std::string>& env = {})
      : wrapper_(std::move(argv), log, log, env) {}
  ~Wrapped() {
    if (const std::optional<pid_t> pid = child_pid()) {
      ::kill(*pid, SIGKILL);
    }
  }
  Wrapped(const Wrapped&) = delete;
  Wrapped& operator=(const Wrapped&) = delete;
  Wrapped(Wrapped&&) = delete;
  Wrapped& operator=(Wrapped&&) = delete;

  // The wrapped command's pid, once the wrapper has started it; nullopt when it has ended.
  std::optional<pid_t> child_pid() {
    std::optional<pid_t> pid;
    wait_until(
        [&] {
          if (!wrapper_.running()) {
            return true;
          }
          const std::string self = std::to_string(wrapper_.pid());
          std::string text;
          try {
            text = read_file(fs::path("/proc") / self / "task" / self / "children");
          } catch (const std::system_error&) {
            return true;
          }
          pid_t value = 0;
          if (std::from_chars(text.data(), text.data() + text.size(), value).ec == std::errc()) {
            pid = value;
          }
          return pid.has_value();
        },
        10s, 5ms);
    return pid;
  }
  // Sends `sig` to the wrapped command (strace would only pass it on when it dies itself).
  void signal(int sig) {
    if (const std::optional<pid_t> pid = child_pid()) {
      ::kill(*pid, sig);
    }
  }
  // The wrapped command's exit code (strace exits like it; 128 + signal when it was killed).
  std::optional<int> wait_exit(std::chrono::milliseconds timeout) {
    return wrapper_.wait_exit(timeout);
  }

 private:
  Process wrapper_;
};

// Starts the daemon once more and lets it finish: everything in the inbox is ingested before
// READY=1. Then a clean stop.
inline void drain(const Layout& layout) {
  std::error_code ignored;
  fs::remove(layout.notify_path(), ignored);
  NotifySocket notify(layout.notify_path());
  auto daemon = layout.start({notify.env()});
  REQUIRE(notify.wait_for("READY=1", kReadyTimeout));
  CHECK(wait_until([&] { return count_entries(layout.inbox()) == 0; }, 30s, 50ms));
  daemon->signal(SIGTERM);
  REQUIRE(daemon->wait_exit(10s) == 0);
}

// The end state every history must reach for `feed`, crashes or not: each file exactly once,
// under its own name, in processed/ (ingested whole, or a copy of a known file) or in failed/
// beside its reason file; the inbox empty; each expected result stored exactly once and each
// alert raised once; one person per patient; the database sound; no patient data in what admins
// read.
inline void check_outcome(const Layout& layout, const std::vector<FeedFile>& feed) {
  std::vector<std::string> processed;
  std::vector<std::string> failed;
  std::set<std::string> distinct_bytes;
  for (const FeedFile& f : feed) {
    if (f.whole) {
      processed.push_back(f.name);
    } else {
      failed.push_back(f.name);
      failed.push_back(f.name + ".reason.txt");
    }
    distinct_bytes.insert(f.bytes);
  }
  std::sort(processed.begin(), processed.end());
  std::sort(failed.begin(), failed.end());
  CHECK(entry_names(layout.inbox()) == Strings{});
  const std::vector<std::string> in_processed = entry_names(layout.processed());
  const std::vector<std::string> in_failed = entry_names(layout.failed());
  CHECK(missing_from(processed, in_processed) == Strings{});
  CHECK(missing_from(in_processed, processed) == Strings{});
  CHECK(missing_from(failed, in_failed) == Strings{});
  CHECK(missing_from(in_failed, failed) == Strings{});
  std::vector<std::string> bad_reasons;
  for (const FeedFile& f : feed) {
    const fs::path reason = layout.failed() / (f.name + ".reason.txt");
    if (!f.whole && fs::exists(reason) &&
        !read_file(reason).starts_with("labwatch did not ingest all of " + f.name + "\n")) {
      bad_reasons.push_back(f.name + ".reason.txt");
    }
  }
  CHECK(bad_reasons == Strings{});

  const std::vector<std::string> rows = layout.export_rows();
  const std::vector<std::string> stored = exported_keys(rows, original_names(feed));
  const std::vector<std::string> expected = expected_keys(feed);
  CHECK(missing_from(expected, stored) == Strings{});  // lost
  CHECK(missing_from(stored, expected) == Strings{});  // stored twice
  std::vector<std::string> split_patients;
  std::set<std::string> ids;
  for (const auto& [key, id] : person_ids(rows)) {
    if (id.starts_with("conflict")) {
      std::string line = key;
      line += ": " + id;
      split_patients.push_back(std::move(line));
    }
    ids.insert(id);
  }
  CHECK(split_patients == Strings{});
  CHECK(ids.size() == person_ids(rows).size());
  const std::vector<std::string> alerts = recorded_alerts(layout);
  const std::vector<std::string> expected_alert_rows = expected_alerts(feed);
  CHECK(missing_from(expected_alert_rows, alerts) == Strings{});
  CHECK(missing_from(alerts, expected_alert_rows) == Strings{});

  const Database db(layout.root() / "labwatch.db");
  CHECK(db.integrity() == "ok");
  CHECK(db.count("SELECT count(*) FROM files") == static_cast<std::int64_t>(distinct_bytes.size()));
  CHECK(db.count("SELECT count(*) FROM files WHERE outcome = 'open'") == 0);
  CHECK(phi_leaks(admin_texts(layout)) == Strings{});
}

}  // namespace labwatch::test
