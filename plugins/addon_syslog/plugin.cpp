// The syslog addon's plugin entry; the addon itself lives in addon_syslog_lib.
#include "addon_syslog/syslog_addon.hpp"

FLOTILLA_PLUGIN(flotilla::syslog_addon::SyslogAddon, "syslog", "0.1.0",
                "Log aggregation with rsyslog: a shipper per node tails every workload's output and forwards it over "
                "RELP to a collector on infra, which stores it per service and day for `flotilla logs`",
                flotilla::syslog_addon::manifest())
