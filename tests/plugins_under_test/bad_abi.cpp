// A plugin built for a future ABI version: the engine must refuse it by name.
#include <flotilla/plugin.h>

namespace {
const void* no_interface(const char*) { return nullptr; }
}  // namespace

extern "C" __attribute__((visibility("default"))) const flt_plugin_descriptor* flotilla_plugin_entry(void) {
  static const flt_plugin_descriptor d = {99, sizeof(flt_plugin_descriptor), "future", "addon", "9.0.0", "built for ABI 99", "{}", &no_interface};
  return &d;
}
