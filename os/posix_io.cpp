// SPDX-License-Identifier: Apache-2.0
// File descriptors: ownership, opening and writing, retried on EINTR.
#include "os/posix_io.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <system_error>

namespace labwatch::daemon {

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) {
      ::close(fd_);
    }
    fd_ = other.release();
  }
  return *this;
}

int UniqueFd::release() noexcept {
  const int fd = fd_;
  fd_ = -1;
  return fd;
}

int open_retrying(const char* path, int flags, mode_t mode) noexcept {
  int fd = -1;
  do {
    fd = ::open(path, flags, mode);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

int openat_retrying(int dir_fd, const char* path, int flags, mode_t mode) noexcept {
  int fd = -1;
  do {
    fd = ::openat(dir_fd, path, flags, mode);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

namespace {

// Writes until done or an error other than EINTR; the errno of that error, else 0.
int write_fully(int fd, std::string_view bytes) noexcept {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return errno;
    }
    if (n == 0) {
      return EIO;
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return 0;
}

}  // namespace

void write_all(int fd, std::string_view bytes, const std::string& what) {
  if (const int error = write_fully(fd, bytes); error != 0) {
    throw std::system_error(error, std::generic_category(), what);
  }
}

bool try_write_all(int fd, std::string_view bytes) noexcept { return write_fully(fd, bytes) == 0; }

}  // namespace labwatch::daemon
