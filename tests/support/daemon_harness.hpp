// SPDX-License-Identifier: Apache-2.0
// Daemon test support: temp layouts, the real `labwatch` binary via fork/exec, a NOTIFY_SOCKET.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

extern char** environ;  // NOLINT(readability-redundant-declaration): POSIX declares it nowhere else

namespace labwatch::test {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

inline std::system_error errno_error(const std::string& what) {
  return {errno, std::generic_category(), what};
}

// Writes `bytes` to `path` (created 0644 or truncated) and closes it. `flags` may add O_APPEND.
inline void write_file(const fs::path& path, std::string_view bytes, int flags = O_TRUNC) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | flags, 0644);
  if (fd < 0) {
    throw errno_error("open " + path.string());
  }
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      ::close(fd);
      throw errno_error("write " + path.string());
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  if (::close(fd) != 0) {
    throw errno_error("close " + path.string());
  }
}

inline std::string read_file(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    throw errno_error("open " + path.string());
  }
  std::string out;
  std::array<char, 65536> buffer{};
  for (;;) {
    const ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      break;
    }
    out.append(buffer.data(), static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

inline fs::path corpus_file(std::string_view name) {
  return fs::path(LABWATCH_TEST_DATA_DIR) / "corpus" / name;
}

// The daemon's own claim directory in the inbox (daemon/file_mover.hpp), never a dropped file.
constexpr std::string_view kClaimDirName = ".labwatch-claim";

// Entries of `dir` (not recursive), optionally only those whose name ends with `suffix`; the
// daemon's claim directory is not counted.
inline std::size_t count_entries(const fs::path& dir, std::string_view suffix = {}) {
  std::size_t n = 0;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name != kClaimDirName && name.ends_with(suffix)) {
      ++n;
    }
  }
  return n;
}

// Polls `done` every `interval` until it holds or `timeout` passes; returns its last value.
template <class Predicate>
bool wait_until(Predicate done, std::chrono::milliseconds timeout,
                std::chrono::milliseconds interval = 10ms) {
  const Clock::time_point end = Clock::now() + timeout;
  while (!done()) {
    if (Clock::now() >= end) {
      return done();
    }
    std::this_thread::sleep_for(interval);
  }
  return true;
}

