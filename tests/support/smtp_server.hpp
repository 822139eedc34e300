// SPDX-License-Identifier: Apache-2.0
// SmtpTestServer: runs tests/support/smtp_server.py on a free loopback port and reads its spool.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace labwatch::test {

// One message as the server received it.
struct ReceivedMail {
  std::string mail_from;
  std::vector<std::string> rcpt_to;
  bool tls = false;       // the session was encrypted (STARTTLS or implicit TLS)
  std::string auth_user;  // empty without AUTH
  std::string data;       // the DATA bytes, CRLF line ends, dot-stuffing undone
};

struct SmtpServerOptions {
  std::string mode = "ok";  // ok | 421-connect | 451-rcpt | 550-rcpt | disconnect-after-data
  std::string starttls_cert;
  std::string implicit_tls_cert;
  std::string key;
  std::string auth;  // "user:password": AUTH required (allowed in plain text)
};

inline SmtpServerOptions server_mode(std::string mode) {
  SmtpServerOptions options;
  options.mode = std::move(mode);
  return options;
}

inline std::string read_whole_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A fresh private directory under the system temp dir; the caller removes it.
inline std::filesystem::path make_temp_dir(std::string_view prefix) {
  std::string pattern = (std::filesystem::temp_directory_path() / prefix).string() + "-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw std::system_error(errno, std::generic_category(), "mkdtemp");
  }
  return pattern;
}

