#include "addon_registrator/registrator_addon.hpp"

#include "addon_registrator/catalog.hpp"
#include "addon_registrator/dns.hpp"
#include "addon_registrator/registrator_image.hpp"
#include "flotilla/support/config_map.hpp"
#include "flotilla/support/plugin_options.hpp"
#include "flotilla/support/consul_client.hpp"
#include "flotilla/support/encoding.hpp"
#include "flotilla/support/etcd_client.hpp"
#include "flotilla/support/wait.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace flotilla::registrator_addon {

namespace {

using sdk::Context;
using sdk::json;
namespace d = flotilla::discovery;

constexpr const char* kKeepalive = "keepalive";
constexpr const char* kDns = "dns";
constexpr const char* kForwarder = "dns-forward";
constexpr const char* kImageWorkload = "registrator";

constexpr const char* kManifest = R"json({
  "provides": ["catalog-sync", "container-dns"],
  "reconcile": true,
  "requires": ["services", "discovery"],
  "optional": ["ingress", "metrics", "logs"],
  "placement": {"roles": ["infra"], "mode": "first"},
  "answers": ["ip"]
})json";

/// The addon's options; the defaults here are the manifest's.
struct Options {
  std::string backend = "auto";
  std::string prefix = "/flotilla";
  std::int64_t ttl = 30;
  std::string domain = "consul";
  bool dns = true;
  std::int64_t dns_port = 8600;
  std::string etcdctl_image = "quay.io/coreos/etcd:v3.5.9";
  std::string dns_image = "dnsmasq:flotilla";
  std::string image;
};

const flotilla::support::ConfigMap<Options>& options_map() {
  static const auto map =
      flotilla::support::ConfigMap<Options>()
          .string("backend", &Options::backend, "Which discovery addon holds the catalog; auto picks the only one")
          .one_of({"auto", "etcd", "consul"})
          .string("prefix", &Options::prefix, "etcd key prefix; entries live under <prefix>/<cluster>/services/<name>/<id>")
          .pattern("/.*")
          .integer("ttl", &Options::ttl, "Seconds an etcd entry outlives its node's keepalive")
          .range(2, 3600)
          .string("domain", &Options::domain, "DNS domain: services resolve as <name>.service.<domain>")
          .boolean("dns", &Options::dns, "With etcd, serve DNS names from a dnsmasq on the registrator's node")
          .integer("dns_port", &Options::dns_port, "Port of that dnsmasq")
          .range(1, 65535)
          .string("etcdctl_image", &Options::etcdctl_image, "Image with etcdctl on its PATH for the keepalives on Docker-runtime nodes")
          .string("dns_image", &Options::dns_image, "Image with dnsmasq on its PATH when the registrator's node runs Docker")
          .string("image", &Options::image,
                  "gliderlabs/registrator image to run on every Docker node as well (e.g. gliderlabs/registrator:v7); empty: none");
  return map;
}

/// The options of a request the engine has checked against the schema; throws Invalid naming
/// every bad option when called with one it has not.
Options options_of(const json& req) { return flotilla::support::addon_options(options_map(), req, "registrator"); }

/// The discovery addon the registrator writes to.
struct Backend {
  std::string kind;   // "etcd" | "consul"
  std::string addon;  // its addon name
  json view;          // {plugin, provides, endpoints, outputs}
};

Backend find_backend(const json& req, const std::string& wanted) {
  std::vector<Backend> found;
  if (req.contains("addons") && req["addons"].is_object()) {
    for (const auto& [name, view] : req["addons"].items()) {
      const auto provides = view.value("provides", json::array());
      if (std::find(provides.begin(), provides.end(), "discovery") == provides.end()) continue;
      const std::string plugin = view.value("plugin", "");
      const json endpoints = view.value("endpoints", json::object());
      std::string kind;
      if (plugin == "etcd" || endpoints.contains("etcd")) kind = "etcd";
      else if (plugin == "consul" || endpoints.contains("consul")) kind = "consul";
      else continue;
      if (wanted != "auto" && wanted != kind) continue;
      found.push_back({kind, name, view});
    }
  }
  if (found.empty()) {
    throw sdk::Invalid(
        "registrator: no discovery backend" + (wanted == "auto" ? std::string() : " of kind \"" + wanted + "\"") +
        " has been applied; add [[addons]] plugin = \"etcd\" (or \"consul\") to the topology and run `flotilla up` again");
  }
  if (found.size() > 1) {
    std::string names;
    for (const auto& b : found) names += (names.empty() ? "" : ", ") + b.addon;
    throw sdk::Invalid("registrator: several discovery addons (" + names +
                       ") could hold the catalog; set backend = \"etcd\" or \"consul\" in the registrator's [addons.options]");
  }
  return found.front();
}