// A fresh directory, removed with everything in it. `base` defaults to $TMPDIR or /tmp.
class TempDir {
 public:
  explicit TempDir(const fs::path& base = default_base()) {
    std::string pattern = (base / "labwatch-test-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw errno_error("mkdtemp " + pattern);
    }
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  TempDir(TempDir&&) = delete;
  TempDir& operator=(TempDir&&) = delete;

  [[nodiscard]] const fs::path& path() const noexcept { return path_; }

  static fs::path default_base() {
    const char* tmp =
        std::getenv("TMPDIR");  // NOLINT(concurrency-mt-unsafe): tests are single-threaded
    return tmp != nullptr && *tmp != '\0' ? fs::path(tmp) : fs::path("/tmp");
  }
  // A RAM file system when there is one: for tests whose subject is not durability, where an fsync
  // per file would dominate the run time.
  static fs::path fast_base() {
    return ::access("/dev/shm", W_OK | X_OK) == 0 ? fs::path("/dev/shm") : default_base();
  }

 private:
  fs::path path_;
};

// `labwatch args...` as a full argument vector.
inline std::vector<std::string> labwatch_argv(const std::vector<std::string>& args) {
  std::vector<std::string> argv{LABWATCH_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

// A child process; SIGKILLed and reaped on destruction if still running.
class Process {
 public:
  // Runs argv[0] (a path) with `argv`; stdout and stderr go to the files named (appended). The
  // environment is ours minus systemd's, LABWATCH_CONFIG and the names `env` sets, plus `env`
  // ("NAME=value"). With
  // `watchdog_pid`, WATCHDOG_PID names the child itself (sd_watchdog_enabled checks it).
  Process(std::vector<std::string> argv_strings, const fs::path& out, const fs::path& err,
          const std::vector<std::string>& env = {}, bool watchdog_pid = false) {
    std::vector<std::string> env_strings;
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string_view entry(*e);
      const bool overridden = std::any_of(env.begin(), env.end(), [entry](const std::string& set) {
        return entry.starts_with(set.substr(0, set.find('=') + 1));
      });
      if (!overridden && !entry.starts_with("NOTIFY_SOCKET=") && !entry.starts_with("WATCHDOG_") &&
          !entry.starts_with("LABWATCH_CONFIG=") && !entry.starts_with("LISTEN_") &&
          !entry.starts_with("JOURNAL_STREAM=")) {
        env_strings.emplace_back(entry);
      }
    }
    env_strings.insert(env_strings.end(), env.begin(), env.end());
    // Everything the child touches is prepared here: after fork it only formats its pid and execs.
    std::array<char, 32> pid_entry{};
    std::vector<char*> argv;
    std::vector<char*> envp;
    argv.reserve(argv_strings.size() + 1);
    envp.reserve(env_strings.size() + 2);
    for (std::string& s : argv_strings) {
      argv.push_back(s.data());
    }
    argv.push_back(nullptr);
    for (std::string& s : env_strings) {
      envp.push_back(s.data());
    }
    if (watchdog_pid) {
      envp.push_back(pid_entry.data());
    }
    envp.push_back(nullptr);
    const int out_fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (out_fd < 0) {
      throw errno_error("open " + out.string());
    }
    const int err_fd = out == err
                           ? ::fcntl(out_fd, F_DUPFD_CLOEXEC, 0)
                           : ::open(err.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (err_fd < 0) {
      ::close(out_fd);
      throw errno_error("open " + err.string());
    }
    pid_ = ::fork();
    if (pid_ == 0) {
      if (watchdog_pid) {
        format_pid_entry(pid_entry, ::getpid());
      }
      ::dup2(out_fd, STDOUT_FILENO);
      ::dup2(err_fd, STDERR_FILENO);
      ::execve(argv[0], argv.data(), envp.data());
      ::_exit(127);
    }
    ::close(out_fd);
    ::close(err_fd);
    if (pid_ < 0) {
      throw errno_error("fork");
    }
  }
  ~Process() {
    if (pid_ > 0 && !status_) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  Process(Process&&) = delete;
  Process& operator=(Process&&) = delete;

  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  void signal(int sig) const { ::kill(pid_, sig); }

  // The exit code (128 + signal when killed) once the process has ended, nullopt on timeout.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout) {
    if (status_) {
      return status_;
    }
    const Clock::time_point end = Clock::now() + timeout;
    for (;;) {
      int status = 0;
      const pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return status_;
      }
      if (Clock::now() >= end) {
        return std::nullopt;
      }
      std::this_thread::sleep_for(5ms);
    }
  }
  [[nodiscard]] bool running() { return !wait_exit(0ms).has_value(); }

 private:
  // "WATCHDOG_PID=<pid>" without allocating (async-signal-safe, for the child after fork).
  static void format_pid_entry(std::array<char, 32>& entry, pid_t pid) noexcept {
    constexpr std::string_view kName = "WATCHDOG_PID=";
    std::size_t at = 0;
    for (char c : kName) {
      entry[at++] = c;
    }
    std::array<char, 16> digits{};
    std::size_t n = 0;
    auto value = static_cast<unsigned long>(pid);
    do {
      digits[n++] = static_cast<char>('0' + value % 10);
      value /= 10;
    } while (value != 0 && n < digits.size());
    while (n > 0) {
      entry[at++] = digits[--n];
    }
    entry[at] = '\0';
  }

  pid_t pid_ = -1;
  std::optional<int> status_;
};

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs `argv` (argv[0] a path) to completion, at most `timeout`; returns its exit code and output.
inline CommandResult run_program(const std::vector<std::string>& argv,
                                 std::chrono::milliseconds timeout = 120s) {
  const TempDir scratch;
  const fs::path out = scratch.path() / "out";
  const fs::path err = scratch.path() / "err";
  CommandResult result;
  {
    Process p(argv, out, err);
    result.exit_code = p.wait_exit(timeout).value_or(-1);
  }
  result.out = read_file(out);
  result.err = read_file(err);
  return result;
}

// Runs `argv` with `env` added to the environment (see Process) to completion, at most `timeout`.
inline CommandResult run_program_with(const std::vector<std::string>& argv,
                                      const std::vector<std::string>& env,
                                      std::chrono::milliseconds timeout = 120s) {
  const TempDir scratch;
  const fs::path out = scratch.path() / "out";
  const fs::path err = scratch.path() / "err";
  CommandResult result;
  {
    Process p(argv, out, err, env);
    result.exit_code = p.wait_exit(timeout).value_or(-1);
  }
  result.out = read_file(out);
  result.err = read_file(err);
  return result;
}

// Runs `labwatch args...` to completion; see run_program.
inline CommandResult run_labwatch(const std::vector<std::string>& args,
                                  std::chrono::milliseconds timeout = 120s) {
  return run_program(labwatch_argv(args), timeout);
}

// The datagram socket systemd would listen on; labwatch finds it through $NOTIFY_SOCKET. A thread
// drains it all the time, as systemd does: a sender blocks once ten datagrams are left unread.
class NotifySocket {
 public:
  explicit NotifySocket(fs::path path) : path_(std::move(path)) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) {
      throw errno_error("socket");
    }
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    const std::string p = path_.string();
    if (p.size() >= sizeof address.sun_path) {
      ::close(fd_);
      throw std::runtime_error("socket path too long: " + p);
    }
    std::memcpy(address.sun_path, p.c_str(), p.size() + 1);
    if (::bind(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {  // NOLINT
      ::close(fd_);
      throw errno_error("bind " + p);
    }
    reader_ = std::thread([this] { read_loop(); });
  }
  ~NotifySocket() {
    stop_ = true;
    reader_.join();
    ::close(fd_);
  }
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;
  NotifySocket(NotifySocket&&) = delete;
  NotifySocket& operator=(NotifySocket&&) = delete;

  [[nodiscard]] std::string env() const { return "NOTIFY_SOCKET=" + path_.string(); }

  // Waits, at most `timeout`, for a message not yet looked at that has the line `line` (e.g.
  // "READY=1"); messages before it are passed over and not looked at again by wait_for.
  bool wait_for(std::string_view line, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return arrived_.wait_for(lock, timeout, [&] {
      while (cursor_ < history_.size()) {
        if (has_line(history_[cursor_++], line)) {
          return true;
        }
      }
      return false;
    });
  }

  // How many messages so far carry the line `line`.
  [[nodiscard]] std::size_t count(std::string_view line) {
    const std::lock_guard lock(mutex_);
    return static_cast<std::size_t>(
        std::count_if(history_.begin(), history_.end(),
                      [line](const std::string& m) { return has_line(m, line); }));
  }

 private:
  void read_loop() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) {
        continue;
      }
      std::array<char, 4096> buffer{};
      const ssize_t n = ::recv(fd_, buffer.data(), buffer.size(), 0);
      if (n >= 0) {
        const std::lock_guard lock(mutex_);
        history_.emplace_back(buffer.data(), static_cast<std::size_t>(n));
        arrived_.notify_all();
      }
    }
  }

  static bool has_line(std::string_view message, std::string_view line) {
    std::size_t start = 0;
    while (start <= message.size()) {
      const std::size_t end = std::min(message.find('\n', start), message.size());
      if (message.substr(start, end - start) == line) {
        return true;
      }
      start = end + 1;
    }
    return false;
  }

  fs::path path_;
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::condition_variable arrived_;
  std::vector<std::string> history_;  // guarded by mutex_
  std::size_t cursor_ = 0;            // guarded by mutex_
  std::thread reader_;                // last: started once everything above exists
};

