// Compiles the SDK's C++ wrapper, with a trivial addon exported through FLOTILLA_PLUGIN, as
// C++17 and C++20 with warnings as errors: plugin authors are not bound to the engine's C++23.
// Built as an object library that nothing links, so its entry symbol never meets another one.
// It uses every typed helper of the Context and answers a query (SDK 1.1).
#include <flotilla/plugin.hpp>

namespace {

using flotilla::sdk::json;

class CheckAddon final : public flotilla::sdk::Addon, public flotilla::sdk::Answers {
 public:
  json apply(flotilla::sdk::Context& ctx, const json& request) override {
    ctx.info("applying " + request["addon"].value("name", std::string()));
    const int port = ctx.option<int>("port");
    const std::string greeting = ctx.option<std::string>("greeting", "hello");
    const flotilla::sdk::Node node = ctx.node(ctx.placement().at(0));
    const flotilla::sdk::PlacedFile file = ctx.put_file(node.name, "greeting.txt", greeting);
    flotilla::sdk::Workload w;
    w.name = "check";
    w.command = {"flotilla-hello", "--listen", node.address + ":" + std::to_string(port), "--root", file.dir};
    w.ports = {port};
    const flotilla::sdk::Started started = ctx.start(node.name, w);
    ctx.wait_for_port(node.address, port, std::chrono::seconds(10), "flotilla-hello", started.record.value("stderr", ""));
    json state = ctx.state();
    state["applies"] = state.value("applies", 0) + 1;
    ctx.set_state(state);
    return {{"endpoints", json::object()}, {"messages", json::array({"checked", ctx.inspect(node.name, "check")})}};
  }
  json destroy(flotilla::sdk::Context& ctx, const json&) override {
    for (const flotilla::sdk::Component& c : ctx.list()) {
      ctx.stop(c.node, c.name);
      (void)ctx.remove_file(c.node, "greeting.txt");
    }
    return json::object();
  }
  json answer(flotilla::sdk::Context& ctx, const json& request) override {
    ctx.emit({{"question", request.value("question", "")}});
    return {{"answered", true}};
  }
};

}  // namespace

FLOTILLA_PLUGIN(CheckAddon, "sdk-check", "0.0.0", "compile check of plugin.hpp",
                R"json({"schema": {"port": {"type": "integer", "default": 1}}, "answers": ["check"]})json")
