// Asks the real syslog plugin the `logs` question as the engine does, for tests that read a
// store without the CLI.
#pragma once

#include "logs.hpp"
#include "plugin_host.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <functional>
#include <string_view>

namespace flotilla::test {

/// addon_syslog.so from the build, loaded once.
inline const Plugin& syslog_plugin() {
  static const auto plugin = load_plugin(std::filesystem::path(FLOTILLA_PLUGIN_DIR) / "addon_syslog.so");
  REQUIRE(plugin);
  return *plugin;
}

/// The `logs` question for an addon whose directory is `addon_dir` (its store is addon_dir/store).
inline LogsAsk ask_syslog(const std::filesystem::path& addon_dir) {
  return [addon_dir](const nlohmann::json& args, const std::function<bool()>& stop,
                     const std::function<void(std::string_view)>& on_part) {
    const nlohmann::json request = {
        {"addon", {{"name", "syslog"}, {"plugin", "syslog"}, {"config", nlohmann::json::object()}, {"dir", addon_dir.string()}}},
        {"question", "logs"},
        {"args", args}};
    CallHooks hooks;
    hooks.instance = "syslog";
    hooks.cancelled = stop;
    return call_query(syslog_plugin(), request, hooks, on_part);
  };
}

}  // namespace flotilla::test
