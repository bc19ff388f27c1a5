// The docker runtime: the container config it derives from a workload, and (as root, on the
// shared Docker lab) containers started, kept, replaced, inspected, signalled and stopped
// through its C ABI, with everything not labelled as Flotilla's left alone.
#include "runtime_docker/runtime.hpp"
#include "runtime_docker/files.hpp"

#include "flotilla/support/docker_client.hpp"
#include "flotilla/support/http.hpp"
#include "flotilla/support/wait.hpp"
#include "driver_netns/host.hpp"
#include "support/docker_lab.hpp"
#include "support/plugin_harness.hpp"
#include "support/process_util.hpp"
#include "support/skip.hpp"
#include "support/test_resources.hpp"

#include <catch2/catch.hpp>

#include <thread>
#include <vector>

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

TEST_CASE("docker runtime: privileged, devices, a mapped port and bind mounts that create their source",
          "[plugins][docker-runtime]") {
  const json node = {{"name", "swarm-1"}, {"address", "10.214.0.3"}, {"runtime_config", {{"host", "unix:///x.sock"}}}};
  json w = web_workload("addon-m-cadvisor", 8080, "hi");
  // Without the new fields nothing new appears, so every existing container keeps its spec hash.
  const json plain = rt::container_config(node, w, "lab");
  CHECK_FALSE(plain["HostConfig"].contains("Privileged"));
  CHECK_FALSE(plain["HostConfig"].contains("Devices"));
  CHECK_FALSE(plain["HostConfig"].contains("Binds"));

  w["ports"] = {{{"container", 8080}, {"host", 8081}}};
  w["privileged"] = true;
  w["devices"] = {"/dev/kmsg"};
  w["mounts"] = {{{"source", "/"}, {"target", "/rootfs"}, {"read_only", true}, {"create_source", true}},
                 {{"source", "/var/run"}, {"target", "/var/run"}, {"create_source", true}},
                 {{"source", "/srv/data"}, {"target", "/data"}}};
  CHECK(rt::workload_errors(w).empty());
  const json c = rt::container_config(node, w, "lab");
  CHECK(c["ExposedPorts"].contains("8080/tcp"));
  CHECK(c["HostConfig"]["PortBindings"]["8080/tcp"][0] == json{{"HostIp", "10.214.0.3"}, {"HostPort", "8081"}});
  CHECK(c["HostConfig"]["Privileged"] == true);
  CHECK(c["HostConfig"]["Devices"] == json::array({{{"PathOnHost", "/dev/kmsg"}, {"PathInContainer", "/dev/kmsg"}, {"CgroupPermissions", "rwm"}}}));
  CHECK(c["HostConfig"]["Binds"] == json::array({"/:/rootfs:ro", "/var/run:/var/run:rw"}));
  REQUIRE(c["HostConfig"]["Mounts"].size() == 1);
  CHECK(c["HostConfig"]["Mounts"][0]["Target"] == "/data");

  json bad = w;
  bad["privileged"] = "yes";
  bad["devices"] = {"kmsg"};
  bad["ports"] = {{{"container", 8080}}};
  const auto errors = rt::workload_errors(bad);
  REQUIRE(errors.size() == 3);
  CHECK_THAT(errors[0], Catch::Contains("addon-m-cadvisor") && Catch::Contains("`ports`"));
  CHECK_THAT(errors[1], Catch::Contains("`privileged`"));
  CHECK_THAT(errors[2], Catch::Contains("`devices`") && Catch::Contains("/dev/kmsg"));
  json volume = w;
  volume["mounts"] = {{{"source", "data"}, {"target", "/data"}, {"create_source", true}}};
  CHECK_THROWS_WITH(rt::container_config(node, volume, "lab"), Catch::Contains("addon-m-cadvisor") && Catch::Contains("create_source"));
}

