#include "topology.hpp"

#include "input_limits.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>

using flotilla::json;
using flotilla::parse_topology;
using flotilla::Topology;

namespace {

// A topology that every check accepts (16 lines); tests append to it or write their own.
const std::string kBase = R"([cluster]
name = "local"
driver = "local"

[driver.local]
cidr = "127.77.0.0/24"

[[nodes]]
name = "infra"
roles = ["infra"]

[[nodes]]
name = "swarm"
count = 3
roles = ["swarm"]

)";

Topology parse_ok(const std::string& text) {
  auto result = parse_topology(text, "t.toml");
  INFO((result ? std::string("ok") : result.error().message));
  REQUIRE(result.has_value());
  return std::move(*result);
}

std::string parse_error(const std::string& text) {
  auto result = parse_topology(text, "t.toml");
  REQUIRE_FALSE(result.has_value());
  return result.error().message;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// A scratch directory removed on scope exit, even when an assertion fails.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::random_device rd;
    path = std::filesystem::temp_directory_path() / ("flotilla-topology-test-" + std::to_string(rd()));
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

}  // namespace

using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

TEST_CASE("SourcePos::str gives file:line:column, or the file alone when unknown", "[topology]") {
  CHECK(flotilla::SourcePos{"configs/x.toml", 12, 3}.str() == "configs/x.toml:12:3");
  CHECK(flotilla::SourcePos{"configs/x.toml", 0, 0}.str() == "configs/x.toml");
}

TEST_CASE("SourcePos::located puts the position before every line of a message", "[topology]") {
  CHECK(flotilla::SourcePos{"x.toml", 2, 5}.located("one\ntwo") == "x.toml:2:5: one\nx.toml:2:5: two");
  CHECK(flotilla::SourcePos{"x.toml", 0, 0}.located("one") == "x.toml: one");
  CHECK(flotilla::SourcePos{}.located("one\ntwo") == "one\ntwo");
}

TEST_CASE("a complete topology loads into the model", "[topology]") {
  const Topology t = parse_ok(kBase + R"(labels = { zone = "a", "disk.type" = "ssd" }

[[addons]]
plugin = "haproxy"
roles = ["swarm"]
[addons.options]
port = 8080
mode = "http"

[[addons]]
plugin = "etcd"
name = "etcd-main"
nodes = ["infra"]

[[services]]
name = "hello/v1"
command = ["flotilla-hello", "--listen", "{address}:{port}"]
image = "sirile/node-test"
replicas = 5
port = 8000
env = { GREETING = "hi" }

[[services]]
name = "worker"
command = "worker --queue  jobs"
replicas = 0
)");
  CHECK(t.cluster_name == "local");
  CHECK(t.driver == "local");
  CHECK(t.runtime.empty());
  CHECK(t.file.is_absolute());
  CHECK(t.file.filename() == "t.toml");
  CHECK(t.driver_config == flotilla::json{{"cidr", "127.77.0.0/24"}});
  CHECK(t.driver_pos.str() == "t.toml:5:1");
  REQUIRE(t.driver_option_pos.count("cidr") == 1);
  CHECK(t.driver_option_pos.at("cidr").str() == "t.toml:6:1");

  REQUIRE(t.groups.size() == 2);
  CHECK(t.groups[0].name == "infra");
  CHECK(t.groups[0].count == 1);
  CHECK(t.groups[0].pos.str() == "t.toml:8:1");
  CHECK(t.groups[1].count == 3);
  CHECK(t.groups[1].labels == std::map<std::string, std::string>{{"zone", "a"}, {"disk.type", "ssd"}});

  REQUIRE(t.nodes.size() == 4);
  CHECK(t.nodes[0].name == "infra");
  CHECK(t.nodes[0].group == "infra");
  CHECK(t.nodes[0].index == 1);
  CHECK(t.nodes[0].roles == std::vector<std::string>{"infra"});
  CHECK(t.nodes[1].name == "swarm-1");
  CHECK(t.nodes[2].name == "swarm-2");
  CHECK(t.nodes[3].name == "swarm-3");
  CHECK(t.nodes[3].group == "swarm");
  CHECK(t.nodes[3].index == 3);
  CHECK(t.nodes[3].labels.at("zone") == "a");

  REQUIRE(t.addons.size() == 2);
  CHECK(t.addons[0].name == "haproxy");
  CHECK(t.addons[0].plugin == "haproxy");
  CHECK(t.addons[0].placement.roles == std::vector<std::string>{"swarm"});
  CHECK(t.addons[0].options == flotilla::json{{"port", 8080}, {"mode", "http"}});
  CHECK(t.addons[0].option_pos.at("port").str() == "t.toml:23:1");
  CHECK(t.addons[0].option_pos.at("mode").str() == "t.toml:24:1");
  CHECK(t.addons[0].pos.str() == "t.toml:19:1");
  CHECK(t.addons[1].name == "etcd-main");
  CHECK(t.addons[1].plugin == "etcd");
  CHECK(t.addons[1].placement.nodes == std::vector<std::string>{"infra"});
  CHECK(t.addons[1].options == flotilla::json::object());

  REQUIRE(t.services.size() == 2);
  const auto& hello = t.services[0];
  CHECK(hello.name == "hello/v1");
  CHECK(hello.command == std::vector<std::string>{"flotilla-hello", "--listen", "{address}:{port}"});
  CHECK(hello.image == "sirile/node-test");
  CHECK(hello.replicas == 5);
  CHECK(hello.port == 8000);
  CHECK(hello.health == "/health");
  CHECK(hello.env == std::map<std::string, std::string>{{"GREETING", "hi"}});
  CHECK(hello.placement.roles == std::vector<std::string>{"swarm"});  // the default when a swarm role exists
  CHECK(hello.pos.str() == "t.toml:31:1");
  const auto& worker = t.services[1];
  CHECK(worker.command == std::vector<std::string>{"worker", "--queue", "jobs"});
  CHECK(worker.replicas == 0);
  CHECK(worker.port == 0);
  CHECK(worker.health.empty());  // no port, nothing to check
}

TEST_CASE("a minimal topology: defaults for count, runtime, placement and health", "[topology]") {
  const Topology t = parse_ok(R"([cluster]
name = "c"
driver = "local"
runtime = "docker"

[[nodes]]
name = "box"

[[services]]
name = "api"
image = "example/api"
port = 9000
)");
  CHECK(t.runtime == "docker");
  CHECK(t.driver_config == flotilla::json::object());
  CHECK(t.driver_pos.str() == "t.toml:3:10");  // no [driver.local]: where the driver was chosen
  REQUIRE(t.nodes.size() == 1);
  CHECK(t.nodes[0].name == "box");
  CHECK(t.groups[0].count == 1);
  const auto& api = t.services[0];
  CHECK(api.replicas == 1);
  CHECK(api.health == "/health");
  CHECK(api.placement.empty());  // no node has role swarm: every node
  CHECK(t.place(api.placement).size() == 1);
}

