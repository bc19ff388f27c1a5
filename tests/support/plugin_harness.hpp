// Calls a plugin's operations without the engine: loads the built .so with dlopen, checks its
// ABI like the engine does, and serves each call with a minimal host that records what the
// plugin logged and returned. Host services meant for addons (runtime, state) answer
// FLT_NOT_SUPPORTED, as the engine does for drivers and runtimes.
#pragma once

#include <flotilla/plugin.h>

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace flotilla::test {

/// What one plugin call produced.
struct PluginCallOutcome {
  flt_status status = FLT_ERROR;
  nlohmann::json result;            // the result document (null if none was set)
  std::string error;                // the error message (empty if none was set)
  std::vector<std::string> logs;    // "LEVEL message", in order
  std::vector<std::string> progress;

  [[nodiscard]] bool ok() const { return status == FLT_OK; }
  /// Status, error and logs in one line, for failure messages.
  [[nodiscard]] std::string describe() const;
};

/// One loaded plugin library. Not copyable; unloads the library when destroyed.
class PluginHarness {
 public:
  /// Loads `<dir>/<file_stem>.so` (e.g. "runtime_process"); `dir` defaults to FLOTILLA_PLUGIN_DIR.
  /// Throws std::runtime_error naming the file if it cannot be loaded or its ABI is not version 1.
  explicit PluginHarness(const std::string& file_stem, const std::string& dir = {});
  ~PluginHarness();
  PluginHarness(const PluginHarness&) = delete;
  PluginHarness& operator=(const PluginHarness&) = delete;

  /// The descriptor the entry symbol returned.
  [[nodiscard]] const flt_plugin_descriptor& descriptor() const { return *descriptor_; }
  /// The parsed manifest.
  [[nodiscard]] nlohmann::json manifest() const;
  /// Calls operation `op` ("validate", "create", "start", "put_file", ...) of the plugin's
  /// interface with `request`. Throws std::invalid_argument for an operation the kind lacks.
  PluginCallOutcome call(std::string_view op, const nlohmann::json& request) const;
  /// Makes is_cancelled report non-zero from now on (or stop doing so).
  void set_cancelled(bool cancelled) { cancelled_ = cancelled; }

 private:
  [[nodiscard]] flt_operation operation(std::string_view op) const;

  std::string path_;
  void* handle_ = nullptr;
  const flt_plugin_descriptor* descriptor_ = nullptr;
  const void* interface_ = nullptr;
  bool cancelled_ = false;
};

}  // namespace flotilla::test
