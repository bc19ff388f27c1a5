// The consul addon's plugin entry; the addon itself lives in addon_consul_lib.
#include "addon_consul/consul_addon.hpp"

FLOTILLA_PLUGIN(flotilla::consul_addon::Consul, "consul", "0.1.0",
                "Discovery backend: Consul servers and agents (consul binary on PATH, or the hashicorp/consul image)",
                flotilla::consul_addon::manifest())
