// The request every addon operation (validate, apply, destroy) receives: the addon itself,
// the cluster, the running nodes, the services with their running instances, the other
// addons and every recorded component. Built in one place (docs/sdk-reference.md, "addon").
#pragma once

#include "planner.hpp"
#include "topology.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>

namespace flotilla {

using json = nlohmann::json;

/// The tasks of the `mode = "swarm"` service `service` as instances, as the addon that deploys
/// it reported them at its last apply (outputs.services.NAME.instances); [] when none did.
[[nodiscard]] json reported_swarm_instances(const json& state, const std::string& service);

/// `config` is the addon's configuration with its secrets resolved.
[[nodiscard]] json addon_request(const Topology& topo, const std::filesystem::path& state_dir, const AddonPlan& addon,
                                 const json& config, const json& state, const Plan& plan);

}  // namespace flotilla
