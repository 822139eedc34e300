// SPDX-License-Identifier: Apache-2.0
// load_config: pugixml DOM -> validated Config structs.
#include "config/config_loader.hpp"

#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <optional>
#include <pugixml.hpp>
#include <string>
#include <utility>

#include "clinical/timezone.hpp"

namespace labwatch::config {
namespace {

using parsers::Expected;
using parsers::unexpected;

// Thrown inside the loader only, caught in parse_config: the loader is deep and every check can
// fail.
struct Invalid {
  pugi::xml_node node;
  std::string message;
};

class Loader {
 public:
  Loader(std::string_view xml, std::string path, std::string base_dir)
      : xml_(xml), path_(std::move(path)), base_dir_(std::move(base_dir)) {}

  Expected<Config, ConfigError> run() {
    pugi::xml_document doc;
    const pugi::xml_parse_result parsed =
        doc.load_buffer(xml_.data(), xml_.size(), pugi::parse_default, pugi::encoding_utf8);
    if (!parsed) {
      return unexpected(ConfigError{path_, line_of(static_cast<std::size_t>(parsed.offset)),
                                    std::string("XML syntax: ") + parsed.description()});
    }
    const pugi::xml_node root = doc.document_element();
    if (std::strcmp(root.name(), "labwatch") != 0) {
      return unexpected(ConfigError{path_, line_of(root), "the root element must be <labwatch>"});
    }
    try {
      Config config = default_config();
      config.path = path_;
      // The default paths are relative like any other: beside the config file, not wherever the
      // process happens to run (a service's working directory is "/").
      for (std::string* path : {&config.paths.inbox, &config.paths.processed, &config.paths.failed,
                                &config.paths.database}) {
        *path = resolve(*path);
      }
      load(root, config);
      return config;
    } catch (const Invalid& e) {
      return unexpected(ConfigError{path_, line_of(e.node), describe(e.node) + ": " + e.message});
    }
  }

 private:
  void load(pugi::xml_node root, Config& config) {
    check_attributes(root, {});
    for (pugi::xml_node child : root.children()) {
      if (child.type() != pugi::node_element) {
        continue;
      }
      const std::string_view name = child.name();
      if (name == "paths") {
        load_paths(child, config.paths);
      } else if (name == "intake") {
        load_intake(child, config.intake);
      } else if (name == "sources") {
        load_sources(child, config.sources);
      } else if (name == "catalogue") {
        load_catalogue(child, config.catalogue);
      } else if (name == "targets") {
        load_targets(child, config);
      } else if (name == "csv") {
        load_csv(child, config.csv);
      } else if (name == "mail") {
        load_mail(child, config.mail);
      } else if (name == "practitioners") {
        load_practitioners(child, config.practitioners);
      } else if (name == "alerts") {
        load_alerts(child, config.alerts);
      } else {
        throw Invalid{child,
                      "unknown element (expected paths, intake, sources, catalogue, targets, csv, "
                      "mail, practitioners or alerts)"};
      }
    }
    // Targets given for analytes must name catalogue analytes (checked after the catalogue loaded).
    for (const auto& [key, rule] : config.targets) {
      if (config.catalogue.by_key(key) == nullptr) {
        throw Invalid{root.child("targets"), "target for unknown analyte '" + key + "'"};
      }
    }
    if (!config.mail.default_recipient.empty() || !config.practitioners.empty()) {
      if (config.mail.smtp_url.empty()) {
        throw Invalid{
            root, "practitioners or a default recipient are configured but <mail smtp=...> is not"};
      }
    }
  }

  void load_paths(pugi::xml_node node, Paths& paths) {
    check_attributes(node, {"inbox", "processed", "failed", "database"});
    check_no_children(node);
    paths.inbox = path_attr(node, "inbox", paths.inbox);
    paths.processed = path_attr(node, "processed", paths.processed);
    paths.failed = path_attr(node, "failed", paths.failed);
    // A URL names a server's database (storage tells which schemes it takes): kept as written,
    // never made a path beside the config.
    const std::string database = node.attribute("database").as_string();
    paths.database = names_a_url(database) ? database : path_attr(node, "database", paths.database);
  }

