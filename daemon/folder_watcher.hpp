// SPDX-License-Identifier: Apache-2.0
// FolderWatcher: inotify on the inbox through Asio; reports each file once it is complete.
#pragma once

#include <sys/types.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <functional>
#include <memory>
#include <queue>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <vector>

namespace labwatch::daemon {

// True for names the daemon never touches: dotfiles and producers' temporary names (*.tmp, *.part,
// any letter case).
bool is_ignored_name(std::string_view name) noexcept;

// Watches one directory (not its subdirectories) for files that are complete: renamed in
// (IN_MOVED_TO), or closed after writing (IN_CLOSE_WRITE) or linked in (IN_CREATE: a hard link, an
// O_TMPFILE published with linkat) and then unchanged in size and mtime for the settle time. A
// file that settled is reported only once no process holds it open for writing (open_writers);
// where the kernel cannot tell, a file created in place or found by a scan must stay unchanged for
// one more settle time. Never reads a file. Single-threaded: handlers run on the io_context's
// thread.
class FolderWatcher {
 public:
  using Clock = std::chrono::steady_clock;

  struct Handlers {
    std::function<void(const std::string& name)> ready;  // a file is complete: process it now
    std::function<void()> overflow;                      // events were lost: rescan the directory
    std::function<void(std::error_code)> lost;  // the watch ended (directory gone, read error)
  };

  FolderWatcher(boost::asio::io_context& io, std::filesystem::path dir,
                std::chrono::milliseconds settle, Handlers handlers);
  ~FolderWatcher();
  FolderWatcher(const FolderWatcher&) = delete;
  FolderWatcher& operator=(const FolderWatcher&) = delete;
  FolderWatcher(FolderWatcher&&) = delete;
  FolderWatcher& operator=(FolderWatcher&&) = delete;

  // Adds the inotify watch and starts reading events. Throws std::system_error naming the call
  // (inotify_init1, inotify_add_watch, open).
  void start();
  // Stops reading and drops files still settling. Idempotent; no handler is called afterwards.
  void close() noexcept;

  // Lists the directory. Returns the names to process now, sorted; a regular file modified less
  // than the settle time ago, or held open for writing, waits to settle and is reported through
  // `ready` later. Ignored names and files already settling are skipped. Throws
  // std::system_error("scan DIR") when unreadable.
  std::vector<std::string> scan();
  // Treats `name` as just closed after writing: it is reported once it has settled.
  void settle(const std::string& name);
  void set_settle_time(std::chrono::milliseconds settle) noexcept { settle_ = settle; }

  // Files waiting to settle.
  [[nodiscard]] std::size_t settling() const noexcept { return pending_.size(); }
  [[nodiscard]] const std::filesystem::path& dir() const noexcept { return dir_; }

 private:
  // What "unchanged" compares: the same inode with the same size and modification time.
  struct Snapshot {
    ino_t ino = 0;
    off_t size = 0;
    std::timespec mtime{};
    bool regular = false;
    bool operator==(const Snapshot& other) const noexcept;
  };
  struct Pending {
    Snapshot snapshot;
    std::uint64_t generation = 0;
    // Created in place or found by a scan: where writers cannot be asked about, one more settle
    // time must pass unchanged.
    bool confirm = false;
  };
  struct Due {
    Clock::time_point at;
    std::string name;
    std::uint64_t generation = 0;
    bool operator>(const Due& other) const noexcept;
  };

  void read_events();
  void on_events(std::size_t bytes);
  void track(const std::string& name, const Snapshot& snapshot, Clock::time_point due,
             bool confirm = false);
  void arm_timer();
  void on_timer();
  bool snapshot(const std::string& name, Snapshot& out) const;

  boost::asio::posix::stream_descriptor inotify_;
  boost::asio::steady_timer timer_;
  std::filesystem::path dir_;
  std::chrono::milliseconds settle_;
  Handlers handlers_;
  int watch_ = -1;
  bool closed_ = false;
  // Completion handlers hold a weak reference: one already queued when the watcher is destroyed
  // (a read or timer that completed just before close) must not touch it.
  std::shared_ptr<char> alive_ = std::make_shared<char>('\0');
  std::array<char, std::size_t{64} * 1024>
      buffer_{};  // records are copied out with memcpy: no alignment needed

  std::unordered_map<std::string, Pending> pending_;
  std::priority_queue<Due, std::vector<Due>, std::greater<>> due_;
  std::uint64_t generation_ = 0;
  Clock::time_point armed_for_ = Clock::time_point::max();
};

}  // namespace labwatch::daemon
