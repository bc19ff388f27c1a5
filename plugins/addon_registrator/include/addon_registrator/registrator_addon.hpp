// Addon `registrator`: keeps the discovery backend's catalog equal to the engine's record of
// service instances and of other addons' components, on every apply (level-triggered: it
// adds, updates and removes, including entries nobody asked for).
//
// etcd backend: entries are keys under one lease per node, kept alive by `etcdctl lease
// keep-alive` running ON that node, so a node that dies takes its entries with it within the
// TTL. DNS names come from a dnsmasq the registrator runs on its own node.
// Consul backend: entries are agent services with HTTP checks, registered on the agent of
// the instance's node; Consul answers DNS itself.
#pragma once

#include <flotilla/plugin.hpp>

namespace flotilla::registrator_addon {

/// The addon's manifest: option schema, capabilities and placement.
const char* manifest();

/// The addon's operations, as the plugin entry exports them.
class Registrator final : public flotilla::sdk::Addon, public flotilla::sdk::Answers {
 public:
  sdk::json validate(sdk::Context& ctx, const sdk::json& req) override;
  sdk::json apply(sdk::Context& ctx, const sdk::json& req) override;
  sdk::json destroy(sdk::Context& ctx, const sdk::json& req) override;
  /// `flotilla ip` asks here (question `ip`, args {"name": DNS name}): {"addresses": [...]},
  /// sorted, from the live catalog. NotFound while no discovery backend has been applied.
  sdk::json answer(sdk::Context& ctx, const sdk::json& req) override;
};

}  // namespace flotilla::registrator_addon
