// SPDX-License-Identifier: Apache-2.0
// Reliability probes: peak RSS, database checks, PHI canaries, strace traces, scenario scaling.
#pragma once

#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <iterator>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "reliability/lab_feed.hpp"
#include "support/daemon_harness.hpp"

namespace labwatch::test {

// True in a build instrumented by AddressSanitizer, whose shadow memory inflates every RSS figure.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kAddressSanitizer = true;
#else
constexpr bool kAddressSanitizer = false;
#endif
#else
constexpr bool kAddressSanitizer = false;
#endif

// The peak RSS a daemon may reach in these scenarios. Under ASan the shadow memory and the
// quarantine of freed blocks count too, so the cap there only catches runaway growth.
constexpr std::uint64_t kRssCapBytes = (kAddressSanitizer ? 512ULL : 64ULL) << 20;

// LABWATCH_STRESS_SCALE (a decimal in (0, 1], default 1) shrinks the large scenarios: scripts/test
// sets it for the sanitizer pass, where every step is several times slower.
inline double stress_scale() {
  const char* text =
      std::getenv("LABWATCH_STRESS_SCALE");  // NOLINT(concurrency-mt-unsafe): read before threads
  if (text == nullptr || *text == '\0') {
    return 1.0;
  }
  const std::string_view s(text);
  double scale = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), scale);
  if (ec != std::errc() || end != s.data() + s.size() || !(scale > 0.0) || scale > 1.0) {
    throw std::invalid_argument("LABWATCH_STRESS_SCALE must be a number in (0, 1], not '" +
                                std::string(s) + "'");
  }
  return scale;
}

// `full` scaled by stress_scale(), at least `floor`.
inline int scaled(int full, int floor = 1) {
  return std::max(floor, static_cast<int>(full * stress_scale()));
}

// VmHWM (peak resident set) of a running process, in bytes; nullopt once it is gone.
inline std::optional<std::uint64_t> peak_rss_bytes(pid_t pid) {
  const fs::path status = fs::path("/proc") / std::to_string(pid) / "status";
  std::string text;
  try {
    text = read_file(status);
  } catch (const std::system_error&) {
    return std::nullopt;
  }
  constexpr std::string_view kField = "VmHWM:";
  const std::size_t at = text.find(kField);
  if (at == std::string::npos) {
    return std::nullopt;
  }
  const std::size_t digits = text.find_first_of("0123456789", at + kField.size());
  if (digits == std::string::npos) {
    return std::nullopt;
  }
  std::uint64_t kib = 0;
  const char* last = text.data() + text.size();
  const auto [end, ec] = std::from_chars(text.data() + digits, last, kib);
  if (ec != std::errc() ||
      std::string_view(end, static_cast<std::size_t>(last - end)).substr(0, 3) != " kB") {
    return std::nullopt;
  }
  return kib * 1024;
}

// Bytes a running process has read so far through read(2) and its relatives (rchar of
// /proc/PID/io); nullopt once it is gone.
inline std::optional<std::uint64_t> bytes_read(pid_t pid) {
  std::string text;
  try {
    text = read_file(fs::path("/proc") / std::to_string(pid) / "io");
  } catch (const std::system_error&) {
    return std::nullopt;
  }
  constexpr std::string_view kField = "rchar: ";
  const std::size_t at = text.find(kField);
  if (at == std::string::npos) {
    return std::nullopt;
  }
  std::uint64_t n = 0;
  const char* first = text.data() + at + kField.size();
  if (std::from_chars(first, text.data() + text.size(), n).ec != std::errc()) {
    return std::nullopt;
  }
  return n;
}

// Watches the WATCHDOG=1 pings on a NotifySocket from its own thread (sampling every 20 ms) and
// reports the longest time that passed without one: systemd kills a service whose silence
// exceeds WATCHDOG_USEC.
class PulseMonitor {
 public:
  explicit PulseMonitor(NotifySocket& notify) : notify_(notify) {
    thread_ = std::thread([this] { run(); });
  }
  ~PulseMonitor() {
    stop_ = true;
    thread_.join();
  }
  PulseMonitor(const PulseMonitor&) = delete;
  PulseMonitor& operator=(const PulseMonitor&) = delete;
  PulseMonitor(PulseMonitor&&) = delete;
  PulseMonitor& operator=(PulseMonitor&&) = delete;

