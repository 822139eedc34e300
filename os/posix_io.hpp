// SPDX-License-Identifier: Apache-2.0
// File descriptors: ownership, opening and writing, each call retried when a signal interrupts it.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

namespace labwatch::daemon {

// Owns a file descriptor and closes it when it goes; close(2) is never retried (the descriptor is
// gone either way). -1 owns nothing.
class UniqueFd {
 public:
  UniqueFd() noexcept = default;
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  ~UniqueFd();
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  [[nodiscard]] int get() const noexcept { return fd_; }
  [[nodiscard]] explicit operator bool() const noexcept { return fd_ >= 0; }
  // Gives the descriptor up without closing it.
  int release() noexcept;

 private:
  int fd_ = -1;
};

// open(2) and openat(2), again while a signal interrupts them: the descriptor, or -1 with errno.
int open_retrying(const char* path, int flags, mode_t mode = 0) noexcept;
int openat_retrying(int dir_fd, const char* path, int flags, mode_t mode = 0) noexcept;

// Writes all of `bytes` to `fd`; throws std::system_error naming `what`.
void write_all(int fd, std::string_view bytes, const std::string& what);
// Writes what it can of `bytes` to `fd`; false when it could not write all of them.
bool try_write_all(int fd, std::string_view bytes) noexcept;

}  // namespace labwatch::daemon
