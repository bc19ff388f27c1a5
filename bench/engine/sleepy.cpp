// The `sleepy` driver, for benchmarks only: a node is a loopback address, like the local
// driver's, but creating one takes `create_ms` milliseconds. It stands in for a driver whose
// machines take a while to boot, so that `up` shows how much of that wait parallelism hides.
// Destroying is instant. It sets no max_parallel: the engine's --parallelism is the only limit.
#include "flotilla/support/request.hpp"

#include <flotilla/plugin.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <thread>

namespace {

using flotilla::sdk::Context;
using flotilla::sdk::Invalid;
using flotilla::sdk::json;

constexpr const char* kDefaultCidr = "127.90.0.0/16";
constexpr std::int64_t kMaxCreateMs = 60'000;
// Sleeps in slices this long so that an interrupted `up` does not wait out a whole create.
constexpr auto kSlice = std::chrono::milliseconds(10);

struct Cidr {
  std::uint32_t network = 0;  // host byte order
  int prefix = 0;
  [[nodiscard]] std::uint64_t usable() const { return (std::uint64_t{1} << (32 - prefix)) - 2; }
};

std::string ipv4_text(std::uint32_t addr) {
  in_addr a{htonl(addr)};
  char buf[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

json config_of(const json& req) {
  const auto it = req.find("config");
  return it != req.end() && it->is_object() ? *it : json::object();
}

std::string cidr_text(const json& req) {
  const json cfg = config_of(req);
  const auto it = cfg.find("cidr");
  return it != cfg.end() && it->is_string() && !it->get<std::string>().empty() ? it->get<std::string>() : kDefaultCidr;
}

std::int64_t create_ms(const json& req) {
  const json cfg = config_of(req);
  const auto it = cfg.find("create_ms");
  return it != cfg.end() && it->is_number_integer() ? it->get<std::int64_t>() : 200;
}

/// Parses a loopback network; the error says what to write instead.
std::optional<Cidr> parse_cidr(const std::string& text, std::string& error) {
  const auto parsed = flotilla::support::parse_ipv4_cidr(text);
  if (!parsed || parsed->prefix < 8 || parsed->prefix > 30) {
    error = "cidr `" + text + "` is not an IPv4 network with a prefix from /8 to /30, such as " + kDefaultCidr;
    return std::nullopt;
  }
  const int prefix = parsed->prefix;
  const Cidr c{parsed->network, prefix};
  const std::uint32_t mask = ~std::uint32_t{0} << (32 - prefix);
  if ((c.network >> 24) != 127 || (c.network & ~mask) != 0) {
    error = "cidr `" + text + "` is not a network address inside 127.0.0.0/8; write one such as " + kDefaultCidr;
    return std::nullopt;
  }
  return c;
}

class SleepyDriver : public flotilla::sdk::Driver {
 public:
  json validate(Context&, const json& req) override {
    json errors = json::array();
    std::string error;
    const auto cidr = parse_cidr(cidr_text(req), error);
    if (!cidr) errors.push_back({{"message", error}, {"key", "cidr"}});
    const std::int64_t ms = create_ms(req);
    if (ms < 0 || ms > kMaxCreateMs)
      errors.push_back({{"message", "create_ms = " + std::to_string(ms) + " is out of range; use 0 to " + std::to_string(kMaxCreateMs)},
                        {"key", "create_ms"}});
    const json nodes = req.value("nodes", json::array());
    if (cidr && nodes.is_array() && nodes.size() > cidr->usable())
      errors.push_back({{"message", "cidr `" + cidr_text(req) + "` has room for " + std::to_string(cidr->usable()) +
                                        " nodes but the topology has " + std::to_string(nodes.size()) + "; use a larger network"},
                        {"key", "cidr"}});
    return json{{"errors", errors}};
  }

  json create(Context& ctx, const json& req) override {
    std::string error;
    const auto cidr = parse_cidr(cidr_text(req), error);
    if (!cidr) throw Invalid("driver sleepy: " + error);
    const json node = req.value("node", json::object());
    const std::string name = node.value("name", std::string());
    const json slot = node.value("slot", json());
    if (!slot.is_number_integer() || slot.get<std::int64_t>() < 0)
      throw Invalid("driver sleepy: node " + name + " has no slot; the engine assigns one before create");
    const auto index = slot.get<std::uint64_t>();
    if (index + 1 > cidr->usable())
      throw Invalid("driver sleepy: node " + name + " (slot " + std::to_string(index) + ") does not fit in cidr " + cidr_text(req));

    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(create_ms(req));
    for (auto now = std::chrono::steady_clock::now(); now < deadline; now = std::chrono::steady_clock::now()) {
      ctx.check_cancelled();
      std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(kSlice, deadline - now));
    }
    return json{{"address", ipv4_text(cidr->network + static_cast<std::uint32_t>(index) + 1)},
                {"runtime", "process"},
                {"runtime_config", json::object()},
                {"data", {{"cidr", cidr_text(req)}}}};
  }

  json inspect(Context&, const json&) override { return json{{"state", "running"}}; }

  json destroy(Context&, const json&) override { return json::object(); }
};

}  // namespace

FLOTILLA_PLUGIN(SleepyDriver, "sleepy", "1.0.0",
                "Benchmark driver: loopback nodes whose creation takes create_ms milliseconds",
                R"json({
  "schema": {
    "create_ms": {"type": "integer", "default": 200,
                  "description": "How long creating one node takes, in milliseconds (0 to 60000)"},
    "cidr": {"type": "string", "default": "127.90.0.0/16",
             "description": "Loopback network (inside 127.0.0.0/8) the nodes' addresses come from: node slot N gets network + N + 1"}
  },
  "provides": [],
  "requires": [],
  "max_parallel": 0
})json")