TEST_CASE("a group of count 0 makes no nodes, and other drivers' tables are kept out of the model", "[topology]") {
  const Topology t = parse_ok(R"([cluster]
name = "c"
driver = "local"

[driver.local]
cidr = "127.77.0.0/24"

[driver.aws]
region = "eu-north-1"
whatever = { nested = true }

[[nodes]]
name = "gpu"
count = 0
roles = ["gpu"]

[[nodes]]
name = "cpu"
count = 2
)");
  CHECK(t.groups.size() == 2);
  REQUIRE(t.nodes.size() == 2);
  CHECK(t.nodes[0].name == "cpu-1");
  CHECK(t.nodes[1].name == "cpu-2");
  CHECK_FALSE(t.driver_config.contains("region"));
}

TEST_CASE("malformed TOML reports toml++'s position", "[topology]") {
  const std::string message = parse_error("[cluster]\nname = \n");
  CHECK_THAT(message, StartsWith("t.toml:2:"));
  CHECK_THAT(message, Contains("invalid TOML"));
  CHECK(lines_of(message).size() == 1);

  const std::string redefined = parse_error("[cluster]\nname = \"a\"\nname = \"b\"\n");
  CHECK_THAT(redefined, StartsWith("t.toml:3:"));
}

TEST_CASE("the file name in messages is the one given, relative or not", "[topology]") {
  auto result = parse_topology("[cluster]\nname = \"x\"\n", "configs/x.toml");
  REQUIRE_FALSE(result);
  CHECK_THAT(result.error().message, StartsWith("configs/x.toml:1:1: missing required key \"driver\" in [cluster]"));
}

TEST_CASE("unknown keys are errors at every engine-owned level, with did-you-mean", "[topology]") {
  SECTION("top level") {
    const std::string message = parse_error(kBase + "\n[[service]]\nname = \"x\"\n");
    CHECK(message == "t.toml:18:3: unknown key \"service\" in the top level of the topology; did you mean \"services\"?");
  }
  SECTION("cluster") {
    const std::string message = parse_error("[cluster]\nname = \"a\"\ndriver = \"local\"\ndrivr = \"x\"\n");
    CHECK(message == "t.toml:4:1: unknown key \"drivr\" in [cluster]; did you mean \"driver\"?");
  }
  SECTION("nodes") {
    const std::string message = parse_error(kBase + "cuont = 2\n");
    CHECK(message == "t.toml:17:1: unknown key \"cuont\" in [[nodes]]; did you mean \"count\"?");
  }
  SECTION("addons") {
    const std::string message = parse_error(kBase + "\n[[addons]]\nplugin = \"haproxy\"\noption = { port = 1 }\n");
    CHECK(message == "t.toml:20:1: unknown key \"option\" in [[addons]]; did you mean \"options\"?");
  }
  SECTION("services, as in the reference") {
    const std::string message =
        parse_error(kBase + "\n[[services]]\nname = \"web\"\nimage = \"nginx\"\nreplica = 2\n");
    CHECK(message == "t.toml:21:1: unknown key \"replica\" in [[services]]; did you mean \"replicas\"?");
  }
  SECTION("no close key: the known keys are listed") {
    const std::string message = parse_error(kBase + "\n[[services]]\nname = \"web\"\nimage = \"nginx\"\nzzzzzz = 2\n");
    CHECK_THAT(message, StartsWith("t.toml:21:1: unknown key \"zzzzzz\" in [[services]]; remove it (known keys: name, command,"));
  }
  SECTION("a sub-table of an engine table") {
    const std::string message = parse_error("[cluster]\nname = \"a\"\ndriver = \"local\"\n[cluster.extra]\nx = 1\n");
    CHECK_THAT(message, StartsWith("t.toml:4:"));
    CHECK_THAT(message, Contains("unknown key \"extra\" in [cluster]"));
  }
  SECTION("the contents of [driver.X] and [addons.options] are left to the plugin's schema") {
    const Topology t = parse_ok(kBase + R"(
[[addons]]
plugin = "haproxy"
[addons.options]
prot = 8080
)");
    CHECK(t.addons[0].options.contains("prot"));
    const Topology d = parse_ok(R"([cluster]
name = "a"
driver = "local"
[driver.local]
cidrr = "x"
)");
    CHECK(d.driver_config.contains("cidrr"));
  }
}

TEST_CASE("wrong types are errors at the value, saying what to write", "[topology]") {
  SECTION("count as a string") {
    const std::string m = parse_error("[cluster]\nname = \"a\"\ndriver = \"local\"\n[[nodes]]\nname = \"n\"\ncount = \"3\"\n");
    CHECK(m == "t.toml:6:9: key \"count\" in node group \"n\" must be an integer, not a string; write it like count = 3");
  }
  SECTION("replicas as a float") {
    const std::string m = parse_error(kBase + "\n[[services]]\nname = \"web\"\nimage = \"nginx\"\nreplicas = 2.5\n");
    CHECK(m == "t.toml:21:12: key \"replicas\" in service \"web\" must be an integer, not a float; write it like replicas = 3");
  }
  SECTION("roles as a string") {
    const std::string m = parse_error("[cluster]\nname = \"a\"\ndriver = \"local\"\n[[nodes]]\nname = \"n\"\nroles = \"swarm\"\n");
    CHECK_THAT(m, StartsWith("t.toml:6:9: key \"roles\" in node group \"n\" must be an array of strings, not a string"));
  }
  SECTION("an entry of a list") {
    const std::string m = parse_error("[cluster]\nname = \"a\"\ndriver = \"local\"\n[[nodes]]\nname = \"n\"\nroles = [\"a\", 2]\n");
    CHECK_THAT(m, StartsWith("t.toml:6:15: entries of \"roles\" in node group \"n\" must be strings, not an integer"));
  }
  SECTION("a label value") {
    const std::string m = parse_error("[cluster]\nname = \"a\"\ndriver = \"local\"\n[[nodes]]\nname = \"n\"\nlabels = { rack = 3 }\n");
    CHECK(m == "t.toml:6:19: labels \"rack\" in node group \"n\" must be a string, not an integer; put the value in quotes");
  }
  SECTION("an env value and an env name") {
    const std::string m = parse_error(kBase + "\n[[services]]\nname = \"web\"\nimage = \"nginx\"\nenv = { PORT = 80, 1X = \"a\" }\n");
    const auto lines = lines_of(m);
    REQUIRE(lines.size() == 2);
    CHECK_THAT(m, Contains("t.toml:21:16: env \"PORT\" in service \"web\" must be a string, not an integer"));
    CHECK_THAT(m, Contains("t.toml:21:20: env key \"1X\" in service \"web\" is not valid"));
  }
  SECTION("command as a number") {
    const std::string m = parse_error(kBase + "\n[[services]]\nname = \"web\"\ncommand = 5\n");
    CHECK_THAT(m, StartsWith("t.toml:20:11: key \"command\" in service \"web\" must be an array of strings, not an integer"));
  }
  SECTION("addon options not a table") {
    const std::string m = parse_error(kBase + "\n[[addons]]\nplugin = \"x\"\noptions = 3\n");
    CHECK_THAT(m, StartsWith("t.toml:20:11: key \"options\" in addon \"x\" must be a table, not an integer"));
  }
  SECTION("cluster as a string") {
    const std::string m = parse_error("cluster = \"local\"\n");
    CHECK_THAT(m, StartsWith("t.toml:1:1: \"cluster\" must be a table, not a string"));
  }
  SECTION("[nodes] written with one bracket") {
    const std::string m = parse_error("[cluster]\nname = \"a\"\ndriver = \"local\"\n[nodes]\nname = \"n\"\n");
    CHECK_THAT(m, StartsWith("t.toml:4:2: \"nodes\" must be an array of tables, not a table; write each entry as [[nodes]] (two brackets)"));
  }
  SECTION("a driver option that is a date") {
    const std::string m = parse_error("[cluster]\nname = \"a\"\ndriver = \"local\"\n[driver.local]\nsince = 2024-01-01\n");
    CHECK_THAT(m, StartsWith("t.toml:5:9: option \"since\" in [driver.local] is a date"));
  }
  SECTION("a value under [driver] that is not a driver table") {
    const std::string m = parse_error("[cluster]\nname = \"a\"\ndriver = \"local\"\n[driver]\ncidr = \"x\"\n");
    CHECK_THAT(m, StartsWith("t.toml:5:1: \"cidr\" in [driver] must be a table of options of the driver \"cidr\""));
    CHECK_THAT(m, Contains("[driver.local]"));
  }
}

