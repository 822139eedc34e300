// SPDX-License-Identifier: Apache-2.0
// daemon_bench: drop-to-stored latency, sustained intake, idle CPU and RSS of a real `labwatch
// run`.
//
// usage: daemon_bench [--binary PATH] [--dir DIR] [--latency N] [--throughput N] [--idle SECONDS]
// --binary defaults to ../daemon/labwatch beside this program; --dir (default /var/tmp) decides the
// file system, and with it what a durable commit costs.
#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct Options {
  fs::path binary;
  fs::path dir = "/var/tmp";
  int latency_files = 200;
  int throughput_files = 2000;
  int idle_seconds = 10;
};

[[noreturn]] void fail(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

void write_file(const fs::path& path, std::string_view bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    fail("open " + path.string());
  }
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      ::close(fd);
      fail("write " + path.string());
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  ::close(fd);
}

// Runs `argv` to completion, its output appended to `log`; returns its exit status, or the signal
// + 128. With `started`, returns at once and stores the child's pid there instead.
int run(const std::vector<std::string>& argv, const fs::path& log,
        const std::vector<std::string>& extra_env = {}, pid_t* started = nullptr) {
  std::vector<std::string> strings = argv;
  std::vector<char*> args;
  args.reserve(strings.size() + 1);
  for (std::string& s : strings) {
    args.push_back(s.data());
  }
  args.push_back(nullptr);
  std::vector<std::string> env_strings(extra_env);
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::string_view(*e).rfind("NOTIFY_SOCKET=", 0) != 0) {
      env_strings.emplace_back(*e);
    }
  }
  std::vector<char*> env;
  env.reserve(env_strings.size() + 1);
  for (std::string& s : env_strings) {
    env.push_back(s.data());
  }
  env.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(out, STDOUT_FILENO);
    ::dup2(out, STDERR_FILENO);
    ::execve(args[0], args.data(), env.data());
    ::_exit(127);
  }
  if (pid < 0) {
    fail("fork");
  }
  if (started != nullptr) {
    *started = pid;
    return 0;
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// A 10-OBX ORU^R01, distinct for each `i` (control id, order, collection minute, values).
std::string oru_message(int i) {
  struct Obx {
    const char* loinc;
    const char* name;
    const char* unit;
    double base;
  };
  static constexpr std::array<Obx, 10> kObx{{{"2276-4", "FERRITIN", "ng/mL", 80},
                                             {"26746-8", "MAGNESIUM, RBC", "mg/dL", 5.6},
                                             {"19123-9", "MAGNESIUM", "mg/dL", 2.1},
                                             {"2284-8", "FOLATE", "ng/mL", 14},
                                             {"2283-0", "FOLATE, RBC", "ng/mL", 900},
                                             {"5763-8", "ZINC", "ug/dL", 95},
                                             {"13965-9", "HOMOCYSTEINE", "umol/L", 7},
                                             {"62292-8", "VITAMIN D 25-OH", "ng/mL", 55},
                                             {"2923-1", "VITAMIN A", "ug/dL", 60},
                                             {"2132-9", "VITAMIN B12", "pg/mL", 700}}};
  const int patient = i % 50;
  std::array<char, 32> when{};
  std::snprintf(when.data(), when.size(), "202503%02d%02d%02d00-0500", 1 + (i / 1440) % 28,
                (i / 60) % 24, i % 60);
  std::array<char, 512> line{};
  std::string out;
  std::snprintf(line.data(), line.size(),
                "MSH|^~\\&|LAB|BEN|SYNTHEHR|SYNTHCLINIC|%s||ORU^R01|BEN%07d|P|2.5.1\r", when.data(),
                i);
  out += line.data();
  std::snprintf(line.data(), line.size(), "PID|1||B%04d^^^BEN^MR||BENCHMARK^PAT%d||19700101|F\r",
                patient, patient);
  out += line.data();
  std::snprintf(line.data(), line.size(), "OBR|1|ORD%07d|FIL%07d^BEN|NUT^NUTRITION PANEL^L|||%s\r",
                i, i, when.data());
  out += line.data();
  for (std::size_t k = 0; k < kObx.size(); ++k) {
    const Obx& o = kObx[k];
    std::snprintf(line.data(), line.size(), "OBX|%zu|NM|%s^%s^LN||%.1f|%s|||||F|||%s\r", k + 1,
                  o.loinc, o.name, o.base + (i % 7) * 0.1, o.unit, when.data());
    out += line.data();
  }
  return out;
}

// A one-result CSV export, distinct for each `i`.
std::string csv_file(int i) {
  std::array<char, 320> text{};
  std::snprintf(
      text.data(), text.size(),
      "patient_id,last_name,first_name,dob,sex,test_name,loinc,value,unit,ref_range,collected_at\n"
      "T%04d,Throughput%d,Pat,1971-02-03,M,Ferritin,2276-4,%d.%d,ng/mL,15-150,"
      "2025-04-%02dT%02d:%02d:00Z\n",
      i % 89, i % 89, 80 + i % 40, i % 10, 1 + (i / 1440) % 28, (i / 60) % 24, i % 60);
  return text.data();
}

// Moves into processed/, seen through inotify (IN_MOVED_TO): the last step of ingesting a file.
class ProcessedWatch {
 public:
  explicit ProcessedWatch(const fs::path& dir) {
    fd_ = ::inotify_init1(IN_CLOEXEC);
    if (fd_ < 0 || ::inotify_add_watch(fd_, dir.c_str(), IN_MOVED_TO) < 0) {
      fail("inotify " + dir.string());
    }
  }
  ~ProcessedWatch() { ::close(fd_); }
  ProcessedWatch(const ProcessedWatch&) = delete;
  ProcessedWatch& operator=(const ProcessedWatch&) = delete;
  ProcessedWatch(ProcessedWatch&&) = delete;
  ProcessedWatch& operator=(ProcessedWatch&&) = delete;

  // Waits until `count` more files have arrived; false after `timeout`.
  bool wait(int count, std::chrono::milliseconds timeout) {
    const Clock::time_point end = Clock::now() + timeout;
    while (count > 0) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now());
      pollfd p{fd_, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
        return false;
      }
      const ssize_t n = ::read(fd_, buffer_.data(), buffer_.size());
      std::size_t offset = 0;
      while (n > 0 && static_cast<std::size_t>(n) - offset >= sizeof(inotify_event)) {
        inotify_event event{};
        std::memcpy(&event, buffer_.data() + offset, sizeof event);
        offset += sizeof(inotify_event) + event.len;
        --count;
      }
    }
    return true;
  }

 private:
  int fd_ = -1;
  std::array<char, std::size_t{64} * 1024> buffer_{};
};

