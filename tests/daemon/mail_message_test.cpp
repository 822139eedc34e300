// SPDX-License-Identifier: Apache-2.0
// MIME rendering: golden messages, RFC 2047 headers, quoted-printable bodies, refused inputs.
#include "mail/mail_message.hpp"

#include <catch2/catch.hpp>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace {

using labwatch::daemon::MailErrc;
using labwatch::daemon::MailMessage;

constexpr labwatch::clinical::UnixSeconds kSaturdayNoon = 1726920900;  // 2024-09-21T12:15:00Z

MailMessage alert_message() {
  MailMessage m;
  m.from = {"Labwatch", "labwatch@clinic.example"};
  m.to = {"Dr. Ada Byron", "ada@clinic.example"};
  m.subject = "Ferritin below target";
  m.message_id = "4f1c2a9e@clinic.example";
  m.date = kSaturdayNoon;
  m.text_body =
      "Ferritin 38 ng/mL is below the optimal target (>= 50 ng/mL).\nCollected 2024-09-20.\n";
  return m;
}

std::vector<std::string_view> lines_of(std::string_view text) {
  std::vector<std::string_view> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    const std::size_t end = text.find("\r\n", start);
    if (end == std::string_view::npos) {
      lines.push_back(text.substr(start));
      break;
    }
    lines.push_back(text.substr(start, end - start));
    start = end + 2;
  }
  return lines;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

// A strict decoder for the words encode_header_words makes: "=?UTF-8?Q?...?=" or "=?UTF-8?B?...?="
// separated by CRLF SP. Returns "<bad>" for anything else.
std::string decode_words(std::string_view folded) {
  constexpr std::string_view kB64 =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  const std::vector<std::string_view> words = lines_of(folded);
  for (std::size_t w = 0; w < words.size(); ++w) {
    std::string_view word = words[w];
    if (w > 0) {
      if (word.empty() || word.front() != ' ') {
        return "<bad>";
      }
      word.remove_prefix(1);
    }
    if (word.size() < 12 || word.substr(0, 8) != "=?UTF-8?" ||
        word.substr(word.size() - 2) != "?=" || word[9] != '?') {
      return "<bad>";
    }
    const char encoding = word[8];
    const std::string_view payload = word.substr(10, word.size() - 12);
    if (encoding == 'Q') {
      for (std::size_t i = 0; i < payload.size(); ++i) {
        if (payload[i] == '_') {
          out += ' ';
        } else if (payload[i] == '=' && i + 2 < payload.size() && hex_value(payload[i + 1]) >= 0 &&
                   hex_value(payload[i + 2]) >= 0) {
          out += static_cast<char>(hex_value(payload[i + 1]) * 16 + hex_value(payload[i + 2]));
          i += 2;
        } else {
          out += payload[i];
        }
      }
    } else if (encoding == 'B') {
      unsigned bits = 0;
      int count = 0;
      for (char c : payload) {
        if (c == '=') {
          break;
        }
        bits = (bits << 6) | static_cast<unsigned>(kB64.find(c));
        count += 6;
        if (count >= 8) {
          count -= 8;
          out += static_cast<char>((bits >> count) & 0xFF);
        }
      }
    } else {
      return "<bad>";
    }
  }
  return out;
}

}  // namespace

TEST_CASE("render_mime writes the exact headers and parts of a text and HTML alert",
          "[daemon][mail]") {
  MailMessage m = alert_message();
  m.html_body = "<p>Ferritin <b>38 ng/mL</b> is below the optimal target (&gt;= 50 ng/mL).</p>\n";
  m.extra_headers.push_back({"X-Labwatch-Alert", "17"});
  const auto rendered = labwatch::daemon::render_mime(m, "=_test_boundary");
  REQUIRE(rendered.has_value());
  CHECK(*rendered ==
        "Date: Sat, 21 Sep 2024 12:15:00 +0000\r\n"
        "From: Labwatch <labwatch@clinic.example>\r\n"
        "To: \"Dr. Ada Byron\" <ada@clinic.example>\r\n"
        "Subject: Ferritin below target\r\n"
        "Message-ID: <4f1c2a9e@clinic.example>\r\n"
        "Auto-Submitted: auto-generated\r\n"
        "X-Labwatch-Alert: 17\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/alternative; boundary=\"=_test_boundary\"\r\n"
        "\r\n"
        "--=_test_boundary\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n"
        "\r\n"
        "Ferritin 38 ng/mL is below the optimal target (>=3D 50 ng/mL).\r\n"
        "Collected 2024-09-20.\r\n"
        "\r\n"
        "--=_test_boundary\r\n"
        "Content-Type: text/html; charset=utf-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n"
        "\r\n"
        "<p>Ferritin <b>38 ng/mL</b> is below the optimal target (&gt;=3D 50 ng/mL).=\r\n"
        "</p>\r\n"
        "\r\n"
        "--=_test_boundary--\r\n");
}