TEST_CASE("missing required keys are errors at their table", "[topology]") {
  SECTION("no [cluster]") {
    const std::string m = parse_error("[[nodes]]\nname = \"a\"\n");
    CHECK_THAT(m, StartsWith("t.toml:1:1: missing [cluster] table; add [cluster]"));
  }
  SECTION("an empty file") {
    CHECK_THAT(parse_error(""), StartsWith("t.toml:1:1: missing [cluster] table"));
  }
  SECTION("cluster name and driver") {
    const std::string m = parse_error("\n[cluster]\n");
    const auto lines = lines_of(m);
    REQUIRE(lines.size() == 2);
    CHECK(lines[0] == "t.toml:2:1: missing required key \"name\" in [cluster]; add name = \"local\"");
    CHECK(lines[1] == "t.toml:2:1: missing required key \"driver\" in [cluster]; add driver = \"local\"");
  }
  SECTION("node group name") {
    CHECK(parse_error(kBase + "\n[[nodes]]\ncount = 2\n") ==
          "t.toml:18:1: missing required key \"name\" in [[nodes]]; add name = \"swarm\"");
  }
  SECTION("addon plugin") {
    CHECK(parse_error(kBase + "\n[[addons]]\nname = \"lb\"\n") ==
          "t.toml:18:1: missing required key \"plugin\" in [[addons]]; add plugin = \"haproxy\"");
  }
  SECTION("service name") {
    CHECK(parse_error(kBase + "\n[[services]]\nimage = \"x\"\n") ==
          "t.toml:18:1: missing required key \"name\" in [[services]]; add name = \"hello/v1\"");
  }
  SECTION("service without command or image") {
    CHECK_THAT(parse_error(kBase + "\n[[services]]\nname = \"web\"\n"),
               StartsWith("t.toml:18:1: service \"web\" has neither command nor image"));
  }
  SECTION("an inline array of tables reports the inline table") {
    const std::string m = parse_error("services = [ { name = \"web\" } ]\n[cluster]\nname = \"a\"\ndriver = \"local\"\n");
    CHECK_THAT(m, StartsWith("t.toml:1:14: service \"web\" has neither command nor image"));
  }
}

TEST_CASE("names are checked: cluster, node groups, plugins, addons, roles", "[topology]") {
  SECTION("cluster name with capitals") {
    CHECK_THAT(parse_error("[cluster]\nname = \"Local\"\ndriver = \"local\"\n"),
               StartsWith("t.toml:2:8: cluster name \"Local\" is not valid; use lowercase letters, digits and '-'"));
  }
  SECTION("cluster name of 41 characters") {
    const std::string name(41, 'a');
    CHECK_THAT(parse_error("[cluster]\nname = \"" + name + "\"\ndriver = \"local\"\n"),
               Contains("at most 40 characters"));
    CHECK(parse_topology("[cluster]\nname = \"" + std::string(40, 'a') + "\"\ndriver = \"local\"\n", "t.toml"));
  }
  SECTION("driver plugin name") {
    CHECK_THAT(parse_error("[cluster]\nname = \"a\"\ndriver = \"../evil\"\n"),
               StartsWith("t.toml:3:10: driver plugin name \"../evil\" is not valid"));
  }
  SECTION("group name") {
    CHECK_THAT(parse_error(kBase + "\n[[nodes]]\nname = \"-bad\"\n"),
               StartsWith("t.toml:19:8: node group name \"-bad\" is not valid"));
  }
  SECTION("a group name too long for its node names") {
    CHECK_THAT(parse_error(kBase + "\n[[nodes]]\nname = \"" + std::string(60, 'n') + "\"\ncount = 100\n"),
               Contains("would be longer than 63 characters"));
  }
  SECTION("role name") {
    CHECK_THAT(parse_error(kBase + "\n[[nodes]]\nname = \"x\"\nroles = [\"Web Server\"]\n"),
               StartsWith("t.toml:20:10: role \"Web Server\" of node group \"x\" is not valid"));
  }
  SECTION("addon name") {
    CHECK_THAT(parse_error(kBase + "\n[[addons]]\nplugin = \"haproxy\"\nname = \"lb/1\"\n"),
               StartsWith("t.toml:20:8: addon name \"lb/1\" is not valid"));
  }
}

