// The topology: a TOML file parsed and checked into a model the planner can trust.
#pragma once

#include "result.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace flotilla {

using json = nlohmann::json;

/// Where something came from in the topology file, for error messages.
struct SourcePos {
  std::string file;
  std::uint32_t line = 0;
  std::uint32_t column = 0;
  /// "file:line:column" (or just "file" when the position is unknown).
  [[nodiscard]] std::string str() const;
  /// `text` with "file:line:column: " before each of its lines, so every line of a message
  /// says where; `text` alone when nothing is known (no file, no line).
  [[nodiscard]] std::string located(std::string_view text) const;
};

/// A group of identical nodes: `[[nodes]] name = "swarm" count = 3` makes swarm-1..swarm-3.
struct NodeGroup {
  std::string name;
  int count = 1;
  std::vector<std::string> roles;
  std::map<std::string, std::string> labels;
  SourcePos pos;
};

/// One concrete node, expanded from its group.
struct NodeSpec {
  std::string name;   // "infra" for a group of 1, else "<group>-<i>" with i from 1
  std::string group;
  int index = 0;      // 1-based index within the group
  std::vector<std::string> roles;
  std::map<std::string, std::string> labels;
};

/// Where a service or addon runs: nodes with any of `roles`, or the named `nodes`.
struct Placement {
  std::vector<std::string> roles;
  std::vector<std::string> nodes;
  [[nodiscard]] bool empty() const { return roles.empty() && nodes.empty(); }
};

/// `[[addons]]`: one addon instance.
struct AddonSpec {
  std::string name;    // defaults to the plugin name
  std::string plugin;
  Placement placement; // empty means the plugin's default placement
  json options = json::object(); // the `[addons.options]` table, defaults applied after schema check
  SourcePos pos;
  std::map<std::string, SourcePos> option_pos; // key -> position, for schema errors
};

/// `[[services]]`: a user service with replicas.
/// `[services.update]`: how a changed spec replaces a service's running instances. Wave by
/// wave, each instance is taken out of the ingress and the catalog, replaced, held healthy for
/// `min_healthy_time`, and put back; a replacement that fails stops the rollout, and with
/// `auto_revert` the wave goes back to the previous spec. It does not shape the instances, so a
/// change of it alone replaces nothing.
struct UpdateStrategy {
  int max_parallel = 1;                          // instances replaced at once (one wave)
  std::chrono::seconds min_healthy_time{1};      // how long a replacement must stay healthy
  std::chrono::seconds healthy_deadline{0};      // how long it may take to become healthy (0: the engine's health timeout)
  bool auto_revert = true;
  int canary = 0;                                // instances of a new version that run alone until `flotilla promote`
};

struct ServiceSpec {
  std::string name;                 // "hello/v1"
  std::string image;                // for Docker runtimes
  std::vector<std::string> command; // for the process runtime; {address} {port} {instance} {node} are substituted
  std::map<std::string, std::string> env;
  int replicas = 1;
  int port = 0;                     // 0: the service listens on no port
  std::string health = "/health";   // HTTP health check path ("" for none)
  Placement placement;              // default: roles = ["swarm"] if any node has it, else every node
  bool swarm_mode = false;          // `mode = "swarm"`: a Swarm service the swarm addon deploys, not instances
  UpdateStrategy update;
  SourcePos pos;
};

/// `[runtime.NAME]`: options of a runtime plugin, checked against its schema and its validate,
/// and given unresolved (secrets stay references) with each of its operations.
struct RuntimeOptions {
  json options = json::object();
  SourcePos pos;
  std::map<std::string, SourcePos> option_pos; // key or nested path ("registries[0].password")
};

/// The whole checked topology.
struct Topology {
  std::filesystem::path file;      // absolute path of the topology file
  std::string cluster_name;
  std::string driver;              // plugin name of the driver
  std::string runtime;             // optional override of the driver's runtime ("" = driver's choice)
  json driver_config = json::object(); // the `[driver.<name>]` table
  SourcePos driver_pos;
  std::map<std::string, SourcePos> driver_option_pos;
  std::map<std::string, RuntimeOptions> runtime_options; // by runtime name, every [runtime.NAME] table
  std::vector<NodeGroup> groups;
  std::vector<NodeSpec> nodes;     // expanded, in file order
  std::vector<AddonSpec> addons;
  std::vector<ServiceSpec> services;

  [[nodiscard]] const NodeSpec* find_node(const std::string& name) const;
  [[nodiscard]] const ServiceSpec* find_service(const std::string& name) const;
  /// Nodes matching a placement, in file order (empty placement: every node).
  [[nodiscard]] std::vector<const NodeSpec*> place(const Placement& p) const;
};

/// Parses and checks the engine's part of a topology file (syntax, known keys, names,
/// counts, placements, port clashes). Plugin options are checked later against each
/// plugin's schema (see PluginHost). Errors read "file:line:column: what; what to do".
[[nodiscard]] Result<Topology> load_topology(const std::filesystem::path& file);

/// Same as load_topology, from text (for tests); `file` is used in messages only.
[[nodiscard]] Result<Topology> parse_topology(const std::string& text, const std::filesystem::path& file);

/// Checks a service name: lowercase [a-z0-9] segments joined by '-', '_' or '/', at most 63
/// characters, no leading or trailing separator. These names become HAProxy backend names,
/// URL paths and DNS labels, so nothing else may pass.
[[nodiscard]] Result<void> check_service_name(const std::string& name);

/// The DNS label of a service name: "hello/v1" -> "hello-v1".
[[nodiscard]] std::string service_dns_label(const std::string& name);

}  // namespace flotilla