// A layout made by `labwatch init`, with the config rewritten for tests: short settle time, the
// corpus senders, and GEN for generated files (gen_*).
class Layout {
 public:
  explicit Layout(const fs::path& base, int settle_ms = 150) : dir_(base) {
    const CommandResult init = run_labwatch({"init", (dir_.path() / "site").string()});
    if (init.exit_code != 0) {
      throw std::runtime_error("labwatch init failed: " + init.err);
    }
    root_ = dir_.path() / "site";
    fs::create_directories(stage());
    write_config(settle_ms);
  }

  void write_config(int settle_ms, std::string_view extra = {}, std::string_view paths = {}) const {
    std::string xml = "<labwatch>\n";
    xml += paths.empty() ? std::string(
                               "  <paths inbox=\"inbox\" processed=\"processed\" failed=\"failed\" "
                               "database=\"labwatch.db\"/>\n")
                         : std::string(paths);
    xml += "  <intake settle-ms=\"" + std::to_string(settle_ms) + "\"/>\n";
    xml +=
        "  <sources>\n"
        "    <source facility=\"QDX\" timezone=\"America/New_York\" files=\"a_qdx*;e_qdx*\"/>\n"
        "    <source facility=\"LCA\" timezone=\"America/Chicago\" files=\"b_lca*;e_lca*\"/>\n"
        "    <source facility=\"SGH\" timezone=\"America/Phoenix\" files=\"c_sgh*\"/>\n"
        "    <source facility=\"WCE\" timezone=\"America/Denver\" files=\"d1_wce*;e_wce*\"/>\n"
        "    <source facility=\"GEN\" timezone=\"Europe/London\" files=\"gen_*\"/>\n"
        "  </sources>\n";
    xml += extra;
    xml += "</labwatch>\n";
    write_file(config(), xml);
  }

