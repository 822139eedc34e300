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
  // ok | 421-connect | 554-greeting | 535-auth (with auth) | 530-mail | 451-rcpt | 550-rcpt |
  // 550-data | disconnect-after-data | slow-data (smtp_server.py says what each does)
  std::string mode = "ok";
  std::string starttls_cert;
  std::string implicit_tls_cert;
  std::string key;
  std::string auth;          // "user:password": AUTH required (allowed in plain text)
  int port = 0;              // 0 = a free port
  double delay_seconds = 5;  // how long slow-data waits before its 250
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

inline int hex_digit(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  return -1;
}

// Quoted-printable (RFC 2045 6.7) decoded: soft line breaks removed, =XX turned into bytes.
inline std::string decode_quoted_printable(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '=') {
      out += text[i];
    } else if (text.substr(i + 1, 2) == "\r\n") {
      i += 2;
    } else if (i + 2 < text.size() && hex_digit(text[i + 1]) >= 0 && hex_digit(text[i + 2]) >= 0) {
      out += static_cast<char>(hex_digit(text[i + 1]) * 16 + hex_digit(text[i + 2]));
      i += 2;
    } else {
      out += '=';
    }
  }
  return out;
}

inline std::string decode_base64(std::string_view text) {
  constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  unsigned bits = 0;
  int count = 0;
  for (char c : text) {
    const std::size_t v = kAlphabet.find(c);
    if (v == std::string_view::npos) {
      continue;  // padding
    }
    bits = (bits << 6) | static_cast<unsigned>(v);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out += static_cast<char>((bits >> count) & 0xFF);
    }
  }
  return out;
}

// A header value with its folding undone and its RFC 2047 encoded-words (UTF-8, Q or B) decoded;
// white space between two adjacent encoded-words is dropped, as RFC 2047 section 6.2 says.
inline std::string decode_header_value(std::string_view value) {
  std::string unfolded;
  for (std::size_t i = 0; i < value.size(); ++i) {
    if (value.substr(i, 2) == "\r\n") {
      ++i;
      continue;
    }
    unfolded += value[i];
  }
  std::string out;
  std::size_t i = 0;
  bool after_word = false;
  while (i < unfolded.size()) {
    const std::size_t start = unfolded.find("=?", i);
    const std::size_t end = start == std::string::npos ? start : unfolded.find("?=", start + 10);
    const std::string_view between = std::string_view(unfolded).substr(
        i, (start == std::string::npos ? unfolded.size() : start) - i);
    if (!(after_word && start != std::string::npos &&
          between.find_first_not_of(' ') == std::string_view::npos)) {
      out += between;
    }
    if (start == std::string::npos || end == std::string::npos) {
      break;
    }
    const std::string_view word = std::string_view(unfolded).substr(start + 2, end - start - 2);
    const std::string_view payload = word.substr(std::min(word.size(), std::size_t{8}));
    if (word.starts_with("UTF-8?Q?")) {
      std::string q(payload);
      std::replace(q.begin(), q.end(), '_', ' ');
      out += decode_quoted_printable(q);
    } else if (word.starts_with("UTF-8?B?")) {
      out += decode_base64(payload);
    } else {
      out += "<bad>";
    }
    after_word = true;
    i = end + 2;
  }
  return out;
}

// The raw value of the first header `name` (case-sensitive) of a message, unfolded but not decoded;
// "" when there is none.
inline std::string header_value(std::string_view message, std::string_view name) {
  const std::size_t head_end = message.find("\r\n\r\n");
  const std::string_view head =
      message.substr(0, head_end == std::string_view::npos ? 0 : head_end + 2);
  std::size_t at = 0;
  while (at < head.size()) {
    const std::size_t line_end = head.find("\r\n", at);
    if (head.substr(at, name.size()) == name && head.substr(at + name.size(), 1) == ":") {
      std::string value(head.substr(at + name.size() + 1, line_end - at - name.size() - 1));
      std::size_t next = line_end + 2;
      while (next < head.size() && head[next] == ' ') {  // continuation lines
        const std::size_t more = head.find("\r\n", next);
        value += head.substr(next, more - next);
        next = more + 2;
      }
      return value.substr(value.find_first_not_of(' ') == std::string::npos
                              ? value.size()
                              : value.find_first_not_of(' '));
    }
    at = line_end + 2;
  }
  return {};
}

// The decoded body of the first "text/plain" or "text/html" part of a rendered alert message.
inline std::string body_part(std::string_view message, std::string_view subtype) {
  const std::string marker = "Content-Type: text/" + std::string(subtype) + ";";
  const std::size_t part = message.find(marker);
  if (part == std::string_view::npos) {
    return {};
  }
  const std::size_t start = message.find("\r\n\r\n", part) + 4;
  std::size_t end = message.find("\r\n--", start);
  if (end == std::string_view::npos) {
    end = message.size();
  }
  std::string text = decode_quoted_printable(message.substr(start, end - start));
  std::string lf;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
      continue;
    }
    lf += text[i];
  }
  return lf;
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
        "--spool",          spool.string(),
        "--mode",           options.mode,
        "--mode-file",      (dir_ / "mode").string(),
        "--port",           std::to_string(options.port),
        "--delay",          std::to_string(options.delay_seconds)};
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

  // Switches the failure mode for the connections and commands that arrive from now on.
  void set_mode(std::string_view mode) const {
    const std::filesystem::path next = dir_ / "mode.next";
    std::ofstream(next, std::ios::binary | std::ios::trunc) << mode << "\n";
    std::filesystem::rename(next, dir_ / "mode");
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
