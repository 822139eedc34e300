// SPDX-License-Identifier: Apache-2.0
// A progress line for long one-shot work (`ingest`, `reprocess`) on a terminal, redrawn in place.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace labwatch::daemon {

// Files, messages, results, rate and time left, written to `fd` with a leading \r and redrawn at
// most every kRefresh, only when `fd` is a terminal: logs and scripts (a pipe, a file, the
// journal) get nothing extra. Counts no patient data.
class ProgressLine {
 public:
  static constexpr std::chrono::milliseconds kRefresh{250};

  // `files` and `total_bytes`: what is to be read in all.
  ProgressLine(int fd, std::size_t files, std::uint64_t total_bytes);
  ~ProgressLine();
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;
  ProgressLine(ProgressLine&&) = delete;
  ProgressLine& operator=(ProgressLine&&) = delete;

  [[nodiscard]] bool enabled() const noexcept { return enabled_; }

  // The file being read has come this far (its messages, results and byte offset so far); drawn
  // when kRefresh has passed since the line was last drawn, or when it never was.
  void update(std::uint64_t reports, std::uint64_t results, std::uint64_t offset);
  // The current file is done: its counts and size join the totals.
  void file_done(std::uint64_t reports, std::uint64_t results, std::uint64_t bytes);
  // Wipes the line, so that a log line can be written (the next update draws it again).
  void clear() noexcept;

  // The text of the line (without \r), for tests: "file 2 of 3, 1200 messages, 3400 results,
  // 5600 results/s, 0:04 left".
  [[nodiscard]] static std::string text(std::size_t file, std::size_t files, std::uint64_t reports,
                                        std::uint64_t results, double seconds,
                                        std::uint64_t bytes_done, std::uint64_t total_bytes);

 private:
  void draw(std::uint64_t reports, std::uint64_t results, std::uint64_t offset);

  int fd_;
  bool enabled_;
  bool shown_ = false;
  std::size_t files_;
  std::uint64_t total_bytes_;
  std::size_t done_files_ = 0;
  std::uint64_t done_reports_ = 0;
  std::uint64_t done_results_ = 0;
  std::uint64_t done_bytes_ = 0;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point drawn_{};
  bool ever_drawn_ = false;
};

}  // namespace labwatch::daemon
