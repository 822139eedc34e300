// SPDX-License-Identifier: Apache-2.0
// FileMover: renameat2(RENAME_NOREPLACE) with numbered names, a copy fallback across file systems.
#include "daemon/file_mover.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <system_error>

namespace labwatch::daemon {
namespace {

constexpr unsigned kMaxAttempts = 10'000;
constexpr std::string_view kReasonSuffix = ".reason.txt";

std::system_error errno_error(const std::string& what, int code = errno) {
  return {code, std::generic_category(), what};
}

int open_dir(const std::filesystem::path& path) {
  int fd = -1;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    throw errno_error("open " + path.string());
  }
  return fd;
}

void write_all(int fd, std::string_view bytes, const std::string& what) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      throw errno_error(what);
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

// Closes on scope exit; close(2) is never retried (the fd is gone either way).
class Fd {
 public:
  explicit Fd(int fd) noexcept : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&&) = delete;
  Fd& operator=(Fd&&) = delete;
  [[nodiscard]] int get() const noexcept { return fd_; }

 private:
  int fd_;
};

}  // namespace

std::string numbered_name(std::string_view name, unsigned attempt) {
  if (attempt == 0) {
    return std::string(name);
  }
  // The number goes before the extension so the file still opens with the right program.
  const std::size_t dot = name.rfind('.');
  const std::string number = "." + std::to_string(attempt);
  if (dot == std::string_view::npos || dot == 0) {
    return std::string(name) + number;
  }
  return std::string(name.substr(0, dot)) + number + std::string(name.substr(dot));
}

FileMover::FileMover(const std::filesystem::path& inbox, const std::filesystem::path& processed,
                     const std::filesystem::path& failed) {
  // The inbox is used by path: a descriptor held open would keep a deleted inbox alive, and the
  // watcher would not learn that it is gone.
  inbox_.path = inbox;
  processed_.path = processed;
  failed_.path = failed;
  processed_.fd = open_dir(processed);
  try {
    failed_.fd = open_dir(failed);
  } catch (...) {
    ::close(processed_.fd);
    throw;
  }
}

FileMover::~FileMover() {
  ::close(processed_.fd);
  ::close(failed_.fd);
}

std::string FileMover::to_processed(const std::string& name) { return move(processed_, name, {}); }

