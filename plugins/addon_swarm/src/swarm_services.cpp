// The swarm addon's `mode = "swarm"` services.
//
// Each is a replicated Swarm service. Its port is published in mode host, on a port each task's
// node picks: the routing mesh needs the dockerd's own iptables rules and the kernel's IPVS, which
// a node may not have, and the cluster's ingress (HAProxy) reaches the tasks on their nodes
// anyway. The tasks are reported as the service's instances.

#include "addon_swarm/swarm_services.hpp"

#include "flotilla/support/encoding.hpp"
#include "flotilla/support/http.hpp"
#include "flotilla/support/wait.hpp"

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace flotilla::swarm_addon {

namespace {

using sdk::Context;
using sdk::json;
namespace s = flotilla::support;
using namespace std::chrono_literals;

constexpr const char* kClusterLabel = "io.flotilla.cluster";
constexpr const char* kServiceLabel = "io.flotilla.service";
constexpr const char* kSpecLabel = "io.flotilla.spec";
constexpr std::chrono::seconds kRejectionGrace{15};
// Between two rejected tries Swarm shows a task that has not failed yet (the next try, pending)
// for a few seconds; only a longer spell without a rejection means the tries may now succeed.
constexpr std::chrono::seconds kRejectionGap{10};

}  // namespace

std::vector<WantedService> wanted_services(const json& req) {
  std::vector<WantedService> out;
  const auto svcs = req.find("services");
  if (svcs == req.end() || !svcs->is_array()) return out;
  for (const auto& svc : *svcs)
    if (svc.is_object() && svc.value("mode", "") == "swarm")
      out.push_back({svc.value("name", ""), svc.value("dns", ""), svc.value("spec", json::object())});
  return out;
}

std::string cluster_of(const json& req) { return req.value("cluster", json::object()).value("name", ""); }

namespace {

std::string swarm_name(const std::string& cluster, const WantedService& w) { return cluster + "-" + w.dns; }

/// The body of POST /services/create (and of an update) for `w`.
json service_spec(const WantedService& w, const std::string& cluster) {
  json env = json::array();
  const json given = w.spec.value("env", json::object());
  for (const auto& [k, v] : given.items()) env.push_back(k + "=" + (v.is_string() ? v.get<std::string>() : v.dump()));
  env.push_back("FLOTILLA_SERVICE=" + w.name);
  env.push_back("FLOTILLA_INSTANCE=" + w.name + "#{{.Task.Slot}}");  // a template Swarm fills in per task
  if (w.port() > 0) env.push_back("PORT=" + std::to_string(w.port()));
  const json labels = {{kClusterLabel, cluster}, {kServiceLabel, w.name}};  // the tasks' containers carry these
  json service_labels = labels;
  service_labels[kSpecLabel] = s::stable_hash(w.spec.dump());
  json spec = {{"Name", swarm_name(cluster, w)},
               {"Labels", service_labels},
               {"TaskTemplate",
                {{"ContainerSpec", {{"Image", w.spec.value("image", "")}, {"Env", env}, {"Labels", labels}}},
                 {"RestartPolicy", {{"Condition", "any"}, {"Delay", 1'000'000'000}}}}},
               {"Mode", {{"Replicated", {{"Replicas", w.replicas()}}}}}};
  if (w.port() > 0)
    spec["EndpointSpec"] = {{"Ports", json::array({{{"Protocol", "tcp"}, {"TargetPort", w.port()}, {"PublishMode", "host"}}})}};
  return spec;
}

/// The Swarm services of this cluster (GET /services by label).
json cluster_services(Daemon& lead, const std::string& cluster) {
  const json filters = {{"label", {std::string(kClusterLabel) + "=" + cluster}}};
  json list = lead.call("GET", "/services?filters=" + s::url_encode(filters.dump()), "list the swarm's services (GET /services)");
  return list.is_array() ? list : json::array();
}

std::string label_of(const json& svc, const char* key) {
  return svc.value("Spec", json::object()).value("Labels", json::object()).value(key, "");
}

}  // namespace

void converge_services(Context& ctx, Daemon& lead, const std::string& cluster, const std::vector<WantedService>& wanted, Report& report) {
  const json existing = cluster_services(lead, cluster);
  for (const auto& w : wanted) {
    const json body = service_spec(w, cluster);
    const auto cur = std::find_if(existing.begin(), existing.end(), [&](const json& e) { return label_of(e, kServiceLabel) == w.name; });
    const std::string what = "service " + w.name + " (Swarm service " + swarm_name(cluster, w) + ", " + std::to_string(w.replicas()) + " replica(s))";
    if (cur == existing.end()) {
      ctx.progress("creating " + what);
      (void)lead.call("POST", "/services/create", "create the Swarm service " + swarm_name(cluster, w), body.dump());
      report.note_change("swarm: created " + what);
    } else if (label_of(*cur, kSpecLabel) != body["Labels"][kSpecLabel]) {
      ctx.progress("updating " + what);
      const auto version = cur->value("Version", json::object()).value("Index", 0LL);
      (void)lead.call("POST", "/services/" + cur->value("ID", "") + "/update?version=" + std::to_string(version),
                      "update the Swarm service " + swarm_name(cluster, w), body.dump());
      report.note_change("swarm: updated " + what);
    }
  }
  for (const auto& e : existing) {
    const std::string name = label_of(e, kServiceLabel);
    if (std::any_of(wanted.begin(), wanted.end(), [&](const WantedService& w) { return w.name == name; })) continue;
    ctx.progress("removing the Swarm service of " + name + " (no longer in the topology)");
    (void)lead.call("DELETE", "/services/" + e.value("ID", ""), "remove the Swarm service " + e.value("Spec", json::object()).value("Name", ""));
    report.note_change("swarm: removed the Swarm service of " + name);
  }
}

namespace {

/// The host port on which a task publishes `target`, from the task's PortStatus.
int published_port(const json& task, int target) {
  const json ports = task.value("Status", json::object()).value("PortStatus", json::object()).value("Ports", json::array());
  for (const auto& p : ports)
    if (p.value("TargetPort", 0) == target) return p.value("PublishedPort", 0);
  return 0;
}

/// The running tasks of `w` as instances; `pending` gets what keeps the others from counting,
/// `rejected` the error of a task Swarm rejected or that failed (an image no node can pull).
json task_instances(Daemon& lead, const Daemons& ds, const std::string& cluster, const WantedService& w, std::string& pending,
                    std::string& rejected) {
  // While Swarm rolls an update, old tasks still run: they are not what the service will be.
  const json svc = lead.call("GET", "/services/" + swarm_name(cluster, w), "inspect the Swarm service " + swarm_name(cluster, w));
  if (const std::string st = svc.is_object() ? svc.value("UpdateStatus", json::object()).value("State", "") : "";
      st == "updating" || st == "rollback_started" || st == "paused" || st == "rollback_paused") {
    pending = "its update is " + st;
    return json::array();
  }
  // Every task of the service: a task Swarm rejected is kept with desired state "ready" while it
  // tries again, so the API's desired-state filter ("running") would hide why nothing runs.
  const json filters = {{"service", {swarm_name(cluster, w)}}};
  const json tasks = lead.call("GET", "/tasks?filters=" + s::url_encode(filters.dump()), "list the tasks of " + swarm_name(cluster, w));
  json out = json::array();
  int other = 0;
  for (const auto& t : tasks.is_array() ? tasks : json::array()) {
    if (const std::string desired = t.value("DesiredState", ""); desired != "running" && desired != "ready") continue;  // history
    const json status = t.value("Status", json::object());
    const std::string node_id = t.value("NodeID", "");
    const auto d = std::find_if(ds.begin(), ds.end(), [&](const auto& x) { return x->node_id() == node_id; });
    const int port = w.port() > 0 ? published_port(t, w.port()) : 0;
    if (status.value("State", "") != "running" || d == ds.end() || (w.port() > 0 && port == 0)) {
      ++other;
      const std::string err = status.value("Err", "");
      if (pending.empty() && !err.empty()) pending = err;
      if (const std::string st = status.value("State", ""); rejected.empty() && (st == "rejected" || st == "failed"))
        rejected = err.empty() ? "a task " + st : err;
      continue;
    }
    const int slot = t.value("Slot", 0);
    out.push_back({{"id", w.name + "#" + std::to_string(slot)}, {"instance", slot}, {"node", (*d)->node()},
                   {"address", (*d)->member().address}, {"port", port}, {"state", "running"},
                   {"workload", "task " + t.value("ID", "")}});
  }
  if (other > 0 && pending.empty()) pending = std::to_string(other) + " task(s) not running yet";
  std::sort(out.begin(), out.end(), [](const json& a, const json& b) { return a["instance"] < b["instance"]; });
  return out;
}

}  // namespace

json await_services(Context& ctx, Daemon& lead, const Daemons& ds, const std::string& cluster, const std::vector<WantedService>& wanted,
                    std::chrono::seconds service_timeout) {
  json out = json::object();
  for (const auto& w : wanted) {
    ctx.progress("waiting for the " + std::to_string(w.replicas()) + " replica(s) of " + w.name + " to run");
    json instances;
    std::string pending, rejected, last_rejected;
    // Swarm retries a rejected task forever; when no task runs and the tries keep being
    // rejected for this long, the cause (an image that cannot be pulled) will not go away by
    // waiting. A poll may fall between two tries and see none rejected; that alone does not
    // start the count again (a slow poll, on a loaded machine, would never reach the end).
    std::optional<std::chrono::steady_clock::time_point> rejecting_since, last_rejection;
    bool given_up = false;
    const bool ok = s::wait_until(
        service_timeout, 500ms,
        [&] {
          pending.clear();
          rejected.clear();
          instances = task_instances(lead, ds, cluster, w, pending, rejected);
          if (static_cast<int>(instances.size()) == w.replicas() && pending.empty()) return true;
          if (!instances.empty()) {  // tasks run: the others may yet
            rejecting_since.reset();
            last_rejection.reset();
            return false;
          }
          const auto now = std::chrono::steady_clock::now();
          if (!rejected.empty()) {
            if (!rejecting_since) rejecting_since = now;
            last_rejection = now;
            last_rejected = rejected;
          } else if (last_rejection && now - *last_rejection > kRejectionGap) {
            rejecting_since.reset();
            last_rejection.reset();
          }
          given_up = rejecting_since && now - *rejecting_since > kRejectionGrace;
          return given_up;
        },
        [&ctx] { return ctx.cancelled(); });
    ctx.check_cancelled();
    if (given_up)
      throw sdk::Error(FLT_ERROR, "swarm: service " + w.name + ": Swarm rejects every task (" + last_rejected + ") for " +
                                      std::to_string(kRejectionGrace.count()) + " s; check that every swarm node can pull " +
                                      w.spec.value("image", "") + " (`docker service ps " + swarm_name(cluster, w) +
                                      "` on a manager) and run up again");
    if (!ok)
      throw sdk::Retryable("swarm: service " + w.name + " runs " + std::to_string(instances.size()) + " of " + std::to_string(w.replicas()) +
                           " replica(s) after " + std::to_string(service_timeout.count()) + " s" + (pending.empty() ? "" : " (" + pending + ")") +
                           "; check that every swarm node can pull " + w.spec.value("image", "") + " (`docker service ps " +
                           swarm_name(cluster, w) + "` on a manager)");
    out[w.name] = {{"spec", w.spec}, {"swarm_service", swarm_name(cluster, w)}, {"instances", instances}};
  }
  return out;
}

void remove_services(Context& ctx, Daemons& ds, const std::string& cluster, std::chrono::seconds service_timeout) {
  Daemon* lead = lead_of(ds);
  if (lead == nullptr) return;
  const json existing = cluster_services(*lead, cluster);
  for (const auto& e : existing) {
    ctx.progress("removing the Swarm service " + e.value("Spec", json::object()).value("Name", ""));
    (void)lead->call("DELETE", "/services/" + e.value("ID", ""), "remove the Swarm service " + e.value("Spec", json::object()).value("Name", ""));
  }
  if (existing.empty()) return;
  (void)s::wait_until(
      service_timeout, 500ms,
      [&] {
        return std::all_of(ds.begin(), ds.end(), [&](const auto& d) {
          return d->docker().list_containers({std::string(kClusterLabel) + "=" + cluster, kServiceLabel}).empty();
        });
      },
      [&ctx] { return ctx.cancelled(); });
}

}  // namespace flotilla::swarm_addon