TEST_CASE("duplicate names are errors at the second definition", "[topology]") {
  SECTION("two groups of one name") {
    const std::string m = parse_error(kBase + "\n[[nodes]]\nname = \"infra\"\n");
    CHECK(m == "t.toml:19:8: node group \"infra\" is defined twice (first at t.toml:9:8); give each [[nodes]] group its "
               "own name, or raise count on one");
  }
  SECTION("a node made by expansion clashes with a group's name") {
    const std::string m = parse_error(kBase + "\n[[nodes]]\nname = \"swarm-2\"\n");
    CHECK_THAT(m, StartsWith("t.toml:19:8: node \"swarm-2\" of node group \"swarm-2\" clashes with node \"swarm-2\" of node "
                             "group \"swarm\" (t.toml:12:1)"));
    CHECK(lines_of(m).size() == 1);
  }
  SECTION("expansion clashes in the other order, reported once per pair of groups") {
    const std::string m = parse_error(R"([cluster]
name = "a"
driver = "local"
[[nodes]]
name = "web-1"
[[nodes]]
name = "web-2"
[[nodes]]
name = "web"
count = 3
)");
    const auto lines = lines_of(m);
    REQUIRE(lines.size() == 2);
    CHECK_THAT(lines[0], StartsWith("t.toml:9:8: node \"web-1\" of node group \"web\" clashes with node \"web-1\" of node group \"web-1\""));
    CHECK_THAT(lines[1], StartsWith("t.toml:9:8: node \"web-2\" of node group \"web\" clashes"));
  }
  SECTION("addons, also when the name defaults to the plugin") {
    const std::string m = parse_error(kBase + R"(
[[addons]]
plugin = "haproxy"

[[addons]]
plugin = "nginx"
name = "haproxy"
)");
    CHECK(m == "t.toml:23:8: addon name \"haproxy\" is already used by the addon at t.toml:19:10; give one of them a "
               "distinct name = \"...\"");
    const std::string implicit = parse_error(kBase + "\n[[addons]]\nplugin = \"haproxy\"\n\n[[addons]]\nplugin = \"haproxy\"\n");
    CHECK_THAT(implicit, StartsWith("t.toml:22:10: addon name \"haproxy\" is already used by the addon at t.toml:19:10"));
  }
  SECTION("services") {
    const std::string m = parse_error(kBase + R"(
[[services]]
name = "web"
image = "nginx"

[[services]]
name = "web"
image = "nginx"
)");
    CHECK(m == "t.toml:23:8: service \"web\" is defined twice (first at t.toml:19:8); remove one, or give it another name");
  }
  SECTION("services whose DNS names are equal") {
    const std::string m = parse_error(kBase + R"(
[[services]]
name = "hello/v1"
image = "x"

[[services]]
name = "hello_v1"
image = "x"
)");
    CHECK_THAT(m, StartsWith("t.toml:23:8: service \"hello_v1\" has the same DNS name \"hello-v1\" as service \"hello/v1\""));
  }
}

TEST_CASE("counts, replicas and ports are bounded", "[topology]") {
  const std::string head = "[cluster]\nname = \"a\"\ndriver = \"local\"\n[[nodes]]\nname = \"n\"\n";
  CHECK(parse_error(head + "count = -1\n") ==
        "t.toml:6:9: count of node group \"n\" is -1; it must be between 0 and 1000");
  CHECK_THAT(parse_error(head + "count = 1001\n"), Contains("is 1001; it must be between 0 and 1000"));
  CHECK(parse_topology(head + "count = 1000\n", "t.toml")->nodes.size() == 1000);

  const std::string svc = head + "[[services]]\nname = \"s\"\nimage = \"x\"\n";
  CHECK(parse_error(svc + "replicas = 1001\n") ==
        "t.toml:9:12: replicas of service \"s\" is 1001; it must be between 0 and 1000");
  CHECK_THAT(parse_error(svc + "replicas = -2\n"), Contains("replicas of service \"s\" is -2"));
  CHECK_THAT(parse_error(svc + "port = 0\n"),
             StartsWith("t.toml:9:8: port of service \"s\" is 0; it must be between 1 and 65535 (leave port out"));
  CHECK_THAT(parse_error(svc + "port = 65536\n"), Contains("is 65536; it must be between 1 and 65535"));
  CHECK(parse_topology(svc + "port = 65535\n", "t.toml"));
  SECTION("the ports of stacked instances must fit too") {
    const std::string m = parse_error(svc + "port = 65535\nreplicas = 3\n");
    CHECK_THAT(m, StartsWith("t.toml:9:8: service \"s\" needs ports 65535-65537 (3 instances on a node"));
  }
}

TEST_CASE("placements naming unknown roles or nodes are errors with a hint", "[topology]") {
  SECTION("a misspelled role") {
    const std::string m = parse_error(kBase + "\n[[services]]\nname = \"web\"\nimage = \"x\"\nroles = [\"swram\"]\n");
    CHECK(m == "t.toml:21:10: role \"swram\" in the placement of service \"web\" is not a role of any node group; did "
               "you mean \"swarm\"?");
  }
  SECTION("an unrelated role lists the roles") {
    const std::string m = parse_error(kBase + "\n[[addons]]\nplugin = \"x\"\nroles = [\"database\"]\n");
    CHECK(m == "t.toml:20:10: role \"database\" in the placement of addon \"x\" is not a role of any node group; the "
               "roles are infra, swarm");
  }
  SECTION("a misspelled node") {
    const std::string m = parse_error(kBase + "\n[[addons]]\nplugin = \"x\"\nnodes = [\"infra\", \"swarm-4\"]\n");
    CHECK_THAT(m, StartsWith("t.toml:20:19: node \"swarm-4\" in the placement of addon \"x\" does not exist; did you mean"));
  }
  SECTION("a group of count 1 makes no NAME-1 node") {
    const std::string m = parse_error(kBase + "\n[[services]]\nname = \"web\"\nimage = \"x\"\nnodes = [\"infra-1\"]\n");
    CHECK_THAT(m, Contains("node \"infra-1\" in the placement of service \"web\" does not exist; did you mean \"infra\"?"));
  }
  SECTION("roles only on empty groups: unreachable for replicas > 0") {
    const std::string text = kBase + R"(
[[nodes]]
name = "gpu"
count = 0
roles = ["gpu"]

[[services]]
name = "train"
image = "x"
roles = ["gpu"]
)";
    const std::string m = parse_error(text);
    CHECK_THAT(m, StartsWith("t.toml:26:1: unreachable placement: roles gpu of service \"train\" match no node"));
    CHECK_THAT(m, Contains("replicas = 1"));
    const Topology t = parse_ok(text + "replicas = 0\n");
    CHECK(t.place(t.services[0].placement).empty());
  }
  SECTION("the message points at the list that selects") {
    const std::string m = parse_error(kBase + "\n[[nodes]]\nname = \"gpu\"\ncount = 0\n" +
                                      "\n[[services]]\nname = \"s\"\nimage = \"x\"\nroles = []\nnodes = [\"infra\", \"gpu\"]\n");
    CHECK_THAT(m, Contains("node \"gpu\" in the placement of service \"s\" does not exist"));
    const std::string empty_roles = parse_error(kBase + "\n[[nodes]]\nname = \"gpu\"\ncount = 0\nroles = [\"gpu\"]\n" +
                                                "\n[[services]]\nname = \"s\"\nimage = \"x\"\nnodes = []\nroles = [\"gpu\"]\n");
    CHECK_THAT(empty_roles, StartsWith("t.toml:27:1: unreachable placement: roles gpu of service \"s\""));
  }
  SECTION("addon placements that match no node") {
    const std::string m = parse_error(kBase + "\n[[nodes]]\nname = \"gpu\"\ncount = 0\nroles = [\"gpu\"]\n" +
                                      "\n[[addons]]\nplugin = \"x\"\nroles = [\"gpu\"]\n");
    CHECK_THAT(m, StartsWith("t.toml:25:1: unreachable placement: roles gpu of addon \"x\" match no node"));
  }
  SECTION("replicas with no node at all") {
    const std::string m = parse_error("[cluster]\nname = \"a\"\ndriver = \"local\"\n[[services]]\nname = \"s\"\nimage = \"x\"\nreplicas = 2\n");
    CHECK_THAT(m, StartsWith("t.toml:7:12: service \"s\" has replicas = 2 but the topology has no node to place them on"));
    const std::string implicit = parse_error("[cluster]\nname = \"a\"\ndriver = \"local\"\n[[services]]\nname = \"s\"\nimage = \"x\"\n");
    CHECK_THAT(implicit, StartsWith("t.toml:4:1: service \"s\" has replicas = 1 but the topology has no node"));
    CHECK(parse_topology("[cluster]\nname = \"a\"\ndriver = \"local\"\n[[services]]\nname = \"s\"\nimage = \"x\"\nreplicas = 0\n",
                         "t.toml"));
  }
  SECTION("no group declares roles") {
    const std::string m = parse_error(
        "[cluster]\nname = \"a\"\ndriver = \"local\"\n[[nodes]]\nname = \"n\"\n[[addons]]\nplugin = \"x\"\nroles = [\"web\"]\n");
    CHECK_THAT(m, Contains("no [[nodes]] group has roles: add roles = [\"web\"] to one"));
  }
}

