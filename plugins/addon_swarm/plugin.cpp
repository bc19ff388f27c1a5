// The swarm addon's plugin entry; the addon itself lives in addon_swarm_lib.
#include "addon_swarm/swarm_addon.hpp"

FLOTILLA_PLUGIN(flotilla::swarm_addon::Swarm, "swarm", "0.1.0",
                "Docker Swarm mode across the placed Docker nodes, through each node's Engine API: init, join, re-join, leave",
                flotilla::swarm_addon::manifest())
