// The cAdvisor containers of the prometheus-cadvisor addon, checked at their contract on real
// dockerds of the Docker lab. cAdvisor's image cannot be pulled here (no network), so each
// node's dockerd gets a stand-in tagged with the addon's default image reference: the lab's
// busybox with an entrypoint that serves a metrics page on 8080 and the upstream image's health
// check. What is checked is what Flotilla asks of the daemon, against what cAdvisor documents:
//
//   README.md of github.com/google/cadvisor, "Quick Start: Running cAdvisor in a Docker
//   Container" (v0.53.0, the reference the addon pins; PR #3740 moved it to ghcr.io):
//     docker run --volume=/:/rootfs:ro --volume=/var/run:/var/run:ro --volume=/sys:/sys:ro
//       --volume=/var/lib/docker/:/var/lib/docker:ro --volume=/dev/disk/:/dev/disk:ro
//       --publish=8080:8080 --detach=true --name=cadvisor --privileged --device=/dev/kmsg
//       ghcr.io/google/cadvisor:$VERSION
//   deploy/Dockerfile: ENTRYPOINT ["/usr/bin/cadvisor", "-logtostderr"], EXPOSE 8080 and
//     HEALTHCHECK wget --spider http://localhost:8080/healthz, so the container keeps 8080.
//
// The real part, where the machine lets a container run privileged: Prometheus (Debian's, a
// process at the lab bridge's address) scrapes the stand-ins through the ports Flotilla
// published, in a `cadvisor` job labelled with each node's name, while the process node keeps
// node_exporter; switching cAdvisor off removes the containers and the job. A machine that is
// itself a container without every capability (CI's) refuses privileged containers ("unable to
// apply caps"): there the addon's apply must fail with the daemon's reason, naming node and
// workload, and the contract is checked on the container created (not started) from the same
// spec: the addon's cadvisor_workload through the docker runtime's container_config.
#include "addon_prometheus_cadvisor/monitoring_model.hpp"
#include "flotilla/support/docker_client.hpp"
#include "runtime_docker/runtime.hpp"
#include "support/docker_addon_host.hpp"
#include "support/prometheus_fixture.hpp"
#include "support/skip.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <filesystem>

namespace {

namespace s = flotilla::support;
namespace fx = flotilla::test::prom;
using flotilla::test::DockerAddonHost;
using flotilla::test::call_ok;
using flotilla::test::DockerLab;
using nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* kRepo = "ghcr.io/google/cadvisor";
constexpr const char* kTag = "v0.53.0";
constexpr const char* kHealthcheck = "wget --quiet --tries=1 --spider http://localhost:8080/healthz || exit 1";

/// Tags a stand-in for cAdvisor's image as kRepo:kTag in `docker`'s store: the lab's busybox
/// serving /metrics and /healthz on 8080 (cAdvisor's arguments, if any, are ignored).
void tag_stand_in(s::DockerClient& docker) {
  const std::string name = "flotilla-cadvisor-stand-in";
  docker.remove_container(name);
  const std::string id = docker.create_container(name, {{"Image", DockerLab::kImage}, {"Cmd", {"/bin/sh"}}});
  const std::string serve =
      "mkdir -p /w && echo ok > /w/healthz && "
      "echo 'cadvisor_version_info{cadvisorVersion=\"stand-in\"} 1' > /w/metrics && exec httpd -f -p 8080 -h /w";
  const json config = {{"Entrypoint", {"/bin/sh", "-c", serve, "cadvisor"}},
                       {"Cmd", nullptr},
                       {"ExposedPorts", {{"8080/tcp", json::object()}}},
                       {"Healthcheck", {{"Test", {"CMD-SHELL", kHealthcheck}}, {"Interval", 30000000000LL}, {"Timeout", 3000000000LL}}}};
  const auto r = docker.call("POST", std::string("/commit?container=") + id + "&repo=" + kRepo + "&tag=" + kTag, config.dump(),
                             {"Content-Type: application/json"});
  docker.remove_container(id);
  INFO(r.body);
  REQUIRE(r.status == 201);
}

/// Host directories a bind mount with create_source makes when they are missing (this machine
/// has no /dev/disk and no /var/lib/docker); removed again if the test made them.
class CreatedDirs {
 public:
  explicit CreatedDirs(std::vector<std::string> paths) {
    for (auto& p : paths)
      if (!std::filesystem::exists(p)) missing_.push_back(std::move(p));
  }
  ~CreatedDirs() {
    std::error_code ec;
    for (const auto& p : missing_) std::filesystem::remove(p, ec);  // only if empty
  }
  CreatedDirs(const CreatedDirs&) = delete;
  CreatedDirs& operator=(const CreatedDirs&) = delete;

