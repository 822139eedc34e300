// SPDX-License-Identifier: Apache-2.0
// SmtpMailer: a libcurl easy handle per send, TLS policy from the URL, outcome from CURLcode+reply.
#include "mail/smtp_mailer.hpp"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "os/posix_io.hpp"
#include "parsers/text.hpp"

namespace labwatch::daemon {
namespace {

constexpr std::size_t kMaxPasswordBytes = 4096;

// curl_global_init must complete once before the first handle and is not thread-safe in every
// libcurl version; a function-local static makes exactly one call, which later callers wait for.
class CurlGlobal {
 public:
  CurlGlobal() {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      throw std::runtime_error("curl_global_init failed");
    }
  }
  ~CurlGlobal() { curl_global_cleanup(); }
  CurlGlobal(const CurlGlobal&) = delete;
  CurlGlobal& operator=(const CurlGlobal&) = delete;
  CurlGlobal(CurlGlobal&&) = delete;
  CurlGlobal& operator=(CurlGlobal&&) = delete;
};

void init_curl_once() { static const CurlGlobal global; }

struct EasyCleanup {
  void operator()(CURL* handle) const noexcept { curl_easy_cleanup(handle); }
};
struct SlistCleanup {
  void operator()(curl_slist* list) const noexcept { curl_slist_free_all(list); }
};
struct UrlCleanup {
  void operator()(CURLU* url) const noexcept { curl_url_cleanup(url); }
};
struct CurlStringFree {
  void operator()(char* text) const noexcept { curl_free(text); }
};
using EasyHandle = std::unique_ptr<CURL, EasyCleanup>;
using Slist = std::unique_ptr<curl_slist, SlistCleanup>;
using UrlHandle = std::unique_ptr<CURLU, UrlCleanup>;
using CurlString = std::unique_ptr<char, CurlStringFree>;

// strerror is not thread-safe; the category's message is (it uses strerror_r).
std::string errno_text(int error) { return std::generic_category().message(error); }

// The password lives in one fixed buffer that is wiped when it goes out of scope, so no reallocated
// copy of it stays behind in freed heap memory.
class PasswordBuffer {
 public:
  PasswordBuffer() = default;
  ~PasswordBuffer() { OPENSSL_cleanse(bytes_.data(), bytes_.size()); }
  PasswordBuffer(const PasswordBuffer&) = delete;
  PasswordBuffer& operator=(const PasswordBuffer&) = delete;
  PasswordBuffer(PasswordBuffer&&) = delete;
  PasswordBuffer& operator=(PasswordBuffer&&) = delete;

  // Reads `path` (a regular file of at most 4 KiB; O_NONBLOCK so a FIFO cannot hang the send) and
  // strips trailing CR/LF. Returns "" or an error text naming the path, never the contents.
  std::string read(const std::string& path) {
    int fd = open_retrying(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
      const std::string reason = errno_text(errno);
      return "cannot open the password file " + path + ": " + reason;
    }
    struct stat st {};
    std::string error;
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      error = "the password file " + path + " is not a regular file";
    }
    while (error.empty()) {
      const std::size_t room = kMaxPasswordBytes - size_;
      const ssize_t n = ::read(fd, bytes_.data() + size_, room == 0 ? 1 : room);
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n < 0) {
        const std::string reason = errno_text(errno);
        error = "cannot read the password file " + path + ": " + reason;
      } else if (n == 0) {
        break;
      } else if (room == 0) {
        error = "the password file " + path + " is larger than 4 KiB";
      } else {
        size_ += static_cast<std::size_t>(n);
      }
    }
    ::close(fd);
    if (!error.empty()) {
      return error;
    }
    while (size_ > 0 && (bytes_[size_ - 1] == '\n' || bytes_[size_ - 1] == '\r')) {
      --size_;
    }
    if (size_ == 0) {
      return "the password file " + path + " is empty";
    }
    if (std::find(bytes_.begin(), bytes_.begin() + static_cast<std::ptrdiff_t>(size_), '\0') !=
        bytes_.begin() + static_cast<std::ptrdiff_t>(size_)) {
      return "the password file " + path + " holds a NUL byte";
    }
    bytes_[size_] = '\0';
    return {};
  }

  [[nodiscard]] const char* c_str() const noexcept { return bytes_.data(); }

 private:
  std::array<char, kMaxPasswordBytes + 1> bytes_{};
  std::size_t size_ = 0;
};

