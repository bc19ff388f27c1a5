#include "addon_consul/consul_addon.hpp"

#include "addon_consul/consul_agent.hpp"
#include "flotilla/support/config_map.hpp"
#include "flotilla/support/plugin_options.hpp"
#include "flotilla/support/consul_client.hpp"
#include "flotilla/support/process.hpp"
#include "flotilla/support/wait.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace flotilla::consul_addon {

namespace {

using sdk::Context;
using sdk::json;
namespace d = flotilla::discovery;

constexpr const char* kManifest = R"json({
  "provides": ["discovery"],
  "placement": {"roles": [], "mode": "all"}
})json";

constexpr const char* kWorkload = "consul";

/// The addon's options; the defaults here are the manifest's.
struct Options {
  int servers = 1;
  std::string datacenter = "dc1";
  std::string domain = "consul";
  int http_port = 8500;
  int dns_port = 8600;
  std::string binary;
  std::string image = "hashicorp/consul:1.17";
  int start_timeout = 60;
};

const flotilla::support::ConfigMap<Options>& options_map() {
  static const auto map =
      flotilla::support::ConfigMap<Options>()
          .integer("servers", &Options::servers, "Server count (infra nodes first)")
          .one_of({1, 3})
          .string("datacenter", &Options::datacenter, "Consul datacenter name")
          .string("domain", &Options::domain, "DNS domain: <service>.service.<domain>")
          .integer("http_port", &Options::http_port, "HTTP API port on each agent's node address")
          .range(1, 65535)
          .integer("dns_port", &Options::dns_port, "DNS port on each agent's node address")
          .range(1, 65535)
          .string("binary", &Options::binary, "consul executable (default: found on PATH)")
          .string("image", &Options::image, "Image for Docker runtimes")
          .integer("start_timeout", &Options::start_timeout, "Seconds to wait for every agent to see a leader")
          .range(1, 3600);
  return map;
}

/// The options of a request; throws Invalid naming every bad option.
Options options_of(const json& req) { return flotilla::support::addon_options(options_map(), req, "consul"); }

d::ConsulSettings settings_of(const json& req, const Options& o) {
  d::ConsulSettings s;
  s.servers = o.servers;
  s.datacenter = o.datacenter;
  s.domain = o.domain;
  s.http_port = o.http_port;
  s.dns_port = o.dns_port;
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

std::string consul_binary(const Options& cfg) {
  if (!cfg.binary.empty()) return cfg.binary;
  const auto found = support::find_executable("consul", {.sbin = false});
  return found ? found->string() : std::string();
}

}  // namespace

const char* manifest() {
  static const std::string text = options_map().manifest(kManifest);
  return text.c_str();
}

json Consul::validate(Context&, const json& req) {
  json errors = json::array();
  // Types, the server counts and the port ranges come from the map.
  const auto filled = options_map().fill(req["addon"].value("config", json::object()));
  for (const auto& e : filled.errors) errors.push_back({{"key", e.key}, {"message", "consul " + e.message}});
  const Options& cfg = filled.config;
  const int servers = cfg.servers;
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
  const Options cfg = options_of(req);
  const d::ConsulSettings s = settings_of(req, cfg);
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
    (void)ctx.runtime({{"op", "start"}, {"node", a.node}, {"workload", d::consul_workload(a, agents, s, binary, cfg.image)}});
  }
  // An agent is ready once it knows the leader: servers have elected one and clients joined.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(cfg.start_timeout);
  json agent_urls = json::object();
  json servers = json::array();
  for (const auto& a : agents) {
    const std::string url = "http://" + a.address + ":" + std::to_string(s.http_port);
    agent_urls[a.node] = url;
    if (a.server) servers.push_back(a.node);
    const support::ConsulClient client(url, {std::chrono::milliseconds(500), std::chrono::milliseconds(1000)});
    ctx.progress("waiting for consul on " + a.node + " to see a leader");
    const bool led = support::wait_until(deadline, std::chrono::milliseconds(250), [&] {
      try {
        return !client.leader().empty();
      } catch (const std::exception&) {
        return false;  // not listening yet
      }
    }, [&ctx] { return ctx.cancelled(); });
    if (!led) {
      ctx.check_cancelled();
      throw sdk::Retryable("consul on node " + a.node + " (" + url + ") has no leader after " +
                           std::to_string(cfg.start_timeout) +
                           " s; check its log (flotilla ps) and that the servers can reach each other");
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
