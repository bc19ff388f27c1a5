// Which addon depends on which: an addon depends on every other addon that provides one of
// the capabilities it requires or optionally uses. The one place that edge is decided.
#pragma once

#include "planner.hpp"
#include "result.hpp"

#include <string>
#include <vector>

namespace flotilla {

/// Whether something that requires `requires_` / uses `optional` depends on a provider of `provides`.
[[nodiscard]] bool uses_any(const std::vector<std::string>& requires_, const std::vector<std::string>& optional,
                            const std::vector<std::string>& provides);

/// The names of the other addons `addon` depends on, in the order of `addons`.
[[nodiscard]] std::vector<std::string> addon_providers(const AddonPlan& addon, const std::vector<AddonPlan>& addons);

/// The addon names, topologically sorted by provides/requires; a cycle is an error naming it.
[[nodiscard]] Result<std::vector<std::string>> addon_order(const std::vector<AddonPlan>& addons);

}  // namespace flotilla
