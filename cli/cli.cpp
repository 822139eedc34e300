// SPDX-License-Identifier: Apache-2.0
// The command line: argument parsing and the one-shot commands (init, ingest, export, trend,
// alerts, ...).
#include "cli/cli.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>  // renameat2, RENAME_NOREPLACE (glibc 2.28)
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
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

#include "cli/cli_explain.hpp"
#include "cli/cli_identity.hpp"
#include "cli/database_name.hpp"
#include "clinical/alert_status.hpp"
#include "clinical/rules.hpp"
#include "clinical/timezone.hpp"
#include "clinical/wording.hpp"
#include "config/config_loader.hpp"
#include "daemon/config_check.hpp"
#include "daemon/service.hpp"
#include "ingest/digest.hpp"
#include "ingest/pipeline.hpp"
#include "ingest/progress_line.hpp"
#include "os/log.hpp"
#include "os/posix_io.hpp"
#include "parsers/text.hpp"
#include "present/text_format.hpp"
#include "present/trend_report.hpp"
#include "storage/admin_queries.hpp"
#include "storage/outbox_state.hpp"
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
  std::size_t max_positional;  // positional arguments it takes at most
  std::function<int(const Args&)> run;
};

constexpr std::size_t kAnyNumber = static_cast<std::size_t>(-1);

// --config, else $LABWATCH_CONFIG, else /etc/labwatch/labwatch.xml, else the built-in defaults.
config::Config resolve_config(const Args& args) {
  std::optional<std::string> path = args.value("config");
  if (!path) {
    if (const char* env = std::getenv("LABWATCH_CONFIG");
        env != nullptr && *env != '\0') {  // NOLINT(concurrency-mt-unsafe)
      path = env;
    } else {
      // Only a config that is not there means the defaults; one that cannot be looked at is an
      // error (an admin's /etc config must never be silently replaced by defaults).
      try {
        path = present_config(kSystemConfig);
      } catch (const std::system_error& e) {
        throw ConfigFailure{e.what()};
      }
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
  const std::optional<std::string> db = args.value("db");
  if (db) {
    config.paths.database = *db;
  }
  // A password in a URL would be in `ps`, the shell's history or the config: refused before any
  // connection, and never repeated (database_problem hides it).
  if (auto why = database_problem(config.paths.database)) {
    if (db) {
      throw UsageError{"--db: " + *why};
    }
    throw ConfigFailure{config.path + ": " + *why};
  }
  return config;
}

std::string user_name(uid_t uid) {
  std::array<char, 1024> buffer{};
  passwd entry{};
  passwd* found = nullptr;
  if (::getpwuid_r(uid, &entry, buffer.data(), buffer.size(), &found) == 0 && found != nullptr) {
    return std::string(found->pw_name) + " (uid " + std::to_string(uid) + ")";
  }
  return "uid " + std::to_string(uid);
}

// Who owns the database at `path` and its mode, who we are, and the usual fix: the service runs as
// `labwatch`, and a database first created by root (`sudo labwatch ingest`) shuts it out. Empty
// when there is no file to describe (a PostgreSQL URL: the server checks its roles).
std::string database_owner_hint(const std::string& path) {
  struct stat st {};
  if (is_database_url(path) || ::stat(path.c_str(), &st) != 0) {
    return {};
  }
  char mode[8];
  std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode) & 07777U);
  std::string hint = "; " + path + " is owned by " + user_name(st.st_uid) + ", mode " + mode +
                     ", and this process runs as " + user_name(::geteuid());
  if (st.st_uid != ::geteuid()) {
    hint +=
        ". If `sudo labwatch ...` created it, give it back to the user the daemon runs as: "
        "sudo chown labwatch: " +
        path + " " + path + "-wal " + path +
        "-shm (or run the command as that user: sudo -u labwatch labwatch ...)";
  }
  return hint;
}

// Throws, naming owner, mode and fix, when the database is there but this process may not read and
// write it (and its directory, where SQLite keeps its -wal and -shm files).
void require_database_access(const std::string& path) {
  if (is_database_url(path) || ::access(path.c_str(), F_OK) != 0) {
    return;
  }
  const std::string dir = std::filesystem::absolute(path).parent_path().string();
  if (::access(path.c_str(), R_OK | W_OK) != 0 || ::access(dir.c_str(), W_OK | X_OK) != 0) {
    throw std::runtime_error("cannot open the database " + path + " for writing" +
                             database_owner_hint(path));
  }
}

std::unique_ptr<storage::Store> open_store(const config::Config& config, bool create) {
  storage::StoreOptions options;
  options.create = create;
  if (is_database_url(config.paths.database)) {
    // A PostgreSQL database is created by its administrator; without `create`, one that holds no
    // labwatch schema yet is refused as a missing file is (a mistyped dbname must not get one).
    if (!create) {
      require_postgresql_schema(config.paths.database);
    }
    try {
      return storage::open_store(config.paths.database, options);
    } catch (const std::exception& e) {
      throw std::runtime_error(database_failure(config.paths.database, e));
    }
  }
  if (!create && ::access(config.paths.database.c_str(), F_OK) != 0) {
    throw std::system_error(ENOENT, std::generic_category(),
                            "database " + config.paths.database +
                                " does not exist (run `labwatch ingest` or "
                                "`labwatch init` first, or pass --db)");
  }
  require_database_access(config.paths.database);
  try {
    return storage::open_store(config.paths.database, options);
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot open the database " + config.paths.database + ": " + e.what() +
                             database_owner_hint(config.paths.database));
  }
}

std::string format_of(const Args& args) {
  const std::string format = args.value("format").value_or("csv");
  if (format != "csv" && format != "json") {
    throw UsageError{"--format must be csv or json"};
  }
  return format;
}

// The size of `file` in bytes, 0 when it cannot be told (it is then refused with the reason).
std::uint64_t size_of(const std::filesystem::path& file) {
  std::error_code ec;
  const std::uintmax_t size = std::filesystem::file_size(file, ec);
  return ec ? 0 : static_cast<std::uint64_t>(size);
}

std::uint64_t total_size(const std::vector<std::filesystem::path>& files) {
  std::uint64_t total = 0;
  for (const auto& file : files) {
    total += size_of(file);
  }
  return total;
}

// Draws the progress line of `pipeline` on a terminal (ingest, reprocess).
void show_progress(Pipeline& pipeline, ProgressLine& progress) {
  if (progress.enabled()) {
    pipeline.set_progress([&pipeline, &progress] {
      const Pipeline::Counts& counts = pipeline.counts();
      progress.update(counts.reports, counts.results, counts.offset);
    });
  }
}

// ---- commands ----