/// The request's node named `name` (an empty object when there is none); `nodes` is read in
/// place, not copied.
json node_by_name(const json& req, const std::string& name) {
  if (const auto nodes = req.find("nodes"); nodes != req.end() && nodes->is_array())
    for (const auto& n : *nodes)
      if (n.value("name", "") == name) return n;
  return json::object();
}

/// Runs `fn`, turning the discovery errors into SDK statuses: an unreachable backend may come
/// back (retryable), a refusal or a bad name will not.
template <class Fn>
auto translate_errors(Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const support::Unreachable& e) {
    throw sdk::Retryable(std::string("registrator: ") + e.what());
  } catch (const support::Refused& e) {
    throw sdk::Error(FLT_ERROR, std::string("registrator: ") + e.what());
  } catch (const d::InvalidName& e) {
    throw sdk::Invalid(std::string("registrator: ") + e.what());
  }
}

support::HttpTimeouts short_timeouts() { return {std::chrono::milliseconds(1000), std::chrono::milliseconds(3000)}; }

std::string etcd_endpoints(const Backend& b) {
  const json outputs = b.view.value("outputs", json::object());
  if (outputs.contains("etcd_endpoints") && outputs["etcd_endpoints"].is_string()) return outputs["etcd_endpoints"];
  const std::string one = b.view.value("endpoints", json::object()).value("etcd", "");
  if (one.empty()) throw sdk::Error(FLT_ERROR, "registrator: addon \"" + b.addon + "\" publishes no etcd endpoint; apply it first");
  return one;
}

std::map<std::string, std::string> consul_agents(const Backend& b) {
  std::map<std::string, std::string> out;
  const json agents = b.view.value("outputs", json::object()).value("agents", json::object());
  for (const auto& [node, url] : agents.items()) out[node] = url.get<std::string>();
  return out;
}

json catalog_json(const std::vector<d::Registration>& regs) {
  json out = json::array();
  for (const auto& r : regs) out.push_back(r.to_json());
  return out;
}

