// Registry credentials of the docker runtime ([runtime.docker] registries): how the topology's
// entries are checked (file:line, what to do, never the secret), which entry an image's
// registry picks, and, against recorded Engine API exchanges, the X-Registry-Auth header a
// pull sends, the error when the registry asks for credentials or refuses them, and a daemon
// dropping the connection mid-pull.
#include "runtime_docker/registries.hpp"

#include "engine.hpp"
#include "flotilla/support/encoding.hpp"
#include "support/engine_replay.hpp"
#include "support/plugin_harness.hpp"
#include "support/docker_lab.hpp"
#include "support/process_util.hpp"
#include "support/skip.hpp"
#include "support/test_resources.hpp"

#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace {

namespace s = flotilla::support;
namespace rt = flotilla::docker_runtime;
using flotilla::test::EngineReplay;
using flotilla::test::PluginHarness;
using nlohmann::json;

const std::string kImage = "127.88.0.1:5000/private/app:1.0";
constexpr const char* kPasswordVariable = "FLOTILLA_TEST_REGISTRY_PASSWORD";

json node_at(const EngineReplay& replay, const std::string& name) {
  return {{"name", name}, {"address", "10.214.0.3"}, {"runtime", "docker"}, {"runtime_config", {{"host", replay.host()}, {"cluster", "lab"}}}};
}

json workload() { return {{"name", "web-1"}, {"owner", "service:web"}, {"image", kImage}, {"ports", {18300}}}; }

json with_login() {
  return {{"registries", {{{"address", "127.88.0.1:5000"}, {"username", "deploy"}, {"password", std::string("env:") + kPasswordVariable}}}}};
}

void check_replayed(const EngineReplay& replay) {
  for (const auto& m : replay.mismatches()) FAIL_CHECK(m);
  CHECK(replay.served() == replay.recorded());
}

/// The error lines of opening `topology` with the installed plugins ("" when it opens).
std::string open_errors(const std::string& topology) {
  flotilla::test::proc::ScratchDir dir("flotilla-registries");
  std::ofstream(dir.path() / "t.toml") << topology;
  flotilla::EngineOptions o;
  o.topology_file = dir.path() / "t.toml";
  o.plugin_path = FLOTILLA_PLUGIN_DIR;
  o.state_dir = dir.path() / "state";
  auto e = flotilla::Engine::open(o, {});
  return e ? std::string() : e.error().message;
}

const char* kCluster = R"([cluster]
name = "regs"
driver = "local"

[[nodes]]
name = "swarm"
)";

}  // namespace

TEST_CASE("docker runtime: [runtime.docker] registries are checked with file:line and what to do, and a literal password is refused unquoted",
          "[plugins][docker-runtime]") {
  const std::string bad = std::string(kCluster) + R"(
[runtime.docker]
registries = [
  { address = "registry.example.com:5000", username = "deploy", password = "hunter2-literal" },
  { username = "deploy", password = "env:REGISTRY_PASSWORD" },
  { address = "other.example.com", username = "u", password = "env:X", token = "t" },
  { address = "third.example.com", username = "u", password = "file:relative/path" },
]
)";
  const std::string errors = open_errors(bad);
  INFO(errors);
  CHECK_THAT(errors, Catch::Contains("t.toml:10:") && Catch::Contains("written as the secret itself") &&
                         Catch::Contains("password = \"env:NAME\"") && Catch::Contains("file:/path/to/secret"));
  CHECK_THAT(errors, !Catch::Contains("hunter2-literal"));
  CHECK_THAT(errors, Catch::Contains("t.toml:11:") && Catch::Contains("has no address") && Catch::Contains("add address = "));
  CHECK_THAT(errors, Catch::Contains("t.toml:12:") && Catch::Contains("unknown key \"token\"") && Catch::Contains("remove it"));
  CHECK_THAT(errors, Catch::Contains("t.toml:13:") && Catch::Contains("not an absolute path"));

  // Unknown options of the table itself, and a runtime that is not installed.
  const std::string unknown = open_errors(std::string(kCluster) + "\n[runtime.docker]\nregistry = []\n\n[runtime.nosuch]\nx = 1\n");
  INFO(unknown);
  CHECK_THAT(unknown, Catch::Contains("t.toml:9:") && Catch::Contains("\"registry\" is not known to runtime \"docker\"") &&
                          Catch::Contains("did you mean \"registries\""));
  CHECK_THAT(unknown, Catch::Contains("t.toml:11:") && Catch::Contains("[runtime.nosuch]"));

  // Written as [[runtime.docker.registries]] tables, with references, it opens.
  CHECK(open_errors(std::string(kCluster) + R"(
[runtime.docker]
[[runtime.docker.registries]]
address = "registry.example.com:5000"
username = "deploy"
password = "env:REGISTRY_PASSWORD"

[[runtime.docker.registries]]
address = "https://index.docker.io/v1/"
username = "env:HUB_USER"
password = "file:/run/secrets/hub"
)")
            .empty());
}

