// SPDX-License-Identifier: Apache-2.0
// The daemon: one io_context watching the inbox, ingesting each complete file, moving it after commit.
#pragma once

#include <string>

#include "config/config.hpp"

namespace labwatch::daemon {

// Runs the daemon until SIGTERM/SIGINT; SIGHUP reloads `config_path` (kept when invalid).
// Returns the process exit code (0 after a clean stop).
int run_service(const config::Config& config, const std::string& config_path);

}  // namespace labwatch::daemon
