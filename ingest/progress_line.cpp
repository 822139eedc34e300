// SPDX-License-Identifier: Apache-2.0
// The progress line of `ingest` and `reprocess` on a terminal.
#include "ingest/progress_line.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <string_view>

#include "os/posix_io.hpp"

namespace labwatch::daemon {
namespace {

// "0:42", "1:05:09".
std::string duration_text(double seconds) {
  const auto total = static_cast<std::uint64_t>(std::max(0.0, std::round(seconds)));
  const std::uint64_t h = total / 3600;
  const std::uint64_t m = total / 60 % 60;
  const std::uint64_t s = total % 60;
  const auto two = [](std::uint64_t v) { return (v < 10 ? "0" : "") + std::to_string(v); };
  return h > 0 ? std::to_string(h) + ":" + two(m) + ":" + two(s) : std::to_string(m) + ":" + two(s);
}

// Erase to the end of the line (ECMA-48 EL): a shorter line leaves nothing of a longer one.
constexpr std::string_view kEraseLine = "\x1b[K";
constexpr std::string_view kWipeLine = "\r\x1b[K";

}  // namespace

ProgressLine::ProgressLine(int fd, std::size_t files, std::uint64_t total_bytes)
    : fd_(fd),
      enabled_(::isatty(fd) == 1),
      files_(files),
      total_bytes_(total_bytes),
      start_(std::chrono::steady_clock::now()) {}

ProgressLine::~ProgressLine() { clear(); }

std::string ProgressLine::text(std::size_t file, std::size_t files, std::uint64_t reports,
                               std::uint64_t results, double seconds, std::uint64_t bytes_done,
                               std::uint64_t total_bytes) {
  std::string out = "file " + std::to_string(file) + " of " + std::to_string(files) + ", " +
                    std::to_string(reports) + (reports == 1 ? " message, " : " messages, ") +
                    std::to_string(results) + (results == 1 ? " result" : " results");
  if (seconds > 0) {
    out += ", " +
           std::to_string(static_cast<std::uint64_t>(static_cast<double>(results) / seconds)) +
           " results/s";
  }
  // Time left: the rest of the bytes at the rate the bytes so far took.
  if (seconds > 0 && bytes_done > 0 && total_bytes >= bytes_done) {
    const double left =
        seconds * static_cast<double>(total_bytes - bytes_done) / static_cast<double>(bytes_done);
    out += ", " + duration_text(left) + " left";
  }
  return out;
}

void ProgressLine::update(std::uint64_t reports, std::uint64_t results, std::uint64_t offset) {
  if (!enabled_ || done_reports_ + reports == 0) {
    return;  // nothing to show yet (a batch of a chunk that ended inside the first message)
  }
  const auto now = std::chrono::steady_clock::now();
  if (ever_drawn_ && now - drawn_ < kRefresh) {
    return;
  }
  drawn_ = now;
  ever_drawn_ = true;
  draw(reports, results, offset);
}

void ProgressLine::file_done(std::uint64_t reports, std::uint64_t results, std::uint64_t bytes) {
  ++done_files_;
  done_reports_ += reports;
  done_results_ += results;
  done_bytes_ += bytes;
}

void ProgressLine::clear() noexcept {
  if (enabled_ && shown_) {
    static_cast<void>(try_write_all(fd_, kWipeLine));  // a line not shown
    shown_ = false;
  }
}

void ProgressLine::draw(std::uint64_t reports, std::uint64_t results, std::uint64_t offset) {
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const std::string line =
      "\r" +
      text(std::min(done_files_ + 1, files_), files_, done_reports_ + reports,
           done_results_ + results, seconds, done_bytes_ + offset, total_bytes_) +
      std::string(kEraseLine);
  static_cast<void>(try_write_all(fd_, line));  // a line not shown
  shown_ = true;
}

}  // namespace labwatch::daemon
