// DockerClient against recorded Engine API exchanges replayed on a unix socket, for what a real
// dockerd here cannot produce: an older daemon, a registry refusing credentials, a dropped
// connection. The same calls against real dockerd are in docker_client_integration_test.cpp.
#include "flotilla/support/docker_client.hpp"
#include "flotilla/support/encoding.hpp"
#include "flotilla/support/request.hpp"
#include "flotilla/support/tar.hpp"

#include "support/engine_replay.hpp"

#include <catch2/catch.hpp>

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace s = flotilla::support;
using flotilla::test::EngineReplay;
using nlohmann::json;

namespace {

void check_replayed(const EngineReplay& replay) {
  for (const auto& m : replay.mismatches()) FAIL_CHECK(m);
  CHECK(replay.served() == replay.recorded());
}

s::DockerClient client_for(const EngineReplay& replay, const std::string& node = "swarm-1") {
  return s::DockerClient({.node = node, .host = replay.host()});
}

}  // namespace

TEST_CASE("DockerClient (recorded) negotiates down to an older daemon's API and speaks it for every call", "[support][docker][recorded]") {
  EngineReplay replay("old_daemon");
  auto docker = client_for(replay);
  CHECK(docker.api_version() == "1.39");

  const json config = {{"Image", "flotilla-hello:1"}, {"Cmd", {"/bin/hello"}}, {"Labels", {{"flotilla.cluster", "lab"}, {"flotilla.component", "web"}}}};
  CHECK(docker.create_container("web-1", config).starts_with("2f1a9c0d"));
  try {
    (void)docker.create_container("web-1", {{"Image", "flotilla-hello:1"}});
    FAIL("a second create of the same name must fail");
  } catch (const s::DockerError& e) {
    CHECK(e.status() == 409);
    CHECK(e.node() == "swarm-1");
    CHECK_FALSE(e.unreachable());
    CHECK_THAT(e.what(), Catch::Contains("node swarm-1") && Catch::Contains("already in use by container"));
  }
  docker.start_container("web-1");
  CHECK_NOTHROW(docker.start_container("web-1"));  // 304: already running

  const auto listed = docker.list_containers({"flotilla.cluster=lab"});
  REQUIRE(listed.size() == 1);
  CHECK(listed[0].name == "web-1");
  CHECK(listed[0].state == "running");
  CHECK(listed[0].labels.at("flotilla.component") == "web");

  docker.stop_container("web-1", std::chrono::seconds(1));
  try {
    docker.kill_container("web-1", "HUP");
    FAIL("signalling a stopped container must fail");
  } catch (const s::DockerError& e) {
    CHECK(e.status() == 409);
    CHECK_THAT(e.daemon_message(), Catch::Contains("is not running"));
  }
  docker.remove_container("web-1");
  CHECK_NOTHROW(docker.remove_container("web-1"));  // 404: already gone
  CHECK_FALSE(docker.inspect_container("web-1").has_value());
  check_replayed(replay);
  for (const auto& r : replay.requests())
    if (r.target != "/version") CHECK(r.target.starts_with("/v1.39/"));
}

TEST_CASE("DockerClient (recorded) refuses a daemon older than the oldest API it speaks, naming node and version", "[support][docker][recorded]") {
  EngineReplay replay("too_old_daemon");
  auto docker = client_for(replay, "infra");
  try {
    (void)docker.api_version();
    FAIL("API 1.24 must be refused");
  } catch (const s::DockerError& e) {
    CHECK_THAT(e.what(), Catch::Contains("node infra") && Catch::Contains("1.24") && Catch::Contains("1.12.6") &&
                             Catch::Contains("upgrade Docker"));
  }
  check_replayed(replay);
}