TEST_CASE("placement: roles and nodes combine, defaults follow the swarm role", "[topology]") {
  const Topology t = parse_ok(kBase + R"(
[[services]]
name = "a"
image = "x"
roles = ["infra"]
nodes = ["swarm-2"]

[[services]]
name = "b"
image = "x"
nodes = ["swarm-3", "swarm-1"]
)");
  auto names = [&](const flotilla::Placement& p) {
    std::vector<std::string> out;
    for (const auto* node : t.place(p)) out.push_back(node->name);
    return out;
  };
  CHECK(names(t.services[0].placement) == std::vector<std::string>{"infra", "swarm-2"});
  CHECK(names(t.services[1].placement) == std::vector<std::string>{"swarm-1", "swarm-3"});  // file order
  CHECK(names(flotilla::Placement{}) == std::vector<std::string>{"infra", "swarm-1", "swarm-2", "swarm-3"});
  CHECK(names(flotilla::Placement{{"swarm"}, {}}) == std::vector<std::string>{"swarm-1", "swarm-2", "swarm-3"});
  CHECK(names(flotilla::Placement{{"nope"}, {}}).empty());
}

TEST_CASE("explicitly empty roles and nodes mean the default placement", "[topology]") {
  const Topology t = parse_ok(kBase + "\n[[services]]\nname = \"s\"\nimage = \"x\"\nroles = []\nnodes = []\n" +
                              "\n[[addons]]\nplugin = \"x\"\nroles = []\n");
  CHECK(t.services[0].placement.roles == std::vector<std::string>{"swarm"});
  CHECK(t.services[0].placement.nodes.empty());
  CHECK(t.addons[0].placement.empty());
}

TEST_CASE("port clashes between services sharing nodes", "[topology]") {
  SECTION("same port on the same nodes") {
    const std::string m = parse_error(kBase + R"(
[[services]]
name = "a"
image = "x"
port = 8000

[[services]]
name = "b"
image = "x"
port = 8000
)");
    CHECK(m == "t.toml:26:8: ports 8000-8000 of service \"b\" clash with ports 8000-8000 of service \"a\" (t.toml:18:1) "
               "on node \"swarm-1\" and 2 more; choose port = 8001 or higher, or place the services on different nodes "
               "(instance k on a node uses port + k - 1)");
  }
  SECTION("stacked instances widen the range: 7 replicas on 3 nodes use 3 ports each") {
    const std::string text = kBase + R"(
[[services]]
name = "a"
image = "x"
port = 8000
replicas = 7

[[services]]
name = "b"
image = "x"
port = 8002
)";
    CHECK_THAT(parse_error(text), Contains("ports 8002-8002 of service \"b\" clash with ports 8000-8002 of service \"a\""));
    std::string moved = text;
    moved.replace(moved.find("port = 8002"), 11, "port = 8003");
    CHECK(parse_topology(moved, "t.toml"));
  }
  SECTION("disjoint node sets may share a port") {
    const Topology t = parse_ok(kBase + R"(
[[services]]
name = "a"
image = "x"
port = 8000
roles = ["infra"]

[[services]]
name = "b"
image = "x"
port = 8000
replicas = 9
)");
    CHECK(t.services.size() == 2);
  }
  SECTION("overlap on one node only") {
    const std::string m = parse_error(kBase + R"(
[[services]]
name = "a"
image = "x"
port = 8000
nodes = ["infra", "swarm-2"]

[[services]]
name = "b"
image = "x"
port = 8000
)");
    CHECK_THAT(m, Contains("on node \"swarm-2\";"));
  }
  SECTION("services without port or without replicas never clash") {
    CHECK(parse_topology(kBase + "\n[[services]]\nname = \"a\"\nimage = \"x\"\n\n[[services]]\nname = \"b\"\nimage = \"x\"\n",
                         "t.toml"));
    CHECK(parse_topology(kBase + "\n[[services]]\nname = \"a\"\nimage = \"x\"\nport = 80\n\n[[services]]\nname = \"b\"\n"
                                 "image = \"x\"\nport = 80\nreplicas = 0\n",
                         "t.toml"));
  }
}

TEST_CASE("health paths", "[topology]") {
  const std::string svc = kBase + "\n[[services]]\nname = \"web\"\nimage = \"x\"\nport = 80\n";
  CHECK(parse_ok(svc + "health = \"/ready/v1.json\"\n").services[0].health == "/ready/v1.json");
  CHECK(parse_ok(svc + "health = \"\"\n").services[0].health.empty());
  CHECK_THAT(parse_error(svc + "health = \"ready\"\n"),
             StartsWith("t.toml:22:10: health of service \"web\" is \"ready\", which is not a valid path"));
  CHECK_THAT(parse_error(svc + "health = \"/a b\"\n"), Contains("which is not a valid path"));
  CHECK_THAT(parse_error(svc + "health = \"/a?x=1;rm\"\n"), Contains("which is not a valid path"));
  CHECK_THAT(parse_error(kBase + "\n[[services]]\nname = \"web\"\nimage = \"x\"\nhealth = \"/h\"\n"),
             StartsWith("t.toml:21:10: health of service \"web\" needs a port to check"));
}

