// SPDX-License-Identifier: Apache-2.0
// SmtpMailer: one message to one recipient through libcurl SMTP, TLS unless the relay is loopback.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "mail/mailer.hpp"
#include "parsers/expected.hpp"

namespace labwatch::daemon {

enum class TlsMode {
  implicit,       // smtps://: TLS from the first byte
  required,       // smtp:// with STARTTLS, or no mail at all (CURLUSESSL_ALL)
  opportunistic,  // smtp:// with STARTTLS when offered, plain text otherwise (CURLUSESSL_TRY)
};

std::string_view to_string(TlsMode mode) noexcept;

// True for "localhost", 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104; IPv6 with or without brackets.
bool is_loopback_host(std::string_view host) noexcept;

// How `smtp_url` may use TLS: smtps:// is implicit; smtp:// requires STARTTLS unless the host is a
// loopback address or `allow_plaintext` is set. libcurl's own parser reads the URL, as in the
// send. Reports (as text) a malformed URL, another scheme, no host, or a password in the URL.
parsers::Expected<TlsMode, std::string> smtp_tls_mode(std::string_view smtp_url,
                                                      bool allow_plaintext);

// Settings that do not come from config::Mail.
struct SmtpOptions {
  std::string ca_file;  // PEM CA bundle to trust instead of the system store; empty = system
  std::vector<std::string> resolve;  // "host:port:address" pins (CURLOPT_RESOLVE), e.g. split DNS
};

class SmtpMailer final : public Mailer {
 public:
  // A mailer for `mail.smtp_url`. Reports the reason (text) when the URL is unusable (see
  // smtp_tls_mode). Throws std::runtime_error when libcurl cannot be initialised.
  static parsers::Expected<SmtpMailer, std::string> create(config::Mail mail,
                                                           SmtpOptions options = {});

  // Renders `message` and sends it in one SMTP transaction to message.to only (envelope sender
  // message.from). The password is read from mail.password_file now, never cached or logged.
  // Outcome: sent on 2xx after the final dot; permanent on a 5xx reply or an unrenderable message;
  // transient otherwise (4xx, no relay, reset, timeout, no reply, no TLS, unreadable password).
  // Keeps no state between calls, so it may run on a worker thread.
  SendResult send(const MailMessage& message) override;

  [[nodiscard]] TlsMode tls_mode() const noexcept { return tls_mode_; }

 private:
  SmtpMailer(config::Mail mail, SmtpOptions options, TlsMode tls_mode);

  config::Mail mail_;
  SmtpOptions options_;
  TlsMode tls_mode_;
};

}  // namespace labwatch::daemon
