#include "addon_consul/consul_addon.hpp"

#include "addon_consul/consul_agent.hpp"
#include "flotilla/support/consul_client.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

namespace flotilla::consul_addon {

namespace {

using sdk::Context;
using sdk::json;
namespace d = flotilla::discovery;

constexpr const char* kManifest = R"json({
  "schema": {
    "servers":       {"type": "integer", "enum": [1, 3], "default": 1, "description": "Server count (infra nodes first)"},
    "datacenter":    {"type": "string", "default": "dc1"},
    "domain":        {"type": "string", "default": "consul", "description": "DNS domain: <service>.service.<domain>"},
    "http_port":     {"type": "integer", "default": 8500},
    "dns_port":      {"type": "integer", "default": 8600},
    "binary":        {"type": "string", "default": "", "description": "consul executable (default: found on PATH)"},
    "image":         {"type": "string", "default": "hashicorp/consul:1.17", "description": "Image for Docker runtimes"},
    "start_timeout": {"type": "integer", "default": 60, "description": "Seconds to wait for every agent to see a leader"}
  },
  "provides": ["discovery"],
  "placement": {"roles": [], "mode": "all"}
})json";

constexpr const char* kWorkload = "consul";

d::ConsulSettings settings_of(const json& req) {
  const json cfg = req["addon"].value("config", json::object());
  d::ConsulSettings s;
  s.servers = cfg.value("servers", 1);
  s.datacenter = cfg.value("datacenter", "dc1");
  s.domain = cfg.value("domain", "consul");
  s.http_port = cfg.value("http_port", 8500);
  s.dns_port = cfg.value("dns_port", 8600);
  s.data_root = req["addon"].value("dir", "");
  return s;
}

// Validate sees nodes before the driver made them; a node without a runtime yet is taken to
// be a process node (what the local driver gives), so a missing binary is caught before `up`.
bool any_process_node(const json& req) {
  const auto placed = req["addon"].value("nodes", std::vector<std::string>{});
  bool other_runtime = false;
  for (const auto& n : req.value("nodes", json::array())) {
    if (std::find(placed.begin(), placed.end(), n.value("name", "")) == placed.end()) continue;
    const std::string runtime = n.value("runtime", "");
    if (runtime.empty() || runtime == "process") return true;
    other_runtime = true;
  }
  return !other_runtime;
}

std::string consul_binary(const json& cfg) {
  const std::string given = cfg.value("binary", "");
  if (!given.empty()) return given;
  const auto found = d::find_on_path("consul");
  return found ? found->string() : std::string();
}

}  // namespace

const char* manifest() { return kManifest; }

json Consul::validate(Context&, const json& req) {
  json errors = json::array();
  const json cfg = req["addon"].value("config", json::object());
  const int servers = cfg.value("servers", 1);
  const auto placed = req["addon"].value("nodes", std::vector<std::string>{});
  if (static_cast<int>(placed.size()) < servers) {
    errors.push_back({{"key", "servers"},
                      {"message", "servers = " + std::to_string(servers) + " needs at least " + std::to_string(servers) +
                                      " placed nodes, but the placement gives " + std::to_string(placed.size())}});
  }
  if (any_process_node(req)) {
    const std::string bin = consul_binary(cfg);
    if (bin.empty()) {
      errors.push_back({{"message", d::kConsulMissing}});
    } else if (::access(bin.c_str(), X_OK) != 0) {
      errors.push_back({{"key", "binary"}, {"message", "binary \"" + bin + "\" is not an executable file"}});
    }
  }
  return {{"errors", errors}};
}
json Consul::apply(Context& ctx, const json& req) {
  const json cfg = req["addon"].value("config", json::object());
  const d::ConsulSettings s = settings_of(req);
  const auto agents = d::plan_agents(req, s.servers);
  if (agents.empty()) throw sdk::Invalid("consul: servers = " + std::to_string(s.servers) + " needs more placed nodes");
  std::string binary;
  for (const auto& a : agents) {
    if (a.runtime == "process" && binary.empty()) {
      binary = consul_binary(cfg);
      if (binary.empty()) throw sdk::NotSupported(std::string("consul: ") + d::kConsulMissing);
    }
  }
  for (const auto& a : agents) {
    ctx.progress("starting consul " + std::string(a.server ? "server" : "agent") + " on " + a.node);
    if (a.runtime == "process") std::filesystem::create_directories(s.data_root + "/" + a.node);
    auto args = d::consul_agent_args(a, agents, s);
    json workload = {{"name", kWorkload}, {"env", json::object()}, {"ports", {s.http_port, s.dns_port}}};
    if (a.runtime == "process") {
      args.insert(args.begin(), binary);
      workload["command"] = args;
    } else {
      workload["image"] = cfg.value("image", "hashicorp/consul:1.17");
      workload["command"] = args;  // the image's entrypoint takes the agent arguments
    }
    (void)ctx.runtime({{"op", "start"}, {"node", a.node}, {"workload", workload}});
  }
  // An agent is ready once it knows the leader: servers have elected one and clients joined.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(cfg.value("start_timeout", 60));
  json agent_urls = json::object();
  json servers = json::array();
  for (const auto& a : agents) {
    const std::string url = "http://" + a.address + ":" + std::to_string(s.http_port);
    agent_urls[a.node] = url;
    if (a.server) servers.push_back(a.node);
    const support::ConsulClient client(url, {std::chrono::milliseconds(500), std::chrono::milliseconds(1000)});
    ctx.progress("waiting for consul on " + a.node + " to see a leader");
    while (true) {
      ctx.check_cancelled();
      try {
        if (!client.leader().empty()) break;
      } catch (const std::exception&) {
        // not listening yet
      }
      if (std::chrono::steady_clock::now() > deadline) {
        throw sdk::Retryable("consul on node " + a.node + " (" + url + ") has no leader after " +
                                       std::to_string(cfg.value("start_timeout", 60)) +
                                       " s; check its log (flotilla ps) and that the servers can reach each other");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
  }
  ctx.set_state({{"agents", agent_urls}});
  const auto& first = *std::find_if(agents.begin(), agents.end(), [](const d::ConsulAgent& a) { return a.server; });
  return json{{"endpoints",
               {{"consul", "http://" + first.address + ":" + std::to_string(s.http_port)},
                {"dns", "dns://" + first.address + ":" + std::to_string(s.dns_port)}}},
              {"outputs", {{"agents", agent_urls}, {"servers", servers}, {"domain", s.domain}, {"datacenter", s.datacenter}}},
              {"messages", json::array({"consul: " + std::to_string(agents.size()) + " agent(s); dig @" + first.address + " -p " +
                                        std::to_string(s.dns_port) + " <service>.service." + s.domain})}};
}
json Consul::destroy(Context& ctx, const json& req) {
  const json state = ctx.state();
  std::vector<std::string> nodes;
  const json agents = state.value("agents", json::object());
  for (const auto& [node, url] : agents.items()) nodes.push_back(node);
  if (nodes.empty()) nodes = req["addon"].value("nodes", std::vector<std::string>{});
  for (const auto& node : nodes) {
    try {
      (void)ctx.runtime({{"op", "stop"}, {"node", node}, {"name", kWorkload}});
    } catch (const std::exception& e) {
      ctx.warn("consul on " + node + " could not be stopped: " + e.what());
    }
  }
  std::error_code ec;
  const std::string dir = req["addon"].value("dir", "");
  for (const auto& node : nodes)
    if (!dir.empty()) std::filesystem::remove_all(dir + "/" + node, ec);
  ctx.set_state(json::object());
  return json::object();
}
}  // namespace flotilla::consul_addon
