// Header-only C++ wrapper over the Flotilla plugin ABI (plugin.h), SDK 1.2. Needs C++17.
//
// A plugin is a class deriving from flotilla::sdk::Driver, Runtime or Addon (an addon may also
// derive from Answers to answer questions through flotilla.query/1), exported with
// FLOTILLA_PLUGIN(...). The wrapper turns every exception into a status and a message, so
// nothing C++ crosses the boundary. Every request and result document is described in
// docs/sdk-reference.md; docs/plugin-guide.md explains how to write a plugin.
#pragma once

#include <flotilla/plugin.h>

#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <vector>

namespace flotilla::sdk {

using json = nlohmann::json;

/// An error with a status: throw it from an operation to choose the status the engine sees.
class Error : public std::runtime_error {
 public:
  Error(flt_status status, const std::string& message) : std::runtime_error(message), status_(status) {}
  [[nodiscard]] flt_status status() const noexcept { return status_; }

 private:
  flt_status status_;
};

/// Thrown for a failure that may pass if tried again (the engine retries with backoff).
struct Retryable : Error {
  explicit Retryable(const std::string& m) : Error(FLT_RETRYABLE, m) {}
};
/// Thrown for bad configuration or requests; the message says what to change.
struct Invalid : Error {
  explicit Invalid(const std::string& m) : Error(FLT_INVALID, m) {}
};
/// Thrown when the thing asked about does not exist.
struct NotFound : Error {
  explicit NotFound(const std::string& m) : Error(FLT_NOT_FOUND, m) {}
};
/// Thrown when the plugin cannot do this here (e.g. a runtime it does not support).
struct NotSupported : Error {
  explicit NotSupported(const std::string& m) : Error(FLT_NOT_SUPPORTED, m) {}
};
/// Thrown when the host asked to abort.
struct Cancelled : Error {
  Cancelled() : Error(FLT_CANCELLED, "cancelled") {}
};

/// A node as requests describe it (docs/sdk-reference.md, "Common objects"). Fields the
/// request does not carry yet (an address before the driver created the node) are empty.
struct Node {
  std::string name;
  std::string group;
  int index = 0;  // 1-based position in its group
  int slot = 0;   // small number unique among the cluster's nodes, kept for the node's life
  std::vector<std::string> roles;
  json labels = json::object();
  std::string address;
  std::string runtime;
  std::string workdir;
  json runtime_config = json::object();
  std::string state;

  [[nodiscard]] static Node from_json(const json& j) {
    Node n;
    if (!j.is_object()) return n;
    n.name = j.value("name", std::string());
    n.group = j.value("group", std::string());
    n.index = j.value("index", 0);
    n.slot = j.value("slot", 0);
    if (auto it = j.find("roles"); it != j.end() && it->is_array())
      for (const auto& r : *it)
        if (r.is_string()) n.roles.push_back(r.get<std::string>());
    n.labels = j.value("labels", json::object());
    n.address = j.value("address", std::string());
    n.runtime = j.value("runtime", std::string());
    n.workdir = j.value("workdir", std::string());
    n.runtime_config = j.value("runtime_config", json::object());
    n.state = j.value("state", std::string());
    return n;
  }
};

/// A workload an addon starts on a node (`command` for the process runtime, `image` for
/// Docker runtimes). `name` is the addon's own; the engine keeps it apart from other owners.
struct Workload {
  std::string name;
  std::vector<std::string> command;
  std::string image;
  std::map<std::string, std::string> env;
  std::vector<int> ports;

