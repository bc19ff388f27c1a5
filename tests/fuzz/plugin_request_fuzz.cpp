// Fuzz target: the plugins' side of a call. The input is a request as the engine sends it,
// then (after the first NUL byte, if any) the reply the engine gives to a runtime operation.
// It goes through the SDK's C++ wrapper (sdk::operation: parse, Context, status mapping) into
// an addon that reads everything plugins read: its options through a support ConfigMap, its
// placement, its nodes, and the answers of runtime operations. Whatever the bytes, the call
// must end in a known status with a result or an error message; a crash, a sanitizer report
// or an exception escaping the C boundary is a finding.
#include <flotilla/plugin.hpp>
#include <flotilla/support/config_map.hpp>
#include <flotilla/support/plugin_options.hpp>
#include <flotilla/support/request.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

using flotilla::sdk::Context;
using json = nlohmann::json;

struct Options {
  std::string name = "x";
  std::int64_t port = 8080;
  double ratio = 0.5;
  bool enabled = true;
  std::vector<std::string> tags;
  json extra = json::object();
};

const flotilla::support::ConfigMap<Options>& options_map() {
  static const auto map = flotilla::support::ConfigMap<Options>()
                              .string("name", &Options::name, "a name")
                              .pattern("^[a-z][a-z0-9-]*$")
                              .integer("port", &Options::port, "a port")
                              .range(1, 65535)
                              .number("ratio", &Options::ratio, "a ratio")
                              .boolean("enabled", &Options::enabled, "a switch")
                              .strings("tags", &Options::tags, "some tags")
                              .table("extra", &Options::extra, "a table");
  return map;
}

class ReadingAddon final : public flotilla::sdk::Addon {
 public:
  json apply(Context& ctx, const json& request) override {
    const Options o = flotilla::support::addon_options(options_map(), request, "fuzz");
    json seen = {{"port", o.port}, {"tags", o.tags.size()}};
    for (const auto& name : ctx.placement()) {
      const auto node = ctx.node(name);
      (void)flotilla::support::find_node(request, node.name);
      seen["nodes"].push_back(node.address);
      (void)ctx.start(node.name, flotilla::sdk::Workload{"w", {"true"}, "", {}, {}});
      (void)ctx.inspect(node.name, "w");
      (void)ctx.put_file(node.name, "f", "content");
      (void)ctx.remove_file(node.name, "f");
    }
    for (const auto& c : ctx.list()) seen["components"].push_back(c.key);
    (void)ctx.option<std::string>("name", "fallback");
    return seen;
  }
  json destroy(Context&, const json& request) override {
    return {{"config", flotilla::support::plugin_config(request)}, {"state", flotilla::support::str_or(request, "state")}};
  }
};

// The host side: answers every runtime operation with the fuzzed reply.
struct Host {
  flt_call call;
  std::string reply;
  bool has_result = false;
  std::string error;
};
Host* host_of(flt_call* c) { return reinterpret_cast<Host*>(c); }

void host_log(flt_call*, flt_log_level, const char*, size_t) {}
void host_progress(flt_call*, const char*, size_t) {}
int host_is_cancelled(flt_call*) { return 0; }
void host_set_result(flt_call* c, const char*, size_t) { host_of(c)->has_result = true; }
void host_set_error(flt_call* c, const char* msg, size_t len) { host_of(c)->error.assign(msg, len); }
flt_status host_runtime(flt_call* c, const char*, size_t, flt_json_sink sink, void* user) {
  sink(user, host_of(c)->reply.data(), host_of(c)->reply.size());
  return FLT_OK;
}
void host_state_get(flt_call*, flt_json_sink sink, void* user) { sink(user, "{}", 2); }
flt_status host_state_set(flt_call*, const char*, size_t) { return FLT_OK; }

const flt_host_api kHost = {FLT_ABI_VERSION,    sizeof(flt_host_api), &host_log,     &host_progress,  &host_is_cancelled,
                            &host_set_result,   &host_set_error,      &host_runtime, &host_state_get, &host_state_set};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const auto nul = input.find('\0');
  const std::string request = input.substr(0, nul);
  Host host{{&kHost}, nul == std::string::npos ? std::string("{}") : input.substr(nul + 1), false, {}};
  using Op = flotilla::sdk::Addon;
  for (auto op : {&flotilla::sdk::detail::operation<ReadingAddon, Op, &Op::apply>, &flotilla::sdk::detail::operation<ReadingAddon, Op, &Op::destroy>}) {
    host.has_result = false;
    host.error.clear();
    const flt_status st = op(&host.call, request.data(), request.size());
    if (st < FLT_OK || st > FLT_INVALID) std::abort();              // an unknown status
    if (st == FLT_OK && !host.has_result) std::abort();             // success without a result
    if (st != FLT_OK && host.error.empty()) std::abort();           // a failure without a message
  }
  return 0;
}
