// SPDX-License-Identifier: Apache-2.0
// Logging to stderr, optionally with journald priority prefixes (<3> error, <4> warning, <6> info,
// <7> debug). Log file names, counts and ids; never patient data at info level or above.
#pragma once

#include <string_view>

namespace labwatch::daemon::log {

enum class Priority { error = 3, warning = 4, notice = 5, info = 6, debug = 7 };

// Prefix each line with its journald priority (the daemon); off for interactive commands.
void set_journal_prefix(bool on) noexcept;
// Lines above this priority are dropped (default info).
void set_max_priority(Priority max) noexcept;

void write(Priority priority, std::string_view message) noexcept;

inline void error(std::string_view m) noexcept { write(Priority::error, m); }
inline void warning(std::string_view m) noexcept { write(Priority::warning, m); }
inline void info(std::string_view m) noexcept { write(Priority::info, m); }
inline void debug(std::string_view m) noexcept { write(Priority::debug, m); }

}  // namespace labwatch::daemon::log