TEST_CASE("command placeholders are checked", "[topology]") {
  const std::string svc = kBase + "\n[[services]]\nname = \"web\"\nport = 80\n";
  const Topology t = parse_ok(svc + "command = [\"srv\", \"{address}:{port}\", \"--id={instance}@{node}\", \"{\\\"json\\\": 1}\"]\n");
  CHECK(t.services[0].command.size() == 4);
  CHECK(parse_error(svc + "command = \"srv --listen {adress}:{port}\"\n") ==
        "t.toml:21:11: command of service \"web\" uses the unknown placeholder {adress}; did you mean {address}?");
  CHECK_THAT(parse_error(kBase + "\n[[services]]\nname = \"web\"\ncommand = \"srv {port}\"\n"),
             Contains("uses {port} but the service has no port"));
  CHECK_THAT(parse_error(svc + "command = \"  \"\n"), Contains("command of service \"web\" is empty"));
  CHECK_THAT(parse_error(svc + "command = []\n"), Contains("command of service \"web\" is empty"));
}

TEST_CASE("check_service_name accepts only safe names", "[topology]") {
  for (const std::string good : {"hello/v1", "a", "a-b_c/d1", "0", "web2", "x/y/z"}) {
    INFO(good);
    CHECK(flotilla::check_service_name(good));
  }
  CHECK(flotilla::check_service_name(std::string(63, 'a')));
  for (const std::string bad : {"", "Hello", "hello//v1", "/hello", "hello/", "-a", "a--b", "a b", "a;rm -rf", "a\nb",
                                "../x", "a.b", "h\xc3\xa9llo", "{x}", "a\"b", "a'b", "a$b", "a`b`"}) {
    INFO(bad);
    auto result = flotilla::check_service_name(bad);
    REQUIRE_FALSE(result);
    CHECK_THAT(result.error().message, Contains("lowercase letters and digits"));
  }
  CHECK_FALSE(flotilla::check_service_name(std::string(64, 'a')));
  CHECK_THAT(flotilla::check_service_name(std::string(64, 'a')).error().message, Contains("64 characters long"));
  const std::string m = parse_error(kBase + "\n[[services]]\nname = \"web;reboot\"\nimage = \"x\"\n");
  CHECK_THAT(m, StartsWith("t.toml:19:8: service name \"web;reboot\" contains the character \";\""));
}

TEST_CASE("service_dns_label", "[topology]") {
  CHECK(flotilla::service_dns_label("hello/v1") == "hello-v1");
  CHECK(flotilla::service_dns_label("a_b/c-d") == "a-b-c-d");
  CHECK(flotilla::service_dns_label("web") == "web");
}

TEST_CASE("several errors come back together, sorted by line", "[topology]") {
  const std::string m = parse_error(R"([cluster]
name = "Bad Name"
driver = "local"

[[nodes]]
name = "n"
count = 5000

[[services]]
name = "web"
image = "x"
replica = 3
port = 99999
)");
  const auto lines = lines_of(m);
  REQUIRE(lines.size() == 4);
  CHECK_THAT(lines[0], StartsWith("t.toml:2:8: cluster name"));
  CHECK_THAT(lines[1], StartsWith("t.toml:7:9: count of node group \"n\""));
  CHECK_THAT(lines[2], StartsWith("t.toml:12:1: unknown key \"replica\""));
  CHECK_THAT(lines[3], StartsWith("t.toml:13:8: port of service \"web\""));
}

TEST_CASE("find_node and find_service", "[topology]") {
  const Topology t = parse_ok(R"([cluster]
name = "a"
driver = "local"
[[nodes]]
name = "web"
count = 3
[[nodes]]
name = "web-5"
[[nodes]]
name = "db"
[[services]]
name = "api"
image = "x"
)");
  for (const std::string name : {"web-1", "web-2", "web-3", "web-5", "db"}) {
    INFO(name);
    const auto* node = t.find_node(name);
    REQUIRE(node != nullptr);
    CHECK(node->name == name);
  }
  CHECK(t.find_node("web") == nullptr);
  CHECK(t.find_node("web-4") == nullptr);
  CHECK(t.find_node("web-0") == nullptr);
  CHECK(t.find_node("web-01") == nullptr);
  CHECK(t.find_node("db-1") == nullptr);
  CHECK(t.find_node("") == nullptr);
  REQUIRE(t.find_service("api") != nullptr);
  CHECK(t.find_service("api")->image == "x");
  CHECK(t.find_service("nope") == nullptr);

  SECTION("a model built by hand, without groups") {
    Topology manual;
    manual.nodes.push_back({"n1", "g", 1, {}, {}});
    manual.nodes.push_back({"n2", "g", 2, {"r"}, {}});
    REQUIRE(manual.find_node("n2") != nullptr);
    CHECK(manual.find_node("n2")->index == 2);
    CHECK(manual.place(flotilla::Placement{{"r"}, {}}).size() == 1);
  }
}

TEST_CASE("load_topology reads a file, and says so when it cannot", "[topology]") {
  TempDir dir;
  const auto file = dir.path / "cluster.toml";
  {
    std::ofstream out(file);
    out << kBase;
  }
  auto loaded = flotilla::load_topology(file);
  REQUIRE(loaded);
  CHECK(loaded->file == file);
  CHECK(loaded->nodes.size() == 4);

  {
    std::ofstream out(file);
    out << kBase << "bogus = 1\n";
  }
  auto bad = flotilla::load_topology(file);
  REQUIRE_FALSE(bad);
  CHECK_THAT(bad.error().message, StartsWith(file.string() + ":17:1: unknown key \"bogus\""));

  auto missing = flotilla::load_topology(dir.path / "nope.toml");
  REQUIRE_FALSE(missing);
  CHECK_THAT(missing.error().message, StartsWith((dir.path / "nope.toml").string() + ": the topology file does not exist"));
}