TEST_CASE("render_mime writes a text-only alert as one quoted-printable part", "[daemon][mail]") {
  MailMessage m = alert_message();
  m.from.display_name.clear();
  m.to = {"Ada Byron", "ada@clinic.example"};
  const auto rendered = labwatch::daemon::render_mime(m);
  REQUIRE(rendered.has_value());
  CHECK(*rendered ==
        "Date: Sat, 21 Sep 2024 12:15:00 +0000\r\n"
        "From: labwatch@clinic.example\r\n"
        "To: Ada Byron <ada@clinic.example>\r\n"
        "Subject: Ferritin below target\r\n"
        "Message-ID: <4f1c2a9e@clinic.example>\r\n"
        "Auto-Submitted: auto-generated\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n"
        "\r\n"
        "Ferritin 38 ng/mL is below the optimal target (>=3D 50 ng/mL).\r\n"
        "Collected 2024-09-20.\r\n"
        "\r\n");
}

TEST_CASE("render_mime threads a corrected-value notice to the earlier alert", "[daemon][mail]") {
  MailMessage m = alert_message();
  m.references = {"first@clinic.example", "4f1c2a9e@clinic.example"};
  m.message_id = "5e2d3b0f@clinic.example";
  const auto rendered = labwatch::daemon::render_mime(m);
  REQUIRE(rendered.has_value());
  CHECK(rendered->find("Message-ID: <5e2d3b0f@clinic.example>\r\n"
                       "In-Reply-To: <4f1c2a9e@clinic.example>\r\n"
                       "References: <first@clinic.example> <4f1c2a9e@clinic.example>\r\n") !=
        std::string::npos);
}

TEST_CASE("render_mime encodes non-ASCII names and subjects as RFC 2047 words", "[daemon][mail]") {
  MailMessage m = alert_message();
  m.to = {"Dr. Jürgen Müller", "mueller@clinic.example"};
  m.subject = "Ferritin unter Zielwert – bitte prüfen";
  const auto rendered = labwatch::daemon::render_mime(m);
  REQUIRE(rendered.has_value());
  // Q or B, whichever is shorter: here B (28 characters against Q's 29).
  CHECK(rendered->find(
            "\r\nTo: =?UTF-8?B?RHIuIErDvHJnZW4gTcO8bGxlcg==?= <mueller@clinic.example>\r\n") !=
        std::string::npos);
  CHECK(rendered->find(
            "\r\nSubject: =?UTF-8?Q?Ferritin_unter_Zielwert_=E2=80=93_bitte_pr=C3=BCfen?=\r\n") !=
        std::string::npos);

  SECTION("empty text makes no words") {
    CHECK(labwatch::daemon::encode_header_words("", 9).empty());
  }
  SECTION("text that is mostly non-ASCII is B encoded") {
    CHECK(labwatch::daemon::encode_header_words("Ферритин", 9) ==
          "=?UTF-8?B?0KTQtdGA0YDQuNGC0LjQvQ==?=");
  }
  SECTION("an ASCII subject that looks like an encoded word is itself encoded") {
    m.subject = "=?UTF-8?B?SGk=?=";
    const auto quoted = labwatch::daemon::render_mime(m);
    REQUIRE(quoted.has_value());
    CHECK(quoted->find("\r\nSubject: =?UTF-8?B?PT9VVEYtOD9CP1NHaz0/PQ==?=\r\n") !=
          std::string::npos);
  }
  SECTION("a long subject folds into words that each decode on their own") {
    m.subject =
        "Ferritin 38 ng/mL für Jürgen Müller-Lüdenscheidt liegt unter dem Zielwert von 50 ng/mL "
        "🩸";
    const auto folded = labwatch::daemon::render_mime(m);
    REQUIRE(folded.has_value());
    const std::size_t start = folded->find("\r\nSubject: ") + 2;
    const std::size_t end = folded->find("\r\nMessage-ID: ");
    const std::string_view header = std::string_view(*folded).substr(start, end - start);
    CHECK(lines_of(header).size() > 1);
    for (std::string_view line : lines_of(header)) {
      CHECK(line.size() <= 76);
    }
    CHECK(decode_words(header.substr(9)) == m.subject);
  }
}

