// A fake, on purpose and only in this: the engine's real addon host (engine_addon_host.hpp)
// that drops `--web.enable-lifecycle` from every workload before it starts, so the Prometheus
// the addon runs answers 403 to POST /-/reload and can only be reloaded by SIGHUP. No real
// host does this; it is the one way to reach the addon's SIGHUP fallback here, since the
// addon always asks for the lifecycle API. Everything else is the real engine and runtime.
#pragma once

#include "support/engine_addon_host.hpp"

namespace flotilla::test {

class SighupOnlyHost final : public EngineAddonHost {
 public:
  using EngineAddonHost::EngineAddonHost;

 protected:
  void before_start(nlohmann::json& workload) override {
    if (!workload.contains("command")) return;
    nlohmann::json kept = nlohmann::json::array();
    for (const auto& a : workload["command"])
      if (a != "--web.enable-lifecycle") kept.push_back(a);
    workload["command"] = kept;
  }
};

}  // namespace flotilla::test
