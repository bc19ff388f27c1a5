// Addon prometheus-cadvisor: Prometheus on one node, an exporter on every chosen node
// (node_exporter on either runtime, cAdvisor in a container on Docker nodes, as option
// `exporter` says), and scrape targets that follow
// the cluster through file_sd files, so nodes and instances come and go without a reload.
#pragma once

#include <flotilla/plugin.hpp>

namespace flotilla::addons::prometheus {

/// The addon's operations (docs/sdk-reference.md, flotilla.addon/1); see
/// docs/addons/prometheus-cadvisor.md.
class PrometheusCadvisor final : public flotilla::sdk::Addon {
 public:
  sdk::json validate(sdk::Context& ctx, const sdk::json& request) override;
  sdk::json apply(sdk::Context& ctx, const sdk::json& request) override;
  sdk::json destroy(sdk::Context& ctx, const sdk::json& request) override;
};

}  // namespace flotilla::addons::prometheus
