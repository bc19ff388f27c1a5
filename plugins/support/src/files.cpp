#include "flotilla/support/files.hpp"

#include "flotilla/support/fd.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <random>
#include <system_error>

namespace flotilla::support {
namespace fs = std::filesystem;

namespace {


[[noreturn]] void fail(int err, const std::string& what) { throw std::system_error(err, std::generic_category(), what); }

std::string temp_name(const fs::path& path) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return "." + path.filename().string() + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(rng() % 1000000007);
}

void write_all(int fd, std::string_view data, const fs::path& path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail(errno, "cannot write " + path.string());
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

UniqueFd open_for_reading(const fs::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) fail(errno, "cannot read " + path.string());
  return fd;
}

/// Reads up to `max` bytes at `offset` (pread, so the descriptor's position does not matter).
std::string read_at(int fd, std::uint64_t offset, std::size_t max, const fs::path& path) {
  std::string out;
  char buf[65536];
  while (out.size() < max) {
    const std::size_t want = std::min(sizeof buf, max - out.size());
    const ssize_t n = ::pread(fd, buf, want, static_cast<off_t>(offset + out.size()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail(errno, "cannot read " + path.string());
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

void sync_directory(const fs::path& dir, const fs::path& written) {
  UniqueFd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir_fd.get() < 0) fail(errno, "cannot open directory " + dir.string() + " to fsync " + written.string());
  // EINVAL: this filesystem cannot sync a directory; the rename is as durable as it gets there.
  if (::fsync(dir_fd.get()) != 0 && errno != EINVAL)
    fail(errno, "cannot fsync directory " + dir.string() + " after writing " + written.string());
}

}  // namespace

void write_file_atomic(const fs::path& path, std::string_view data, mode_t mode, const fs::path& temp_dir) {
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  const fs::path temp = (temp_dir.empty() ? dir : temp_dir) / temp_name(path);
  UniqueFd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (fd.get() < 0) fail(errno, "cannot create " + temp.string() + " to replace " + path.string());
  try {
    // fchmod, not the open mode: the umask must not change what the caller asked for.
    if (::fchmod(fd.get(), mode) != 0) fail(errno, "cannot set the mode of " + temp.string());
    write_all(fd.get(), data, temp);
    if (::fsync(fd.get()) != 0) fail(errno, "cannot fsync " + temp.string());
    if (fd.reset() != 0) fail(errno, "cannot close " + temp.string());
    if (::rename(temp.c_str(), path.c_str()) != 0) fail(errno, "cannot rename " + temp.string() + " to " + path.string());
  } catch (...) {
    ::unlink(temp.c_str());
    throw;
  }
  // The rename is durable only once the directory entry is on disk.
  sync_directory(dir, path);
}

std::string read_file(const fs::path& path) {
  const UniqueFd fd = open_for_reading(path);
  return read_at(fd.get(), 0, std::numeric_limits<std::size_t>::max(), path);
}

std::string read_regular_file(const fs::path& path, std::size_t max_bytes) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  if (fd.get() < 0) fail(errno, "cannot read " + path.string());
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) fail(errno, "cannot read " + path.string());
  if (S_ISDIR(st.st_mode)) fail(EISDIR, "cannot read " + path.string());
  if (!S_ISREG(st.st_mode)) fail(ENODEV, "cannot read " + path.string() + ": not a regular file");
  if (static_cast<std::uint64_t>(st.st_size) > max_bytes) fail(EFBIG, "cannot read " + path.string());
  // One byte past the bound tells a file that grew since fstat from one that fits.
  const std::size_t bound = max_bytes == std::numeric_limits<std::size_t>::max() ? max_bytes : max_bytes + 1;
  std::string data = read_at(fd.get(), 0, bound, path);
  if (data.size() > max_bytes) fail(EFBIG, "cannot read " + path.string());
  return data;
}

std::optional<std::string> read_file_if_exists(const fs::path& path) {
  try {
    return read_file(path);
  } catch (const std::system_error& e) {
    if (e.code().value() == ENOENT) return std::nullopt;
    throw;
  }
}

FileChunk read_from(const fs::path& path, std::uint64_t offset, std::size_t max_bytes) {
  const UniqueFd fd = open_for_reading(path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) fail(errno, "cannot read " + path.string());
  FileChunk chunk;
  if (static_cast<std::uint64_t>(st.st_size) < offset) {
    offset = 0;
    chunk.restarted = true;
  }
  chunk.data = read_at(fd.get(), offset, max_bytes, path);
  chunk.next_offset = offset + chunk.data.size();
  return chunk;
}

std::vector<std::string> tail_lines(const fs::path& path, std::size_t count) {
  if (count == 0) return {};
  const UniqueFd fd = open_for_reading(path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) fail(errno, "cannot read " + path.string());
  // Read blocks from the end until the text holds count+1 newlines (or the file is all read).
  std::uint64_t start = static_cast<std::uint64_t>(st.st_size);
  std::string text;
  constexpr std::uint64_t kBlock = 64 * 1024;
  while (start > 0) {
    const std::uint64_t from = start > kBlock ? start - kBlock : 0;
    text.insert(0, read_at(fd.get(), from, static_cast<std::size_t>(start - from), path));
    start = from;
    // A '\n' that ends the file does not start a line.
    const std::size_t body = !text.empty() && text.back() == '\n' ? text.size() - 1 : text.size();
    if (static_cast<std::size_t>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(body), '\n')) >= count)
      break;
  }
  if (!text.empty() && text.back() == '\n') text.pop_back();
  std::vector<std::string> lines;
  std::size_t end = text.size();
  while (lines.size() < count) {
    const std::size_t nl = end == 0 ? std::string::npos : text.rfind('\n', end - 1);
    const std::size_t begin = nl == std::string::npos ? 0 : nl + 1;
    if (begin == 0 && start > 0) break;  // a partial first line: only reached when count lines were found
    lines.push_back(text.substr(begin, end - begin));
    if (nl == std::string::npos) break;
    end = nl;
  }
  if (text.empty() && st.st_size == 0) lines.clear();
  std::reverse(lines.begin(), lines.end());
  return lines;
}

FileLock::FileLock(const std::filesystem::path& path) {
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);  // a failure shows in open below
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "cannot open lock file " + path.string());
  while (::flock(fd_, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    const int e = errno;
    ::close(fd_);
    throw std::system_error(e, std::generic_category(), "cannot lock " + path.string());
  }
}

FileLock::~FileLock() { ::close(fd_); }  // closing releases the lock

}  // namespace flotilla::support
