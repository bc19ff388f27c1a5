// `flotilla logs`: reads the syslog addon's store (<store>/<service>/<YYYY-MM-DD>[.<n>].jsonl),
// merges every instance by time, keeps each instance's lines in their order, drops lines seen
// twice (by key and text) and prints them for people or as JSON lines.
#pragma once

#include "result.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

namespace flotilla {

/// What `flotilla logs` was asked for.
struct LogsOptions {
  std::filesystem::path store_dir;           // the syslog addon's outputs.log_store
  std::string service;                       // "hello/v1" or "hello-v1"; empty: every service
  std::string node;                          // only lines from this node; empty: every node
  std::optional<std::chrono::seconds> since; // only lines younger than this
  std::string grep;                          // only lines whose text contains this (bytes, case-sensitive)
  bool follow = false;                       // keep printing new lines until stop() is true
  bool json = false;                         // one JSON object per line instead of text
  std::function<bool()> stop;                // polled while following; null: follow until killed
  std::map<std::string, std::string> service_names; // stored (DNS) name -> topology name, e.g. hello-v1 -> hello/v1
};

/// Exit codes of run_logs_command.
inline constexpr int kLogsOk = 0;
inline constexpr int kLogsFailed = 1;

/// Prints the selected lines to `out` (messages to `err`); returns kLogsOk or kLogsFailed
/// (no store at store_dir, unreadable store). With `follow`, polls the store every 250 ms.
[[nodiscard]] int run_logs_command(const LogsOptions& opts, std::ostream& out, std::ostream& err);

/// The store of the cluster's log addon: `outputs.log_store` of the first addon in the state
/// (`state.addons.<name>.outputs`) that publishes one; nullopt when none does.
[[nodiscard]] std::optional<std::filesystem::path> log_store_from_state(const nlohmann::json& state);

/// Parses "30s", "10m", "2h", "1d" or a sum such as "1h30m"; fails with a message naming the
/// text and the accepted units.
[[nodiscard]] Result<std::chrono::seconds> parse_duration(const std::string& text);

/// A log line's text made safe for a terminal: control characters, C1 controls and bytes that
/// are not valid UTF-8 become \xNN, a backslash becomes \\; valid UTF-8 text stays as it is.
[[nodiscard]] std::string escape_log_text(std::string_view text);

}  // namespace flotilla
