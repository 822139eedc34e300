// SPDX-License-Identifier: Apache-2.0
// FolderWatcher: inotify events -> settle bookkeeping -> "this file is complete" callbacks.
#include "daemon/folder_watcher.hpp"

#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/system/system_error.hpp>
#include <cerrno>
#include <cstring>
#include <utility>

#include "ingest/claimed_file.hpp"
#include "os/log.hpp"

namespace labwatch::daemon {
namespace {

// IN_Q_OVERFLOW and IN_IGNORED are always reported; IN_ONLYDIR refuses to watch a non-directory.
// The self events end the watch: a renamed or deleted inbox no longer receives files at its path.
// No descriptor of the directory is held open, or a deletion would go unnoticed until it closed.
// IN_CREATE: a file published by link(2) or linkat(2) of an O_TMPFILE gets no other event.
constexpr std::uint32_t kWatchMask =
    IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;

bool ends_with_nocase(std::string_view name, std::string_view suffix) noexcept {
  if (name.size() < suffix.size()) {
    return false;
  }
  const std::string_view tail = name.substr(name.size() - suffix.size());
  return std::equal(tail.begin(), tail.end(), suffix.begin(), [](char a, char b) {
    return (a >= 'A' && a <= 'Z' ? static_cast<char>(a - 'A' + 'a') : a) == b;
  });
}

std::system_error errno_error(const std::string& what) {
  return {errno, std::generic_category(), what};
}

// Wall-clock age of a modification time; negative when the mtime lies in the future.
std::chrono::nanoseconds age_of(const std::timespec& mtime) {
  std::timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  return std::chrono::seconds(now.tv_sec - mtime.tv_sec) +
         std::chrono::nanoseconds(now.tv_nsec - mtime.tv_nsec);
}

}  // namespace

bool is_ignored_name(std::string_view name) noexcept {
  return name.empty() || name.front() == '.' || ends_with_nocase(name, ".tmp") ||
         ends_with_nocase(name, ".part");
}

bool FolderWatcher::Snapshot::operator==(const Snapshot& other) const noexcept {
  return ino == other.ino && size == other.size && mtime.tv_sec == other.mtime.tv_sec &&
         mtime.tv_nsec == other.mtime.tv_nsec && regular == other.regular;
}

bool FolderWatcher::Due::operator>(const Due& other) const noexcept {
  return at != other.at ? at > other.at : name > other.name;
}

FolderWatcher::FolderWatcher(boost::asio::io_context& io, std::filesystem::path dir,
                             std::chrono::milliseconds settle, Handlers handlers)
    : inotify_(io),
      timer_(io),
      dir_(std::move(dir)),
      settle_(settle),
      handlers_(std::move(handlers)) {}

FolderWatcher::~FolderWatcher() { close(); }

void FolderWatcher::start() {
  const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) {
    throw errno_error("inotify_init1");
  }
  try {
    inotify_.assign(fd);
  } catch (...) {
    ::close(fd);
    throw;
  }
  watch_ = ::inotify_add_watch(fd, dir_.c_str(), kWatchMask);
  if (watch_ < 0) {
    throw errno_error("inotify_add_watch " + dir_.string());
  }
  read_events();
}

void FolderWatcher::close() noexcept {
  if (closed_) {
    return;
  }
  closed_ = true;
  boost::system::error_code ignored;
  inotify_.close(ignored);  // closing the inotify fd also removes its watch
  try {
    timer_.cancel();
  } catch (const boost::system::system_error& e) {
    log::warning(std::string("settle timer: ") + e.what());
  }
  pending_.clear();
  due_ = {};
}

void FolderWatcher::read_events() {
  inotify_.async_read_some(
      boost::asio::buffer(buffer_), [this, alive = std::weak_ptr<char>(alive_)](
                                        const boost::system::error_code& ec, std::size_t bytes) {
        if (alive.expired() || ec == boost::asio::error::operation_aborted || closed_) {
          return;
        }
        if (ec) {
          log::error("inotify read on " + dir_.string() + ": " + ec.message());
          handlers_.lost(std::error_code(ec.value(), std::generic_category()));
          return;
        }
        on_events(bytes);
        if (!closed_) {
          read_events();
        }
      });
}

void FolderWatcher::on_events(std::size_t bytes) {
  bool overflow = false;
  bool lost = false;
  std::vector<std::string> ready;
  const Clock::time_point due = Clock::now() + settle_;
  std::size_t offset = 0;
  // Records are variable length (header + NUL-padded name). The kernel never splits one across
  // reads; the bounds are checked anyway before every copy.
  while (bytes - offset >= sizeof(inotify_event)) {
    inotify_event event{};
    std::memcpy(&event, buffer_.data() + offset, sizeof event);
    const std::size_t record = sizeof(inotify_event) + event.len;
    if (record > bytes - offset) {
      log::error("inotify: truncated event record; rescanning");
      overflow = true;
      break;
    }
    std::string_view name(buffer_.data() + offset + sizeof(inotify_event), event.len);
    name = name.substr(0, std::min(name.find('\0'), name.size()));
    offset += record;

    if ((event.mask & IN_Q_OVERFLOW) != 0) {
      overflow = true;
      continue;
    }
    if ((event.mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)) != 0 && event.wd == watch_) {
      lost = true;  // the directory was deleted, renamed or its file system unmounted
      continue;
    }
    if (event.wd != watch_ || is_ignored_name(name)) {
      continue;
    }
    std::string key(name);
    if ((event.mask & IN_MOVED_TO) != 0) {
      // Renamed in: complete by construction.
      pending_.erase(key);
      ready.push_back(std::move(key));
    } else if ((event.mask & IN_CLOSE_WRITE) != 0) {
      // Closed after writing; a writer may reopen it, so it must stay unchanged for the settle
      // time. Seen again while settling: the new snapshot and due time replace the old ones.
      Snapshot s;
      if (snapshot(key, s)) {
        track(key, s, due);
      } else {
        pending_.erase(key);
      }
    } else if ((event.mask & IN_CREATE) != 0 && (event.mask & IN_ISDIR) == 0) {
      // Created or linked in: a regular file settles like one closed after writing (its writer,
      // if any, closes it later: IN_CLOSE_WRITE starts the settle time again). Other entries wait
      // for a scan: a FIFO or device is never waited on.
      Snapshot s;
      if (snapshot(key, s) && s.regular) {
        track(key, s, due, /*confirm=*/true);
      }
    }
  }
  arm_timer();
  for (const std::string& name : ready) {
    if (closed_) {
      return;
    }
    handlers_.ready(name);
  }
  if (lost && !closed_) {
    handlers_.lost(std::make_error_code(std::errc::no_such_file_or_directory));
    return;
  }
  if (overflow && !closed_) {
    handlers_.overflow();
  }
}

