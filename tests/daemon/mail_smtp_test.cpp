// SPDX-License-Identifier: Apache-2.0
// SmtpMailer against a real SMTP server (aiosmtpd) on loopback: delivery, failures, TLS, AUTH.
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "mail/smtp_mailer.hpp"
#include "support/smtp_server.hpp"

namespace {

namespace fs = std::filesystem;
using labwatch::daemon::MailMessage;
using labwatch::daemon::SendStatus;
using labwatch::daemon::SmtpMailer;
using labwatch::daemon::SmtpOptions;
using labwatch::daemon::TlsMode;
using labwatch::test::server_mode;
using labwatch::test::SmtpServerOptions;
using labwatch::test::SmtpTestServer;

// A name that resolves (through a CURLOPT_RESOLVE pin) to 127.0.0.1 but is not a loopback name, so
// smtp:// to it requires STARTTLS exactly as it would for a remote relay.
constexpr const char* kRelayName = "mail.labwatch.test";

MailMessage alert_message() {
  MailMessage m;
  m.from = {"Labwatch", "labwatch@clinic.example"};
  m.to = {"Dr. Ada Byron", "ada@clinic.example"};
  m.subject = "Ferritin below target";
  m.message_id = "4f1c2a9e@clinic.example";
  m.date = 1726920900;
  m.text_body = "Ferritin 38 ng/mL is below the optimal target (>= 50 ng/mL).\n";
  m.html_body = "<p>Ferritin 38 ng/mL is below the optimal target.</p>\n";
  return m;
}

labwatch::config::Mail mail_config(std::string url) {
  labwatch::config::Mail mail;
  mail.smtp_url = std::move(url);
  mail.from = "labwatch@clinic.example";
  mail.timeout = std::chrono::seconds(10);
  return mail;
}

SmtpMailer make_mailer(labwatch::config::Mail mail, SmtpOptions options = {}) {
  auto mailer = SmtpMailer::create(std::move(mail), std::move(options));
  REQUIRE(mailer.has_value());
  return std::move(mailer).value();
}

std::string relay_url(const SmtpTestServer& server) { return server.url("smtp", kRelayName); }

SmtpOptions pinned(const SmtpTestServer& server, std::string ca_file = {}) {
  SmtpOptions options;
  options.ca_file = std::move(ca_file);
  options.resolve = {std::string(kRelayName) + ":" + std::to_string(server.port()) + ":127.0.0.1"};
  return options;
}

// A temp directory with a fresh self-signed certificate for kRelayName and 127.0.0.1.
struct CertificateDir {
  CertificateDir() : path(labwatch::test::make_temp_dir("labwatch-cert")) {
    labwatch::test::make_self_signed_certificate(path, kRelayName);
  }
  ~CertificateDir() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
  CertificateDir(const CertificateDir&) = delete;
  CertificateDir& operator=(const CertificateDir&) = delete;
  CertificateDir(CertificateDir&&) = delete;
  CertificateDir& operator=(CertificateDir&&) = delete;

  [[nodiscard]] std::string cert() const { return (path / "cert.pem").string(); }
  [[nodiscard]] std::string key() const { return (path / "key.pem").string(); }

  fs::path path;
};

std::string boundary_of(const std::string& data) {
  const std::size_t b = data.find("boundary=\"") + 10;
  return data.substr(b, data.find('"', b) - b);
}

}  // namespace

TEST_CASE("is_loopback_host accepts only loopback addresses and localhost",
          "[daemon][mail][smtp]") {
  using labwatch::daemon::is_loopback_host;
  for (const char* host :
       {"127.0.0.1", "127.255.255.254", "127.8.9.10", "localhost", "LocalHost", "::1", "[::1]",
        "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1", "[::ffff:127.1.2.3]"}) {
    CAPTURE(host);
    CHECK(is_loopback_host(host));
  }
  for (const char* host : {"", "128.0.0.1", "126.255.255.255", "0.0.0.0", "::", "::2", "[::]",
                           "localhost.evil.example", "127.0.0.1.evil.example", "::ffff:10.0.0.1",
                           "mail.labwatch.test", "[::1"}) {
    CAPTURE(host);
    CHECK_FALSE(is_loopback_host(host));
  }
}