// A loopback port that nothing listens on right now (bound, read, closed).
inline int unused_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    throw std::system_error(errno, std::generic_category(), "socket");
  }
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  auto* generic = reinterpret_cast<sockaddr*>(&address);  // NOLINT: the sockets API
  if (::bind(fd, generic, length) != 0 || ::getsockname(fd, generic, &length) != 0) {
    ::close(fd);
    throw std::system_error(errno, std::generic_category(), "bind");
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

// A self-signed certificate for `dns_name` and 127.0.0.1 (which is also its own CA), made with the
// openssl CLI in `dir`: dir/cert.pem and dir/key.pem.
inline void make_self_signed_certificate(const std::filesystem::path& dir,
                                         std::string_view dns_name) {
  const std::string command =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
      " -days 2 -subj /CN=" +
      std::string(dns_name) + " -addext subjectAltName=DNS:" + std::string(dns_name) +
      ",IP:127.0.0.1 -keyout '" + (dir / "key.pem").string() + "' -out '" +
      (dir / "cert.pem").string() + "' >/dev/null 2>&1";
  if (std::system(command.c_str()) !=
      0) {  // NOLINT(concurrency-mt-unsafe): tests run one at a time
    throw std::runtime_error("openssl req failed: " + command);
  }
}

// Starts the server in the constructor (returns once it accepts connections) and stops it in the
// destructor. Each instance has its own spool directory.
class SmtpTestServer {
 public:
  explicit SmtpTestServer(const SmtpServerOptions& options = {})
      : dir_(make_temp_dir("labwatch-smtp")) {
    const std::filesystem::path spool = dir_ / "spool";
    std::filesystem::create_directory(spool);
    std::vector<std::string> args = {
        "/usr/bin/python3", LABWATCH_SOURCE_DIR "/tests/support/smtp_server.py",
        "--port",           "0",
        "--spool",          spool.string(),
        "--mode",           options.mode};
    const auto add = [&args](const char* flag, const std::string& value) {
      if (!value.empty()) {
        args.emplace_back(flag);
        args.push_back(value);
      }
    };
    add("--starttls-cert", options.starttls_cert);
    add("--implicit-tls-cert", options.implicit_tls_cert);
    add("--key", options.key);
    add("--auth", options.auth);
    start(args);
  }

  ~SmtpTestServer() {
    stop();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  SmtpTestServer(const SmtpTestServer&) = delete;
  SmtpTestServer& operator=(const SmtpTestServer&) = delete;
  SmtpTestServer(SmtpTestServer&&) = delete;
  SmtpTestServer& operator=(SmtpTestServer&&) = delete;

  [[nodiscard]] int port() const noexcept { return port_; }

  [[nodiscard]] std::string url(std::string_view scheme = "smtp",
                                std::string_view host = "127.0.0.1") const {
    return std::string(scheme) + "://" + std::string(host) + ":" + std::to_string(port_);
  }

  // Every message received so far, in arrival order.
  [[nodiscard]] std::vector<ReceivedMail> received() const {
    std::vector<std::filesystem::path> envelopes;
    for (const auto& entry : std::filesystem::directory_iterator(dir_ / "spool")) {
      if (entry.path().extension() == ".envelope") {
        envelopes.push_back(entry.path());
      }
    }
    std::sort(envelopes.begin(), envelopes.end());
    std::vector<ReceivedMail> out;
    for (const auto& path : envelopes) {
      ReceivedMail mail;
      std::istringstream lines(read_whole_file(path));
      std::string line;
      while (std::getline(lines, line)) {
        const std::size_t space = line.find(' ');
        const std::string key = line.substr(0, space);
        const std::string value = space == std::string::npos ? "" : line.substr(space + 1);
        if (key == "from") {
          mail.mail_from = value;
        } else if (key == "rcpt") {
          mail.rcpt_to.push_back(value);
        } else if (key == "tls") {
          mail.tls = value == "yes";
        } else if (key == "auth") {
          mail.auth_user = value;
        }
      }
      std::filesystem::path eml = path;
      mail.data = read_whole_file(eml.replace_extension(".eml"));
      out.push_back(std::move(mail));
    }
    return out;
  }

  // What the server wrote to stderr (for failure messages).
  [[nodiscard]] std::string log() const { return read_whole_file(dir_ / "server.log"); }

 private:
  void start(const std::vector<std::string>& args) {
    // Everything the child needs is prepared before fork: after it, only async-signal-safe calls.
    std::vector<char*> argv;
    for (const std::string& arg : args) {
      argv.push_back(const_cast<char*>(arg.c_str()));  // NOLINT: execv takes char* const[]
    }
    argv.push_back(nullptr);
    const std::string log_path = (dir_ / "server.log").string();
    const pid_t parent = ::getpid();
    int fds[2] = {-1, -1};  // NOLINT: pipe2 takes an int[2]
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      throw std::system_error(errno, std::generic_category(), "pipe2");
    }
    pid_ = ::fork();
    if (pid_ < 0) {
      throw std::system_error(errno, std::generic_category(), "fork");
    }
    if (pid_ == 0) {
      // The server dies with the test process, even when the test crashes.
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != parent) {
        ::_exit(126);
      }
      const int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      if (::dup2(fds[1], STDOUT_FILENO) < 0 || log_fd < 0 || ::dup2(log_fd, STDERR_FILENO) < 0) {
        ::_exit(126);
      }
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (line.find('\n') == std::string::npos) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd p{fds[0], POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
        break;
      }
      char buffer[64];  // NOLINT: a read buffer
      const ssize_t n = ::read(fds[0], buffer, sizeof buffer);
      if (n <= 0) {
        break;
      }
      line.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(fds[0]);
    const std::string_view prefix = "PORT ";
    const char* first = line.data() + std::min(line.size(), prefix.size());
    const auto [end, ec] = std::from_chars(first, line.data() + line.size(), port_);
    if (line.rfind(prefix, 0) != 0 || ec != std::errc() || end == line.data() + line.size() ||
        *end != '\n' || port_ <= 0) {
      stop();
      throw std::runtime_error("the SMTP test server did not start: " + log());
    }
  }

  void stop() noexcept {
    if (pid_ <= 0) {
      return;
    }
    ::kill(pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 500; ++i) {
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  std::filesystem::path dir_;
  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace labwatch::test
