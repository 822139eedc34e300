// SPDX-License-Identifier: Apache-2.0
// Logging to stderr, optionally with journald priority prefixes (<3> error, <4> warning, <6> info,
// <7> debug). Log file names, counts and ids; never patient data at info level or above.
#pragma once

#include <optional>
#include <string_view>

namespace labwatch::daemon::log {

enum class Priority { error = 3, warning = 4, notice = 5, info = 6, debug = 7 };

// Prefix each line with its journald priority (the daemon); off for interactive commands.
void set_journal_prefix(bool on) noexcept;
// Lines above this priority are dropped (default info).
void set_max_priority(Priority max) noexcept;

// Whether stderr is a stream of the journal: $JOURNAL_STREAM ("DEV:INODE", set by systemd for
// StandardError=journal) names the file stderr is. Only then do priority prefixes mean anything;
// elsewhere (a terminal, a file, a pipe) they are noise.
bool stderr_is_journal() noexcept;

// "error", "warning", "notice", "info" or "debug"; nullopt for anything else.
std::optional<Priority> parse_priority(std::string_view name) noexcept;

void write(Priority priority, std::string_view message) noexcept;

inline void error(std::string_view m) noexcept { write(Priority::error, m); }
inline void warning(std::string_view m) noexcept { write(Priority::warning, m); }
inline void info(std::string_view m) noexcept { write(Priority::info, m); }
inline void debug(std::string_view m) noexcept { write(Priority::debug, m); }

}  // namespace labwatch::daemon::log
