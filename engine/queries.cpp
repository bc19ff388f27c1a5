// Questions the engine asks addons through flotilla.query/1 (`flotilla logs`, `flotilla ip`):
// the addon that owns the data answers, so the engine never reads a plugin's files.
#include "engine.hpp"

#include <spdlog/spdlog.h>

namespace flotilla {

const AddonPlan* Engine::answerer(const std::string& question) const {
  for (const auto& a : addons_)
    if (const Plugin* p = host_.find("addon", a.plugin); p != nullptr && p->answers(question)) return &a;
  return nullptr;
}

Result<CallResult> Engine::ask(const std::string& question, const json& args, const std::function<bool()>& stop,
                               const std::function<void(std::string_view)>& on_part) {
  const AddonPlan* a = answerer(question);
  if (a == nullptr) return fail("no addon of the topology answers `" + question + "`");
  const Plugin* p = host_.find("addon", a->plugin);
  auto state = load_state();
  if (!state) return std::unexpected(state.error());
  // The request every addon operation gets (without a plan: no service instances), plus the question.
  json request = addon_request(*a, *state, Plan{});
  request["question"] = question;
  request["args"] = args;
  const json saved = state->value("addons", json::object()).value(a->name, json::object()).value("state", json::object());
  CallHooks hooks;
  hooks.instance = a->name;
  hooks.cancelled = stop;
  hooks.progress = [prefix = "addon:" + a->plugin + ":" + a->name](const std::string& m) { spdlog::debug("{}: {}", prefix, m); };
  hooks.state_get = [saved] { return saved; };
  return call_query(*p, request, hooks, on_part);
}

}  // namespace flotilla