TEST_CASE("smtp_tls_mode requires STARTTLS unless the relay is loopback or plain text is allowed",
          "[daemon][mail][smtp]") {
  using labwatch::daemon::smtp_tls_mode;
  const auto mode = [](const char* url, bool allow_plaintext) {
    const auto result = smtp_tls_mode(url, allow_plaintext);
    REQUIRE(result.has_value());
    return *result;
  };
  CHECK(mode("smtps://mail.example.org", false) == TlsMode::implicit);
  CHECK(mode("SMTPS://mail.example.org:465", true) == TlsMode::implicit);
  CHECK(mode("smtp://mail.example.org:587", false) == TlsMode::required);
  CHECK(mode("smtp://alerts@mail.example.org:587", false) == TlsMode::required);
  CHECK(mode("smtp://mail.example.org:587", true) == TlsMode::opportunistic);
  CHECK(mode("smtp://127.0.0.1:25", false) == TlsMode::opportunistic);
  CHECK(mode("smtp://127.9.9.9", false) == TlsMode::opportunistic);
  CHECK(mode("smtp://localhost:2525", false) == TlsMode::opportunistic);
  CHECK(mode("smtp://[::1]:25", false) == TlsMode::opportunistic);
  // Look-alikes of loopback hosts are remote.
  CHECK(mode("smtp://127.0.0.1.evil.example", false) == TlsMode::required);
  CHECK(mode("smtp://localhost.evil.example", false) == TlsMode::required);
  CHECK(mode("smtp://127.0.0.1@evil.example:25", false) == TlsMode::required);
  CHECK(mode("smtp://128.0.0.1", false) == TlsMode::required);

  for (const char* bad : {"", "mail.example.org:587", "http://mail.example.org", "smtp://",
                          "smtp://user:secret@mail.example.org", "smtp://mail example.org",
                          "smtp://mail.example.org\r\n"}) {
    CAPTURE(bad);
    const auto result = smtp_tls_mode(bad, false);
    REQUIRE_FALSE(result.has_value());
    CHECK_FALSE(result.error().empty());
  }
  CHECK(smtp_tls_mode("smtp://user:secret@mail.example.org", false).error().find("secret") ==
        std::string::npos);
}

TEST_CASE("SmtpMailer::create refuses an unusable URL", "[daemon][mail][smtp]") {
  CHECK_FALSE(SmtpMailer::create(mail_config("")).has_value());
  CHECK_FALSE(SmtpMailer::create(mail_config("ftp://mail.example.org")).has_value());
  const auto mailer = SmtpMailer::create(mail_config("smtp://mail.example.org:587"));
  REQUIRE(mailer.has_value());
  CHECK(mailer->tls_mode() == TlsMode::required);
}

TEST_CASE("SmtpMailer delivers one message to one recipient exactly as rendered",
          "[daemon][mail][smtp]") {
  const SmtpTestServer server;
  SmtpMailer mailer = make_mailer(mail_config(server.url()));
  REQUIRE(mailer.tls_mode() == TlsMode::opportunistic);  // loopback: plain text allowed
  const MailMessage message = alert_message();

  const auto result = mailer.send(message);
  CHECK(result.status == SendStatus::sent);
  CHECK(result.smtp_code == 250);
  CHECK(result.error.empty());

  const auto received = server.received();
  REQUIRE(received.size() == 1);
  CHECK(received[0].mail_from == "labwatch@clinic.example");
  CHECK(received[0].rcpt_to == std::vector<std::string>{"ada@clinic.example"});
  CHECK_FALSE(received[0].tls);
  CHECK(received[0].auth_user.empty());
  const std::string& data = received[0].data;
  CHECK(data.find("\r\nMessage-ID: <4f1c2a9e@clinic.example>\r\n") != std::string::npos);
  CHECK(data.find("\r\nTo: \"Dr. Ada Byron\" <ada@clinic.example>\r\n") != std::string::npos);
  // Byte for byte what render_mime made (the boundary is the only random part).
  const auto expected = labwatch::daemon::render_mime(message, boundary_of(data));
  REQUIRE(expected.has_value());
  CHECK(data == *expected);
}