  [[nodiscard]] json to_json() const {
    json j = {{"name", name}, {"env", env}, {"ports", ports}};
    if (!command.empty()) j["command"] = command;
    if (!image.empty()) j["image"] = image;
    return j;
  }
};

/// What `start` did: the runtime's record of the workload, and whether anything changed
/// (false when the same spec was already running).
struct Started {
  json record = json::object();
  bool changed = true;
};

/// One operation of Context::runtime_batch: its status and result (FLT_OK), or its error.
struct BatchResult {
  flt_status status = FLT_OK;
  json result = json::object();
  std::string error;
};

/// A file placed on a node: where the node's workloads find it, its directory, and whether
/// the content or mode changed (false: the file was left untouched).
struct PlacedFile {
  std::string path;
  std::string dir;
  bool changed = false;
};

/// A component the engine recorded for this addon (`{"op": "list"}`).
struct Component {
  std::string key;  // "<node>/<name>"
  std::string node;
  std::string name;
  json record = json::object();
};

namespace detail {

inline const char* type_name(const json& v) { return v.type_name(); }

template <class T>
T convert_option(const json& value, const std::string& key) {
  try {
    return value.get<T>();
  } catch (const json::exception&) {
    throw Invalid("option `" + key + "` has the wrong type (" + type_name(value) +
                  "); check it against the plugin's schema in `flotilla plugins --output json`");
  }
}

}  // namespace detail

/// The option `key` of an options table (`config`), converted to T. Throws Invalid naming the
/// key when it is missing or of another type, never asserts. The engine fills in defaults
/// from the manifest's schema, so a key with a default or `required` is always there.
template <class T>
T option(const json& config, const std::string& key) {
  const auto it = config.is_object() ? config.find(key) : config.end();
  if (!config.is_object() || it == config.end() || it->is_null())
    throw Invalid("option `" + key + "` is missing; declare it in the plugin's schema with a default, or as required");
  return detail::convert_option<T>(*it, key);
}

/// Like option(config, key), but `fallback` when the key is missing; a value of another type
/// is still an error.
template <class T>
T option(const json& config, const std::string& key, const T& fallback) {
  const auto it = config.is_object() ? config.find(key) : config.end();
  if (!config.is_object() || it == config.end() || it->is_null()) return fallback;
  return detail::convert_option<T>(*it, key);
}

/// The host's services for one call; valid only during that call, on its thread.
class Context {
 public:
  explicit Context(flt_call* call, const json* request = nullptr, flt_json_sink emit = nullptr, void* emit_user = nullptr)
      : call_(call), request_(request), emit_(emit), emit_user_(emit_user) {}

  void log(flt_log_level level, std::string_view msg) const { call_->host->log(call_, level, msg.data(), msg.size()); }
  void debug(std::string_view msg) const { log(FLT_LOG_DEBUG, msg); }
  void info(std::string_view msg) const { log(FLT_LOG_INFO, msg); }
  void warn(std::string_view msg) const { log(FLT_LOG_WARN, msg); }
  void error(std::string_view msg) const { log(FLT_LOG_ERROR, msg); }

  /// Tells the progress display what is happening now.
  void progress(std::string_view msg) const { call_->host->progress(call_, msg.data(), msg.size()); }

  /// True once the user asked to abort.
  [[nodiscard]] bool cancelled() const { return call_->host->is_cancelled(call_) != 0; }
  /// Throws Cancelled if the user asked to abort.
  void check_cancelled() const {
    if (cancelled()) throw Cancelled();
  }

  /// The request of this call (an empty object for a Context made without one).
  [[nodiscard]] const json& request() const {
    static const json empty = json::object();
    return request_ != nullptr ? *request_ : empty;
  }

  /// The plugin's options: `addon.config` in addon requests, `config` in driver requests.
  [[nodiscard]] const json& config() const {
    static const json empty = json::object();
    const json& req = request();
    if (auto a = req.find("addon"); a != req.end() && a->is_object())
      if (auto c = a->find("config"); c != a->end() && c->is_object()) return *c;
    if (auto c = req.find("config"); c != req.end() && c->is_object()) return *c;
    return empty;
  }

  /// The option `key`, converted to T; Invalid naming the key when missing or ill-typed.
  template <class T>
  [[nodiscard]] T option(const std::string& key) const {
    return ::flotilla::sdk::option<T>(config(), key);
  }
  /// The option `key`, or `fallback` when it is missing.
  template <class T>
  [[nodiscard]] T option(const std::string& key, const T& fallback) const {
    return ::flotilla::sdk::option<T>(config(), key, fallback);
  }

