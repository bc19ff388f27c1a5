// The plugin host: finds plugin libraries, checks their ABI, and calls their operations
// with the host API (logging, progress, cancellation, runtime operations, state).
#pragma once

#include "result.hpp"

#include <flotilla/plugin.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace boost::dll {
class shared_library;
}

namespace flotilla {

using json = nlohmann::json;

/// A loaded plugin. The library stays loaded as long as any copy of `library` lives, and the
/// PluginHost holds one for its own lifetime, so descriptors and tables never dangle.
struct Plugin {
  std::filesystem::path file;
  std::shared_ptr<boost::dll::shared_library> library;
  const flt_plugin_descriptor* descriptor = nullptr;
  std::string name;
  std::string kind;  // driver | runtime | addon
  std::string version;
  std::string description;
  json manifest = json::object();
  const flt_driver_v1* driver = nullptr;
  const flt_runtime_v1* runtime = nullptr;
  const flt_addon_v1* addon = nullptr;
  /// The addon's flotilla.query/1 table (SDK 1.1), or null when it answers no questions.
  const flt_query_v1* query = nullptr;

  /// "addon haproxy (/path/addon_haproxy.so)"
  [[nodiscard]] std::string label() const;
  [[nodiscard]] std::vector<std::string> provides() const;
  [[nodiscard]] std::vector<std::string> requires_() const;
  [[nodiscard]] std::vector<std::string> optional() const;
  [[nodiscard]] int max_parallel() const;
  /// The questions the addon answers through flotilla.query/1 (the manifest's "answers").
  [[nodiscard]] std::vector<std::string> answers() const;
  [[nodiscard]] bool answers(const std::string& question) const;
};

/// Checks a plugin candidate without loading it: "" when `file` is a regular file holding a
/// whole ELF shared library of this build's class, byte order and machine (every header and
/// loadable segment within the file), else why not, e.g. "truncated ELF (4096 of 181234 bytes)",
/// "is a directory", "symlink loop". Never opens a device or blocks on a FIFO.
[[nodiscard]] std::string check_plugin_file(const std::filesystem::path& file);

/// Loads one plugin file and checks it (check_plugin_file first, so the loader never sees a
/// truncated or foreign file): the entry symbol, the ABI version, the descriptor,
/// the manifest and the interface table of its kind. Errors name the file and what to do.
[[nodiscard]] Result<Plugin> load_plugin(const std::filesystem::path& file);

/// What a call may do besides returning: runtime operations and state, supplied by the engine.
struct CallHooks {
  std::string instance;  // the third part of kind:name:instance on log lines (node or addon name)
  std::function<void(const std::string&)> progress;
  std::function<bool()> cancelled;
  /// Runs a runtime operation for an addon; returns the status and fills `out`.
  std::function<flt_status(const json& request, json& out)> runtime;
  std::function<json()> state_get;
  /// Saves the plugin instance's state; returns whether the save reached the disk.
  std::function<flt_status(const json&)> state_set;
};

/// The outcome of one plugin call.
struct CallResult {
  flt_status status = FLT_OK;
  json result = json::object();
  std::string error;
};

/// Calls `op` of `plugin` with `request`. Never throws: a plugin that throws, returns
/// malformed JSON or returns an unknown status is reported as FLT_ERROR with a message that
/// names the plugin and the operation.
[[nodiscard]] CallResult call_plugin(const Plugin& plugin, flt_operation op, const char* op_name, const json& request,
                                     const CallHooks& hooks);

/// Asks `plugin` (an addon with a flotilla.query/1 table) `request`; every part of the answer
/// the plugin emits goes to `on_part` as it comes, as the JSON text the plugin gave (so the
/// caller can keep its keys' order). Never throws, like call_plugin; an exception thrown by
/// `on_part` ends the call as FLT_ERROR. A plugin without the interface gets FLT_NOT_SUPPORTED.
[[nodiscard]] CallResult call_query(const Plugin& plugin, const json& request, const CallHooks& hooks,
                                    const std::function<void(std::string_view part)>& on_part);

/// Turns a failed CallResult into an Error: "addon haproxy: apply failed: MESSAGE".
[[nodiscard]] Error call_error(const Plugin& plugin, const char* op_name, const CallResult& r);

/// The set of plugins found on the search path.
class PluginHost {
 public:
  /// The search path: `explicit_path` (colon-separated, from --plugin-path), then
  /// FLOTILLA_PLUGIN_PATH, then ../lib/flotilla/plugins relative to the running executable.
  [[nodiscard]] static std::vector<std::filesystem::path> search_path(const std::string& explicit_path);

  /// Loads every *.so in the search path. A candidate that fails check_plugin_file or fails to
  /// load, and a directory that cannot be read, is recorded in `problems()` ("skipped plugin
  /// FILE: why; what to do"), never fatal; the first plugin of a kind and name wins.
  [[nodiscard]] static PluginHost discover(const std::vector<std::filesystem::path>& path);

  [[nodiscard]] const Plugin* find(const std::string& kind, const std::string& name) const;
  /// Like find, but an unknown name is an error listing the known plugins of that kind.
  [[nodiscard]] Result<const Plugin*> get(const std::string& kind, const std::string& name) const;
  [[nodiscard]] const std::vector<Plugin>& plugins() const { return plugins_; }
  [[nodiscard]] const std::vector<Error>& problems() const { return problems_; }
  [[nodiscard]] const std::vector<std::filesystem::path>& path() const { return path_; }
  /// The first problem recorded for a file whose name suggests KIND_NAME, if any (so an
  /// unknown plugin error can say why the file next to it did not load).
  [[nodiscard]] const Error* problem_for(const std::string& kind, const std::string& name) const;

 private:
  std::vector<std::filesystem::path> path_;
  std::vector<Plugin> plugins_;
  std::vector<Error> problems_;
};

/// Registers a secret value: it is replaced by "[redacted]" in every log line and message.
void add_secret(const std::string& value);
/// Returns `text` with every registered secret replaced.
[[nodiscard]] std::string redact(std::string text);

}  // namespace flotilla
