// SPDX-License-Identifier: Apache-2.0
// The checks `run` and `check-config` share, and the warnings of `check-config`.
#include "daemon/config_check.hpp"

#include <curl/curl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

#include "config/config_loader.hpp"
#include "mail/smtp_mailer.hpp"
#include "storage/sql.hpp"
#include "storage/sql_postgres.hpp"

namespace labwatch::daemon {
namespace {

namespace fs = std::filesystem;

// Whether two directories are one: by device and inode when both exist, else by their paths made
// absolute and canonical as far as they exist (`run` creates the missing ones).
bool same_directory(const std::string& a, const std::string& b) {
  if (fs::exists(a) && fs::exists(b)) {
    return fs::equivalent(a, b);
  }
  return fs::weakly_canonical(fs::absolute(a)) == fs::weakly_canonical(fs::absolute(b));
}

// The port of an SMTP URL as written, or nullopt when it names none (the scheme's default).
std::optional<long> url_port(const std::string& url) {
  const std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> handle(curl_url(), curl_url_cleanup);
  if (!handle || curl_url_set(handle.get(), CURLUPART_URL, url.c_str(), CURLU_NON_SUPPORT_SCHEME) !=
                     CURLUE_OK) {
    return std::nullopt;
  }
  char* port = nullptr;
  if (curl_url_get(handle.get(), CURLUPART_PORT, &port, 0) != CURLUE_OK || port == nullptr) {
    return std::nullopt;
  }
  const std::string_view text(port);
  long value = -1;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  const bool whole = ec == std::errc() && end == text.data() + text.size();
  curl_free(port);
  return whole ? std::optional<long>(value) : std::optional<long>(-1);
}

}  // namespace

std::optional<std::string> unusable_reason(const config::Config& config) {
  // The inbox must be its own directory: a move into it would be read again, forever, and the
  // database's files would be ingested and moved away.
  const config::Paths& paths = config.paths;
  if (same_directory(paths.inbox, paths.processed) || same_directory(paths.inbox, paths.failed)) {
    return "the inbox (" + paths.inbox + ") must differ from processed/ and failed/";
  }
  if (same_directory(paths.processed, paths.failed)) {
    return "processed/ and failed/ (" + paths.processed + ") must be different directories";
  }
  if (auto why = database_problem(paths.database)) {
    return *why;
  }
  if (!config::names_a_url(paths.database) &&
      same_directory(paths.inbox, fs::absolute(paths.database).parent_path().string())) {
    return "the database (" + paths.database + ") must not be inside the inbox";
  }
  if (!config.mail.smtp_url.empty()) {
    if (auto mode = smtp_tls_mode(config.mail.smtp_url, config.mail.allow_plaintext); !mode) {
      return "<mail smtp=...>: " + mode.error();
    }
  }
  return std::nullopt;
}

std::optional<std::string> database_problem(const std::string& database) {
  const std::string shown = storage::sql::redact_postgresql_url(database);
  if (!config::names_a_url(database)) {
    return std::nullopt;  // a SQLite file
  }
  if (!storage::sql::is_postgresql_url(database)) {
    return "the database " + shown +
           " is neither a SQLite file nor a postgresql:// URL (the only kind of server labwatch "
           "stores into)";
  }
  if (const std::string problem = storage::sql::check_postgresql_url(database); !problem.empty()) {
    return "the database " + shown + ": " + problem;
  }
  return std::nullopt;
}

std::vector<std::string> config_warnings(const config::Config& config) {
  std::vector<std::string> out;
  if (config.sources.empty()) {
    out.emplace_back(
        "no <source>: CSV files and HL7 files of an unknown facility will be refused (add one "
        "<source> per sender)");
  }
  for (const config::Practitioner& p : config.practitioners) {
    for (const std::string& facility : p.facilities) {
      const bool known =
          std::any_of(config.sources.begin(), config.sources.end(),
                      [&](const config::Source& s) { return s.facility == facility; });
      if (!known) {
        out.push_back("practitioner '" + p.id + "' is routed facility '" + facility +
                      "', which no <source> has: no file will be routed to them that way");
      }
    }
  }
  // labwatch asks for sslmode=verify-full on another host (sql::with_default_tls); a URL that
  // names a weaker mode would let patient data cross the network readable or to an impostor.
  if (const std::string& db = config.paths.database; storage::sql::is_postgresql_url(db)) {
    const std::string host = storage::sql::postgresql_host(db);
    const std::string mode = storage::sql::url_parameter(db, "sslmode");
    if (!storage::sql::is_local_host(host) && !mode.empty() && mode != "verify-full") {
      out.push_back("the PostgreSQL database is on " + host + " with sslmode=" + mode +
                    " instead of verify-full: the connection may go without TLS, or without "
                    "checking the server's certificate (leave sslmode out, labwatch then asks for "
                    "verify-full, and give sslrootcert=CA.pem)");
    }
  }
  const config::Mail& mail = config.mail;
  if (!mail.smtp_url.empty() && !mail.password_file.empty()) {
    struct stat st {};
    if (::stat(mail.password_file.c_str(), &st) != 0) {
      out.push_back("password-file " + mail.password_file + " is missing: mail will be retried, " +
                    "never sent");
    } else if (::access(mail.password_file.c_str(), R_OK) != 0) {
      out.push_back("password-file " + mail.password_file + " is not readable by this user (uid " +
                    std::to_string(::geteuid()) +
                    "); the daemon must be able to read it (owner labwatch, mode 0600)");
    }
  }
  if (!mail.smtp_url.empty()) {
    if (const std::optional<long> port = url_port(mail.smtp_url);
        port && (*port < 1 || *port > 65535)) {
      out.push_back("the SMTP port of " + mail.smtp_url + " is out of range (1-65535)");
    }
  }
  return out;
}

std::optional<std::string> present_config(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    return path;
  }
  if (errno == ENOENT || errno == ENOTDIR) {
    return std::nullopt;
  }
  throw std::system_error(errno, std::generic_category(),
                          "cannot look at the config " + path +
                              " (it may exist; fix its directory's permissions or pass --config)");
}

}  // namespace labwatch::daemon