int cmd_ingest(const Args& args) {
  if (args.positional().empty()) {
    throw UsageError{"ingest needs at least one PATH"};
  }
  // A path that is not there is an operational failure (a typo, a wrong directory), not a refusal
  // of input: nothing is ingested, exit 1.
  for (const std::string& p : args.positional()) {
    std::error_code ec;
    if (std::filesystem::symlink_status(p, ec).type() == std::filesystem::file_type::not_found) {
      throw std::runtime_error(p + ": no such file or directory");
    }
  }
  const config::Config config = resolve_config(args);
  auto store = open_store(config, true);
  Pipeline pipeline(config, *store);
  pipeline.set_config_digest(config_fingerprint(config), false);
  if (args.flag("no-mail")) {
    pipeline.suppress_mail();
  }
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

  ProgressLine progress(STDERR_FILENO, files.size(), total_size(files));
  show_progress(pipeline, progress);
  bool any_refused = false;
  int stored = 0;
  for (const auto& file : files) {
    const FileOutcome outcome = pipeline.process_file(file, policy);
    progress.clear();
    progress.file_done(pipeline.counts().reports, pipeline.counts().results, size_of(file));
    if (outcome.summary.already_known) {
      // Ingested before: nothing changed now. A refusal of then still stands (the same bytes are
      // refused the same way), so it is shown again and counts: a script must not take a file
      // refused yesterday for one accepted today.
      log::info(outcome.file_name + ": already ingested" +
                (outcome.kind == FileOutcome::Kind::already_known
                     ? std::string()
                     : " (" + std::string(to_string(outcome.kind)) + " then)"));
      for (const parsers::Refusal& r : outcome.refusals) {
        std::fprintf(stderr, "%s: %s (refused when first ingested)\n", file.string().c_str(),
                     describe(r).c_str());
      }
      if (outcome.kind != FileOutcome::Kind::already_known) {
        any_refused = true;
      }
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
    if (!outcome.refusals.empty()) {
      any_refused = true;
    }
    stored += outcome.summary.results_stored;
    log::info(outcome.file_name + ": " + std::string(to_string(outcome.kind)) + ", " +
              std::to_string(outcome.summary.results_stored) + " results stored, " +
              std::to_string(outcome.summary.duplicates) + " duplicates, " +
              std::to_string(outcome.summary.skipped) + " skipped, " +
              std::to_string(outcome.refused()) + " refused" +
              (unmapped_results(outcome) > 0 ? ", " + std::to_string(unmapped_results(outcome)) +
                                                   " unmapped (see labwatch unmapped)"
                                             : std::string()));
  }
  log::info(std::to_string(files.size()) + " files, " + std::to_string(stored) + " results stored");
  return any_refused ? kExitRefused : kExitOk;
}

// The hex SHA-256 of the file at `path`, read in chunks. Throws std::system_error.
std::string file_sha256(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw std::system_error(errno, std::generic_category(), "open " + path.string());
  }
  Sha256 hash;
  std::string chunk(1U << 20, '\0');
  while (in.read(chunk.data(), static_cast<std::streamsize>(chunk.size())) || in.gcount() > 0) {
    hash.update(std::string_view(chunk.data(), static_cast<std::size_t>(in.gcount())));
  }
  if (in.bad()) {
    throw std::system_error(EIO, std::generic_category(), "read " + path.string());
  }
  return hash.finish();
}

// Moves a file of failed/ that is now accepted to processed/ (a free name there; never over
// another file) and removes its reason file. Returns where it went.
std::filesystem::path move_to_processed(const std::filesystem::path& file,
                                        const config::Config& config) {
  namespace fs = std::filesystem;
  const std::string name = file.filename().string();
  fs::path target = fs::path(config.paths.processed) / name;
  for (int n = 1;
       ::renameat2(AT_FDCWD, file.c_str(), AT_FDCWD, target.c_str(), RENAME_NOREPLACE) != 0; ++n) {
    if (errno != EEXIST || n > 1000) {
      throw std::system_error(errno, std::generic_category(),
                              "move " + file.string() + " to " + target.string());
    }
    target = fs::path(config.paths.processed) / (name + "." + std::to_string(n));
  }
  std::error_code ignored;
  fs::remove(file.string() + ".reason.txt", ignored);
  return target;
}

// Reads refused files again with the current config (a source added, a code mapped): their old
// verdict is set aside, results stored then are recognised and not stored twice, and a file of
// failed/ that is accepted now moves to processed/.
int cmd_reprocess(const Args& args) {
  namespace fs = std::filesystem;
  const bool failed_dir = args.flag("failed");
  if (failed_dir != args.positional().empty()) {
    throw UsageError{"reprocess takes FILE... or --failed (every file in failed/), not both"};
  }
  for (const std::string& p : args.positional()) {
    std::error_code ec;
    if (!fs::is_regular_file(p, ec)) {
      throw std::runtime_error(p + ": no such file");
    }
  }
  const config::Config config = resolve_config(args);
  std::vector<fs::path> files(args.positional().begin(), args.positional().end());
  if (failed_dir) {
    std::error_code ec;
    for (fs::directory_iterator it(config.paths.failed, ec), end; !ec && it != end;
         it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (it->is_regular_file() && name.front() != '.' && !name.ends_with(".reason.txt") &&
          !name.ends_with(".error.txt")) {
        files.push_back(it->path());
      }
    }
    if (ec) {
      throw std::system_error(ec, "read " + config.paths.failed);
    }
    std::sort(files.begin(), files.end());
  }
  auto store = open_store(config, false);
  Pipeline pipeline(config, *store);
  pipeline.set_config_digest(config_fingerprint(config), false);
  ClaimPolicy policy;
  policy.strict = false;
  policy.max_bytes = config.intake.max_file_bytes;
  std::error_code ec;
  const fs::path failed_path = fs::weakly_canonical(config.paths.failed, ec);
  ProgressLine progress(STDERR_FILENO, files.size(), total_size(files));
  show_progress(pipeline, progress);
  bool any_refused = false;
  int accepted = 0;
  for (const fs::path& file : files) {
    const std::string sha = file_sha256(file);
    const bool set_aside = storage::set_aside_file_verdict(config.paths.database, sha);
    const FileOutcome outcome = pipeline.process_file(file, policy);
    progress.clear();
    progress.file_done(pipeline.counts().reports, pipeline.counts().results, size_of(file));
    for (const parsers::Refusal& r : outcome.refusals) {
      std::fprintf(stderr, "%s: %s\n", file.string().c_str(), describe(r).c_str());
    }
    const bool whole = outcome.kind == FileOutcome::Kind::accepted ||
                       outcome.kind == FileOutcome::Kind::already_known;
    std::string line = outcome.file_name + ": " + (set_aside ? "refused before, " : std::string()) +
                       std::string(to_string(outcome.kind)) + " now, " +
                       std::to_string(outcome.summary.results_stored) + " results stored, " +
                       std::to_string(outcome.summary.duplicates) + " already stored, " +
                       std::to_string(outcome.refusals.size()) + " refused";
    if (whole) {
      ++accepted;
      if (fs::weakly_canonical(file, ec).parent_path() == failed_path) {
        line += " -> " + move_to_processed(file, config).string();
      }
      log::info(line);
    } else {
      any_refused = true;
      log::warning(line);
    }
  }
  log::info(std::to_string(files.size()) + " files reprocessed, " + std::to_string(accepted) +
            " accepted");
  return any_refused ? kExitRefused : kExitOk;
}

