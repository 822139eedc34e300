// SPDX-License-Identifier: Apache-2.0
// ClaimedFile: a dropped file opened safely (no symlinks, only regular files, a size cap) and read
// in chunks.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include "parsers/expected.hpp"
#include "parsers/lab_report.hpp"

namespace labwatch::daemon {

// Which file a name led to, and as it was then: the device and inode say which file, the size
// and modification time whether it changed since.
struct FileIdentity {
  std::uint64_t device = 0;
  std::uint64_t inode = 0;
  std::int64_t size = 0;
  std::int64_t mtime_ns = 0;
  bool operator==(const FileIdentity&) const = default;
  [[nodiscard]] bool same_file(const FileIdentity& other) const noexcept {
    return device == other.device && inode == other.inode;
  }
};

// The identity of what stat(2) or lstat(2) returned.
FileIdentity identity_of(const struct stat& st) noexcept;

// Whether some process holds a file open for writing, as a read lease tells: the kernel refuses
// one (EAGAIN) while any descriptor of the file is open for writing. unknown where leases are not
// available: network file systems, leases disabled (fs.leases-enable), or a caller that neither
// owns the file nor has CAP_LEASE.
enum class Writers : std::uint8_t { none, some, unknown };

// Asks the kernel about the regular file at `path` (never follows a symlink, opens nothing else).
// Takes a read lease and gives it back at once; a writer that opens the file in between waits
// those microseconds. Gone or unreadable: unknown (the claim itself says why).
Writers open_writers(const std::filesystem::path& path) noexcept;

struct ClaimPolicy {
  // Daemon intake: never follow a symlink, refuse hard links (a second name could point outside the
  // inbox). `labwatch ingest` of paths named by the user follows symlinks and accepts hard links.
  bool strict = true;
  std::uint64_t max_bytes = 256ull << 20;
  // The daemon: after reading, the file's size and modification time must be those it had when it
  // was opened, or nothing of it is committed (FileOutcome::Kind::changed) and it is read again.
  bool unchanged_after_read = false;
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
  // The file as it was opened.
  [[nodiscard]] const FileIdentity& identity() const noexcept { return identity_; }
  // True when the open file's size and modification time are still those it was opened with.
  // Throws std::system_error("fstat").
  [[nodiscard]] bool unchanged() const;
  // Reads up to `max` bytes from `offset` into `buffer` (resized to what was read; 0 at end).
  // Throws std::system_error("pread") on an I/O error.
  void read_at(std::uint64_t offset, std::size_t max, std::string& buffer) const;

 private:
  ClaimedFile(int fd, std::uint64_t size) : fd_(fd), size_(size) {}
  int fd_ = -1;
  std::uint64_t size_ = 0;
  FileIdentity identity_;
};

}  // namespace labwatch::daemon