  /// The names of the nodes an addon is placed on (`addon.nodes`), in order.
  [[nodiscard]] std::vector<std::string> placement() const {
    std::vector<std::string> out;
    const json& req = request();
    if (auto a = req.find("addon"); a != req.end() && a->is_object())
      if (auto n = a->find("nodes"); n != a->end() && n->is_array())
        for (const auto& x : *n)
          if (x.is_string()) out.push_back(x.get<std::string>());
    return out;
  }

  /// The node `name` from the request's `nodes` (in addon requests, the running nodes).
  /// Throws Retryable when it is not there: a node still being created may be there later.
  [[nodiscard]] Node node(const std::string& name) const {
    const json& req = request();
    if (auto nodes = req.find("nodes"); nodes != req.end() && nodes->is_array())
      for (const auto& n : *nodes)
        if (n.is_object() && n.value("name", std::string()) == name) return Node::from_json(n);
    if (auto n = req.find("node"); n != req.end() && n->is_object() && n->value("name", std::string()) == name)
      return Node::from_json(*n);
    throw Retryable("node " + name + " is not running (yet): it is not among the nodes of this request");
  }

  /// Runs a runtime operation on a node (addons only); throws Error on failure.
  [[nodiscard]] json runtime(const json& request) const {
    const std::string text = request.dump();
    std::string out;
    const flt_status st = call_->host->runtime(call_, text.data(), text.size(), &Context::sink, &out);
    json doc = out.empty() ? json::object() : json::parse(out, nullptr, false);
    if (st != FLT_OK) {
      std::string msg = doc.is_object() && doc.contains("error") && doc["error"].is_string() ? doc["error"].get<std::string>() : out;
      throw Error(st, msg);
    }
    return doc;
  }

  /// SDK 1.2: runs several runtime operations at once (the engine spreads them over its
  /// parallelism, bounded by the plugin's max_parallel), e.g. one exporter start per node.
  /// Each result is in the place of its operation; one failing does not stop the others.
  [[nodiscard]] std::vector<BatchResult> runtime_batch(const std::vector<json>& ops) const {
    if (ops.empty()) return {};
    const json r = runtime({{"op", "batch"}, {"ops", ops}});
    std::vector<BatchResult> out(ops.size());
    const json results = r.is_object() ? r.value("results", json::array()) : json::array();
    for (size_t i = 0; i < out.size(); ++i) {
      const json one = i < results.size() && results[i].is_object() ? results[i] : json{{"status", FLT_ERROR}, {"error", "no result"}};
      out[i].status = static_cast<flt_status>(one.value("status", static_cast<int>(FLT_ERROR)));
      out[i].result = one.value("result", json::object());
      out[i].error = one.value("error", std::string());
    }
    return out;
  }
  /// runtime_batch that throws, once every operation has run, the first failure (its status,
  /// and a message naming every operation that failed); otherwise the results in order.
  std::vector<json> runtime_all(const std::vector<json>& ops) const { return all_ok(runtime_batch(ops)); }
  /// The results of a batch in order; throws, when any failed, the first failure's status
  /// with every failure's message.
  static std::vector<json> all_ok(const std::vector<BatchResult>& batch) {
    std::vector<json> results;
    std::string failures;
    flt_status first = FLT_OK;
    for (const BatchResult& r : batch) {
      results.push_back(r.result);
      if (r.status == FLT_OK) continue;
      if (first == FLT_OK) first = r.status;
      failures += (failures.empty() ? "" : "; ") + r.error;
    }
    if (first != FLT_OK) throw Error(first, failures);
    return results;
  }
  /// SDK 1.2: stops the workloads `which` (each its node and name) at once, as one batch, and
  /// forgets them; a name never started is fine. One result each, in the order of `which`.
  [[nodiscard]] std::vector<BatchResult> stop_each(const std::vector<Component>& which) const {
    std::vector<json> ops;
    ops.reserve(which.size());
    for (const Component& c : which) ops.push_back({{"op", "stop"}, {"node", c.node}, {"name", c.name}});
    return runtime_batch(ops);
  }

