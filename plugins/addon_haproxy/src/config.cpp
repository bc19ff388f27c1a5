#include "addon_haproxy/config.hpp"

#include "flotilla/support/encoding.hpp"

namespace flotilla::haproxy {
namespace detail {

std::string quoted(std::string_view text) {
  return nlohmann::json(std::string(text)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}
}  // namespace detail

std::optional<std::string> service_name_problem(std::string_view name) {
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

std::optional<std::string> health_path_problem(std::string_view path) {
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

std::optional<std::string> address_problem(std::string_view address) {
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

std::optional<std::string> port_problem(std::int64_t port) {
  if (port < 1 || port > 65535) return "the port " + std::to_string(port) + " is outside 1-65535";
  return std::nullopt;
}

std::optional<std::string> file_path_problem(std::string_view path) {
  if (path.empty() || path.front() != '/') return "the path " + detail::quoted(path) + " is not absolute";
  for (const char c : path) {
    if (!detail::is_alnum(c) && std::string_view("/._-+@,=").find(c) == std::string_view::npos) {
      return "the path " + detail::quoted(path) +
             " has characters HAProxy's config cannot take safely; use letters, digits and / . _ - + @ , =";
    }
  }
  return std::nullopt;
}

std::string backend_name(std::string_view service) {
  std::string out(service);
  std::replace(out.begin(), out.end(), '/', '.');
  return out;
}

std::string server_name(std::int64_t instance, std::string_view address, int port) {
  return "i" + std::to_string(instance) + "-" + std::string(address) + "-" + std::to_string(port);
}

std::string render_config(const ConfigView& view, bool with_servers) {
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
  // In a container the engine cannot reach a unix socket, so the runtime API also listens on TCP.
  if (!view.admin_tcp.empty()) line("    stats socket ipv4@" + view.admin_tcp + " level admin");
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
std::string skeleton_hash(const ConfigView& view) { return support::stable_hash(render_config(view, false)); }

bool same_skeleton(const std::string& recorded, const ConfigView& view) {
  const std::string text = render_config(view, false);
  return recorded == support::stable_hash(text) || recorded == support::legacy_stable_hash(text);
}

}  // namespace flotilla::haproxy
