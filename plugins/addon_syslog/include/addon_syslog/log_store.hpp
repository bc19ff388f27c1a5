// The collector's store: what flotilla-logstore does with each line rsyslog hands it.
//
// A line arrives as the shipper's wire record (one JSON object: node, file, offset, ts, msg and
// optional service/instance/stream). RELP delivers at least once, so a line can arrive twice;
// its key (node, file, offset) and a hash of its text tell a resend from a new line. Stored
// lines go to <store>/<service>/<YYYY-MM-DD>.jsonl (the day of the line's UTC timestamp);
// a file that would grow past the size limit is renamed to <YYYY-MM-DD>.<n>.jsonl first, and
// files of days older than the retention are deleted.
#pragma once

#include "addon_syslog/dedupe.hpp"
#include "addon_syslog/json_text.hpp"
#include "addon_syslog/store_files.hpp"
#include "addon_syslog/stored_line.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace flotilla::syslog_addon {

/// Feeds every line already in the store to `dedupe`, so a restarted collector still knows
/// what it stored. Returns the number of lines read.
std::uint64_t rebuild_dedupe(Dedupe& dedupe, const std::filesystem::path& store);

/// The collector's whole job for one line: parse, drop resends, store.
class LogStore {
 public:
  struct Options {
    std::filesystem::path dir;
    std::uint64_t max_file_size = 100ull << 20;
    int retention_days = 7;
    std::vector<std::string> addons;
  };
  enum class Outcome { stored, duplicate, unparsed };

  explicit LogStore(Options o) : opts_(std::move(o)), writer_(opts_.dir, opts_.max_file_size, opts_.retention_days) {}

  /// Rebuilds the dedupe table from the store and applies the retention; returns the number
  /// of stored lines it read. Throws std::runtime_error when the store cannot be created.
  std::uint64_t open();

  /// Handles one wire line; throws std::runtime_error when it cannot be stored.
  Outcome ingest(std::string_view wire);

  int enforce_retention(std::chrono::system_clock::time_point now) { return writer_.enforce_retention(now); }
  void close() { writer_.close_all(); }

 private:
  Options opts_;
  StoreWriter writer_;
  Dedupe dedupe_;
  std::unordered_map<std::string, Origin> origins_;
};

}  // namespace flotilla::syslog_addon
