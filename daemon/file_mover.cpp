// SPDX-License-Identifier: Apache-2.0
// FileMover: renameat2(RENAME_NOREPLACE) with numbered names, a copy fallback across file systems.
#include "daemon/file_mover.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <optional>
#include <system_error>
#include <vector>

#include "os/posix_io.hpp"

namespace labwatch::daemon {
namespace {

constexpr unsigned kMaxAttempts = 10'000;
constexpr std::size_t kMaxNameBytes = 255;  // NAME_MAX of Linux file systems
constexpr std::string_view kReasonSuffix = ".reason.txt";
// Work files in processed/ and failed/: dot names ending in .tmp, which the inbox never passes on
// (the watcher skips both), so no moved file can take them. One daemon uses a layout at a time.
constexpr const char* kReasonTemp = ".labwatch-reason.tmp";
constexpr const char* kCopyTemp = ".labwatch-copy.tmp";

std::system_error errno_error(const std::string& what, int code = errno) {
  return {code, std::generic_category(), what};
}

int open_dir(const std::filesystem::path& path) {
  int fd = open_retrying(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    throw errno_error("open " + path.string());
  }
  return fd;
}

// In failed/, only reason files end in ".reason.txt": a refused file named so is numbered
// ("b.reason.txt" -> "b.reason.1.txt"). A name ending so whose file is absent is then always an
// orphaned reason, which place_reason may replace, never another refused file.
unsigned first_attempt(std::string_view name, const std::optional<std::string_view>& reason) {
  return reason && name.ends_with(kReasonSuffix) ? 1 : 0;
}

}  // namespace

std::string numbered_name(std::string_view name, unsigned attempt, std::size_t reserve) {
  const std::string number = attempt == 0 ? std::string() : "." + std::to_string(attempt);
  // The number goes before the extension so the file still opens with the right program.
  std::size_t dot = name.rfind('.');
  if (dot == std::string_view::npos || dot == 0) {
    dot = name.size();
  }
  std::string_view stem = name.substr(0, dot);
  std::string_view extension = name.substr(dot);
  const std::size_t budget = kMaxNameBytes > reserve ? kMaxNameBytes - reserve : 0;
  if (stem.size() + number.size() + extension.size() > budget) {
    // Too long for the file system: shorten the stem, or the whole name when the extension alone
    // leaves no room. Never cut inside a UTF-8 sequence.
    if (number.size() + extension.size() >= budget) {
      stem = name;
      extension = {};
    }
    std::size_t keep = budget > number.size() + extension.size()
                           ? std::min(stem.size(), budget - number.size() - extension.size())
                           : 0;
    while (keep > 0 && (static_cast<unsigned char>(stem[keep]) & 0xC0U) == 0x80U) {
      --keep;
    }
    stem = stem.substr(0, keep);
  }
  return std::string(stem) + number + std::string(extension);
}

FileMover::FileMover(const std::filesystem::path& inbox, const std::filesystem::path& processed,
                     const std::filesystem::path& failed) {
  // The inbox is used by path: a descriptor held open would keep a deleted inbox alive, and the
  // watcher would not learn that it is gone.
  inbox_.path = inbox;
  claim_.path = inbox / kClaimDir;
  processed_.path = processed;
  failed_.path = failed;
  if (::mkdir(claim_.path.c_str(), 0700) != 0 && errno != EEXIST) {
    throw errno_error("mkdir " + claim_.path.string());
  }
  // The claim directory is private to this process (it holds the inbox's lock): a descriptor held
  // open keeps it usable. O_NOFOLLOW: a symlink put in its place is refused.
  claim_.fd = open_retrying(claim_.path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (claim_.fd < 0) {
    throw errno_error("open " + claim_.path.string());
  }
  try {
    processed_.fd = open_dir(processed);
    failed_.fd = open_dir(failed);
  } catch (...) {
    ::close(claim_.fd);
    if (processed_.fd >= 0) {
      ::close(processed_.fd);
    }
    throw;
  }
  // A crash may have left a work file behind: it holds nothing that is not still in the inbox.
  for (const int fd : {processed_.fd, failed_.fd}) {
    ::unlinkat(fd, kReasonTemp, 0);
    ::unlinkat(fd, kCopyTemp, 0);
  }
  // A crash between claiming a file and moving it on left it claimed: it goes back to the inbox,
  // to be read again (known by its digest if it was committed).
  std::vector<std::string> left;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(claim_.path, ec), end; !ec && it != end;
       it.increment(ec)) {
    left.push_back(it->path().filename().string());
  }
  for (const std::string& name : left) {
    try {
      unclaim(name);
    } catch (...) {
      ::close(claim_.fd);
      ::close(processed_.fd);
      ::close(failed_.fd);
      throw;
    }
  }
}

FileMover::~FileMover() {
  ::close(claim_.fd);
  ::close(processed_.fd);
  ::close(failed_.fd);
}

std::optional<std::string> FileMover::to_processed(const std::string& name,
                                                   const std::optional<FileIdentity>& read) {
  return claim_and_move(processed_, name, {}, read);
}

std::optional<std::string> FileMover::to_failed(const std::string& name, std::string_view reason,
                                                const std::optional<FileIdentity>& read) {
  return claim_and_move(failed_, name, reason, read);
}

// Why claim first: files are moved by name, and a producer may put a new file under the name at any
// moment, also between the last look at it and the rename. The claim directory is this process's
// own: once renamed there, the entry can be checked at leisure, and what moves on is what was read.
// A new file that took the name later is simply a new file in the inbox.
bool FileMover::claim(const std::string& name, const std::optional<FileIdentity>& read) {
  const std::string source = (inbox_.path / name).string();
  if (::renameat2(AT_FDCWD, source.c_str(), claim_.fd, name.c_str(), RENAME_NOREPLACE) != 0) {
    const int error = errno;
    if (error != EINVAL && error != ENOSYS) {
      throw errno_error("claim " + name, error);
    }
    // No RENAME_NOREPLACE (some network file systems): the claim directory is private and emptied
    // at start-up, so a plain rename there replaces nothing.
    if (::renameat(AT_FDCWD, source.c_str(), claim_.fd, name.c_str()) != 0) {
      throw errno_error("claim " + name);
    }
  }
  inbox_.dirty = true;
  claim_.dirty = true;
  if (!read) {
    return true;
  }
  struct stat st {};
  if (::fstatat(claim_.fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    throw errno_error("stat claimed " + name);
  }
  if (identity_of(st) == *read) {
    return true;
  }
  unclaim(name);
  return false;
}

void FileMover::unclaim(const std::string& name) {
  for (unsigned attempt = 0; attempt < kMaxAttempts; ++attempt) {
    const std::string target = (inbox_.path / numbered_name(name, attempt)).string();
    if (::renameat2(claim_.fd, name.c_str(), AT_FDCWD, target.c_str(), RENAME_NOREPLACE) == 0) {
      inbox_.dirty = true;
      claim_.dirty = true;
      return;
    }
    if (errno == EINVAL || errno == ENOSYS) {
      if (::linkat(claim_.fd, name.c_str(), AT_FDCWD, target.c_str(), 0) == 0) {
        ::unlinkat(claim_.fd, name.c_str(), 0);
        inbox_.dirty = true;
        claim_.dirty = true;
        return;
      }
    }
    if (errno != EEXIST) {
      throw errno_error("return claimed " + name + " to " + inbox_.path.string());
    }
  }
  throw errno_error("return claimed " + name + " to " + inbox_.path.string() + ": no free name",
                    EEXIST);
}

std::optional<std::string> FileMover::claim_and_move(Dir& to, const std::string& name,
                                                     std::optional<std::string_view> reason,
                                                     const std::optional<FileIdentity>& read) {
  if (!claim(name, read)) {
    return std::nullopt;
  }
  try {
    return move(to, name, reason);
  } catch (const std::system_error&) {
    // Not moved: back to the inbox, as if never claimed (a restart would do the same).
    try {
      unclaim(name);
    } catch (const std::system_error&) {  // NOLINT(bugprone-empty-catch): the first error is the
                                          // one to report; the start-up recovers it
    }
    throw;
  }
}

bool FileMover::place_reason(Dir& dir, const std::string& candidate, std::string_view reason) {
  struct stat st {};
  if (::fstatat(dir.fd, candidate.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT) {
    return false;  // taken (or unreadable): try the next name
  }
  // Written, synced and renamed into place before the file itself moves: failed/ never holds a
  // file without its reason. A reason file whose file is absent is the orphan of a crash between
  // the two steps, left for this same name: it is replaced.
  const std::string temp(kReasonTemp);
  ::unlinkat(dir.fd, temp.c_str(), 0);
  int fd = openat_retrying(dir.fd, temp.c_str(),
                           O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    throw errno_error("create " + (dir.path / temp).string());
  }
  {
    const UniqueFd file(fd);
    write_all(file.get(), reason, "write " + (dir.path / temp).string());
    if (::fsync(file.get()) != 0) {
      throw errno_error("fsync " + (dir.path / temp).string());
    }
  }
  const std::string reason_name = candidate + std::string(kReasonSuffix);
  if (::renameat(dir.fd, temp.c_str(), dir.fd, reason_name.c_str()) != 0) {
    const int error = errno;
    ::unlinkat(dir.fd, temp.c_str(), 0);
    throw errno_error("rename " + temp + " to " + reason_name + " in " + dir.path.string(), error);
  }
  dir.dirty = true;
  return true;
}

void FileMover::drop_reason(Dir& dir, const std::string& candidate) {
  const std::string reason_name = candidate + std::string(kReasonSuffix);
  ::unlinkat(dir.fd, reason_name.c_str(), 0);
}

std::string FileMover::move(Dir& to, const std::string& name,
                            std::optional<std::string_view> reason) {
  const std::string source = (claim_.path / name).string();
  const std::size_t reserve = reason ? kReasonSuffix.size() : 0;
  for (unsigned attempt = first_attempt(name, reason); attempt < kMaxAttempts; ++attempt) {
    std::string candidate = numbered_name(name, attempt, reserve);
    if (reason && !place_reason(to, candidate, *reason)) {
      continue;
    }
    if (::renameat2(claim_.fd, name.c_str(), to.fd, candidate.c_str(), RENAME_NOREPLACE) == 0) {
      claim_.dirty = true;
      to.dirty = true;
      return candidate;
    }
    const int error = errno;
    if (error == EINVAL || error == ENOSYS) {
      // The file system cannot rename without replacing (some network file systems): a hard link
      // also fails on a taken name, then the inbox name goes.
      if (::linkat(claim_.fd, name.c_str(), to.fd, candidate.c_str(), 0) != 0) {
        const int link_error = errno;
        if (reason) {
          drop_reason(to, candidate);
        }
        if (link_error == EEXIST) {
          continue;
        }
        throw errno_error("link " + name + " into " + to.path.string(), link_error);
      }
      if (::unlinkat(claim_.fd, name.c_str(), 0) != 0) {
        throw errno_error("unlink " + source);
      }
      claim_.dirty = true;
      to.dirty = true;
      return candidate;
    }
    if (reason) {
      drop_reason(to, candidate);
    }
    if (error == EEXIST) {
      continue;
    }
    if (error == EXDEV) {
      return copy_across(to, name, reason);
    }
    throw errno_error("rename " + name + " into " + to.path.string(), error);
  }
  throw errno_error("rename " + name + " into " + to.path.string() + ": no free name", EEXIST);
}

std::string FileMover::copy_across(Dir& to, const std::string& name,
                                   std::optional<std::string_view> reason) {
  // Copied from the claimed file, and only the claimed name is unlinked: a new file under the
  // name in the inbox is another file.
  const std::string source = (claim_.path / name).string();
  int in_fd =
      openat_retrying(claim_.fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (in_fd < 0) {
    throw errno_error("open " + name, errno == ELOOP ? EXDEV : errno);
  }
  const UniqueFd in(in_fd);
  struct stat st {};
  if (::fstat(in.get(), &st) != 0) {
    throw errno_error("fstat " + name);
  }
  if (!S_ISREG(st.st_mode)) {
    throw errno_error("move " + name + " to another file system", EXDEV);
  }
  // Copy under a dot name (never taken for a result), sync, then link it to a free final name: a
  // crash leaves at worst a stray dot file, and the inbox copy stays until the end.
  const std::string temp(kCopyTemp);
  ::unlinkat(to.fd, temp.c_str(), 0);
  int out_fd = openat_retrying(to.fd, temp.c_str(),
                               O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (out_fd < 0) {
    throw errno_error("create " + (to.path / temp).string());
  }
  {
    const UniqueFd out(out_fd);
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
  const std::size_t reserve = reason ? kReasonSuffix.size() : 0;
  for (unsigned attempt = first_attempt(name, reason); attempt < kMaxAttempts; ++attempt) {
    std::string candidate = numbered_name(name, attempt, reserve);
    if (reason && !place_reason(to, candidate, *reason)) {
      continue;
    }
    if (::linkat(to.fd, temp.c_str(), to.fd, candidate.c_str(), 0) == 0) {
      ::unlinkat(to.fd, temp.c_str(), 0);
      if (::fsync(to.fd) != 0) {
        throw errno_error("fsync " + to.path.string());
      }
      // The copy is durable before the original goes.
      if (::unlinkat(claim_.fd, name.c_str(), 0) != 0) {
        throw errno_error("unlink " + source);
      }
      claim_.dirty = true;
      return candidate;
    }
    const int error = errno;
    if (reason) {
      drop_reason(to, candidate);
    }
    if (error != EEXIST) {
      ::unlinkat(to.fd, temp.c_str(), 0);
      throw errno_error("link " + candidate + " in " + to.path.string(), error);
    }
  }
  ::unlinkat(to.fd, temp.c_str(), 0);
  throw errno_error("copy " + name + " into " + to.path.string() + ": no free name", EEXIST);
}

void FileMover::sync() {
  for (Dir* d : {&processed_, &failed_, &claim_}) {
    if (d->dirty) {
      if (::fsync(d->fd) != 0) {
        throw errno_error("fsync " + d->path.string());
      }
      d->dirty = false;
    }
  }
  if (inbox_.dirty) {
    const UniqueFd inbox(open_dir(inbox_.path));
    if (::fsync(inbox.get()) != 0) {
      throw errno_error("fsync " + inbox_.path.string());
    }
    inbox_.dirty = false;
  }
}

}  // namespace labwatch::daemon
