// The etcd addon's plugin entry; the addon itself lives in addon_etcd_lib.
#include "addon_etcd/etcd_addon.hpp"

FLOTILLA_PLUGIN(flotilla::etcd_addon::Etcd, "etcd", "0.1.0", "Discovery backend: etcd 3.4 (Debian) on the process runtime, 1, 3 or 5 members",
                flotilla::etcd_addon::manifest())
