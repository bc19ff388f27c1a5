// Addon `consul`: a Consul server on infra (or 3 servers) and a client agent on every other
// placed node, each with HTTP on 8500 and DNS on 8600 of its node's address, joined with
// -retry-join. Process runtime: the `consul` binary on PATH (not packaged in Debian);
// Docker runtimes: the hashicorp/consul image.
#pragma once

#include <flotilla/plugin.hpp>

namespace flotilla::consul_addon {

/// The addon's manifest: option schema, capabilities and placement.
const char* manifest();

/// The addon's operations, as the plugin entry exports them.
class Consul final : public flotilla::sdk::Addon {
 public:
  sdk::json validate(sdk::Context& ctx, const sdk::json& req) override;
  sdk::json apply(sdk::Context& ctx, const sdk::json& req) override;
  sdk::json destroy(sdk::Context& ctx, const sdk::json& req) override;
};

}  // namespace flotilla::consul_addon
