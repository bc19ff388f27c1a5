// SDK 1.0 test data: tests/sdk/greeter/greeter.cpp as released with SDK 1.0, unchanged below.
// Addon `greeter`: the worked example of docs/plugin-guide.md, built out of tree against an
// installed Flotilla. It writes its greeting to a file on its node, runs flotilla-hello there as
// its one component, publishes the URL and says hello; destroy undoes both. It uses only the
// SDK (C++17).
#include <flotilla/plugin.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

namespace {

using flotilla::sdk::Context;
using flotilla::sdk::json;

// The component's name. It only has to be unique within this addon: the engine keeps it apart
// from the workloads of services and of other addons on the same node.
constexpr const char* kWorkload = "greeter";
constexpr auto kListenTimeout = std::chrono::seconds(10);

// True once something accepts TCP connections on address:port.
bool listening(const std::string& address, int port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::inet_pton(AF_INET, address.c_str(), &sa.sin_addr) != 1) return false;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const bool ok = ::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0;
  ::close(fd);
  return ok;
}

// The node the addon runs on: the first of its resolved placement, as described in nodes[].
json placed_node(const json& req) {
  const auto placed = req["addon"].value("nodes", std::vector<std::string>{});
  if (placed.empty())
    throw flotilla::sdk::Invalid("greeter: no node to run on; set `roles` or `nodes` in its [[addons]] table");
  for (const auto& node : req.value("nodes", json::array()))
    if (node.value("name", "") == placed.front()) return node;
  // nodes[] lists the running nodes only; a later attempt may find this one ready.
  throw flotilla::sdk::Retryable("greeter: node " + placed.front() + " is not running yet");
}

// Returns once flotilla-hello accepts connections, so the endpoint works when `up` prints it.
void wait_listening(const Context& ctx, const std::string& address, int port, const json& started) {
  const auto deadline = std::chrono::steady_clock::now() + kListenTimeout;
  while (!listening(address, port)) {
    ctx.check_cancelled();
    if (std::chrono::steady_clock::now() > deadline) {
      const std::string log = started.value("record", json::object()).value("stderr", std::string("its stderr log"));
      throw flotilla::sdk::Retryable("greeter: flotilla-hello does not accept connections on " + address + ":" +
                                     std::to_string(port) + " after 10 s; see " + log + " and check that the port is free");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

class Greeter final : public flotilla::sdk::Addon {
 public:
  // The engine has checked the options' types against the schema; this checks their values.
  json validate(Context&, const json& req) override {
    json errors = json::array();
    const int port = req["addon"]["config"].value("port", 0);
    if (port < 1 || port > 65535)
      errors.push_back({{"key", "port"}, {"message", "must be between 1 and 65535, not " + std::to_string(port)}});
    return {{"errors", errors}};
  }

  json apply(Context& ctx, const json& req) override {
    const json& config = req["addon"]["config"];
    const std::string greeting = config.value("greeting", "hello");
    const int port = config.value("port", 0);
    const json node = placed_node(req);
    const std::string node_name = node.value("name", "");
    const std::string address = node.value("address", "");
    const std::string listen = address + ":" + std::to_string(port);

    // Unchanged content leaves the file alone; the engine puts it under files/greeter/.
    const json file = ctx.runtime({{"op", "put_file"},
                                   {"node", node_name},
                                   {"path", "greeting.txt"},
                                   {"content", greeting + "\n"},
                                   {"mode", 0644}});

    ctx.progress("starting flotilla-hello on " + node_name);
    const json workload = {{"name", kWorkload},
                           {"command", json::array({"flotilla-hello", "--listen", listen, "--service", "greeter"})},
                           {"ports", json::array({port})}};
    const json started = ctx.runtime({{"op", "start"}, {"node", node_name}, {"workload", workload}});
    ctx.debug(started.value("changed", true) ? "flotilla-hello started" : "flotilla-hello was already running");
    wait_listening(ctx, address, port, started);

    json state = ctx.state();
    state["applies"] = state.value("applies", 0) + 1;
    state["node"] = node_name;
    ctx.set_state(state);

    return {{"endpoints", {{"greeter", "http://" + listen}}},
            {"outputs",
             {{"greeting_file", file.value("path", "")},
              {"metrics_targets", json::array({{{"job", "greeter"}, {"targets", json::array({listen})}, {"metrics_path", "/metrics"}}})}}},
            {"messages", json::array({greeting + " from greeter"})}};
  }

  json destroy(Context& ctx, const json& req) override {
    std::string node_name = ctx.state().value("node", "");
    if (node_name.empty()) {
      const auto placed = req["addon"].value("nodes", std::vector<std::string>{});
      if (!placed.empty()) node_name = placed.front();
    }
    if (!node_name.empty()) {
      try {
        (void)ctx.runtime({{"op", "stop"}, {"node", node_name}, {"name", kWorkload}});
        (void)ctx.runtime({{"op", "remove_file"}, {"node", node_name}, {"path", "greeting.txt"}});
      } catch (const flotilla::sdk::Error& e) {
        // The engine stops every component it recorded once destroy returns, and the node's
        // files go with the node.
        ctx.warn("could not clean up on " + node_name + ": " + e.what());
      }
    }
    ctx.set_state(json::object());
    return json::object();
  }
};

}  // namespace

FLOTILLA_PLUGIN(Greeter, "greeter", "0.1.0", "Example addon: runs flotilla-hello on one node and says hello",
                R"json({
  "schema": {
    "greeting": {"type": "string", "default": "hello", "description": "What the addon says when applied"},
    "port":     {"type": "integer", "required": true, "description": "Port of flotilla-hello on the node's address"}
  },
  "placement": {"mode": "first"}
})json")
