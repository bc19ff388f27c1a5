// The loadable prometheus-cadvisor plugin: its entry symbol over addon_prometheus_cadvisor_lib.
#include "addon_prometheus_cadvisor/addon.hpp"
#include "addon_prometheus_cadvisor/monitoring_model.hpp"

FLOTILLA_PLUGIN(flotilla::addons::prometheus::PrometheusCadvisor, "prometheus-cadvisor", "0.1.0",
                "Prometheus on infra plus node_exporter or cAdvisor on every node; targets follow the cluster without restarts",
                flotilla::addons::prometheus::manifest())
