// The `local` driver: every node is a loopback address on this machine and a directory.
//
// Linux routes all of 127.0.0.0/8 to the loopback interface, so any address in it can be bound
// without root and without configuring an interface. A node is therefore just an address
// (network + slot + 1) and a work directory; its workloads run through the process runtime.
#include "flotilla/support/request.hpp"

#include <flotilla/plugin.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
using flotilla::sdk::Context;
using flotilla::sdk::Error;
using flotilla::sdk::Invalid;
using flotilla::sdk::json;
using flotilla::sdk::Retryable;
using flotilla::plugin_util::errno_text;
using flotilla::plugin_util::pidfd_open;
using flotilla::plugin_util::str_or;
using namespace std::chrono_literals;

constexpr const char* kDefaultCidr = "127.77.0.0/24";
constexpr int kMinPrefix = 16;
constexpr int kMaxPrefix = 30;

struct Cidr {
  std::uint32_t network = 0;  // host byte order
  int prefix = 0;
  /// Addresses a node may get: all but the network and broadcast addresses.
  [[nodiscard]] std::uint64_t usable() const { return (std::uint64_t{1} << (32 - prefix)) - 2; }
};

std::string ipv4_text(std::uint32_t addr) {
  in_addr a{htonl(addr)};
  char buf[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

/// Parses and checks a cidr; the error says what to write instead.
std::optional<Cidr> parse_cidr(const std::string& text, std::string& error) {
  const auto parsed = flotilla::plugin_util::parse_ipv4_cidr(text);
  if (!parsed) {
    error = "cidr `" + text + "` is not an IPv4 network such as " + kDefaultCidr;
    return std::nullopt;
  }
  const int prefix = parsed->prefix;
  const Cidr c{parsed->network, prefix};
  if ((c.network >> 24) != 127) {
    error = "cidr `" + text + "` is outside 127.0.0.0/8; the local driver gives nodes loopback addresses only (e.g. " +
            kDefaultCidr + ")";
    return std::nullopt;
  }
  if (prefix < kMinPrefix || prefix > kMaxPrefix) {
    error = "cidr `" + text + "` has prefix /" + std::to_string(prefix) + "; use a prefix from /" + std::to_string(kMinPrefix) +
            " to /" + std::to_string(kMaxPrefix);
    return std::nullopt;
  }
  const std::uint32_t mask = ~std::uint32_t{0} << (32 - prefix);
  if ((c.network & ~mask) != 0) {
    error = "cidr `" + text + "` has host bits set; write the network address: " + ipv4_text(c.network & mask) + "/" +
            std::to_string(prefix);
    return std::nullopt;
  }
  return c;
}

std::string cidr_text(const json& req) {
  const std::string text = str_or(req.value("config", json::object()), "cidr");
  return text.empty() ? kDefaultCidr : text;
}

Cidr cidr_or_throw(const json& req) {
  std::string error;
  const auto c = parse_cidr(cidr_text(req), error);
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

// Processes a destroyed node may still run. The engine stops workloads before destroying a
// node; this is the backstop, as destroying a machine ends what runs on it. The pid file is
// "PID START_TIME" (see the process runtime) and nothing is signalled unless the start time
// still matches, so a reused pid is never hit.

std::optional<std::uint64_t> start_time_of(pid_t pid, bool* live) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!in || !std::getline(in, text)) return std::nullopt;
  const auto close = text.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(text.substr(close + 1));
  char state = '?';
  std::string skip;
  fields >> state;
  for (int i = 0; i < 18 && fields; ++i) fields >> skip;  // ppid .. itrealvalue
  std::uint64_t start = 0;
  if (!(fields >> start)) return std::nullopt;
  if (live) *live = state != 'Z' && state != 'X' && state != 'x';
  return start;
}

bool running(pid_t pid, std::uint64_t start) {
  bool live = false;
  const auto s = start_time_of(pid, &live);
  return s && live && *s == start;
}

void signal_group(pid_t pid, std::uint64_t start, int sig) {
  const int pidfd = pidfd_open(pid, 0);
  if (pidfd < 0) return;
  if (running(pid, start)) ::kill(-pid, sig);
  ::close(pidfd);
}

/// Stops workloads still recorded under `workdir`; false if one survived SIGKILL.
bool stop_leftovers(Context& ctx, const fs::path& workdir) {
  std::vector<std::pair<pid_t, std::uint64_t>> live;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(workdir / "workloads", ec)) {
    std::ifstream in(entry.path() / "pid");
    long long pid = 0;
    std::uint64_t start = 0;
    if (in >> pid >> start && pid > 0 && running(static_cast<pid_t>(pid), start)) {
      ctx.warn("workload " + entry.path().filename().string() + " (pid " + std::to_string(pid) +
               ") still runs on a node being destroyed; stopping it");
      live.emplace_back(static_cast<pid_t>(pid), start);
    }
  }
  auto wait = [&](std::chrono::steady_clock::duration limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::any_of(live.begin(), live.end(), [](const auto& p) { return running(p.first, p.second); })) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(20ms);
    }
    return true;
  };
  for (const auto& [pid, start] : live) signal_group(pid, start, SIGTERM);
  if (wait(10s)) return true;
  for (const auto& [pid, start] : live) signal_group(pid, start, SIGKILL);
  return wait(5s);
}

