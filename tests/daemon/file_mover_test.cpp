// SPDX-License-Identifier: Apache-2.0
// FileMover: moves that never overwrite, reason files, the copy across file systems.
#include "daemon/file_mover.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <string>

#include "support/daemon_harness.hpp"

namespace {

using labwatch::daemon::FileMover;
using labwatch::daemon::numbered_name;
using namespace labwatch::test;

struct Dirs {
  explicit Dirs(const fs::path& base, const fs::path& other_base = {})
      : root(base), other(other_base.empty() ? base : other_base) {
    fs::create_directory(inbox());
    fs::create_directory(processed());
    fs::create_directory(failed());
  }
  [[nodiscard]] fs::path inbox() const { return root.path() / "inbox"; }
  [[nodiscard]] fs::path processed() const { return other.path() / "processed"; }
  [[nodiscard]] fs::path failed() const { return other.path() / "failed"; }
  TempDir root;
  TempDir other;
};

dev_t device_of(const fs::path& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_dev : 0;
}

}  // namespace

TEST_CASE("numbered_name puts the number before the extension", "[daemon][mover]") {
  CHECK(numbered_name("a_qdx_01.hl7", 0) == "a_qdx_01.hl7");
  CHECK(numbered_name("a_qdx_01.hl7", 1) == "a_qdx_01.1.hl7");
  CHECK(numbered_name("a_qdx_01.hl7", 12) == "a_qdx_01.12.hl7");
  CHECK(numbered_name("export.tar.gz", 2) == "export.tar.2.gz");
  CHECK(numbered_name("README", 3) == "README.3");
  CHECK(numbered_name(".profile", 1) == ".profile.1");
}

TEST_CASE("FileMover::to_processed never replaces a file and numbers a taken name",
          "[daemon][mover]") {
  const Dirs d(TempDir::default_base());
  FileMover mover(d.inbox(), d.processed(), d.failed());
  write_file(d.inbox() / "r.hl7", "first");
  CHECK(mover.to_processed("r.hl7") == "r.hl7");
  write_file(d.inbox() / "r.hl7", "second");
  CHECK(mover.to_processed("r.hl7") == "r.1.hl7");
  write_file(d.inbox() / "r.hl7", "third");
  CHECK(mover.to_processed("r.hl7") == "r.2.hl7");
  CHECK(read_file(d.processed() / "r.hl7") == "first");
  CHECK(read_file(d.processed() / "r.1.hl7") == "second");
  CHECK(read_file(d.processed() / "r.2.hl7") == "third");
  CHECK(count_entries(d.inbox()) == 0);
  CHECK(mover.dirty());
  mover.sync();
  CHECK_FALSE(mover.dirty());
}

TEST_CASE("FileMover::to_failed writes a reason file beside the file, both under a free name",
          "[daemon][mover]") {
  const Dirs d(TempDir::default_base());
  FileMover mover(d.inbox(), d.processed(), d.failed());
  write_file(d.failed() / "bad.csv", "earlier");
  write_file(d.failed() / "bad.csv.reason.txt", "earlier reason");
  write_file(d.inbox() / "bad.csv", "x;y");
  CHECK(mover.to_failed("bad.csv", "refused (1):\n- missing_columns\n") == "bad.1.csv");
  CHECK(read_file(d.failed() / "bad.1.csv") == "x;y");
  CHECK(read_file(d.failed() / "bad.1.csv.reason.txt") == "refused (1):\n- missing_columns\n");
  CHECK(read_file(d.failed() / "bad.csv") == "earlier");
  CHECK(read_file(d.failed() / "bad.csv.reason.txt") == "earlier reason");
  CHECK(count_entries(d.failed()) == 4);  // no temporary file left behind
  struct stat st {};
  REQUIRE(::stat((d.failed() / "bad.1.csv.reason.txt").c_str(), &st) == 0);
  CHECK((st.st_mode & 0077) == 0);
}

TEST_CASE("FileMover::to_failed replaces the orphan reason file a crash left for the same name",
          "[daemon][mover]") {
  // The reason file is placed before the file moves: a crash between the two leaves the file in
  // the inbox and its reason alone in failed/. The next attempt takes the same name.
  const Dirs d(TempDir::default_base());
  FileMover mover(d.inbox(), d.processed(), d.failed());
  write_file(d.failed() / "bad.csv.reason.txt", "written before the crash");
  write_file(d.inbox() / "bad.csv", "x;y");
  CHECK(mover.to_failed("bad.csv", "refused (1):\n- bad_date\n") == "bad.csv");
  CHECK(read_file(d.failed() / "bad.csv") == "x;y");
  CHECK(read_file(d.failed() / "bad.csv.reason.txt") == "refused (1):\n- bad_date\n");
  CHECK(count_entries(d.failed()) == 2);
}