std::string FileMover::to_failed(const std::string& name, std::string_view reason) {
  std::string moved = move(failed_, name, kReasonSuffix);
  const std::string reason_name = moved + std::string(kReasonSuffix);
  int fd = -1;
  do {
    fd = ::openat(failed_.fd, reason_name.c_str(),
                  O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    throw errno_error("open " + (failed_.path / reason_name).string());
  }
  const Fd file(fd);
  write_all(file.get(), reason, "write " + reason_name);
  if (::fsync(file.get()) != 0) {
    throw errno_error("fsync " + reason_name);
  }
  failed_.dirty = true;
  return moved;
}

bool FileMover::name_free(const Dir& dir, const std::string& candidate,
                          std::string_view reason_suffix) const {
  // Only the reason file needs a look before the move; the move itself refuses a taken name.
  if (reason_suffix.empty()) {
    return true;
  }
  struct stat st {};
  const std::string reason_name = candidate + std::string(reason_suffix);
  return ::fstatat(dir.fd, reason_name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT;
}

std::string FileMover::move(Dir& to, const std::string& name, std::string_view reason_suffix) {
  const std::string source = (inbox_.path / name).string();
  for (unsigned attempt = 0; attempt < kMaxAttempts; ++attempt) {
    std::string candidate = numbered_name(name, attempt);
    if (!name_free(to, candidate, reason_suffix)) {
      continue;
    }
    if (::renameat2(AT_FDCWD, source.c_str(), to.fd, candidate.c_str(), RENAME_NOREPLACE) == 0) {
      inbox_.dirty = true;
      to.dirty = true;
      return candidate;
    }
    const int error = errno;
    if (error == EEXIST) {
      continue;
    }
    if (error == EINVAL || error == ENOSYS) {
      // The file system cannot rename without replacing (some network file systems): a hard link
      // also fails on a taken name, then the inbox name goes.
      if (::linkat(AT_FDCWD, source.c_str(), to.fd, candidate.c_str(), 0) != 0) {
        if (errno == EEXIST) {
          continue;
        }
        throw errno_error("link " + name + " into " + to.path.string());
      }
      if (::unlink(source.c_str()) != 0) {
        throw errno_error("unlink " + source);
      }
      inbox_.dirty = true;
      to.dirty = true;
      return candidate;
    }
    if (error == EXDEV) {
      return copy_across(to, name, reason_suffix);
    }
    throw errno_error("rename " + name + " into " + to.path.string(), error);
  }
  throw errno_error("rename " + name + " into " + to.path.string() + ": no free name", EEXIST);
}

std::string FileMover::copy_across(Dir& to, const std::string& name,
                                   std::string_view reason_suffix) {
  const std::string source = (inbox_.path / name).string();
  int in_fd = -1;
  do {
    in_fd = ::open(source.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  } while (in_fd < 0 && errno == EINTR);
  if (in_fd < 0) {
    throw errno_error("open " + name, errno == ELOOP ? EXDEV : errno);
  }
  const Fd in(in_fd);
  struct stat st {};
  if (::fstat(in.get(), &st) != 0) {
    throw errno_error("fstat " + name);
  }
  if (!S_ISREG(st.st_mode)) {
    throw errno_error("move " + name + " to another file system", EXDEV);
  }
  // Copy under a dot name (never taken for a result), sync, then link it to a free final name: a
  // crash leaves at worst a stray dot file, and the inbox copy stays until the end.
  const std::string temp = ".labwatch-copy-" + std::to_string(::getpid()) + ".tmp";
  ::unlinkat(to.fd, temp.c_str(), 0);
  int out_fd = -1;
  do {
    out_fd =
        ::openat(to.fd, temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  } while (out_fd < 0 && errno == EINTR);
  if (out_fd < 0) {
    throw errno_error("create " + (to.path / temp).string());
  }
  {
    const Fd out(out_fd);
    std::array<char, std::size_t{64} * 1024> buffer{};
    for (;;) {
      const ssize_t n = ::read(in.get(), buffer.data(), buffer.size());
      if (n < 0) {
        if (errno == EINTR) {
          continue;
        }
        throw errno_error("read " + name);
      }
      if (n == 0) {
        break;
      }
      write_all(out.get(), std::string_view(buffer.data(), static_cast<std::size_t>(n)),
                "write " + (to.path / temp).string());
    }
    if (::fsync(out.get()) != 0) {
      throw errno_error("fsync " + (to.path / temp).string());
    }
  }
  for (unsigned attempt = 0; attempt < kMaxAttempts; ++attempt) {
    std::string candidate = numbered_name(name, attempt);
    if (!name_free(to, candidate, reason_suffix)) {
      continue;
    }
    if (::linkat(to.fd, temp.c_str(), to.fd, candidate.c_str(), 0) == 0) {
      ::unlinkat(to.fd, temp.c_str(), 0);
      if (::fsync(to.fd) != 0) {
        throw errno_error("fsync " + to.path.string());
      }
      // The copy is durable before the original goes.
      if (::unlink(source.c_str()) != 0) {
        throw errno_error("unlink " + source);
      }
      inbox_.dirty = true;
      return candidate;
    }
    if (errno != EEXIST) {
      throw errno_error("link " + candidate + " in " + to.path.string());
    }
  }
  ::unlinkat(to.fd, temp.c_str(), 0);
  throw errno_error("copy " + name + " into " + to.path.string() + ": no free name", EEXIST);
}

void FileMover::sync() {
  for (Dir* d : {&processed_, &failed_}) {
    if (d->dirty) {
      if (::fsync(d->fd) != 0) {
        throw errno_error("fsync " + d->path.string());
      }
      d->dirty = false;
    }
  }
  if (inbox_.dirty) {
    const Fd inbox(open_dir(inbox_.path));
    if (::fsync(inbox.get()) != 0) {
      throw errno_error("fsync " + inbox_.path.string());
    }
    inbox_.dirty = false;
  }
}

}  // namespace labwatch::daemon