  // The longest silence so far, the current one included.
  [[nodiscard]] std::chrono::milliseconds longest_silence() {
    const std::lock_guard lock(mutex_);
    return std::max(longest_, since(last_ping_));
  }
  [[nodiscard]] std::size_t pings() { return notify_.count("WATCHDOG=1"); }

 private:
  static std::chrono::milliseconds since(Clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t);
  }
  void run() {
    std::size_t seen = pings();
    while (!stop_) {
      std::this_thread::sleep_for(20ms);
      const std::size_t now = pings();
      if (now != seen) {
        const std::lock_guard lock(mutex_);
        longest_ = std::max(longest_, since(last_ping_));
        last_ping_ = Clock::now();
        seen = now;
      }
    }
  }

  NotifySocket& notify_;
  std::mutex mutex_;
  Clock::time_point last_ping_ = Clock::now();  // guarded by mutex_
  std::chrono::milliseconds longest_{0};        // guarded by mutex_
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// A read-only connection to a labwatch database, for checks the CLI does not offer.
class Database {
 public:
  explicit Database(const fs::path& path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
      const std::string error = sqlite3_errmsg(db_);
      sqlite3_close(db_);
      throw std::runtime_error("open " + path.string() + ": " + error);
    }
    sqlite3_busy_timeout(db_, 5000);
  }
  ~Database() { sqlite3_close(db_); }
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  Database(Database&&) = delete;
  Database& operator=(Database&&) = delete;

  // The first column of every row of `sql`, as text ("" for NULL).
  [[nodiscard]] std::vector<std::string> column(const std::string& sql) const {
    sqlite3_stmt* statement = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &statement, nullptr) != SQLITE_OK) {
      throw std::runtime_error(sql + ": " + sqlite3_errmsg(db_));
    }
    std::vector<std::string> out;
    int rc = 0;
    while ((rc = sqlite3_step(statement)) == SQLITE_ROW) {
      const unsigned char* text = sqlite3_column_text(statement, 0);
      out.emplace_back(text == nullptr ? "" : reinterpret_cast<const char*>(text));  // NOLINT
    }
    sqlite3_finalize(statement);
    if (rc != SQLITE_DONE) {
      throw std::runtime_error(sql + ": " + sqlite3_errmsg(db_));
    }
    return out;
  }

  // The single value of `sql` (e.g. a count) as an integer.
  [[nodiscard]] std::int64_t count(const std::string& sql) const {
    const std::vector<std::string> rows = column(sql);
    std::int64_t n = -1;
    if (rows.size() != 1 ||
        std::from_chars(rows[0].data(), rows[0].data() + rows[0].size(), n).ec != std::errc()) {
      throw std::runtime_error(sql + ": not a single number");
    }
    return n;
  }

  // `PRAGMA integrity_check`, its rows joined: "ok" for a sound database.
  [[nodiscard]] std::string integrity() const {
    std::string out;
    for (const std::string& row : column("PRAGMA integrity_check")) {
      out += (out.empty() ? "" : "; ") + row;
    }
    return out;
  }

 private:
  sqlite3* db_ = nullptr;
};

// The first patient canary (lab_feed.hpp) found in `text`, or "" when there is none: the name and
// MRN prefixes in any letter case, and 1917 birth dates and 2011 collection dates, written ISO
// (YYYY-MM-DD) or HL7 (YYYYMMDD) style as a token of their own (not inside a hex digest).
inline std::string find_phi(std::string_view text) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](char c) {
    return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  });
  for (std::string_view marker : {"qzphi", "qzmrn"}) {
    if (const std::size_t at = lower.find(marker); at != std::string::npos) {
      return std::string(text.substr(at, 24));
    }
  }
  const auto is_alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
  const auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
  for (std::string_view year : {"1917", "2011"}) {
    for (std::size_t at = text.find(year); at != std::string_view::npos;
         at = text.find(year, at + 1)) {
      if (at > 0 && is_alnum(text[at - 1])) {
        continue;
      }
      const std::string_view rest = text.substr(at + year.size());
      const bool iso = rest.size() >= 6 && rest[0] == '-' && is_digit(rest[1]) &&
                       is_digit(rest[2]) && rest[3] == '-' && is_digit(rest[4]) &&
                       is_digit(rest[5]);
      const bool hl7 = rest.size() >= 4 && std::all_of(rest.begin(), rest.begin() + 4, is_digit);
      if (iso || hl7) {
        return std::string(text.substr(at, 19));
      }
    }
  }
  return {};
}

