// The loadable local driver: its entry symbol over the driver_local_lib library.
#include "driver_local/driver.hpp"

FLOTILLA_PLUGIN(flotilla::local::LocalDriver, "local", "1.0.0",
                "Nodes are loopback addresses on this machine running native processes; needs no root",
                flotilla::local::manifest())