  [[nodiscard]] fs::path root() const { return root_; }
  [[nodiscard]] fs::path config() const { return root_ / "labwatch.xml"; }
  [[nodiscard]] fs::path inbox() const { return root_ / "inbox"; }
  [[nodiscard]] fs::path processed() const { return root_ / "processed"; }
  [[nodiscard]] fs::path failed() const { return root_ / "failed"; }
  [[nodiscard]] fs::path stage() const {
    return root_ / "stage";
  }  // same file system, outside the inbox
  [[nodiscard]] fs::path log() const { return root_ / "daemon.log"; }
  [[nodiscard]] fs::path notify_path() const { return dir_.path() / "notify.sock"; }

  // Starts `labwatch run` on this layout, its stdout and stderr going to log(), which stands for
  // the journal: JOURNAL_STREAM names it, as systemd names its stream, so lines carry priorities.
  [[nodiscard]] std::unique_ptr<Process> start(const std::vector<std::string>& env = {},
                                               bool watchdog_pid = false) const {
    std::vector<std::string> with_journal = env;
    with_journal.push_back(journal_env());
    return std::make_unique<Process>(labwatch_argv({"run", "--config", config().string()}), log(),
                                     log(), with_journal, watchdog_pid);
  }

  // "JOURNAL_STREAM=DEV:INODE" of log() (created when missing): a daemon whose stderr goes there
  // takes it for the journal and prefixes each line with its priority (<6> info, <3> error).
  [[nodiscard]] std::string journal_env() const {
    write_file(log(), "", O_APPEND);
    struct stat st {};
    if (::stat(log().c_str(), &st) != 0) {
      throw errno_error("stat " + log().string());
    }
    return "JOURNAL_STREAM=" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  }

  // Drops `bytes` as `name` the recommended way: written beside the inbox, then renamed in.
  void drop(const std::string& name, std::string_view bytes) const {
    write_file(stage() / name, bytes);
    fs::rename(stage() / name, inbox() / name);
  }

  // `labwatch export --format csv`, one line per current result (header dropped).
  [[nodiscard]] std::vector<std::string> export_rows() const {
    const CommandResult r =
        run_labwatch({"export", "--config", config().string(), "--format", "csv"});
    if (r.exit_code != 0) {
      throw std::runtime_error("labwatch export failed: " + r.err);
    }
    std::vector<std::string> rows;
    std::size_t start = r.out.find('\n');
    while (start != std::string::npos && start + 1 < r.out.size()) {
      const std::size_t end = r.out.find('\n', start + 1);
      rows.push_back(
          r.out.substr(start + 1, (end == std::string::npos ? r.out.size() : end) - start - 1));
      start = end;
    }
    return rows;
  }

  [[nodiscard]] std::string daemon_log() const {
    return fs::exists(log()) ? read_file(log()) : std::string();
  }

 private:
  TempDir dir_;
  fs::path root_;
};

// Current results per source file, from export rows (source_file is the first column).
inline std::map<std::string, int> rows_per_file(const std::vector<std::string>& rows) {
  std::map<std::string, int> out;
  for (const std::string& row : rows) {
    ++out[row.substr(0, row.find(','))];
  }
  return out;
}

// A tiny CSV export of one result, distinct for each `i` (patient, time and value vary).
inline std::string generated_csv(int i) {
  const int patient = i % 97;
  const int minute = i % 60;
  const int hour = (i / 60) % 24;
  const int day = 1 + (i / 1440) % 28;
  const int month = 1 + (i / 40320) % 12;
  std::array<char, 320> row{};
  std::snprintf(
      row.data(), row.size(),
      "patient_id,last_name,first_name,dob,sex,test_name,loinc,value,unit,ref_range,collected_at\n"
      "G%05d,Gensynth%d,Pat,1970-01-%02d,F,Ferritin,2276-4,%d.%d,ng/mL,15-150,"
      "2024-%02d-%02dT%02d:%02d:00Z\n",
      patient, patient, 1 + patient % 28, 80 + i % 50, i % 10, month, day, hour, minute);
  return row.data();
}

}  // namespace labwatch::test