// A list of names or rows; tests compare lists that must be empty with Strings{}, so that a
// failure prints what they hold.
using Strings = std::vector<std::string>;

// The elements of sorted `a` that sorted `b` lacks, counting repeats: a failed comparison of two
// long lists then shows only what differs.
inline std::vector<std::string> missing_from(const std::vector<std::string>& a,
                                             const std::vector<std::string>& b) {
  std::vector<std::string> out;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

// Every file name in `dir` (not recursive), sorted; the daemon's claim directory left out.
inline std::vector<std::string> entry_names(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name != kClaimDirName) {
      out.push_back(std::move(name));
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Every text an admin or a mail relay sees from a layout: the daemon's log (what journald
// stores) and every reason file in failed/, as (where, text) pairs.
inline std::vector<std::pair<std::string, std::string>> admin_texts(const Layout& layout) {
  std::vector<std::pair<std::string, std::string>> out;
  out.emplace_back("daemon log", layout.daemon_log());
  for (const std::string& name : entry_names(layout.failed())) {
    if (name.ends_with(".reason.txt")) {
      out.emplace_back("failed/" + name, read_file(layout.failed() / name));
    }
  }
  return out;
}

// "where: canary" for each of `texts` (where, text) that holds patient data.
inline std::vector<std::string> phi_leaks(
    const std::vector<std::pair<std::string, std::string>>& texts) {
  std::vector<std::string> out;
  for (const auto& [where, text] : texts) {
    if (const std::string found = find_phi(text); !found.empty()) {
      std::string line = where;
      line += ": " + found;
      out.push_back(std::move(line));
    }
  }
  return out;
}

// `labwatch export` rows as ExpectedRow::key() strings (person_id left out), with each source
// file mapped through `names` (a copy's results may carry either name: see original_names).
inline std::vector<std::string> exported_keys(const std::vector<std::string>& rows,
                                              const std::map<std::string, std::string>& names) {
  std::vector<std::string> out;
  for (const std::string& row : rows) {
    std::vector<std::string> cells;
    std::size_t start = 0;
    for (;;) {
      const std::size_t comma = row.find(',', start);
      cells.push_back(row.substr(start, comma == std::string::npos ? comma : comma - start));
      if (comma == std::string::npos) {
        break;
      }
      start = comma + 1;
    }
    if (cells.size() < 9) {
      out.push_back("malformed row: " + row);
      continue;
    }
    const auto original = names.find(cells[0]);
    const std::string& source = original == names.end() ? cells[0] : original->second;
    out.push_back(source + "," + cells[1] + "," + cells[3] + "," + cells[4] + "," + cells[5] + "," +
                  cells[6] + "," + cells[7] + "," + cells[8]);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The expected rows of `feed`, sorted like exported_keys.
inline std::vector<std::string> expected_keys(const std::vector<FeedFile>& feed) {
  std::vector<std::string> out;
  for (const FeedFile& f : feed) {
    for (const ExpectedRow& row : f.rows) {
      out.push_back(row.key());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Alerts `labwatch alerts --format csv` should list for `feed`: "patient_key,analyte,value,
// collected_at", sorted.
inline std::vector<std::string> expected_alerts(const std::vector<FeedFile>& feed) {
  std::vector<std::string> out;
  for (const FeedFile& f : feed) {
    for (const ExpectedRow& row : f.rows) {
      if (row.alert) {
        out.push_back(row.patient_key + "," + row.analyte + "," + row.value + "," +
                      row.collected_at);
      }
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The alerts the daemon recorded, in the form of expected_alerts.
inline std::vector<std::string> recorded_alerts(const Layout& layout) {
  const CommandResult r =
      run_labwatch({"alerts", "--config", layout.config().string(), "--format", "csv"});
  if (r.exit_code != 0) {
    throw std::runtime_error("labwatch alerts failed: " + r.err);
  }
  std::vector<std::string> out;
  std::size_t start = r.out.find('\n');
  while (start != std::string::npos && start + 1 < r.out.size()) {
    const std::size_t end = r.out.find('\n', start + 1);
    const std::string row = r.out.substr(start + 1, end - start - 1);
    // person_id,patient_key,analyte,value,unit,collected_at,rule,state,...
    std::vector<std::string> cells;
    std::size_t from = 0;
    for (int i = 0; i < 7; ++i) {
      const std::size_t comma = row.find(',', from);
      cells.push_back(row.substr(from, comma - from));
      from = comma == std::string::npos ? row.size() : comma + 1;
    }
    start = end;
    // Alerts of the shipped trend rules are beyond a feed's per-value expectations (as in the
    // public corpus check): a feed's random series falls now and then.
    if (cells[6].starts_with("trend:")) {
      continue;
    }
    out.push_back(cells[1] + "," + cells[2] + "," + cells[3] + "," + cells[5]);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// person_id per patient_key from export rows: each key must map to exactly one id.
inline std::map<std::string, std::string> person_ids(const std::vector<std::string>& rows) {
  std::map<std::string, std::string> out;
  for (const std::string& row : rows) {
    const std::size_t first = row.find(',');
    const std::size_t second = row.find(',', first + 1);
    const std::size_t third = row.find(',', second + 1);
    const std::string key = row.substr(first + 1, second - first - 1);
    const std::string id = row.substr(second + 1, third - second - 1);
    const auto [it, added] = out.emplace(key, id);
    if (!added && it->second != id) {
      it->second = "conflict: " + it->second + " and " + id;
    }
  }
  return out;
}

// One line of `strace -f -y -o FILE`: "PID  name(args) = result".
struct TraceCall {
  std::string name;
  std::string args;  // between the parentheses, with -y paths like 9</dir/labwatch.db-wal>
  std::string result;
};

// The completed calls of an strace output file, in order of completion. A call another thread
// interrupted is written in two halves ("... <unfinished ...>", then "<... NAME resumed>...");
// the halves are joined. Signals and exits are skipped.
inline std::vector<TraceCall> read_trace(const fs::path& path) {
  const std::string text = read_file(path);
  std::vector<TraceCall> out;
  std::map<std::string, std::string> unfinished;  // by pid: the first half of a call
  constexpr std::string_view kUnfinished = " <unfinished ...>";
  constexpr std::string_view kResumed = " resumed>";
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) {
      end = text.size();
    }
    std::string line = text.substr(start, end - start);
    start = end + 1;
    const std::string pid = line.substr(0, line.find(' '));
    if (const std::size_t cut = line.find(kUnfinished); cut != std::string::npos) {
      unfinished[pid] = line.substr(0, cut);
      continue;
    }
    if (const std::size_t resumed = line.find(kResumed); resumed != std::string::npos) {
      const auto first = unfinished.find(pid);
      if (first == unfinished.end()) {
        continue;
      }
      line = first->second + line.substr(resumed + kResumed.size());
      unfinished.erase(first);
    }
    // The pid is padded with spaces to a fixed width.
    const std::size_t name_at = line.find_first_not_of(' ', line.find(' '));
    const std::size_t paren = line.find('(');
    const std::size_t equals = line.rfind(") = ");
    if (name_at == std::string::npos || paren == std::string::npos || equals == std::string::npos ||
        paren < name_at) {
      continue;
    }
    TraceCall call;
    call.name = line.substr(name_at, paren - name_at);
    call.args = line.substr(paren + 1, equals - paren - 1);
    call.result = line.substr(equals + 4);
    out.push_back(std::move(call));
  }
  return out;
}

// The strace command line that runs `labwatch run` on `layout`, writing the trace to `trace`;
// `options` go before the command (e.g. -e inject=...).
inline std::vector<std::string> strace_run_argv(const Layout& layout, const fs::path& trace,
                                                const std::vector<std::string>& options) {
  std::vector<std::string> argv{"/usr/bin/strace", "-f", "-qq", "-y", "-o", trace.string()};
  argv.insert(argv.end(), options.begin(), options.end());
  const std::vector<std::string> run = labwatch_argv({"run", "--config", layout.config().string()});
  argv.insert(argv.end(), run.begin(), run.end());
  return argv;
}

// The mode bits of `path` (not following a symlink).
inline unsigned mode_of(const fs::path& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    throw errno_error("lstat " + path.string());
  }
  return static_cast<unsigned>(st.st_mode) & 07777U;
}

}  // namespace labwatch::test
