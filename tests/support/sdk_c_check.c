/* Compiles the SDK's C header as C11 with warnings as errors. */
#include <flotilla/plugin.h>

const flt_plugin_descriptor* flotilla_sdk_c_check(void);
const flt_plugin_descriptor* flotilla_sdk_c_check(void) { return 0; }
