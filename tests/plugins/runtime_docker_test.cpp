// The docker runtime: the container config it derives from a workload, and (as root, on the
// shared Docker lab) containers started, kept, replaced, inspected, signalled and stopped
// through its C ABI, with everything not labelled as Flotilla's left alone.
#include "runtime_docker/runtime.hpp"
#include "runtime_docker/files.hpp"

#include "flotilla/support/docker_client.hpp"
#include "flotilla/support/http.hpp"
#include "flotilla/support/wait.hpp"
#include "support/docker_lab.hpp"
#include "support/plugin_harness.hpp"

#include <catch2/catch.hpp>

namespace {

namespace s = flotilla::support;
namespace rt = flotilla::docker_runtime;
using flotilla::test::DockerLab;
using flotilla::test::PluginHarness;
using nlohmann::json;
using namespace std::chrono_literals;

json lab_node(const flotilla::test::LabNode& n) {
  return {{"name", n.name}, {"address", n.address}, {"runtime", "docker"}, {"runtime_config", {{"host", n.host}, {"cluster", "rt-test"}}}};
}

json web_workload(const std::string& name, int port, const std::string& greeting) {
  return {{"name", name},
          {"owner", "service:hello/v1"},
          {"image", DockerLab::kImage},
          {"cmd", {"/bin/sh", "-c", "mkdir -p /w && echo \"$GREETING\" > /w/index.html && exec httpd -f -p " + std::to_string(port) + " -h /w"}},
          {"env", {{"GREETING", greeting}}},
          {"ports", {port}}};
}

}  // namespace

