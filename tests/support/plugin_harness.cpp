#include "support/plugin_harness.hpp"

#include <dlfcn.h>

#include <cstdlib>
#include <stdexcept>
#include <string>

namespace flotilla::test {
namespace {

/// The host side of one call: flt_call must come first, the plugin sees only that.
struct HarnessCall {
  flt_call base;
  PluginCallOutcome* out;
  bool cancelled;
};

HarnessCall* self(flt_call* call) { return reinterpret_cast<HarnessCall*>(call); }

const char* level_name(flt_log_level level) {
  switch (level) {
    case FLT_LOG_TRACE: return "TRACE";
    case FLT_LOG_DEBUG: return "DEBUG";
    case FLT_LOG_INFO: return "INFO";
    case FLT_LOG_WARN: return "WARN";
    case FLT_LOG_ERROR: return "ERROR";
  }
  return "?";
}

void host_log(flt_call* call, flt_log_level level, const char* msg, size_t len) {
  self(call)->out->logs.push_back(std::string(level_name(level)) + " " + std::string(msg, len));
}
void host_progress(flt_call* call, const char* msg, size_t len) { self(call)->out->progress.emplace_back(msg, len); }
int host_is_cancelled(flt_call* call) { return self(call)->cancelled ? 1 : 0; }
void host_set_result(flt_call* call, const char* json, size_t len) {
  self(call)->out->result = nlohmann::json::parse(std::string_view(json, len));
}
void host_set_error(flt_call* call, const char* msg, size_t len) { self(call)->out->error.assign(msg, len); }
flt_status host_runtime(flt_call*, const char*, size_t, flt_json_sink sink, void* user) {
  static const std::string kError = R"({"error":"runtime operations are for addons only"})";
  sink(user, kError.data(), kError.size());
  return FLT_NOT_SUPPORTED;
}
void host_state_get(flt_call*, flt_json_sink sink, void* user) { sink(user, "{}", 2); }
flt_status host_state_set(flt_call*, const char*, size_t) { return FLT_NOT_SUPPORTED; }

const flt_host_api kHost = {FLT_ABI_VERSION, sizeof(flt_host_api), &host_log,      &host_progress,  &host_is_cancelled,
                            &host_set_result, &host_set_error,      &host_runtime, &host_state_get, &host_state_set};

const char* interface_id(std::string_view kind) {
  if (kind == "driver") return FLT_INTERFACE_DRIVER;
  if (kind == "runtime") return FLT_INTERFACE_RUNTIME;
  if (kind == "addon") return FLT_INTERFACE_ADDON;
  return nullptr;
}

}  // namespace

std::string PluginCallOutcome::describe() const {
  std::string text = "status " + std::to_string(static_cast<int>(status));
  if (!error.empty()) text += ", error: " + error;
  if (!result.is_null()) text += ", result: " + result.dump();
  for (const auto& line : logs) text += "\n  log: " + line;
  return text;
}

PluginHarness::PluginHarness(const std::string& file_stem, const std::string& dir) {
  std::string base = dir;
  if (base.empty()) {
    const char* env = std::getenv("FLOTILLA_PLUGIN_DIR");
#ifdef FLOTILLA_PLUGIN_DIR
    base = env && *env ? env : FLOTILLA_PLUGIN_DIR;
#else
    base = env ? env : "";
#endif
  }
  path_ = base + "/" + file_stem + ".so";
  handle_ = ::dlopen(path_.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle_) throw std::runtime_error("cannot load plugin " + path_ + ": " + ::dlerror() + "; build its target first");
  auto entry = reinterpret_cast<flt_entry_fn>(::dlsym(handle_, FLT_ENTRY_SYMBOL));
  auto fail = [&](const std::string& why) {
    ::dlclose(handle_);
    handle_ = nullptr;
    throw std::runtime_error("plugin " + path_ + ": " + why);
  };
  if (!entry) fail(std::string("does not export ") + FLT_ENTRY_SYMBOL);
  descriptor_ = entry();
  if (!descriptor_) fail("entry returned no descriptor");
  if (descriptor_->abi_version != FLT_ABI_VERSION)
    fail("ABI version " + std::to_string(descriptor_->abi_version) + ", the harness serves " + std::to_string(FLT_ABI_VERSION));
  if (descriptor_->struct_size < sizeof(flt_plugin_descriptor)) fail("descriptor is smaller than ABI 1's");
  const char* id = descriptor_->kind ? interface_id(descriptor_->kind) : nullptr;
  if (!id) fail(std::string("unknown kind `") + (descriptor_->kind ? descriptor_->kind : "(null)") + "`");
  interface_ = descriptor_->get_interface(id);
  if (!interface_) fail(std::string("does not implement ") + id);
  // Every interface table starts with its struct_size.
  const uint32_t size = *static_cast<const uint32_t*>(interface_);
  const std::string_view kind = descriptor_->kind;
  const size_t want = kind == "driver" ? sizeof(flt_driver_v1) : kind == "runtime" ? sizeof(flt_runtime_v1) : sizeof(flt_addon_v1);
  if (size < want) fail(std::string(id) + " table is smaller than the ABI's");
}

PluginHarness::~PluginHarness() {
  if (handle_) ::dlclose(handle_);
}

nlohmann::json PluginHarness::manifest() const {
  return nlohmann::json::parse(descriptor_->manifest ? descriptor_->manifest : "{}");
}

flt_operation PluginHarness::operation(std::string_view op) const {
  const std::string_view kind = descriptor_->kind;
  if (kind == "driver") {
    const auto* t = static_cast<const flt_driver_v1*>(interface_);
    if (op == "validate") return t->validate;
    if (op == "create") return t->create;
    if (op == "inspect") return t->inspect;
    if (op == "destroy") return t->destroy;
  } else if (kind == "runtime") {
    const auto* t = static_cast<const flt_runtime_v1*>(interface_);
    if (op == "validate") return t->validate;
    if (op == "start") return t->start;
    if (op == "inspect") return t->inspect;
    if (op == "stop") return t->stop;
    if (op == "signal") return t->signal;
    if (op == "put_file") return t->put_file;
  } else {
    const auto* t = static_cast<const flt_addon_v1*>(interface_);
    if (op == "validate") return t->validate;
    if (op == "apply") return t->apply;
    if (op == "destroy") return t->destroy;
  }
  throw std::invalid_argument("a " + std::string(kind) + " plugin has no operation `" + std::string(op) + "`");
}

PluginCallOutcome PluginHarness::call(std::string_view op, const nlohmann::json& request) const {
  const flt_operation fn = operation(op);
  PluginCallOutcome out;
  HarnessCall call{{&kHost}, &out, cancelled_};
  const std::string text = request.dump();
  out.status = fn(&call.base, text.data(), text.size());
  return out;
}

}  // namespace flotilla::test
