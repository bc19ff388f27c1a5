// State: the engine's record of what exists. Stored as a format-version line followed by a
// JSON document, replaced atomically (temp file, fsync, rename, fsync of the directory).
#pragma once

#include "result.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace flotilla {

using json = nlohmann::json;

/// The format this release writes. 2: spec and config hashes are FNV-1a with the standard
/// offset basis, and nodes record their driver options' hashes.
inline constexpr int kStateFormatVersion = 2;
/// The oldest format this release still reads (and migrates on its first write).
inline constexpr int kOldestStateFormatVersion = 1;
/// The largest state file read (64 MiB; a cluster of a thousand workloads writes about 2 MB):
/// a larger one is refused before it is read.
inline constexpr std::uintmax_t kMaxStateFileBytes = std::uintmax_t{64} << 20;

/// Where state lives. The engine's tests use MemoryStateStore.
class StateStore {
 public:
  virtual ~StateStore() = default;
  /// The recorded state, or an empty object when there is none yet. Every state a store
  /// returns has passed check_state_shape (state_records.hpp), so no reader meets a wrong type.
  [[nodiscard]] virtual Result<json> load() = 0;
  /// Replaces the recorded state atomically.
  [[nodiscard]] virtual Result<void> save(const json& state) = 0;
};

/// State in `<dir>/state.json`. The first line is "flotilla-state <version>".
class FileStateStore final : public StateStore {
 public:
  /// `restore_command` is what messages about a damaged or missing state file tell the user
  /// to run to restore the backup (e.g. "flotilla state restore-backup configs/local.toml").
  explicit FileStateStore(std::filesystem::path dir, std::string restore_command = "flotilla state restore-backup")
      : dir_(std::move(dir)), restore_command_(std::move(restore_command)) {}
  /// Fails, naming the file, the key and what to do, when the file is damaged (see
  /// read_state_file), and when it is missing while `state.json.bak` exists: a cluster whose
  /// state file was lost is never taken for one that is not up.
  [[nodiscard]] Result<json> load() override;
  [[nodiscard]] Result<void> save(const json& state) override;
  [[nodiscard]] const std::filesystem::path& dir() const { return dir_; }
  /// `<dir>/state.json`; the previous version is kept as `<dir>/state.json.bak`.
  [[nodiscard]] std::filesystem::path file() const { return dir_ / "state.json"; }
  [[nodiscard]] std::filesystem::path backup() const { return dir_ / "state.json.bak"; }
  [[nodiscard]] const std::string& restore_command() const { return restore_command_; }

 private:
  std::filesystem::path dir_;
  std::string restore_command_;
};

/// Reads one state file: its version line, its JSON (an object) and its shape
/// (check_state_shape). nullopt when it does not exist. Refuses, before reading, anything but a
/// regular file and a file larger than kMaxStateFileBytes. Every failure names the file (and
/// the line or the key) and ends with `remedy`, what the user can do about it. The result
/// holds "format_version" when the file is of an older format.
[[nodiscard]] Result<std::optional<json>> read_state_file(const std::filesystem::path& path, const std::string& remedy);

/// One line about a state for messages: `cluster "local", serial 17, 4 nodes, 5 instances, 1 addon`.
[[nodiscard]] std::string state_summary(const json& state);

/// State in memory, for tests of the engine: the same contract as the file, without a disk.
/// A save can be made to fail, as a full or read-only disk would.
class MemoryStateStore final : public StateStore {
 public:
  MemoryStateStore() = default;
  explicit MemoryStateStore(json state) : state_(std::move(state)) {}
  [[nodiscard]] Result<json> load() override;
  [[nodiscard]] Result<void> save(const json& state) override;
  /// From now on every save fails with `error` (or succeeds again when it is empty).
  void fail_saves(std::optional<Error> error);
  /// Saves made so far (failed ones not counted).
  [[nodiscard]] int saves() const;

 private:
  mutable std::mutex mu_;
  json state_ = json::object();
  std::optional<Error> fail_;
  int saves_ = 0;
};

/// Writes `content` to `path` atomically (temp file in the same directory, fsync, rename,
/// fsync of the directory). Used for state and for every generated config file.
[[nodiscard]] Result<void> write_file_atomic(const std::filesystem::path& path, const std::string& content, int mode = 0644);

/// The lock on a cluster's state directory (`<dir>/lock`, holding JSON: pid, host, user,
/// command, since). Released on destruction. A second acquire fails with a message naming
/// the holder while it runs. The holder also keeps an flock(2) on the file, so a lock left by
/// a run that died (its flock was released by the kernel) is told apart from a live one and
/// taken over, and the plain rerun after a crash just works. A lock written on another host
/// (a state directory on a shared filesystem, where the flock says nothing) is reported with
/// `flotilla unlock`, never taken over.
class StateLock {
 public:
  StateLock(const StateLock&) = delete;
  StateLock& operator=(const StateLock&) = delete;
  StateLock(StateLock&&) noexcept;
  StateLock& operator=(StateLock&&) noexcept;
  ~StateLock();

  /// Takes the lock, creating `dir` (mode 0700) if needed. `command` is recorded for whoever
  /// finds the lock held; `unlock_command` is what the message for a dead holder tells the
  /// user to run (e.g. "flotilla unlock configs/local.toml").
  [[nodiscard]] static Result<StateLock> acquire(const std::filesystem::path& dir, const std::string& command,
                                                 const std::string& unlock_command = "flotilla unlock");
  /// The lock file's path.
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }
  /// Non-empty when the lock was taken over from a run that died holding it (its flock was
  /// free): one line saying whose, for the user.
  [[nodiscard]] const std::string& took_over() const { return took_over_; }

 private:
  explicit StateLock(std::filesystem::path path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::filesystem::path path_;
  int fd_ = -1;
  std::string took_over_;
};

/// Who holds the lock, if anyone: the lock file's JSON plus "alive" (whether the holder still
/// runs) and "path"; null when there is no lock. An unreadable lock file gives
/// {"damaged": true, "alive", "path"}.
[[nodiscard]] Result<json> read_lock(const std::filesystem::path& dir);

/// Clears a lock left by a dead run. Refuses while the holder is alive unless `force`.
/// Succeeds when there is no lock.
[[nodiscard]] Result<void> clear_lock(const std::filesystem::path& dir, bool force);

}  // namespace flotilla
