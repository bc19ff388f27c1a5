// State: the engine's record of what exists. Stored as a format-version line followed by a
// JSON document, replaced atomically (temp file, fsync, rename, fsync of the directory).
#pragma once

#include "result.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

namespace flotilla {

using json = nlohmann::json;

inline constexpr int kStateFormatVersion = 1;

/// Where state lives. The planner and executor tests use MemoryStateStore.
class StateStore {
 public:
  virtual ~StateStore() = default;
  /// The recorded state, or an empty object when there is none yet.
  [[nodiscard]] virtual Result<json> load() = 0;
  /// Replaces the recorded state atomically.
  [[nodiscard]] virtual Result<void> save(const json& state) = 0;
};

/// State in `<dir>/state.json`. The first line is "flotilla-state <version>".
class FileStateStore final : public StateStore {
 public:
  explicit FileStateStore(std::filesystem::path dir) : dir_(std::move(dir)) {}
  [[nodiscard]] Result<json> load() override;
  [[nodiscard]] Result<void> save(const json& state) override;
  [[nodiscard]] const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
};

class MemoryStateStore final : public StateStore {
 public:
  [[nodiscard]] Result<json> load() override;
  [[nodiscard]] Result<void> save(const json& state) override;
  int saves = 0;

 private:
  std::mutex mu_;
  json state_ = json::object();
};

/// Writes `content` to `path` atomically (temp file in the same directory, fsync, rename,
/// fsync of the directory). Used for state and for every generated config file.
[[nodiscard]] Result<void> write_file_atomic(const std::filesystem::path& path, const std::string& content, int mode = 0644);

/// The lock on a cluster's state directory (`<dir>/lock`, holding JSON: pid, host, user,
/// command, since). Released on destruction. A second acquire fails with a message naming
/// the holder and `flotilla unlock`.
class StateLock {
 public:
  StateLock(const StateLock&) = delete;
  StateLock& operator=(const StateLock&) = delete;
  StateLock(StateLock&&) noexcept;
  StateLock& operator=(StateLock&&) noexcept;
  ~StateLock();

  [[nodiscard]] static Result<StateLock> acquire(const std::filesystem::path& dir, const std::string& command);

 private:
  explicit StateLock(std::filesystem::path path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::filesystem::path path_;
  int fd_ = -1;
};

/// Who holds the lock, if anyone: the lock file's JSON plus "alive": whether the pid runs.
[[nodiscard]] Result<json> read_lock(const std::filesystem::path& dir);

/// Clears a lock left by a dead run. Refuses while the holder is alive unless `force`.
[[nodiscard]] Result<void> clear_lock(const std::filesystem::path& dir, bool force);

}  // namespace flotilla