// A dry run of each FILE: the same pipeline as `ingest` in a transaction that is rolled back, on
// the real database (so that what is stored already counts), or on an empty one in memory when
// there is none yet. Nothing is written: no row, no mail, no move, no reason file.
int cmd_explain(const Args& args) {
  if (args.positional().empty()) {
    throw UsageError{"explain needs at least one FILE"};
  }
  const std::string format = args.value("format").value_or("text");
  if (format != "text" && format != "json") {
    throw UsageError{"--format must be text or json"};
  }
  for (const std::string& p : args.positional()) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(p, ec)) {
      throw std::runtime_error(p + ": no such file");
    }
  }
  config::Config config = resolve_config(args);
  std::unique_ptr<storage::Store> store;
  const std::string& database = config.paths.database;
  std::optional<storage::SchemaVersions> versions;
  if (is_database_url(database)) {
    try {
      versions = storage::read_schema_versions(database);
    } catch (const std::exception& e) {
      throw std::runtime_error(database_failure(database, e));
    }
    if (versions->database == 0) {
      versions.reset();  // a database without labwatch's schema is as one not created yet
    }
  } else if (::access(database.c_str(), F_OK) == 0) {
    versions = storage::read_schema_versions(database);
  }
  if (versions) {
    // Opening an older database migrates it, which is a write: a dry run leaves that to others.
    if (versions->database < versions->latest) {
      throw std::runtime_error("database " + shown_database(database) + " has schema version " +
                               std::to_string(versions->database) +
                               ", older than this labwatch's " + std::to_string(versions->latest) +
                               "; explain writes nothing, so it does not upgrade it: `labwatch "
                               "run` or `labwatch ingest` does");
    }
    store = open_store(config, false);
  } else {
    log::info("database " + shown_database(database) +
              " does not exist yet: explaining against an empty one in memory");
    store = storage::open_store(":memory:");
  }
  Pipeline pipeline(config, *store);
  pipeline.set_config_digest(config_fingerprint(config), false);
  ClaimPolicy policy;
  policy.strict = false;
  policy.max_bytes = config.intake.max_file_bytes;
  bool any_refused = false;
  for (const std::string& file : args.positional()) {
    const FileExplanation explanation = pipeline.explain_file(file, policy);
    const std::string out = explain_output(file, explanation, config, format == "json");
    std::fwrite(out.data(), 1, out.size(), stdout);
    any_refused = any_refused || would_refuse(explanation);
  }
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
      out += csv_text(r.source_file) + ',' + csv_text(r.patient_key) + ',' +
             std::to_string(r.person_id) + ',' + csv_text(r.analyte) + ',' +
             format_number(r.value) + ',' + csv_text(r.unit) + ',' + iso_utc(r.collected_at) + ',' +
             std::string(clinical::to_string(r.status)) + ',' + csv_text(r.comparator) + ',' +
             format_number(r.ref_low) + ',' + format_number(r.ref_high) + ',' +
             csv_text(r.facility) + '\n';
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
             ",\"analyte\":" + json_string(r.analyte) + ",\"value\":" + json_number(r.value) +
             ",\"unit\":" + json_string(r.unit) +
             ",\"collected_at\":" + json_string(iso_utc(r.collected_at)) +
             ",\"status\":" + json_string(clinical::to_string(r.status)) +
             ",\"comparator\":" + json_string(r.comparator) +
             ",\"ref_low\":" + json_number(r.ref_low) + ",\"ref_high\":" + json_number(r.ref_high) +
             ",\"facility\":" + json_string(r.facility) + "}";
    }
    out += first ? "]\n" : "\n]\n";
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return kExitOk;
}

std::int64_t require_person(storage::ResultQueries& store, const Args& args) {
  const auto id = args.value("patient");
  if (!id) {
    throw UsageError{
        "--patient ID is required (a person id, AUTHORITY|MRN, or the report reference of an "
        "alert mail; see `labwatch patients`)"};
  }
  const auto person = store.find_person(*id);
  if (!person) {
    throw std::runtime_error("no patient '" + *id +
                             "' in the database (or it names more than one: give the person id "
                             "or AUTHORITY|MRN)");
  }
  return *person;
}

// "2024-09-21" as the Unix time of its midnight UTC, or "2024-09-21T12:15:00Z" as that time.
std::optional<clinical::UnixSeconds> parse_since(std::string_view text) {
  int y = 0;
  unsigned m = 0;
  unsigned d = 0;
  int hh = 0;
  int mm = 0;
  int ss = 0;
  char tail = 0;
  const std::string s(text);
  const bool date_only =
      s.size() == 10 && std::sscanf(s.c_str(), "%4d-%2u-%2u%c", &y, &m, &d, &tail) == 3;
  const bool date_time = s.size() == 20 && std::sscanf(s.c_str(), "%4d-%2u-%2uT%2d:%2d:%2dZ%c", &y,
                                                       &m, &d, &hh, &mm, &ss, &tail) == 6;
  if (!date_only && !date_time) {
    return std::nullopt;
  }
  const std::chrono::year_month_day day{std::chrono::year{y}, std::chrono::month{m},
                                        std::chrono::day{d}};
  if (!day.ok() || hh > 23 || mm > 59 || ss > 59 || hh < 0 || mm < 0 || ss < 0) {
    return std::nullopt;
  }
  return std::chrono::sys_days(day).time_since_epoch().count() * 86400 + hh * 3600 + mm * 60 + ss;
}

// What `alerts` says of an alert beyond its state: "silenced until 2027-03-01" for one a silence
// kept from being mailed (`labwatch silence`), else "".
std::string alert_note(const storage::AlertRow& alert) {
  return alert.silenced_until ? "silenced until " + iso_date(*alert.silenced_until) : std::string();
}

