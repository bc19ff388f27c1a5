// Reading state written by older releases: the shape of each format version and how the
// engine brings it to the current one. The result is written by the next commit, so an old
// file is replaced on the first write, never by a command that only reads.
#pragma once

#include "planner.hpp"
#include "topology.hpp"

#include <nlohmann/json.hpp>

#include <vector>

namespace flotilla {

using json = nlohmann::json;

/// Brings `state` to kStateFormatVersion in memory. From format 1:
/// - an instance's spec_hash or an addon's config_hash equal to the legacy hash of what the
///   topology asks for now is replaced by the current hash of it (the hash function changed,
///   the spec did not: the running cluster must not be restarted); any other recorded hash is
///   kept and so still plans a change;
/// - nodes recorded without driver option hashes adopt `driver_options` (the options in use
///   when the state was written are taken to be the topology's current ones).
[[nodiscard]] json migrate_state(json state, const Topology& topo, const std::vector<AddonPlan>& addons,
                                 const json& driver_options);

}  // namespace flotilla
