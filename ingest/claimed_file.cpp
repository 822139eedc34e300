// SPDX-License-Identifier: Apache-2.0
// ClaimedFile: O_NOFOLLOW | O_NONBLOCK open, then fstat must agree with lstat before any read.
#include "ingest/claimed_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <system_error>
#include <utility>

#include "os/posix_io.hpp"

namespace labwatch::daemon {
namespace {

parsers::Refusal refuse(parsers::RefusalReason reason, std::string detail) {
  parsers::Refusal r;
  r.reason = reason;
  r.detail = std::move(detail);
  return r;
}

const char* describe_type(mode_t mode) {
  if (S_ISDIR(mode)) {
    return "a directory, not a file";
  }
  return S_ISFIFO(mode) ? "a FIFO, not a regular file" : "not a regular file";
}

}  // namespace

FileIdentity identity_of(const struct stat& st) noexcept {
  FileIdentity id;
  id.device = static_cast<std::uint64_t>(st.st_dev);
  id.inode = static_cast<std::uint64_t>(st.st_ino);
  id.size = static_cast<std::int64_t>(st.st_size);
  id.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 +
                static_cast<std::int64_t>(st.st_mtim.tv_nsec);
  return id;
}

Writers open_writers(const std::filesystem::path& path) noexcept {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return Writers::unknown;  // opening anything but a regular file can have side effects
  }
  int fd = open_retrying(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    return Writers::unknown;
  }
  Writers writers = Writers::unknown;
  struct stat opened {};
  // A writer opening the file while the lease is held makes the kernel signal the holder: SIGIO by
  // default, which would end the process. SIGURG is ignored unless handled, and nothing handles it.
  if (::fstat(fd, &opened) == 0 && S_ISREG(opened.st_mode) && ::fcntl(fd, F_SETSIG, SIGURG) == 0) {
    if (::fcntl(fd, F_SETLEASE, F_RDLCK) == 0) {
      ::fcntl(fd, F_SETLEASE, F_UNLCK);
      writers = Writers::none;
    } else if (errno == EAGAIN) {
      writers = Writers::some;
    }
  }
  ::close(fd);
  return writers;
}

parsers::Expected<ClaimedFile, parsers::Refusal> ClaimedFile::open(
    const std::filesystem::path& path, const ClaimPolicy& policy) {
  struct stat before {};
  if (policy.strict) {
    if (::lstat(path.c_str(), &before) != 0) {
      return parsers::unexpected(refuse(parsers::RefusalReason::unreadable,
                                        std::string("lstat: ") + std::strerror(errno)));
    }
    if (S_ISLNK(before.st_mode)) {
      return parsers::unexpected(
          refuse(parsers::RefusalReason::symlink, "a symbolic link is never followed"));
    }
    // Not even opened: opening a device can have side effects, and a FIFO may never be written.
    if (!S_ISREG(before.st_mode)) {
      return parsers::unexpected(
          refuse(parsers::RefusalReason::not_regular_file, describe_type(before.st_mode)));
    }
  }
  // O_NONBLOCK: opening a FIFO must not hang waiting for a writer. O_NOFOLLOW closes the race
  // between lstat and open for the last path component.
  int flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;
  if (policy.strict) {
    flags |= O_NOFOLLOW;
  }
  int fd = open_retrying(path.c_str(), flags);
  if (fd < 0) {
    if (errno == ELOOP) {
      return parsers::unexpected(
          refuse(parsers::RefusalReason::symlink, "a symbolic link is never followed"));
    }
    return parsers::unexpected(
        refuse(parsers::RefusalReason::unreadable, std::string("open: ") + std::strerror(errno)));
  }
  ClaimedFile file(fd, 0);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    throw std::system_error(errno, std::generic_category(), "fstat");
  }
  if (!S_ISREG(st.st_mode)) {
    return parsers::unexpected(
        refuse(parsers::RefusalReason::not_regular_file, describe_type(st.st_mode)));
  }
  if (policy.strict) {
    if (st.st_dev != before.st_dev || st.st_ino != before.st_ino) {
      return parsers::unexpected(refuse(parsers::RefusalReason::replaced,
                                        "the file was replaced while it was being claimed"));
    }
    if (st.st_nlink != 1) {
      return parsers::unexpected(refuse(parsers::RefusalReason::hard_link,
                                        "a file with more than one link is never read"));
    }
  }
  const auto size = static_cast<std::uint64_t>(st.st_size);
  if (size > policy.max_bytes) {
    return parsers::unexpected(
        refuse(parsers::RefusalReason::too_large, "size " + std::to_string(size) +
                                                      " bytes exceeds the cap of " +
                                                      std::to_string(policy.max_bytes)));
  }
  // Reads are blocking from here on (a regular file never blocks anyway).
  file.size_ = size;
  file.identity_ = identity_of(st);
  return file;
}

ClaimedFile::~ClaimedFile() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

ClaimedFile::ClaimedFile(ClaimedFile&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), size_(other.size_), identity_(other.identity_) {}

ClaimedFile& ClaimedFile::operator=(ClaimedFile&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) {
      ::close(fd_);
    }
    fd_ = std::exchange(other.fd_, -1);
    size_ = other.size_;
    identity_ = other.identity_;
  }
  return *this;
}

bool ClaimedFile::unchanged() const {
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    throw std::system_error(errno, std::generic_category(), "fstat");
  }
  return identity_of(st) == identity_;
}

void ClaimedFile::read_at(std::uint64_t offset, std::size_t max, std::string& buffer) const {
  buffer.resize(max);
  std::size_t got = 0;
  while (got < max) {
    const ssize_t n =
        ::pread(fd_, buffer.data() + got, max - got, static_cast<off_t>(offset + got));
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      throw std::system_error(errno, std::generic_category(), "pread");
    }
    if (n == 0) {
      break;
    }
    got += static_cast<std::size_t>(n);
  }
  buffer.resize(got);
}

}  // namespace labwatch::daemon
