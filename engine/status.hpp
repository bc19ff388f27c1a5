// `flotilla status`: the recorded state merged with what the runtimes report alive.
#pragma once

#include "topology.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>

namespace flotilla {

using json = nlohmann::json;

/// The `status --output json` document: nodes, services with instances, addons, endpoints.
/// `live` is what Engine::refresh returned.
[[nodiscard]] json cluster_status(const Topology& topo, const std::filesystem::path& state_dir, const json& state, const json& live);

}  // namespace flotilla
