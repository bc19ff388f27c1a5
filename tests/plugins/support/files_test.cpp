#include "flotilla/support/files.hpp"

#include "support/process_util.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <fstream>
#include <optional>
#include <thread>
#include <system_error>
#include <vector>

namespace s = flotilla::support;
namespace fs = std::filesystem;
using flotilla::test::proc::ScratchDir;

namespace {
void append(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary | std::ios::app);
  out << text;
}
}  // namespace

TEST_CASE("write_file_atomic replaces the file whole, with the mode asked for, and leaves no temp file", "[support][files]") {
  ScratchDir dir("flotilla-support-files");
  const fs::path file = dir.path() / "state.json";
  s::write_file_atomic(file, "first", 0600);
  CHECK(s::read_file(file) == "first");
  s::write_file_atomic(file, std::string("second\0binary", 13), 0640);
  CHECK(s::read_file(file) == std::string("second\0binary", 13));
  struct stat st {};
  REQUIRE(::stat(file.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0640);
  int entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir.path())) ++entries;
  CHECK(entries == 1);
}

TEST_CASE("write_file_atomic can keep its temporary file out of the target's directory", "[support][files]") {
  ScratchDir dir("flotilla-support-files");
  const fs::path watched = dir.path() / "hosts.d";
  fs::create_directory(watched);
  const fs::path file = watched / "hosts";
  // Something watching hosts.d sees only the finished file, whatever it lists in between.
  s::write_file_atomic(file, "127.0.0.1 a\n", 0644, dir.path());
  s::write_file_atomic(file, "127.0.0.1 b\n", 0640, dir.path());
  CHECK(s::read_file(file) == "127.0.0.1 b\n");
  struct stat st {};
  REQUIRE(::stat(file.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0640);
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir.path())) names.push_back(e.path().filename().string());
  CHECK(names == std::vector<std::string>{"hosts.d"});  // no temporary left beside it either
  // A temp_dir that cannot take the temporary fails naming the target; the file stays as it was.
  try {
    s::write_file_atomic(file, "lost", 0644, dir.path() / "no-such-dir");
    FAIL("wrote through a missing temp_dir");
  } catch (const std::system_error& e) {
    CHECK(e.code().value() == ENOENT);
    CHECK(std::string(e.what()).find(file.string()) != std::string::npos);
  }
  CHECK(s::read_file(file) == "127.0.0.1 b\n");
}

TEST_CASE("write_file_atomic fails with the path in the message and keeps the old file", "[support][files]") {
  ScratchDir dir("flotilla-support-files");
  const fs::path missing = dir.path() / "no-such-dir" / "file";
  try {
    s::write_file_atomic(missing, "x");
    FAIL("no error for a missing directory");
  } catch (const std::system_error& e) {
    CHECK(std::string(e.what()).find(missing.string()) != std::string::npos);
    CHECK(e.code().value() == ENOENT);
  }
  // A directory in the way: rename fails, the directory stays, no temp file is left behind.
  fs::create_directory(dir.path() / "taken");
  fs::create_directory(dir.path() / "taken" / "inside");
  CHECK_THROWS_WITH(s::write_file_atomic(dir.path() / "taken", "x"), Catch::Contains("taken"));
  CHECK(fs::is_directory(dir.path() / "taken"));
  int entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir.path())) ++entries;
  CHECK(entries == 1);
}

TEST_CASE("read_file names the path and the errno text when it cannot read", "[support][files]") {
  ScratchDir dir("flotilla-support-files");
  const fs::path missing = dir.path() / "absent.txt";
  CHECK_THROWS_WITH(s::read_file(missing), Catch::Contains(missing.string()) && Catch::Contains("No such file or directory"));
  CHECK_FALSE(s::read_file_if_exists(missing));
  append(missing, "now here");
  CHECK(s::read_file_if_exists(missing) == "now here");
}

TEST_CASE("read_from continues where the last read stopped and restarts after truncation", "[support][files]") {
  ScratchDir dir("flotilla-support-files");
  const fs::path log = dir.path() / "app.log";
  append(log, "one\ntwo\n");
  auto chunk = s::read_from(log, 0);
  CHECK(chunk.data == "one\ntwo\n");
  CHECK(chunk.next_offset == 8);
  CHECK_FALSE(chunk.restarted);
  append(log, "three\n");
  chunk = s::read_from(log, chunk.next_offset);
  CHECK(chunk.data == "three\n");
  chunk = s::read_from(log, chunk.next_offset, 2);
  CHECK(chunk.data.empty());
  CHECK(s::read_from(log, 4, 3).data == "two");
  std::ofstream(log, std::ios::trunc) << "new\n";
  chunk = s::read_from(log, 14);
  CHECK(chunk.restarted);
  CHECK(chunk.data == "new\n");
  CHECK(chunk.next_offset == 4);
}

TEST_CASE("tail_lines returns the last lines of small and large files", "[support][files]") {
  ScratchDir dir("flotilla-support-files");
  const fs::path small = dir.path() / "small.log";
  append(small, "a\nb\nc\n");
  CHECK(s::tail_lines(small, 2) == std::vector<std::string>{"b", "c"});
  CHECK(s::tail_lines(small, 10) == std::vector<std::string>{"a", "b", "c"});
  CHECK(s::tail_lines(small, 0).empty());
  append(small, "partial");
  CHECK(s::tail_lines(small, 2) == std::vector<std::string>{"c", "partial"});
  const fs::path empty = dir.path() / "empty.log";
  append(empty, "");
  CHECK(s::tail_lines(empty, 3).empty());
  // Larger than one read block, so the lines span blocks read backwards.
  const fs::path big = dir.path() / "big.log";
  std::string text;
  for (int i = 0; i < 20000; ++i) text += "line " + std::to_string(i) + "\n";
  append(big, text);
  const auto last = s::tail_lines(big, 3);
  CHECK(last == std::vector<std::string>{"line 19997", "line 19998", "line 19999"});
  CHECK(s::tail_lines(big, 20000).front() == "line 0");
  CHECK(s::tail_lines(big, 20000).size() == 20000);
}

TEST_CASE("FileLock: a second holder waits until the first lets go", "[support][files]") {
  // flock(2) locks belong to open file descriptions, so a second FileLock in this process,
  // on its own thread, contends exactly as another process would.
  ScratchDir dir("flotilla-filelock");
  const fs::path lock = dir.path() / "sub" / "x.lock";
  const fs::path mark = dir.path() / "order";
  std::optional<s::FileLock> held(std::in_place, lock);  // makes the directory and the file
  REQUIRE(fs::exists(lock));
  std::thread second([&] {
    const s::FileLock again(lock);  // blocks until the first is released
    append(mark, "second\n");
  });
  // The second cannot have written while the first is held; give it the chance to try.
  for (int i = 0; i < 20 && !fs::exists(mark); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK_FALSE(fs::exists(mark));
  append(mark, "first\n");
  held.reset();
  second.join();
  CHECK(s::read_file(mark) == "first\nsecond\n");
  CHECK(fs::exists(lock));  // left in place
  CHECK_THROWS_WITH(s::FileLock("/proc/flotilla-no-such-dir/x.lock"), Catch::Contains("/proc/flotilla-no-such-dir/x.lock"));
}