TEST_CASE("encode_header_words never splits a character and fits every line in 76 columns",
          "[daemon][mail]") {
  const std::vector<std::string> texts = {
      "ü",
      "Müller",
      std::string(200, 'x'),
      "日本語のテキストが長く続く場合でも正しく折り返されること",
      "🩸🩸🩸🩸🩸🩸🩸🩸🩸🩸🩸🩸🩸🩸🩸🩸🩸🩸🩸🩸",
      "a_b=c?d \t e"};
  for (const std::string& text : texts) {
    for (std::size_t column : {0U, 9U, 40U, 60U, 70U, 75U}) {
      CAPTURE(text, column);
      const std::string folded = labwatch::daemon::encode_header_words(text, column);
      const auto lines = lines_of(folded);
      REQUIRE_FALSE(lines.empty());
      // A first word that cannot fit after `column` is placed by the caller on a line of its own.
      CHECK((column + lines.front().size() <= 76 || lines.front().size() <= 75));
      for (std::size_t i = 1; i < lines.size(); ++i) {
        CHECK(lines[i].size() <= 76);
      }
      CHECK(decode_words(folded) == text);
    }
  }
}

TEST_CASE("render_mime refuses CR, LF or NUL in any header input and names the header",
          "[daemon][mail]") {
  const std::string injection = "Byron\r\nBcc: x@y";
  MailMessage m = alert_message();
  std::string field;
  SECTION("recipient display name") {
    m.to.display_name = injection;
    field = "To";
  }
  SECTION("recipient address") {
    m.to.address = "ada@clinic.example>\r\nRCPT TO:<x@y";
    field = "To";
  }
  SECTION("sender display name") {
    m.from.display_name = "Labwatch\nBcc: x@y";
    field = "From";
  }
  SECTION("subject carrying a patient name") {
    m.subject = "Ferritin low for " + injection;
    field = "Subject";
  }
  SECTION("subject with a bare CR") {
    m.subject = "Ferritin\rBcc: x@y";
    field = "Subject";
  }
  SECTION("subject with a NUL") {
    m.subject = std::string("Ferritin\0low", 12);
    field = "Subject";
  }
  SECTION("Message-ID") {
    m.message_id = "a@b\r\nBcc: x@y";
    field = "Message-ID";
  }
  SECTION("References") {
    m.references = {"a@b\nBcc: x@y"};
    field = "References";
  }
  SECTION("extra header value") {
    m.extra_headers.push_back({"X-Labwatch-Alert", "17\r\nBcc: x@y"});
    field = "X-Labwatch-Alert";
  }
  SECTION("extra header name") {
    m.extra_headers.push_back({"X-A\r\nBcc", "x@y"});
    field = "extra header name";
  }
  const auto rendered = labwatch::daemon::render_mime(m);
  REQUIRE_FALSE(rendered.has_value());
  CHECK(rendered.error().code == MailErrc::forbidden_character);
  CHECK(rendered.error().field == field);
}

