// SPDX-License-Identifier: Apache-2.0
// The identity review commands: listing persons and open pairs, merge, unmerge, dismissal, audit.
#include "cli/cli_identity.hpp"

#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <system_error>
#include <vector>

#include "cli/database_name.hpp"
#include "clinical/reconcile.hpp"
#include "ingest/pipeline.hpp"
#include "present/text_format.hpp"
#include "storage/identity_store.hpp"

namespace labwatch::daemon {

namespace {

std::int64_t person_id_of(std::string_view text) {
  std::int64_t id = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (error != std::errc() || end != text.data() + text.size() || id <= 0) {
    throw IdentityRefusal{"'" + std::string(text) + "' is not a person id (see labwatch persons)"};
  }
  return id;
}

std::unique_ptr<storage::IdentityStore> open_review(const config::Config& config) {
  storage::StoreOptions options;
  options.create = false;
  if (is_database_url(config.paths.database)) {
    require_postgresql_schema(config.paths.database);
    try {
      return storage::open_identity_store(config.paths.database, options);
    } catch (const std::exception& e) {
      throw std::runtime_error(database_failure(config.paths.database, e));
    }
  }
  if (::access(config.paths.database.c_str(), F_OK) != 0) {
    throw std::system_error(errno, std::generic_category(),
                            "database " + config.paths.database + " does not exist");
  }
  return storage::open_identity_store(config.paths.database, options);
}

storage::ReviewAction action_now(const std::string& reason) {
  if (reason.empty()) {
    throw IdentityRefusal{"--reason TEXT is required: it goes into the audit trail"};
  }
  storage::ReviewAction action;
  action.os_user = acting_os_user();
  action.reason = reason;
  action.now = std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
  return action;
}

void print_alert_changes(const storage::IdentityOutcome& outcome) {
  std::printf("trend alerts re-evaluated: %d raised, %d notices queued\n", outcome.alerts.alerts,
              outcome.alerts.notices);
}

template <typename Run>
auto refusing(Run&& run) {
  try {
    return run();
  } catch (const storage::IdentityError& e) {
    throw IdentityRefusal{e.what()};
  }
}

}  // namespace

std::string acting_os_user() {
  // NOLINTNEXTLINE(concurrency-mt-unsafe): read once, before any thread of the CLI starts
  for (const char* name : {"SUDO_USER", "USER"}) {
    if (const char* value = std::getenv(name); value != nullptr && *value != '\0') {  // NOLINT
      return value;
    }
  }
  return "";
}

int print_persons(storage::ResultQueries& store, const std::optional<std::string>& search) {
  const std::string wanted = search ? clinical::fold_person_name(*search) : std::string();
  std::string out;
  for (const storage::PersonRow& p : store.persons()) {
    std::string ids;
    for (const std::string& key : p.patient_keys) {
      ids += (ids.empty() ? "" : " ") + key;
    }
    const std::string line = std::to_string(p.person_id) + "  " + p.family + ", " + p.given +
                             "  born " + (p.birth_date.empty() ? "?" : p.birth_date) + "  sex " +
                             std::string(1, p.sex) + "  " + ids;
    if (!wanted.empty() && clinical::fold_person_name(line).find(wanted) == std::string::npos) {
      continue;
    }
    out += line + '\n';
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

int run_matches(const config::Config& config, const std::optional<std::string>& dismiss_a,
                const std::optional<std::string>& dismiss_b, const std::string& reason) {
  const auto review = open_review(config);
  if (dismiss_a) {
    const std::int64_t a = person_id_of(*dismiss_a);
    const std::int64_t b = person_id_of(dismiss_b.value_or(""));
    const storage::ReviewAction action = action_now(reason);
    refusing([&] {
      review->dismiss(a, b, action);
      return 0;
    });
    std::printf("dismissed: persons %lld and %lld are two persons\n", static_cast<long long>(a),
                static_cast<long long>(b));
    return 0;
  }
  std::string out;
  for (const storage::MatchRow& row : review->open_matches()) {
    out += std::to_string(row.person_a) + " " + std::to_string(row.person_b) + "  " +
           std::string(clinical::to_string(row.reason)) +
           "  differing: " + (row.fields.empty() ? "none" : row.fields) + "  since " +
           iso_utc(row.created_at) + '\n';
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

int run_merge(const config::Config& config, std::string_view a, std::string_view b,
              const std::string& reason) {
  const std::int64_t kept = person_id_of(a);
  const std::int64_t absorbed = person_id_of(b);
  const storage::ReviewAction action = action_now(reason);
  const auto review = open_review(config);
  const storage::AlertPolicy targets = targets_of(config);
  const storage::IdentityOutcome outcome =
      refusing([&] { return review->merge(kept, absorbed, action, targets); });
  std::printf("merged person %lld into person %lld (%d results moved)\n",
              static_cast<long long>(absorbed), static_cast<long long>(kept),
              outcome.moved_results);
  print_alert_changes(outcome);
  return 0;
}

int run_unmerge(const config::Config& config, std::string_view person, std::string_view identifier,
                const std::string& reason) {
  const std::int64_t id = person_id_of(person);
  const std::size_t bar = identifier.find('|');
  if (bar == std::string_view::npos || bar == 0 || bar + 1 == identifier.size()) {
    throw IdentityRefusal{"--identifier must be AUTHORITY|ID (see labwatch persons)"};
  }
  const storage::ReviewAction action = action_now(reason);
  const auto review = open_review(config);
  const storage::AlertPolicy targets = targets_of(config);
  const storage::IdentityOutcome outcome = refusing([&] {
    return review->unmerge(id, identifier.substr(0, bar), identifier.substr(bar + 1), action,
                           targets);
  });
  std::printf("moved %s to new person %lld (%d results moved)\n", std::string(identifier).c_str(),
              static_cast<long long>(outcome.person_id), outcome.moved_results);
  print_alert_changes(outcome);
  return 0;
}

int print_audit(const config::Config& config) {
  const auto review = open_review(config);
  std::string out = "at,user,action,detail,reason\n";
  for (const storage::AuditRow& row : review->audit()) {
    out += iso_utc(row.at) + ',' + csv_text(row.os_user) + ',' + csv_text(row.action) + ',' +
           csv_text(row.detail) + ',' + csv_text(row.reason) + '\n';
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

}  // namespace labwatch::daemon
