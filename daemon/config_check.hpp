// SPDX-License-Identifier: Apache-2.0
// What `run` demands of a loaded config beyond the loader's checks, shared with `check-config`, and
// the warnings `check-config` adds about a config that runs but may not do what was meant.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace labwatch::daemon {

// Why `run` cannot start on `config` (its exit 78), or nullopt: the inbox, processed/ and failed/
// must be three directories, the database usable (database_problem) and outside the inbox, the SMTP
// URL usable (smtp_tls_mode). Directories that do not exist yet are compared by their paths. Throws
// std::filesystem_error when an existing directory cannot be examined.
std::optional<std::string> unusable_reason(const config::Config& config);

// Why `database` (a SQLite path or a URL) cannot be used, or nullopt: a URL must be a PostgreSQL
// one and carry no password. The text names the URL with any password hidden.
std::optional<std::string> database_problem(const std::string& database);

// What may not be what was meant, one sentence each: no sources; a practitioner's facility that no
// source has; a password file missing or unreadable (by this process); an SMTP port out of range;
// a PostgreSQL database on another host without sslmode=verify-full.
std::vector<std::string> config_warnings(const config::Config& config);

// `path` when a file is there; nullopt when nothing is (ENOENT, ENOTDIR), which means the
// built-in defaults. Throws std::system_error when the path cannot be looked at (EACCES on a
// directory, a symlink loop): a config that may exist is never silently replaced by defaults.
std::optional<std::string> present_config(const std::string& path);

}  // namespace labwatch::daemon
