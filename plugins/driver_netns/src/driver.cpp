#include "driver_netns/driver.hpp"

#include <flotilla/support/command.hpp>
#include <flotilla/support/config_map.hpp>
#include <flotilla/support/encoding.hpp>
#include <flotilla/support/files.hpp>
#include <flotilla/support/plugin_options.hpp>
#include <flotilla/support/process.hpp>
#include <flotilla/support/request.hpp>

#include <unistd.h>

#include <filesystem>
#include <optional>

namespace flotilla::netns {
namespace {

namespace fs = std::filesystem;
using flotilla::sdk::Context;
using flotilla::sdk::Error;
using flotilla::sdk::Invalid;
using flotilla::sdk::json;
using flotilla::support::str_or;

// A unix socket path must fit sockaddr_un::sun_path (108 bytes with its NUL).
constexpr size_t kMaxSocketPath = 107;

const support::ConfigMap<Options>& options_map() {
  static const auto map =
      support::ConfigMap<Options>()
          .string("subnet", &Options::subnet,
                  "Private IPv4 /24 the nodes' addresses come from: the bridge is .1, node slot N is .N+2")
          .pattern(R"(\d{1,3}\.\d{1,3}\.\d{1,3}\.0/24)")
          .string("storage_driver", &Options::storage_driver, "dockerd's storage driver; vfs works on every filesystem")
          .one_of({"vfs", "overlay2", "btrfs", "zfs"})
          .string("bridge", &Options::bridge,
                  "Name of the host bridge (at most 15 characters); default: flt and 8 hex digits of the cluster")
          .pattern(R"([A-Za-z0-9_.-]{0,15})")
          .boolean("docker_bridge", &Options::docker_bridge,
                   "Give each dockerd its docker0 bridge, so containers can publish ports on the node's address")
          .boolean("tls", &Options::tls,
                   "Each dockerd also listens on the node's address with TLS client certificates Flotilla makes (for flotilla env)")
          .integer("docker_port", &Options::docker_port, "TCP port of that TLS endpoint")
          .range(1, 65535)
          .string("files_image", &Options::files_image,
                  "Image (with `rm`) of the containers through which the docker runtime places files in volumes on the nodes")
          .boolean("registry", &Options::registry,
                   "Run the lab's private registry (Debian's docker-registry) on the bridge's address; every dockerd pulls from it")
          .integer("registry_port", &Options::registry_port, "Port of the lab's registry on the bridge's address")
          .range(1, 65535)
          .string("registry_cache", &Options::registry_cache,
                  "Directory of the registry's images; kept by down as a cache (delete it by hand to drop the images)")
          .pattern(R"(/.*)");
  return map;
}

Options options_of(const json& req) { return support::plugin_options(options_map(), req, "driver netns"); }

/// 8 hex digits naming the cluster: its name and state directory, so two clusters never share objects.
std::string cluster_tag(const json& cluster) {
  return support::stable_hash(str_or(cluster, "name") + "\n" + str_or(cluster, "state_dir")).substr(0, 8);
}

std::string ipv4(std::uint32_t a) {
  return std::to_string(a >> 24) + "." + std::to_string((a >> 16) & 255) + "." + std::to_string((a >> 8) & 255) + "." +
         std::to_string(a & 255);
}

fs::path workdir_of(const json& cluster, const json& node, const json& record) {
  fs::path dir = str_or(node, "workdir");
  if (dir.empty()) dir = str_or(record.value("data", json::object()), "workdir");
  if (dir.empty() && !str_or(cluster, "state_dir").empty()) dir = fs::path(str_or(cluster, "state_dir")) / "nodes" / str_or(node, "name");
  if (dir.empty() || !dir.is_absolute())
    throw Invalid("driver netns: node " + str_or(node, "name") + " has no absolute workdir and the cluster no state_dir");
  return dir.lexically_normal();
}

/// True when a namespace whose name starts with `prefix` exists (another node of the cluster).
bool any_namespace_named(const std::string& prefix) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(netns_path(prefix).parent_path(), ec))
    if (entry.path().filename().string().starts_with(prefix)) return true;
  return false;
}

json errors_of(const std::vector<support::OptionError>& errors) {
  json out = json::array();
  for (const auto& e : errors) out.push_back({{"message", "driver netns: " + e.message}, {"key", e.key}});
  return out;
}

}  // namespace

std::string unavailable_reason() {
  if (::geteuid() != 0)
    return "driver netns: network namespaces and dockerd need root; run flotilla as root (sudo), or use driver local";
  for (const char* tool : {"ip", "nsenter", "dockerd", "containerd", "iptables"})
    if (!support::find_executable(tool))
      return std::string("driver netns: `") + tool + "` is not installed; run scripts/install-deps.sh (iproute2, util-linux, docker.io, iptables)";
  return {};
}

