#include "runtime_docker/runtime.hpp"

#include "runtime_docker/files.hpp"
#include "runtime_docker/registries.hpp"

#include <flotilla/support/encoding.hpp>
#include <flotilla/support/request.hpp>
#include <flotilla/support/wait.hpp>

#include <optional>
#include <regex>
#include <utility>

namespace flotilla::docker_runtime {
namespace {

using flotilla::sdk::Context;
using flotilla::sdk::Error;
using flotilla::sdk::Invalid;
using flotilla::sdk::json;
using flotilla::sdk::NotSupported;
using flotilla::sdk::Retryable;
using flotilla::support::DockerClient;
using flotilla::support::DockerError;
using flotilla::support::str_or;
using namespace std::chrono_literals;

/// How long a fresh container must stay up to count as started.
constexpr auto kStartupGrace = 300ms;

std::string cluster_of(const json& req) {
  std::string c = str_or(req.value("cluster", json::object()), "name");
  if (c.empty()) c = str_or(req.value("node", json::object()).value("runtime_config", json::object()), "cluster");
  return c;
}

/// The workload's name from the record, else from the workload.
std::string name_of(const json& req) {
  std::string name = str_or(req.value("record", json::object()), "name");
  if (name.empty()) name = str_or(req.value("workload", json::object()), "name");
  return name;
}

/// The component a workload belongs to (its owner: "service:hello/v1", an addon), from the
/// workload or the record start returned; "" when neither says.
std::string component_of(const json& req) {
  std::string owner = str_or(req.value("workload", json::object()), "owner");
  if (owner.empty()) owner = str_or(req.value("record", json::object()), "component");
  return owner;
}

/// A DockerError as the engine should see it: retryable when the daemon was not reached.
[[noreturn]] void rethrow(const DockerError& e, const std::string& workload, const std::string& component) {
  std::string message = e.what();
  if (!workload.empty()) message += " (workload " + workload + (component.empty() ? "" : " of " + component) + ")";
  if (e.unreachable()) throw Retryable(message);
  throw Error(FLT_ERROR, message);
}

/// Why a start failed, in the user's terms where the daemon's words are obscure.
std::string start_hint(const DockerError& e, const json& w, const std::string& node) {
  const std::string& said = e.daemon_message();
  if (said.find("address already in use") != std::string::npos || said.find("port is already allocated") != std::string::npos) {
    std::string ports;
    for (const json& p : w.value("ports", json::array())) ports += (ports.empty() ? "" : ", ") + p.dump();
    return "; a port of it (" + ports + ") is already taken on node " + node +
           "'s address by another program or container: free it, or give the workload another port";
  }
  return {};
}

/// "Exited (3) 2 seconds ago" -> 3.
std::optional<int> exit_code_of(const std::string& status) {
  static const std::regex re(R"(^Exited \((-?\d+)\))");
  std::smatch m;
  if (std::regex_search(status, m, re)) return std::stoi(m[1]);
  return std::nullopt;
}

void add_resources(json& host, const json& resources, const std::string& name) {
  if (!resources.is_object()) return;
  if (const auto m = resources.find("memory_mb"); m != resources.end()) {
    if (!m->is_number_integer() || m->get<std::int64_t>() <= 0) throw Invalid("workload " + name + ": resources.memory_mb must be a positive integer");
    host["Memory"] = m->get<std::int64_t>() * 1024 * 1024;
  }
  if (const auto c = resources.find("cpus"); c != resources.end()) {
    if (!c->is_number() || c->get<double>() <= 0) throw Invalid("workload " + name + ": resources.cpus must be a positive number");
    host["NanoCpus"] = static_cast<std::int64_t>(c->get<double>() * 1e9);
  }
}

/// Mounts go to HostConfig.Mounts, except those with `create_source`, which go to
/// HostConfig.Binds: only that form creates a missing source directory on the node, as
/// `docker run --volume` does (the Mounts API refuses a missing source before API 1.42).
void add_mounts(json& host, const json& mounts, const std::string& name) {
  json out = json::array(), binds = json::array();
  if (mounts.is_array()) {
    for (const json& m : mounts) {
      const std::string source = str_or(m, "source"), target = str_or(m, "target");
      if (target.empty() || target.front() != '/') throw Invalid("workload " + name + ": every mount needs an absolute `target`");
      const std::string type = str_or(m, "type", source.starts_with("/") ? "bind" : "volume");
      const bool read_only = m.value("read_only", false);
      if (m.value("create_source", false)) {
        if (type != "bind" || !source.starts_with("/"))
          throw Invalid("workload " + name + ": mount " + target + " has `create_source` but is not a bind mount of an absolute `source`");
        binds.push_back(source + ":" + target + (read_only ? ":ro" : ":rw"));
        continue;
      }
      out.push_back({{"Type", type}, {"Source", source}, {"Target", target}, {"ReadOnly", read_only}});
    }
  }
  host["Mounts"] = out;
  if (!binds.empty()) host["Binds"] = binds;
}

/// A `ports` entry: a number (the same port in the container and on the node's address) or
/// {container, host}.
std::optional<std::pair<int, int>> port_pair(const json& p) {
  const auto valid = [](const json& v) { return v.is_number_integer() && v.get<int>() > 0 && v.get<int>() < 65536; };
  if (valid(p)) return std::pair{p.get<int>(), p.get<int>()};
  if (p.is_object() && p.size() == 2 && p.contains("container") && p.contains("host") && valid(p["container"]) && valid(p["host"]))
    return std::pair{p["container"].get<int>(), p["host"].get<int>()};
  return std::nullopt;
}

/// True when Flotilla made the container.
bool managed(const json& container) { return container_labels(container).value(kManagedLabel, "") == "true"; }

json with_id(json record, const json& id) {
  record["id"] = id;
  return record;
}

}  // namespace

json container_labels(const json& container) {
  const json config = container.value("Config", json::object());
  const json labels = config.is_object() ? config.value("Labels", json::object()) : json::object();
  return labels.is_object() ? labels : json::object();
}

support::DockerEndpoint endpoint_of(const json& node) {
  support::DockerEndpoint e = support::docker_endpoint_of(node);
  if (e.node.empty()) e.node = "?";
  if (e.host.empty())
    throw Invalid("node " + e.node + " has no Docker endpoint (runtime_config.host); its driver must report one, e.g. unix:///var/run/docker.sock");
  return e;
}

std::vector<std::string> workload_errors(const json& w) {
  std::vector<std::string> errors;
  const std::string name = str_or(w, "name");
  static const std::regex valid_name("[A-Za-z0-9][A-Za-z0-9_.-]*");
  if (!std::regex_match(name, valid_name)) errors.push_back("workload name `" + name + "` is not a valid container name ([A-Za-z0-9][A-Za-z0-9_.-]*)");
  if (str_or(w, "image").empty())
    errors.push_back("workload " + name + " has no image: the docker runtime runs images; add `image` or use a driver with the process runtime");
  if (w.contains("cmd") && !(w["cmd"].is_array() && std::all_of(w["cmd"].begin(), w["cmd"].end(), [](const json& a) { return a.is_string(); })))
    errors.push_back("workload " + name + ": `cmd` must be an array of strings");
  if (w.contains("ports") && !(w["ports"].is_array() && std::all_of(w["ports"].begin(), w["ports"].end(), [](const json& p) {
        return port_pair(p).has_value();
      })))
    errors.push_back("workload " + name + ": `ports` must be an array of port numbers or {\"container\": PORT, \"host\": PORT} tables");
  if (w.contains("privileged") && !w["privileged"].is_boolean())
    errors.push_back("workload " + name + ": `privileged` must be true or false");
  if (w.contains("devices") && !(w["devices"].is_array() && std::all_of(w["devices"].begin(), w["devices"].end(), [](const json& d) {
        return d.is_string() && d.get<std::string>().starts_with("/dev/");
      })))
    errors.push_back("workload " + name + ": `devices` must be an array of device paths on the node, e.g. [\"/dev/kmsg\"]");
  if (const std::string net = str_or(w, "network"); !net.empty() && net != "host" && net != "bridge")
    errors.push_back("workload " + name + ": `network` must be \"host\" or \"bridge\" (the default), not \"" + net + "\"");
  // Docker's resolver list takes addresses only (queried on port 53), so a name or a port here
  // would only fail inside the container, at its first lookup.
  static const std::regex ipv4(R"((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3})");
  if (w.contains("dns") && !(w["dns"].is_array() && std::all_of(w["dns"].begin(), w["dns"].end(), [](const json& a) {
        return a.is_string() && std::regex_match(a.get<std::string>(), ipv4);
      })))
    errors.push_back("workload " + name + ": `dns` must be an array of IPv4 addresses (resolvers queried on port 53, e.g. [\"172.17.0.1\"]), not " +
                     w["dns"].dump());
  static const std::regex domain("[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*");
  if (w.contains("dns_search") && !(w["dns_search"].is_array() && std::all_of(w["dns_search"].begin(), w["dns_search"].end(), [](const json& d) {
        return d.is_string() && std::regex_match(d.get<std::string>(), domain);
      })))
    errors.push_back("workload " + name + ": `dns_search` must be an array of DNS domains (e.g. [\"service.consul\"]), not " +
                     w["dns_search"].dump());
  return errors;
}

json container_config(const json& node, const json& w, const std::string& cluster) {
  const std::string name = str_or(w, "name");
  const std::string address = str_or(node, "address");
  json env = json::array();
  if (const json e = w.value("env", json::object()); e.is_object())
    for (const auto& [k, v] : e.items()) env.push_back(k + "=" + (v.is_string() ? v.get<std::string>() : v.dump()));
  env.push_back("FLOTILLA_NODE=" + str_or(node, "name"));
  env.push_back("FLOTILLA_NODE_ADDRESS=" + address);
  env.push_back("FLOTILLA_WORKLOAD=" + name);
  json exposed = json::object(), bindings = json::object();
  for (const json& p : w.value("ports", json::array())) {
    const auto pair = port_pair(p);
    if (!pair) throw Invalid("workload " + name + ": bad `ports` entry " + p.dump());
    const std::string key = std::to_string(pair->first) + "/tcp";
    exposed[key] = json::object();
    bindings[key] = json::array({{{"HostIp", address}, {"HostPort", std::to_string(pair->second)}}});
  }
  json host = {{"PortBindings", bindings}, {"RestartPolicy", {{"Name", str_or(w, "restart", "unless-stopped")}}}};
  add_mounts(host, w.value("mounts", json::array()), name);
  if (json files = owner_files_mount(cluster, str_or(w, "owner")); !files.is_null()) host["Mounts"].push_back(std::move(files));
  // Set only when asked for, so the spec hash of every other workload stays what it was.
  if (w.value("privileged", false)) host["Privileged"] = true;
  if (const json devices = w.value("devices", json::array()); devices.is_array() && !devices.empty()) {
    host["Devices"] = json::array();
    for (const json& d : devices) {
      if (!d.is_string()) throw Invalid("workload " + name + ": `devices` must be an array of device paths");
      host["Devices"].push_back({{"PathOnHost", d}, {"PathInContainer", d}, {"CgroupPermissions", "rwm"}});
    }
  }
  // `network: "host"`: the container shares the node's network (its address, its routes to
  // other nodes); ports are then bound by the program itself, not published.
  if (str_or(w, "network") == "host") {
    host["NetworkMode"] = "host";
    host.erase("PortBindings");
    exposed = json::object();
  }
  add_resources(host, w.value("resources", json::object()), name);
  // Set only when given, so that the spec hash of a workload without them stays what it was.
  if (const json dns = w.value("dns", json::array()); dns.is_array() && !dns.empty()) host["Dns"] = dns;
  if (const json search = w.value("dns_search", json::array()); search.is_array() && !search.empty()) host["DnsSearch"] = search;
  json config = {{"Image", str_or(w, "image")},
                 {"Env", env},
                 {"ExposedPorts", exposed},
                 {"HostConfig", host},
                 {"Labels",
                  {{kManagedLabel, "true"},
                   {kClusterLabel, cluster},
                   {kNodeLabel, str_or(node, "name")},
                   {kWorkloadLabel, name},
                   {kComponentLabel, str_or(w, "owner", name)}}}};
  if (w.contains("cmd")) config["Cmd"] = w["cmd"];
  return config;
}

std::string config_hash(const json& config) { return support::stable_hash(config.dump()); }

std::vector<support::ContainerSummary> NodeListings::get(const support::DockerEndpoint& endpoint) {
  // Keyed by the client identity too: a listing made with one certificate answers no other.
  const std::string key = endpoint.host + "\n" + endpoint.tls.cert_file.string();
  std::promise<std::vector<support::ContainerSummary>> mine;
  {
    std::unique_lock lock(mu_);
    const auto it = entries_.find(key);
    if (it != entries_.end() && std::chrono::steady_clock::now() - it->second.at < ttl_) return it->second.containers;
    if (const auto under_way = listing_.find(key); under_way != listing_.end()) {
      const auto pending = under_way->second;
      lock.unlock();
      return pending.get();
    }
    listing_[key] = mine.get_future().share();
  }
  try {
    DockerClient docker(endpoint);
    auto containers = docker.list_containers({std::string(kManagedLabel) + "=true"});
    {
      std::lock_guard lock(mu_);
      ++calls_;
      entries_[key] = {std::chrono::steady_clock::now(), containers};
      listing_.erase(key);
    }
    mine.set_value(containers);
    return containers;
  } catch (...) {
    {
      std::lock_guard lock(mu_);
      listing_.erase(key);
    }
    mine.set_exception(std::current_exception());
    throw;
  }
}

void NodeListings::forget(const std::string& host) {
  std::lock_guard lock(mu_);
  std::erase_if(entries_, [&](const auto& entry) { return entry.first.starts_with(host + "\n"); });
}

int NodeListings::list_calls() const {
  std::lock_guard lock(mu_);
  return calls_;
}

namespace {

/// What to do when `image` cannot be pulled on `node_name`: push it when it names the lab's
/// registry (runtime_config.registry, reported by the netns driver), else check name and access.
std::string missing_image_hint(const std::string& image, const json& node, const std::string& node_name) {
  const std::string registry = str_or(node.value("runtime_config", json::object()), "registry");
  if (!registry.empty() && image.starts_with(registry + "/"))
    return "; the lab's registry " + registry + " does not have it: push the images once with "
           "`eval \"$(flotilla env FILE " + node_name + ")\"; scripts/build-images.sh --registry " + registry +
           " --hello build/bin/flotilla-hello` (docs/docker.md), then run up again";
  return "; check the image's name and tag, that node " + node_name + " reaches its registry, and the registry's credentials";
}

}  // namespace

json DockerRuntime::validate(Context&, const json& req) {
  // Asked with {config} alone, it checks the runtime's options; with a workload, the workload.
  json errors = req.contains("workload") ? json::array() : config_errors(req.value("config", json::object()));
  if (req.contains("workload"))
    for (const auto& m : workload_errors(req["workload"])) errors.push_back({{"message", m}, {"key", "image"}});
  return json{{"errors", errors}};
}

json DockerRuntime::start(Context& ctx, const json& req) {
  const json node = req.value("node", json::object());
  const json w = req.value("workload", json::object());
  const std::string name = str_or(w, "name");
  if (const auto errors = workload_errors(w); !errors.empty()) {
    if (str_or(w, "image").empty()) throw NotSupported(errors.front());
    throw Invalid(errors.front());
  }
  const auto endpoint = endpoint_of(node);
  json config = container_config(node, w, cluster_of(req));
  const std::string hash = config_hash(config);
  config["Labels"][kSpecHashLabel] = hash;
  const json record = {{"name", name}, {"spec_hash", hash}, {"image", str_or(w, "image")}, {"component", str_or(w, "owner", name)}};
  try {
    DockerClient docker(endpoint);
    if (const auto old = docker.inspect_container(name)) {
      const json labels = container_labels(*old);
      if (!managed(*old))
        throw Error(FLT_ERROR, "node " + endpoint.node + " has a container named " + name +
                                   " that Flotilla did not make; remove or rename it (docker rm " + name + ")");
      if (labels.value(kSpecHashLabel, "") == hash && (*old)["State"].value("Running", false))
        return json{{"record", with_id(record, (*old)["Id"])}, {"changed", false}};
      ctx.info("replacing container " + name + " on node " + endpoint.node + (labels.value(kSpecHashLabel, "") == hash ? " (not running)" : " (its spec changed)"));
      docker.remove_container(name);
    }
    listings_.forget(endpoint.host);
    ctx.progress("starting " + name);
    ensure_image(docker, req.value("config", json::object()), str_or(w, "image"), "workload " + name + " of " + str_or(w, "owner", name),
                 missing_image_hint(str_or(w, "image"), node, endpoint.node));
    const std::string id = docker.create_container(name, config);
    try {
      docker.start_container(id);
    } catch (const DockerError& e) {
      // Nothing half-made stays behind: the next start begins from a clean slate.
      docker.remove_container(id);
      throw Error(FLT_ERROR, std::string(e.what()) + start_hint(e, w, endpoint.node) + " (workload " + name + " of " +
                                 str_or(w, "owner", name) + ")");
    }
    support::sleep_for(kStartupGrace, [&ctx] { return ctx.cancelled(); });
    const auto now = docker.inspect_container(id);
    if (!now || !(*now)["State"].value("Running", false)) {
      const auto logs = docker.logs(id, 10);
      throw Error(FLT_ERROR, "workload " + name + " of " + str_or(w, "owner", name) + " on node " + endpoint.node + " exited right after it started (image " + str_or(w, "image") +
                                 ", exit code " + (now ? (*now)["State"].value("ExitCode", json(-1)).dump() : "?") + "); its last output:\n" +
                                 logs.out + logs.err);
    }
    ctx.info("started " + name + " on node " + endpoint.node + " (container " + id.substr(0, 12) + ")");
    return json{{"record", with_id(record, id)}, {"changed", true}};
  } catch (const DockerError& e) {
    rethrow(e, name, component_of(req));
  }
}

json DockerRuntime::inspect(Context&, const json& req) {
  const auto endpoint = endpoint_of(req.value("node", json::object()));
  const std::string name = name_of(req);
  try {
    for (const auto& c : listings_.get(endpoint)) {
      if (c.name != name) continue;
      if (c.state == "running") return json{{"state", "running"}, {"id", c.id}, {"spec_hash", c.labels.count(kSpecHashLabel) ? c.labels.at(kSpecHashLabel) : ""}};
      json out = {{"state", "exited"}, {"id", c.id}};
      if (const auto code = exit_code_of(c.status)) out["exit_code"] = *code;
      return out;
    }
    return json{{"state", "missing"}};
  } catch (const DockerError& e) {
    rethrow(e, name, component_of(req));
  }
}

json DockerRuntime::stop(Context& ctx, const json& req) {
  const auto endpoint = endpoint_of(req.value("node", json::object()));
  const std::string name = name_of(req);
  const auto grace = std::chrono::seconds(static_cast<long>(req.value("timeout_s", 10.0)));
  try {
    DockerClient docker(endpoint);
    const auto c = docker.inspect_container(name);
    if (!c) return json::object();
    if (!managed(*c))
      throw Error(FLT_ERROR, "container " + name + " on node " + endpoint.node + " was not made by Flotilla; leaving it alone");
    listings_.forget(endpoint.host);
    ctx.progress("stopping " + name);
    docker.stop_container(name, grace);
    // Without purge the stopped container stays, with its logs, until the workload goes for good.
    if (req.value("purge", false)) docker.remove_container(name);
    return json::object();
  } catch (const DockerError& e) {
    rethrow(e, name, component_of(req));
  }
}

json DockerRuntime::put_file(Context& ctx, const json& req) { return place_file(ctx, req, cluster_of(req)); }

json DockerRuntime::signal(Context&, const json& req) {
  const auto endpoint = endpoint_of(req.value("node", json::object()));
  const std::string name = name_of(req);
  const std::string sig = str_or(req, "signal");
  if (sig.empty()) throw Invalid("signal to " + name + " on node " + endpoint.node + " names no signal; use e.g. HUP");
  try {
    DockerClient docker(endpoint);
    docker.kill_container(name, sig);
    return json::object();
  } catch (const DockerError& e) {
    if (e.status() == 404 || e.status() == 409)
      throw sdk::NotFound("cannot signal " + name + " on node " + endpoint.node + ": " + e.daemon_message() + "; start it first (flotilla up)");
    rethrow(e, name, component_of(req));
  }
}

}  // namespace flotilla::docker_runtime
