// SPDX-License-Identifier: Apache-2.0
// The command line: argument parsing and the one-shot commands (init, ingest, export, trend,
// alerts, ...).
#include "daemon/cli.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "clinical/rules.hpp"
#include "clinical/timezone.hpp"
#include "config/config_loader.hpp"
#include "daemon/log.hpp"
#include "daemon/pipeline.hpp"
#include "daemon/service.hpp"
#include "daemon/text_format.hpp"
#include "daemon/trend_report.hpp"
#include "storage/store.hpp"

namespace labwatch::daemon {
namespace {

constexpr std::string_view kVersion = "labwatch 0.1.0";
constexpr const char* kSystemConfig = "/etc/labwatch/labwatch.xml";

struct UsageError {
  std::string message;
};

struct ConfigFailure {
  std::string message;
};

// Parsed command line of one command: options with values, flags, and positional arguments.
class Args {
 public:
  Args(std::vector<std::string> argv, std::vector<std::string_view> valued,
       std::vector<std::string_view> flags) {
    for (std::size_t i = 0; i < argv.size(); ++i) {
      const std::string& a = argv[i];
      if (a == "--") {
        positional_.insert(positional_.end(), argv.begin() + static_cast<std::ptrdiff_t>(i) + 1,
                           argv.end());
        break;
      }
      if (a.rfind("--", 0) != 0 || a.size() == 2) {
        positional_.push_back(a);
        continue;
      }
      std::string name = a.substr(2);
      std::optional<std::string> inline_value;
      if (const auto eq = name.find('='); eq != std::string::npos) {
        inline_value = name.substr(eq + 1);
        name.resize(eq);
      }
      if (std::find(valued.begin(), valued.end(), name) != valued.end()) {
        if (inline_value) {
          values_[name] = *inline_value;
        } else if (i + 1 < argv.size()) {
          values_[name] = argv[++i];
        } else {
          throw UsageError{"option --" + name + " needs a value"};
        }
      } else if (std::find(flags.begin(), flags.end(), name) != flags.end() && !inline_value) {
        flags_.push_back(name);
      } else {
        throw UsageError{"unknown option --" + name};
      }
    }
  }