  void load_intake(pugi::xml_node node, Intake& intake) {
    check_attributes(node, {"max-file-bytes", "settle-ms", "rescan-seconds", "default-timezone"});
    check_no_children(node);
    if (pugi::xml_attribute zone = node.attribute("default-timezone")) {
      intake.default_timezone = zone.as_string();
      if (!clinical::is_valid_timezone(intake.default_timezone)) {
        throw Invalid{node, "unknown default-timezone '" + intake.default_timezone +
                                "' (an IANA name like America/New_York)"};
      }
    }
    intake.max_file_bytes =
        uint_attr(node, "max-file-bytes", intake.max_file_bytes, 1, 16ull << 30);
    intake.settle = std::chrono::milliseconds(
        uint_attr(node, "settle-ms", static_cast<std::uint64_t>(intake.settle.count()), 0, 60'000));
    intake.rescan = std::chrono::seconds(uint_attr(
        node, "rescan-seconds", static_cast<std::uint64_t>(intake.rescan.count()), 0, 86'400));
  }

  void load_sources(pugi::xml_node node, std::vector<Source>& sources) {
    check_attributes(node, {});
    for (pugi::xml_node child : node.children()) {
      if (child.type() != pugi::node_element) {
        continue;
      }
      if (std::string_view(child.name()) != "source") {
        throw Invalid{child, "unknown element inside <sources> (expected <source>)"};
      }
      check_attributes(child, {"facility", "authority", "timezone", "files", "date-order",
                               "charset", "decimal"});
      check_no_children(child);
      Source source;
      source.facility = required(child, "facility");
      source.authority = child.attribute("authority").as_string(source.facility.c_str());
      // Without a timezone the source's naive times are read in <intake default-timezone>.
      if (pugi::xml_attribute zone = child.attribute("timezone")) {
        source.timezone = zone.as_string();
        if (!clinical::is_valid_timezone(source.timezone)) {
          throw Invalid{child, "unknown timezone '" + source.timezone +
                                   "' (an IANA name like America/New_York)"};
        }
      }
      if (pugi::xml_attribute order = child.attribute("date-order")) {
        const std::string_view value = order.as_string();
        if (value == "mdy") {
          source.date_order = parsers::DateOrder::mdy;
        } else if (value == "dmy") {
          source.date_order = parsers::DateOrder::dmy;
        } else {
          throw Invalid{child, "date-order must be mdy or dmy, not '" + std::string(value) + "'"};
        }
      }
      if (pugi::xml_attribute charset = child.attribute("charset")) {
        const std::optional<parsers::TextEncoding> encoding =
            parsers::text_encoding_from_name(charset.as_string());
        if (!encoding) {
          throw Invalid{child, "unknown charset '" + std::string(charset.as_string()) +
                                   "' (utf-8, windows-1252, iso-8859-1 ... iso-8859-9, "
                                   "iso-8859-15)"};
        }
        source.charset = *encoding;
      }
      for (std::string& glob : split(child.attribute("files").as_string(), ';')) {
        source.file_globs.push_back(std::move(glob));
      }
      if (const pugi::xml_attribute decimal = child.attribute("decimal"); !decimal.empty()) {
        const std::string_view mark = decimal.as_string();
        if (mark == "point") {
          source.decimal = parsers::DecimalMark::point;
        } else if (mark == "comma") {
          source.decimal = parsers::DecimalMark::comma;
        } else {
          throw Invalid{child,
                        "decimal must be 'point' or 'comma', not '" + std::string(mark) + "'"};
        }
      }
      for (const Source& other : sources) {
        if (other.facility == source.facility) {
          throw Invalid{child, "facility '" + source.facility + "' is configured twice"};
        }
      }
      sources.push_back(std::move(source));
    }
  }

  void load_catalogue(pugi::xml_node node, clinical::AnalyteCatalogue& catalogue) {
    check_attributes(node, {});
    for (pugi::xml_node child : node.children()) {
      if (child.type() != pugi::node_element) {
        continue;
      }
      if (std::string_view(child.name()) != "analyte") {
        throw Invalid{child, "unknown element inside <catalogue> (expected <analyte>)"};
      }
      check_attributes(child, {"key", "display-name", "canonical-unit", "ref-low", "ref-high",
                               "plausible-low", "plausible-high"});
      clinical::Analyte analyte;
      analyte.key = required(child, "key");
      const clinical::Analyte* existing = catalogue.by_key(analyte.key);
      analyte.display_name = child.attribute("display-name").as_string();
      analyte.canonical_unit = child.attribute("canonical-unit").as_string();
      if (existing == nullptr && analyte.canonical_unit.empty()) {
        throw Invalid{child, "a new analyte needs canonical-unit"};
      }
      if (existing != nullptr && !analyte.canonical_unit.empty() &&
          analyte.canonical_unit != existing->canonical_unit) {
        throw Invalid{child, "cannot change the canonical unit of '" + analyte.key +
                                 "' (stored values would change meaning)"};
      }
      if (!child.attribute("ref-low").empty()) {
        analyte.ref_low = number_attr(child, "ref-low");
      }
      if (!child.attribute("ref-high").empty()) {
        analyte.ref_high = number_attr(child, "ref-high");
      }
      if (!child.attribute("plausible-low").empty()) {
        analyte.plausible_low = number_attr(child, "plausible-low");
      }
      if (!child.attribute("plausible-high").empty()) {
        analyte.plausible_high = number_attr(child, "plausible-high");
      }
      if (analyte.plausible_low && analyte.plausible_high &&
          *analyte.plausible_low >= *analyte.plausible_high) {
        throw Invalid{child, "plausible-high must be above plausible-low"};
      }
      for (pugi::xml_node item : child.children()) {
        if (item.type() != pugi::node_element) {
          continue;
        }
        const std::string_view name = item.name();
        if (name == "loinc" || name == "code" || name == "name" || name == "unit-alias") {
          check_attributes(item, {});
          std::string text = item.text().as_string();
          if (text.empty()) {
            throw Invalid{item, "empty value"};
          }
          if (name == "loinc") {
            analyte.loinc_codes.push_back(std::move(text));
          } else if (name == "code") {
            analyte.local_codes.push_back(std::move(text));
          } else if (name == "name") {
            analyte.names.push_back(std::move(text));
          } else {
            analyte.unit_aliases.push_back(std::move(text));
          }
        } else if (name == "conversion") {
          check_attributes(item, {"unit", "factor"});
          const double factor = number_attr(item, "factor");
          if (!(factor > 0)) {
            throw Invalid{item, "factor must be a positive number"};
          }
          analyte.conversions[required(item, "unit")] = factor;
        } else {
          throw Invalid{item,
                        "unknown element inside <analyte> (expected loinc, code, name, "
                        "unit-alias or conversion)"};
        }
      }
      catalogue.upsert(analyte);
    }
  }

  void load_targets(pugi::xml_node node, Config& config) {
    check_attributes(node, {});
    for (pugi::xml_node child : node.children()) {
      if (child.type() != pugi::node_element) {
        continue;
      }
      const std::string_view name = child.name();
      if (name == "trend") {
        // Trend rules ("trend:falling:0.2;trend:away:3") add to the analyte's optimal target. The
        // first <trend> of an analyte replaces the rules shipped for it (the catalogue's
        // trend_rule); rule="none" leaves it without any.
        check_attributes(child, {"analyte", "rule"});
        check_no_children(child);
        const std::string analyte = required(child, "analyte");
        const std::string text = required(child, "rule");
        auto trends = clinical::parse_trend_rules(text == "none" ? std::string() : text);
        if (!trends) {
          throw Invalid{child, "rule '" + text + "': " + trends.error()};
        }
        if (config.catalogue.by_key(analyte) == nullptr) {
          throw Invalid{child, "trend for unknown analyte '" + analyte + "'"};
        }
        auto& list = config.trends[analyte];
        if (std::find(configured_trends_.begin(), configured_trends_.end(), analyte) ==
            configured_trends_.end()) {
          configured_trends_.push_back(analyte);
          list.clear();
        }
        for (clinical::TrendRule& trend : trends.value()) {
          const bool twice = std::any_of(list.begin(), list.end(),
                                         [&](const auto& t) { return t.text == trend.text; });
          if (twice) {
            throw Invalid{child,
                          "trend rule '" + trend.text + "' is given twice for '" + analyte + "'"};
          }
          list.push_back(std::move(trend));
        }
        continue;
      }
      if (name != "target") {
        throw Invalid{child, "unknown element inside <targets> (expected <target> or <trend>)"};
      }
      check_attributes(child, {"analyte", "rule"});
      check_no_children(child);
      const std::string analyte = required(child, "analyte");
      auto rule = clinical::parse_optimal_rule(required(child, "rule"));
      if (!rule) {
        throw Invalid{child, "rule: " + rule.error()};
      }
      config.targets[analyte] = std::move(rule.value());
    }
  }

  void load_csv(pugi::xml_node node, parsers::CsvVocabulary& vocabulary) {
    check_attributes(node, {});
    for (pugi::xml_node child : node.children()) {
      if (child.type() != pugi::node_element) {
        continue;
      }
      if (std::string_view(child.name()) != "column") {
        throw Invalid{child, "unknown element inside <csv> (expected <column>)"};
      }
      check_attributes(child, {"name", "alias"});
      check_no_children(child);
      const std::string name = required(child, "name");
      const std::optional<parsers::CsvColumn> column = csv_column(name);
      if (!column) {
        throw Invalid{child, "unknown column name '" + name + "'"};
      }
      vocabulary.extra[*column].push_back(required(child, "alias"));
    }
  }

  void load_alerts(pugi::xml_node node, Alerts& alerts) {
    check_attributes(node, {"mail-max-age-days", "mail-preliminary"});
    check_no_children(node);
    alerts.mail_max_age_days = static_cast<int>(
        uint_attr(node, "mail-max-age-days", static_cast<std::uint64_t>(alerts.mail_max_age_days),
                  0, 36'500));
    alerts.mail_preliminary = bool_attr(node, "mail-preliminary", alerts.mail_preliminary);
  }

  void load_mail(pugi::xml_node node, Mail& mail) {
    check_attributes(node,
                     {"smtp", "allow-plaintext", "from", "username", "password-file", "ca-file",
                      "default-recipient", "collect-wait-seconds", "retry-min-seconds",
                      "retry-max-seconds", "timeout-seconds", "attach-report", "timezone"});
    check_no_children(node);
    mail.smtp_url = node.attribute("smtp").as_string();
    mail.allow_plaintext = bool_attr(node, "allow-plaintext", false);
    mail.from = node.attribute("from").as_string(mail.from.c_str());
    check_email(node, mail.from);
    mail.username = node.attribute("username").as_string();
    mail.password_file = path_attr(node, "password-file", "");
    mail.ca_file = path_attr(node, "ca-file", "");
    mail.default_recipient = node.attribute("default-recipient").as_string();
    if (!mail.default_recipient.empty()) {
      check_email(node, mail.default_recipient);
    }
    mail.collect_wait = seconds_attr(node, "collect-wait-seconds", mail.collect_wait, 0, 86'400);
    mail.retry_min = seconds_attr(node, "retry-min-seconds", mail.retry_min, 1, 86'400);
    mail.retry_max = seconds_attr(node, "retry-max-seconds", mail.retry_max, 1, 7 * 86'400);
    mail.timeout = seconds_attr(node, "timeout-seconds", mail.timeout, 1, 3'600);
    mail.attach_report = bool_attr(node, "attach-report", mail.attach_report);
    if (pugi::xml_attribute zone = node.attribute("timezone")) {
      mail.timezone = zone.as_string();
      if (!clinical::is_valid_timezone(mail.timezone)) {
        throw Invalid{node,
                      "unknown timezone '" + mail.timezone + "' (an IANA name like Europe/Berlin)"};
      }
    }
    if (mail.retry_max < mail.retry_min) {
      throw Invalid{node, "retry-max-seconds is smaller than retry-min-seconds"};
    }
    if (!mail.smtp_url.empty()) {
      check_smtp_url(node, mail);
    }
  }

  void load_practitioners(pugi::xml_node node, std::vector<Practitioner>& practitioners) {
    check_attributes(node, {});
    for (pugi::xml_node child : node.children()) {
      if (child.type() != pugi::node_element) {
        continue;
      }
      if (std::string_view(child.name()) != "practitioner") {
        throw Invalid{child, "unknown element inside <practitioners> (expected <practitioner>)"};
      }
      check_attributes(child, {"id", "name", "email", "phi", "providers", "facilities"});
      check_no_children(child);
      Practitioner p;
      p.id = required(child, "id");
      p.name = child.attribute("name").as_string();
      p.email = required(child, "email");
      check_email(child, p.email);
      const std::string_view phi = child.attribute("phi").as_string("minimal");
      if (phi == "minimal") {
        p.phi = PhiLevel::minimal;
      } else if (phi == "full") {
        p.phi = PhiLevel::full;
      } else {
        throw Invalid{child, "phi must be 'minimal' or 'full'"};
      }
      p.provider_ids = split(child.attribute("providers").as_string(), ';');
      p.facilities = split(child.attribute("facilities").as_string(), ';');
      for (const Practitioner& other : practitioners) {
        if (other.id == p.id) {
          throw Invalid{child, "practitioner id '" + p.id + "' is configured twice"};
        }
      }
      practitioners.push_back(std::move(p));
    }
  }

  // --- checks and conversions ---

  static void check_attributes(pugi::xml_node node,
                               std::initializer_list<std::string_view> allowed) {
    for (pugi::xml_attribute a : node.attributes()) {
      if (std::find(allowed.begin(), allowed.end(), std::string_view(a.name())) == allowed.end()) {
        throw Invalid{node, std::string("unknown attribute '") + a.name() + "'"};
      }
    }
  }

  static void check_no_children(pugi::xml_node node) {
    for (pugi::xml_node child : node.children()) {
      if (child.type() == pugi::node_element) {
        throw Invalid{child, "unexpected element"};
      }
    }
  }

  static std::string required(pugi::xml_node node, const char* name) {
    std::string value = node.attribute(name).as_string();
    if (value.empty()) {
      throw Invalid{node, std::string("missing attribute '") + name + "'"};
    }
    return value;
  }

  static bool bool_attr(pugi::xml_node node, const char* name, bool fallback) {
    const pugi::xml_attribute a = node.attribute(name);
    if (a.empty()) {
      return fallback;
    }
    const std::string_view v = a.as_string();
    if (v == "true" || v == "yes" || v == "1") {
      return true;
    }
    if (v == "false" || v == "no" || v == "0") {
      return false;
    }
    throw Invalid{node, std::string(name) + " must be true or false"};
  }

  static double number_attr(pugi::xml_node node, const char* name) {
    const std::string_view text = node.attribute(name).as_string();
    double value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
      throw Invalid{node, std::string(name) + " must be a number"};
    }
    return value;
  }

  static std::uint64_t uint_attr(pugi::xml_node node, const char* name, std::uint64_t fallback,
                                 std::uint64_t min, std::uint64_t max) {
    const pugi::xml_attribute a = node.attribute(name);
    if (a.empty()) {
      return fallback;
    }
    const std::string_view text = a.as_string();
    std::uint64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value < min ||
        value > max) {
      throw Invalid{node, std::string(name) + " must be a whole number from " +
                              std::to_string(min) + " to " + std::to_string(max)};
    }
    return value;
  }

  static std::chrono::seconds seconds_attr(pugi::xml_node node, const char* name,
                                           std::chrono::seconds fallback, std::uint64_t min,
                                           std::uint64_t max) {
    return std::chrono::seconds(static_cast<std::int64_t>(
        uint_attr(node, name, static_cast<std::uint64_t>(fallback.count()), min, max)));
  }

  std::string path_attr(pugi::xml_node node, const char* name, const std::string& fallback) const {
    const pugi::xml_attribute a = node.attribute(name);
    if (a.empty()) {
      return fallback;
    }
    std::string value = a.as_string();
    if (value.empty()) {
      throw Invalid{node, std::string(name) + " must not be empty"};
    }
    return resolve(value);
  }

  std::string resolve(const std::string& p) const {
    if (p.empty() || p.front() == '/' || base_dir_.empty()) {
      return p;
    }
    return (std::filesystem::path(base_dir_) / p).lexically_normal().string();
  }

  static void check_email(pugi::xml_node node, const std::string& address) {
    // A deliberately plain check: one '@', something on both sides, no spaces or header-breaking
    // bytes.
    const auto at = address.find('@');
    const bool bad_char = std::any_of(address.begin(), address.end(), [](char c) {
      const auto u = static_cast<unsigned char>(c);
      return u <= 0x20 || u == 0x7f || c == '<' || c == '>' || c == ',' || c == ';' || c == '"';
    });
    if (at == std::string::npos || at == 0 || at + 1 == address.size() || bad_char ||
        address.find('@', at + 1) != std::string::npos) {
      throw Invalid{node, "'" + address + "' is not a plain e-mail address"};
    }
  }

  // smtp:// needs STARTTLS, smtps:// is implicit TLS. Only a loopback relay may go without TLS
  // unless allow-plaintext says so.
  static void check_smtp_url(pugi::xml_node node, const Mail& mail) {
    const std::string& url = mail.smtp_url;
    std::string_view rest;
    if (url.rfind("smtp://", 0) == 0) {
      rest = std::string_view(url).substr(7);
    } else if (url.rfind("smtps://", 0) == 0) {
      rest = std::string_view(url).substr(8);
    } else {
      throw Invalid{node, "smtp must start with smtp:// (STARTTLS) or smtps:// (implicit TLS)"};
    }
    if (rest.empty() || rest.front() == ':' || rest.front() == '/') {
      throw Invalid{node, "smtp URL has no host"};
    }
    if (url.find_first_of(" \r\n\t") != std::string::npos) {
      throw Invalid{node, "smtp URL contains white space"};
    }
  }

  static std::optional<parsers::CsvColumn> csv_column(std::string_view name) {
    for (int i = 0; i <= static_cast<int>(parsers::CsvColumn::status); ++i) {
      const auto c = static_cast<parsers::CsvColumn>(i);
      if (parsers::to_string(c) == name) {
        return c;
      }
    }
    return std::nullopt;
  }

  static std::vector<std::string> split(std::string_view text, char sep) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start <= text.size()) {
      const std::size_t end = std::min(text.find(sep, start), text.size());
      std::string_view part = text.substr(start, end - start);
      while (!part.empty() && part.front() == ' ') {
        part.remove_prefix(1);
      }
      while (!part.empty() && part.back() == ' ') {
        part.remove_suffix(1);
      }
      if (!part.empty()) {
        out.emplace_back(part);
      }
      start = end + 1;
    }
    return out;
  }

  static std::string describe(pugi::xml_node node) {
    std::string out = "<";
    out += node.name();
    for (const char* key : {"facility", "key", "analyte", "id", "name"}) {
      const pugi::xml_attribute a = node.attribute(key);
      if (!a.empty()) {
        out += std::string(" ") + key + "=\"" + a.as_string() + "\"";
        break;
      }
    }
    return out + ">";
  }

  int line_of(pugi::xml_node node) const {
    return node ? line_of(static_cast<std::size_t>(node.offset_debug())) : 0;
  }

  int line_of(std::size_t offset) const {
    offset = std::min(offset, xml_.size());
    return 1 + static_cast<int>(std::count(
                   xml_.begin(), xml_.begin() + static_cast<std::ptrdiff_t>(offset), '\n'));
  }

  std::string_view xml_;
  std::string path_;
  std::string base_dir_;
  std::vector<std::string> configured_trends_;  // analytes whose shipped trend rules were replaced
};

}  // namespace

std::string ConfigError::to_string() const {
  std::string out = path.empty() ? std::string("config") : path;
  if (line > 0) {
    out += ":" + std::to_string(line);
  }
  return out + ": " + message;
}

Config default_config() {
  Config config;
  for (const clinical::Analyte& analyte : config.catalogue.analytes()) {
    auto rule = clinical::parse_optimal_rule(analyte.optimal_rule);
    if (rule) {
      config.targets[analyte.key] = std::move(rule.value());
    }
    // The trend rules shipped with the catalogue (its trend_rule column, checked when read).
    auto trends = clinical::parse_trend_rules(analyte.trend_rule);
    if (trends && !trends.value().empty()) {
      config.trends[analyte.key] = std::move(trends.value());
    }
  }
  return config;
}

Expected<Config, ConfigError> parse_config(std::string_view xml, const std::string& path,
                                           const std::string& base_dir) {
  return Loader(xml, path, base_dir).run();
}

Expected<Config, ConfigError> load_config(const std::string& path) {
  // Why not just read the path: a FIFO would block the reader (a SIGHUP reload would hang the
  // daemon), and /dev/zero or a runaway file would be read until memory runs out. O_NONBLOCK makes
  // opening a FIFO return at once; only a regular file of at most kMaxConfigBytes is read.
  const auto failure = [&path](const std::string& why) {
    return unexpected(ConfigError{path, 0, why});
  };
  int fd = -1;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    return failure(std::string("cannot read: ") + std::strerror(errno));
  }
  std::string text;
  {
    const struct Closer {
      int fd;
      ~Closer() { ::close(fd); }
    } closer{fd};
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      return failure(std::string("cannot read: fstat: ") + std::strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) {
      return failure(
          "not a regular file (a config must be a plain file, not a FIFO, device or "
          "directory)");
    }
    if (static_cast<std::uint64_t>(st.st_size) > kMaxConfigBytes) {
      return failure("too large: " + std::to_string(st.st_size) + " bytes, the limit is " +
                     std::to_string(kMaxConfigBytes));
    }
    // Read at most one byte past the limit: a file that grows while it is read is refused too.
    text.resize(kMaxConfigBytes + 1);
    std::size_t got = 0;
    while (got < text.size()) {
      const ssize_t n = ::read(fd, text.data() + got, text.size() - got);
      if (n < 0) {
        if (errno == EINTR) {
          continue;
        }
        return failure(std::string("cannot read: ") + std::strerror(errno));
      }
      if (n == 0) {
        break;
      }
      got += static_cast<std::size_t>(n);
    }
    if (got > kMaxConfigBytes) {
      return failure("too large: more than " + std::to_string(kMaxConfigBytes) + " bytes");
    }
    text.resize(got);
  }
  const std::string base = std::filesystem::absolute(path).parent_path().string();
  return parse_config(text, path, base);
}

std::string_view timezone_for(const Config& config, const Source* source) noexcept {
  if (source != nullptr && !source->timezone.empty()) {
    return source->timezone;
  }
  return config.intake.default_timezone;
}

bool names_a_url(std::string_view database) noexcept {
  // RFC 3986: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
  const std::size_t end = database.find("://");
  if (end == std::string_view::npos || end == 0 ||
      std::isalpha(static_cast<unsigned char>(database.front())) == 0) {
    return false;
  }
  return std::all_of(
      database.begin(), database.begin() + static_cast<std::ptrdiff_t>(end), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '+' || c == '-' || c == '.';
      });
}

const Source* match_source(const Config& config, std::string_view file_name,
                           std::string_view facility) {
  const std::string name(file_name);
  for (const Source& source : config.sources) {
    for (const std::string& glob : source.file_globs) {
      if (fnmatch(glob.c_str(), name.c_str(), FNM_PERIOD) == 0) {
        return &source;
      }
    }
  }
  if (!facility.empty()) {
    for (const Source& source : config.sources) {
      if (source.facility == facility) {
        return &source;
      }
    }
  }
  return nullptr;
}

}  // namespace labwatch::config
