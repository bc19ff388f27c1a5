// Header-only C++ wrapper over the Flotilla plugin ABI (plugin.h).
//
// A plugin is a class deriving from flotilla::sdk::Driver, Runtime or Addon, exported with
// FLOTILLA_PLUGIN(...). The wrapper turns every exception into a status and a message, so
// nothing C++ crosses the boundary.
#pragma once

#include <flotilla/plugin.h>

#include <nlohmann/json.hpp>

#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

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

/// The host's services for one call; valid only during that call, on its thread.
class Context {
 public:
  explicit Context(flt_call* call) : call_(call) {}

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

  /// Runs a runtime operation on a node (addons only); throws Error on failure.
  [[nodiscard]] json runtime(const json& request) const {
    const std::string text = request.dump();
    std::string out;
    const flt_status st = call_->host->runtime(call_, text.data(), text.size(), &Context::sink, &out);
    json doc = out.empty() ? json::object() : json::parse(out, nullptr, false);
    if (st != FLT_OK) {
      std::string msg = doc.is_object() && doc.contains("error") ? doc["error"].get<std::string>() : out;
      throw Error(st, msg);
    }
    return doc;
  }

  /// The plugin instance's saved state ({} at first).
  [[nodiscard]] json state() const {
    std::string out;
    call_->host->state_get(call_, &Context::sink, &out);
    return out.empty() ? json::object() : json::parse(out);
  }
  /// Replaces the plugin instance's saved state.
  void set_state(const json& state) const {
    const std::string text = state.dump();
    if (call_->host->state_set(call_, text.data(), text.size()) != FLT_OK) throw Error(FLT_ERROR, "could not save plugin state");
  }

 private:
  static void sink(void* user, const char* data, size_t len) { static_cast<std::string*>(user)->assign(data, len); }
  flt_call* call_;
};

/// Base of driver plugins. Requests and results are documented in docs/plugin-guide.md.
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
    Context ctx(call);
    const json req = json::parse(std::string_view(request, len));
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

/// The function table of the one interface T implements, or null for any other id.
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
    return std::strcmp(id, FLT_INTERFACE_ADDON) == 0 ? &table : nullptr;
  }
}

template <class T>
constexpr const char* kind_of() {
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