// The upload source for curl: the rendered message, handed out in whatever pieces curl asks for.
struct BodyCursor {
  std::string_view text;
  std::size_t offset = 0;
};

std::size_t read_body(char* buffer, std::size_t size, std::size_t count, void* user) noexcept {
  auto* cursor = static_cast<BodyCursor*>(user);
  const std::size_t n = std::min(size * count, cursor->text.size() - cursor->offset);
  std::memcpy(buffer, cursor->text.data() + cursor->offset, n);
  cursor->offset += n;
  return n;
}

using parsers::lower_ascii;

// curl's texts name codes and hosts only, but a log line must stay one line whatever arrives.
std::string printable(std::string_view text) {
  std::string out;
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u == 0x7F) ? ' ' : c;
  }
  while (!out.empty() && out.back() == ' ') {
    out.pop_back();
  }
  return out;
}

// The text libcurl (7.x and 8.x, lib/smtp.c) puts in the error buffer when RCPT TO is refused:
// "RCPT failed: 550". MAIL FROM and DATA have their own ("MAIL failed: ", "DATA failed: "); a
// refused greeting or final dot is CURLE_WEIRD_SERVER_REPLY, a refused AUTH CURLE_LOGIN_DENIED.
constexpr std::string_view kRcptRefused = "RCPT failed";

// Why only a refused RCPT TO is permanent: each message has one recipient, so a 5xx to its RCPT
// is a verdict on that address (no such mailbox), and trying again cannot help. A 5xx to anything
// else (the greeting, EHLO, AUTH, MAIL FROM, DATA or the final dot) refuses the session or the
// sender: the relay is misconfigured or unwell (a wrong password, a sender not allowed, a full
// spool), every other message would meet the same, and it is the relay, not the mail, that has
// to be fixed, so the message stays queued and the dispatcher pauses the relay with backoff.
// libcurl reports the reply code (CURLINFO_RESPONSE_CODE) but names the failed command only in
// its error text; when that text does not say RCPT, the failure is taken for the relay's: a
// message wrongly kept is retried and listed by `labwatch outbox`, one wrongly failed is lost.
// Without a 4xx/5xx reply the problem lay on the way to the relay (no connection, reset, timeout,
// no STARTTLS, a reply that never came), which time may fix, so the message stays queued too.
SendResult classify(CURLcode result, long reply, std::string_view detail) {
  SendResult out;
  out.smtp_code = static_cast<int>(reply);
  if (result == CURLE_OK) {
    out.status = SendStatus::sent;
    return out;
  }
  const bool recipient_refused =
      reply >= 500 && reply < 600 && detail.substr(0, kRcptRefused.size()) == kRcptRefused;
  out.status = recipient_refused ? SendStatus::permanent : SendStatus::transient;
  out.error = curl_easy_strerror(result);
  if (!detail.empty()) {
    out.error += ": " + printable(detail);
  }
  if (reply >= 400 && reply < 600) {
    out.error += " (SMTP " + std::to_string(reply) + ")";
  }
  return out;
}

}  // namespace

std::string_view to_string(TlsMode mode) noexcept {
  switch (mode) {
    case TlsMode::implicit:
      return "implicit";
    case TlsMode::required:
      return "required";
    case TlsMode::opportunistic:
      return "opportunistic";
  }
  return "unknown";
}

