// An addon for the engine's secret and logging tests. Its option `token` is a secret; apply uses
// the value as a real plugin would (hands it to its workload in the environment and in a file
// of its own, mode 0600) and also tattles: it logs it at debug, info and warn, reports it as
// progress and, with `fail = true`, fails with it in the error message. The engine must keep
// it out of everything it prints and writes, except the file the addon itself placed. It
// requires `services`, so every change of instances applies it again.
#include <flotilla/plugin.hpp>

#include <string>

namespace {
using flotilla::sdk::json;

class Tattler final : public flotilla::sdk::Addon {
 public:
  json apply(flotilla::sdk::Context& ctx, const json& req) override {
    const std::string token = ctx.option<std::string>("token");
    ctx.log(FLT_LOG_DEBUG, "tattler debug line: token " + token);
    ctx.log(FLT_LOG_INFO, "tattler info line: token " + token);
    ctx.log(FLT_LOG_WARN, "tattler warn line: token " + token);
    ctx.progress("tattler progress: token " + token);
    if (ctx.option<bool>("fail", false)) throw flotilla::sdk::Error(FLT_ERROR, "tattler failed on purpose with token " + token);
    for (const auto& node : req.at("addon").at("nodes")) {
      const auto file = ctx.put_file(node.get<std::string>(), "token", token, 0600);
      flotilla::sdk::Workload w;
      w.name = "holder";
      w.command = {"sleep", "600"};
      w.env = {{"TATTLER_TOKEN", token}, {"TATTLER_TOKEN_FILE", file.path}};
      ctx.start(node.get<std::string>(), w);
    }
    return {{"messages", {"tattler holds a token of " + std::to_string(token.size()) + " characters"}}};
  }
  json destroy(flotilla::sdk::Context& ctx, const json& req) override {
    for (const auto& node : req.at("addon").at("nodes")) ctx.stop(node.get<std::string>(), "holder");
    return json::object();
  }
};
}  // namespace

FLOTILLA_PLUGIN(Tattler, "tattler", "1.0.0", "uses a secret option and tattles it everywhere it can",
                R"json({"schema": {"token": {"type": "string", "required": true, "secret": true, "description": "a token"},
                                   "fail": {"type": "boolean", "default": false, "description": "fail apply, naming the token"}},
                         "provides": ["tattling"], "requires": ["services"], "placement": {"roles": ["infra"], "mode": "first"}})json")