TEST_CASE("DockerClient (recorded) pulls with per-call registry credentials and reports the registry's refusal without them", "[support][docker][recorded]") {
  EngineReplay replay("registry_auth");
  auto docker = client_for(replay, "swarm-2");
  const s::RegistryAuth auth{.username = "deploy", .password = "s3cret-Pa55", .server_address = "127.88.0.1:5000"};
  const std::string image = "127.88.0.1:5000/private/app:1.0";

  // Refused before the pull began: the daemon's status and message.
  try {
    docker.ensure_image(image, &auth);
    FAIL("the refused pull must fail");
  } catch (const s::DockerError& e) {
    CHECK(e.status() == 500);
    CHECK_THAT(e.what(), Catch::Contains("node swarm-2") && Catch::Contains("pull image " + image) &&
                             Catch::Contains("unauthorized: authentication required"));
    CHECK_THAT(e.what(), !Catch::Contains("s3cret"));
  }
  // Refused inside the progress stream of a pull that answered 200.
  try {
    docker.ensure_image(image);
    FAIL("a pull whose stream carries an error must fail");
  } catch (const s::DockerError& e) {
    CHECK_THAT(e.daemon_message(), Catch::Equals("unauthorized: authentication required"));
    CHECK_THAT(e.what(), Catch::Contains("node swarm-2"));
  }
  CHECK_NOTHROW(docker.ensure_image(image, &auth));
  CHECK(docker.image_present(image));
  check_replayed(replay);

  // The credentials went only with the pulls that were given them.
  int with_auth = 0;
  for (const auto& r : replay.requests()) {
    if (!r.headers.count("x-registry-auth")) continue;
    ++with_auth;
    std::string text = r.headers.at("x-registry-auth");
    const auto decoded = s::base64_decode(text);
    REQUIRE(decoded);
    const json doc = json::parse(*decoded);
    CHECK(doc["username"] == "deploy");
    CHECK(doc["password"] == "s3cret-Pa55");
  }
  CHECK(with_auth == 2);
}

TEST_CASE("DockerClient (recorded) reports a dropped connection as the node being unreachable, and recovers on the next call", "[support][docker][recorded]") {
  EngineReplay replay("dropped_connection");
  auto docker = client_for(replay, "swarm-3");
  try {
    (void)docker.list_containers({"flotilla.cluster=lab"});
    FAIL("a dropped connection must fail");
  } catch (const s::DockerError& e) {
    CHECK(e.unreachable());
    CHECK(e.status() == 0);
    CHECK_THAT(e.what(), Catch::Contains("node swarm-3") && Catch::Contains("did not answer") && Catch::Contains(replay.host()));
  }
  CHECK(docker.list_containers({"flotilla.cluster=lab"}).empty());
  check_replayed(replay);
}

TEST_CASE("DockerClient reports a daemon that is not there with node and socket", "[support][docker]") {
  s::DockerClient docker({.node = "swarm-9", .host = "unix:///nonexistent/flotilla-docker.sock"});
  try {
    (void)docker.api_version();
    FAIL("a missing socket must fail");
  } catch (const s::DockerError& e) {
    CHECK(e.unreachable());
    CHECK_THAT(e.what(), Catch::Contains("node swarm-9") && Catch::Contains("/nonexistent/flotilla-docker.sock"));
  }
  CHECK_THROWS_AS(s::DockerClient({.node = "n", .host = "ssh://x"}), std::invalid_argument);
}

TEST_CASE("Docker log streams are split by their frame headers, and a TTY stream is all stdout", "[support][docker]") {
  std::string framed;
  const auto frame = [&](char stream, const std::string& text) {
    framed += std::string{stream, 0, 0, 0};
    const auto n = static_cast<std::uint32_t>(text.size());
    framed += {static_cast<char>(n >> 24), static_cast<char>(n >> 16), static_cast<char>(n >> 8), static_cast<char>(n)};
    framed += text;
  };
  frame(1, "hello\n");
  frame(2, "oops\n");
  frame(1, std::string(300, 'x'));
  const auto logs = s::demux_log_stream(framed);
  CHECK(logs.out == "hello\n" + std::string(300, 'x'));
  CHECK(logs.err == "oops\n");
  CHECK(s::demux_log_stream("plain text\n").out == "plain text\n");
  CHECK(s::compare_api_versions("1.9", "1.41") < 0);
  CHECK(s::compare_api_versions("1.41", "1.41") == 0);
}

