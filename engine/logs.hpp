// `flotilla logs`: asks the cluster's log addon (the addon whose plugin answers `logs` through
// flotilla.query/1; the syslog addon reads its own store) for the stored lines, merged by
// time, and prints them for people or as JSON lines. The engine never reads the store itself.
#pragma once

#include "plugin_host.hpp"
#include "result.hpp"
#include "duration.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

namespace flotilla {

/// What `flotilla logs` was asked for.
struct LogsOptions {
  std::string service;                        // "hello/v1" or "hello-v1"; empty: every service
  std::string node;                           // only lines from this node; empty: every node
  std::optional<std::chrono::seconds> since;  // only lines younger than this
  std::string grep;                           // only lines whose text contains this (bytes, case-sensitive)
  bool follow = false;                        // keep printing new lines until stop() is true
  bool json = false;                          // one JSON object per line instead of text
  std::function<bool()> stop;                 // polled while following; null: follow until killed
  std::map<std::string, std::string> service_names;  // stored (DNS) name -> topology name, e.g. hello-v1 -> hello/v1
};

/// Asks the log addon the `logs` question with `args`; every part of the answer goes to
/// `on_part` as it comes; `stop` ends a followed answer.
using LogsAsk = std::function<CallResult(const nlohmann::json& args, const std::function<bool()>& stop,
                                         const std::function<void(std::string_view part)>& on_part)>;

/// Exit codes of run_logs_command.
inline constexpr int kLogsOk = 0;
inline constexpr int kLogsFailed = 1;

/// The `args` of the `logs` question for `opts` (docs/sdk-reference.md, "logs").
[[nodiscard]] nlohmann::json logs_args(const LogsOptions& opts);

/// Asks through `ask` and prints the lines to `out`, the addon's warnings to `err`; returns
/// kLogsOk, or kLogsFailed when the addon could not answer (no store yet, ...).
[[nodiscard]] int run_logs_command(const LogsOptions& opts, const LogsAsk& ask, std::ostream& out, std::ostream& err);

/// A log line's text made safe for a terminal: control characters, C1 controls and bytes that
/// are not valid UTF-8 become \xNN, a backslash becomes \\; valid UTF-8 text stays as it is.
[[nodiscard]] std::string escape_log_text(std::string_view text);

}  // namespace flotilla
