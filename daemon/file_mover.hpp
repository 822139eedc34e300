// SPDX-License-Identifier: Apache-2.0
// FileMover: moves an ingested file out of the inbox into processed/ or failed/, never overwriting.
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "ingest/claimed_file.hpp"

namespace labwatch::daemon {

// The name a taken `name` gets on its `attempt`-th retry: "a.hl7" -> "a.1.hl7", "README" ->
// "README.1". Attempt 0 is the name itself. The result leaves `reserve` bytes free under the
// 255-byte limit of a file name (for a suffix such as ".reason.txt"): a longer name loses the end
// of its stem (at a UTF-8 character boundary), keeping its extension.
std::string numbered_name(std::string_view name, unsigned attempt, std::size_t reserve = 0);

// The inbox's private claim directory: a dot name, so the watcher never reports it.
inline constexpr std::string_view kClaimDir = ".labwatch-claim";

// Moves entries out of the inbox (processed/ and failed/ are held open). Each entry is first
// claimed: renamed into the inbox's claim directory (same file system), where no producer puts a
// file, and checked to be the file that was read; only the claimed name moves on. A move is a
// rename (RENAME_NOREPLACE), so an existing file is never replaced; a taken name gets a numeric
// suffix. Across file systems the claimed file is copied, synced and then its claimed name
// unlinked. Not thread-safe.
class FileMover {
 public:
  // Opens processed/ and failed/, creates the claim directory (0700) and returns into the inbox
  // whatever a crash left claimed. Throws std::system_error("open DIR").
  FileMover(const std::filesystem::path& inbox, const std::filesystem::path& processed,
            const std::filesystem::path& failed);
  ~FileMover();
  FileMover(const FileMover&) = delete;
  FileMover& operator=(const FileMover&) = delete;
  FileMover(FileMover&&) = delete;
  FileMover& operator=(FileMover&&) = delete;

  // Moves inbox/`name` into processed/ and returns the name it got there. With `read`, only that
  // file, unchanged: an entry that is another file (a producer put a new one under the name after
  // it was read) or that changed goes back to the inbox, unread, and nullopt is returned. Throws
  // std::system_error naming the call (the entry is back in the inbox): ENOENT when it is gone,
  // EXDEV for a non-regular entry that would have to cross file systems.
  std::optional<std::string> to_processed(const std::string& name,
                                          const std::optional<FileIdentity>& read = {});
  // Moves inbox/`name` into failed/ beside `<new name>.reason.txt` holding `reason`. The reason
  // file is written, synced and in place before the file moves, so a crash between the two leaves
  // the file in the inbox (to be read again) and never a failed file without its reason. Returns
  // the new name, or nullopt like to_processed. Throws like to_processed.
  std::optional<std::string> to_failed(const std::string& name, std::string_view reason,
                                       const std::optional<FileIdentity>& read = {});

  // Makes the moves since the last call durable: fsync of each directory they changed. Moves are
  // idempotent after a crash (the file reappears in the inbox and is recognized by its hash), so
  // callers may batch this. Throws std::system_error("fsync DIR").
  void sync();
  [[nodiscard]] bool dirty() const noexcept {
    return inbox_.dirty || claim_.dirty || processed_.dirty || failed_.dirty;
  }

 private:
  struct Dir {
    std::filesystem::path path;
    int fd = -1;
    bool dirty = false;
  };

  // Renames inbox/`name` into the claim directory; true when it is `read` (or no check was asked
  // for), else it went back to the inbox.
  bool claim(const std::string& name, const std::optional<FileIdentity>& read);
  // Returns claimed `name` to the inbox, under a free name; throws std::system_error.
  void unclaim(const std::string& name);
  // Claims, then moves on; a failure returns the claimed entry to the inbox first.
  std::optional<std::string> claim_and_move(Dir& to, const std::string& name,
                                            std::optional<std::string_view> reason,
                                            const std::optional<FileIdentity>& read);
  // `reason`: a failed file's reason text, placed beside it first.
  std::string move(Dir& to, const std::string& name, std::optional<std::string_view> reason);
  std::string copy_across(Dir& to, const std::string& name, std::optional<std::string_view> reason);
  // Writes `candidate`.reason.txt unless `candidate` is taken (then false).
  static bool place_reason(Dir& dir, const std::string& candidate, std::string_view reason);
  static void drop_reason(Dir& dir, const std::string& candidate);

  Dir inbox_;
  Dir claim_;
  Dir processed_;
  Dir failed_;
};

}  // namespace labwatch::daemon
