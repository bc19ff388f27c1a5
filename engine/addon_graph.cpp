#include "addon_graph.hpp"

#include "executor.hpp"
#include "json_access.hpp"

#include <set>

namespace flotilla {

bool uses_any(const std::vector<std::string>& requires_, const std::vector<std::string>& optional,
              const std::vector<std::string>& provides) {
  for (const auto& cap : provides)
    if (contains(requires_, cap) || contains(optional, cap)) return true;
  return false;
}

std::vector<std::string> addon_providers(const AddonPlan& addon, const std::vector<AddonPlan>& addons) {
  std::vector<std::string> out;
  for (const auto& b : addons)
    if (b.name != addon.name && uses_any(addon.requires_, addon.optional, b.provides)) out.push_back(b.name);
  return out;
}

Result<std::vector<std::string>> addon_order(const std::vector<AddonPlan>& addons) {
  StepGraph g;
  for (const auto& a : addons) g.steps.push_back(Step{a.name, a.name, "", addon_providers(a, addons), json::object()});
  if (auto ok = g.check(); !ok) return fail("addons depend on each other in a circle: " + ok.error().message);
  // Kahn's algorithm in file order, so the order is stable.
  std::vector<std::string> out;
  std::set<std::string> done;
  while (out.size() < g.steps.size()) {
    for (const auto& s : g.steps) {
      if (done.count(s.id)) continue;
      if (std::all_of(s.deps.begin(), s.deps.end(), [&](auto& d) { return done.count(d) > 0; })) {
        out.push_back(s.id);
        done.insert(s.id);
      }
    }
  }
  return out;
}

}  // namespace flotilla
