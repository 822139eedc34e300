// SPDX-License-Identifier: Apache-2.0
// ClaimedFile: a dropped file opened safely (no symlinks, only regular files, a size cap) and read
// in chunks.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include "parsers/expected.hpp"
#include "parsers/lab_report.hpp"

namespace labwatch::daemon {

struct ClaimPolicy {
  // Daemon intake: never follow a symlink, refuse hard links (a second name could point outside the
  // inbox). `labwatch ingest` of paths named by the user follows symlinks and accepts hard links.
  bool strict = true;
  std::uint64_t max_bytes = 256ull << 20;
};

class ClaimedFile {
 public:
  // Opens `path` for reading. Refusals (reason): not_regular_file, symlink, hard_link, too_large,
  // unreadable. Never reads a byte of a refused file. Throws nothing for input problems.
  static parsers::Expected<ClaimedFile, parsers::Refusal> open(const std::filesystem::path& path,
                                                               const ClaimPolicy& policy);
  ~ClaimedFile();
  ClaimedFile(ClaimedFile&& other) noexcept;
  ClaimedFile& operator=(ClaimedFile&& other) noexcept;
  ClaimedFile(const ClaimedFile&) = delete;
  ClaimedFile& operator=(const ClaimedFile&) = delete;

  [[nodiscard]] std::uint64_t size() const noexcept { return size_; }
  [[nodiscard]] int fd() const noexcept { return fd_; }
  // Reads up to `max` bytes from `offset` into `buffer` (resized to what was read; 0 at end).
  // Throws std::system_error("pread") on an I/O error.
  void read_at(std::uint64_t offset, std::size_t max, std::string& buffer) const;

 private:
  ClaimedFile(int fd, std::uint64_t size) : fd_(fd), size_(size) {}
  int fd_ = -1;
  std::uint64_t size_ = 0;
};

}  // namespace labwatch::daemon