TEST_CASE("docker runtime: an image's registry picks its registries entry as Docker names registries", "[plugins][docker-runtime]") {
  CHECK(rt::registry_of("busybox") == "docker.io");
  CHECK(rt::registry_of("prom/prometheus:v2") == "docker.io");
  CHECK(rt::registry_of("quay.io/coreos/etcd:v3.5") == "quay.io");
  CHECK(rt::registry_of("localhost/app") == "localhost");
  CHECK(rt::registry_of("Registry.Example.com:5000/app:1") == "registry.example.com:5000");
  const json config = {{"registries",
                        {{{"address", "registry.example.com:5000"}, {"username", "a"}, {"password", "env:A"}},
                         {{"address", "https://index.docker.io/v1/"}, {"username", "b"}, {"password", "env:B"}}}}};
  REQUIRE(rt::login_for(config, "registry.example.com:5000/team/app:2"));
  CHECK(rt::login_for(config, "registry.example.com:5000/team/app:2")->username == "a");
  REQUIRE(rt::login_for(config, "prom/prometheus"));
  CHECK(rt::login_for(config, "prom/prometheus")->username == "b");
  CHECK_FALSE(rt::login_for(config, "registry.example.com:5001/app"));
  CHECK_FALSE(rt::login_for(json::object(), "busybox"));

  // A reference that names nothing says which, at the pull, without a value.
  ::unsetenv("FLOTILLA_TEST_UNSET_PASSWORD");
  const rt::RegistryLogin login{"registry.example.com:5000", "a", "env:FLOTILLA_TEST_UNSET_PASSWORD"};
  CHECK_THROWS_WITH(rt::resolve_login(login, "swarm-1", "registry.example.com:5000/app:1"),
                    Catch::Contains("node swarm-1") && Catch::Contains("registry.example.com:5000/app:1") &&
                        Catch::Contains("FLOTILLA_TEST_UNSET_PASSWORD, which is not set") && Catch::Contains("[runtime.docker]"));
}

TEST_CASE("docker runtime (recorded): a pull the registry refuses names node, image and registry and says to give credentials, "
          "credentials go in X-Registry-Auth and never into a message",
          "[plugins][docker-runtime][recorded]") {
  EngineReplay replay("runtime_registry_auth");
  PluginHarness plugin("runtime_docker");
  const json node = node_at(replay, "swarm-2");

  // No credentials for the registry.
  const auto bare = plugin.call("start", {{"node", node}, {"workload", workload()}, {"config", json::object()}});
  CHECK(bare.status == FLT_ERROR);
  CHECK_THAT(bare.error, Catch::Contains("node swarm-2") && Catch::Contains("pull image " + kImage) &&
                             Catch::Contains("unauthorized: authentication required") && Catch::Contains("workload web-1 of service:web") &&
                             Catch::Contains("registry 127.88.0.1:5000 asks for credentials") &&
                             Catch::Contains("[runtime.docker]") && Catch::Contains("address = \"127.88.0.1:5000\""));

  // Credentials the registry refuses: the error says so and holds no secret.
  ::setenv(kPasswordVariable, "wr0ng-Pa55-7", 1);
  const auto refused = plugin.call("start", {{"node", node}, {"workload", workload()}, {"config", with_login()}});
  CHECK(refused.status == FLT_ERROR);
  CHECK_THAT(refused.error, Catch::Contains("node swarm-2") && Catch::Contains("pull image " + kImage) &&
                                Catch::Contains("refused the credentials") && Catch::Contains(std::string("env:") + kPasswordVariable));
  CHECK_THAT(refused.error, !Catch::Contains("wr0ng-Pa55-7"));
  for (const auto& line : refused.logs) CHECK_THAT(line, !Catch::Contains("wr0ng-Pa55-7"));

  // The right ones: the pull succeeds and the container runs.
  ::setenv(kPasswordVariable, "s3cret-Pa55", 1);
  const auto started = plugin.call("start", {{"node", node}, {"workload", workload()}, {"config", with_login()}});
  INFO(started.describe());
  REQUIRE(started.ok());
  CHECK(started.result["changed"] == true);
  CHECK_THAT(started.result.dump(), !Catch::Contains("s3cret-Pa55"));
  for (const auto& line : started.logs) CHECK_THAT(line, !Catch::Contains("s3cret-Pa55"));
  ::unsetenv(kPasswordVariable);
  check_replayed(replay);

  // What went to the daemon: base64url JSON with the user, the password and the registry, only on pulls.
  std::vector<json> sent;
  for (const auto& r : replay.requests()) {
    if (!r.headers.count("x-registry-auth")) continue;
    CHECK_THAT(r.target, Catch::StartsWith("/v1.41/images/create"));
    const std::string text = r.headers.at("x-registry-auth");
    CHECK(text.find_first_of("+/") == std::string::npos);
    const auto decoded = s::base64_decode(text);
    REQUIRE(decoded);
    sent.push_back(json::parse(*decoded));
  }
  REQUIRE(sent.size() == 2);
  CHECK(sent[0] == json{{"username", "deploy"}, {"password", "wr0ng-Pa55-7"}, {"serveraddress", "127.88.0.1:5000"}});
  CHECK(sent[1] == json{{"username", "deploy"}, {"password", "s3cret-Pa55"}, {"serveraddress", "127.88.0.1:5000"}});
}