TEST_CASE("make_tar builds ustar members that tar reads back, and refuses unsafe paths", "[support][docker]") {
  const std::string tar = s::make_tar({{.path = "etc", .mode = 0755, .directory = true},
                                       {.path = "etc/app.conf", .content = "a = 1\n"},
                                       {.path = std::string(120, 'd') + "/" + std::string(90, 'f'), .content = std::string(513, 'z')}});
  CHECK(tar.size() % 512 == 0);
  CHECK(tar.substr(257, 5) == "ustar");
  // The checksum of the first header, as tar checks it.
  unsigned sum = 0;
  for (size_t i = 0; i < 512; ++i) sum += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>(tar[i]);
  CHECK(std::stoul(tar.substr(148, 6), nullptr, 8) == sum);
  CHECK(tar.substr(512 + 512, 6) == "a = 1\n");
  // GNU tar extracts it as written.
  char dir[] = "/tmp/flotilla-tar-XXXXXX";
  REQUIRE(::mkdtemp(dir));
  const std::filesystem::path root(dir);
  { std::ofstream(root / "a.tar", std::ios::binary) << tar; }
  const std::string cmd = "tar -xf " + (root / "a.tar").string() + " -C " + root.string();
  CHECK(std::system(cmd.c_str()) == 0);
  CHECK(s::read_text(root / "etc/app.conf") == "a = 1\n");
  CHECK(s::read_text(root / (std::string(120, 'd') + "/" + std::string(90, 'f'))) == std::string(513, 'z'));
  std::filesystem::remove_all(root);
  CHECK_THROWS_WITH(s::make_tar({{.path = "../x"}}), Catch::Contains("\"..\""));
  CHECK_THROWS_WITH(s::make_tar({{.path = "/etc/x"}}), Catch::Contains("relative"));
  CHECK_THROWS_WITH(s::make_tar({{.path = std::string(300, 'a')}}), Catch::Contains("too long"));
}

TEST_CASE("read_tar reads back make_tar's members and GNU tar's long names, and refuses a damaged header", "[support][docker]") {
  const std::string deep = std::string(120, 'd') + "/" + std::string(90, 'f');
  const auto back = s::read_tar(s::make_tar({{.path = "etc", .mode = 0755, .directory = true},
                                             {.path = "etc/app.conf", .content = "a = 1\n", .mode = 0600},
                                             {.path = "etc/link", .link_target = "app.conf"},
                                             {.path = deep, .content = std::string(513, 'z')}}));
  REQUIRE(back.size() == 4);
  CHECK((back[0].directory && back[0].path == "etc" && back[0].mode == 0755));
  CHECK((back[1].path == "etc/app.conf" && back[1].content == "a = 1\n" && back[1].mode == 0600));
  CHECK(back[2].link_target == "app.conf");
  CHECK((back[3].path == deep && back[3].content == std::string(513, 'z')));

  // GNU tar writes a name longer than ustar allows as a PAX record.
  char dir[] = "/tmp/flotilla-tar-XXXXXX";
  REQUIRE(::mkdtemp(dir));
  const std::filesystem::path root(dir);
  const std::string long_name = std::string(180, 'n') + ".txt";
  { std::ofstream(root / long_name, std::ios::binary) << "long\n"; }
  const std::string cmd = "tar --format=pax -cf " + (root / "a.tar").string() + " -C " + root.string() + " " + long_name;
  REQUIRE(std::system(cmd.c_str()) == 0);
  const auto pax = s::read_tar(s::read_text(root / "a.tar"));
  std::filesystem::remove_all(root);
  REQUIRE(pax.size() == 1);
  CHECK(pax[0].path == long_name);
  CHECK(pax[0].content == "long\n");

  std::string broken = s::make_tar({{.path = "x", .content = "1"}});
  broken[0] = 'y';
  CHECK_THROWS_WITH(s::read_tar(broken), Catch::Contains("checksum"));
}

TEST_CASE("docker_endpoint_of reads a node's endpoint as drivers record it", "[support][docker]") {
  const auto tls = s::docker_endpoint_of(json{{"name", "swarm-1"},
                                              {"runtime_config",
                                               {{"host", "tcp://10.0.0.2:2376"},
                                                {"tls", {{"ca", "/c/ca.pem"}, {"cert", "/c/cert.pem"}, {"key", "/c/key.pem"}}}}}});
  CHECK(tls.node == "swarm-1");
  CHECK(tls.host == "tcp://10.0.0.2:2376");
  CHECK(tls.use_tls);
  CHECK(tls.tls.ca_file == "/c/ca.pem");
  CHECK(tls.tls.cert_file == "/c/cert.pem");
  CHECK(tls.tls.key_file == "/c/key.pem");
  const auto plain = s::docker_endpoint_of(json{{"name", "infra"}, {"runtime_config", {{"host", "unix:///run/d.sock"}}}});
  CHECK(plain.host == "unix:///run/d.sock");
  CHECK_FALSE(plain.use_tls);
  const auto none = s::docker_endpoint_of(json{{"name", "n"}, {"runtime_config", 7}});
  CHECK(none.host.empty());
  CHECK(none.node == "n");
}