TEST_CASE("render_mime refuses addresses that are not plain ASCII addr-specs", "[daemon][mail]") {
  for (const char* bad :
       {"ada byron@clinic.example", "<ada@clinic.example>", "ada@clinic.example,x@y",
        "ada;x@clinic.example", "\"ada\"@clinic.example", "adä@clinic.example",
        "ada.clinic.example", "@clinic.example", "ada@", "ada@x@clinic.example", "",
        "ada..byron@clinic.example", ".ada@clinic.example", "ada@clinic.example."}) {
    CAPTURE(bad);
    MailMessage m = alert_message();
    m.to.address = bad;
    const auto rendered = labwatch::daemon::render_mime(m);
    REQUIRE_FALSE(rendered.has_value());
    CHECK(rendered.error().code == MailErrc::invalid_address);
    CHECK(rendered.error().field == "To");
  }
}

TEST_CASE("render_mime quotes a display name with commas instead of adding a recipient",
          "[daemon][mail]") {
  MailMessage m = alert_message();
  m.to.display_name = "Byron, Ada <x@y>, \"Lovelace\"";
  const auto rendered = labwatch::daemon::render_mime(m);
  REQUIRE(rendered.has_value());
  CHECK(rendered->find("\r\nTo: \"Byron, Ada <x@y>, \\\"Lovelace\\\"\" <ada@clinic.example>\r\n") !=
        std::string::npos);
}

TEST_CASE("render_mime refuses Message-IDs that are not plain left@right", "[daemon][mail]") {
  for (const char* bad : {"", "<a@b>", "a b@c", "abc", "a@b@c", "@b", "a@", "a@[b]", "a..b@c"}) {
    CAPTURE(bad);
    MailMessage m = alert_message();
    m.message_id = bad;
    const auto rendered = labwatch::daemon::render_mime(m);
    REQUIRE_FALSE(rendered.has_value());
    CHECK(rendered.error().code == MailErrc::invalid_message_id);
    CHECK(rendered.error().field == "Message-ID");
  }
}

TEST_CASE("render_mime refuses extra headers that would replace or add structural ones",
          "[daemon][mail]") {
  for (const char* name : {"Bcc", "bcc", "To", "Subject", "Message-Id", "Content-Type",
                           "content-transfer-encoding", "Resent-To", "MIME-Version", "Reply-To"}) {
    CAPTURE(name);
    MailMessage m = alert_message();
    m.extra_headers.push_back({name, "x@y"});
    const auto rendered = labwatch::daemon::render_mime(m);
    REQUIRE_FALSE(rendered.has_value());
    CHECK(rendered.error().code == MailErrc::reserved_header_name);
    CHECK(rendered.error().field == name);
  }
  for (const char* name : {"", "X Alert", "X-Alert:", "X-Ä"}) {
    CAPTURE(name);
    MailMessage m = alert_message();
    m.extra_headers.push_back({name, "1"});
    const auto rendered = labwatch::daemon::render_mime(m);
    REQUIRE_FALSE(rendered.has_value());
    CHECK(rendered.error().code == MailErrc::invalid_header_name);
  }
}

TEST_CASE("render_mime refuses malformed UTF-8 in headers and bodies", "[daemon][mail]") {
  for (const char* bad : {"M\xC3", "\xC0\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xFF"}) {
    CAPTURE(bad);
    MailMessage m = alert_message();
    m.subject = bad;
    auto rendered = labwatch::daemon::render_mime(m);
    REQUIRE_FALSE(rendered.has_value());
    CHECK(rendered.error().code == MailErrc::invalid_utf8);
    CHECK(rendered.error().field == "Subject");

    m = alert_message();
    m.html_body = bad;
    rendered = labwatch::daemon::render_mime(m);
    REQUIRE_FALSE(rendered.has_value());
    CHECK(rendered.error().code == MailErrc::invalid_utf8);
    CHECK(rendered.error().field == "html body");
  }
}

TEST_CASE("render_mime refuses a chosen boundary that occurs in a body", "[daemon][mail]") {
  MailMessage m = alert_message();
  m.html_body = "<p>ok</p>";
  m.text_body = "line\n--SEP\n";
  const auto rendered = labwatch::daemon::render_mime(m, "SEP");
  REQUIRE_FALSE(rendered.has_value());
  CHECK(rendered.error().code == MailErrc::boundary_in_body);
  CHECK(rendered.error().field == "text body");
}