TEST_CASE("SmtpMailer never lets a header injection add a header or a recipient",
          "[daemon][mail][smtp]") {
  const SmtpTestServer server;
  SmtpMailer mailer = make_mailer(mail_config(server.url()));
  MailMessage message = alert_message();

  SECTION("a practitioner name with CRLF Bcc is refused and nothing is sent") {
    message.to.display_name = "Ada\r\nBcc: x@y";
    const auto result = mailer.send(message);
    CHECK(result.status == SendStatus::permanent);
    CHECK(result.smtp_code == 0);
    CHECK(result.error == "the message cannot be rendered: forbidden_character in To");
    CHECK(server.received().empty());
  }
  SECTION("a patient name with CRLF Bcc in the subject is refused and nothing is sent") {
    message.subject = "Ferritin low: Jane Doe\r\nBcc: x@y";
    const auto result = mailer.send(message);
    CHECK(result.status == SendStatus::permanent);
    CHECK(result.error == "the message cannot be rendered: forbidden_character in Subject");
    CHECK(server.received().empty());
  }
  SECTION("an address smuggling a second RCPT is refused and nothing is sent") {
    message.to.address = "ada@clinic.example>\r\nRCPT TO:<x@y";
    CHECK(mailer.send(message).status == SendStatus::permanent);
    CHECK(server.received().empty());
  }
  SECTION("a name with commas and brackets stays one quoted display name and one recipient") {
    message.to.display_name = "Ada, Bcc <x@y>";
    const auto result = mailer.send(message);
    CHECK(result.status == SendStatus::sent);
    const auto received = server.received();
    REQUIRE(received.size() == 1);
    CHECK(received[0].rcpt_to == std::vector<std::string>{"ada@clinic.example"});
    CHECK(received[0].data.find("\r\nTo: \"Ada, Bcc <x@y>\" <ada@clinic.example>\r\n") !=
          std::string::npos);
    CHECK(received[0].data.find("Bcc:") == std::string::npos);
  }
}

TEST_CASE("SmtpMailer reports a relay that is down or busy as transient", "[daemon][mail][smtp]") {
  const MailMessage message = alert_message();

  SECTION("connection refused: nothing listens on the port") {
    const int port = labwatch::test::unused_loopback_port();
    SmtpMailer mailer = make_mailer(mail_config("smtp://127.0.0.1:" + std::to_string(port)));
    const auto result = mailer.send(message);
    CHECK(result.status == SendStatus::transient);
    CHECK(result.smtp_code == 0);
    CHECK_FALSE(result.error.empty());
  }
  SECTION("421 greeting") {
    const SmtpTestServer server(server_mode("421-connect"));
    SmtpMailer mailer = make_mailer(mail_config(server.url()));
    const auto result = mailer.send(message);
    CHECK(result.status == SendStatus::transient);
    CHECK(result.smtp_code == 421);
    CHECK(server.received().empty());
  }
  SECTION("451 on RCPT TO, then the retry keeps its Message-ID") {
    {
      const SmtpTestServer busy(server_mode("451-rcpt"));
      SmtpMailer mailer = make_mailer(mail_config(busy.url()));
      const auto result = mailer.send(message);
      CHECK(result.status == SendStatus::transient);
      CHECK(result.smtp_code == 451);
      CHECK(result.error.find("(SMTP 451)") != std::string::npos);
      CHECK(busy.received().empty());
    }
    const SmtpTestServer recovered;
    SmtpMailer mailer = make_mailer(mail_config(recovered.url()));
    CHECK(mailer.send(message).status == SendStatus::sent);
    const auto received = recovered.received();
    REQUIRE(received.size() == 1);
    CHECK(received[0].data.find("\r\nMessage-ID: <4f1c2a9e@clinic.example>\r\n") !=
          std::string::npos);
  }
  SECTION("the connection drops after the final dot, before any reply") {
    const SmtpTestServer server(server_mode("disconnect-after-data"));
    SmtpMailer mailer = make_mailer(mail_config(server.url()));
    const auto result = mailer.send(message);
    CHECK(result.status == SendStatus::transient);
    CHECK(result.smtp_code != 250);
    // The relay may hold the message; the retry carries the same Message-ID so it can be dropped.
    CHECK(server.received().size() == 1);
  }
}

