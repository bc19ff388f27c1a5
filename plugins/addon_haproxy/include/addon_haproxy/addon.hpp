// The `haproxy` addon: one HAProxy per placed node routes every service by path prefix
// ("/hello/v1" -> the healthy instances of hello/v1). Instance changes go through the runtime
// API (no reload, no failed request); only route or listener changes reload the master-worker
// process, and the config file always holds what runs, since runtime changes die on reload.
#pragma once

#include <flotilla/plugin.hpp>

namespace flotilla::haproxy {

/// The addon's operations (docs/sdk-reference.md, flotilla.addon/1); see docs/addons/haproxy.md.
class HaproxyAddon final : public flotilla::sdk::Addon {
 public:
  sdk::json validate(sdk::Context& ctx, const sdk::json& request) override;
  sdk::json apply(sdk::Context& ctx, const sdk::json& request) override;
  sdk::json destroy(sdk::Context& ctx, const sdk::json& request) override;
};

/// The manifest (JSON text, with the schema of the addon's options); lives as long as the process.
[[nodiscard]] const char* manifest();

}  // namespace flotilla::haproxy
