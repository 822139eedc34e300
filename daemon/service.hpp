// SPDX-License-Identifier: Apache-2.0
// The daemon: one io_context watching the inbox, ingesting each complete file, moving it after
// commit.
#pragma once

#include <string>

#include "config/config.hpp"

namespace labwatch::daemon {

// Runs the daemon until SIGTERM/SIGINT; SIGHUP reloads `config_path` (kept when invalid).
// Returns the process exit code: 0 after a clean stop, 1 after a database or I/O failure (the file
// being ingested stays in the inbox), 78 when the config's directories cannot work together.
// Throws when start-up fails (database, inbox); the caller maps that to exit code 1.
int run_service(const config::Config& config, const std::string& config_path);

}  // namespace labwatch::daemon