TEST_CASE("load_topology reads only a regular file of bounded size", "[topology][limits]") {
  TempDir dir;
  auto directory = flotilla::load_topology(dir.path);
  REQUIRE_FALSE(directory);
  CHECK_THAT(directory.error().message, StartsWith(dir.path.string() + " is a directory"));
  CHECK_THAT(directory.error().message, !Contains("[cluster]"));

  auto device = flotilla::load_topology("/dev/zero");  // would be read forever
  REQUIRE_FALSE(device);
  CHECK_THAT(device.error().message, StartsWith("/dev/zero is not a regular file"));

  const auto big = dir.path / "big.toml";
  std::ofstream(big) << kBase;
  std::filesystem::resize_file(big, flotilla::kMaxTopologyBytes + 1);
  auto large = flotilla::load_topology(big);
  REQUIRE_FALSE(large);
  CHECK_THAT(large.error().message, StartsWith(big.string() + " is larger than 4 MiB"));

  std::filesystem::resize_file(big, flotilla::kMaxTopologyBytes);  // the limit itself is allowed
  auto at_limit = flotilla::load_topology(big);
  REQUIRE_FALSE(at_limit);  // NUL bytes are no TOML, but the file was read and parsed
  CHECK_THAT(at_limit.error().message, Contains("invalid TOML"));
}

TEST_CASE("nesting deeper than the limit is refused before toml++ parses, at its line", "[topology][limits]") {
  const auto chain = [](std::size_t n) {
    std::string out = "a";
    for (std::size_t i = 1; i < n; ++i) out += ".a";
    return out;
  };
  const std::string limit = std::to_string(flotilla::kMaxNesting) + " levels";
  SECTION("table headers") {
    const std::string message = parse_error(kBase + "[" + chain(40000) + "]\n");
    CHECK_THAT(message, StartsWith("t.toml:17:"));
    CHECK_THAT(message, Contains(limit));
    CHECK(lines_of(message).size() == 1);
    CHECK_THAT(parse_error(kBase + "[[" + chain(40000) + "]]\n"), StartsWith("t.toml:17:"));
  }
  SECTION("dotted keys in driver and addon options") {
    CHECK_THAT(parse_error(kBase.substr(0, kBase.find("[[nodes]]")) + chain(20000) + " = 1\n"), StartsWith("t.toml:8:"));
    const std::string addon = kBase + "[[addons]]\nplugin = \"haproxy\"\n[addons.options]\n" + chain(20000) + " = 1\n";
    CHECK_THAT(parse_error(addon), StartsWith("t.toml:20:"));
  }
  SECTION("arrays and inline tables") {
    CHECK_THAT(parse_error(kBase + "x = " + std::string(40000, '[') + std::string(40000, ']') + "\n"), StartsWith("t.toml:17:"));
    std::string tables;
    for (int i = 0; i < 300; ++i) tables += "{ a.b = ";
    tables += "1" + std::string(300, '}');
    CHECK_THAT(parse_error(kBase + "x = " + tables + "\n"), StartsWith("t.toml:17:"));
  }
  SECTION("options nested within the limit still reach the plugin") {
    const Topology t = parse_ok(kBase + "[[addons]]\nplugin = \"haproxy\"\n[addons.options]\n" + chain(40) + " = [[1, { b.c = 2 }]]\n");
    json value = t.addons.at(0).options;
    for (int i = 0; i < 40; ++i) value = json(value.at("a"));
    CHECK(value == json::parse(R"([[1, {"b": {"c": 2}}]])"));
  }
}

