// The reader of the log store that flotilla-logstore writes (log_store.hpp): it answers the
// `logs` question of the addon's flotilla.query/1 interface. It reads each store file from
// where the last poll stopped, merges the lines of every source by time (keeping each source's
// own order) and drops lines stored twice. The format is in docs/addons/syslog.md.
#pragma once

#include "addon_syslog/store_files.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

namespace flotilla::syslog_addon {

/// Which lines a reader returns.
struct ReadFilter {
  std::string service;                         // "hello/v1" or "hello-v1"; empty: every service
  std::string node;                            // only lines from this node; empty: every node
  std::optional<std::chrono::seconds> since;   // only lines younger than this
  std::string grep;                            // only lines whose text contains this (bytes, case-sensitive)
};

/// One stored line as it is answered: the stored record without its dedupe fields, in the
/// store's key order, plus what merging needs.
struct ReadLine {
  std::string ts;
  std::string source;     // node + file: the unit whose order is kept
  std::uint32_t gen = 0;  // generation of the file at that path (a recreated file starts a new one)
  std::uint64_t offset = 0;
  nlohmann::ordered_json record;
};

/// Reads a store incrementally; files are tracked by inode, so a rotation's rename does not
/// make them read twice.
class StoreReader {
 public:
  /// Lists a service directory's store files in the order they were written.
  using Lister = std::function<std::vector<StoreFile>(const std::filesystem::path&)>;

  /// `list` is list_store_files but in tests, which rotate a file between a listing and the
  /// reads that follow it.
  StoreReader(std::filesystem::path store_dir, ReadFilter filter, Lister list = list_store_files);

  /// The service directories to read now; `missing_service` is set when the filter names a
  /// service that has no directory (yet).
  [[nodiscard]] std::vector<std::filesystem::path> service_dirs(bool& missing_service) const;

  /// New lines since the last poll that pass the filter, merged by time. Problems (a file that
  /// cannot be read, a line that is not JSON) go to `warn`, each kind once.
  [[nodiscard]] std::vector<ReadLine> poll(const std::function<void(const std::string&)>& warn, bool& missing_service);

 private:
  void read_file(const std::filesystem::path& path, std::vector<ReadLine>& lines,
                 const std::function<void(const std::string&)>& warn);
  void parse_line(std::string_view text, const std::filesystem::path& path, std::vector<ReadLine>& lines,
                  const std::function<void(const std::string&)>& warn);

  std::filesystem::path store_;
  ReadFilter filter_;
  Lister list_;
  std::string cutoff_;
  std::map<std::pair<std::uint64_t, std::uint64_t>, std::uint64_t> offsets_;
  std::unordered_set<std::string> seen_;
  bool warned_bad_ = false;
};

/// Orders each source's lines as they stand in its file (generation, then offset: the store
/// holds them in arrival order, which a collector outage can shuffle), then merges the sources
/// by time; a source's own order wins over its timestamps (a clock stepped back).
[[nodiscard]] std::vector<ReadLine> merge_by_time(std::vector<ReadLine> lines);

}  // namespace flotilla::syslog_addon