std::vector<std::string> FolderWatcher::scan() {
  // The watch comes first (start): a file that arrives during the scan is then reported by an
  // event, by the scan, or by both, and the caller tolerates duplicates.
  std::vector<std::string> names;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (!is_ignored_name(name) && !pending_.contains(name)) {
      names.push_back(std::move(name));
    }
  }
  if (ec) {
    throw std::system_error(ec, "scan " + dir_.string());
  }
  std::sort(names.begin(), names.end());

  std::vector<std::string> ready;
  const Clock::time_point now = Clock::now();
  for (std::string& name : names) {
    Snapshot s;
    if (!snapshot(name, s)) {
      continue;  // gone since it was listed
    }
    // A regular file counts as settled when its mtime is at least the settle time old; a younger
    // one (or one dated in the future) may still be in the middle of being written. An old one
    // may have a stalled writer: it is taken only when no process holds it open for writing, or,
    // where that cannot be asked, once it stayed unchanged for one more settle time.
    const std::chrono::nanoseconds age = age_of(s.mtime);
    if (s.regular && age < settle_) {
      const auto wait =
          std::clamp<std::chrono::nanoseconds>(settle_ - age, std::chrono::nanoseconds(0), settle_);
      track(name, s, now + std::chrono::duration_cast<Clock::duration>(wait));
    } else if (s.regular && open_writers(dir_ / name) != Writers::none) {
      track(name, s, now + settle_);
    } else {
      ready.push_back(std::move(name));
    }
  }
  arm_timer();
  return ready;
}

void FolderWatcher::settle(const std::string& name) {
  Snapshot s;
  if (!closed_ && snapshot(name, s)) {
    track(name, s, Clock::now() + settle_);
    arm_timer();
  }
}

void FolderWatcher::track(const std::string& name, const Snapshot& snapshot, Clock::time_point due,
                          bool confirm) {
  Pending& p = pending_[name];
  p.snapshot = snapshot;
  p.generation = ++generation_;
  p.confirm = confirm;
  due_.push(Due{due, name, p.generation});
}

void FolderWatcher::arm_timer() {
  // Drop queue entries superseded by a later event, then wake up for the earliest live one. The
  // timer is re-armed only when that moves earlier, so a burst of events costs no timer churn.
  while (!due_.empty()) {
    const auto it = pending_.find(due_.top().name);
    if (it != pending_.end() && it->second.generation == due_.top().generation) {
      break;
    }
    due_.pop();
  }
  if (closed_ || due_.empty() || due_.top().at >= armed_for_) {
    return;
  }
  armed_for_ = due_.top().at;
  timer_.expires_at(armed_for_);
  timer_.async_wait(
      [this, alive = std::weak_ptr<char>(alive_)](const boost::system::error_code& ec) {
        if (alive.expired() || ec == boost::asio::error::operation_aborted || closed_) {
          return;
        }
        armed_for_ = Clock::time_point::max();
        on_timer();
      });
}

void FolderWatcher::on_timer() {
  const Clock::time_point now = Clock::now();
  std::vector<std::string> ready;
  while (!due_.empty() && due_.top().at <= now) {
    Due due = due_.top();
    due_.pop();
    const auto it = pending_.find(due.name);
    if (it == pending_.end() || it->second.generation != due.generation) {
      continue;  // superseded by a later event, or already reported
    }
    Snapshot s;
    if (!snapshot(due.name, s)) {
      pending_.erase(it);
    } else if (s == it->second.snapshot) {
      const Writers writers = s.regular ? open_writers(dir_ / due.name) : Writers::none;
      if (writers == Writers::some) {
        // Unchanged, but a writer still holds it open (stalled, or about to write more).
        track(due.name, s, now + settle_, it->second.confirm);
      } else if (writers == Writers::unknown && it->second.confirm) {
        track(due.name, s, now + settle_);  // no way to ask: one more quiet settle time
      } else {
        pending_.erase(it);
        ready.push_back(std::move(due.name));
      }
    } else {
      // Still changing: somebody is writing it. Start the settle time over.
      track(due.name, s, now + settle_);
    }
  }
  arm_timer();
  for (const std::string& name : ready) {
    if (closed_) {
      return;
    }
    handlers_.ready(name);
  }
}

bool FolderWatcher::snapshot(const std::string& name, Snapshot& out) const {
  struct stat st {};
  if (::lstat((dir_ / name).c_str(), &st) != 0) {
    return false;
  }
  out.ino = st.st_ino;
  out.size = st.st_size;
  out.mtime = st.st_mtim;
  out.regular = S_ISREG(st.st_mode);
  return true;
}

}  // namespace labwatch::daemon