// Reads and drops notify messages, as systemd would read them: a sender blocks once ten datagrams
// are left unread.
class NotifyDrain {
 public:
  explicit NotifyDrain(int fd) : thread_([this, fd] { run(fd); }) {}
  ~NotifyDrain() { stop(); }
  NotifyDrain(const NotifyDrain&) = delete;
  NotifyDrain& operator=(const NotifyDrain&) = delete;
  NotifyDrain(NotifyDrain&&) = delete;
  NotifyDrain& operator=(NotifyDrain&&) = delete;

  void stop() {
    done_ = true;
    if (thread_.joinable()) {
      thread_.join();
    }
  }

 private:
  void run(int fd) {
    std::array<char, 4096> message{};
    while (!done_) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 50) > 0) {
        ::recv(fd, message.data(), message.size(), 0);
      }
    }
  }

  std::atomic<bool> done_{false};
  std::thread thread_;
};

// SIGKILLs and reaps a child on scope exit unless released.
class Reaper {
 public:
  explicit Reaper(pid_t pid) noexcept : pid_(pid) {}
  ~Reaper() {
    if (pid_ > 0 && ::kill(pid_, SIGKILL) == 0) {
      ::waitpid(pid_, nullptr, 0);
    }
  }
  Reaper(const Reaper&) = delete;
  Reaper& operator=(const Reaper&) = delete;
  Reaper(Reaper&&) = delete;
  Reaper& operator=(Reaper&&) = delete;
  void release() noexcept { pid_ = -1; }

 private:
  pid_t pid_;
};

struct ProcStat {
  double cpu_seconds = 0;
  long rss_kib = 0;
  long peak_kib = 0;
};