bool is_loopback_host(std::string_view host) noexcept {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty() || host.size() > INET6_ADDRSTRLEN) {
    return false;
  }
  // libcurl answers "localhost" itself with loopback addresses and never asks DNS for it.
  if (lower_ascii(host) == "localhost") {
    return true;
  }
  std::array<char, INET6_ADDRSTRLEN + 1> text{};
  std::copy(host.begin(), host.end(), text.begin());
  in_addr v4{};
  if (::inet_pton(AF_INET, text.data(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  if (::inet_pton(AF_INET6, text.data(), &v6) == 1) {
    constexpr std::array<std::uint8_t, 12> kMappedPrefix = {0, 0, 0, 0, 0,    0,
                                                            0, 0, 0, 0, 0xFF, 0xFF};
    const std::uint8_t* b = v6.s6_addr;
    const bool loopback =
        std::all_of(b, b + 15, [](std::uint8_t x) { return x == 0; }) && b[15] == 1;
    const bool mapped_loopback =
        std::equal(kMappedPrefix.begin(), kMappedPrefix.end(), b) && b[12] == 127;
    return loopback || mapped_loopback;
  }
  return false;
}

parsers::Expected<TlsMode, std::string> smtp_tls_mode(std::string_view smtp_url,
                                                      bool allow_plaintext) {
  const UrlHandle url(curl_url());
  if (!url) {
    throw std::bad_alloc();
  }
  const std::string text(smtp_url);
  if (text.find('\0') != std::string::npos ||
      curl_url_set(url.get(), CURLUPART_URL, text.c_str(), 0) != CURLUE_OK) {
    return parsers::unexpected(std::string("the smtp URL is not a valid URL"));
  }
  const auto part = [&](CURLUPart which) -> std::optional<std::string> {
    char* raw = nullptr;
    if (curl_url_get(url.get(), which, &raw, 0) != CURLUE_OK || raw == nullptr) {
      return std::nullopt;
    }
    const CurlString owned(raw);
    return std::string(owned.get());
  };
  const auto scheme = part(CURLUPART_SCHEME);
  const auto host = part(CURLUPART_HOST);
  if (!host || host->empty()) {
    return parsers::unexpected(std::string("the smtp URL has no host"));
  }
  if (part(CURLUPART_PASSWORD)) {
    return parsers::unexpected(
        std::string("the smtp URL must not hold a password (use password-file)"));
  }
  if (scheme == "smtps") {
    return TlsMode::implicit;
  }
  if (scheme != "smtp") {
    return parsers::unexpected(
        std::string("the smtp URL must start with smtp:// (STARTTLS) or smtps:// (implicit TLS)"));
  }
  // Plain text may only cross the loopback interface, unless the config says so explicitly.
  if (allow_plaintext || is_loopback_host(*host)) {
    return TlsMode::opportunistic;
  }
  return TlsMode::required;
}

parsers::Expected<SmtpMailer, std::string> SmtpMailer::create(config::Mail mail,
                                                              SmtpOptions options) {
  init_curl_once();
  auto mode = smtp_tls_mode(mail.smtp_url, mail.allow_plaintext);
  if (!mode) {
    return parsers::unexpected(mode.error());
  }
  return SmtpMailer(std::move(mail), std::move(options), *mode);
}

SmtpMailer::SmtpMailer(config::Mail mail, SmtpOptions options, TlsMode tls_mode)
    : mail_(std::move(mail)), options_(std::move(options)), tls_mode_(tls_mode) {}

SendResult SmtpMailer::send(const MailMessage& message) {
  auto rendered = render_mime(message);
  if (!rendered) {
    const MailError& e = rendered.error();
    return SendResult{
        SendStatus::permanent, 0,
        "the message cannot be rendered: " + std::string(to_string(e.code)) + " in " + e.field};
  }
  PasswordBuffer password;
  const bool authenticate = !mail_.username.empty();
  if (authenticate && !mail_.password_file.empty()) {
    if (std::string error = password.read(mail_.password_file); !error.empty()) {
      return SendResult{SendStatus::transient, 0, std::move(error)};
    }
  }

  init_curl_once();
  const EasyHandle easy(curl_easy_init());
  if (!easy) {
    return SendResult{SendStatus::transient, 0, "curl_easy_init failed"};
  }
  // render_mime validated both addresses: plain ASCII, no spaces, brackets or line breaks.
  const std::string sender = "<" + message.from.address + ">";
  const Slist recipients(curl_slist_append(nullptr, ("<" + message.to.address + ">").c_str()));
  Slist pins;
  for (const std::string& pin : options_.resolve) {
    // curl_slist_append returns the head it was given (or the new head of an empty list), or null
    // leaving the list untouched.
    curl_slist* head = curl_slist_append(pins.get(), pin.c_str());
    if (head == nullptr) {
      return SendResult{SendStatus::transient, 0, "curl_slist_append failed"};
    }
    if (!pins) {
      pins.reset(head);
    }
  }
  if (!recipients) {
    return SendResult{SendStatus::transient, 0, "curl_slist_append failed"};
  }
  BodyCursor body{*rendered, 0};
  std::array<char, CURL_ERROR_SIZE> detail{};
  const long timeout_ms = static_cast<long>(
      std::chrono::duration_cast<std::chrono::milliseconds>(mail_.timeout).count());

  CURL* h = easy.get();
  CURLcode set = CURLE_OK;
  const auto option = [&set](CURLcode result) {
    if (set == CURLE_OK) {
      set = result;
    }
  };
  option(curl_easy_setopt(h, CURLOPT_ERRORBUFFER, detail.data()));
  option(curl_easy_setopt(h, CURLOPT_URL, mail_.smtp_url.c_str()));
  option(curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps"));
  // Only the relay named in the config: no proxy taken from the environment.
  option(curl_easy_setopt(h, CURLOPT_PROXY, ""));
  option(curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L));
  option(curl_easy_setopt(h, CURLOPT_VERBOSE, 0L));
  option(curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms));
  option(curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms));
  // CURLUSESSL_ALL: without STARTTLS nothing is sent, not even AUTH; TRY falls back to plain text.
  option(curl_easy_setopt(h, CURLOPT_USE_SSL,
                          tls_mode_ == TlsMode::opportunistic ? static_cast<long>(CURLUSESSL_TRY)
                                                              : static_cast<long>(CURLUSESSL_ALL)));
  option(curl_easy_setopt(h, CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2)));
  if (!options_.ca_file.empty()) {
    option(curl_easy_setopt(h, CURLOPT_CAINFO, options_.ca_file.c_str()));
  }
  if (pins) {
    option(curl_easy_setopt(h, CURLOPT_RESOLVE, pins.get()));
  }
  if (authenticate) {
    option(curl_easy_setopt(h, CURLOPT_USERNAME, mail_.username.c_str()));
    option(curl_easy_setopt(h, CURLOPT_PASSWORD, password.c_str()));
  }
  option(curl_easy_setopt(h, CURLOPT_MAIL_FROM, sender.c_str()));
  option(curl_easy_setopt(h, CURLOPT_MAIL_RCPT, recipients.get()));
  option(curl_easy_setopt(h, CURLOPT_UPLOAD, 1L));
  const curl_read_callback reader = &read_body;
  option(curl_easy_setopt(h, CURLOPT_READFUNCTION, reader));
  option(curl_easy_setopt(h, CURLOPT_READDATA, &body));
  option(curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(body.text.size())));
  if (set != CURLE_OK) {
    return SendResult{SendStatus::transient, 0,
                      std::string("curl_easy_setopt failed: ") + curl_easy_strerror(set)};
  }

  const CURLcode result = curl_easy_perform(h);
  long reply = 0;
  if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &reply) != CURLE_OK) {
    reply = 0;
  }
  return classify(result, reply, detail.data());
}

}  // namespace labwatch::daemon