  [[nodiscard]] std::optional<std::string> value(std::string_view name) const {
    const auto it = values_.find(std::string(name));
    return it == values_.end() ? std::nullopt : std::optional<std::string>(it->second);
  }
  [[nodiscard]] bool flag(std::string_view name) const {
    return std::find(flags_.begin(), flags_.end(), name) != flags_.end();
  }
  [[nodiscard]] const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::map<std::string, std::string> values_;
  std::vector<std::string> flags_;
  std::vector<std::string> positional_;
};

struct Command {
  std::string_view name;
  std::string_view summary;
  std::string_view usage;
  std::vector<std::string_view> valued;
  std::vector<std::string_view> flags;
  std::function<int(const Args&)> run;
};

// --config, else $LABWATCH_CONFIG, else /etc/labwatch/labwatch.xml, else the built-in defaults.
config::Config resolve_config(const Args& args) {
  std::optional<std::string> path = args.value("config");
  if (!path) {
    if (const char* env = std::getenv("LABWATCH_CONFIG");
        env != nullptr && *env != '\0') {  // NOLINT(concurrency-mt-unsafe)
      path = env;
    } else if (::access(kSystemConfig, F_OK) == 0) {
      path = kSystemConfig;
    }
  }
  config::Config config;
  if (path) {
    auto loaded = config::load_config(*path);
    if (!loaded) {
      throw ConfigFailure{loaded.error().to_string()};
    }
    config = std::move(loaded.value());
  } else {
    config = config::default_config();
  }
  if (auto db = args.value("db")) {
    config.paths.database = *db;
  }
  return config;
}

std::unique_ptr<storage::Store> open_store(const config::Config& config, bool create) {
  storage::StoreOptions options;
  options.create = create;
  if (!create && ::access(config.paths.database.c_str(), F_OK) != 0) {
    throw std::system_error(ENOENT, std::generic_category(),
                            "database " + config.paths.database +
                                " does not exist (run `labwatch ingest` or "
                                "`labwatch init` first, or pass --db)");
  }
  return storage::open_sqlite_store(config.paths.database, options);
}

std::string format_of(const Args& args) {
  const std::string format = args.value("format").value_or("csv");
  if (format != "csv" && format != "json") {
    throw UsageError{"--format must be csv or json"};
  }
  return format;
}

// ---- commands ----

int cmd_ingest(const Args& args) {
  if (args.positional().empty()) {
    throw UsageError{"ingest needs at least one PATH"};
  }
  const config::Config config = resolve_config(args);
  auto store = open_store(config, true);
  Pipeline pipeline(config, *store);
  ClaimPolicy policy;
  policy.strict = false;
  policy.max_bytes = config.intake.max_file_bytes;

  std::vector<std::filesystem::path> files;
  for (const std::string& p : args.positional()) {
    std::error_code ec;
    if (std::filesystem::is_directory(p, ec)) {
      std::vector<std::filesystem::path> in_dir;
      for (const auto& entry : std::filesystem::directory_iterator(p)) {
        if (entry.is_regular_file() && entry.path().filename().string().front() != '.') {
          in_dir.push_back(entry.path());
        }
      }
      std::sort(in_dir.begin(), in_dir.end());
      files.insert(files.end(), in_dir.begin(), in_dir.end());
    } else {
      files.emplace_back(p);
    }
  }

  bool any_refused = false;
  int stored = 0;
  for (const auto& file : files) {
    const FileOutcome outcome = pipeline.process_file(file, policy);
    if (outcome.summary.already_known) {
      // Ingested before: nothing changed now; any refusals were reported the first time.
      log::info(outcome.file_name + ": already ingested" +
                (outcome.kind == FileOutcome::Kind::already_known
                     ? std::string()
                     : " (" + std::string(to_string(outcome.kind)) + " then)"));
      continue;
    }
    for (const parsers::Refusal& r : outcome.refusals) {
      std::fprintf(stderr, "%s: %s\n", file.string().c_str(), describe(r).c_str());
    }
    if (outcome.refusals_dropped > 0) {
      std::fprintf(stderr, "%s: %llu more refusals, counted but not kept in detail\n",
                   file.string().c_str(),
                   static_cast<unsigned long long>(outcome.refusals_dropped));
    }
    if (!outcome.unmapped.empty()) {
      int total = 0;
      for (const auto& [code, count] : outcome.unmapped) {
        total += count;
      }
      log::debug(outcome.file_name + ": " + std::to_string(total) +
                 " results of unmapped codes ignored");
    }
    if (!outcome.refusals.empty()) {
      any_refused = true;
    }
    stored += outcome.summary.results_stored;
    log::info(outcome.file_name + ": " + std::string(to_string(outcome.kind)) + ", " +
              std::to_string(outcome.summary.results_stored) + " results stored, " +
              std::to_string(outcome.summary.duplicates) + " duplicates, " +
              std::to_string(outcome.summary.skipped) + " skipped, " +
              std::to_string(outcome.refused()) + " refused");
  }
  log::info(std::to_string(files.size()) + " files, " + std::to_string(stored) + " results stored");
  return any_refused ? kExitRefused : kExitOk;
}

int cmd_export(const Args& args) {
  const std::string format = format_of(args);
  const config::Config config = resolve_config(args);
  auto store = open_store(config, false);
  const auto rows = store->current_results();
  std::string out;
  if (format == "csv") {
    out +=
        "source_file,patient_key,person_id,analyte,value,unit,collected_at,status,comparator,ref_"
        "low,ref_high,"
        "facility\n";
    for (const auto& r : rows) {
      out += csv_field(r.source_file) + ',' + csv_field(r.patient_key) + ',' +
             std::to_string(r.person_id) + ',' + csv_field(r.analyte) + ',' +
             format_number(r.value) + ',' + csv_field(r.unit) + ',' + iso_utc(r.collected_at) +
             ',' + std::string(clinical::to_string(r.status)) + ',' + csv_field(r.comparator) +
             ',' + format_number(r.ref_low) + ',' + format_number(r.ref_high) + ',' +
             csv_field(r.facility) + '\n';
    }
  } else {
    out += "[";
    bool first = true;
    for (const auto& r : rows) {
      out += first ? "\n" : ",\n";
      first = false;
      out += "  {\"source_file\":" + json_string(r.source_file) +
             ",\"patient_key\":" + json_string(r.patient_key) +
             ",\"person_id\":" + std::to_string(r.person_id) +
             ",\"analyte\":" + json_string(r.analyte) + ",\"value\":" + format_number(r.value) +
             ",\"unit\":" + json_string(r.unit) +
             ",\"collected_at\":" + json_string(iso_utc(r.collected_at)) +
             ",\"status\":" + json_string(clinical::to_string(r.status)) +
             ",\"comparator\":" + json_string(r.comparator) +
             ",\"ref_low\":" + (r.ref_low ? format_number(*r.ref_low) : "null") +
             ",\"ref_high\":" + (r.ref_high ? format_number(*r.ref_high) : "null") +
             ",\"facility\":" + json_string(r.facility) + "}";
    }
    out += first ? "]\n" : "\n]\n";
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return kExitOk;
}

int cmd_alerts(const Args& args) {
  const std::string format = format_of(args);
  const config::Config config = resolve_config(args);
  auto store = open_store(config, false);
  const auto rows = store->alerts(args.flag("all"));
  std::string out;
  if (format == "csv") {
    out +=
        "person_id,patient_key,analyte,value,unit,collected_at,rule,state,target_low,target_high,"
        "alert_id\n";
    for (const auto& a : rows) {
      out += std::to_string(a.person_id) + ',' + csv_field(a.patient_key) + ',' +
             csv_field(a.analyte) + ',' + format_number(a.value) + ',' + csv_field(a.unit) + ',' +
             iso_utc(a.collected_at) + ',' + csv_field(a.rule) + ',' + csv_field(a.state) + ',' +
             format_number(a.target_low) + ',' + format_number(a.target_high) + ',' +
             std::to_string(a.alert_id) + '\n';
    }
  } else {
    out += "[";
    bool first = true;
    for (const auto& a : rows) {
      out += first ? "\n" : ",\n";
      first = false;
      out += "  {\"person_id\":" + std::to_string(a.person_id) +
             ",\"patient_key\":" + json_string(a.patient_key) +
             ",\"analyte\":" + json_string(a.analyte) + ",\"value\":" + format_number(a.value) +
             ",\"unit\":" + json_string(a.unit) +
             ",\"collected_at\":" + json_string(iso_utc(a.collected_at)) +
             ",\"rule\":" + json_string(a.rule) + ",\"state\":" + json_string(a.state) +
             ",\"target_low\":" + (a.target_low ? format_number(*a.target_low) : "null") +
             ",\"target_high\":" + (a.target_high ? format_number(*a.target_high) : "null") +
             ",\"alert_id\":" + std::to_string(a.alert_id) + "}";
    }
    out += first ? "]\n" : "\n]\n";
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return kExitOk;
}

// One block character per value, scaled between the smallest and largest value.
std::string sparkline(const std::vector<double>& values) {
  static constexpr std::array<std::string_view, 8> kBlocks = {
      "\u2581", "\u2582", "\u2583", "\u2584", "\u2585", "\u2586", "\u2587", "\u2588"};
  if (values.empty()) {
    return {};
  }
  const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
  std::string out;
  for (double v : values) {
    std::size_t level = 3;
    if (*hi > *lo) {
      level = static_cast<std::size_t>(std::lround((v - *lo) / (*hi - *lo) * 7.0));
    }
    out += kBlocks[std::min<std::size_t>(level, 7)];
  }
  return out;
}

std::int64_t require_person(storage::Store& store, const Args& args) {
  const auto id = args.value("patient");
  if (!id) {
    throw UsageError{
        "--patient ID is required (a person id, or AUTHORITY|MRN; see `labwatch patients`)"};
  }
  const auto person = store.find_person(*id);
  if (!person) {
    throw std::runtime_error("no patient '" + *id + "' in the database");
  }
  return *person;
}

int cmd_trend(const Args& args) {
  const auto analyte = args.value("analyte");
  if (!analyte) {
    throw UsageError{"--analyte KEY is required (e.g. ferritin)"};
  }
  const config::Config config = resolve_config(args);
  const clinical::Analyte* a = config.catalogue.by_key(*analyte);
  if (a == nullptr) {
    throw UsageError{"unknown analyte '" + *analyte + "'"};
  }
  auto store = open_store(config, false);
  const std::int64_t person = require_person(*store, args);
  const auto rows = store->trend(person, *analyte);
  const std::vector<clinical::UnixSeconds> gaps = store->not_performed(person, *analyte);
  const auto target = config.targets.find(*analyte);
  std::string out = a->display_name + " (" + a->canonical_unit + ")";
  if (target != config.targets.end()) {
    out += ", optimal target " + target->second.text;
  }
  out += "\n";
  char line[256];
  std::snprintf(line, sizeof line, "%-10s  %12s  %-12s  %-11s  %-15s  %s\n", "date", "value",
                "unit", "status", "lab range", "optimal");
  out += line;
  // A draw whose test was not performed is a line of its own, in time order: a gap, no value.
  std::size_t gap = 0;
  const auto gaps_until = [&](std::optional<clinical::UnixSeconds> until) {
    for (; gap < gaps.size() && (!until || gaps[gap] < *until); ++gap) {
      std::snprintf(line, sizeof line, "%-10s  %12s  %-12s  %-11s\n", iso_date(gaps[gap]).c_str(),
                    "-", "", "not performed");
      out += line;
    }
  };
  for (const auto& r : rows) {
    gaps_until(r.collected_at);
    std::string range = r.raw_range;
    if (range.empty() && (r.ref_low || r.ref_high)) {
      range = format_number(r.ref_low) + "-" + format_number(r.ref_high);
    }
    std::string verdict = "-";
    if (target != config.targets.end()) {
      clinical::NormalizedResult result;
      result.analyte = r.analyte;
      result.value = r.value;
      result.comparator = r.comparator;
      result.ref_low = r.ref_low;
      result.ref_high = r.ref_high;
      const clinical::Decision d = clinical::evaluate(result, target->second, *a);
      verdict = d.violated ? "outside (" + d.rule + ")" : "within";
    }
    std::snprintf(line, sizeof line, "%-10s  %12s  %-12s  %-11s  %-15s  %s\n",
                  iso_date(r.collected_at).c_str(), (r.comparator + format_number(r.value)).c_str(),
                  r.unit.c_str(), std::string(clinical::to_string(r.status)).c_str(), range.c_str(),
                  verdict.c_str());
    out += line;
  }
  gaps_until(std::nullopt);
  if (rows.empty() && gaps.empty()) {
    out += "(no results)\n";
  } else if (!rows.empty()) {
    std::vector<double> values;
    for (const auto& r : rows) {
      values.push_back(r.value);
    }
    out += "trend: " + sparkline(values) + "\n";
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return kExitOk;
}

int cmd_report(const Args& args) {
  const auto out_path = args.value("out");
  if (!out_path) {
    throw UsageError{"--out FILE.html is required"};
  }
  const config::Config config = resolve_config(args);
  auto store = open_store(config, false);
  const std::int64_t person = require_person(*store, args);
  const clinical::UnixSeconds now = std::chrono::duration_cast<std::chrono::seconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count();
  const std::optional<ReportInput> input = load_report_input(*store, config, person, now);
  if (!input) {
    throw std::runtime_error("no person " + std::to_string(person) + " in the database");
  }
  const std::string html = render_trend_report(*input);
  // Written to a temporary name, then renamed: a reader never sees half a report.
  const std::string tmp = *out_path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << html;
    if (!out.flush()) {
      throw std::system_error(errno, std::generic_category(), "write " + tmp);
    }
  }
  std::filesystem::rename(tmp, *out_path);
  std::printf("wrote %s (%zu analytes)\n", out_path->c_str(), input->series.size());
  return kExitOk;
}

int cmd_patients(const Args& args) {
  const config::Config config = resolve_config(args);
  auto store = open_store(config, false);
  std::string out = "person_id,identifiers,family,given,birth_date,sex,results,last_collected\n";
  for (const auto& p : store->persons()) {
    std::string ids;
    for (const auto& k : p.patient_keys) {
      ids += (ids.empty() ? "" : ";") + k;
    }
    out += std::to_string(p.person_id) + ',' + csv_field(ids) + ',' + csv_field(p.family) + ',' +
           csv_field(p.given) + ',' + p.birth_date + ',' + std::string(1, p.sex) + ',' +
           std::to_string(p.results) + ',' +
           (p.last_collected_at != 0 ? iso_utc(p.last_collected_at) : "") + '\n';
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return kExitOk;
}

int cmd_check_config(const Args& args) {
  const config::Config config = resolve_config(args);
  std::printf("config: %s\n", config.path.empty() ? "(built-in defaults)" : config.path.c_str());
  std::printf("inbox: %s\nprocessed: %s\nfailed: %s\ndatabase: %s\n", config.paths.inbox.c_str(),
              config.paths.processed.c_str(), config.paths.failed.c_str(),
              config.paths.database.c_str());
  std::printf("sources: %zu, analytes: %zu, targets: %zu, practitioners: %zu, mail: %s\n",
              config.sources.size(), config.catalogue.analytes().size(), config.targets.size(),
              config.practitioners.size(), config.mail.smtp_url.empty() ? "off" : "on");
  std::printf("ok\n");
  return kExitOk;
}

std::string xml_attr(std::string_view text) { return html_escape(text); }

// The machine's time zone as an IANA name, and where it was found: $TZ when set (without POSIX's
// leading ':'), else /etc/timezone, else the zone /etc/localtime links to. Empty when that names no
// known zone, and when it is UTC: a server or container clock on UTC says nothing of where its
// labs are, and reading their naive times as UTC would shift them silently.
std::pair<std::string, std::string> machine_timezone() {
  std::string name;
  std::string from;
  // NOLINTNEXTLINE(concurrency-mt-unsafe): init runs before any thread is started
  if (const char* tz = std::getenv("TZ"); tz != nullptr && *tz != '\0') {
    name = tz[0] == ':' ? tz + 1 : tz;
    from = "$TZ";
  } else if (std::ifstream file("/etc/timezone"); file && std::getline(file, name)) {
    from = "/etc/timezone";
  } else {
    std::error_code ec;
    const std::string target = std::filesystem::read_symlink("/etc/localtime", ec).string();
    const std::size_t at = target.find("zoneinfo/");
    if (!ec && at != std::string::npos) {
      name = target.substr(at + std::string_view("zoneinfo/").size());
      from = "/etc/localtime";
    }
  }
  while (!name.empty() && (name.back() == ' ' || name.back() == '\r' || name.back() == '\t')) {
    name.pop_back();
  }
  for (const std::string_view utc :
       {"UTC", "Etc/UTC", "UCT", "Etc/UCT", "Universal", "Etc/Universal", "Zulu", "Etc/Zulu", "GMT",
        "Etc/GMT", "Etc/GMT0", "Etc/GMT+0", "Etc/GMT-0", "GMT0", "Greenwich"}) {
    if (name == utc) {
      return {std::string(), from + " says " + name};
    }
  }
  if (name.empty() || !clinical::is_valid_timezone(name)) {
    return {std::string(), from.empty() ? "no time zone found" : from + " names no known zone"};
  }
  return {name, from};
}

int cmd_init(const Args& args) {
  if (args.positional().size() != 1) {
    throw UsageError{"init needs exactly one DIR"};
  }
  const std::filesystem::path dir = std::filesystem::absolute(args.positional()[0]);
  const std::filesystem::path config_path = dir / "labwatch.xml";
  if (std::filesystem::exists(config_path)) {
    throw std::runtime_error(config_path.string() + " already exists; not overwriting it");
  }
  for (const char* sub : {"", "inbox", "processed", "failed"}) {
    std::filesystem::create_directories(dir / sub);
  }
  // The state (DB, processed and failed files) holds patient data: owner only.
  std::filesystem::permissions(dir / "processed", std::filesystem::perms::owner_all);
  std::filesystem::permissions(dir / "failed", std::filesystem::perms::owner_all);

  std::string xml =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<!-- labwatch configuration: see config/labwatch.example.xml for every element. -->\n"
      "<labwatch>\n"
      "  <paths inbox=\"inbox\" processed=\"processed\" failed=\"failed\" "
      "database=\"labwatch.db\"/>\n"
      "  <sources>\n"
      "    <!-- One line per sender: files that match `files` come from `facility`; their CSV "
      "patient ids\n"
      "         use `authority`, and their times without an offset are local time in `timezone` "
      "\n         (default: <intake default-timezone>). -->\n"
      "    <!-- <source facility=\"QDX\" authority=\"QDX\" timezone=\"America/New_York\" "
      "files=\"qdx_*\"/> -->\n"
      "  </sources>\n";
  // Naive lab times (no UTC offset) from a source without `timezone` are read in this zone.
  const auto [zone, zone_from] = machine_timezone();
  if (!zone.empty()) {
    xml += "  <intake default-timezone=\"" + xml_attr(zone) + "\"/>\n";
  }
  if (auto smtp = args.value("smtp")) {
    xml += "  <mail smtp=\"" + xml_attr(*smtp) + "\"";
    if (auto to = args.value("to")) {
      xml += " default-recipient=\"" + xml_attr(*to) + "\"";
    }
    xml += "/>\n";
  } else if (args.value("to")) {
    throw UsageError{"--to needs --smtp"};
  }
  xml += "</labwatch>\n";

  // Validate what we are about to write with the same loader the daemon uses.
  auto parsed = config::parse_config(xml, config_path.string(), dir.string());
  if (!parsed) {
    throw UsageError{parsed.error().message};
  }
  {
    std::ofstream out(config_path);
    out << xml;
    if (!out.flush()) {
      throw std::system_error(errno, std::generic_category(), "write " + config_path.string());
    }
  }
  auto store = storage::open_sqlite_store(parsed.value().paths.database);
  std::printf("created %s\n  config:   %s\n  inbox:    %s\n  database: %s\n", dir.c_str(),
              config_path.c_str(), parsed.value().paths.inbox.c_str(),
              parsed.value().paths.database.c_str());
  if (!zone.empty()) {
    std::printf(
        "  times without a UTC offset are read as %s (from %s): <intake default-timezone>\n",
        zone.c_str(), zone_from.c_str());
  } else {
    std::printf(
        "  no default time zone (%s): set <intake default-timezone> or each <source "
        "timezone>, or times without a UTC offset are refused\n",
        zone_from.c_str());
  }
  std::printf("start the daemon with: labwatch run --config %s\n", config_path.c_str());
  return kExitOk;
}

int cmd_run(const Args& args) {
  log::set_journal_prefix(true);
  const config::Config config = resolve_config(args);
  return run_service(config, args.value("config").value_or(config.path));
}

const std::vector<Command>& commands() {
  static const std::vector<Command> list = {
      {"init",
       "create a ready layout: DIR/labwatch.xml, inbox/, processed/, failed/ and the database",
       "labwatch init DIR [--smtp URL] [--to EMAIL]",
       {"smtp", "to"},
       {},
       cmd_init},
      {"run",
       "run the daemon in the foreground (systemd Type=notify)",
       "labwatch run [--config FILE]",
       {"config"},
       {},
       cmd_run},
      {"ingest",
       "ingest files once through the same pipeline, then exit (never moves the files)",
       "labwatch ingest [--config FILE] [--db DB] PATH...\n"
       "  exit 0: every file accepted whole; 2: something was refused (reasons on stderr); 1: "
       "failure",
       {"config", "db"},
       {},
       cmd_ingest},
      {"export",
       "print every current result",
       "labwatch export [--config FILE] [--db DB] [--format csv|json]",
       {"config", "db", "format"},
       {},
       cmd_export},
      {"trend",
       "print one patient's values of one analyte with the optimal target",
       "labwatch trend [--config FILE] [--db DB] --patient ID --analyte KEY",
       {"config", "db", "patient", "analyte"},
       {},
       cmd_trend},
      {"alerts",
       "print alerts on current results (--all adds history)",
       "labwatch alerts [--config FILE] [--db DB] [--format csv|json] [--all]",
       {"config", "db", "format"},
       {"all"},
       cmd_alerts},
      {"report",
       "write a patient's trend report: one self-contained HTML file with charts",
       "labwatch report [--config FILE] [--db DB] --patient ID --out FILE.html",
       {"config", "db", "patient", "out"},
       {},
       cmd_report},
      {"patients",
       "list reconciled persons with their identifiers",
       "labwatch patients [--config FILE] [--db DB]",
       {"config", "db"},
       {},
       cmd_patients},
      {"check-config",
       "validate the config and print what it sets",
       "labwatch check-config [--config FILE]",
       {"config"},
       {},
       cmd_check_config},
  };
  return list;
}

void print_main_help() {
  std::string out = std::string(kVersion) +
                    ": lab-result ingestion daemon\n\nusage: labwatch COMMAND [OPTIONS]   "
                    "(labwatch COMMAND --help)\n\n"
                    "commands:\n";
  for (const Command& c : commands()) {
    char line[256];
    std::snprintf(line, sizeof line, "  %-13s %s\n", std::string(c.name).c_str(),
                  std::string(c.summary).c_str());
    out += line;
  }
  out +=
      "\n--config falls back to $LABWATCH_CONFIG, then /etc/labwatch/labwatch.xml, then built-in "
      "defaults;\n"
      "--db overrides the config's database.\n";
  std::fputs(out.c_str(), stdout);
}

}  // namespace

int run_cli(int argc, char** argv) {
  // Everything labwatch creates (database, moved files, reason files, directories) holds patient
  // data: private to its owner, whatever umask it was started with.
  ::umask(0077);
  // Past a file-size limit (RLIMIT_FSIZE) a write must fail with EFBIG, which the store reports and
  // rolls back, rather than kill the process silently mid-transaction.
  ::signal(SIGXFSZ, SIG_IGN);
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    if (args.size() >= 2 && args[0] == "help") {
      args = {args[1], "--help"};
    } else {
      print_main_help();
      return args.empty() ? kExitUsage : kExitOk;
    }
  }
  if (args[0] == "--version") {
    std::printf("%s\n", std::string(kVersion).c_str());
    return kExitOk;
  }
  const auto& list = commands();
  const auto it =
      std::find_if(list.begin(), list.end(), [&](const Command& c) { return c.name == args[0]; });
  if (it == list.end()) {
    std::fprintf(stderr, "labwatch: unknown command '%s' (see labwatch --help)\n", args[0].c_str());
    return kExitUsage;
  }
  const Command& command = *it;
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (std::find(rest.begin(), rest.end(), "--help") != rest.end() ||
      std::find(rest.begin(), rest.end(), "-h") != rest.end()) {
    std::printf("%s\n\n%s\n", std::string(command.summary).c_str(),
                std::string(command.usage).c_str());
    return kExitOk;
  }
  try {
    return command.run(Args(rest, command.valued, command.flags));
  } catch (const UsageError& e) {
    std::fprintf(stderr, "labwatch %s: %s\nusage: %s\n", std::string(command.name).c_str(),
                 e.message.c_str(), std::string(command.usage).c_str());
    return kExitUsage;
  } catch (const ConfigFailure& e) {
    log::error("invalid config: " + e.message);
    return kExitConfig;
  } catch (const std::exception& e) {
    log::error(std::string(command.name) + ": " + e.what());
    return kExitFailure;
  }
}

}  // namespace labwatch::daemon
