// The swarm addon's mode = "swarm" services: each a replicated Swarm service, created, updated
// and removed through a manager's Engine API, its running tasks reported as the service's
// instances. Internal to addon_swarm_lib; swarm_addon.cpp's apply and destroy call it.
#pragma once

#include "addon_swarm/swarm_daemon.hpp"

#include <chrono>
#include <string>
#include <vector>

namespace flotilla::swarm_addon {

/// A `mode = "swarm"` service of the request, as the engine shapes it.
struct WantedService {
  std::string name;  // "hello/v1"
  std::string dns;   // "hello-v1"
  sdk::json spec;    // image, env, port, health, replicas
  [[nodiscard]] int replicas() const { return spec.value("replicas", 1); }
  [[nodiscard]] int port() const { return spec.value("port", 0); }
};

/// The request's `mode = "swarm"` services, in request order.
std::vector<WantedService> wanted_services(const sdk::json& req);

/// The cluster's name, as the request gives it.
std::string cluster_of(const sdk::json& req);

/// Creates the missing services, updates the changed ones and removes the ones no longer asked
/// for.
void converge_services(sdk::Context& ctx, Daemon& lead, const std::string& cluster, const std::vector<WantedService>& wanted,
                       Report& report);

/// Waits until every wanted service runs its replicas, each with its port published; returns
/// the addon's `services` output (per service: its spec as the engine gave it, and its tasks as
/// instances).
sdk::json await_services(sdk::Context& ctx, Daemon& lead, const Daemons& ds, const std::string& cluster,
                         const std::vector<WantedService>& wanted, std::chrono::seconds service_timeout);

/// Removes this cluster's Swarm services and waits (bounded) for their containers to go.
void remove_services(sdk::Context& ctx, Daemons& ds, const std::string& cluster, std::chrono::seconds service_timeout);

}  // namespace flotilla::swarm_addon
