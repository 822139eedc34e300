// SPDX-License-Identifier: Apache-2.0
// The process exit codes of every command, the daemon's (`run`) among them (PRODUCT.md).
#pragma once

namespace labwatch::daemon {

// Exit codes shared by every command.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;     // operational failure (database, I/O)
inline constexpr int kExitRefused = 2;     // ingest: some files, messages or results were refused
inline constexpr int kExitNotRunning = 3;  // status: no daemon runs on this config (LSB)
inline constexpr int kExitUsage = 64;      // EX_USAGE: bad command line
inline constexpr int kExitConfig =
    78;  // EX_CONFIG: the config is invalid (systemd does not restart)

}  // namespace labwatch::daemon
