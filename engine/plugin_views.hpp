// The views of the cluster handed to plugins in their requests (see docs/sdk-reference.md).
#pragma once

#include "result.hpp"
#include "topology.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>

namespace flotilla {

using json = nlohmann::json;

/// {"name", "state_dir", "bin_dir", "topology"}: what every plugin is told about the cluster.
[[nodiscard]] json cluster_view(const Topology& topo, const std::filesystem::path& state_dir);

/// A node as drivers and runtimes see it, from its state record: name, group, index, slot,
/// roles, labels, address, runtime, runtime_config, workdir (under the state directory, set
/// by the engine) and state ("running" once created; the recorded status otherwise).
[[nodiscard]] json node_view(const json& state, const std::string& name, const std::filesystem::path& state_dir);

/// Workload names are file names on the node and unique across owners: anything but
/// letters, digits, '-', '_' and '.' becomes '-'.
[[nodiscard]] std::string safe_name(std::string s);

/// How the workloads of addon `addon` are named on a node: this prefix, then the component's
/// safe name ("addon-syslog-" + "collector"). Addons get it in their requests
/// (`workload_prefix`) and never derive it themselves.
[[nodiscard]] std::string addon_workload_prefix(const std::string& addon);

/// The program of a workload's command as the node's runtime will run it. The process runtime
/// runs it on this machine, so it is looked up here (next to flotilla, then PATH) and made
/// absolute (also when `runtime` is empty); any other runtime runs it inside an image or on
/// another host, so it goes as written.
[[nodiscard]] Result<std::string> program_for_runtime(const std::string& program, const std::string& runtime);

}  // namespace flotilla