ProcStat proc_stat(pid_t pid) {
  ProcStat out;
  std::string stat;
  {
    std::FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/stat").c_str(), "r");
    if (f != nullptr) {
      std::array<char, 1024> buffer{};
      const std::size_t n = std::fread(buffer.data(), 1, buffer.size(), f);
      stat.assign(buffer.data(), n);
      std::fclose(f);
    }
  }
  // Fields after the ")" that ends the command name: state is field 3; utime and stime are 14, 15.
  const std::size_t close = stat.rfind(')');
  if (close != std::string::npos) {
    std::vector<std::string_view> fields;
    std::string_view rest = std::string_view(stat).substr(close + 2);
    while (!rest.empty()) {
      const std::size_t space = std::min(rest.find(' '), rest.size());
      fields.push_back(rest.substr(0, space));
      rest.remove_prefix(std::min(space + 1, rest.size()));
    }
    if (fields.size() > 12) {
      unsigned long utime = 0;
      unsigned long stime = 0;
      std::from_chars(fields[11].data(), fields[11].data() + fields[11].size(), utime);
      std::from_chars(fields[12].data(), fields[12].data() + fields[12].size(), stime);
      out.cpu_seconds =
          static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
    }
  }
  std::FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/status").c_str(), "r");
  if (f != nullptr) {
    std::array<char, 256> line{};
    while (std::fgets(line.data(), static_cast<int>(line.size()), f) != nullptr) {
      const std::string_view l(line.data());
      const auto number = [&l](std::size_t from) {
        long v = 0;
        const std::size_t start = l.find_first_of("0123456789", from);
        if (start != std::string_view::npos) {
          std::from_chars(l.data() + start, l.data() + l.size(), v);
        }
        return v;
      };
      if (l.rfind("VmRSS:", 0) == 0) {
        out.rss_kib = number(6);
      } else if (l.rfind("VmHWM:", 0) == 0) {
        out.peak_kib = number(6);
      }
    }
    std::fclose(f);
  }
  return out;
}

std::string fs_name(const fs::path& path) {
  struct statfs s {};
  if (::statfs(path.c_str(), &s) != 0) {
    return "?";
  }
  switch (static_cast<unsigned long>(s.f_type)) {
    case 0xEF53:
      return "ext4";
    case 0x01021994:
      return "tmpfs";
    case 0x58465342:
      return "xfs";
    case 0x9123683E:
      return "btrfs";
    case 0x794C7630:
      return "overlayfs";
    default:
      return "other";
  }
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const auto at = static_cast<std::size_t>(std::lround(p * static_cast<double>(v.size() - 1)));
  return v[std::min(at, v.size() - 1)];
}

int parse_int(const char* text, const char* option) {
  int v = 0;
  const std::string_view s(text);
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v < 0) {
    throw std::invalid_argument(std::string(option) + " needs a whole number");
  }
  return v;
}

Options parse_options(int argc, char** argv) {
  Options o;
  std::error_code ec;
  o.binary =
      fs::read_symlink("/proc/self/exe", ec).parent_path().parent_path() / "daemon" / "labwatch";
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (i + 1 >= argc) {
      throw std::invalid_argument(
          "usage: daemon_bench [--binary PATH] [--dir DIR] [--latency N] "
          "[--throughput N] [--idle SECONDS]");
    }
    const char* value = argv[++i];
    if (a == "--binary") {
      o.binary = value;
    } else if (a == "--dir") {
      o.dir = value;
    } else if (a == "--latency") {
      o.latency_files = std::max(1, parse_int(value, "--latency"));
    } else if (a == "--throughput") {
      o.throughput_files = std::max(1, parse_int(value, "--throughput"));
    } else if (a == "--idle") {
      o.idle_seconds = parse_int(value, "--idle");
    } else {
      throw std::invalid_argument("unknown option " + std::string(a));
    }
  }
  return o;
}

