// `flotilla env` on a real netns node, end to end: the CLI brings the node up (its own
// dockerd in a namespace, a TLS endpoint with certificates Flotilla made), a service runs on it
// as a container, and Debian's docker CLI, pointed at the node by `eval "$(flotilla env ...)"`,
// lists that container over TLS. `down` removes the node.
#include "driver_netns/host.hpp"
#include "support/cleanup_report.hpp"
#include "support/docker_lab.hpp"
#include "support/process_util.hpp"
#include "support/skip.hpp"
#include "support/test_resources.hpp"

#include <flotilla/support/process.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using flotilla::test::proc::ScratchDir;
using flotilla::test::proc::read_text;

using flotilla::test::proc::Shell;

Shell sh(const fs::path& dir, const std::string& script) { return flotilla::test::proc::run_flotilla_script(dir, script); }

// The subnet is one no other test process holds (the bridge and routes are machine-wide).
std::string node_topology(const std::string& subnet) {
  return R"([cluster]
name = "envtest"
driver = "netns"

[driver.netns]
subnet = ")" + subnet + R"("
# The image comes in through `docker import` below, not from the lab's registry.
registry = false

[[nodes]]
name = "swarm-1"
)";
}

// The image's own command serves /www (with the default health path) on $PORT, which the engine sets.
const char* kService = R"(
[[services]]
name = "web"
image = "flotilla-env-web:1"
port = 18200
replicas = 1
)";

}  // namespace

TEST_CASE("flotilla env points Debian's docker CLI at a netns node over TLS, and docker ps lists the node's containers",
          "[engine][cli][docker][integration]") {
  if (const std::string why = flotilla::test::DockerLab::unavailable_reason(); !why.empty()) FLOTILLA_SKIP(why);
  if (!fs::exists("/usr/bin/docker")) FLOTILLA_SKIP("Debian's docker CLI (/usr/bin/docker, package docker.io) is not installed");
  ScratchDir dir("flotilla-env");
  const std::string subnet = flotilla::test::resources::netns_subnet();
  // The first node's address: slot 0, after the bridge's .1.
  const std::string docker_host = "tcp://" + subnet.substr(0, subnet.rfind('.')) + ".2:2376";
  std::ofstream(dir.path() / "topology.toml") << node_topology(subnet);
  const flotilla::test::proc::DownOnExit down(dir.path());

  const Shell up = sh(dir.path(), "$FLOTILLA up $TOPOLOGY -q");
  INFO(up.out << up.err);
  REQUIRE(up.code == 0);

  const Shell env = sh(dir.path(), "$FLOTILLA env $TOPOLOGY swarm-1");
  INFO(env.out << env.err);
  REQUIRE(env.code == 0);
  CHECK_THAT(env.out, Catch::Contains("export DOCKER_HOST=\"" + docker_host + "\"") &&
                          Catch::Contains("export DOCKER_TLS_VERIFY=\"1\"") && Catch::Contains("export DOCKER_CERT_PATH=\"") &&
                          Catch::Contains("# eval \"$(flotilla env"));
  const Shell as_json = sh(dir.path(), "$FLOTILLA env $TOPOLOGY swarm-1 --output json");
  REQUIRE(as_json.code == 0);
  const json doc = json::parse(as_json.out);
  CHECK(doc["node"] == "swarm-1");
  CHECK(doc["env"]["DOCKER_HOST"] == docker_host);
  const fs::path certs = doc["env"]["DOCKER_CERT_PATH"].get<std::string>();
  CHECK(fs::exists(certs / "ca.pem"));
  CHECK(fs::exists(certs / "cert.pem"));
  CHECK(fs::exists(certs / "key.pem"));

  // The image comes in over the TLS endpoint too, through the exports alone.
  std::ofstream(dir.path() / "rootfs.tar", std::ios::binary) << flotilla::test::lab_image_tar();
  const Shell imported = sh(dir.path(), R"sh(eval "$($FLOTILLA env $TOPOLOGY swarm-1)"
/usr/bin/docker import -c 'CMD ["/bin/sh", "-c", "echo ok > /www/health && exec httpd -f -p $PORT -h /www"]' rootfs.tar flotilla-env-web:1)sh");
  INFO(imported.out << imported.err);
  REQUIRE(imported.code == 0);

  std::ofstream(dir.path() / "topology.toml", std::ios::app) << kService;
  const Shell with_service = sh(dir.path(), "$FLOTILLA up $TOPOLOGY -q");
  INFO(with_service.out << with_service.err);
  REQUIRE(with_service.code == 0);

  const Shell ps = sh(dir.path(), R"sh(eval "$($FLOTILLA env $TOPOLOGY swarm-1)"
/usr/bin/docker ps --format '{{.Names}} {{.Image}} {{.Label "io.flotilla.node"}} {{.Label "io.flotilla.component"}}')sh");
  INFO(ps.out << ps.err);
  REQUIRE(ps.code == 0);
  CHECK_THAT(ps.out, Catch::Contains(" flotilla-env-web:1 swarm-1 service:web"));
  // Without the exports the same CLI does not reach the node: the listing came from its dockerd.
  const Shell without = sh(dir.path(), "DOCKER_HOST=" + docker_host + " /usr/bin/docker ps");
  CHECK(without.code != 0);

  const Shell gone = sh(dir.path(), "$FLOTILLA down $TOPOLOGY -q");
  INFO(gone.out << gone.err);
  REQUIRE(gone.code == 0);
  CHECK_FALSE(fs::exists(certs));
  const Shell after = sh(dir.path(), "$FLOTILLA env $TOPOLOGY swarm-1");
  CHECK(after.code != 0);
  CHECK_THAT(after.err, Catch::Contains("swarm-1"));
}