TEST_CASE("docker runtime: a workload becomes a container config with ports on the node's address and ownership labels",
          "[plugins][docker-runtime]") {
  const json node = {{"name", "swarm-1"}, {"address", "10.214.0.3"}, {"runtime_config", {{"host", "unix:///x.sock"}}}};
  json w = web_workload("service-hello-v1-1", 8001, "hi");
  w["resources"] = {{"memory_mb", 64}, {"cpus", 0.5}};
  w["mounts"] = {{{"source", "/srv/data"}, {"target", "/data"}, {"read_only", true}}};
  const json c = rt::container_config(node, w, "lab");
  CHECK(c["HostConfig"]["PortBindings"]["8001/tcp"][0]["HostIp"] == "10.214.0.3");
  CHECK(c["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped");
  CHECK(c["HostConfig"]["Memory"] == 64 * 1024 * 1024);
  CHECK(c["HostConfig"]["NanoCpus"] == 500000000);
  CHECK(c["HostConfig"]["Mounts"][0]["Type"] == "bind");
  CHECK(c["Labels"][rt::kClusterLabel] == "lab");
  CHECK(c["Labels"][rt::kComponentLabel] == "service:hello/v1");
  CHECK(std::find(c["Env"].begin(), c["Env"].end(), "GREETING=hi") != c["Env"].end());
  CHECK(rt::config_hash(c) == rt::config_hash(rt::container_config(node, w, "lab")));
  w["env"]["GREETING"] = "hello";
  CHECK(rt::config_hash(c) != rt::config_hash(rt::container_config(node, w, "lab")));

  const auto errors = rt::workload_errors({{"name", "bad/name"}, {"command", {"/bin/x"}}});
  REQUIRE(errors.size() == 2);
  CHECK_THAT(errors[1], Catch::Contains("no image"));
  CHECK_THROWS_WITH(rt::endpoint_of({{"name", "n1"}}), Catch::Contains("node n1") && Catch::Contains("runtime_config.host"));
}

TEST_CASE("docker runtime on real dockerd: start, no-op restart, replace on change, recreate after removal, signal, stop",
          "[plugins][docker-runtime][docker][integration]") {
  auto* lab = DockerLab::get();
  if (!lab) {
    WARN(DockerLab::unavailable_reason());
    return;
  }
  PluginHarness plugin("runtime_docker");
  const auto& n = lab->nodes()[2];
  const json node = lab_node(n);
  s::DockerClient docker({.node = n.name, .host = n.host});
  for (const char* c : {"rt-web-1", "rt-foreign"}) docker.remove_container(c);
  s::HttpClient http;
  const auto page = [&] {
    std::string body;
    (void)s::wait_until(5s, 50ms, [&] {
      try {
        body = http.get("http://" + n.address + ":18090/index.html").body;
        return true;
      } catch (const s::HttpError&) {
        return false;
      }
    });
    return body;
  };

  auto first = plugin.call("start", {{"node", node}, {"workload", web_workload("rt-web-1", 18090, "one")}});
  INFO(first.describe());
  REQUIRE(first.ok());
  CHECK(first.result["changed"] == true);
  CHECK(page() == "one\n");
  const std::string id = first.result["record"]["id"];

  const auto same = plugin.call("start", {{"node", node}, {"workload", web_workload("rt-web-1", 18090, "one")}});
  REQUIRE(same.ok());
  CHECK(same.result["changed"] == false);
  CHECK(same.result["record"]["id"] == id);

  const auto changed = plugin.call("start", {{"node", node}, {"workload", web_workload("rt-web-1", 18090, "two")}});
  REQUIRE(changed.ok());
  CHECK(changed.result["changed"] == true);
  CHECK(changed.result["record"]["id"] != id);
  CHECK_FALSE(docker.inspect_container(id));
  CHECK(page() == "two\n");
  const json record = changed.result["record"];

  auto inspected = plugin.call("inspect", {{"node", node}, {"record", record}});
  REQUIRE(inspected.ok());
  CHECK(inspected.result["state"] == "running");

  // Removed by hand: inspect says so (after the listing's short cache), start makes it again.
  docker.remove_container("rt-web-1");
  CHECK(s::wait_until(3s, 100ms, [&] { return plugin.call("inspect", {{"node", node}, {"record", record}}).result["state"] == "missing"; }));
  const auto again = plugin.call("start", {{"node", node}, {"workload", web_workload("rt-web-1", 18090, "two")}});
  REQUIRE(again.ok());
  CHECK(again.result["changed"] == true);
  CHECK(page() == "two\n");

  CHECK(plugin.call("signal", {{"node", node}, {"record", again.result["record"]}, {"signal", "HUP"}}).ok());
  const auto stopped = plugin.call("stop", {{"node", node}, {"record", again.result["record"]}, {"timeout_s", 1}});
  REQUIRE(stopped.ok());
  CHECK(s::wait_until(3s, 100ms, [&] { return plugin.call("inspect", {{"node", node}, {"record", record}}).result["state"] == "exited"; }));
  const auto signalled = plugin.call("signal", {{"node", node}, {"record", again.result["record"]}, {"signal", "HUP"}});
  CHECK(signalled.status == FLT_NOT_FOUND);
  REQUIRE(plugin.call("stop", {{"node", node}, {"record", again.result["record"]}, {"timeout_s", 1}, {"purge", true}}).ok());
  CHECK_FALSE(docker.inspect_container("rt-web-1"));

  // A container Flotilla did not make keeps its name and its life.
  (void)docker.create_container("rt-foreign", {{"Image", DockerLab::kImage}, {"Cmd", {"sleep", "30"}}});
  const auto clash = plugin.call("start", {{"node", node}, {"workload", web_workload("rt-foreign", 18091, "x")}});
  CHECK_FALSE(clash.ok());
  CHECK_THAT(clash.error, Catch::Contains("node " + n.name) && Catch::Contains("did not make"));
  CHECK_FALSE(plugin.call("stop", {{"node", node}, {"record", {{"name", "rt-foreign"}}}, {"purge", true}}).ok());
  CHECK(docker.inspect_container("rt-foreign"));
  docker.remove_container("rt-foreign");
}

TEST_CASE("docker runtime: inspects of many workloads on a node share one list call", "[plugins][docker-runtime][docker][integration]") {
  auto* lab = DockerLab::get();
  if (!lab) {
    WARN(DockerLab::unavailable_reason());
    return;
  }
  rt::NodeListings listings(5s);
  for (int round = 0; round < 10; ++round)
    for (const auto& n : lab->nodes()) (void)listings.get({.node = n.name, .host = n.host});
  CHECK(listings.list_calls() == DockerLab::kNodes);
  listings.forget(lab->nodes()[0].host);
  (void)listings.get({.node = lab->nodes()[0].name, .host = lab->nodes()[0].host});
  CHECK(listings.list_calls() == DockerLab::kNodes + 1);
}

TEST_CASE("docker runtime on real dockerd: put_file fills the owner's volume that its containers mount, through the Engine API only",
          "[plugins][docker-runtime][docker][integration]") {
  auto* lab = DockerLab::get();
  if (!lab) {
    WARN(DockerLab::unavailable_reason());
    return;
  }
  PluginHarness plugin("runtime_docker");
  const auto& n = lab->nodes()[1];
  json node = lab_node(n);
  node["runtime_config"]["files_image"] = DockerLab::kImage;
  s::DockerClient docker({.node = n.name, .host = n.host});
  const std::string volume = rt::files_volume("rt-test", "rtfiles");
  const auto cleanup = [&] {
    docker.remove_container("rt-files-web");
    docker.remove_container(volume);
    (void)docker.call("DELETE", "/volumes/" + volume);
  };
  cleanup();
  const auto put = [&](const std::string& path, const std::string& content, const json& mode = 0644) {
    return plugin.call("put_file", {{"node", node}, {"path", path}, {"content", content}, {"mode", mode}});
  };

  auto placed = put("rtfiles/index.html", "first\n");
  INFO(placed.describe());
  REQUIRE(placed.ok());
  CHECK(placed.result["path"] == "/flotilla/files/rtfiles/index.html");
  CHECK(placed.result["changed"] == true);
  CHECK(put("rtfiles/index.html", "first\n").result["changed"] == false);
  CHECK(put("rtfiles/index.html", "first\n", "0600").result["changed"] == true);
  CHECK(put("rtfiles/index.html", "first\n", 0644).result["changed"] == true);
  REQUIRE(put("rtfiles/deep/er/page.txt", "deep\n").ok());

  // A workload of that addon finds the files at the returned path, read-only, in a volume (no host directory).
  json web = web_workload("rt-files-web", 18092, "");
  web["owner"] = "addon:rtfiles";
  web["cmd"] = {"httpd", "-f", "-p", "18092", "-h", "/flotilla/files/rtfiles"};
  const auto started = plugin.call("start", {{"node", node}, {"workload", web}});
  INFO(started.describe());
  REQUIRE(started.ok());
  const auto inspected = docker.inspect_container("rt-files-web");
  REQUIRE(inspected);
  const json mounts = (*inspected)["Mounts"];
  REQUIRE(mounts.size() == 1);
  CHECK(mounts[0]["Type"] == "volume");
  CHECK(mounts[0]["Name"] == volume);
  CHECK(mounts[0]["RW"] == false);
  s::HttpClient http;
  const auto get = [&](const std::string& path) {
    s::HttpResponse r;
    (void)s::wait_until(5s, 50ms, [&] {
      try {
        r = http.send({.url = "http://" + n.address + ":18092/" + path});
        return true;
      } catch (const s::HttpError&) {
        return false;
      }
    });
    return r;
  };
  CHECK(get("index.html").body == "first\n");
  CHECK(get("deep/er/page.txt").body == "deep\n");
  // A new content reaches the running container without a restart.
  REQUIRE(put("rtfiles/index.html", "second\n").result["changed"] == true);
  CHECK(get("index.html").body == "second\n");

  const auto removed = plugin.call("put_file", {{"node", node}, {"path", "rtfiles/index.html"}, {"remove", true}});
  INFO(removed.describe());
  REQUIRE(removed.ok());
  CHECK(removed.result["changed"] == true);
  CHECK(get("index.html").status == 404);
  CHECK(plugin.call("put_file", {{"node", node}, {"path", "rtfiles/index.html"}, {"remove", true}}).result["changed"] == false);
  // Only the carrier is left of the helpers: the removal's container went.
  CHECK(docker.list_containers({std::string(rt::kFilesLabel) + "=rtfiles"}).size() == 1);

  for (const char* bad : {"index.html", "../rtfiles/x", "/etc/passwd", "rt files/x"}) {
    const auto refused = put(bad, "x");
    CHECK(refused.status == FLT_INVALID);
    CHECK_THAT(refused.error, Catch::Contains("node " + n.name));
  }
  CHECK(put("rtfiles/x", "x", "999").status == FLT_INVALID);
  cleanup();
}
