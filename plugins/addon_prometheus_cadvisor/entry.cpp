// The loadable prometheus-cadvisor plugin: its entry symbol over addon_prometheus_cadvisor_lib.
#include "flotilla/prometheus/addon.hpp"
#include "flotilla/prometheus/monitoring_model.hpp"

FLOTILLA_PLUGIN(flotilla::addons::prometheus::PrometheusCadvisor, "prometheus-cadvisor", "0.1.0",
                "Prometheus on infra plus node_exporter or cAdvisor on every node; targets follow the cluster without restarts",
                flotilla::addons::prometheus::manifest())
