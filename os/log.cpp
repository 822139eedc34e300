// SPDX-License-Identifier: Apache-2.0
// Logging to stderr with one write(2) per line, so lines from one process never interleave.
#include "os/log.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "os/posix_io.hpp"

namespace labwatch::daemon::log {
namespace {
std::atomic<bool> g_prefix{false};
std::atomic<int> g_max{static_cast<int>(Priority::info)};
}  // namespace

void set_journal_prefix(bool on) noexcept { g_prefix = on; }
void set_max_priority(Priority max) noexcept { g_max = static_cast<int>(max); }

bool stderr_is_journal() noexcept {
  const char* stream = std::getenv("JOURNAL_STREAM");  // NOLINT(concurrency-mt-unsafe): at start
  if (stream == nullptr) {
    return false;
  }
  unsigned long long device = 0;
  unsigned long long inode = 0;
  char tail = 0;
  if (std::sscanf(stream, "%llu:%llu%c", &device, &inode, &tail) != 2) {
    return false;
  }
  struct stat st {};
  return ::fstat(STDERR_FILENO, &st) == 0 && static_cast<unsigned long long>(st.st_dev) == device &&
         static_cast<unsigned long long>(st.st_ino) == inode;
}

std::optional<Priority> parse_priority(std::string_view name) noexcept {
  if (name == "error") {
    return Priority::error;
  }
  if (name == "warning") {
    return Priority::warning;
  }
  if (name == "notice") {
    return Priority::notice;
  }
  if (name == "info") {
    return Priority::info;
  }
  if (name == "debug") {
    return Priority::debug;
  }
  return std::nullopt;
}

void write(Priority priority, std::string_view message) noexcept {
  if (static_cast<int>(priority) > g_max.load()) {
    return;
  }
  try {
    std::string line;
    line.reserve(message.size() + 16);
    if (g_prefix) {
      line += '<';
      line += static_cast<char>('0' + static_cast<int>(priority));
      line += '>';
    } else {
      line += "labwatch: ";
    }
    // One record per line: embedded newlines would forge journal entries, and other control bytes
    // (terminal escapes) could rewrite what an admin sees. Each shows as \xNN.
    static constexpr std::string_view kHex = "0123456789ABCDEF";
    for (const char c : message) {
      const auto byte = static_cast<unsigned char>(c);
      if (byte < 0x20U || byte == 0x7FU) {
        line += "\\x";
        line += kHex[byte >> 4U];
        line += kHex[byte & 0x0FU];
      } else {
        line += c;
      }
    }
    line += '\n';
    static_cast<void>(try_write_all(STDERR_FILENO, line));  // a lost log line cannot be logged
  } catch (...) {  // NOLINT(bugprone-empty-catch): logging must never throw
  }
}

}  // namespace labwatch::daemon::log
