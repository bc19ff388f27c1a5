// Addon `swarm`: Docker Swarm mode across the placed nodes (roles ["swarm"] by default), driven
// through each node's Docker Engine API. The first node initialises the swarm, the others join
// it as managers (the first `managers` nodes) or workers with join tokens fetched from a manager
// each time they are needed; they are never kept. A node that left is joined again by the next
// apply, and destroy makes every node leave (workers first).
#pragma once

#include <flotilla/plugin.hpp>

namespace flotilla::swarm_addon {

/// The addon's manifest: option schema and placement.
const char* manifest();

/// The addon's operations, as the plugin entry exports them.
class Swarm final : public flotilla::sdk::Addon {
 public:
  sdk::json validate(sdk::Context& ctx, const sdk::json& req) override;
  sdk::json apply(sdk::Context& ctx, const sdk::json& req) override;
  sdk::json destroy(sdk::Context& ctx, const sdk::json& req) override;
};

}  // namespace flotilla::swarm_addon