TEST_CASE("FileMover::to_failed never gives a refused file a name ending in .reason.txt",
          "[daemon][mover]") {
  // Otherwise a later file "b" would take "b.reason.txt" for its reason and replace that file.
  const Dirs d(TempDir::default_base());
  FileMover mover(d.inbox(), d.processed(), d.failed());
  write_file(d.inbox() / "b.reason.txt", "a refused lab file");
  CHECK(mover.to_failed("b.reason.txt", "first\n") == "b.reason.1.txt");
  write_file(d.inbox() / "b", "another refused file");
  CHECK(mover.to_failed("b", "second\n") == "b");
  CHECK(read_file(d.failed() / "b.reason.1.txt") == "a refused lab file");
  CHECK(read_file(d.failed() / "b.reason.1.txt.reason.txt") == "first\n");
  CHECK(read_file(d.failed() / "b") == "another refused file");
  CHECK(read_file(d.failed() / "b.reason.txt") == "second\n");
}

TEST_CASE("FileMover::to_failed leaves no reason file when the file is gone", "[daemon][mover]") {
  const Dirs d(TempDir::default_base());
  FileMover mover(d.inbox(), d.processed(), d.failed());
  CHECK_THROWS_AS(mover.to_failed("gone.hl7", "refused\n"), std::system_error);
  CHECK(count_entries(d.failed()) == 0);
}

TEST_CASE("numbered_name shortens a name that would pass the 255-byte limit", "[daemon][mover]") {
  const std::string stem(251, 'a');
  const std::string name = stem + ".hl7";  // 255 bytes: the longest name a file system takes
  CHECK(numbered_name(name, 0) == name);
  const std::string failed = numbered_name(name, 0, std::string_view(".reason.txt").size());
  CHECK(failed.size() == 244);
  CHECK(failed == std::string(240, 'a') + ".hl7");
  CHECK(numbered_name(name, 7) == std::string(249, 'a') + ".7.hl7");
  CHECK(numbered_name(name, 7).size() == 255);
  // A multi-byte character is never cut: "é" is 2 bytes, so the stem loses it whole.
  const std::string accented = std::string(250, 'b') + "\xC3\xA9" + ".hl7";  // 256 bytes
  CHECK(numbered_name(accented, 0) == std::string(250, 'b') + ".hl7");
  // An extension too long to keep: the whole name is cut instead.
  const std::string long_extension = "a." + std::string(260, 'x');
  CHECK(numbered_name(long_extension, 1) == long_extension.substr(0, 253) + ".1");
}

TEST_CASE("FileMover moves a 255-byte name into failed/ beside its reason file",
          "[daemon][mover]") {
  const Dirs d(TempDir::default_base());
  FileMover mover(d.inbox(), d.processed(), d.failed());
  const std::string name = std::string(251, 'n') + ".csv";
  write_file(d.inbox() / name, "x;y");
  const std::string moved = mover.to_failed(name, "refused\n").value();
  CHECK(moved == std::string(240, 'n') + ".csv");
  CHECK(read_file(d.failed() / moved) == "x;y");
  CHECK(read_file(d.failed() / (moved + ".reason.txt")) == "refused\n");
  write_file(d.inbox() / name, "second");
  CHECK(mover.to_processed(name) == name);
  write_file(d.inbox() / name, "third");
  CHECK(mover.to_processed(name) == std::string(249, 'n') + ".1.csv");
  CHECK(count_entries(d.inbox()) == 0);
}

TEST_CASE("FileMover moves a symlink itself, not its target", "[daemon][mover]") {
  const Dirs d(TempDir::default_base());
  FileMover mover(d.inbox(), d.processed(), d.failed());
  write_file(d.root.path() / "target", "outside");
  fs::create_symlink(d.root.path() / "target", d.inbox() / "link.hl7");
  CHECK(mover.to_failed("link.hl7", "symlink\n") == "link.hl7");
  CHECK(fs::is_symlink(d.failed() / "link.hl7"));
  CHECK(read_file(d.root.path() / "target") == "outside");
}

