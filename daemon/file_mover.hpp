// SPDX-License-Identifier: Apache-2.0
// FileMover: moves an ingested file out of the inbox into processed/ or failed/, never overwriting.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace labwatch::daemon {

// The name a taken `name` gets on its `attempt`-th retry: "a.hl7" -> "a.1.hl7", "README" ->
// "README.1". Attempt 0 is the name itself.
std::string numbered_name(std::string_view name, unsigned attempt);

// Moves entries out of the inbox by name (processed/ and failed/ are held open). A move is a rename
// (RENAME_NOREPLACE), so an existing file is never replaced; a taken name gets a numeric suffix.
// Across file systems a regular file is copied, synced and then unlinked. Not thread-safe.
class FileMover {
 public:
  // Opens processed/ and failed/. Throws std::system_error("open DIR").
  FileMover(const std::filesystem::path& inbox, const std::filesystem::path& processed,
            const std::filesystem::path& failed);
  ~FileMover();
  FileMover(const FileMover&) = delete;
  FileMover& operator=(const FileMover&) = delete;
  FileMover(FileMover&&) = delete;
  FileMover& operator=(FileMover&&) = delete;

  // Moves inbox/`name` into processed/ and returns the name it got there. Throws std::system_error
  // naming the call: ENOENT when the entry is gone, EXDEV for a non-regular entry that would have
  // to cross file systems.
  std::string to_processed(const std::string& name);
  // Moves inbox/`name` into failed/, then writes `<new name>.reason.txt` beside it holding `reason`
  // (synced). Returns the new name. Throws like to_processed.
  std::string to_failed(const std::string& name, std::string_view reason);

  // Makes the moves since the last call durable: fsync of each directory they changed. Moves are
  // idempotent after a crash (the file reappears in the inbox and is recognized by its hash), so
  // callers may batch this. Throws std::system_error("fsync DIR").
  void sync();
  [[nodiscard]] bool dirty() const noexcept {
    return inbox_.dirty || processed_.dirty || failed_.dirty;
  }

 private:
  struct Dir {
    std::filesystem::path path;
    int fd = -1;
    bool dirty = false;
  };

  std::string move(Dir& to, const std::string& name, std::string_view reason_suffix);
  std::string copy_across(Dir& to, const std::string& name, std::string_view reason_suffix);
  bool name_free(const Dir& dir, const std::string& candidate,
                 std::string_view reason_suffix) const;

  Dir inbox_;
  Dir processed_;
  Dir failed_;
};

}  // namespace labwatch::daemon
