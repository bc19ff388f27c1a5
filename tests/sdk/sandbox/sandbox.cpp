// Driver `sandbox`: the worked driver example of docs/plugin-guide.md, built out of tree
// against an installed Flotilla. A node is a loopback address on this machine, chosen from the
// node's slot, and the work directory the engine gives it, where the driver leaves a small
// description of the node; its workloads run through the process runtime. It uses only the
// SDK (C++17).
#include <flotilla/plugin.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

namespace {

namespace fs = std::filesystem;
using flotilla::sdk::Context;
using flotilla::sdk::json;

// The first address of a network goes to slot 0, the next to slot 1, and so on.
constexpr int kFirstHost = 10;
constexpr int kLastHost = 254;
// The driver's file in each node's work directory.
constexpr const char* kNodeFile = "sandbox-node.json";

/// True for "127.A.B" with A and B in 0..255: the first three parts of a loopback address.
bool loopback_network(const std::string& text) {
  if (text.rfind("127.", 0) != 0) return false;
  int parts = 0;
  std::size_t at = 4;
  while (at <= text.size()) {
    const std::size_t dot = std::min(text.find('.', at), text.size());
    const std::string part = text.substr(at, dot - at);
    if (part.empty() || part.size() > 3 || part.find_first_not_of("0123456789") != std::string::npos || std::stoi(part) > 255)
      return false;
    ++parts;
    at = dot + 1;
  }
  return parts == 2;
}

/// The node's work directory: the engine chooses it and creates it before `create`.
fs::path workdir_of(const json& request) {
  const fs::path dir = request.at("node").value("workdir", std::string());
  if (dir.empty() || dir.is_relative())
    throw flotilla::sdk::Invalid("driver sandbox: node " + request.at("node").value("name", std::string("?")) +
                                 " has no absolute workdir; the engine passes one in every request");
  return dir;
}

class Sandbox final : public flotilla::sdk::Driver {
 public:
  // Runs on every command that opens the topology, before any node exists: check the options
  // and the node list, never the machine.
  json validate(Context& ctx, const json& request) override {
    json errors = json::array();
    const std::string network = ctx.option<std::string>("network");
    if (!loopback_network(network))
      errors.push_back({{"key", "network"}, {"message", "must be the first three parts of a loopback address such as \"127.83.1\", not \"" + network + "\""}});
    const std::size_t nodes = request.value("nodes", json::array()).size();
    if (nodes > kLastHost - kFirstHost + 1)
      errors.push_back({{"key", "network"}, {"message", "has room for " + std::to_string(kLastHost - kFirstHost + 1) + " nodes, not " + std::to_string(nodes)}});
    return {{"errors", errors}};
  }

  // Must be idempotent: the engine calls it again for a node whose last create did not finish,
  // and for a node `inspect` reported stopped or missing.
  json create(Context& ctx, const json& request) override {
    const json& node = request.at("node");
    const int slot = node.value("slot", -1);
    if (slot < 0 || kFirstHost + slot > kLastHost)
      throw flotilla::sdk::Invalid("driver sandbox: node " + node.value("name", std::string("?")) + " has slot " + std::to_string(slot) +
                                   ", which does not fit in the network; use fewer nodes");
    const std::string address = ctx.option<std::string>("network") + "." + std::to_string(kFirstHost + slot);
    const fs::path workdir = workdir_of(request);

    std::error_code ec;
    fs::create_directories(workdir, ec);
    if (ec) throw flotilla::sdk::Error(FLT_ERROR, "driver sandbox: cannot create " + workdir.string() + ": " + ec.message());
    std::ofstream(workdir / kNodeFile) << json{{"name", node.value("name", "")},
                                               {"group", node.value("group", "")},
                                               {"index", node.value("index", 0)},
                                               {"slot", slot},
                                               {"address", address},
                                               {"owner", ctx.option<std::string>("owner")}}
                                              .dump()
                                       << "\n";
    ctx.progress("node " + node.value("name", std::string()) + " is " + address);
    // `runtime_config` is for the runtime: the process runtime needs nothing. `data` comes back
    // as `record.data` in inspect and destroy.
    return {{"address", address}, {"runtime", "process"}, {"runtime_config", json::object()}, {"data", {{"address", address}}}};
  }

  json inspect(Context&, const json& request) override {
    std::error_code ec;
    return {{"state", fs::is_regular_file(workdir_of(request) / kNodeFile, ec) ? "running" : "missing"}};
  }

  // Runs after the engine has stopped the node's workloads; a missing node is not an error.
  json destroy(Context& ctx, const json& request) override {
    std::error_code ec;
    fs::remove(workdir_of(request) / kNodeFile, ec);
    if (ec) ctx.warn("driver sandbox: could not remove " + (workdir_of(request) / kNodeFile).string() + ": " + ec.message());
    return json::object();
  }
};

}  // namespace

FLOTILLA_PLUGIN(Sandbox, "sandbox", "0.1.0", "Example driver: nodes are loopback addresses on this machine",
                R"json({
  "schema": {
    "network": {"type": "string", "required": true, "description": "First three parts of the nodes' loopback addresses, e.g. 127.83.1"},
    "owner":   {"type": "string", "default": "", "description": "Written into each node's description"}
  },
  "mutable_options": ["owner"],
  "max_parallel": 4
})json")