class LocalDriver : public flotilla::sdk::Driver {
 public:
  json validate(Context&, const json& req) override {
    json errors = json::array();
    std::string error;
    const std::string text = cidr_text(req);
    const auto cidr = parse_cidr(text, error);
    if (!cidr) {
      errors.push_back({{"message", error}, {"key", "cidr"}});
      return json{{"errors", errors}};
    }
    const json nodes = req.value("nodes", json::array());
    std::uint64_t needed = nodes.is_array() ? nodes.size() : 0;
    if (nodes.is_array())
      for (const auto& n : nodes)
        if (n.is_object() && n.contains("slot") && n["slot"].is_number_integer() && n["slot"].get<std::int64_t>() >= 0)
          needed = std::max<std::uint64_t>(needed, n["slot"].get<std::uint64_t>() + 1);
    if (needed > cidr->usable()) {
      int prefix = cidr->prefix;
      while (prefix > kMinPrefix && ((std::uint64_t{1} << (32 - prefix)) - 2) < needed) --prefix;
      errors.push_back({{"message", "cidr `" + text + "` has room for " + std::to_string(cidr->usable()) +
                                        " nodes but the topology needs " + std::to_string(needed) +
                                        "; use a larger network such as " + ipv4_text(cidr->network & (~0u << (32 - prefix))) +
                                        "/" + std::to_string(prefix)},
                        {"key", "cidr"}});
    }
    return json{{"errors", errors}};
  }

  json create(Context& ctx, const json& req) override {
    const Cidr cidr = cidr_or_throw(req);
    const json node = req.value("node", json::object());
    const std::string name = str_or(node, "name");
    const json slot_value = node.value("slot", json());
    if (!slot_value.is_number_integer() || slot_value.get<std::int64_t>() < 0)
      throw Invalid("driver local: node " + name + " has no slot; the engine assigns one before create");
    const auto slot = slot_value.get<std::uint64_t>();
    if (slot + 1 > cidr.usable())
      throw Invalid("driver local: node " + name + " (slot " + std::to_string(slot) + ") does not fit in cidr " +
                    cidr_text(req) + "; use a larger network in [driver.local] cidr");
    const std::string address = ipv4_text(cidr.network + static_cast<std::uint32_t>(slot) + 1);

    // Binding proves the address is local here (it is on Linux; elsewhere only 127.0.0.1 is).
    const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    ::inet_pton(AF_INET, address.c_str(), &sa.sin_addr);
    const bool bound = fd >= 0 && ::bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0;
    const int bind_errno = errno;
    if (fd >= 0) ::close(fd);
    if (!bound)
      throw Error(FLT_ERROR, "driver local: cannot bind " + address + " for node " + name + " (" +
                                 errno_text(bind_errno) +
                                 "); this system does not route all of 127.0.0.0/8 to loopback, use the netns driver");

    const fs::path workdir = workdir_of(req);
    std::error_code ec;
    fs::create_directories(workdir, ec);
    if (ec) throw Error(FLT_ERROR, "driver local: cannot create " + workdir.string() + " for node " + name + ": " + ec.message());
    ctx.debug("node " + name + " is " + address + " in " + workdir.string());
    return json{{"address", address},
                {"runtime", "process"},
                {"runtime_config", json::object()},
                {"data", {{"cidr", cidr_text(req)}, {"workdir", workdir.string()}}}};
  }

  json inspect(Context&, const json& req) override {
    std::error_code ec;
    return json{{"state", fs::is_directory(workdir_of(req), ec) ? "running" : "missing"}};
  }

  json destroy(Context& ctx, const json& req) override {
    const fs::path workdir = workdir_of(req);
    // A guard against a bad record: never remove "/" or a top-level directory.
    if (std::distance(workdir.begin(), workdir.end()) < 3)
      throw Invalid("driver local: refusing to remove node workdir `" + workdir.string() + "`: it is too close to /");
    std::error_code ec;
    if (!fs::exists(workdir, ec)) return json::object();
    if (!stop_leftovers(ctx, workdir))
      throw Retryable("driver local: a workload under " + workdir.string() + " survived SIGKILL; try again");
    fs::remove_all(workdir, ec);
    if (ec) throw Error(FLT_ERROR, "driver local: cannot remove " + workdir.string() + ": " + ec.message());
    return json::object();
  }
};

}  // namespace

FLOTILLA_PLUGIN(LocalDriver, "local", "1.0.0",
                "Nodes are loopback addresses on this machine running native processes; needs no root",
                R"json({
  "schema": {
    "cidr": {"type": "string", "default": "127.77.0.0/24",
             "description": "Loopback network (inside 127.0.0.0/8, prefix /16 to /30) the nodes' addresses come from: node slot N gets network + N + 1"}
  },
  "provides": [],
  "requires": []
})json")