TEST_CASE("docker runtime: dns and dns_search become the container's resolvers, and anything but addresses and domains is refused",
          "[plugins][docker-runtime]") {
  const json node = {{"name", "swarm-1"}, {"address", "10.214.0.3"}, {"runtime_config", {{"host", "unix:///x.sock"}}}};
  json w = web_workload("service-hello-v1-1", 8001, "hi");
  const json plain = rt::container_config(node, w, "lab");
  CHECK_FALSE(plain["HostConfig"].contains("Dns"));
  CHECK_FALSE(plain["HostConfig"].contains("DnsSearch"));
  w["dns"] = {"172.17.0.1"};
  w["dns_search"] = {"service.consul"};
  CHECK(rt::workload_errors(w).empty());
  const json c = rt::container_config(node, w, "lab");
  CHECK(c["HostConfig"]["Dns"] == json{"172.17.0.1"});
  CHECK(c["HostConfig"]["DnsSearch"] == json{"service.consul"});
  CHECK(rt::config_hash(c) != rt::config_hash(plain));
  // Empty lists are the same as none: the spec (and so the running container) stays.
  w["dns"] = json::array();
  w["dns_search"] = json::array();
  CHECK(rt::config_hash(rt::container_config(node, w, "lab")) == rt::config_hash(plain));

  for (const json& bad : {json("172.17.0.1"), json{"172.17.0.1:53"}, json{"resolver.lab"}, json{"256.1.1.1"}, json{53}}) {
    w["dns"] = bad;
    const auto errors = rt::workload_errors(w);
    REQUIRE(errors.size() == 1);
    CHECK_THAT(errors[0], Catch::Contains("service-hello-v1-1") && Catch::Contains("`dns` must be an array of IPv4 addresses") &&
                              Catch::Contains(bad.dump()));
  }
  w["dns"] = {"10.0.0.2"};
  for (const json& bad : {json("service.consul"), json{"Service.Consul"}, json{"-x.consul"}, json{""}}) {
    w["dns_search"] = bad;
    const auto errors = rt::workload_errors(w);
    REQUIRE(errors.size() == 1);
    CHECK_THAT(errors[0], Catch::Contains("`dns_search` must be an array of DNS domains"));
  }
}

TEST_CASE("docker runtime on real dockerd: start, no-op restart, replace on change, recreate after removal, signal, stop",
          "[plugins][docker-runtime][docker][integration]") {
  auto* lab = DockerLab::get();
  if (!lab) FLOTILLA_SKIP(DockerLab::unavailable_reason());
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
  if (!lab) FLOTILLA_SKIP(DockerLab::unavailable_reason());
  rt::NodeListings listings(5s);
  for (int round = 0; round < 10; ++round)
    for (const auto& n : lab->nodes()) (void)listings.get({.node = n.name, .host = n.host});
  CHECK(listings.list_calls() == DockerLab::kNodes);
  listings.forget(lab->nodes()[0].host);
  (void)listings.get({.node = lab->nodes()[0].name, .host = lab->nodes()[0].host});
  CHECK(listings.list_calls() == DockerLab::kNodes + 1);

  // Asked from many threads at once (the engine inspects its workloads in parallel), each node
  // is still listed once: the callers that come while a listing is under way wait for it. The
  // listings stay fresh for an hour, so a slow machine cannot make one expire mid-test.
  rt::NodeListings together(1h);
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < 8; ++t)
      threads.emplace_back([&] {
        for (const auto& n : lab->nodes()) (void)together.get({.node = n.name, .host = n.host});
      });
  }
  CHECK(together.list_calls() == DockerLab::kNodes);
}

