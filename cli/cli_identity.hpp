// SPDX-License-Identifier: Apache-2.0
// The identity review commands: persons, matches, merge, unmerge, audit (issue 17).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "storage/store.hpp"

namespace labwatch::daemon {

// A reviewer's request that is refused (an unknown person, a bad identifier): printed, exit 64.
struct IdentityRefusal {
  std::string message;
};

// The OS user acting, for the audit trail: $SUDO_USER (the admin behind sudo), else $USER, else
// "" when neither is set.
std::string acting_os_user();

// Prints every person whose id, names, birth date or identifier contains `search` (folded like
// names are matched; every person when nullopt): id, identifiers AUTHORITY|ID, demographics.
int print_persons(storage::ResultQueries& store, const std::optional<std::string>& search);

// `matches`: the open pairs with their reason and differing fields; with `dismiss` (two person
// ids), closes that pair instead. Throws IdentityRefusal for a bad id or pair.
int run_matches(const config::Config& config, const std::optional<std::string>& dismiss_a,
                const std::optional<std::string>& dismiss_b, const std::string& reason);
// `merge A B`: B is merged into A. Throws IdentityRefusal for a bad or unknown id.
int run_merge(const config::Config& config, std::string_view a, std::string_view b,
              const std::string& reason);
// `unmerge PERSON --identifier AUTHORITY|ID`. Throws IdentityRefusal for a bad request.
int run_unmerge(const config::Config& config, std::string_view person, std::string_view identifier,
                const std::string& reason);
// `audit`: every merge, unmerge and dismissal, oldest first.
int print_audit(const config::Config& config);

}  // namespace labwatch::daemon