NodeLayout layout_of(const json& cluster, const Options& o, const json& node) {
  const std::string name = str_or(node, "name");
  const json slot_value = node.value("slot", json());
  if (!slot_value.is_number_integer() || slot_value.get<std::int64_t>() < 0)
    throw Invalid("driver netns: node " + name + " has no slot; the engine assigns one before create");
  const auto slot = slot_value.get<std::uint64_t>();
  const auto subnet = support::parse_ipv4_cidr(o.subnet);
  if (!subnet || subnet->prefix != 24 || (subnet->network & 255) != 0)
    throw Invalid("driver netns: subnet `" + o.subnet + "` is not a /24 network such as 10.214.0.0/24; fix [driver.netns] subnet");
  if (slot + 2 > 254)
    throw Invalid("driver netns: node " + name + " (slot " + std::to_string(slot) + ") does not fit in the /24 subnet " + o.subnet +
                  " (252 nodes at most)");
  const std::string tag = cluster_tag(cluster);
  NodeLayout l;
  l.name = name;
  l.bridge = o.bridge.empty() ? "flt" + tag : o.bridge;
  l.gateway = ipv4(subnet->network + 1);
  l.net = {.netns = "flt-" + tag + "-" + std::to_string(slot), .host_veth = "fv" + tag + std::to_string(slot), .bridge = l.bridge,
           .address = ipv4(subnet->network + static_cast<std::uint32_t>(slot) + 2), .prefix = 24, .gateway = l.gateway};
  l.dockerd.netns = l.net.netns;
  l.dockerd.root = workdir_of(cluster, node, node.value("record", json::object())) / "docker";
  l.dockerd.storage_driver = o.storage_driver;
  l.dockerd.bridge_none = !o.docker_bridge;
  l.tls_dir = fs::path(str_or(cluster, "state_dir", l.dockerd.root.parent_path().parent_path().string())) / "netns-tls";
  if (o.tls) l.dockerd.tcp_address = l.net.address + ":" + std::to_string(o.docker_port);
  l.netns_prefix = "flt-" + tag + "-";
  if (o.registry) {
    // Plain HTTP, trusted by each dockerd with --insecure-registry, rather than TLS with the
    // cluster's CA: dockerd reads a registry's CA only from /etc/docker/certs.d, a directory
    // of the whole machine, and the driver writes nothing outside the cluster's state
    // directory. The address is on the cluster's private bridge, reached from nowhere else.
    l.registry = RegistrySpec{.address = l.gateway + ":" + std::to_string(o.registry_port),
                              .root = l.tls_dir.parent_path() / "netns-registry",
                              .storage = fs::path(o.registry_cache).lexically_normal()};
    l.dockerd.insecure_registry = l.registry->address;
  }
  return l;
}

json NetnsDriver::validate(Context&, const json& req) {
  auto filled = options_map().fill(req.value("config", json::object()));
  json errors = errors_of(filled.errors);
  if (const std::string why = unavailable_reason(); !why.empty()) errors.push_back({{"message", why}, {"key", ""}});
  if (filled.config.registry && !support::find_executable("docker-registry"))
    errors.push_back({{"message", "driver netns: `docker-registry` is not installed; run scripts/install-deps.sh (package docker-registry), "
                                  "or set [driver.netns] registry = false"},
                      {"key", "registry"}});
  const json nodes = req.value("nodes", json::array());
  if (nodes.is_array() && nodes.size() > 252)
    errors.push_back({{"message", "driver netns: a /24 subnet holds 252 nodes; the topology has " + std::to_string(nodes.size())},
                      {"key", "subnet"}});
  return json{{"errors", errors}};
}

