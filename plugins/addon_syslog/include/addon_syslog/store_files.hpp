// The store's files: <store>/<service>/<YYYY-MM-DD>[.<part>].jsonl, how they are named, listed
// in the order they were written, appended to, rotated by size and deleted past the retention.
// The reader and the writer both go through here.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace flotilla::syslog_addon {

/// One file of the store: <service>/<YYYY-MM-DD>[.<part>].jsonl. The current file of a day has
/// no part number; rotated ones have 1, 2, ... in the order they were written.
struct StoreFile {
  std::filesystem::path path;
  std::string day;
  int part = 0;  // 0: the current file, read after all numbered parts
};

/// Parses a store file name; nullopt for anything else.
std::optional<StoreFile> parse_store_file_name(const std::filesystem::path& path);

/// The store files of one service directory in the order they were written.
std::vector<StoreFile> list_store_files(const std::filesystem::path& service_dir);

/// Writes lines into the store: one open descriptor per current file, rotation by size,
/// deletion of days past the retention.
class StoreWriter {
 public:
  StoreWriter(std::filesystem::path dir, std::uint64_t max_file_size, int retention_days)
      : dir_(std::move(dir)), max_file_size_(max_file_size), retention_days_(retention_days) {}
  StoreWriter(const StoreWriter&) = delete;
  StoreWriter& operator=(const StoreWriter&) = delete;
  ~StoreWriter() { close_all(); }

  /// Appends `record` + '\n' to the service's file for `day`; throws std::runtime_error on I/O
  /// failure (the caller reports it and rsyslog retries the line later).
  void append(const std::string& service, const std::string& day, const std::string& record);

  /// Deletes store files of days before today - retention_days (0 keeps everything) and
  /// service directories left empty. Returns how many files went.
  int enforce_retention(std::chrono::system_clock::time_point now);

  /// Closes every open file (they reopen on the next append).
  void close_all();

 private:
  struct Open {
    int fd = -1;
    std::uint64_t size = 0;
  };

  Open& open(const std::filesystem::path& path);
  void close_one(const std::filesystem::path& path);
  void rotate(const std::filesystem::path& path);

  static constexpr std::size_t kMaxOpen = 64;
  std::filesystem::path dir_;
  std::uint64_t max_file_size_;
  int retention_days_;
  std::map<std::string, Open> open_;
};

}  // namespace flotilla::syslog_addon