TEST_CASE("docker runtime on real dockerd: put_file fills the owner's volume that its containers mount, through the Engine API only",
          "[plugins][docker-runtime][docker][integration]") {
  auto* lab = DockerLab::get();
  if (!lab) FLOTILLA_SKIP(DockerLab::unavailable_reason());
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

TEST_CASE("docker runtime over TLS: start, inspect and stop through a netns node's TLS endpoint, and a wrong client certificate names the node",
          "[plugins][docker-runtime][docker][integration]") {
  if (const std::string why = DockerLab::unavailable_reason(); !why.empty()) FLOTILLA_SKIP(why);
  PluginHarness driver("driver_netns");
  PluginHarness plugin("runtime_docker");
  flotilla::test::proc::ScratchDir scratch("flt-rt-tls");
  const json cluster = {{"name", "rt-tls"}, {"state_dir", scratch.path().string()}};
  const json config = {{"subnet", flotilla::test::resources::netns_subnet()}};
  const json node_in = {{"name", "tls-1"}, {"slot", 0}};
  const auto made = driver.call("create", {{"cluster", cluster}, {"config", config}, {"node", node_in}});
  struct Destroy {
    const PluginHarness& driver;
    json request;
    ~Destroy() { (void)driver.call("destroy", request); }
  } destroy{driver, {{"cluster", cluster}, {"config", config}, {"node", node_in}, {"record", made.result}}};
  INFO(made.describe());
  REQUIRE(made.ok());
  // The image comes over the node's unix socket; everything after over TLS only.
  s::DockerClient local({.node = "tls-1", .host = made.result["runtime_config"]["host"]});
  (void)local.import_image(flotilla::test::lab_image_tar(), DockerLab::kImage);

  const json env = made.result["runtime_config"]["env"];
  const std::string certs = env["DOCKER_CERT_PATH"];
  const json node = {{"name", "tls-1"},
                     {"address", made.result["address"]},
                     {"runtime", "docker"},
                     {"runtime_config",
                      {{"host", env["DOCKER_HOST"]},
                       {"cluster", "rt-tls"},
                       {"tls", {{"ca", certs + "/ca.pem"}, {"cert", certs + "/cert.pem"}, {"key", certs + "/key.pem"}}}}}};
  const auto started = plugin.call("start", {{"node", node}, {"workload", web_workload("rt-tls-web", 18095, "tls")}});
  INFO(started.describe());
  REQUIRE(started.ok());
  CHECK(started.result["changed"] == true);
  const json record = started.result["record"];
  const auto inspected = plugin.call("inspect", {{"node", node}, {"record", record}});
  REQUIRE(inspected.ok());
  CHECK(inspected.result["state"] == "running");
  CHECK(inspected.result["id"] == record["id"]);
  CHECK(s::HttpClient().get("http://" + made.result["address"].get<std::string>() + ":18095/index.html").body == "tls\n");

  // A client certificate from a CA the daemon does not trust: refused, and the error says where and why.
  const auto other = flotilla::netns::ensure_client_tls(scratch.path() / "other-ca", "intruder");
  json wrong = node;
  wrong["runtime_config"]["tls"] = {{"ca", certs + "/ca.pem"}, {"cert", other.cert().string()}, {"key", other.key().string()}};
  const auto refused = plugin.call("inspect", {{"node", wrong}, {"record", record}});
  INFO(refused.describe());
  CHECK_FALSE(refused.ok());
  CHECK(refused.status != FLT_RETRYABLE);
  CHECK_THAT(refused.error, Catch::Contains("node tls-1") && Catch::Contains(env["DOCKER_HOST"].get<std::string>()) &&
                                Catch::Contains("certificate"));

  const auto stopped = plugin.call("stop", {{"node", node}, {"record", record}, {"timeout_s", 1}, {"purge", true}});
  REQUIRE(stopped.ok());
  CHECK_FALSE(local.inspect_container("rt-tls-web"));
}

TEST_CASE("docker runtime: an unreachable daemon, a missing image and a taken port each name node, workload and component, and leave no container",
          "[plugins][docker-runtime][docker][integration]") {
  auto* lab = DockerLab::get();
  if (!lab) FLOTILLA_SKIP(DockerLab::unavailable_reason());
  PluginHarness plugin("runtime_docker");
  const auto& n = lab->nodes()[1];
  const json node = lab_node(n);
  s::DockerClient docker({.node = n.name, .host = n.host});
  for (const char* c : {"rt-bad-image", "rt-port-a", "rt-port-b"}) docker.remove_container(c);

  // No daemon: retryable, and says where it looked.
  json gone = node;
  gone["runtime_config"]["host"] = "unix:///nonexistent/flotilla/docker.sock";
  const auto unreachable = plugin.call("start", {{"node", gone}, {"workload", web_workload("rt-nowhere", 18093, "x")}});
  CHECK(unreachable.status == FLT_RETRYABLE);
  CHECK_THAT(unreachable.error, Catch::Contains("node " + n.name) && Catch::Contains("/nonexistent/flotilla/docker.sock") &&
                                    Catch::Contains("workload rt-nowhere of service:hello/v1"));

  // An image no registry serves: nothing is created.
  json missing = web_workload("rt-bad-image", 18093, "x");
  missing["image"] = "127.0.0.1:9/flotilla/no-such-image:1";
  const auto pulled = plugin.call("start", {{"node", node}, {"workload", missing}});
  CHECK(pulled.status == FLT_ERROR);
  CHECK_THAT(pulled.error, Catch::Contains("node " + n.name) && Catch::Contains("pull image 127.0.0.1:9/flotilla/no-such-image:1") &&
                               Catch::Contains("workload rt-bad-image of service:hello/v1") && Catch::Contains("registry"));
  CHECK_FALSE(docker.inspect_container("rt-bad-image"));

  // Two workloads on one port of one node: the second fails, is removed, and the first keeps serving.
  const auto first = plugin.call("start", {{"node", node}, {"workload", web_workload("rt-port-a", 18094, "a")}});
  INFO(first.describe());
  REQUIRE(first.ok());
  json second_workload = web_workload("rt-port-b", 18094, "b");
  second_workload["owner"] = "haproxy";
  const auto second = plugin.call("start", {{"node", node}, {"workload", second_workload}});
  CHECK(second.status == FLT_ERROR);
  CHECK_THAT(second.error, Catch::Contains("node " + n.name) && Catch::Contains("18094") && Catch::Contains("already taken") &&
                               Catch::Contains("workload rt-port-b of haproxy"));
  CHECK_FALSE(docker.inspect_container("rt-port-b"));
  const auto a = plugin.call("inspect", {{"node", node}, {"record", first.result["record"]}});
  CHECK(a.result["state"] == "running");
  // Once the port is free, the same start succeeds.
  REQUIRE(plugin.call("stop", {{"node", node}, {"record", first.result["record"]}, {"timeout_s", 1}, {"purge", true}}).ok());
  const auto retried = plugin.call("start", {{"node", node}, {"workload", second_workload}});
  INFO(retried.describe());
  CHECK(retried.ok());
  docker.remove_container("rt-port-b");
}
