// The registrator addon's plugin entry; the addon itself lives in addon_registrator_lib.
#include "addon_registrator/registrator_addon.hpp"

FLOTILLA_PLUGIN(flotilla::registrator_addon::Registrator, "registrator", "0.1.0",
                "Keeps the discovery catalog (etcd or Consul) equal to the cluster's services and components; DNS names via dnsmasq for etcd",
                flotilla::registrator_addon::manifest())