  /// Starts `workload` on `node` (or leaves it running when its spec is unchanged).
  Started start(const std::string& node, const Workload& workload) const {
    const json r = runtime({{"op", "start"}, {"node", node}, {"workload", workload.to_json()}});
    Started s;
    if (r.is_object()) {
      s.record = r.value("record", json::object());
      s.changed = r.value("changed", true);
    }
    return s;
  }
  /// Stops the addon's workload `name` on `node` and forgets it; a name never started is fine.
  void stop(const std::string& node, const std::string& name) const { (void)runtime({{"op", "stop"}, {"node", node}, {"name", name}}); }
  /// The state of the addon's workload `name` on `node`: "running", "exited" or "missing".
  [[nodiscard]] std::string inspect(const std::string& node, const std::string& name) const {
    const json r = runtime({{"op", "inspect"}, {"node", node}, {"name", name}});
    return r.is_object() ? r.value("state", std::string("missing")) : std::string("missing");
  }
  /// Sends `signal` ("HUP", "USR2", ...) to the addon's workload `name` on `node`.
  void signal(const std::string& node, const std::string& name, const std::string& signal) const {
    (void)runtime({{"op", "signal"}, {"node", node}, {"name", name}, {"signal", signal}});
  }
  /// Writes `content` to the addon's file `path` (relative) on `node`.
  PlacedFile put_file(const std::string& node, const std::string& path, const std::string& content, int mode = 0644) const {
    const json r = runtime({{"op", "put_file"}, {"node", node}, {"path", path}, {"content", content}, {"mode", mode}});
    PlacedFile f;
    f.path = r.is_object() ? r.value("path", std::string()) : std::string();
    if (f.path.empty()) throw Error(FLT_ERROR, "put_file of " + path + " on node " + node + " returned no path");
    const auto slash = f.path.find_last_of('/');
    f.dir = slash == std::string::npos ? std::string(".") : slash == 0 ? std::string("/") : f.path.substr(0, slash);
    f.changed = r.value("changed", false);
    return f;
  }
  /// Removes the addon's file `path` from `node`; true if it existed.
  bool remove_file(const std::string& node, const std::string& path) const {
    const json r = runtime({{"op", "remove_file"}, {"node", node}, {"path", path}});
    return r.is_object() && r.value("changed", false);
  }
  /// Every component the engine recorded for this addon.
  [[nodiscard]] std::vector<Component> list() const {
    const json r = runtime({{"op", "list"}});
    std::vector<Component> out;
    if (auto c = r.find("components"); c != r.end() && c->is_array())
      for (const auto& x : *c)
        if (x.is_object())
          out.push_back({x.value("key", std::string()), x.value("node", std::string()), x.value("name", std::string()),
                         x.value("record", json::object())});
    return out;
  }

  /// Returns once something accepts TCP connections on address:port. Checks cancellation
  /// between attempts; after `timeout` throws Retryable naming `what`, the address and
  /// `hint` (e.g. "see /path/stderr.log").
  void wait_for_port(const std::string& address, int port, std::chrono::milliseconds timeout, const std::string& what = "the workload",
                     const std::string& hint = "") const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      check_cancelled();
      if (accepts_connections(address, port, std::chrono::milliseconds(200))) return;
      if (std::chrono::steady_clock::now() >= deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    throw Retryable(what + " does not accept connections on " + address + ":" + std::to_string(port) + " after " +
                    std::to_string(std::chrono::duration_cast<std::chrono::seconds>(timeout).count()) + " s" +
                    (hint.empty() ? std::string() : "; " + hint));
  }

  /// True if something accepts TCP connections on address:port (IPv4) within `timeout`.
  [[nodiscard]] static bool accepts_connections(const std::string& address, int port, std::chrono::milliseconds timeout) {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<std::uint16_t>(port));
    if (port < 1 || port > 65535 || ::inet_pton(AF_INET, address.c_str(), &sa.sin_addr) != 1) return false;
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    bool ok = ::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0;
    if (!ok && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      int err = 0;
      socklen_t len = sizeof err;
      ok = ::poll(&p, 1, static_cast<int>(timeout.count())) == 1 && ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
    }
    ::close(fd);
    return ok;
  }

