// SPDX-License-Identifier: Apache-2.0
// Mailer: the interface the outbox dispatcher sends through (SMTP in production, a fake in tests).
#pragma once

#include <string>
#include <string_view>

#include "mail/mail_message.hpp"

namespace labwatch::daemon {

enum class SendStatus {
  sent,       // the relay accepted the message (2xx after the final dot)
  transient,  // try again later: 4xx, refused/reset connection, timeout, TLS unavailable, no reply,
              // or a 5xx refusing the session (greeting, EHLO, AUTH, MAIL FROM, DATA): a relay
              // fault
  permanent,  // never retry: 5xx to RCPT TO (the recipient) or an unrenderable message; shown as
              // failed, never dropped
};

struct SendResult {
  SendStatus status = SendStatus::transient;
  int smtp_code = 0;  // the relay's last reply code, 0 when there was none
  std::string error;  // empty when sent; never contains patient data or the message text
};

constexpr std::string_view to_string(SendStatus status) noexcept {
  switch (status) {
    case SendStatus::sent:
      return "sent";
    case SendStatus::transient:
      return "transient";
    case SendStatus::permanent:
      return "permanent";
  }
  return "unknown";
}

class Mailer {
 public:
  virtual ~Mailer() = default;
  // Delivers `message` to its one recipient and says what happened. Reports every failure in the
  // result; never throws for an unreachable or refusing relay.
  virtual SendResult send(const MailMessage& message) = 0;

 protected:
  Mailer() = default;
  Mailer(const Mailer&) = default;
  Mailer& operator=(const Mailer&) = default;
  Mailer(Mailer&&) = default;
  Mailer& operator=(Mailer&&) = default;
};

}  // namespace labwatch::daemon
