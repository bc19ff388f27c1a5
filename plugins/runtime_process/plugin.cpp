// The loadable process runtime: its entry symbol over runtime_process_lib.
#include "runtime_process/runtime.hpp"

FLOTILLA_PLUGIN(flotilla::process_runtime::ProcessRuntime, "process", "1.0.0",
                "Runs workloads as native process groups on this machine, supervised through pid files",
                flotilla::process_runtime::manifest())
