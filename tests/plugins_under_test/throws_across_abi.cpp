// An addon written against the raw C ABI whose apply lets a C++ exception escape: the
// engine must report it as a failure of this plugin, not crash.
#include <flotilla/plugin.h>

#include <cstring>
#include <stdexcept>

namespace {
flt_status ok(flt_call*, const char*, size_t) { return FLT_OK; }
flt_status boom(flt_call*, const char*, size_t) { throw std::runtime_error("boom from a raw plugin"); }
const flt_addon_v1 table = {sizeof(flt_addon_v1), &ok, &boom, &ok};
const void* get_interface(const char* id) { return std::strcmp(id, FLT_INTERFACE_ADDON) == 0 ? &table : nullptr; }
}  // namespace

extern "C" __attribute__((visibility("default"))) const flt_plugin_descriptor* flotilla_plugin_entry(void) {
  static const flt_plugin_descriptor d = {FLT_ABI_VERSION, sizeof(flt_plugin_descriptor), "raw-thrower", "addon", "1.0.0",
                                          "throws across the C boundary", "{}", &get_interface};
  return &d;
}