int cmd_alerts(const Args& args) {
  const std::string format = format_of(args);
  // Alert states: active (on current results), then history (--all).
  std::optional<clinical::AlertStatus> state;
  if (const auto text = args.value("state")) {
    state = clinical::parse_alert_status(*text);
    if (!state) {
      throw UsageError{
          "--state must be one of unmailed, historical, preliminary, silenced, pending, sent, "
          "failed (active), resolved, superseded, withdrawn (history)"};
    }
  }
  std::optional<clinical::UnixSeconds> since;
  if (const auto text = args.value("since")) {
    since = parse_since(*text);
    if (!since) {
      throw UsageError{"--since takes a date, YYYY-MM-DD, or a UTC time, YYYY-MM-DDTHH:MM:SSZ"};
    }
  }
  const config::Config config = resolve_config(args);
  auto store = open_store(config, false);
  std::optional<std::int64_t> person;
  if (args.value("patient")) {
    person = require_person(*store, args);
  }
  // A history state is asked for by name: no --all needed to see it.
  const bool history = state && !clinical::is_active(*state);
  std::vector<storage::AlertRow> rows = store->alerts(args.flag("all") || history);
  std::erase_if(rows, [&](const storage::AlertRow& a) {
    return (person && a.person_id != *person) || (since && a.collected_at < *since) ||
           (state && a.state != *state);
  });
  std::string out;
  if (format == "csv") {
    out +=
        "person_id,patient_key,analyte,value,unit,collected_at,rule,state,target_low,target_high,"
        "alert_id,comparator,note\n";
    for (const auto& a : rows) {
      out += std::to_string(a.person_id) + ',' + csv_text(a.patient_key) + ',' +
             csv_text(a.analyte) + ',' + format_number(a.value) + ',' + csv_text(a.unit) + ',' +
             iso_utc(a.collected_at) + ',' + csv_text(a.rule) + ',' +
             csv_text(clinical::to_string(a.state)) + ',' + format_number(a.target_low) + ',' +
             format_number(a.target_high) + ',' + std::to_string(a.alert_id) + ',' +
             csv_field(a.comparator) + ',' + csv_text(alert_note(a)) + '\n';
    }
  } else {
    out += "[";
    bool first = true;
    for (const auto& a : rows) {
      out += first ? "\n" : ",\n";
      first = false;
      out += "  {\"person_id\":" + std::to_string(a.person_id) +
             ",\"patient_key\":" + json_string(a.patient_key) +
             ",\"analyte\":" + json_string(a.analyte) + ",\"value\":" + json_number(a.value) +
             ",\"unit\":" + json_string(a.unit) +
             ",\"collected_at\":" + json_string(iso_utc(a.collected_at)) +
             ",\"rule\":" + json_string(a.rule) +
             ",\"state\":" + json_string(clinical::to_string(a.state)) +
             ",\"target_low\":" + json_number(a.target_low) +
             ",\"target_high\":" + json_number(a.target_high) +
             ",\"alert_id\":" + std::to_string(a.alert_id) +
             ",\"comparator\":" + json_string(a.comparator) +
             ",\"note\":" + json_string(alert_note(a)) + "}";
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

// The number of single-byte edits (insert, delete, replace) from `a` to `b`.
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) {
    row[j] = j;
  }
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

using parsers::lower_ascii;

// The analyte an admin means by `text`: its key in any letter case (Ferritin, VITAMIN_D). An
// unknown key is a usage error that names the closest key, so a typo costs one more try, not a
// search through the catalogue.
const clinical::Analyte& require_analyte(const clinical::AnalyteCatalogue& catalogue,
                                         std::string_view text) {
  const std::string wanted = lower_ascii(text);
  const clinical::Analyte* closest = nullptr;
  std::size_t best = static_cast<std::size_t>(-1);
  for (const clinical::Analyte& a : catalogue.analytes()) {
    const std::string key = lower_ascii(a.key);
    if (key == wanted) {
      return a;
    }
    if (const std::size_t d = edit_distance(wanted, key); d < best) {
      best = d;
      closest = &a;
    }
  }
  throw UsageError{"unknown analyte '" + std::string(text) + "'" +
                   (closest != nullptr ? " (closest: " + closest->key + ")" : std::string()) +
                   "; `labwatch analytes` lists the keys"};
}

int cmd_trend(const Args& args) {
  const auto analyte_arg = args.value("analyte");
  if (!analyte_arg) {
    throw UsageError{"--analyte KEY is required (e.g. ferritin; see `labwatch analytes`)"};
  }
  const config::Config config = resolve_config(args);
  const clinical::Analyte* a = &require_analyte(config.catalogue, *analyte_arg);
  const std::string& analyte = a->key;
  auto store = open_store(config, false);
  const std::int64_t person = require_person(*store, args);
  const auto rows = store->trend(person, analyte);
  const std::vector<clinical::UnixSeconds> gaps = store->not_performed(person, analyte);
  const auto target = config.targets.find(analyte);
  std::string out = a->display_name + " (" + a->canonical_unit + ")";
  if (target != config.targets.end()) {
    // Written for the latest result's range; each line says where its value lies.
    const std::string wording =
        rows.empty() ? clinical::describe_target(target->second, *a, a->canonical_unit,
                                                 std::nullopt, std::nullopt)
                     : target_text(&target->second, rows.back(), *a);
    out += ", optimal target " + wording;
  }
  out += "\n";
  char line[512];
  std::snprintf(line, sizeof line, "%-10s  %12s  %-12s  %-11s  %-15s  %s\n", "date", "value",
                "unit", "status", "optimal", "lab range");
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
    const std::string range = range_text(r, *a);
    std::string verdict = "-";
    if (target != config.targets.end()) {
      const clinical::Decision d = clinical::evaluate(storage::as_result(r), target->second, *a);
      verdict = d.violated ? "outside: " + clinical::describe_finding(
                                               {d.rule, r.value, d.target_low, d.target_high,
                                                r.flags, r.unit, r.shown_decimals},
                                               &target->second)
                : d.indeterminate ? "indeterminate"
                                  : "within";
    }
    std::snprintf(line, sizeof line, "%-10s  %12s  %-12s  %-11s  ",
                  iso_date(r.collected_at).c_str(),
                  (r.comparator + clinical::format_shown(r.value, r.shown_decimals)).c_str(),
                  r.unit.c_str(), std::string(clinical::to_string(r.status)).c_str());
    // The verdict and the range may be long: appended whole, never cut by the buffer.
    out += line;
    constexpr std::size_t kVerdictWidth = 15;
    out += verdict + std::string(kVerdictWidth - std::min(verdict.size(), kVerdictWidth), ' ') +
           "  " + range + "\n";
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

// Writes `bytes` to `path` through a new temporary file beside it, then renames it over `path`: a
// reader never sees half a file. The report holds patient data, so no name is followed when it
// is a symlink (someone else's link in a shared directory would redirect it): the temporary name is
// created anew (O_CREAT | O_EXCL, which never follows a link), and a link at `path` is an error.
void write_file_replacing(const std::string& path, std::string_view bytes) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
    throw std::runtime_error(path + " is a symbolic link; not writing through it (remove it, or " +
                             "name the file it points to)");
  }
  std::string tmp = path + ".XXXXXX";
  const int fd = ::mkostemp(tmp.data(), O_CLOEXEC);  // O_CREAT | O_EXCL, mode 0600
  if (fd < 0) {
    throw std::system_error(errno, std::generic_category(), "create a temporary file for " + path);
  }
  try {
    write_all(fd, bytes, "write " + tmp);
    if (::fsync(fd) != 0) {
      throw std::system_error(errno, std::generic_category(), "fsync " + tmp);
    }
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  if (::close(fd) != 0) {
    const int error = errno;
    ::unlink(tmp.c_str());
    throw std::system_error(error, std::generic_category(), "close " + tmp);
  }
  // rename(2) replaces the name itself; it never follows a link that appeared there since.
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int error = errno;
    ::unlink(tmp.c_str());
    throw std::system_error(error, std::generic_category(), "rename " + tmp + " to " + path);
  }
}

int cmd_report(const Args& args) {
  const auto out_path = args.value("out");
  if (!out_path) {
    throw UsageError{"--out FILE.html is required (--out - writes to stdout)"};
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
  if (*out_path == "-") {
    write_all(STDOUT_FILENO, html, "write the report to stdout");
    return kExitOk;
  }
  write_file_replacing(*out_path, html);
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
    out += std::to_string(p.person_id) + ',' + csv_text(ids) + ',' + csv_text(p.family) + ',' +
           csv_text(p.given) + ',' + csv_text(p.birth_date) + ',' + std::string(1, p.sex) + ',' +
           std::to_string(p.results) + ',' +
           (p.last_collected_at != 0 ? iso_utc(p.last_collected_at) : "") + '\n';
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return kExitOk;
}

// Lists the outbox (CSV), or puts failed items back in the queue: `--retry ID` one of them,
// `--retry-failed` all. A running daemon sees them at its next look at the outbox (within 5 min).
int cmd_outbox(const Args& args) {
  const std::optional<std::string> retry = args.value("retry");
  const bool retry_failed = args.flag("retry-failed");
  if (retry && retry_failed) {
    throw UsageError{"--retry ID and --retry-failed exclude each other"};
  }
  std::optional<std::int64_t> id;
  if (retry) {
    std::int64_t value = 0;
    const auto [end, ec] = std::from_chars(retry->data(), retry->data() + retry->size(), value);
    if (retry->empty() || ec != std::errc() || end != retry->data() + retry->size() || value <= 0) {
      throw UsageError{
          "--retry takes an outbox id (a positive number, as `labwatch outbox` lists)"};
    }
    id = value;
  }
  const config::Config config = resolve_config(args);
  auto store = open_store(config, false);
  if (retry || retry_failed) {
    const clinical::UnixSeconds now = std::chrono::duration_cast<std::chrono::seconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count();
    const int requeued = store->retry_failed_mail(id, now);
    if (id && requeued == 0) {
      std::fprintf(stderr, "labwatch: outbox item %lld is not failed (or does not exist)\n",
                   static_cast<long long>(*id));
      return kExitFailure;
    }
    std::printf("%d failed item%s queued again\n", requeued, requeued == 1 ? "" : "s");
    return kExitOk;
  }
  std::string out = "id,person_id,recipient,state,attempts,next_attempt,last_error\n";
  for (const storage::OutboxRow& row : store->outbox(args.flag("all"))) {
    const bool waiting = row.state == storage::OutboxState::pending;
    out += std::to_string(row.id) + ',' + std::to_string(row.person_id) + ',' +
           csv_text(row.email) + ',' + std::string(to_string(row.state)) + ',' +
           std::to_string(row.attempts) + ',' + (waiting ? iso_utc(row.due_at) : "") + ',' +
           csv_text(row.last_error) + '\n';
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return kExitOk;
}

// `text` without leading and trailing blanks (spaces, tabs, line ends).
std::string_view trimmed(std::string_view text) {
  const std::size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) {
    return {};
  }
  return text.substr(first, text.find_last_not_of(" \t\r\n") - first + 1);
}

// A silence id as `silence --list` prints it: a positive number, else a usage error.
std::int64_t silence_id_of(const std::string& text) {
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value <= 0) {
    throw UsageError{
        "--expire takes a silence id (a positive number, as `labwatch silence --list` "
        "lists)"};
  }
  return value;
}

// Records a silence (--patient --analyte --until --reason), lists them (--list), or ends one now
// (--expire ID). Alerts under a silence are recorded but not mailed until its date, unless the
// value crosses into another state (clinical::silence_covers).
int cmd_silence(const Args& args) {
  const bool list = args.flag("list");
  const std::optional<std::string> expire = args.value("expire");
  const bool adding =
      args.value("patient") || args.value("analyte") || args.value("until") || args.value("reason");
  if (static_cast<int>(list) + static_cast<int>(expire.has_value()) + static_cast<int>(adding) !=
      1) {
    throw UsageError{
        "give either --patient ID --analyte KEY --until DATE --reason TEXT, or --list, or "
        "--expire ID"};
  }
  const clinical::UnixSeconds now = std::chrono::duration_cast<std::chrono::seconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count();
  if (expire) {
    const std::int64_t id = silence_id_of(*expire);
    const config::Config config = resolve_config(args);
    auto store = open_store(config, false);
    if (!store->expire_silence(id, now)) {
      std::fprintf(stderr, "labwatch: silence %lld does not exist or has already ended\n",
                   static_cast<long long>(id));
      return kExitFailure;
    }
    std::printf("silence %lld expired: alerts it covered are mailed again\n",
                static_cast<long long>(id));
    return kExitOk;
  }
  if (list) {
    const config::Config config = resolve_config(args);
    auto store = open_store(config, false);
    std::string out = "id,person_id,analyte,until,who,when,reason,status\n";
    for (const storage::SilenceRow& row : store->silences()) {
      const std::string status = row.active(now)  ? "active"
                                 : row.expired_at ? "expired " + iso_utc(*row.expired_at)
                                                  : "expired";
      out += std::to_string(row.silence_id) + ',' + std::to_string(row.person_id) + ',' +
             csv_text(row.analyte) + ',' + iso_date(row.until) + ',' + csv_text(row.os_user) + ',' +
             iso_utc(row.created_at) + ',' + csv_text(row.reason) + ',' + status + '\n';
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
    return kExitOk;
  }
  const auto patient = args.value("patient");
  const auto analyte_arg = args.value("analyte");
  const auto until_arg = args.value("until");
  const std::string reason(trimmed(args.value("reason").value_or("")));
  if (!patient || !analyte_arg || !until_arg) {
    throw UsageError{"a silence needs --patient ID, --analyte KEY, --until DATE and --reason TEXT"};
  }
  if (reason.empty()) {
    throw UsageError{"--reason TEXT is required: say why mail about this analyte may wait"};
  }
  const std::optional<clinical::UnixSeconds> until = parse_since(*until_arg);
  if (!until || until_arg->size() != 10) {
    throw UsageError{"--until takes a date, YYYY-MM-DD (mail resumes at its start, UTC), not '" +
                     *until_arg + "'"};
  }
  if (*until <= now) {
    throw UsageError{"--until " + *until_arg + " is not in the future"};
  }
  const config::Config config = resolve_config(args);
  const clinical::Analyte& analyte = require_analyte(config.catalogue, *analyte_arg);
  auto store = open_store(config, false);
  const auto person = store->find_person(*patient);
  if (!person) {
    throw UsageError{"no patient '" + *patient +
                     "' in the database (or it names more than one: give the person id or "
                     "AUTHORITY|MRN; see `labwatch patients`)"};
  }
  storage::NewSilence silence;
  silence.person_id = *person;
  silence.analyte = analyte.key;
  silence.until = *until;
  silence.reason = reason;
  silence.os_user = acting_os_user();
  silence.now = now;
  const std::int64_t id = store->add_silence(silence);
  std::printf("silence %lld: no mail about %s of person %lld until %s\n",
              static_cast<long long>(id), analyte.key.c_str(), static_cast<long long>(*person),
              iso_date(*until).c_str());
  return kExitOk;
}

// The identity commands (cli/cli_identity.cpp); a refused request is a usage error (exit 64).
template <typename Run>
int identity_command(Run&& run) {
  try {
    return run();
  } catch (const IdentityRefusal& e) {
    throw UsageError{e.message};
  }
}

int cmd_persons(const Args& args) {
  const config::Config config = resolve_config(args);
  auto store = open_store(config, false);
  return print_persons(*store, args.value("search"));
}

int cmd_matches(const Args& args) {
  const config::Config config = resolve_config(args);
  require_database_access(config.paths.database);
  const auto dismiss = args.value("dismiss");
  if (!dismiss && !args.positional().empty()) {
    throw UsageError{"unexpected argument '" + args.positional().front() + "'"};
  }
  if (dismiss && args.positional().size() != 1) {
    throw UsageError{"--dismiss takes two person ids: --dismiss A B"};
  }
  const std::optional<std::string> other =
      dismiss ? std::optional(args.positional().front()) : std::nullopt;
  return identity_command(
      [&] { return run_matches(config, dismiss, other, args.value("reason").value_or("")); });
}

int cmd_merge(const Args& args) {
  const config::Config config = resolve_config(args);
  require_database_access(config.paths.database);
  if (args.positional().size() != 2) {
    throw UsageError{"merge takes two person ids: A (kept) and B (merged into A)"};
  }
  return identity_command([&] {
    return run_merge(config, args.positional()[0], args.positional()[1],
                     args.value("reason").value_or(""));
  });
}

int cmd_unmerge(const Args& args) {
  const config::Config config = resolve_config(args);
  require_database_access(config.paths.database);
  const auto identifier = args.value("identifier");
  if (args.positional().size() != 1 || !identifier) {
    throw UsageError{"unmerge takes a person id and --identifier AUTHORITY|ID"};
  }
  return identity_command([&] {
    return run_unmerge(config, args.positional()[0], *identifier,
                       args.value("reason").value_or(""));
  });
}

int cmd_audit(const Args& args) {
  const config::Config config = resolve_config(args);
  require_database_access(config.paths.database);
  return print_audit(config);
}

std::string joined(const std::vector<std::string>& items, std::string_view separator) {
  std::string out;
  for (const std::string& item : items) {
    out += (out.empty() ? "" : std::string(separator)) + item;
  }
  return out;
}

// Loads the config as `run` does and applies `run`'s own checks (exit 78 on the same errors), then
// shows what it sets and what may not be what was meant.
int cmd_check_config(const Args& args) {
  const config::Config config = resolve_config(args);
  if (auto why = unusable_reason(config)) {
    throw ConfigFailure{(config.path.empty() ? std::string() : config.path + ": ") + *why};
  }
  std::string out;
  out +=
      "config: " + (config.path.empty() ? std::string("(built-in defaults)") : config.path) + "\n";
  out += "inbox: " + config.paths.inbox + "\nprocessed: " + config.paths.processed +
         "\nfailed: " + config.paths.failed +
         "\ndatabase: " + shown_database(config.paths.database) +
         (is_database_url(config.paths.database)
              ? " (PostgreSQL; check-config does not connect to it: labwatch status does)"
              : "") +
         "\n";
  out += "sources: " + std::to_string(config.sources.size()) + "\n";
  for (const config::Source& s : config.sources) {
    out += "  " + s.facility + ": authority " + s.authority + ", timezone " + s.timezone +
           ", files " + (s.file_globs.empty() ? "(by MSH-4 only)" : joined(s.file_globs, ";")) +
           "\n";
  }
  out += "analytes: " + std::to_string(config.catalogue.analytes().size()) +
         ", targets: " + std::to_string(config.targets.size()) + "\n";
  for (const auto& [key, rule] : config.targets) {
    out += "  " + key + ": " + rule.text;
    if (const auto trends = config.trends.find(key); trends != config.trends.end()) {
      for (const clinical::TrendRule& t : trends->second) {
        out += "; " + t.text;
      }
    }
    out += "\n";
  }
  const config::Mail& mail = config.mail;
  if (mail.smtp_url.empty()) {
    out += "mail: off (alerts are recorded, not mailed)\n";
  } else {
    out += "mail: on, relay " + mail.smtp_url + ", from " + mail.from +
           (mail.username.empty()
                ? std::string(", no login")
                : ", login " + mail.username + " (password-file " + mail.password_file + ")") +
           (mail.ca_file.empty() ? std::string() : ", CA " + mail.ca_file) + "\n";
  }
  out += "routing: " + std::to_string(config.practitioners.size()) + " practitioners, default " +
         (mail.default_recipient.empty() ? std::string("none") : mail.default_recipient) + "\n";
  for (const config::Practitioner& p : config.practitioners) {
    out += "  " + p.id + " <" + p.email + ">, phi " +
           (p.phi == config::PhiLevel::full ? "full" : "minimal") +
           (p.provider_ids.empty() ? std::string() : ", providers " + joined(p.provider_ids, ";")) +
           (p.facilities.empty() ? std::string() : ", facilities " + joined(p.facilities, ";")) +
           "\n";
  }
  const std::vector<std::string> warnings = config_warnings(config);
  for (const std::string& w : warnings) {
    out += "warning: " + w + "\n";
  }
  out += warnings.empty() ? "ok\n" : "ok (" + std::to_string(warnings.size()) + " warnings)\n";
  std::fwrite(out.data(), 1, out.size(), stdout);
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

  // --db: a PostgreSQL URL (its server holds the data; no file is made for it), or a SQLite file
  // elsewhere than DIR/labwatch.db.
  std::string database = "labwatch.db";
  if (auto db = args.value("db")) {
    if (auto why = database_problem(*db)) {
      throw UsageError{"--db: " + *why};
    }
    database = config::names_a_url(*db) ? *db : std::filesystem::absolute(*db).string();
  }
  std::string xml =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<!-- labwatch configuration: see config/labwatch.example.xml for every element. -->\n"
      "<labwatch>\n"
      "  <paths inbox=\"inbox\" processed=\"processed\" failed=\"failed\" "
      "database=\"" +
      xml_attr(database) +
      "\"/>\n"
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
  // Creates the SQLite file, or the schema in the PostgreSQL database (migrated when older),
  // before the config: a database that does not answer leaves no config, so init can run again.
  const std::string& opened = parsed.value().paths.database;
  try {
    auto store = storage::open_store(opened);
  } catch (const std::exception& e) {
    throw std::runtime_error(database_failure(opened, e));
  }
  {
    std::ofstream out(config_path);
    out << xml;
    if (!out.flush()) {
      throw std::system_error(errno, std::generic_category(), "write " + config_path.string());
    }
  }
  std::printf("created %s\n  config:   %s\n  inbox:    %s\n  database: %s%s\n", dir.c_str(),
              config_path.c_str(), parsed.value().paths.inbox.c_str(),
              shown_database(opened).c_str(),
              is_database_url(opened) ? " (PostgreSQL, schema ready)" : "");
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
  const config::Config config = resolve_config(args);
  require_database_access(config.paths.database);
  return run_service(config, args.value("config").value_or(config.path));
}

int cmd_analytes(const Args& args) {
  const config::Config config = resolve_config(args);
  std::string out = "key,name,loinc,unit,target\n";
  for (const clinical::Analyte& a : config.catalogue.analytes()) {
    const auto target = config.targets.find(a.key);
    out += csv_text(a.key) + ',' + csv_text(a.display_name) + ',' +
           csv_text(joined(a.loinc_codes, ";")) + ',' + csv_text(a.canonical_unit) + ',' +
           csv_text(target != config.targets.end() ? target->second.text : std::string()) + '\n';
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return kExitOk;
}

// The id of a process holding a flock(2) on `dir` (as `run` does on its inbox), from /proc/locks:
// looked at, never taken, so a daemon starting this instant is not turned away. nullopt when none
// does; 0 when one does but its id is not shown (another PID namespace).
std::optional<long> flock_holder(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    return std::nullopt;
  }
  std::ifstream locks("/proc/locks");
  std::string line;
  // "1: FLOCK  ADVISORY  WRITE 1234 08:01:123456 0 EOF": device major:minor in hex, then inode.
  while (std::getline(locks, line)) {
    char kind[16] = {};
    long pid = 0;
    unsigned major = 0;
    unsigned minor = 0;
    unsigned long inode = 0;
    if (std::sscanf(line.c_str(), "%*[^:]: %15s %*s %*s %ld %x:%x:%lu", kind, &pid, &major, &minor,
                    &inode) == 5 &&
        std::string_view(kind) == "FLOCK" && major == ::major(st.st_dev) &&
        minor == ::minor(st.st_dev) && inode == st.st_ino) {
      return pid > 0 ? pid : 0;
    }
  }
  return std::nullopt;
}

std::string size_text(std::uintmax_t bytes) {
  char text[32];
  if (bytes >= (1U << 20)) {
    std::snprintf(text, sizeof text, "%.1f MiB", static_cast<double>(bytes) / (1U << 20));
  } else {
    std::snprintf(text, sizeof text, "%.1f KiB", static_cast<double>(bytes) / (1U << 10));
  }
  return text;
}

// Is a daemon running on this config, what waits in the inbox, what came in today, what mail is
// stuck. Exit 0 when a daemon runs, 3 when none does (as `systemctl status`).
int cmd_status(const Args& args) {
  const config::Config config = resolve_config(args);
  namespace fs = std::filesystem;
  std::string out;
  out +=
      "config: " + (config.path.empty() ? std::string("(built-in defaults)") : config.path) + "\n";
  const std::optional<long> holder = flock_holder(config.paths.inbox);
  if (holder) {
    out += "daemon: running" + (*holder > 0 ? " (pid " + std::to_string(*holder) + ")" : "") +
           ", it holds the lock on " + config.paths.inbox + "\n";
  } else {
    out += "daemon: not running on this config (no lock on " + config.paths.inbox + ")\n";
  }
  // The backlog: files the daemon would take (not dotfiles, *.tmp or *.part being written).
  std::size_t waiting = 0;
  std::optional<fs::file_time_type> oldest;
  std::error_code ec;
  for (fs::directory_iterator it(config.paths.inbox, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.front() == '.' || name.ends_with(".tmp") || name.ends_with(".part") ||
        !it->is_regular_file(ec)) {
      continue;
    }
    ++waiting;
    const fs::file_time_type t = it->last_write_time(ec);
    if (!ec && (!oldest || t < *oldest)) {
      oldest = t;
    }
  }
  out += "inbox: " + config.paths.inbox + ", " + std::to_string(waiting) + " files waiting";
  if (oldest) {
    const auto age = std::chrono::duration_cast<std::chrono::seconds>(
        fs::file_time_type::clock::now() - *oldest);
    out += " (oldest " + std::to_string(std::max<long long>(age.count(), 0)) + " s)";
  }
  out += "\n";
  const std::string& database = config.paths.database;
  bool readable = false;
  if (is_database_url(database)) {
    // No file to measure: whether the server answers, and at which schema version.
    out += "database: " + shown_database(database) + " (PostgreSQL)";
    try {
      const storage::SchemaVersions versions = storage::read_schema_versions(database);
      readable = versions.database > 0;
      out += versions.database > 0 ? ", schema version " + std::to_string(versions.database) + "\n"
                                   : ", no labwatch schema yet\n";
    } catch (const std::exception& e) {
      out += ", cannot read it: " + database_reason(database, e) + "\n";
    }
  } else if (struct stat db_stat{}; ::stat(database.c_str(), &db_stat) != 0) {
    out += "database: " + database + " (not created yet)\n";
  } else {
    readable = true;
    std::uintmax_t bytes = static_cast<std::uintmax_t>(db_stat.st_size);
    struct stat wal {};
    if (::stat((database + "-wal").c_str(), &wal) == 0) {
      bytes += static_cast<std::uintmax_t>(wal.st_size);
    }
    out += "database: " + database + ", " + size_text(bytes) + "\n";
  }
  if (readable) {
    // Today is the local calendar day, as the admin reads it.
    const std::time_t now = std::time(nullptr);
    std::tm local{};
    ::localtime_r(&now, &local);
    local.tm_hour = 0;
    local.tm_min = 0;
    local.tm_sec = 0;
    local.tm_isdst = -1;
    const storage::IntakeStatus status =
        storage::read_intake_status(config.paths.database, std::mktime(&local));
    if (status.last_file) {
      out += "last file: " + printable(*status.last_file) + ", " + status.last_outcome + " at " +
             iso_utc(status.last_ingested_at) + "\n";
    } else {
      out += "last file: none yet\n";
    }
    out += "today: " + std::to_string(status.accepted) + " accepted, " +
           std::to_string(status.partial) + " partly refused, " + std::to_string(status.refused) +
           " refused\n";
    out += "outbox: " + std::to_string(status.outbox_pending) + " pending, " +
           std::to_string(status.outbox_failed) + " failed" +
           (config.mail.smtp_url.empty() ? " (mail is off)" : "") + "\n";
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return holder ? kExitOk : kExitNotRunning;
}

// What a config line would map `code` with: <loinc> when it has the form of a LOINC code
// (digits, a dash, one check digit), else <code>; KEY is the analyte the admin picks.
std::string mapping_line(std::string_view code) {
  const std::size_t dash = code.find('-');
  const bool loinc_form =
      dash != std::string_view::npos && dash > 0 && dash + 2 == code.size() &&
      std::all_of(code.begin(), code.begin() + static_cast<std::ptrdiff_t>(dash),
                  [](char c) { return c >= '0' && c <= '9'; }) &&
      code.back() >= '0' && code.back() <= '9';
  const std::string element = loinc_form ? "loinc" : "code";
  return "<analyte key=\"KEY\"><" + element + ">" + html_escape(code) + "</" + element +
         "></analyte>";
}

int cmd_unmapped(const Args& args) {
  const config::Config config = resolve_config(args);
  if (is_database_url(config.paths.database)) {
    require_postgresql_schema(config.paths.database);  // one line: unreachable, or no schema yet
  } else if (::access(config.paths.database.c_str(), F_OK) != 0) {
    open_store(config, false);  // says that it does not exist, and what to do
  }
  std::string out = "facility,code,name,unit,count,first_seen,last_seen,last_file,config\n";
  for (const storage::UnmappedCode& u : storage::read_unmapped_codes(config.paths.database)) {
    out += csv_text(u.facility) + ',' + csv_text(u.code) + ',' + csv_text(u.name) + ',' +
           csv_text(u.unit) + ',' + std::to_string(u.count) + ',' + iso_utc(u.first_seen) + ',' +
           iso_utc(u.last_seen) + ',' + csv_text(u.last_file) + ',' +
           csv_text(mapping_line(u.code)) + '\n';
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return kExitOk;
}

int cmd_version(const Args& /*args*/) {
  std::printf("%s\n", std::string(kVersion).c_str());
  return kExitOk;
}

const std::vector<Command>& commands() {
  static const std::vector<Command> list = {
      {"init",
       "create a ready layout: DIR/labwatch.xml, inbox/, processed/, failed/ and the database",
       "labwatch init DIR [--db DB] [--smtp URL] [--to EMAIL]\n"
       "  --db: the database, when not DIR/labwatch.db: a SQLite file, or a postgresql:// URL\n"
       "        whose database exists (init creates labwatch's tables in it)",
       {"smtp", "to", "db"},
       {},
       1,
       cmd_init},
      {"run",
       "run the daemon in the foreground (systemd Type=notify)",
       "labwatch run [--config FILE]",
       {"config"},
       {},
       0,
       cmd_run},
      {"ingest",
       "ingest files once through the same pipeline, then exit (never moves the files)",
       "labwatch ingest [--config FILE] [--db DB] [--no-mail] PATH...\n"
       "  --no-mail: record alerts, queue no mail\n"
       "  exit 0: every file accepted whole; 2: something was refused (reasons on stderr); 1: "
       "failure",
       {"config", "db"},
       {"no-mail"},
       kAnyNumber,
       cmd_ingest},
      {"reprocess",
       "ingest refused files again with the current config; accepted ones leave failed/",
       "labwatch reprocess [--config FILE] [--db DB] FILE... | --failed\n"
       "  results stored before are not stored twice; a file of failed/ accepted now moves to\n"
       "  processed/. exit 0: every file accepted; 2: something is still refused; 1: failure",
       {"config", "db"},
       {"failed"},
       kAnyNumber,
       cmd_reprocess},
      {"explain",
       "show what an ingest of files would store, skip, refuse and alert; writes nothing",
       "labwatch explain [--config FILE] [--db DB] [--format text|json] FILE...\n"
       "  a dry run of the ingest pipeline on the database, rolled back: per message and line,\n"
       "  the results it would store (analyte, value and unit, the lab's as read), skip (why),\n"
       "  refuse (why and where) and the alerts it would raise (analyte, rule, tier).\n"
       "  exit 0: everything would be accepted; 2: something would be refused; 1: failure",
       {"config", "db", "format"},
       {},
       kAnyNumber,
       cmd_explain},
      {"export",
       "print every current result",
       "labwatch export [--config FILE] [--db DB] [--format csv|json]",
       {"config", "db", "format"},
       {},
       0,
       cmd_export},
      {"trend",
       "print one patient's values of one analyte with the optimal target",
       "labwatch trend [--config FILE] [--db DB] --patient ID --analyte KEY",
       {"config", "db", "patient", "analyte"},
       {},
       0,
       cmd_trend},
      {"alerts",
       "print alerts on current results (--all adds history)",
       "labwatch alerts [--config FILE] [--db DB] [--format csv|json] [--all] [--patient ID]\n"
       "                [--since YYYY-MM-DD] [--state STATE]\n"
       "  --since: results collected at or after that day (UTC) or time (YYYY-MM-DDTHH:MM:SSZ)\n"
       "  --state: unmailed, historical, preliminary, silenced, pending, sent, failed; resolved,\n"
       "  superseded, withdrawn (history)",
       {"config", "db", "format", "patient", "since", "state"},
       {"all"},
       0,
       cmd_alerts},
      {"report",
       "write a patient's trend report: one self-contained HTML file with charts",
       "labwatch report [--config FILE] [--db DB] --patient ID --out FILE.html|-",
       {"config", "db", "patient", "out"},
       {},
       0,
       cmd_report},
      {"silence",
       "keep alerts of one patient's analyte from being mailed until a date; list or end them",
       "labwatch silence [--config FILE] [--db DB] --patient ID --analyte KEY --until YYYY-MM-DD\n"
       "                 --reason TEXT\n"
       "labwatch silence [--config FILE] [--db DB] --list | --expire ID\n"
       "  alerts are still recorded (`labwatch alerts` shows them silenced); a value that crosses\n"
       "  into another state (low to high, or an ideal-tier miss becoming a hard one) is mailed.\n"
       "  --until: mail resumes at the start of that day (UTC). who: SUDO_USER, else USER",
       {"config", "db", "patient", "analyte", "until", "reason", "expire"},
       {"list"},
       0,
       cmd_silence},
      {"patients",
       "list reconciled persons with their identifiers",
       "labwatch patients [--config FILE] [--db DB]",
       {"config", "db"},
       {},
       0,
       cmd_patients},
      {"outbox",
       "list queued and failed mail, or queue failed mail again",
       "labwatch outbox [--config FILE] [--db DB] [--all] [--retry ID | --retry-failed]\n"
       "  columns: id, person_id, recipient, state, attempts, next_attempt, last_error\n"
       "  --all adds sent mail; --retry ID / --retry-failed put failed items back in the queue",
       {"config", "db", "retry"},
       {"all", "retry-failed"},
       0,
       cmd_outbox},
      {"persons",
       "list persons with their identifiers (AUTHORITY|ID) and demographics",
       "labwatch persons [--config FILE] [--db DB] [--search TEXT]\n"
       "  --search: persons whose id, names, birth date or identifier contain TEXT (any case,\n"
       "            diacritics ignored)",
       {"config", "db", "search"},
       {},
       0,
       cmd_persons},
      {"matches",
       "list pairs of persons that may be one, with the reason and the differing fields",
       "labwatch matches [--config FILE] [--db DB]\n"
       "labwatch matches [--config FILE] [--db DB] --dismiss A B --reason TEXT\n"
       "  --dismiss: persons A and B are two persons; the pair is closed and audited",
       {"config", "db", "dismiss", "reason"},
       {},
       1,
       cmd_matches},
      {"merge",
       "merge person B into person A (one transaction, audited; alerts re-evaluated)",
       "labwatch merge [--config FILE] [--db DB] A B --reason TEXT\n"
       "  B's identifiers, results and mail move to A; A's trend alerts are judged again",
       {"config", "db", "reason"},
       {},
       2,
       cmd_merge},
      {"unmerge",
       "give an identifier of a person a new person of its own (audited; alerts re-evaluated)",
       "labwatch unmerge [--config FILE] [--db DB] PERSON --identifier AUTHORITY|ID --reason TEXT\n"
       "  the results reported under that identifier move with it",
       {"config", "db", "identifier", "reason"},
       {},
       1,
       cmd_unmerge},
      {"audit",
       "print every merge, unmerge and dismissal: when, OS user, what, why (CSV)",
       "labwatch audit [--config FILE] [--db DB]",
       {"config", "db"},
       {},
       0,
       cmd_audit},
      {"check-config",
       "validate the config as `run` does, then print what it sets and warnings",
       "labwatch check-config [--config FILE]\n"
       "  exit 0: `run` would start on it (warnings included); 78: it would refuse it",
       {"config"},
       {},
       0,
       cmd_check_config},
      {"analytes",
       "list the analytes: key, name, LOINC codes, canonical unit and optimal target",
       "labwatch analytes [--config FILE]",
       {"config"},
       {},
       0,
       cmd_analytes},
      {"status",
       "is a daemon running on this config; inbox backlog, today's files, outbox, database",
       "labwatch status [--config FILE] [--db DB]\n"
       "  exit 0: a daemon runs on this config; 3: none does",
       {"config", "db"},
       {},
       0,
       cmd_status},
      {"unmapped",
       "list codes seen in results that map to no analyte, with the config line that would",
       "labwatch unmapped [--config FILE] [--db DB]\n"
       "  put the line in <catalogue> with KEY an analyte key (labwatch analytes), then reload",
       {"config", "db"},
       {},
       0,
       cmd_unmapped},
      {"version", "print the version", "labwatch version", {}, {}, 0, cmd_version},
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
      "--db overrides the config's database: a SQLite file, or a PostgreSQL database as a libpq\n"
      "URI (postgresql://HOST:PORT/DBNAME?user=ROLE&sslmode=verify-full&sslrootcert=CA.pem&\n"
      "passfile=FILE; never a password in it). Every command takes --help, --version and\n"
      "--log-level error|warning|notice|info|debug (default info).\n";
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
  if (args[0] == "--version" || args[0] == "-V") {
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
    if (std::find(command.valued.begin(), command.valued.end(), "db") != command.valued.end()) {
      std::printf(
          "  --db DB: a SQLite file, or a postgresql:// URL (a libpq URI without password)\n");
    }
    return kExitOk;
  }
  if (std::find(rest.begin(), rest.end(), "--version") != rest.end()) {
    return cmd_version(Args({}, {}, {}));
  }
  // Priority prefixes only where they are read as priorities: the journal.
  log::set_journal_prefix(log::stderr_is_journal());
  std::vector<std::string_view> valued = command.valued;
  valued.emplace_back("log-level");
  try {
    const Args parsed(rest, valued, command.flags);
    if (const auto level = parsed.value("log-level")) {
      const std::optional<log::Priority> max = log::parse_priority(*level);
      if (!max) {
        throw UsageError{"--log-level must be error, warning, notice, info or debug"};
      }
      log::set_max_priority(*max);
    }
    if (parsed.positional().size() > command.max_positional) {
      throw UsageError{"unexpected argument '" + parsed.positional()[command.max_positional] + "'"};
    }
    return command.run(parsed);
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