  /// The plugin instance's saved state ({} at first).
  [[nodiscard]] json state() const {
    std::string out;
    call_->host->state_get(call_, &Context::sink, &out);
    return out.empty() ? json::object() : json::parse(out);
  }
  /// Replaces the plugin instance's saved state; throws Error when the engine could not save it.
  void set_state(const json& state) const {
    const std::string text = state.dump();
    const flt_status st = call_->host->state_set(call_, text.data(), text.size());
    if (st != FLT_OK) throw Error(st == FLT_RETRYABLE ? FLT_RETRYABLE : FLT_ERROR, "could not save plugin state");
  }

  /// Gives one part of a query's answer to the engine (Answers::answer only; Error elsewhere).
  void emit(const json& part) const {
    if (emit_ == nullptr) throw Error(FLT_ERROR, "emit is available only while answering a query");
    const std::string text = part.dump(-1, ' ', false, json::error_handler_t::replace);
    emit_(emit_user_, text.data(), text.size());
  }
  /// Like emit(), for a part whose keys must keep their order.
  void emit_ordered(const nlohmann::ordered_json& part) const {
    if (emit_ == nullptr) throw Error(FLT_ERROR, "emit is available only while answering a query");
    const std::string text = part.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    emit_(emit_user_, text.data(), text.size());
  }

 private:
  static void sink(void* user, const char* data, size_t len) { static_cast<std::string*>(user)->assign(data, len); }
  flt_call* call_;
  const json* request_;
  flt_json_sink emit_;
  void* emit_user_;
};

/// Base of driver plugins. Requests and results are documented in docs/sdk-reference.md.
class Driver {
 public:
  virtual ~Driver() = default;
  virtual json validate(Context&, const json&) { return json{{"errors", json::array()}}; }
  virtual json create(Context& ctx, const json& request) = 0;
  virtual json inspect(Context&, const json&) { return json{{"state", "running"}}; }
  virtual json destroy(Context& ctx, const json& request) = 0;
};

/// Base of runtime plugins.
class Runtime {
 public:
  virtual ~Runtime() = default;
  virtual json validate(Context&, const json&) { return json{{"errors", json::array()}}; }
  virtual json start(Context& ctx, const json& request) = 0;
  virtual json inspect(Context& ctx, const json& request) = 0;
  virtual json stop(Context& ctx, const json& request) = 0;
  virtual json signal(Context&, const json&) { throw NotSupported("signal is not supported by this runtime"); }
  virtual json put_file(Context&, const json&) { throw NotSupported("put_file is not supported by this runtime"); }
};

/// Base of addon plugins.
class Addon {
 public:
  virtual ~Addon() = default;
  virtual json validate(Context&, const json&) { return json{{"errors", json::array()}}; }
  virtual json apply(Context& ctx, const json& request) = 0;
  virtual json destroy(Context& ctx, const json& request) = 0;
};

/// SDK 1.1: an addon that also derives from Answers answers questions about its data through
/// flotilla.query/1; its manifest lists them under "answers". `request["question"]` says which;
/// parts of a long answer go out with ctx.emit(), the return value is the final result.
class Answers {
 public:
  virtual ~Answers() = default;
  virtual json answer(Context& ctx, const json& request) = 0;
};

