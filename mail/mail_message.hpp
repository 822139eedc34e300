// SPDX-License-Identifier: Apache-2.0
// MailMessage: one alert e-mail as structured fields, and its rendering as a MIME message.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "clinical/normalized.hpp"
#include "parsers/expected.hpp"

namespace labwatch::daemon {

// A display name (any UTF-8 text, RFC 2047 encoded when needed) and a plain ASCII addr-spec.
struct Mailbox {
  std::string display_name;  // may be empty
  std::string address;       // local@domain: printable ASCII, no spaces, <>,;" or other specials
};

// A header the structured fields do not cover (e.g. X-Labwatch-Alert); its value is plain text.
struct MailHeader {
  std::string name;
  std::string value;
};

struct MailMessage {
  Mailbox from;
  Mailbox to;  // exactly one recipient
  std::string subject;
  // "left@right" without angle brackets. Fixed when the alert is queued and reused on every retry,
  // so a receiver can drop a duplicate delivery and a later notice can refer to this one.
  std::string message_id;
  // For a notice correcting earlier alerts: their Message-IDs, oldest first (References; the last
  // one is also In-Reply-To).
  std::vector<std::string> references;
  clinical::UnixSeconds date = 0;
  std::string text_body;  // UTF-8
  std::string html_body;  // UTF-8; empty = text/plain only
  std::vector<MailHeader> extra_headers;
};

enum class MailErrc {
  forbidden_character,  // CR, LF or NUL in a header input
  invalid_utf8,
  invalid_address,
  invalid_message_id,
  invalid_header_name,
  reserved_header_name,  // an extra header naming a sender, recipient, MIME or generated field
  boundary_in_body,
};

// Why a message cannot be rendered, and which header (or "text body" / "html body") caused it.
// Never carries the offending value, which may hold patient data.
struct MailError {
  MailErrc code;
  std::string field;
};

std::string_view to_string(MailErrc code) noexcept;

// Renders `message` as a complete message with CRLF line ends, ready for SMTP DATA. Headers are
// built from the structured fields only; non-ASCII header text is RFC 2047 encoded and folded to 76
// columns; bodies are quoted-printable UTF-8 (multipart/alternative when there is an HTML body)
// under a random boundary. Reports a MailError naming the field on CR/LF/NUL in a header input,
// invalid UTF-8, a bad address or Message-ID, or an extra header that is not allowed.
parsers::Expected<std::string, MailError> render_mime(const MailMessage& message);

// As render_mime, with a caller-chosen MIME boundary (the seam for golden tests). Reports
// boundary_in_body when the boundary delimiter occurs in an encoded body.
parsers::Expected<std::string, MailError> render_mime(const MailMessage& message,
                                                      std::string_view boundary);

// A new globally unique Message-ID (no angle brackets): 128 random bits in hex, '@', `domain`.
std::string generate_message_id(std::string_view domain);

// The domain of an addr-spec ("labwatch@clinic.example" -> "clinic.example"), else "localhost".
std::string_view address_domain(std::string_view address) noexcept;

// RFC 5322 date-time in UTC for a time in the years 0000-9999: "Sat, 21 Sep 2024 12:15:00 +0000".
std::string rfc5322_date(clinical::UnixSeconds t);

// RFC 2047 encoded-words for `text` (UTF-8) that fit a header line of at most 76 columns when the
// first word starts at column `column`, joined by CRLF SP. Q encoding when it is no longer than B.
// Exposed for tests; render_mime uses it for every non-ASCII header.
std::string encode_header_words(std::string_view text, std::size_t column);

// Quoted-printable (RFC 2045 6.7) of UTF-8 text whose line ends (LF, CR or CRLF) become CRLF. No
// output line exceeds 76 characters; a '.' or "From " at the start of a line is encoded as well.
std::string quoted_printable(std::string_view text);

}  // namespace labwatch::daemon