/// The addresses of `name`'s entries in the live catalog, sorted (the `ip` question).
std::vector<std::string> catalog_addresses(const json& req, const Options& cfg, const Backend& backend, const std::string& name) {
  std::vector<std::string> out;
  if (backend.kind == "etcd") {
    const support::EtcdClient etcd(etcd_endpoints(backend), short_timeouts());
    const std::string cluster = req["cluster"].value("name", "");
    for (const auto& kv : etcd.range_prefix(d::services_prefix(cfg.prefix, cluster) + name + "/")) {
      const json entry = json::parse(kv.value, nullptr, false);
      if (entry.is_object() && entry.contains("address")) out.push_back(entry.value("address", ""));
    }
  } else {
    const support::ConsulClient consul(backend.view.value("endpoints", json::object()).value("consul", ""), short_timeouts());
    for (const auto& e : consul.health_service(name, true).body) {
      if (!e.is_object()) continue;
      std::string address = e.value("Service", json::object()).value("Address", "");
      if (address.empty()) address = e.value("Node", json::object()).value("Address", "");
      out.push_back(address);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

/// Stops the addon's workload `name` on each of `nodes` at once (one batch); a failure is a
/// warning naming `what` and the node, since `down` must go on.
void stop_on_nodes(Context& ctx, const std::vector<std::string>& nodes, const std::string& name, const std::string& what) {
  std::vector<sdk::Component> which;
  for (const std::string& node : nodes) which.push_back({.node = node, .name = name});
  const std::vector<sdk::BatchResult> stopped = ctx.stop_each(which);
  for (size_t i = 0; i < stopped.size(); ++i)
    if (stopped[i].status != FLT_OK) ctx.warn("could not stop the " + what + " on node " + nodes[i] + ": " + stopped[i].error);
}

/// The names of a JSON array of node names; anything else in it is skipped.
std::vector<std::string> node_names(const json& list) {
  std::vector<std::string> out;
  if (list.is_array())
    for (const auto& n : list)
      if (n.is_string()) out.push_back(n.get<std::string>());
  return out;
}

/// Stops keepalives and dnsmasq left from an etcd setup (after `down`, or a switch to Consul).
void stop_etcd_helpers(Context& ctx, const json& state) {
  std::vector<std::string> nodes;
  const json leases = state.value("leases", json::object());
  for (const auto& [node, lease] : leases.items()) nodes.push_back(node);
  stop_on_nodes(ctx, nodes, kKeepalive, "keepalive");
  if (state.contains("dns_node") && state["dns_node"].is_string()) stop_on_nodes(ctx, {state["dns_node"].get<std::string>()}, kDns, "dnsmasq");
}

bool on_docker(const json& req, const std::string& node) { return node_by_name(req, node).value("runtime", "process") == "docker"; }

/// The names of the request's nodes that run Docker: on_docker for many nodes, in one pass.
std::set<std::string> docker_nodes(const json& req) {
  std::set<std::string> out;
  if (const auto nodes = req.find("nodes"); nodes != req.end() && nodes->is_array())
    for (const auto& n : *nodes)
      if (n.value("runtime", "process") == "docker") out.insert(n.value("name", ""));
  return out;
}

/// The keepalive of `node`'s lease: etcdctl as a process, or in a container of `image` in
/// the node's network (so it reaches the members' addresses as a process would).
json keepalive_workload(bool docker, const std::string& image, const std::string& endpoints, std::int64_t id) {
  const json argv = {"etcdctl", "--endpoints=" + endpoints, "--dial-timeout=2s", "lease", "keep-alive", support::lease_hex(id)};
  json workload = {{"name", kKeepalive}, {"env", {{"ETCDCTL_API", "3"}}}, {"ports", json::array()}};
  if (docker) workload.update({{"image", image}, {"cmd", argv}, {"network", "host"}});
  else workload.update({{"command", argv}, {"image", "gcr.io/etcd-development/etcd:v3.4.23"}});
  return workload;
}

/// Gives every node that holds entries one lease, renewed by a keepalive on that node, and
/// revokes the leases of nodes that hold none any more. Returns node -> lease ID; `state`
/// records the leases (saved before the keepalives start, so a failure later still lets
/// destroy revoke them). The keepalives of all nodes start at once (one batch).
std::map<std::string, std::int64_t> renew_leases(Context& ctx, const json& req, const Options& cfg, const support::EtcdClient& etcd,
                                                 const std::string& endpoints, const std::vector<d::Registration>& desired, json& state) {
  const int ttl = static_cast<int>(cfg.ttl);
  json leases = state.value("leases", json::object());
  std::set<std::string> nodes;
  for (const auto& r : desired) nodes.insert(r.node);
  std::map<std::string, std::int64_t> lease_of;
  // A new lease lives `ttl` seconds before its keepalive first renews it; a keepalive slower
  // to start than that (a container whose image is pulled, say) finds it gone. Then the
  // lease is granted once more, to a keepalive that is by now quick to start.
  std::vector<std::string> pending(nodes.begin(), nodes.end());
  // One listing tells which recorded leases still live; a dead keepalive's lease has left it.
  const std::set<std::int64_t> alive_before = leases.empty() ? std::set<std::int64_t>() : etcd.lease_ids();
  const std::set<std::string> docker = docker_nodes(req);
  for (int attempt = 0; !pending.empty(); ++attempt) {
    ctx.check_cancelled();
    std::vector<json> starts;
    std::vector<bool> kept;  // the lease was alive before, and is kept
    bool granted = false;
    for (const auto& node : pending) {
      std::int64_t id = 0;
      if (attempt == 0 && leases.contains(node) && leases[node].value("ttl", 0) == ttl && leases[node].value("endpoints", "") == endpoints) {
        id = std::stoll(leases[node].value("id", "0"));
        if (!alive_before.count(id)) id = 0;  // expired: its node's keepalive died
      }
      kept.push_back(id != 0);
      if (id == 0) {
        id = etcd.lease_grant(ttl);
        leases[node] = {{"id", std::to_string(id)}, {"ttl", ttl}, {"endpoints", endpoints}};
        granted = true;
        ctx.info("lease " + support::lease_hex(id) + " (" + std::to_string(ttl) + " s) for node " + node);
      }
      lease_of[node] = id;
      starts.push_back({{"op", "start"}, {"node", node}, {"workload", keepalive_workload(docker.count(node) > 0, cfg.etcdctl_image, endpoints, id)}});
    }
    if (granted) {
      state["leases"] = leases;
      ctx.set_state(state);
    }
    const std::vector<sdk::BatchResult> started = ctx.runtime_batch(starts);
    std::vector<std::string> expired;
    for (size_t i = 0; i < pending.size(); ++i) {
      // A keepalive found running (not started anew) on a lease that was alive keeps it alive;
      // only a new keepalive or a new lease is asked about.
      const bool running_on = kept[i] && started[i].status == FLT_OK && !started[i].result.value("changed", true);
      const bool alive = running_on || etcd.lease_ttl(lease_of[pending[i]]) > 0;
      // etcdctl exits at once when its lease is gone; any other failure is not the lease's.
      if (alive && started[i].status != FLT_OK) throw sdk::Error(started[i].status, started[i].error);
      if (!alive) expired.push_back(pending[i]);
    }
    if (!expired.empty() && attempt == 1)
      throw std::runtime_error("the lease of node " + expired.front() + " expired before its keepalive renewed it, twice: `ttl` (" +
                               std::to_string(ttl) + " s) is shorter than the keepalive takes to start on that node; raise `ttl` in the "
                               "registrator's options and run up again");
    for (const auto& node : expired)
      ctx.warn("the lease of node " + node + " expired while its keepalive started (ttl " + std::to_string(ttl) + " s); granting another");
    pending = expired;
  }
  const json previous = leases;
  std::vector<std::string> departed;
  for (const auto& [node, lease] : previous.items()) {
    if (nodes.count(node)) continue;
    etcd.lease_revoke(std::stoll(lease.value("id", "0")));
    departed.push_back(node);
    leases.erase(node);
  }
  stop_on_nodes(ctx, departed, kKeepalive, "keepalive (its lease is revoked anyway)");
  state["leases"] = leases;
  ctx.set_state(state);
  return lease_of;
}

/// Where and how the registrator's dnsmasq serves the catalog's names.
struct DnsPlace {
  std::string node;
  std::string address;
  int port = 0;
  std::string domain;
};

/// flotilla-catalog-dns runs dnsmasq and keeps its files equal to the etcd catalog between
/// applies (entries of a dead node expire with its lease). srv-host lines are read only at
/// start: the digest in the environment changes the workload's spec when they change at an
/// apply, and the runtime then restarts it at once.
std::vector<std::string> catalog_dns_command(const json& req, const d::DnsmasqOptions& o, const std::string& endpoints,
                                             const std::string& prefix, const std::string& hosts_file) {
  std::vector<std::string> command = {"flotilla-catalog-dns", "--etcd",   endpoints,  "--prefix",   prefix,
                                      "--domain",             o.domain,   "--hosts-file", hosts_file, "--srv-file", o.srv_file};
  for (const auto& n : req.value("nodes", json::array())) {
    if (!n.value("address", "").empty()) {
      command.push_back("--node");
      command.push_back(n.value("name", "") + "=" + n.value("address", ""));
    }
  }
  command.push_back("--");
  for (auto& arg : d::dnsmasq_command(o)) command.push_back(arg);
  return command;
}

void run_dnsmasq(Context& ctx, const json& req, const DnsPlace& where, const std::vector<d::Registration>& desired, json& state,
                 const std::string& endpoints, const std::string& prefix, const std::string& image) {
  const std::string& node = where.node;
  const std::string hosts = d::render_hosts(desired, where.domain, req.value("nodes", json::array()));
  const std::string srv = d::render_srv_conf(desired, where.domain);
  const json hosts_put = ctx.runtime({{"op", "put_file"}, {"node", node}, {"path", "dns/hosts/services"}, {"content", hosts}, {"mode", 0644}});
  const json srv_put = ctx.runtime({{"op", "put_file"}, {"node", node}, {"path", "dns/srv.conf"}, {"content", srv}, {"mode", 0644}});
  d::DnsmasqOptions o;
  o.listen_address = where.address;
  o.port = where.port;
  o.domain = where.domain;
  o.hosts_dir = std::filesystem::path(hosts_put.value("path", "")).parent_path().string();
  o.srv_file = srv_put.value("path", "");
  o.stay_root = ::geteuid() == 0 && !d::readable_by_others(o.hosts_dir);
  const std::string digest = d::srv_digest(state, srv);
  json workload = {{"name", kDns}, {"env", {{"FLOTILLA_SRV_DIGEST", digest}}}, {"ports", {where.port}}};
  if (on_docker(req, node)) {
    // On a Docker node dnsmasq runs alone in a container of the node's network, reading the
    // files of the runtime's files volume: the hosts file follows the catalog at every apply
    // (dnsmasq re-reads its --hostsdir by itself), not between applies.
    o.binary = "dnsmasq";
    o.stay_root = true;  // the container's root, so the volume's files are readable
    workload.update({{"image", image}, {"network", "host"}, {"cmd", d::dnsmasq_command(o)}});
  } else {
    workload["command"] = catalog_dns_command(req, o, endpoints, prefix, hosts_put.value("path", ""));
  }
  const json started = ctx.runtime({{"op", "start"}, {"node", node}, {"workload", workload}});
  state["dns_node"] = node;
  state["srv_hash"] = support::stable_hash(srv);
  state["srv_digest"] = digest;
  ctx.set_state(state);
  const std::string probe = (desired.empty() ? std::string("probe") : desired.front().name) + ".service." + where.domain;
  const bool answers = support::wait_until(std::chrono::seconds(10), std::chrono::milliseconds(100), [&] {
    return d::dns_probe(where.address, where.port, probe, std::chrono::milliseconds(200)) >= 0;
  }, [&ctx] { return ctx.cancelled(); });
  if (answers) return;
  ctx.check_cancelled();
  const std::string log = started.value("record", json::object()).value("stderr", "");
  throw sdk::Retryable("registrator: dnsmasq on node " + node + " does not answer on " + where.address + ":" +
                       std::to_string(where.port) + " after 10 s" + (log.empty() ? "" : "; see " + log) +
                       " (is the port taken? set dns_port in the registrator's options)");
}

json apply_etcd(Context& ctx, const json& req, const Options& cfg, const Backend& backend, const std::string& home,
                const std::vector<d::Registration>& desired) {
  const std::string cluster = req["cluster"].value("name", "");
  const std::string endpoints = etcd_endpoints(backend);
  const int ttl = static_cast<int>(cfg.ttl);
  const std::string prefix = d::services_prefix(cfg.prefix, cluster);
  support::EtcdClient etcd(endpoints);
  json state = ctx.state();
  state["backend"] = "etcd";
  const auto lease_of = renew_leases(ctx, req, cfg, etcd, endpoints, desired, state);

  const d::SyncReport report = d::sync_etcd(etcd, prefix, desired, [&](const std::string& node) { return lease_of.at(node); });
  json messages = json::array({"catalog (etcd " + prefix + "): " + report.summary()});
  if (etcd.endpoints().size() > 1 && ttl < 10) {
    messages.push_back("warning: ttl = " + std::to_string(ttl) +
                       " s is short for a multi-member etcd: a leader change can take longer than that, and entries "
                       "then expire until the next apply; use ttl >= 10");
  }
  if (!report.removed_ids.empty()) {
    std::string ids;
    for (const auto& id : report.removed_ids) ids += (ids.empty() ? "" : ", ") + id;
    ctx.info("removed from the catalog: " + ids);
  }

  json endpoints_out = json::object();
  json outputs = {{"backend", "etcd"},
                  {"backend_addon", backend.addon},
                  {"catalog", catalog_json(desired)},
                  {"catalog_query", {{"type", "etcd"}, {"endpoints", endpoints}, {"prefix", prefix}, {"key", prefix + "{name}/"}}},
                  {"sync", report.to_json()}};
  if (cfg.dns && !home.empty()) {
    const json node = node_by_name(req, home);
    const DnsPlace where{home, node.value("address", ""), static_cast<int>(cfg.dns_port), cfg.domain};
    if (const std::string runtime = node.value("runtime", "process"); runtime != "process" && runtime != "docker") {
      messages.push_back("DNS: node " + home + " uses the " + runtime +
                         " runtime; dnsmasq runs only on the process and docker runtimes, so no DNS names are served");
    } else {
      run_dnsmasq(ctx, req, where, desired, state, endpoints, prefix, cfg.dns_image);
      const std::string server = where.address + ":" + std::to_string(where.port);
      endpoints_out["dns"] = "dns://" + server;
      outputs["dns"] = {{"server", server}, {"domain", where.domain}, {"node", home}};
      messages.push_back("DNS: dig @" + where.address + " -p " + std::to_string(where.port) + " <service>.service." + where.domain);
    }
  }
  return json{{"endpoints", endpoints_out}, {"outputs", outputs}, {"messages", messages}};
}

json apply_consul(Context& ctx, const json& req, const Options& cfg, const Backend& backend, const std::vector<d::Registration>& desired) {
  const std::string cluster = req["cluster"].value("name", "");
  json state = ctx.state();
  if (state.value("backend", "") == "etcd") stop_etcd_helpers(ctx, state);
  const std::string fallback = backend.view.value("endpoints", json::object()).value("consul", "");
  const d::SyncReport report = d::sync_consul(consul_agents(backend), fallback, cluster, desired);
  ctx.set_state({{"backend", "consul"}});
  const std::string domain = backend.view.value("outputs", json::object()).value("domain", cfg.domain);
  json outputs = {{"backend", "consul"},
                  {"backend_addon", backend.addon},
                  {"catalog", catalog_json(desired)},
                  {"catalog_query", {{"type", "consul"}, {"url", fallback + "/v1/health/service/{name}?passing=true"}}},
                  {"sync", report.to_json()}};
  json endpoints = json::object();
  const std::string dns = backend.view.value("endpoints", json::object()).value("dns", "");
  if (!dns.empty()) {
    endpoints["dns"] = dns;
    outputs["dns"] = {{"server", dns.substr(dns.find("//") == std::string::npos ? 0 : dns.find("//") + 2)}, {"domain", domain}};
  }
  return json{{"endpoints", endpoints},
              {"outputs", outputs},
              {"messages", json::array({"catalog (consul): " + report.summary()})}};
}

/// Stops the per-node workload `name` on the nodes of `previous` that are not in `running`
/// (`what` names it in the warning when a stop fails), and records `running` under `key` in the
/// addon's state.
void stop_departed(Context& ctx, json state, const json& previous, const json& running, const char* name, const std::string& what,
                   const char* key) {
  std::vector<std::string> departed;
  for (const std::string& node : node_names(previous))
    if (std::find(running.begin(), running.end(), node) == running.end()) departed.push_back(node);
  stop_on_nodes(ctx, departed, name, what);
  state[key] = running;
  ctx.set_state(state);
}

/// Runs the DNS forwarder on every Docker node whose containers reach it at a bridge gateway
/// (the driver reports `runtime_config.bridge_gateway`), so that the engine can give service
/// containers that address as their resolver; stops those of nodes that have none any more.
/// `dns` is the apply's `outputs.dns` ({server, domain}), absent without a cluster DNS.
/// Returns {node: address the forwarder listens on}.
json run_forwarders(Context& ctx, const json& req, const Options& cfg, const json& dns) {
  json state = ctx.state();
  json previous = state.value("forwarders", json::array());
  json running = json::array();
  json where = json::object();
  std::vector<json> starts;
  for (const auto& n : req.value("nodes", json::array())) {
    const std::string gateway = n.value("runtime_config", json::object()).value("bridge_gateway", "");
    if (n.value("runtime", "") != "docker" || gateway.empty()) continue;
    ctx.check_cancelled();
    d::ForwarderOptions o;
    o.listen_address = gateway;
    o.domain = dns.is_object() ? dns.value("domain", cfg.domain) : cfg.domain;
    o.server = dns.is_object() ? dns.value("server", "") : "";
    const json workload = {{"name", kForwarder}, {"image", cfg.dns_image}, {"network", "host"}, {"cmd", d::forwarder_command(o)},
                           {"ports", json::array()}};
    starts.push_back({{"op", "start"}, {"node", n.value("name", "")}, {"workload", workload}});
    running.push_back(n.value("name", ""));
    where[n.value("name", "")] = gateway;
  }
  (void)ctx.runtime_all(starts);  // every node's forwarder at once
  stop_departed(ctx, state, previous, running, kForwarder, "DNS forwarder", "forwarders");
  return where;
}

/// Refuses image mode on an etcd that does not serve the v2 API, which is all that
/// gliderlabs/registrator's etcd backend speaks; etcd 3.4 and later serve it only with
/// --enable-v2. Checked before anything is written, since validate cannot see the etcd addon.
void check_image_backend(const Options& cfg, const Backend& backend) {
  if (cfg.image.empty() || backend.kind != "etcd") return;
  if (backend.view.value("outputs", json::object()).value("v2_api", false)) return;
  throw sdk::Invalid("registrator: image = \"" + cfg.image + "\" runs gliderlabs/registrator, whose etcd backend speaks only etcd's v2 API, "
                     "and etcd 3.4 and later serve it only when started with --enable-v2; set enable_v2 = true in the "
                     "[addons.options] of the etcd addon \"" + backend.addon + "\", or use the consul backend, or leave image empty");
}

/// Runs the `image` container on every Docker node (image mode) and stops those of nodes that
/// no longer get one (the node left, or `image` was emptied). Returns the nodes that run it.
json run_registrator_images(Context& ctx, const json& req, const Options& cfg, const Backend& backend) {
  json state = ctx.state();
  const json previous = state.value("images", json::array());
  json running = json::array();
  if (!cfg.image.empty()) {
    const json outputs = backend.view.value("outputs", json::object());
    const std::string cluster = req["cluster"].value("name", "");
    std::vector<json> starts;
    for (const auto& n : req.value("nodes", json::array())) {
      if (n.value("runtime", "") != "docker") continue;
      ctx.check_cancelled();
      const std::string node = n.value("name", ""), address = n.value("address", "");
      std::vector<std::string> flags;
      std::string uri;
      if (backend.kind == "consul") {
        // -cleanup (v7): deregister services of containers that are gone, e.g. after a restart.
        flags = {"-cleanup"};
        uri = d::consul_registry_uri(outputs.value("agents", json::object()),
                                     backend.view.value("endpoints", json::object()).value("consul", ""), node);
      } else {
        // etcd entries expire unless refreshed, as Flotilla's own do with their leases.
        flags = {"-ttl", std::to_string(cfg.ttl), "-ttl-refresh", std::to_string(std::max<std::int64_t>(1, cfg.ttl / 3))};
        uri = d::etcd_registry_uri(etcd_endpoints(backend), address, d::services_prefix(cfg.prefix, cluster));
        if (uri.ends_with("/")) uri.pop_back();
      }
      const json workload = d::registrator_workload(n, cfg.image, d::registrator_args(address, flags, uri));
      starts.push_back({{"op", "start"}, {"node", node}, {"workload", workload}});
      running.push_back(node);
    }
    (void)ctx.runtime_all(starts);  // every node's container at once
  }
  stop_departed(ctx, state, previous, running, kImageWorkload, "registrator container", "images");
  return running;
}

void stop_registrator_images(Context& ctx, const json& state) {
  stop_on_nodes(ctx, node_names(state.value("images", json::array())), kImageWorkload, "registrator container");
}

void stop_forwarders(Context& ctx, const json& state) {
  stop_on_nodes(ctx, node_names(state.value("forwarders", json::array())), kForwarder, "DNS forwarder");
}

}  // namespace

const char* manifest() {
  static const std::string text = options_map().manifest(kManifest);
  return text.c_str();
}

json Registrator::validate(Context&, const json& req) {
  json errors = json::array();
  // Types, the backend's choices, the prefix's form and the ranges come from the map; the
  // domain's form is the one check it cannot express.
  const auto filled = options_map().fill(support::addon_config(req));
  for (const auto& e : filled.errors) errors.push_back({{"key", e.key}, {"message", "registrator " + e.message}});
  const std::string& domain = filled.config.domain;
  if (!d::is_dns_domain(domain)) {
    errors.push_back({{"key", "domain"},
                      {"message", "domain \"" + domain + "\" is not a DNS domain (dot-separated labels of a-z, 0-9 and '-'); use e.g. \"consul\""}});
  }
  // Keepalives run on every node that holds entries, dnsmasq on the registrator's node; the
  // runtime is known once the driver has made the node.
  for (const auto& n : req.value("nodes", json::array()))
    if (const std::string rt = n.value("runtime", ""); !rt.empty() && rt != "process" && rt != "docker")
      errors.push_back({{"key", "placement"},
                        {"message", "registrator cannot run its keepalive and dnsmasq on node " + n.value("name", "") + " (runtime `" + rt +
                                        "`): it runs on the process and docker runtimes; keep services and the registrator off that node"}});
  for (const auto& svc : req.value("services", json::array())) {
    const std::string name = svc.value("name", "");
    const std::string label = svc.contains("dns") && svc["dns"].is_string() ? svc["dns"].get<std::string>() : d::dns_name(name);
    try {
      d::check_dns_label(label, "service \"" + name + "\"");
    } catch (const d::InvalidName& e) {
      errors.push_back({{"message", e.what()}});
    }
  }
  return {{"errors", errors}};
}

json Registrator::apply(Context& ctx, const json& req) {
  return translate_errors([&] {
    const Options cfg = options_of(req);
    const Backend backend = find_backend(req, cfg.backend);
    const auto placed = req["addon"].value("nodes", std::vector<std::string>{});
    const std::string home = placed.empty() ? std::string() : placed.front();
    check_image_backend(cfg, backend);
    const auto desired = d::desired_registrations(req, home);
    const json before = ctx.state();
    json out = backend.kind == "etcd" ? apply_etcd(ctx, req, cfg, backend, home, desired) : apply_consul(ctx, req, cfg, backend, desired);
    // The Consul path starts its state anew; the containers it does not know of stay recorded.
    if (json state = ctx.state(); !state.contains("forwarders") || !state.contains("images")) {
      for (const char* key : {"forwarders", "images"})
        if (!state.contains(key)) state[key] = before.value(key, json::array());
      ctx.set_state(state);
    }
    out["outputs"]["container_dns"] = run_forwarders(ctx, req, cfg, out["outputs"].value("dns", json()));
    out["outputs"]["registrator_nodes"] = run_registrator_images(ctx, req, cfg, backend);
    return out;
  });
}

json Registrator::destroy(Context& ctx, const json& req) {
  json state = ctx.state();
  const std::string cluster = req["cluster"].value("name", "");
  // Deregistering is a courtesy here: the backend may already be gone, and `down` must go on.
  try {
    const Options cfg = options_of(req);
    Backend b = find_backend(req, cfg.backend);
    if (b.kind == "etcd") {
      support::EtcdClient etcd(etcd_endpoints(b), short_timeouts());
      const json leases = state.value("leases", json::object());
      for (const auto& [node, lease] : leases.items()) etcd.lease_revoke(std::stoll(lease.value("id", "0")));
      const auto n = etcd.erase_prefix(d::services_prefix(cfg.prefix, cluster));
      ctx.info("removed " + std::to_string(n) + " catalog entries from etcd");
    } else {
      const auto report = d::sync_consul(consul_agents(b), b.view["endpoints"].value("consul", ""), cluster, {}, short_timeouts());
      ctx.info("deregistered " + std::to_string(report.removed) + " services from Consul");
    }
  } catch (const std::exception& e) {
    ctx.warn(std::string("could not clean the catalog (continuing): ") + e.what());
  }
  stop_etcd_helpers(ctx, state);
  stop_forwarders(ctx, state);
  stop_registrator_images(ctx, state);
  ctx.set_state(json::object());
  return json::object();
}

json Registrator::answer(Context&, const json& req) {
  const std::string question = req.value("question", "");
  if (question != "ip") throw sdk::NotSupported("addon registrator answers `ip`, not `" + question + "`");
  const std::string name = req.value("args", json::object()).value("name", "");
  if (name.empty()) throw sdk::Invalid("registrator: the `ip` question needs args.name, a service's DNS name");
  return translate_errors([&] {
    const Options cfg = options_of(req);
    Backend backend;
    try {
      backend = find_backend(req, cfg.backend);
    } catch (const sdk::Invalid& e) {
      throw sdk::NotFound(e.what());  // no catalog: the engine answers from its records
    }
    return json{{"addresses", catalog_addresses(req, cfg, backend, name)}};
  });
}

}  // namespace flotilla::registrator_addon