TEST_CASE("render_mime output has CRLF lines within 76 columns and a fresh boundary each time",
          "[daemon][mail]") {
  MailMessage m = alert_message();
  m.text_body = std::string(3000, 'a') + "\n\n--=_lw_0000\r\n.\nFrom here\rtrailing space \n" +
                std::string(500, '\t') + "end";
  m.html_body = "<p>" + std::string(2000, 'b') + "</p>";
  const auto first = labwatch::daemon::render_mime(m);
  const auto second = labwatch::daemon::render_mime(m);
  REQUIRE(first.has_value());
  REQUIRE(second.has_value());
  CHECK(*first != *second);  // only the boundary differs
  const std::string_view text = *first;
  const std::size_t b = text.find("boundary=\"") + 10;
  const std::string boundary(text.substr(b, text.find('"', b) - b));
  CHECK(boundary.rfind("=_lw_", 0) == 0);
  CHECK(boundary.size() == 37);
  const std::size_t body = text.find("\r\n\r\n") + 4;
  std::size_t delimiters = 0;
  for (std::string_view line : lines_of(text)) {
    CHECK(line.size() <= 76);
    CHECK(line.find_first_of("\r\n") == std::string_view::npos);
    if (line.rfind("--" + boundary, 0) == 0) {
      ++delimiters;
    }
  }
  CHECK(delimiters == 3);
  CHECK(text.substr(body).find("\r\n.") == std::string_view::npos);
  CHECK(text.substr(body).find("\r\nFrom ") == std::string_view::npos);
}

TEST_CASE("quoted_printable encodes what it must and nothing more", "[daemon][mail]") {
  using labwatch::daemon::quoted_printable;
  CHECK(quoted_printable("a=b") == "a=3Db");
  CHECK(quoted_printable("Müller") == "M=C3=BCller");
  CHECK(quoted_printable("tab\tand space \nend ") == "tab\tand space=20\r\nend=20");
  CHECK(quoted_printable("a\r\nb\rc\nd") == "a\r\nb\r\nc\r\nd");
  CHECK(quoted_printable(".\n.x") == "=2E\r\n=2Ex");
  CHECK(quoted_printable("From me\nFrom") == "=46rom me\r\nFrom");
  CHECK(quoted_printable(std::string(80, 'a')) ==
        std::string(75, 'a') + "=\r\n" + std::string(5, 'a'));
  // An escape is never split by a soft line break.
  CHECK(quoted_printable(std::string(74, 'a') + "=") == std::string(74, 'a') + "=\r\n=3D");
}

TEST_CASE("rfc5322_date formats UTC times with English day and month names", "[daemon][mail]") {
  using labwatch::daemon::rfc5322_date;
  CHECK(rfc5322_date(0) == "Thu, 01 Jan 1970 00:00:00 +0000");
  CHECK(rfc5322_date(kSaturdayNoon) == "Sat, 21 Sep 2024 12:15:00 +0000");
  CHECK(rfc5322_date(951782400) == "Tue, 29 Feb 2000 00:00:00 +0000");
  CHECK(rfc5322_date(4102444799) == "Thu, 31 Dec 2099 23:59:59 +0000");
}

TEST_CASE("generate_message_id makes distinct ids that render_mime accepts", "[daemon][mail]") {
  using labwatch::daemon::generate_message_id;
  const std::string a =
      generate_message_id(labwatch::daemon::address_domain("labwatch@clinic.example"));
  const std::string b = generate_message_id("clinic.example");
  CHECK(a != b);
  REQUIRE(a.size() == 32 + 1 + 14);
  CHECK(a.substr(32) == "@clinic.example");
  CHECK(a.find_first_not_of("0123456789abcdef") == 32);
  MailMessage m = alert_message();
  m.message_id = a;
  const auto rendered = labwatch::daemon::render_mime(m);
  REQUIRE(rendered.has_value());
  CHECK(rendered->find("\r\nMessage-ID: <" + a + ">\r\n") != std::string::npos);
  CHECK(labwatch::daemon::address_domain("nobody") == "localhost");
}