TEST_CASE("the nesting scan skips strings and comments and counts each level", "[topology][limits]") {
  using flotilla::toml_too_deep;
  CHECK_FALSE(toml_too_deep("a.b.c = 1\n", 3));
  auto deep = toml_too_deep("x = 1\na.b.c.d = 1\n", 3);
  REQUIRE(deep);
  CHECK(deep->line == 2);
  CHECK(deep->column == 6);
  CHECK(toml_too_deep("[a.b]\nc.d = 1\n", 3));
  CHECK_FALSE(toml_too_deep("[a.b]\nc = 1\n", 3));
  CHECK(toml_too_deep("[a.b]\nc = [1]\n", 3));
  const std::string brackets(100, '[');
  CHECK_FALSE(toml_too_deep("k = \"" + brackets + " a.b.c.d.e\\\" [[[\"\n", 3));
  CHECK_FALSE(toml_too_deep("k = '" + brackets + "'\n", 3));
  CHECK_FALSE(toml_too_deep("# " + brackets + " a.b.c.d.e\n", 3));
  CHECK_FALSE(toml_too_deep("k = \"\"\"\n[a.b.c.d.e]\n" + brackets + "\"\"\"\n", 3));
  CHECK_FALSE(toml_too_deep("k = '''\n[a.b.c.d.e]\n'''\n", 3));
  CHECK_FALSE(toml_too_deep("k = [\n  1,\n  2.5,\n]\nv = 1.5\n", 3));
  CHECK_FALSE(toml_too_deep("k = [{ a = 1 }, { b = 2 }, { c = 3 }]\n", 3));
  CHECK(toml_too_deep("k = [[[[1]]]]\n", 3));
  CHECK_FALSE(flotilla::json_too_deep(R"({"a": [1, {"b": "[[[[[[[[[[\"{{{{"}]})", 3));
  auto json_deep = flotilla::json_too_deep("{\n\"a\": [[[1]]]}", 3);
  REQUIRE(json_deep);
  CHECK(json_deep->line == 2);
  CHECK(json_deep->column == 8);
}

TEST_CASE("names and roles have a length limit, and a long one is shown cut", "[topology][limits]") {
  const std::string r63(63, 'r'), r64(64, 'r');
  const Topology ok = parse_ok(kBase + "[[nodes]]\nname = \"" + std::string(63, 'g') + "\"\nroles = [\"" + r63 + "\"]\n");
  CHECK(ok.nodes.back().roles == std::vector<std::string>{r63});

  const std::string role = parse_error(kBase + "[[nodes]]\nname = \"x\"\nroles = [\"" + r64 + "\"]\n");
  CHECK_THAT(role, StartsWith("t.toml:19:10: role"));
  CHECK_THAT(role, Contains("at most 63 characters"));
  CHECK_THAT(parse_error(kBase + "[[nodes]]\nname = \"" + std::string(64, 'g') + "\"\n"), Contains("at most 63 characters"));

  const std::string huge(20000, 'q');
  const std::string placed = parse_error(kBase + "[[services]]\nname = \"s\"\nimage = \"i\"\nroles = [\"" + huge + "\"]\n");
  CHECK_THAT(placed, Contains("roles are at most 63 characters"));
  CHECK_THAT(placed, Contains("(20000 characters)"));
  CHECK(placed.size() < 400);
}

TEST_CASE("a large topology loads quickly enough to plan", "[topology]") {
  std::string text = "[cluster]\nname = \"big\"\ndriver = \"local\"\n";
  for (int g = 0; g < 10; ++g) {
    text += "[[nodes]]\nname = \"g" + std::to_string(g) + "\"\ncount = 1000\nroles = [\"swarm\"]\n";
  }
  text += "[[services]]\nname = \"web\"\nimage = \"x\"\nport = 8000\nreplicas = 1000\n";
  text += "[[services]]\nname = \"api\"\nimage = \"x\"\nport = 8001\nreplicas = 1000\n";
  const Topology t = parse_ok(text);
  REQUIRE(t.nodes.size() == 10000);
  CHECK(t.find_node("g9-1000") == &t.nodes.back());
  CHECK(t.place(t.services[0].placement).size() == 10000);
}

// Every complete example in the user reference and every shipped config must load.
TEST_CASE("the topology reference's examples and the shipped configs load", "[topology]") {
  const std::filesystem::path source = FLOTILLA_SOURCE_DIR;
  std::ifstream doc(source / "docs" / "topology.md");
  REQUIRE(doc);
  std::vector<std::string> examples;
  std::string line;
  std::string block;
  bool in_toml = false;
  while (std::getline(doc, line)) {
    if (!in_toml && line == "```toml") {
      in_toml = true;
      block.clear();
    } else if (in_toml && line == "```") {
      in_toml = false;
      if (block.find("[cluster]") != std::string::npos) examples.push_back(block);
    } else if (in_toml) {
      block += line + "\n";
    }
  }
  REQUIRE_FALSE(examples.empty());
  for (const auto& example : examples) {
    auto result = parse_topology(example, "docs/topology.md");
    INFO(example);
    INFO((result ? std::string() : result.error().message));
    CHECK(result);
  }
  // The shipped configs are part of the tree: their absence is a failure, not a skip.
  REQUIRE(std::filesystem::is_directory(source / "configs"));
  int configs = 0;
  for (const auto& entry : std::filesystem::directory_iterator(source / "configs")) {
    if (entry.path().extension() != ".toml") continue;
    ++configs;
    auto result = flotilla::load_topology(entry.path());
    INFO(entry.path().string());
    INFO((result ? std::string() : result.error().message));
    CHECK(result);
  }
  CHECK(configs >= 1);
}

TEST_CASE("mode = \"swarm\" makes a service the swarm addon's, and its mistakes are named where they are", "[topology]") {
  const std::string swarm_addon = "[[addons]]\nplugin = \"swarm\"\n\n";
  const Topology t = parse_ok(kBase + swarm_addon + "[[services]]\nname = \"web\"\nimage = \"x\"\nport = 8000\nreplicas = 9\nmode = \"swarm\"\n");
  REQUIRE(t.services.size() == 1);
  CHECK(t.services[0].swarm_mode);
  CHECK(t.services[0].replicas == 9);
  CHECK_FALSE(parse_ok(kBase + "[[services]]\nname = \"web\"\nimage = \"x\"\nmode = \"flotilla\"\n").services[0].swarm_mode);

  using Catch::Contains;
  CHECK_THAT(parse_error(kBase + swarm_addon + "[[services]]\nname = \"web\"\nimage = \"x\"\nmode = \"mesh\"\n"),
             Contains("t.toml:23:8: mode of service \"web\" is \"mesh\"") && Contains("\"swarm\""));
  CHECK_THAT(parse_error(kBase + swarm_addon + "[[services]]\nname = \"web\"\ncommand = \"web\"\nmode = \"swarm\"\n"),
             Contains("t.toml:23:8: service \"web\" has mode = \"swarm\" but no image"));
  CHECK_THAT(parse_error(kBase + swarm_addon + "[[services]]\nname = \"web\"\nimage = \"x\"\nroles = [\"swarm\"]\nmode = \"swarm\"\n"),
             Contains("t.toml:23:") && Contains("remove roles and nodes here and set the placement on the swarm addon"));
  CHECK_THAT(parse_error(kBase + "[[services]]\nname = \"web\"\nimage = \"x\"\nmode = \"swarm\"\n"),
             Contains("t.toml:20:8: service \"web\" has mode = \"swarm\" but the topology has no swarm addon") &&
                 Contains("plugin = \"swarm\""));
}

TEST_CASE("[services.update] sets the rollout strategy, with defaults that keep the service serving, and names its mistakes",
          "[topology][rollout]") {
  const std::string svc = "[[services]]\nname = \"web\"\ncommand = \"web\"\n";
  const flotilla::UpdateStrategy d = parse_ok(kBase + svc).services[0].update;
  CHECK(d.max_parallel == 1);
  CHECK(d.min_healthy_time == std::chrono::seconds(1));
  CHECK(d.healthy_deadline == std::chrono::seconds(0));
  CHECK(d.auto_revert);
  const flotilla::UpdateStrategy u =
      parse_ok(kBase + svc + "[services.update]\nmax_parallel = 3\nmin_healthy_time = \"0s\"\nhealthy_deadline = \"2m\"\nauto_revert = false\n")
          .services[0]
          .update;
  CHECK(u.max_parallel == 3);
  CHECK(u.min_healthy_time == std::chrono::seconds(0));
  CHECK(u.healthy_deadline == std::chrono::seconds(120));
  CHECK_FALSE(u.auto_revert);
  CHECK(parse_ok(kBase + "[[services]]\nname = \"web\"\ncommand = \"web\"\nupdate = { max_parallel = 2 }\n").services[0].update.max_parallel == 2);

  using Catch::Contains;
  CHECK_THAT(parse_error(kBase + svc + "[services.update]\nmax_parallel = 0\n"),
             Contains("t.toml:21:16: max_parallel of service \"web\" is 0; it must be between 1 and 1000"));
  CHECK_THAT(parse_error(kBase + svc + "[services.update]\nmin_healthy_time = \"ten\"\n"),
             Contains("t.toml:21:20: min_healthy_time of service \"web\": invalid duration `ten`"));
  CHECK_THAT(parse_error(kBase + svc + "[services.update]\nhealthy_deadline = \"0s\"\n"),
             Contains("healthy_deadline of service \"web\" must be longer than 0s"));
  CHECK_THAT(parse_error(kBase + svc + "[services.update]\nauto_revert = \"yes\"\n"),
             Contains("t.toml:21:15: key \"auto_revert\" in [services.update] of service \"web\" must be true or false"));
  CHECK_THAT(parse_error(kBase + svc + "[services.update]\nmax_paralel = 2\n"), Contains("did you mean \"max_parallel\"?"));
  CHECK_THAT(parse_error(kBase + svc + "update = 3\n"), Contains("key \"update\" in service \"web\" must be a table"));
}

TEST_CASE("[services.update] canary is a count of instances, 0 for none", "[topology][rollout]") {
  const std::string svc = "[[services]]\nname = \"web\"\ncommand = \"web\"\n";
  CHECK(parse_ok(kBase + svc).services[0].update.canary == 0);
  CHECK(parse_ok(kBase + svc + "[services.update]\ncanary = 2\n").services[0].update.canary == 2);
  CHECK_THAT(parse_error(kBase + svc + "[services.update]\ncanary = -1\n"),
             Catch::Contains("t.toml:21:10: canary of service \"web\" is -1; it must be between 0 and 1000"));
}
