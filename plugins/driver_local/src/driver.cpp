#include "driver_local/driver.hpp"

#include "driver_local/cidr.hpp"
#include "driver_local/node_processes.hpp"
#include "flotilla/support/config_map.hpp"
#include "flotilla/support/plugin_options.hpp"
#include "flotilla/support/request.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <string>
#include <system_error>

namespace flotilla::local {
namespace {

namespace fs = std::filesystem;
using flotilla::sdk::Context;
using flotilla::sdk::Error;
using flotilla::sdk::Invalid;
using flotilla::sdk::json;
using flotilla::sdk::Retryable;
using flotilla::support::errno_text;
using flotilla::support::str_or;
using namespace std::chrono_literals;

struct Options {
  std::string cidr = kDefaultCidr;
};

const flotilla::support::ConfigMap<Options>& options_map() {
  static const auto map = flotilla::support::ConfigMap<Options>().string(
      "cidr", &Options::cidr,
      "Loopback network (inside 127.0.0.0/8, prefix /16 to /30) the nodes' addresses come from: node slot N gets "
      "network + N + 1");
  return map;
}

Options options_of(const json& req) { return flotilla::support::plugin_options(options_map(), req, "driver local"); }

Cidr cidr_or_throw(const Options& o) {
  std::string error;
  const auto c = parse_cidr(o.cidr, error);
  if (!c) throw Invalid("driver local: " + error);
  return *c;
}

/// The node's work directory: the engine's choice, else <state_dir>/nodes/<name>.
fs::path workdir_of(const json& req) {
  const json node = req.value("node", json::object());
  fs::path dir = str_or(node, "workdir");
  if (dir.empty()) dir = str_or(req.value("record", json::object()).value("data", json::object()), "workdir");
  if (dir.empty()) {
    const std::string state_dir = str_or(req.value("cluster", json::object()), "state_dir");
    const std::string name = str_or(node, "name");
    if (state_dir.empty() || name.empty())
      throw Invalid("driver local: node " + name + " has no workdir and the cluster no state_dir");
    dir = fs::path(state_dir) / "nodes" / name;
  }
  if (!dir.is_absolute())
    throw Invalid("driver local: node workdir `" + dir.string() + "` is relative; the engine must pass an absolute path");
  return dir.lexically_normal();
}

/// The nodes the topology needs room for: one past the highest slot, at least one per node.
std::uint64_t nodes_needed(const json& nodes) {
  if (!nodes.is_array()) return 0;
  std::uint64_t needed = nodes.size();
  for (const auto& n : nodes)
    if (n.is_object() && n.contains("slot") && n["slot"].is_number_integer() && n["slot"].get<std::int64_t>() >= 0)
      needed = std::max<std::uint64_t>(needed, n["slot"].get<std::uint64_t>() + 1);
  return needed;
}

/// Binding proves the address is local here (it is on Linux; elsewhere only 127.0.0.1 is).
void check_bindable(const std::string& address, const std::string& node) {
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  ::inet_pton(AF_INET, address.c_str(), &sa.sin_addr);
  const bool bound = fd >= 0 && ::bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0;
  const int bind_errno = errno;
  if (fd >= 0) ::close(fd);
  if (!bound)
    throw Error(FLT_ERROR, "driver local: cannot bind " + address + " for node " + node + " (" + errno_text(bind_errno) +
                               "); this system does not route all of 127.0.0.0/8 to loopback, use the netns driver");
}

}  // namespace

json LocalDriver::validate(Context&, const json& req) {
  json errors = json::array();
  auto filled = options_map().fill(req.value("config", json::object()));
  for (const auto& e : filled.errors) errors.push_back({{"message", e.message}, {"key", e.key}});
  if (!filled.ok()) return json{{"errors", errors}};
  std::string error;
  const auto cidr = parse_cidr(filled.config.cidr, error);
  if (!cidr) {
    errors.push_back({{"message", error}, {"key", "cidr"}});
    return json{{"errors", errors}};
  }
  const std::uint64_t needed = nodes_needed(req.value("nodes", json::array()));
  if (needed > cidr->usable()) {
    errors.push_back({{"message", "cidr `" + filled.config.cidr + "` has room for " + std::to_string(cidr->usable()) +
                                      " nodes but the topology needs " + std::to_string(needed) +
                                      "; use a larger network such as " + larger_cidr(*cidr, needed)},
                      {"key", "cidr"}});
  }
  return json{{"errors", errors}};
}

json LocalDriver::create(Context& ctx, const json& req) {
  const Options o = options_of(req);
  const Cidr cidr = cidr_or_throw(o);
  const json node = req.value("node", json::object());
  const std::string name = str_or(node, "name");
  const json slot_value = node.value("slot", json());
  if (!slot_value.is_number_integer() || slot_value.get<std::int64_t>() < 0)
    throw Invalid("driver local: node " + name + " has no slot; the engine assigns one before create");
  const auto slot = slot_value.get<std::uint64_t>();
  if (slot + 1 > cidr.usable())
    throw Invalid("driver local: node " + name + " (slot " + std::to_string(slot) + ") does not fit in cidr " + o.cidr +
                  "; use a larger network in [driver.local] cidr");
  const std::string address = ipv4_text(cidr.network + static_cast<std::uint32_t>(slot) + 1);
  check_bindable(address, name);

  const fs::path workdir = workdir_of(req);
  std::error_code ec;
  fs::create_directories(workdir, ec);
  if (ec) throw Error(FLT_ERROR, "driver local: cannot create " + workdir.string() + " for node " + name + ": " + ec.message());
  ctx.debug("node " + name + " is " + address + " in " + workdir.string());
  return json{{"address", address},
              {"runtime", "process"},
              {"runtime_config", json::object()},
              {"data", {{"cidr", o.cidr}, {"workdir", workdir.string()}}}};
}

json LocalDriver::inspect(Context&, const json& req) {
  std::error_code ec;
  return json{{"state", fs::is_directory(workdir_of(req), ec) ? "running" : "missing"}};
}

json LocalDriver::destroy(Context& ctx, const json& req) {
  const fs::path workdir = workdir_of(req);
  // A guard against a bad record: never remove "/" or a top-level directory.
  if (std::distance(workdir.begin(), workdir.end()) < 3)
    throw Invalid("driver local: refusing to remove node workdir `" + workdir.string() + "`: it is too close to /");
  std::error_code ec;
  if (!fs::exists(workdir, ec)) return json::object();
  // The engine stops every workload it knows of before destroying a node; whatever still runs
  // on the node (a workload started by hand, or left by a crash) ends with it, as on a machine.
  const auto left = node_processes(workdir);
  for (const auto& p : left)
    ctx.warn("process " + std::to_string(p.pid) + " (" + p.name + ") still runs on node " +
             str_or(req.value("node", json::object()), "name") + ", which is being destroyed; stopping it");
  if (!end_processes(left, 10s, [&ctx] { return ctx.cancelled(); }))
    throw Retryable("driver local: a process under " + workdir.string() + " survived SIGKILL; try again");
  fs::remove_all(workdir, ec);
  if (ec) throw Error(FLT_ERROR, "driver local: cannot remove " + workdir.string() + ": " + ec.message());
  return json::object();
}

const char* manifest() {
  // The cidr decides every node's address, so changing it replaces the nodes: no option of this
  // driver can change in place.
  static const std::string text = options_map().manifest(R"json({
  "provides": [],
  "requires": [],
  "mutable_options": [],
  "runtime": "process"
})json");
  return text.c_str();
}

}  // namespace flotilla::local