TEST_CASE("SmtpMailer reports 550 on RCPT TO as permanent", "[daemon][mail][smtp]") {
  const SmtpTestServer server(server_mode("550-rcpt"));
  SmtpMailer mailer = make_mailer(mail_config(server.url()));
  const auto result = mailer.send(alert_message());
  CHECK(result.status == SendStatus::permanent);
  CHECK(result.smtp_code == 550);
  CHECK(result.error.find("(SMTP 550)") != std::string::npos);
  CHECK(server.received().empty());
}

TEST_CASE("SmtpMailer keeps a message whose session the relay refuses with 5xx",
          "[daemon][mail][smtp]") {
  // Only RCPT TO is about the recipient; a 5xx to any other step is the relay's fault, which the
  // dispatcher answers with a pause, keeping the message pending.
  struct Case {
    const char* mode;
    int code;
  };
  for (const Case& c : {Case{"554-greeting", 554}, Case{"530-mail", 530}, Case{"550-data", 550}}) {
    CAPTURE(c.mode);
    const SmtpTestServer server(server_mode(c.mode));
    SmtpMailer mailer = make_mailer(mail_config(server.url()));
    const auto result = mailer.send(alert_message());
    CHECK(result.status == SendStatus::transient);
    CHECK(result.smtp_code == c.code);
    CHECK(server.received().empty());
  }
  SECTION("535 to AUTH while the password is right") {
    SmtpServerOptions options;
    options.auth = "alerts:pw";
    options.mode = "535-auth";
    const SmtpTestServer server(options);
    const fs::path dir = labwatch::test::make_temp_dir("labwatch-pass");
    std::ofstream(dir / "password", std::ios::binary) << "pw\n";
    labwatch::config::Mail mail = mail_config(server.url());
    mail.username = "alerts";
    mail.password_file = (dir / "password").string();
    SmtpMailer mailer = make_mailer(mail);
    const auto refused = mailer.send(alert_message());
    CHECK(refused.status == SendStatus::transient);
    CHECK(refused.smtp_code == 535);
    server.set_mode("ok");
    CHECK(mailer.send(alert_message()).status == SendStatus::sent);
    fs::remove_all(dir);
  }
}

TEST_CASE("SmtpMailer sends nothing to a remote relay that does not offer STARTTLS",
          "[daemon][mail][smtp][tls]") {
  const SmtpTestServer plain;
  SmtpMailer mailer = make_mailer(mail_config(relay_url(plain)), pinned(plain));
  REQUIRE(mailer.tls_mode() == TlsMode::required);
  const auto result = mailer.send(alert_message());
  CHECK(result.status == SendStatus::transient);
  CHECK_FALSE(result.error.empty());
  CHECK(plain.received().empty());

  SECTION("unless the config allows plain text") {
    labwatch::config::Mail mail = mail_config(relay_url(plain));
    mail.allow_plaintext = true;
    SmtpMailer lax = make_mailer(mail, pinned(plain));
    CHECK(lax.send(alert_message()).status == SendStatus::sent);
    const auto received = plain.received();
    REQUIRE(received.size() == 1);
    CHECK_FALSE(received[0].tls);
  }
}

