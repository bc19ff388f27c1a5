#include "plugin_views.hpp"

#include "state_records.hpp"
#include "util.hpp"

#include <algorithm>
#include <cctype>

namespace flotilla {

json cluster_view(const Topology& topo, const std::filesystem::path& state_dir) {
  return {{"name", topo.cluster_name}, {"state_dir", state_dir.string()}, {"bin_dir", executable_dir().string()},
          {"topology", topo.file.string()}};
}

json node_view(const json& state, const std::string& name, const std::filesystem::path& state_dir) {
  const auto n = record_of<NodeRecord>(state, "nodes", name);
  const json status = n.status;
  return {{"name", name},
          {"group", n.group},
          {"index", n.index},
          {"slot", std::max(n.slot, 0)},
          {"roles", n.roles},
          {"labels", n.labels},
          {"address", n.address},
          {"runtime", n.runtime},
          {"runtime_config", n.runtime_config},
          {"workdir", (state_dir / "nodes" / name).string()},
          {"state", n.status == NodeStatus::ready ? "running" : status.is_string() ? status.get<std::string>() : "missing"}};
}

std::string safe_name(std::string s) {
  for (auto& c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) c = '-';
  return s;
}

std::string addon_workload_prefix(const std::string& addon) { return "addon-" + safe_name(addon) + "-"; }

Result<std::string> program_for_runtime(const std::string& program, const std::string& runtime) {
  if (!runtime.empty() && runtime != "process") return program;  // a node that names none runs processes
  auto found = find_executable(program, {executable_dir()});
  if (!found)
    return fail("command `" + program + "` is not found in " + executable_dir().string() +
                " or on PATH; install it or give its full path");
  return found->string();
}

}  // namespace flotilla
