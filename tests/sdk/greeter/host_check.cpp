// Calls the greeter's operations without the engine: loads addon_greeter.so, serves the calls
// with a small fake host that records runtime requests and keeps state in memory, and checks
// what the plugin asked for and returned. Run by ctest in the greeter's build directory.
#include <flotilla/plugin.h>

#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

using json = nlohmann::json;

namespace {

// The test's side of a call: the public flt_call first, so the host functions can reach the rest.
struct FakeCall {
  flt_call call;
  std::string result;
  std::string error;
  std::vector<json>* runtime_requests;
  json* state;
};
FakeCall& self(flt_call* c) { return *reinterpret_cast<FakeCall*>(c); }

void host_log(flt_call*, flt_log_level, const char* msg, size_t len) { std::fprintf(stderr, "log: %.*s\n", static_cast<int>(len), msg); }
void host_progress(flt_call*, const char*, size_t) {}
int host_is_cancelled(flt_call*) { return 0; }
void host_set_result(flt_call* c, const char* text, size_t len) { self(c).result.assign(text, len); }
void host_set_error(flt_call* c, const char* text, size_t len) { self(c).error.assign(text, len); }

// Answers like the engine does for a process node, without starting anything.
flt_status host_runtime(flt_call* c, const char* text, size_t len, flt_json_sink sink, void* user) {
  const json req = json::parse(std::string(text, len));
  self(c).runtime_requests->push_back(req);
  json reply = json::object();
  if (req["op"] == "put_file") reply = {{"path", "/fake/files/greeter/" + req["path"].get<std::string>()}, {"changed", true}};
  if (req["op"] == "start") reply = {{"record", {{"pid", 4242}, {"stderr", "/fake/stderr.log"}}}, {"changed", true}};
  const std::string out = reply.dump();
  sink(user, out.data(), out.size());
  return FLT_OK;
}

void host_state_get(flt_call* c, flt_json_sink sink, void* user) {
  const std::string out = self(c).state->dump();
  sink(user, out.data(), out.size());
}
flt_status host_state_set(flt_call* c, const char* text, size_t len) {
  *self(c).state = json::parse(std::string(text, len));
  return FLT_OK;
}

const flt_host_api kHost = {FLT_ABI_VERSION, sizeof(flt_host_api), host_log,     host_progress,  host_is_cancelled,
                            host_set_result, host_set_error,        host_runtime, host_state_get, host_state_set};

int failures = 0;
void check(bool ok, const std::string& what) {
  if (!ok) {
    std::fprintf(stderr, "FAILED: %s\n", what.c_str());
    ++failures;
  }
}

// A listening socket on 127.0.0.1 and a free port, standing in for flotilla-hello.
struct Listener {
  int fd = -1;
  int port = 0;
  Listener() {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t n = sizeof sa;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&sa), n) != 0 || ::listen(fd, 4) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &n) != 0)
      port = 0;
    else
      port = ntohs(sa.sin_port);
  }
  ~Listener() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s PATH/addon_greeter.so\n", argv[0]);
    return 2;
  }
  void* lib = ::dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    std::fprintf(stderr, "cannot load %s: %s\n", argv[1], ::dlerror());
    return 1;
  }
  const auto entry = reinterpret_cast<flt_entry_fn>(::dlsym(lib, FLT_ENTRY_SYMBOL));
  const flt_plugin_descriptor* d = entry ? entry() : nullptr;
  check(d && d->abi_version == FLT_ABI_VERSION && std::string(d->kind) == "addon" && std::string(d->name) == "greeter",
        "the descriptor names an addon called greeter built for this ABI");
  if (!d) return 1;
  const auto* addon = static_cast<const flt_addon_v1*>(d->get_interface(FLT_INTERFACE_ADDON));
  check(addon && !d->get_interface(FLT_INTERFACE_DRIVER), "only the addon interface is offered");
  if (!addon) return 1;

  std::vector<json> requests;
  json state = json::object();
  auto call = [&](flt_operation op, const json& request, FakeCall& c) {
    c = FakeCall{{&kHost}, {}, {}, &requests, &state};
    const std::string text = request.dump();
    return op(&c.call, text.data(), text.size());
  };
  FakeCall c{};

  // validate: a port out of range is reported against its key.
  json req = {{"addon", {{"name", "greeter"}, {"config", {{"greeting", "hi"}, {"port", 70000}}}, {"nodes", json::array()}}}};
  check(call(addon->validate, req, c) == FLT_OK, "validate succeeds");
  const json errors = json::parse(c.result)["errors"];
  check(errors.size() == 1 && errors[0]["key"] == "port", "validate reports the port: " + c.result);

  // apply without a placement is the user's mistake, not a retryable one.
  req = {{"addon", {{"name", "greeter"}, {"config", {{"port", 8090}}}, {"nodes", json::array()}}}, {"nodes", json::array()}};
  check(call(addon->apply, req, c) == FLT_INVALID, "apply without nodes is FLT_INVALID: " + c.error);

  // A missing option is reported by its name (the engine fills defaults, so only a request
  // that bypasses the engine can lack one), not by an assertion.
  req = {{"addon", {{"name", "greeter"}, {"config", {{"greeting", "hi"}}}, {"nodes", json::array({"infra"})}}},
         {"nodes", json::array({{{"name", "infra"}, {"address", "127.0.0.1"}}})}};
  check(call(addon->apply, req, c) == FLT_INVALID && c.error.find("option `port` is missing") != std::string::npos,
        "apply without port names the option: " + c.error);

  // apply on a node: a file, a workload, a state update, an endpoint and a message.
  Listener hello;
  check(hello.port > 0, "a listening socket for the fake workload");
  const std::string listen = "127.0.0.1:" + std::to_string(hello.port);
  req = {{"addon", {{"name", "greeter"}, {"config", {{"greeting", "hi"}, {"port", hello.port}}}, {"nodes", json::array({"infra"})}}},
         {"nodes", json::array({{{"name", "infra"}, {"address", "127.0.0.1"}}})}};
  check(call(addon->apply, req, c) == FLT_OK, "apply succeeds: " + c.error);
  const json result = c.result.empty() ? json::object() : json::parse(c.result);
  check(result["endpoints"]["greeter"] == "http://" + listen, "the endpoint: " + c.result);
  check(result["messages"] == json::array({"hi from greeter"}), "the message: " + c.result);
  check(requests.size() == 2, "two runtime requests");
  if (requests.size() == 2) {
    check(requests[0]["op"] == "put_file" && requests[0]["path"] == "greeting.txt" && requests[0]["content"] == "hi\n",
          "put_file of the greeting: " + requests[0].dump());
    check(requests[1]["op"] == "start" && requests[1]["node"] == "infra" &&
              requests[1]["workload"]["command"] == json::array({"flotilla-hello", "--listen", listen, "--service", "greeter"}),
          "start of flotilla-hello: " + requests[1].dump());
  }
  check(state == json{{"applies", 1}, {"node", "infra"}}, "state counts the apply: " + state.dump());

  // destroy stops the workload on the node it recorded, removes the file and clears the state.
  requests.clear();
  check(call(addon->destroy, req, c) == FLT_OK, "destroy succeeds: " + c.error);
  const json expected = json::array({{{"op", "stop"}, {"node", "infra"}, {"name", "greeter"}},
                                     {{"op", "remove_file"}, {"node", "infra"}, {"path", "greeting.txt"}}});
  check(json(requests) == expected, "destroy stops the workload and removes the file: " + json(requests).dump());
  check(state == json::object(), "destroy clears the state: " + state.dump());

  ::dlclose(lib);
  std::printf("%d failed\n", failures);
  return failures == 0 ? 0 : 1;
}
