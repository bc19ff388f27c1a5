// Files: atomic replacement, whole reads with errors that name the path, and reading what was
// appended since an offset (tailing a log).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace flotilla::support {

/// Replaces `path` with `data` so that a reader sees the old file or the new one, never a part:
/// writes a temporary file in `temp_dir` (empty: `path`'s directory), fsyncs it, renames it
/// over `path` and fsyncs the directories. `temp_dir` must be on `path`'s filesystem; it keeps
/// the temporary out of a directory something watches (dnsmasq's --hostsdir reads every file
/// that appears there). The file gets `mode` (not reduced by the umask). Throws
/// std::system_error whose message names the path and the step that failed; `path` is then
/// unchanged.
void write_file_atomic(const std::filesystem::path& path, std::string_view data, mode_t mode = 0644,
                       const std::filesystem::path& temp_dir = {});

/// The whole file; throws std::system_error "cannot read PATH: <errno text>".
[[nodiscard]] std::string read_file(const std::filesystem::path& path);

/// The whole file, or nullopt when it does not exist; other failures throw as read_file does.
[[nodiscard]] std::optional<std::string> read_file_if_exists(const std::filesystem::path& path);

/// The whole of a regular file of at most `max_bytes`, read with that bound, so a huge file or
/// one that grows while it is read costs no more than `max_bytes`. Opening never blocks (a FIFO
/// without a writer). Throws std::system_error naming the path: the errno of open or read
/// (ENOENT, EACCES, ...), EISDIR for a directory, ENODEV for anything else that is not a regular
/// file (FIFO, device, socket), EFBIG when the file holds more than `max_bytes`.
[[nodiscard]] std::string read_regular_file(const std::filesystem::path& path, std::size_t max_bytes);

/// What read_from found.
struct FileChunk {
  std::string data;              ///< bytes from the offset (at most max_bytes)
  std::uint64_t next_offset = 0; ///< where the next call continues
  bool restarted = false;        ///< the file was shorter than the offset (truncated or replaced): read from 0
};

/// Reads what the file holds from `offset`, at most `max_bytes`. A file shorter than `offset`
/// is read from its start (restarted = true). Throws std::system_error naming the path when it
/// cannot be opened or read.
[[nodiscard]] FileChunk read_from(const std::filesystem::path& path, std::uint64_t offset,
                                  std::size_t max_bytes = std::numeric_limits<std::size_t>::max());

/// The last `count` lines of the file, oldest first, without their '\n' (a last line without
/// '\n' counts). Reads backwards, so large files are cheap. Throws as read_file does.
[[nodiscard]] std::vector<std::string> tail_lines(const std::filesystem::path& path, std::size_t count);

/// An exclusive flock(2) on a lock file, held while the object lives: for work that processes
/// (two flotilla commands, parallel steps) must not do at once. The file is created (0600, with
/// its directory) when missing, and is left in place. Blocks until the lock is free; throws
/// std::system_error naming the file when it cannot be opened or locked.
class FileLock {
 public:
  explicit FileLock(const std::filesystem::path& path);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace flotilla::support