 private:
  std::vector<std::string> missing_;
};

/// The (node label -> health) of the targets of `job`.
std::map<std::string, std::string> job_nodes(const std::string& base_url, const std::string& job) {
  std::map<std::string, std::string> out;
  const fx::HttpReply r = fx::http(base_url + "/api/v1/targets?state=active");
  const json doc = json::parse(r.body, nullptr, false);
  if (r.status != 200 || !doc.is_object() || !doc.contains("data")) return out;
  for (const auto& t : doc["data"].value("activeTargets", json::array())) {
    const json labels = t.value("labels", json::object());
    if (labels.value("job", "") == job) out[labels.value("node", "")] = t.value("health", "");
  }
  return out;
}

/// "" when `docker` starts a privileged container, else the daemon's refusal.
std::string privileged_refused(s::DockerClient& docker) {
  const std::string name = "flotilla-privileged-probe";
  docker.remove_container(name);
  const std::string id = docker.create_container(
      name, {{"Image", DockerLab::kImage}, {"Cmd", {"/bin/sh", "-c", "exit 0"}}, {"HostConfig", {{"Privileged", true}}}});
  std::string refused;
  try {
    docker.start_container(id);
  } catch (const s::DockerError& e) {
    refused = e.what();
  }
  docker.remove_container(id);
  return refused;
}

/// Checks an inspected cAdvisor container (GET /containers/{id}/json) against cAdvisor's
/// documentation (the README and deploy/Dockerfile quoted at the top) and the project's labels.
void check_contract(json c, json image, const flotilla::test::LabNode& node, const std::string& node_name, const DockerAddonHost& host) {
  INFO(c.dump(2));
  // Image: the documented reference, with its own entrypoint and command (the README passes none).
  CHECK(c["Config"]["Image"] == std::string(kRepo) + ":" + kTag);
  CHECK(c["Config"]["Entrypoint"] == image["Config"]["Entrypoint"]);
  CHECK(c["Config"]["Cmd"] == image["Config"]["Cmd"]);
  // Env: nothing cAdvisor documents; only the runtime's own FLOTILLA_* variables are added.
  for (const auto& e : c["Config"]["Env"]) {
    const std::string var = e.get<std::string>();
    const json& env = image["Config"]["Env"];
    const bool from_image = env.is_array() && std::find(env.begin(), env.end(), e) != env.end();
    CHECK((from_image || var.starts_with("FLOTILLA_")));
  }
  // Ports: --publish=8080:8080, on the node's address at cadvisor_port (8081: HAProxy has 8080).
  CHECK(c["Config"]["ExposedPorts"].contains("8080/tcp"));
  json binding = json::object();
  binding["8080/tcp"] = json::array({json{{"HostIp", node.address}, {"HostPort", "8081"}}});
  CHECK(c["HostConfig"]["PortBindings"] == binding);
  // Mounts: each --volume of the README, read-only.
  const std::map<std::string, std::string> documented = {
      {"/rootfs", "/"}, {"/var/run", "/var/run"}, {"/sys", "/sys"}, {"/var/lib/docker", "/var/lib/docker"}, {"/dev/disk", "/dev/disk"}};
  std::map<std::string, std::string> mounted;
  for (const auto& m : c["Mounts"]) {
    const std::string target = m.value("Destination", "");
    if (!documented.contains(target)) continue;
    CHECK(m["Type"] == "bind");
    CHECK(m["RW"] == false);
    mounted[target] = m.value("Source", "");
  }
  CHECK(mounted.size() == documented.size());
  for (const auto& [target, source] : documented) {
    INFO(target);
    // /var/run is a link to /run on some hosts; the daemon may report the resolved path.
    CHECK((mounted[target] == source || (source == "/var/run" && mounted[target] == "/run")));
  }
  // --privileged and --device=/dev/kmsg.
  CHECK(c["HostConfig"]["Privileged"] == true);
  CHECK(c["HostConfig"]["Devices"] ==
        json::array({{{"PathOnHost", "/dev/kmsg"}, {"PathInContainer", "/dev/kmsg"}, {"CgroupPermissions", "rwm"}}}));
  // Health check: the image's own (it asks localhost:8080), not replaced.
  CHECK(c["Config"]["Healthcheck"] == image["Config"]["Healthcheck"]);
  // Restart policy as every addon container; the project's labels.
  CHECK(c["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped");
  json labels = c["Config"]["Labels"];
  CHECK(labels["io.flotilla.managed"] == "true");
  CHECK(labels["io.flotilla.cluster"] == "lab");
  CHECK(labels["io.flotilla.node"] == node_name);
  CHECK(labels["io.flotilla.workload"] == host.workload_name("cadvisor"));
  CHECK(labels["io.flotilla.component"] == "addon:prometheus-cadvisor");
  CHECK_FALSE(labels.value("io.flotilla.spec-hash", "").empty());
}

}  // namespace

TEST_CASE("prometheus-cadvisor cAdvisor container contract on a real dockerd (stand-in image), scraped by Prometheus with node labels",
          "[prometheus-cadvisor][docker][integration]") {
  FLOTILLA_LAB_OR_SKIP(lab);
  if (!s::find_executable("prometheus") || !s::find_executable("prometheus-node-exporter"))
    FLOTILLA_SKIP("prometheus or prometheus-node-exporter is not installed; scripts/install-deps.sh installs them");
  const CreatedDirs created({"/dev/disk", "/var/lib/docker"});

  // infra: a process node at the bridge's address (Prometheus and node_exporter as processes);
  // two Docker nodes, each with the stand-in in its dockerd.
  fx::TempDir dir("flotilla-cadvisor-contract");
  json nodes = json::array({{{"name", "infra"}, {"address", lab->gateway()}, {"roles", {"infra"}}, {"runtime", "process"},
                             {"workdir", (dir.path() / "nodes" / "infra").string()}, {"state", "running"}}});
  for (auto& n : DockerAddonHost::lab_nodes(*lab, {"swarm", "swarm"}, "lab")) {
    n["runtime_config"]["files_image"] = DockerLab::kImage;
    nodes.push_back(n);
  }
  for (size_t i = 0; i < 2; ++i) {
    s::DockerClient d({.node = lab->nodes()[i].name, .host = lab->nodes()[i].host});
    tag_stand_in(d);
  }
  const auto& node = lab->nodes()[0];
  s::DockerClient docker({.node = node.name, .host = node.host});
  const json image = json::parse(docker.call("GET", std::string("/images/") + kRepo + ":" + kTag + "/json").body);
  const std::string refused = privileged_refused(docker);

  DockerAddonHost host("addon_prometheus_cadvisor", "prometheus-cadvisor", nodes);
  const json config = {{"exporter", "cadvisor"}, {"scrape_interval", "1s"}, {"scrape_services", false}};
  const json req = host.request(config, {"infra"}, (dir.path() / "addon").string());
  auto [st, out] = host.call("apply", req);
  INFO(out);

  if (!refused.empty()) {
    WARN("this machine refuses privileged containers (" + refused +
         "); the contract is checked on the container created from the addon's spec, without starting it, and nothing is scraped");
    CHECK(st != FLT_OK);
    CHECK_THAT(out, Catch::Contains(host.workload_name("cadvisor")) && Catch::Contains("swarm-0") && Catch::Contains("caps"));
    json w = flotilla::addons::prometheus::cadvisor_workload(nodes[1], flotilla::addons::prometheus::Options{});
    w["name"] = host.workload_name("cadvisor");
    w["owner"] = "addon:prometheus-cadvisor";
    json spec = flotilla::docker_runtime::container_config(nodes[1], w, "lab");
    spec["Labels"][flotilla::docker_runtime::kSpecHashLabel] = flotilla::docker_runtime::config_hash(spec);
    docker.remove_container(w["name"].get<std::string>());
    const std::string id = docker.create_container(w["name"].get<std::string>(), spec);
    const auto inspected = docker.inspect_container(id);
    docker.remove_container(id);
    REQUIRE(inspected.has_value());
    check_contract(*inspected, image, node, "swarm-0", host);
    auto [st3, out3] = host.call("destroy", req);
    CHECK(st3 == FLT_OK);
    return;
  }

  REQUIRE(st == FLT_OK);
  // The process node keeps node_exporter, and the log says so.
  bool warned = false;
  for (const auto& line : host.logs()) warned = warned || (line.find("infra") != std::string::npos && line.find("keep node_exporter") != std::string::npos);
  CHECK(warned);

  const auto inspected = docker.inspect_container(host.workload_name("cadvisor"));
  REQUIRE(inspected.has_value());
  check_contract(*inspected, image, node, "swarm-0", host);
  CHECK((*inspected)["State"]["Running"] == true);
  CHECK((*inspected)["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"] == "8081");
  CHECK_FALSE(docker.inspect_container(host.workload_name("node-exporter")).has_value());

  // Prometheus scrapes each stand-in through the published port, labelled with the node's name;
  // infra's node_exporter stays in the node job.
  const std::string base_url = "http://" + lab->gateway() + ":9090";
  const std::map<std::string, std::string> all_up = {{"swarm-0", "up"}, {"swarm-1", "up"}};
  const std::map<std::string, std::string> infra_up = {{"infra", "up"}};
  const bool scraped =
      fx::wait_until([&] { return job_nodes(base_url, "cadvisor") == all_up && job_nodes(base_url, "node") == infra_up; }, 30s).count() >= 0;
  INFO(fx::http(base_url + "/api/v1/targets").body);
  CHECK(scraped);
  const std::string page = fx::http(base_url + "/api/v1/query?query=cadvisor_version_info").body;
  CHECK(page.find("\"node\":\"swarm-1\"") != std::string::npos);

  // cAdvisor switched off (exporter back to node-exporter, exporters on infra only): its
  // containers go, and so does the job, by a reload of the same Prometheus.
  json off = req;
  off["addon"]["config"]["exporter"] = "node-exporter";
  off["addon"]["config"]["exporter_roles"] = {"infra"};
  call_ok(host, "apply", off);
  for (size_t i = 0; i < 2; ++i) {
    s::DockerClient d({.node = lab->nodes()[i].name, .host = lab->nodes()[i].host});
    CHECK_FALSE(d.inspect_container(host.workload_name("cadvisor")).has_value());
  }
  CHECK(fx::wait_until([&] { return job_nodes(base_url, "cadvisor").empty() && !job_nodes(base_url, "node").empty(); }, 15s).count() >= 0);

  auto [st3, out3] = host.call("destroy", off);
  INFO(out3);
  CHECK(st3 == FLT_OK);
}