json NetnsDriver::create(Context& ctx, const json& req) {
  if (const std::string why = unavailable_reason(); !why.empty()) throw Invalid(why);
  const Options o = options_of(req);
  const json cluster = req.value("cluster", json::object());
  NodeLayout l = layout_of(cluster, o, req.value("node", json::object()));
  // The longest socket under the node's directory is the one dockerd's containerd makes.
  const fs::path longest = l.dockerd.root / "exec" / "containerd" / "containerd.sock.ttrpc";
  if (longest.string().size() > kMaxSocketPath)
    throw Invalid("driver netns: node " + l.name + ": the socket path " + longest.string() + " is " +
                  std::to_string(longest.string().size()) + " bytes, longer than a unix socket path may be (" +
                  std::to_string(kMaxSocketPath) + "); use a shorter state directory or cluster name");
  // docker0 in the namespace: its containers reach the other nodes through the rule below, and
  // their node (a DNS forwarder there, say) at its gateway.
  std::optional<DockerBridge> bridge;
  try {
    // Marks the bridge as this cluster's, so that destroy removes only a bridge it made.
    const fs::path mark = fs::path(str_or(cluster, "state_dir", l.dockerd.root.parent_path().string())) / ("netns-bridge-" + l.bridge);
    std::optional<ClientTls> client;
    {
      const support::FileLock lock(mark.string() + ".lock");  // nodes share the bridge and the CA
      if (!link_exists(l.bridge)) {
        fs::create_directories(mark.parent_path());
        support::write_file_atomic(mark, l.gateway + "\n");
      }
      ensure_bridge(l.bridge, l.gateway, 24);
      // The cluster's one registry, started by whichever node comes first (or again, when it died).
      if (l.registry) (void)start_registry(*l.registry);
      ensure_namespace(l.net);
      // The cluster's CA is made once, by whichever node comes first.
      if (o.tls) client = ensure_client_tls(l.tls_dir, str_or(cluster, "name"));
    }
    if (client) l.dockerd.tls = ensure_server_tls(*client, l.dockerd.root / "tls", l.name, l.net.address);
    const auto id = start_dockerd(l.dockerd);
    if (!l.dockerd.bridge_none) {
      bridge = docker_bridge(l.dockerd);
      ensure_masquerade(l.net.netns, *bridge);
    }
    ctx.debug("node " + l.name + " is " + l.net.address + " in namespace " + l.net.netns + ", dockerd pid " + std::to_string(id.pid));
  } catch (const std::exception& e) {
    throw Error(FLT_ERROR, "driver netns: cannot create node " + l.name + ": " + e.what());
  }
  json runtime_config = {{"host", l.dockerd.unix_host()}, {"cluster", str_or(cluster, "name")}, {"files_image", o.files_image}};
  if (l.registry) runtime_config["registry"] = l.registry->address;
  if (bridge) runtime_config["bridge_gateway"] = bridge->gateway;
  // What a docker client elsewhere on this machine needs (`flotilla env`).
  if (o.tls)
    runtime_config["env"] = {{"DOCKER_HOST", "tcp://" + l.dockerd.tcp_address}, {"DOCKER_TLS_VERIFY", "1"}, {"DOCKER_CERT_PATH", l.tls_dir.string()}};
  return json{{"address", l.net.address},
              {"runtime", "docker"},
              {"runtime_config", runtime_config},
              {"data",
               {{"workdir", l.dockerd.root.parent_path().string()},
                {"netns", l.net.netns},
                {"veth", l.net.host_veth},
                {"bridge", l.bridge},
                {"subnet", o.subnet}}}};
}

json NetnsDriver::inspect(Context&, const json& req) {
  const Options o = options_of(req);
  json node = req.value("node", json::object());
  node["record"] = req.value("record", json::object());
  const NodeLayout l = layout_of(req.value("cluster", json::object()), o, node);
  if (!netns_exists(l.net.netns)) return json{{"state", "missing"}};
  const auto id = support::read_pid_file(l.dockerd.identity_file());
  // A node whose registry is gone cannot pull: "stopped" makes the next `up` create it again,
  // which starts the registry anew.
  const bool registry_up = !l.registry || registry_running(*l.registry);
  return json{{"state", id && support::is_running(*id) && registry_up ? "running" : "stopped"}};
}

json NetnsDriver::destroy(Context& ctx, const json& req) {
  const Options o = options_of(req);
  const json cluster = req.value("cluster", json::object());
  json node = req.value("node", json::object());
  node["record"] = req.value("record", json::object());
  const NodeLayout l = layout_of(cluster, o, node);
  try {
    if (stop_dockerd(l.dockerd)) ctx.debug("stopped dockerd of node " + l.name);
    remove_tree(l.dockerd.root);
    // The bridge goes with the last node on it, and only if this cluster made it.
    const fs::path mark = fs::path(str_or(cluster, "state_dir", l.dockerd.root.parent_path().string())) / ("netns-bridge-" + l.bridge);
    bool last = false;
    {
      const support::FileLock lock(mark.string() + ".lock");  // nodes share the bridge and the CA
      remove_namespace(l.net);
      if (!any_namespace_named(l.netns_prefix)) {
        // The last node of the cluster takes the registry (its process, configuration and
        // log; the images stay in registry_cache) and the cluster's certificates with it.
        if (l.registry) {
          if (stop_registry(*l.registry)) ctx.debug("stopped the registry on " + l.registry->address);
          fs::remove_all(l.registry->root);
        }
        fs::remove_all(l.tls_dir);
      }
      const fs::path ports = fs::path("/sys/class/net") / l.bridge / "brif";
      std::error_code ec;
      if (fs::exists(mark) && link_exists(l.bridge) && fs::is_empty(ports, ec) && !ec) {
        remove_bridge(l.bridge);
        fs::remove(mark);
        last = true;
      }
    }
    if (last) fs::remove(mark.string() + ".lock");
  } catch (const std::exception& e) {
    throw Error(FLT_ERROR, "driver netns: cannot destroy node " + l.name + ": " + e.what());
  }
  return json::object();
}

const char* manifest() {
  // The subnet and bridge decide every node's address; the storage driver its data: none changes in place.
  static const std::string text = options_map().manifest(R"json({
  "provides": [],
  "requires": [],
  "mutable_options": [],
  "runtime": "docker"
})json");
  return text.c_str();
}

}  // namespace flotilla::netns
