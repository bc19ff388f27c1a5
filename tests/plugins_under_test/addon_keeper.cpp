// An addon for the engine's tests that saves its state through the host on every apply and
// fails with the status the host returned when the save did not succeed.
#include <flotilla/plugin.h>

#include <cstring>
#include <string>

namespace {

flt_status validate(flt_call*, const char*, size_t) { return FLT_OK; }

flt_status apply(flt_call* call, const char*, size_t) {
  static const char kState[] = "{\"applied\": true}";
  const flt_status st = call->host->state_set(call, kState, sizeof kState - 1);
  if (st != FLT_OK) {
    const std::string msg = "state_set returned status " + std::to_string(static_cast<int>(st));
    call->host->set_error(call, msg.data(), msg.size());
    return st;
  }
  static const char kResult[] = "{\"endpoints\": {\"web\": \"http://keeper\"}}";
  call->host->set_result(call, kResult, sizeof kResult - 1);
  return FLT_OK;
}

flt_status destroy(flt_call*, const char*, size_t) { return FLT_OK; }

const flt_addon_v1 table = {sizeof(flt_addon_v1), &validate, &apply, &destroy};
const void* get_interface(const char* id) { return std::strcmp(id, FLT_INTERFACE_ADDON) == 0 ? &table : nullptr; }

}  // namespace

extern "C" __attribute__((visibility("default"))) const flt_plugin_descriptor* flotilla_plugin_entry(void) {
  static const flt_plugin_descriptor d = {FLT_ABI_VERSION, sizeof(flt_plugin_descriptor), "keeper", "addon", "1.0.0",
                                          "saves its state on every apply", "{\"provides\": [\"keeping\"]}", &get_interface};
  return &d;
}