TEST_CASE("SmtpMailer sends over STARTTLS or implicit TLS to a relay it trusts",
          "[daemon][mail][smtp][tls]") {
  const CertificateDir certificate;

  SECTION("STARTTLS, required") {
    SmtpServerOptions options;
    options.starttls_cert = certificate.cert();
    options.key = certificate.key();
    const SmtpTestServer server(options);
    SmtpMailer mailer =
        make_mailer(mail_config(relay_url(server)), pinned(server, certificate.cert()));
    const auto result = mailer.send(alert_message());
    CHECK(result.status == SendStatus::sent);
    CHECK(result.error.empty());
    const auto received = server.received();
    REQUIRE(received.size() == 1);
    CHECK(received[0].tls);
  }
  SECTION("STARTTLS with a certificate it does not trust: nothing is sent") {
    SmtpServerOptions options;
    options.starttls_cert = certificate.cert();
    options.key = certificate.key();
    const SmtpTestServer server(options);
    SmtpMailer mailer = make_mailer(mail_config(relay_url(server)), pinned(server));
    CHECK(mailer.send(alert_message()).status == SendStatus::transient);
    CHECK(server.received().empty());
  }
  SECTION("implicit TLS (smtps)") {
    SmtpServerOptions options;
    options.implicit_tls_cert = certificate.cert();
    options.key = certificate.key();
    const SmtpTestServer server(options);
    SmtpMailer mailer = make_mailer(mail_config(server.url("smtps", kRelayName)),
                                    pinned(server, certificate.cert()));
    REQUIRE(mailer.tls_mode() == TlsMode::implicit);
    CHECK(mailer.send(alert_message()).status == SendStatus::sent);
    const auto received = server.received();
    REQUIRE(received.size() == 1);
    CHECK(received[0].tls);
  }
}

TEST_CASE("SmtpMailer authenticates with the password file read at send time",
          "[daemon][mail][smtp][auth]") {
  SmtpServerOptions options;
  options.auth = "alerts:s3cret pass";
  const SmtpTestServer server(options);
  const fs::path dir = labwatch::test::make_temp_dir("labwatch-pass");
  const fs::path password_file = dir / "password";
  labwatch::config::Mail mail = mail_config(server.url());
  mail.username = "alerts";
  mail.password_file = password_file.string();
  SmtpMailer mailer = make_mailer(mail);
  const auto write_password = [&](const std::string& text) {
    std::ofstream(password_file, std::ios::binary | std::ios::trunc) << text;
  };

  SECTION("the right password, trailing newline stripped") {
    write_password("s3cret pass\r\n");
    const auto result = mailer.send(alert_message());
    CHECK(result.status == SendStatus::sent);
    const auto received = server.received();
    REQUIRE(received.size() == 1);
    CHECK(received[0].auth_user == "alerts");
  }
  SECTION("a wrong password is refused with 535, a relay fault (kept), never in the error") {
    write_password("wrong-password\n");
    const auto result = mailer.send(alert_message());
    CHECK(result.status == SendStatus::transient);
    CHECK(result.smtp_code == 535);
    CHECK(result.error.find("wrong-password") == std::string::npos);
    CHECK(server.received().empty());
  }
  SECTION("a missing password file is transient and nothing is sent") {
    const auto result = mailer.send(alert_message());
    CHECK(result.status == SendStatus::transient);
    CHECK(result.error.find(password_file.string()) != std::string::npos);
    CHECK(server.received().empty());
  }
  SECTION("a password file changed after start-up is read again") {
    write_password("wrong-password\n");
    CHECK(mailer.send(alert_message()).status == SendStatus::transient);
    write_password("s3cret pass\n");
    CHECK(mailer.send(alert_message()).status == SendStatus::sent);
  }
  std::error_code ignored;
  fs::remove_all(dir, ignored);
}
