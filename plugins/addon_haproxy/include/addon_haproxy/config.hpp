// The HAProxy configuration: what the addon routes (a plain model), the checks every name,
// path and address passes before it may reach the file, and the renderer from model to text.
//
// HAProxy's config language has no quoting that survives every context (a `#` starts a
// comment, a space splits words, a newline starts a directive), and the same names are later
// sent over the runtime API, where `;` separates commands. So nothing is escaped: anything
// outside a small safe alphabet is refused, and the error names the service.
#pragma once

#include <algorithm>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace flotilla::haproxy {

/// One instance of a service as HAProxy sees it.
struct Server {
  std::string name;     // "i3-127.77.0.2-8003": unique in its backend, stable for the instance
  std::string address;  // IPv4 address or host name
  int port = 0;
  bool operator==(const Server&) const = default;
};

/// One service: requests under `prefix` go round-robin to the healthy `servers`.
struct Route {
  std::string service;  // "hello/v1"
  std::string backend;  // "hello.v1"
  std::string prefix;   // "/hello/v1"
  std::string health;   // "/health"; empty: TCP connect check only
  std::vector<Server> servers;
};

/// Everything one HAProxy on one node is configured from.
struct ConfigView {
  std::string bind_address;  // the node's address
  int port = 8080;           // the ingress
  int stats_port = 8404;     // /stats and /metrics
  std::string admin_socket;  // unix socket of the runtime API (with expose-fd listeners, for hitless reloads)
  std::string admin_tcp;     // "ADDRESS:PORT": the runtime API also on TCP (HAProxy in a container); "" = none
  bool strip_prefix = true;
  std::vector<Route> routes;
};

/// Check settings shared by servers written in the file and servers added at runtime (dynamic
/// servers do not inherit `default-server`). `fastinter` makes the first check of a new server
/// and the confirmation of a failing one come after 100 ms instead of a whole `inter`.
inline constexpr std::string_view kCheckArgs = "check inter 1s fastinter 100ms downinter 100ms fall 2 rise 1";

/// Path answered by HAProxy itself (for the `rest` registration's health check). It starts
/// with `-`, which no service name can, so it never shadows a route.
inline constexpr std::string_view kMonitorPath = "/-/health";

namespace detail {

inline bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
inline bool is_alnum(char c) { return is_lower_alnum(c) || (c >= 'A' && c <= 'Z'); }

/// The text as a JSON string literal: shows a newline as \n, so an error message stays on one line.
std::string quoted(std::string_view text);

}  // namespace detail

/// Why `name` cannot be a service name here, or nothing. Same rule as the engine's
/// check_service_name: lowercase [a-z0-9] segments joined by '-', '_' or '/', at most 63 chars.
std::optional<std::string> service_name_problem(std::string_view name);

/// Why `path` cannot be a health-check path, or nothing. Empty means "no HTTP check".
std::optional<std::string> health_path_problem(std::string_view path);

/// Why `address` cannot be a bind or server address, or nothing (IPv4 or a host name).
std::optional<std::string> address_problem(std::string_view address);

/// Why `port` cannot be a TCP port, or nothing.
std::optional<std::string> port_problem(std::int64_t port);

/// Why `path` cannot appear in the config file (the admin socket), or nothing.
std::optional<std::string> file_path_problem(std::string_view path);

/// The HAProxy backend of a service: "hello/v1" -> "hello.v1". No service name contains '.',
/// so two services never share a backend, and '/' (the runtime API's separator) is gone.
std::string backend_name(std::string_view service);

/// The server name of an instance. Address and port are part of it, so an instance that moves
/// is added under its new name before the old one is drained: no gap in between.
std::string server_name(std::int64_t instance, std::string_view address, int port);

/// Renders the whole configuration. Pure: the same view gives the same text. Routes are
/// matched longest prefix first, so "/hello/v1" wins over "/hello" whatever their order.
/// With `with_servers` false, the text leaves out the server lines: what remains changes only
/// with routes and listeners, and tells a reload (needed) from a runtime update (enough).
std::string render_config(const ConfigView& view, bool with_servers = true);

/// The hash of the config without its servers (support::stable_hash), kept in the state so an
/// apply knows whether routes or listeners changed and a reload is needed.
std::string skeleton_hash(const ConfigView& view);

/// True when `recorded` (a node's `skeleton` in the state) is the skeleton hash of `view`, as
/// this release computes it or as earlier ones stored it (support::legacy_stable_hash): state
/// written before the hash was corrected reloads nothing; the next save stores the new value.
bool same_skeleton(const std::string& recorded, const ConfigView& view);

}  // namespace flotilla::haproxy
