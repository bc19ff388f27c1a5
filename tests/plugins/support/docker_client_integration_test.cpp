// DockerClient against real dockerd instances of the shared Docker lab (one per network
// namespace): the whole container lifecycle, files placed by archive upload and served over
// the node's address, logs, signals and listing by label across nodes.
#include "flotilla/support/docker_client.hpp"
#include "flotilla/support/http.hpp"
#include "flotilla/support/tar.hpp"
#include "flotilla/support/wait.hpp"

#include "support/docker_lab.hpp"
#include "support/skip.hpp"

#include <catch2/catch.hpp>

namespace s = flotilla::support;
using flotilla::test::DockerLab;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

/// A busybox httpd serving /www on port 80 of the container, published on the node's address.
json web_config(const std::string& address, int port, const std::string& run) {
  return {{"Image", DockerLab::kImage},
          {"Cmd", {"/bin/sh", "-c", "echo started-out; echo started-err >&2; trap 'echo got-hup' HUP; httpd -f -p 80 -h /www & wait; " + run}},
          {"Labels", {{"flotilla.cluster", "lab-test"}, {"flotilla.component", "web"}}},
          {"ExposedPorts", {{"80/tcp", json::object()}}},
          {"HostConfig", {{"PortBindings", {{"80/tcp", {{{"HostIp", address}, {"HostPort", std::to_string(port)}}}}}}}}};
}

}  // namespace

TEST_CASE("DockerClient runs a container on a real dockerd in a namespace: create, upload, serve, logs, signal, stop, remove",
          "[support][docker][integration]") {
  auto* lab = DockerLab::get();
  if (!lab) FLOTILLA_SKIP(DockerLab::unavailable_reason());
  const auto& node = lab->nodes()[0];
  s::DockerClient docker({.node = node.name, .host = node.host});
  CHECK(docker.api_version() == "1.41");
  CHECK(docker.image_present(DockerLab::kImage));
  CHECK_FALSE(docker.image_present("flotilla-absent:none"));

  const std::string name = "lab-web-1";
  docker.remove_container(name);  // from an earlier run killed half-way
  const std::string id = docker.create_container(name, web_config(node.address, 18080, "sleep 30"));
  CHECK(id.size() == 64);
  docker.start_container(name);
  docker.start_container(name);  // already running: not an error

  docker.upload_archive(name, "/www", s::make_tar({{.path = "index.html", .content = "hello from " + node.name + "\n"}}));
  s::HttpClient http;
  std::string served;
  const bool answered = s::wait_until(5s, 50ms, [&] {
    try {
      served = http.get("http://" + node.address + ":18080/index.html").body;
      return true;
    } catch (const s::HttpError&) {
      return false;
    }
  });
  REQUIRE(answered);
  CHECK(served == "hello from " + node.name + "\n");

  const auto inspected = docker.inspect_container(id);
  REQUIRE(inspected);
  CHECK((*inspected)["State"]["Running"] == true);
  CHECK((*inspected)["Config"]["Labels"]["flotilla.component"] == "web");

  // Listing by label sees it on its node only.
  const auto here = docker.list_containers({"flotilla.cluster=lab-test", "flotilla.component=web"});
  REQUIRE(here.size() == 1);
  CHECK(here[0].id == id);
  CHECK(here[0].name == name);
  s::DockerClient other({.node = lab->nodes()[1].name, .host = lab->nodes()[1].host});
  CHECK(other.list_containers({"flotilla.cluster=lab-test"}).empty());

  docker.kill_container(name, "HUP");
  CHECK(s::wait_until(5s, 50ms, [&] { return docker.logs(name).out.find("got-hup") != std::string::npos; }));
  const auto logs = docker.logs(name);
  CHECK(logs.out.find("started-out") != std::string::npos);
  CHECK(logs.err == "started-err\n");

  docker.stop_container(name, 1s);
  docker.stop_container(name, 1s);  // already stopped: not an error
  const auto stopped = docker.inspect_container(name);
  REQUIRE(stopped);
  CHECK((*stopped)["State"]["Running"] == false);
  try {
    docker.kill_container(name, "HUP");
    FAIL("signalling a stopped container must fail");
  } catch (const s::DockerError& e) {
    CHECK(e.status() == 409);
    CHECK_THAT(e.what(), Catch::Contains("node " + node.name) && Catch::Contains("is not running"));
  }
  docker.remove_container(name);
  docker.remove_container(name);  // already gone: not an error
  CHECK_FALSE(docker.inspect_container(name));
}

TEST_CASE("DockerClient against real dockerd: a missing image and a taken port fail with the daemon's message and the node",
          "[support][docker][integration]") {
  auto* lab = DockerLab::get();
  if (!lab) FLOTILLA_SKIP(DockerLab::unavailable_reason());
  const auto& node = lab->nodes()[1];
  s::DockerClient docker({.node = node.name, .host = node.host});
  try {
    (void)docker.create_container("lab-missing-image", {{"Image", "flotilla-absent:none"}});
    FAIL("creating from a missing image must fail");
  } catch (const s::DockerError& e) {
    CHECK(e.status() == 404);
    CHECK_THAT(e.what(), Catch::Contains("node " + node.name) && Catch::Contains("flotilla-absent:none"));
  }
  // Pulling it fails too: the lab reaches no registry that has it.
  CHECK_THROWS_AS(docker.ensure_image("127.0.0.1:1/flotilla-absent:none", nullptr, 10s), s::DockerError);

  for (const char* n : {"lab-port-a", "lab-port-b"}) docker.remove_container(n);
  (void)docker.create_container("lab-port-a", web_config(node.address, 18081, "true"));
  docker.start_container("lab-port-a");
  (void)docker.create_container("lab-port-b", web_config(node.address, 18081, "true"));
  try {
    docker.start_container("lab-port-b");
    FAIL("a second container on a taken port must not start");
  } catch (const s::DockerError& e) {
    CHECK_THAT(e.what(), Catch::Contains("node " + node.name) && Catch::Contains("18081"));
  }
  for (const char* n : {"lab-port-a", "lab-port-b"}) docker.remove_container(n);
  CHECK(docker.list_containers({"flotilla.cluster=lab-test"}).empty());
}
