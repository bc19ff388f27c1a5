// Addon `etcd`: the discovery backend from Debian's etcd 3.4 (/usr/bin/etcd), one member on
// the infra node or a cluster of 3 or 5 members, run on the process runtime. The registrator
// writes the catalog into it through the v3 JSON gateway.
#pragma once

#include <flotilla/plugin.hpp>

namespace flotilla::etcd_addon {

/// The addon's manifest: option schema, capabilities and placement.
const char* manifest();

/// The addon's operations, as the plugin entry exports them.
class Etcd final : public flotilla::sdk::Addon {
 public:
  sdk::json validate(sdk::Context& ctx, const sdk::json& req) override;
  sdk::json apply(sdk::Context& ctx, const sdk::json& req) override;
  sdk::json destroy(sdk::Context& ctx, const sdk::json& req) override;
};

}  // namespace flotilla::etcd_addon
