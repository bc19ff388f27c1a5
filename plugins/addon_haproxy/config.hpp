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
  std::string admin_socket;  // unix socket of the runtime API (never TCP)
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
inline std::string quoted(std::string_view text) {
  return nlohmann::json(std::string(text)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace detail

/// Why `name` cannot be a service name here, or nothing. Same rule as the engine's
/// check_service_name: lowercase [a-z0-9] segments joined by '-', '_' or '/', at most 63 chars.
inline std::optional<std::string> service_name_problem(std::string_view name) {
  if (name.empty()) return "the name is empty";
  if (name.size() > 63) return "the name is longer than 63 characters";
  bool previous_separator = true;  // a separator may not lead
  for (const char c : name) {
    const bool separator = c == '-' || c == '_' || c == '/';
    if (!separator && !detail::is_lower_alnum(c)) {
      return "the name may only contain a-z, 0-9 and the separators '-', '_' and '/'";
    }
    if (separator && previous_separator) return "a separator may not start the name or follow another";
    previous_separator = separator;
  }
  if (previous_separator) return "the name may not end with a separator";
  return std::nullopt;
}

/// Why `path` cannot be a health-check path, or nothing. Empty means "no HTTP check".
inline std::optional<std::string> health_path_problem(std::string_view path) {
  if (path.empty()) return std::nullopt;
  if (path.front() != '/') return "the health path must start with '/'";
  if (path.size() > 200) return "the health path is longer than 200 characters";
  for (const char c : path) {
    if (!detail::is_alnum(c) && std::string_view("/._~-?=&").find(c) == std::string_view::npos) {
      return "the health path may only contain letters, digits and / . _ ~ - ? = &";
    }
  }
  return std::nullopt;
}

/// Why `address` cannot be a bind or server address, or nothing (IPv4 or a host name).
inline std::optional<std::string> address_problem(std::string_view address) {
  if (address.empty()) return "the address is empty";
  if (address.size() > 253) return "the address is longer than 253 characters";
  for (const char c : address) {
    if (!detail::is_alnum(c) && c != '.' && c != '-') {
      return "the address may only contain letters, digits, '.' and '-' (an IPv4 address or a host name)";
    }
  }
  if (address.front() == '-' || address.front() == '.') return "the address may not start with '-' or '.'";
  return std::nullopt;
}

/// Why `port` cannot be a TCP port, or nothing.
inline std::optional<std::string> port_problem(std::int64_t port) {
  if (port < 1 || port > 65535) return "the port " + std::to_string(port) + " is outside 1-65535";
  return std::nullopt;
}

/// Why `path` cannot appear in the config file (the admin socket), or nothing.
inline std::optional<std::string> file_path_problem(std::string_view path) {
  if (path.empty() || path.front() != '/') return "the path " + detail::quoted(path) + " is not absolute";
  for (const char c : path) {
    if (!detail::is_alnum(c) && std::string_view("/._-+@,=").find(c) == std::string_view::npos) {
      return "the path " + detail::quoted(path) +
             " has characters HAProxy's config cannot take safely; use letters, digits and / . _ - + @ , =";
    }
  }
  return std::nullopt;
}

/// The HAProxy backend of a service: "hello/v1" -> "hello.v1". No service name contains '.',
/// so two services never share a backend, and '/' (the runtime API's separator) is gone.
inline std::string backend_name(std::string_view service) {
  std::string out(service);
  std::replace(out.begin(), out.end(), '/', '.');
  return out;
}

/// The server name of an instance. Address and port are part of it, so an instance that moves
/// is added under its new name before the old one is drained: no gap in between.
inline std::string server_name(std::int64_t instance, std::string_view address, int port) {
  return "i" + std::to_string(instance) + "-" + std::string(address) + "-" + std::to_string(port);
}

/// Renders the whole configuration. Pure: the same view gives the same text. Routes are
/// matched longest prefix first, so "/hello/v1" wins over "/hello" whatever their order.
/// With `with_servers` false, the text leaves out the server lines: what remains changes only
/// with routes and listeners, and tells a reload (needed) from a runtime update (enough).
inline std::string render_config(const ConfigView& view, bool with_servers = true) {
  const std::string listen = view.bind_address + ":" + std::to_string(view.port);
  const std::string stats = view.bind_address + ":" + std::to_string(view.stats_port);
  std::string out;
  auto line = [&out](std::string_view text) {
    out += text;
    out += '\n';
  };

  line("# Written by Flotilla's haproxy addon. Edits are overwritten on the next apply.");
  line("global");
  line("    stats socket " + view.admin_socket + " mode 600 level admin expose-fd listeners");
  line("    stats timeout 30s");
  line("    log stderr format raw daemon notice");
  // Bounds how long an old worker keeps serving its connections after a reload.
  line("    hard-stop-after 30s");
  line("");
  line("defaults");
  line("    mode http");
  line("    log global");
  // On reload, idle keep-alive connections of the old worker are closed after their response,
  // not cut: without it every reload cost clients a few read errors (notes/haproxy-reload-lab.md).
  line("    option idle-close-on-response");
  // A request that cannot reach its server (instance just died, not yet marked DOWN) goes to
  // another one instead of failing; `empty-response` covers a server closing a reused
  // connection as the request arrives. Only GET/HEAD are retried (see the frontend).
  line("    option redispatch 1");
  line("    retries 3");
  line("    retry-on conn-failure empty-response");
  line("    timeout connect 3s");
  line("    timeout client 30s");
  line("    timeout server 30s");
  line("    timeout http-request 10s");
  line("    timeout http-keep-alive 10s");
  line("    timeout queue 10s");
  line("    timeout check 2s");
  line("");
  // Internal proxies have upper-case names, which no service name (backend) can have.
  line("frontend INGRESS");
  line("    bind " + listen);
  line("    monitor-uri " + std::string(kMonitorPath));
  line("    http-request disable-l7-retry unless METH_GET");

  std::vector<const Route*> by_prefix;
  for (const Route& r : view.routes) by_prefix.push_back(&r);
  std::stable_sort(by_prefix.begin(), by_prefix.end(),
                   [](const Route* a, const Route* b) { return a->prefix.size() > b->prefix.size(); });
  for (const Route* r : by_prefix) {
    // "/hello/v1" and everything below it, but not "/hello/v10".
    line("    use_backend " + r->backend + " if { path " + r->prefix + " } || { path_beg " + r->prefix + "/ }");
  }
  line("    default_backend NOROUTE");
  line("");
  line("backend NOROUTE");
  line("    http-request return status 404 content-type text/plain string \"no service is routed at this path\"");
  line("");
  line("frontend STATS");
  line("    bind " + stats);
  line("    no log");
  line("    http-request use-service prometheus-exporter if { path /metrics }");
  line("    stats enable");
  line("    stats uri /stats");
  line("    stats refresh 5s");

  for (const Route& r : view.routes) {
    line("");
    line("# service " + r.service);
    line("backend " + r.backend);
    line("    balance roundrobin");
    if (!r.health.empty()) {
      line("    option httpchk GET " + r.health);
      line("    http-check expect status 200");
    }
    // In the backend, not the frontend: a rewrite in the frontend runs before use_backend,
    // and the path_beg rule above would no longer match.
    if (view.strip_prefix) line("    http-request replace-path ^" + r.prefix + "/?(.*)$ /\\1");
    if (!with_servers) continue;
    for (const Server& s : r.servers) {
      line("    server " + s.name + " " + s.address + ":" + std::to_string(s.port) + " " + std::string(kCheckArgs));
    }
  }
  return out;
}

}  // namespace flotilla::haproxy