TEST_CASE("docker runtime (recorded): a daemon that drops the connection mid-pull makes the start retryable, naming node and workload",
          "[plugins][docker-runtime][recorded]") {
  EngineReplay replay("runtime_pull_dropped");
  PluginHarness plugin("runtime_docker");
  const auto r = plugin.call("start", {{"node", node_at(replay, "swarm-3")}, {"workload", workload()}});
  CHECK(r.status == FLT_RETRYABLE);
  CHECK_THAT(r.error, Catch::Contains("node swarm-3") && Catch::Contains(kImage) && Catch::Contains("workload web-1 of service:web"));
  check_replayed(replay);
}

namespace {

namespace fs = std::filesystem;

using flotilla::test::proc::Shell;

Shell sh(const fs::path& dir, const std::string& script) { return flotilla::test::proc::run_flotilla_script(dir, script); }

/// Every file under `root` whose content holds `secret`.
std::vector<std::string> files_holding(const fs::path& root, const std::string& secret) {
  std::vector<std::string> found;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
    if (it->is_regular_file() && flotilla::test::proc::read_text(it->path()).find(secret) != std::string::npos) found.push_back(it->path());
  return found;
}

}  // namespace

TEST_CASE("flotilla up with [runtime.docker] credentials: the pull uses them, and no state file, plan, event, log line or error holds the secret",
          "[plugins][docker-runtime][docker][integration]") {
  if (const std::string why = flotilla::test::DockerLab::unavailable_reason(); !why.empty()) FLOTILLA_SKIP(why);
  flotilla::test::proc::ScratchDir dir("fl-reg");  // short: dockerd's sockets live under the state directory
  const std::string secret = "Zq8-registry-secret-" + std::to_string(::getpid());
  std::ofstream(dir.path() / "registry-password") << secret << "\n";
  // Nothing listens on the node's own 127.0.0.1:5999: dockerd gets the credentials for the pull,
  // which then fails, so the error path is exercised too.
  std::ofstream(dir.path() / "topology.toml") << R"([cluster]
name = "regsecret"
driver = "netns"

[driver.netns]
subnet = ")" << flotilla::test::resources::netns_subnet() << R"("

[runtime.docker]
[[runtime.docker.registries]]
address = "127.0.0.1:5999"
username = "deploy"
password = "file:)" << (dir.path() / "registry-password").string() << R"("

[[nodes]]
name = "swarm-1"

[[services]]
name = "web"
image = "127.0.0.1:5999/private/web:1"
port = 18210
replicas = 1
)";
  const flotilla::test::proc::DownOnExit down(dir.path());

  const Shell plan = sh(dir.path(), "$FLOTILLA plan $TOPOLOGY --output json");
  INFO(plan.out << plan.err);
  REQUIRE(plan.code == 0);
  const Shell up = sh(dir.path(), "$FLOTILLA up $TOPOLOGY --log-level trace");
  INFO(up.out << up.err);
  CHECK(up.code != 0);
  CHECK_THAT(up.err, Catch::Contains("swarm-1") && Catch::Contains("pull image 127.0.0.1:5999/private/web:1") && Catch::Contains("service:web"));
  const Shell status = sh(dir.path(), "$FLOTILLA status $TOPOLOGY --output json; $FLOTILLA plan $TOPOLOGY --output json");
  INFO(status.out << status.err);

  for (const Shell* r : {&plan, &up, &status}) {
    CHECK_THAT(r->out, !Catch::Contains(secret));
    CHECK_THAT(r->err, !Catch::Contains(secret));
  }
  const fs::path state_dir = dir.path() / ".flotilla" / "regsecret";
  REQUIRE(fs::exists(state_dir / "events.jsonl"));
  for (const auto& file : files_holding(state_dir, secret)) FAIL_CHECK("the secret is in " << file);

  // The password is read at the pull, not kept from an earlier run: without its file the next
  // pull stops before the daemon is asked, naming the file.
  fs::remove(dir.path() / "registry-password");
  const Shell again = sh(dir.path(), "$FLOTILLA up $TOPOLOGY -q");
  INFO(again.out << again.err);
  CHECK(again.code != 0);
  CHECK_THAT(again.err, Catch::Contains("node swarm-1 cannot pull image 127.0.0.1:5999/private/web:1") &&
                            Catch::Contains("password for registry 127.0.0.1:5999 in [runtime.docker]") &&
                            Catch::Contains((dir.path() / "registry-password").string() + ", which does not exist"));
}
