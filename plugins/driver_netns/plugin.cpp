// The loadable netns driver: its entry symbol over the driver_netns_lib library.
#include "driver_netns/driver.hpp"

FLOTILLA_PLUGIN(flotilla::netns::NetnsDriver, "netns", "0.1.0",
                "Nodes are Linux network namespaces on a bridge, each running its own dockerd; needs root",
                flotilla::netns::manifest())
