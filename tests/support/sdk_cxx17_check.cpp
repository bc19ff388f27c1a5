// Compiles the SDK's C++ wrapper, with a trivial addon exported through FLOTILLA_PLUGIN, as
// C++17 and C++20 with warnings as errors: plugin authors are not bound to the engine's C++23.
// Built as an object library that nothing links, so its entry symbol never meets another one.
#include <flotilla/plugin.hpp>

namespace {

class CheckAddon final : public flotilla::sdk::Addon {
 public:
  flotilla::sdk::json apply(flotilla::sdk::Context& ctx, const flotilla::sdk::json& request) override {
    ctx.info("applying " + request["addon"].value("name", std::string()));
    flotilla::sdk::json state = ctx.state();
    state["applies"] = state.value("applies", 0) + 1;
    ctx.set_state(state);
    return {{"endpoints", flotilla::sdk::json::object()}, {"messages", flotilla::sdk::json::array({"checked"})}};
  }
  flotilla::sdk::json destroy(flotilla::sdk::Context& ctx, const flotilla::sdk::json&) override {
    (void)ctx.runtime({{"op", "list"}});
    return flotilla::sdk::json::object();
  }
};

}  // namespace

FLOTILLA_PLUGIN(CheckAddon, "sdk-check", "0.0.0", "compile check of plugin.hpp", R"json({"schema": {}})json")
