// One node's dockerd as the swarm addon drives it, and what an apply reports: shared by the
// membership part (swarm_addon.cpp: init, join, roles, leave) and the mode = "swarm" services
// part (swarm_services.cpp). Internal to addon_swarm_lib.
#pragma once

#include <flotilla/plugin.hpp>

#include "flotilla/support/docker_client.hpp"
#include "flotilla/support/http.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace flotilla::swarm_addon {

/// A placed node and the role it should have.
struct Member {
  std::string node;
  std::string address;
  bool manager = false;
  sdk::json view;
};

/// One node's dockerd and its swarm membership as GET /info last reported it.
class Daemon {
 public:
  Daemon(Member member, const sdk::Context& ctx) : member_(std::move(member)), docker_(endpoint(member_, ctx)) {}

  [[nodiscard]] const Member& member() const { return member_; }
  [[nodiscard]] const std::string& node() const { return member_.node; }
  [[nodiscard]] support::DockerClient& docker() { return docker_; }

  /// Asks GET /info again; returns its `Swarm`.
  const sdk::json& refresh() {
    const sdk::json info = call("GET", "/info", "GET /info");
    swarm_ = info.is_object() ? info.value("Swarm", sdk::json::object()) : sdk::json::object();
    return swarm_;
  }
  /// "inactive", "pending", "active", "error" or "locked" ("" reads as inactive).
  [[nodiscard]] std::string state() const {
    const std::string st = swarm_.value("LocalNodeState", "");
    return st.empty() ? "inactive" : st;
  }
  [[nodiscard]] std::string node_id() const { return swarm_.value("NodeID", ""); }
  [[nodiscard]] bool controls() const { return state() == "active" && swarm_.value("ControlAvailable", false); }
  /// The swarm's ID; only a manager knows it.
  [[nodiscard]] std::string cluster_id() const {
    const auto c = swarm_.find("Cluster");
    return c != swarm_.end() && c->is_object() ? c->value("ID", "") : "";
  }
  [[nodiscard]] std::string error() const { return swarm_.value("Error", ""); }
  [[nodiscard]] std::string swarm_addr(int port) const { return member_.address + ":" + std::to_string(port); }

  /// One Engine API call; a non-2xx answer is a DockerError naming `what`. Returns the body as
  /// JSON (null when empty).
  sdk::json call(const std::string& method, const std::string& path, const std::string& what, const std::string& body = {},
                 std::chrono::seconds timeout = std::chrono::seconds(30)) {
    const auto r = docker_.call(method, path, body, {}, support::HttpTimeouts{std::chrono::milliseconds(3000), timeout});
    if (r.status < 200 || r.status >= 300) docker_.fail(what, r);
    return r.body.empty() ? sdk::json() : sdk::json::parse(r.body, nullptr, false);
  }

 private:
  static support::DockerEndpoint endpoint(const Member& m, const sdk::Context& ctx) {
    support::DockerEndpoint e = support::docker_endpoint_of(m.view);
    e.cancelled = [&ctx] { return ctx.cancelled(); };
    return e;
  }

  Member member_;
  support::DockerClient docker_;
  sdk::json swarm_ = sdk::json::object();
};

using Daemons = std::vector<std::unique_ptr<Daemon>>;

/// What an apply did: `changed` when it touched the swarm, and the messages for the user.
struct Report {
  bool changed = false;
  std::vector<std::string> messages;

  /// Records a change and the message that tells of it.
  void note_change(std::string message) {
    changed = true;
    messages.push_back(std::move(message));
  }
};

/// The manager that speaks for the swarm: the first placed manager that controls one, else any
/// placed node that does (the managers option may have changed). Null when none does.
inline Daemon* lead_of(Daemons& ds) {
  for (auto& d : ds)
    if (d->member().manager && d->controls()) return d.get();
  for (auto& d : ds)
    if (d->controls()) return d.get();
  return nullptr;
}

}  // namespace flotilla::swarm_addon
