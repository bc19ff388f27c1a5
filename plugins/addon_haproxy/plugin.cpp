// The loadable haproxy plugin: its entry symbol over addon_haproxy_lib.
#include "addon_haproxy/addon.hpp"

FLOTILLA_PLUGIN(flotilla::haproxy::HaproxyAddon, "haproxy", "0.1.0",
                "HAProxy ingress: routes /<service> to the service's healthy instances; scales without a reload",
                flotilla::haproxy::manifest())