int bench(const Options& o) {
  std::string pattern = (o.dir / "labwatch-bench-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    fail("mkdtemp " + pattern);
  }
  const fs::path root = pattern;
  const fs::path site = root / "site";
  const fs::path log = root / "daemon.log";
  if (run({o.binary.string(), "init", site.string()}, log) != 0) {
    throw std::runtime_error("labwatch init failed (binary " + o.binary.string() + ")");
  }
  const fs::path config = site / "labwatch.xml";
  write_file(config,
             "<labwatch>\n"
             "  <paths inbox=\"inbox\" processed=\"processed\" failed=\"failed\" "
             "database=\"labwatch.db\"/>\n"
             "  <sources>\n"
             "    <source facility=\"BEN\" timezone=\"America/New_York\" files=\"lat_*\"/>\n"
             "    <source facility=\"THR\" timezone=\"Europe/London\" files=\"thr_*\"/>\n"
             "  </sources>\n"
             "</labwatch>\n");
  const fs::path stage = site / "stage";
  fs::create_directory(stage);

  // NOTIFY_SOCKET: READY=1 says the daemon is watching.
  const fs::path socket_path = root / "notify.sock";
  const int notify = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::snprintf(address.sun_path, sizeof address.sun_path, "%s", socket_path.c_str());
  if (notify < 0 ||
      ::bind(notify, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {  // NOLINT
    fail("bind " + socket_path.string());
  }
  pid_t daemon = -1;
  run({o.binary.string(), "run", "--config", config.string()}, log,
      {"NOTIFY_SOCKET=" + socket_path.string()}, &daemon);
  // However the bench ends, the daemon goes with it; the directory stays on failure, for its log.
  Reaper reaper(daemon);
  for (;;) {
    pollfd p{notify, POLLIN, 0};
    if (::poll(&p, 1, 30'000) <= 0) {
      throw std::runtime_error("no READY=1 from the daemon within 30 s");
    }
    std::array<char, 4096> message{};
    const ssize_t n = ::recv(notify, message.data(), message.size() - 1, 0);
    if (n > 0 && std::string_view(message.data(), static_cast<std::size_t>(n)).find("READY=1") !=
                     std::string::npos) {
      break;
    }
  }

  NotifyDrain drain(notify);

  ProcessedWatch processed(site / "processed");
  std::printf("labwatch daemon bench: %s on %s (%s)\n", o.binary.c_str(), o.dir.c_str(),
              fs_name(o.dir).c_str());

  // Latency: one file at a time into an idle daemon, from rename into the inbox to the move out.
  std::vector<double> latency_ms;
  for (int i = 0; i < o.latency_files; ++i) {
    const std::string name = "lat_" + std::to_string(100000 + i) + ".hl7";
    write_file(stage / name, oru_message(i));
    const Clock::time_point t0 = Clock::now();
    fs::rename(stage / name, site / "inbox" / name);
    if (!processed.wait(1, 10s)) {
      throw std::runtime_error(name + " was not ingested within 10 s; see " + log.string());
    }
    latency_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    std::this_thread::sleep_for(5ms);
  }
  std::printf(
      "latency, 10-OBX HL7 file renamed in -> stored and moved to processed/ (%d files, one at a "
      "time):\n"
      "  p50 %.2f ms   p90 %.2f ms   p99 %.2f ms   max %.2f ms   (goal: p99 <= 20 ms)\n",
      o.latency_files, percentile(latency_ms, 0.50), percentile(latency_ms, 0.90),
      percentile(latency_ms, 0.99), percentile(latency_ms, 1.0));

  // Throughput: a burst of one-result files renamed in at once; each is its own durable commit.
  for (int i = 0; i < o.throughput_files; ++i) {
    write_file(stage / ("thr_" + std::to_string(100000 + i) + ".csv"), csv_file(i));
  }
  const Clock::time_point t0 = Clock::now();
  for (int i = 0; i < o.throughput_files; ++i) {
    const std::string name = "thr_" + std::to_string(100000 + i) + ".csv";
    fs::rename(stage / name, site / "inbox" / name);
  }
  if (!processed.wait(o.throughput_files, 600s)) {
    throw std::runtime_error("the throughput burst was not ingested within 600 s");
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf(
      "throughput, %d one-result CSV files renamed in at once, one durable commit each:\n"
      "  %.2f s, %.0f files/s   (goal: >= 500 files/s)\n",
      o.throughput_files, seconds, o.throughput_files / seconds);

  // Idle: no files, only the loop's own timers.
  const ProcStat before = proc_stat(daemon);
  std::this_thread::sleep_for(std::chrono::seconds(o.idle_seconds));
  const ProcStat after = proc_stat(daemon);
  std::printf(
      "idle %d s: CPU %.3f %%   RSS %.1f MiB   peak RSS %.1f MiB\n", o.idle_seconds,
      o.idle_seconds > 0 ? 100.0 * (after.cpu_seconds - before.cpu_seconds) / o.idle_seconds : 0.0,
      static_cast<double>(after.rss_kib) / 1024.0, static_cast<double>(after.peak_kib) / 1024.0);

  const Clock::time_point stop = Clock::now();
  ::kill(daemon, SIGTERM);
  int status = 0;
  ::waitpid(daemon, &status, 0);
  reaper.release();
  std::printf("SIGTERM -> exit %d in %.1f ms\n",
              WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
              std::chrono::duration<double, std::milli>(Clock::now() - stop).count());
  const auto refused =
      std::distance(fs::directory_iterator(site / "failed"), fs::directory_iterator());
  if (refused > 0) {
    std::printf("warning: %ld entries in failed/: the generated files were not all accepted\n",
                static_cast<long>(refused));
  }
  drain.stop();
  ::close(notify);
  fs::remove_all(root);
  return refused > 0 ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return bench(parse_options(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "daemon_bench: %s\n", e.what());
    return 1;
  }
}
