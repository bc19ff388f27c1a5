// An addon whose table lacks `destroy`, a required entry; the loader must refuse it by name.
#include <flotilla/plugin.h>

#include <cstring>

namespace {
flt_status ok(flt_call*, const char*, size_t) { return FLT_OK; }
const flt_addon_v1 table = {sizeof(flt_addon_v1), nullptr, &ok, nullptr};
const void* get_interface(const char* id) { return std::strcmp(id, FLT_INTERFACE_ADDON) == 0 ? &table : nullptr; }
}  // namespace

extern "C" __attribute__((visibility("default"))) const flt_plugin_descriptor* flotilla_plugin_entry(void) {
  static const flt_plugin_descriptor d = {FLT_ABI_VERSION, sizeof(flt_plugin_descriptor), "no-destroy", "addon", "1.0.0",
                                          "lacks a required entry", "{}", &get_interface};
  return &d;
}
