// An addon that hands the host a result that is not JSON.
#include <flotilla/plugin.h>

#include <cstring>

namespace {
flt_status ok(flt_call*, const char*, size_t) { return FLT_OK; }
flt_status bad(flt_call* call, const char*, size_t) {
  static const char kText[] = "{\"endpoints\": {\"x\": ";
  call->host->set_result(call, kText, sizeof kText - 1);
  return FLT_OK;
}
const flt_addon_v1 table = {sizeof(flt_addon_v1), &ok, &bad, &ok};
const void* get_interface(const char* id) { return std::strcmp(id, FLT_INTERFACE_ADDON) == 0 ? &table : nullptr; }
}  // namespace

extern "C" __attribute__((visibility("default"))) const flt_plugin_descriptor* flotilla_plugin_entry(void) {
  static const flt_plugin_descriptor d = {FLT_ABI_VERSION, sizeof(flt_plugin_descriptor), "malformed", "addon", "1.0.0",
                                          "returns malformed JSON", "{}", &get_interface};
  return &d;
}
