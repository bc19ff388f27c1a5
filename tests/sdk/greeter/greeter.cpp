// Addon `greeter`: the worked example of docs/plugin-guide.md, built out of tree against an
// installed Flotilla. It writes its greeting to a file on its node, runs flotilla-hello there as
// its one component, publishes the URL and says hello; destroy undoes both. It uses only the
// SDK (C++17).
#include <flotilla/plugin.hpp>

#include <chrono>
#include <string>

namespace {

using flotilla::sdk::Context;
using flotilla::sdk::json;

// The component's name. It only has to be unique within this addon: the engine keeps it apart
// from the workloads of services and of other addons on the same node.
constexpr const char* kWorkload = "greeter";
constexpr auto kListenTimeout = std::chrono::seconds(10);

// The node the addon runs on: the first of its resolved placement.
flotilla::sdk::Node placed_node(const Context& ctx) {
  const auto placed = ctx.placement();
  if (placed.empty())
    throw flotilla::sdk::Invalid("greeter: no node to run on; set `roles` or `nodes` in its [[addons]] table");
  // Throws Retryable when the node is not running yet: a later attempt may find it ready.
  return ctx.node(placed.front());
}

class Greeter final : public flotilla::sdk::Addon {
 public:
  // The engine has checked the options' types against the schema; this checks their values.
  json validate(Context& ctx, const json&) override {
    json errors = json::array();
    const int port = ctx.option<int>("port");
    if (port < 1 || port > 65535)
      errors.push_back({{"key", "port"}, {"message", "must be between 1 and 65535, not " + std::to_string(port)}});
    return {{"errors", errors}};
  }

  json apply(Context& ctx, const json&) override {
    const flotilla::sdk::Node node = placed_node(ctx);
    const std::string greeting = ctx.option<std::string>("greeting");
    const int port = ctx.option<int>("port");
    const std::string listen = node.address + ":" + std::to_string(port);

    // Unchanged content leaves the file alone; the engine puts it under files/greeter/.
    const flotilla::sdk::PlacedFile file = ctx.put_file(node.name, "greeting.txt", greeting + "\n");

    ctx.progress("starting flotilla-hello on " + node.name);
    flotilla::sdk::Workload hello;
    hello.name = kWorkload;
    hello.command = {"flotilla-hello", "--listen", listen, "--service", "greeter"};
    hello.ports = {port};
    const flotilla::sdk::Started started = ctx.start(node.name, hello);
    ctx.debug(started.changed ? "flotilla-hello started" : "flotilla-hello was already running");
    // So the endpoint works when `up` prints it; a timeout is Retryable.
    ctx.wait_for_port(node.address, port, kListenTimeout, "greeter: flotilla-hello",
                      "see " + started.record.value("stderr", std::string("its stderr log")) + " and check that the port is free");

    json state = ctx.state();
    state["applies"] = state.value("applies", 0) + 1;
    state["node"] = node.name;
    ctx.set_state(state);

    return {{"endpoints", {{"greeter", "http://" + listen}}},
            {"outputs",
             {{"greeting_file", file.path},
              {"metrics_targets", json::array({{{"job", "greeter"}, {"targets", json::array({listen})}, {"metrics_path", "/metrics"}}})}}},
            {"messages", json::array({greeting + " from greeter"})}};
  }

  json destroy(Context& ctx, const json&) override {
    std::string node_name = ctx.state().value("node", "");
    if (node_name.empty() && !ctx.placement().empty()) node_name = ctx.placement().front();
    if (!node_name.empty()) {
      try {
        ctx.stop(node_name, kWorkload);
        (void)ctx.remove_file(node_name, "greeting.txt");
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
