// scripts/build-images.sh against a real dockerd of the Docker lab: the image it makes from
// Debian's HAProxy runs, and a second run rebuilds nothing.
#include "flotilla/support/command.hpp"
#include "flotilla/support/docker_client.hpp"

#include "support/docker_lab.hpp"
#include "support/skip.hpp"

#include <catch2/catch.hpp>

namespace s = flotilla::support;
using flotilla::test::DockerLab;
using namespace std::chrono_literals;

TEST_CASE("build-images.sh makes a working HAProxy image from Debian's binary, and a second run rebuilds nothing",
          "[scripts][docker][integration]") {
  auto* lab = DockerLab::get();
  if (!lab) FLOTILLA_SKIP(DockerLab::unavailable_reason());
  if (!s::find_executable("haproxy")) FLOTILLA_SKIP("haproxy is not installed; scripts/install-deps.sh installs it");
  const auto& node = lab->nodes()[0];
  const std::string script = std::string(FLOTILLA_SOURCE_DIR) + "/scripts/build-images.sh";
  const auto first = s::run_command({"bash", script, "--host", node.host, "--tag", "lab-test", "haproxy"}, 120s);
  INFO(first.out << first.err);
  REQUIRE(first.ok());
  CHECK_THAT(first.out, Catch::Contains("haproxy:lab-test: built"));

  s::DockerClient docker({.node = node.name, .host = node.host});
  docker.remove_container("lab-haproxy-version");
  const std::string id = docker.create_container(
      "lab-haproxy-version", {{"Image", "haproxy:lab-test"}, {"Cmd", {"/usr/sbin/haproxy", "-v"}}, {"HostConfig", {{"NetworkMode", "none"}}}});
  docker.start_container(id);
  std::string out;
  REQUIRE(s::wait_until(10s, 100ms, [&] {
    out = docker.logs(id).out;
    return out.find("HAProxy version") != std::string::npos;
  }));
  docker.remove_container(id);

  const auto second = s::run_command({"bash", script, "--host", node.host, "--tag", "lab-test", "haproxy"}, 120s);
  REQUIRE(second.ok());
  CHECK_THAT(second.out, Catch::Contains("haproxy:lab-test: up to date"));
}