TEST_CASE("FileMover reports a vanished file as ENOENT", "[daemon][mover]") {
  const Dirs d(TempDir::default_base());
  FileMover mover(d.inbox(), d.processed(), d.failed());
  try {
    mover.to_processed("missing.hl7");
    FAIL("no exception");
  } catch (const std::system_error& e) {
    CHECK(e.code() == std::errc::no_such_file_or_directory);
  }
  CHECK(count_entries(d.processed()) == 0);
}

TEST_CASE("FileMover copies a regular file to another file system and removes the original",
          "[daemon][mover]") {
  const fs::path disk = TempDir::default_base();
  const fs::path ram = TempDir::fast_base();
  if (device_of(disk) == device_of(ram)) {
    WARN("no second file system here (" << disk << ", " << ram << "); copy path not exercised");
    return;
  }
  const Dirs d(disk, ram);
  FileMover mover(d.inbox(), d.processed(), d.failed());
  write_file(d.processed() / "x.csv", "taken");
  const std::string big(300'000, 'z');  // more than one copy buffer
  write_file(d.inbox() / "x.csv", big);
  CHECK(mover.to_processed("x.csv") == "x.1.csv");
  CHECK(read_file(d.processed() / "x.1.csv") == big);
  CHECK(read_file(d.processed() / "x.csv") == "taken");
  CHECK_FALSE(fs::exists(d.inbox() / "x.csv"));
  CHECK(count_entries(d.processed()) == 2);  // no temporary copy left behind

  // A FIFO cannot be copied: EXDEV, and it stays where it is.
  REQUIRE(::mkfifo((d.inbox() / "pipe.hl7").c_str(), 0600) == 0);
  try {
    mover.to_failed("pipe.hl7", "fifo\n");
    FAIL("no exception");
  } catch (const std::system_error& e) {
    CHECK(e.code() == std::errc::cross_device_link);
  }
  CHECK(fs::is_fifo(d.inbox() / "pipe.hl7"));
}

TEST_CASE("FileMover moves only the file that was read; another put under its name goes back",
          "[daemon][mover]") {
  const Dirs d(TempDir::default_base());
  FileMover mover(d.inbox(), d.processed(), d.failed());
  const auto identity = [&](const std::string& name) {
    struct stat st {};
    REQUIRE(::lstat((d.inbox() / name).c_str(), &st) == 0);
    return labwatch::daemon::identity_of(st);
  };
  write_file(d.inbox() / "r.hl7", "read");
  const labwatch::daemon::FileIdentity read = identity("r.hl7");
  SECTION("replaced under the same name") {
    write_file(d.inbox() / "new.part", "a new file");
    fs::rename(d.inbox() / "new.part", d.inbox() / "r.hl7");
    CHECK_FALSE(mover.to_processed("r.hl7", read).has_value());
    CHECK_FALSE(mover.to_failed("r.hl7", "refused\n", read).has_value());
    CHECK(read_file(d.inbox() / "r.hl7") == "a new file");
    CHECK(count_entries(d.processed()) == 0);
    CHECK(count_entries(d.failed()) == 0);
    CHECK(fs::is_empty(d.inbox() / ".labwatch-claim"));
    CHECK(mover.to_processed("r.hl7", identity("r.hl7")) == "r.hl7");
    CHECK(read_file(d.processed() / "r.hl7") == "a new file");
  }
  SECTION("appended to in place") {
    write_file(d.inbox() / "r.hl7", " and more", O_APPEND);
    CHECK_FALSE(mover.to_processed("r.hl7", read).has_value());
    CHECK(read_file(d.inbox() / "r.hl7") == "read and more");
  }
  SECTION("unchanged") {
    CHECK(mover.to_processed("r.hl7", read) == "r.hl7");
    CHECK(read_file(d.processed() / "r.hl7") == "read");
  }
  CHECK(fs::is_empty(d.inbox() / ".labwatch-claim"));
}

TEST_CASE("FileMover returns what a crash left in its claim directory to the inbox",
          "[daemon][mover]") {
  const Dirs d(TempDir::default_base());
  fs::create_directory(d.inbox() / ".labwatch-claim");
  write_file(d.inbox() / ".labwatch-claim" / "a.csv", "claimed");
  write_file(d.inbox() / ".labwatch-claim" / "b.csv", "claimed b");
  write_file(d.inbox() / "b.csv", "a new b");
  const FileMover mover(d.inbox(), d.processed(), d.failed());
  CHECK(read_file(d.inbox() / "a.csv") == "claimed");
  CHECK(read_file(d.inbox() / "b.csv") == "a new b");
  CHECK(read_file(d.inbox() / "b.1.csv") == "claimed b");
  CHECK(fs::is_empty(d.inbox() / ".labwatch-claim"));
}