namespace detail {

inline void report_error(flt_call* call, std::string_view msg) { call->host->set_error(call, msg.data(), msg.size()); }

/// The plugin object: created on first use, lives until the library is unloaded.
template <class T>
T& singleton() {
  static T plugin;
  return plugin;
}

/// Runs one operation: parses the request, calls the member, and maps every outcome to a status.
template <class T, class Base, json (Base::*Op)(Context&, const json&)>
flt_status operation(flt_call* call, const char* request, size_t len) noexcept {
  try {
    const json req = json::parse(std::string_view(request, len));
    Context ctx(call, &req);
    Base& self = singleton<T>();
    const json result = (self.*Op)(ctx, req);
    const std::string text = result.dump(-1, ' ', false, json::error_handler_t::replace);
    call->host->set_result(call, text.data(), text.size());
    return FLT_OK;
  } catch (const Error& e) {
    report_error(call, e.what());
    return e.status();
  } catch (const std::exception& e) {
    report_error(call, e.what());
    return FLT_ERROR;
  } catch (...) {
    report_error(call, "unknown exception in plugin");
    return FLT_ERROR;
  }
}

/// Answers one question: like operation(), with the emit callback in the Context.
template <class T>
flt_status answer(flt_call* call, const char* request, size_t len, flt_json_sink emit, void* emit_user) noexcept {
  try {
    const json req = json::parse(std::string_view(request, len));
    Context ctx(call, &req, emit, emit_user);
    Answers& self = singleton<T>();
    const json result = self.answer(ctx, req);
    const std::string text = result.dump(-1, ' ', false, json::error_handler_t::replace);
    call->host->set_result(call, text.data(), text.size());
    return FLT_OK;
  } catch (const Error& e) {
    report_error(call, e.what());
    return e.status();
  } catch (const std::exception& e) {
    report_error(call, e.what());
    return FLT_ERROR;
  } catch (...) {
    report_error(call, "unknown exception in plugin");
    return FLT_ERROR;
  }
}

/// The function table of the interface T implements (and its query table if it derives from
/// Answers), or null for any other id.
template <class T>
const void* interface_for(const char* id) noexcept {
  if constexpr (std::is_base_of_v<Driver, T>) {
    static const flt_driver_v1 table = {sizeof(flt_driver_v1), &operation<T, Driver, &Driver::validate>,
                                        &operation<T, Driver, &Driver::create>, &operation<T, Driver, &Driver::inspect>,
                                        &operation<T, Driver, &Driver::destroy>};
    return std::strcmp(id, FLT_INTERFACE_DRIVER) == 0 ? &table : nullptr;
  } else if constexpr (std::is_base_of_v<Runtime, T>) {
    static const flt_runtime_v1 table = {
        sizeof(flt_runtime_v1),
        &operation<T, Runtime, &Runtime::validate>,
        &operation<T, Runtime, &Runtime::start>,
        &operation<T, Runtime, &Runtime::inspect>,
        &operation<T, Runtime, &Runtime::stop>,
        &operation<T, Runtime, &Runtime::signal>,
        &operation<T, Runtime, &Runtime::put_file>,
    };
    return std::strcmp(id, FLT_INTERFACE_RUNTIME) == 0 ? &table : nullptr;
  } else {
    static_assert(std::is_base_of_v<Addon, T>, "a plugin class derives from Driver, Runtime or Addon");
    static const flt_addon_v1 table = {sizeof(flt_addon_v1), &operation<T, Addon, &Addon::validate>,
                                       &operation<T, Addon, &Addon::apply>, &operation<T, Addon, &Addon::destroy>};
    if constexpr (std::is_base_of_v<Answers, T>) {
      static const flt_query_v1 query = {sizeof(flt_query_v1), &answer<T>};
      if (std::strcmp(id, FLT_INTERFACE_QUERY) == 0) return &query;
    }
    return std::strcmp(id, FLT_INTERFACE_ADDON) == 0 ? &table : nullptr;
  }
}

template <class T>
constexpr const char* kind_of() {
  static_assert(!std::is_base_of_v<Answers, T> || std::is_base_of_v<Addon, T>, "only addons answer queries (Answers)");
  if constexpr (std::is_base_of_v<Driver, T>) return "driver";
  else if constexpr (std::is_base_of_v<Runtime, T>) return "runtime";
  else return "addon";
}

}  // namespace detail
}  // namespace flotilla::sdk

/// Exports CLASS (derived from Driver, Runtime or Addon) as the library's plugin. NAME, VERSION
/// and DESCRIPTION are string literals; MANIFEST is a JSON string literal (see plugin.h).
#define FLOTILLA_PLUGIN(CLASS, NAME, VERSION, DESCRIPTION, MANIFEST)                                 \
  extern "C" __attribute__((visibility("default"))) const flt_plugin_descriptor* flotilla_plugin_entry( \
      void) {                                                                                          \
    static const flt_plugin_descriptor descriptor = {                                                  \
        FLT_ABI_VERSION, sizeof(flt_plugin_descriptor), NAME, ::flotilla::sdk::detail::kind_of<CLASS>(), \
        VERSION,         DESCRIPTION,                   MANIFEST, &::flotilla::sdk::detail::interface_for<CLASS>}; \
    return &descriptor;                                                                                \
  }
