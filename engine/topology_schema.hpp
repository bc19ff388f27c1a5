// A JSON Schema of topology files for editors (Taplo and the TOML extensions built on it):
// the engine's own keys, and every installed plugin's options from its manifest schema.
// The engine's checks stay the authority; the schema lets an editor flag and complete early.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace flotilla {

/// What the schema needs of one installed plugin.
struct PluginOptions {
  std::string kind;  ///< driver | runtime | addon
  std::string name;
  nlohmann::json options = nlohmann::json::object();  ///< the manifest's "schema"
};

/// The JSON Schema (draft-07) of a manifest's options: a closed object whose properties carry
/// types, defaults, enums, ranges, patterns and descriptions.
[[nodiscard]] nlohmann::json options_json_schema(const nlohmann::json& manifest_schema);

/// The JSON Schema (draft-07) of a topology file with these plugins installed.
[[nodiscard]] nlohmann::json topology_json_schema(const std::vector<PluginOptions>& plugins, const std::string& version);

}  // namespace flotilla
