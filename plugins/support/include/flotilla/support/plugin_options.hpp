// A plugin's options as its operations read them: the request's config table filled through
// the plugin's ConfigMap, with a bad option reported to the engine as sdk::Invalid (status
// FLT_INVALID) instead of support's ConfigError. Header-only: it needs the SDK's C++ wrapper,
// which every plugin library has (flotilla_plugin_library links flotilla_sdk) and the rest of
// flotilla_support does not use.
#pragma once

#include "flotilla/support/config_map.hpp"

#include <flotilla/plugin.hpp>

#include <string>
#include <string_view>

namespace flotilla::support {

/// The `config` table of an addon request (`addon.config`); {} when the request has none.
[[nodiscard]] inline json addon_config(const json& request) {
  if (!request.is_object()) return json::object();
  const auto addon = request.find("addon");
  if (addon == request.end() || !addon->is_object()) return json::object();
  const auto config = addon->find("config");
  return config == addon->end() || config->is_null() ? json::object() : *config;
}

/// The `config` table of a driver or runtime request; {} when the request has none.
[[nodiscard]] inline json plugin_config(const json& request) {
  if (!request.is_object()) return json::object();
  const auto config = request.find("config");
  return config == request.end() || config->is_null() ? json::object() : *config;
}

/// `config` filled through `map`. Throws sdk::Invalid "<who>: <every bad option>" (`who` names
/// the plugin as users know it, e.g. "etcd" or "driver netns").
template <class Config>
[[nodiscard]] Config load_options(const ConfigMap<Config>& map, const json& config, std::string_view who) {
  try {
    return map.load(config);
  } catch (const ConfigError& e) {
    throw sdk::Invalid(std::string(who) + ": " + e.what());
  }
}

/// The options of an addon request (its `addon.config`); throws as load_options.
template <class Config>
[[nodiscard]] Config addon_options(const ConfigMap<Config>& map, const json& request, std::string_view who) {
  return load_options(map, addon_config(request), who);
}

/// The options of a driver or runtime request (its `config`); throws as load_options.
template <class Config>
[[nodiscard]] Config plugin_options(const ConfigMap<Config>& map, const json& request, std::string_view who) {
  return load_options(map, plugin_config(request), who);
}

}  // namespace flotilla::support
