// The containers of the elk addon, checked at their contract on real dockerds of the Docker lab.
// The images of Elasticsearch, Logstash, Kibana and logspout cannot be pulled here (no network),
// so each lab dockerd gets stand-ins tagged with the addon's default references: the lab's
// busybox with an entrypoint that plays the part. What is checked is what Flotilla asks of the
// daemons and of the network, against what those images document:
//
//   Elasticsearch, "Install Elasticsearch with Docker" (elastic.co/guide/en/elasticsearch/
//   reference/8.15/docker.html): `-e "discovery.type=single-node"`, settings as environment
//   variables (xpack.security.enabled=false), the heap through ES_JAVA_OPTS ("-Xms1g -Xmx1g"),
//   port 9200; health from GET /_cluster/health ("status": green, yellow or red).
//   Logstash, "Configuring Logstash for Docker" (elastic.co/guide/en/logstash/8.15/
//   docker-config.html): pipeline files, settings from environment variables (API_HTTP_HOST is
//   api.http.host, LS_JAVA_OPTS the heap); the image's entrypoint runs logstash with the
//   command's flags (-f FILE); the monitoring API on 9600 (GET /_node/pipelines).
//   Kibana, "Install Kibana with Docker" (elastic.co/guide/en/kibana/8.15/docker.html):
//   `-e ELASTICSEARCH_HOSTS=http://es:9200`, port 5601.
//   logspout, README.md of github.com/gliderlabs/logspout (v3.2.14): `docker run
//   --volume=/var/run/docker.sock:/var/run/docker.sock gliderlabs/logspout syslog+tcp://HOST:PORT`,
//   SYSLOG_FORMAT=rfc3164, SYSLOG_HOSTNAME, and LOGSPOUT=ignore to leave a container out.
//
// The stand-ins: Elasticsearch serves /_cluster/health, "red" for its first 3 s, then "green";
// Logstash and Kibana ask that health when they start and keep the answer (so the order is
// checked by what they saw), Logstash serves its pipeline file and /_node/pipelines on 9600 and
// appends whatever arrives on 5000 to a file it serves too; logspout sends one RFC 3164 line to
// the route its command names, saying whether /var/run/docker.sock is a socket. Never run
// here: the Elastic programs and logspout themselves (reading the Docker socket, parsing syslog,
// indexing, Kibana's UI).
#include "addon_elk/elk_model.hpp"
#include "flotilla/support/docker_client.hpp"
#include "flotilla/support/http.hpp"
#include "flotilla/support/wait.hpp"
#include "support/docker_addon_host.hpp"
#include "support/skip.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <optional>

namespace {

namespace s = flotilla::support;
namespace elk = flotilla::addons::elk;
using flotilla::test::addon_containers;
using flotilla::test::call_ok;
using flotilla::test::DockerAddonHost;
using flotilla::test::DockerLab;
using flotilla::test::get_body;
using flotilla::test::StandIn;
using flotilla::test::StandInImages;
using nlohmann::json;
using namespace std::chrono_literals;

/// The Elasticsearch stand-in for the "never healthy" case; not a real reference on purpose.
constexpr const char* kRedElasticsearch = "flotilla-elk-test/elasticsearch:red";

std::vector<StandIn> stand_ins() {
  const elk::Options o;
  return {
      {o.elasticsearch_image,
       "mkdir -p /w/_cluster; echo '{\"cluster_name\":\"docker-cluster\",\"status\":\"red\"}' > /w/_cluster/health; "
       "(sleep 3; echo '{\"cluster_name\":\"docker-cluster\",\"status\":\"green\"}' > /w/_cluster/health) & "
       "trap 'exit 0' TERM; httpd -f -p 9200 -h /w & wait",
       9200},
      {kRedElasticsearch,
       "mkdir -p /w/_cluster; echo '{\"status\":\"red\"}' > /w/_cluster/health; trap 'exit 0' TERM; httpd -f -p 9200 -h /w & wait", 9200},
      // Called as `logstash -f FILE`: $1 is -f, $2 the pipeline.
      {o.logstash_image,
       "mkdir -p /w/_node; cat \"$2\" > /w/pipeline.conf; "
       "es=$(busybox sed -n 's/.*hosts => \\[\"\\(.*\\)\"\\]/\\1/p' \"$2\"); "
       "hp=${es#http://}; printf 'GET /_cluster/health HTTP/1.0\\r\\n\\r\\n' | nc -w 5 ${hp%:*} ${hp##*:} > /w/es-health-at-start "
       "|| echo unreachable > /w/es-health-at-start; "
       ": > /w/received; nc -ll -p 5000 -e /bin/sh -c 'cat >> /w/received' & "
       "echo '{\"pipelines\":{\"main\":{}}}' > /w/_node/pipelines; trap 'exit 0' TERM; httpd -f -p 9600 -h /w & wait",
       9600},
      {o.kibana_image,
       "mkdir -p /w/api; echo '{\"status\":{\"overall\":{\"level\":\"available\"}}}' > /w/api/status; "
       "hp=${ELASTICSEARCH_HOSTS#http://}; printf 'GET /_cluster/health HTTP/1.0\\r\\n\\r\\n' | nc -w 5 ${hp%:*} ${hp##*:} > /w/es-health-at-start "
       "|| echo unreachable > /w/es-health-at-start; "
       "trap 'exit 0' TERM; httpd -f -p 5601 -h /w & wait",
       5601},
      // Called with the route as $1.
      {o.logspout_image,
       "hp=${1#*://}; host=${hp%:*}; port=${hp##*:}; if [ -S /var/run/docker.sock ]; then sock=socket; else sock=missing; fi; "
       "line=\"<14>Dec  1 00:00:00 $SYSLOG_HOSTNAME logspout-stand-in: route=$1 docker.sock=$sock format=$SYSLOG_FORMAT ignore=$LOGSPOUT\"; "
       "n=0; until echo \"$line\" | nc -w 3 $host $port; do n=$((n+1)); [ $n -gt 30 ] && exit 1; sleep 1; done; trap 'exit 0' TERM; sleep 100000 & wait",
       80},
  };
}

/// The env of an inspected container as a map.
std::map<std::string, std::string> env_of(const json& c) {
  std::map<std::string, std::string> out;
  for (const auto& e : c["Config"].value("Env", json::array())) {
    const std::string var = e.get<std::string>();
    const auto eq = var.find('=');
    out[var.substr(0, eq)] = eq == std::string::npos ? "" : var.substr(eq + 1);
  }
  return out;
}

void check_common(const json& c, const std::string& reference, const std::string& node_name, const std::string& workload) {
  CHECK(c["Config"]["Image"] == reference);
  CHECK(c["State"]["Running"] == true);
  CHECK(c["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped");
  const json labels = c["Config"]["Labels"];
  CHECK(labels["io.flotilla.managed"] == "true");
  CHECK(labels["io.flotilla.node"] == node_name);
  CHECK(labels["io.flotilla.workload"] == workload);
  CHECK(labels["io.flotilla.component"] == "addon:elk");
}

json binding(const std::string& address, int port) { return json::array({json{{"HostIp", address}, {"HostPort", std::to_string(port)}}}); }

/// What every apply here runs on: infra and two swarm nodes, every one a Docker node of the lab,
/// with the stand-ins tagged, and the host serving the addon's runtime operations.
struct Bench {
  explicit Bench(const DockerLab& lab)
      : nodes(lab_nodes(lab)),
        images(lab, stand_ins()),
        infra(lab.nodes()[0]),
        docker({.node = infra.name, .host = infra.host}),
        dir((std::filesystem::temp_directory_path() / ("flotilla-elk-contract-" + std::to_string(::getpid()))).string()),
        host("addon_elk", "elk", nodes) {}

  static json lab_nodes(const DockerLab& lab) {
    json out = DockerAddonHost::lab_nodes(lab, {"infra", "swarm", "swarm"}, "lab");
    for (auto& n : out) n["runtime_config"]["files_image"] = DockerLab::kImage;
    // As the netns driver does for its nodes: containers on a node's Docker bridge reach the
    // other nodes under their node's address (the rule lives and goes with the lab's namespace).
    for (const auto& node : lab.nodes()) flotilla::netns::ensure_masquerade(node.net.netns, flotilla::netns::docker_bridge(node.dockerd));
    return out;
  }

  json nodes;
  const StandInImages images;
  const flotilla::test::LabNode& infra;
  s::DockerClient docker;
  std::string dir;
  DockerAddonHost host;
};

/// What the full-stack scenario saw at each step. It runs once per process (full_stack below):
/// its applies take most of this test's time, and each aspect is then checked in a SECTION of
/// its own from what was recorded here, so a failure names the aspect.
struct FullStack {
  /// How far the scenario got: each step's observations are there once it is reached.
  enum Step { kNone, kFirstApply, kNodeJoined, kUnchangedApply, kRolesNarrowed, kDestroyed };
  Step reached = kNone;
  std::string failed;  // the step that failed and why, or ""
  std::string prefix;  // of the addon's workload names
  std::vector<std::string> node_names;  // as the addon sees the lab's nodes, in their order

  // First apply, with infra and swarm-1 only, in stages.
  std::vector<std::string> after_es_stage;  // the addon's containers on infra after the stage "elasticsearch"
  json stage_outputs;                       // what each stage returned
  json first;
  std::vector<std::string> swarm2_after_first;  // the addon's containers on swarm-2
  std::optional<json> es, ls, kb;               // inspected
  std::string pipeline_conf;                    // as the Logstash stand-in read it
  std::string ls_health_at_start, kb_health_at_start;
  // Second apply, swarm-2 in the cluster.
  json second;
  std::string ls_id_after_join;
  std::vector<std::optional<json>> logspout;  // inspected, per lab node
  std::string received;                       // by the Logstash stand-in's syslog input
  bool received_all = false;
  // Third apply, nothing changed.
  json third;
  std::string es_id_after_rerun, kb_id_after_rerun;
  // Fourth apply, logspout_roles = ["swarm"].
  std::vector<std::string> infra_after_narrowing;
  // Destroy.
  std::vector<std::vector<std::string>> after_destroy;  // the addon's containers, per lab node
  json state_after_destroy;

  [[nodiscard]] std::string workload(const std::string& name) const { return prefix + name; }
};

std::string id_of(const std::optional<json>& c) { return c ? (*c)["Id"].get<std::string>() : std::string("(no container)"); }

/// The full stack: apply with infra and swarm-1, apply again after swarm-2 joined, apply
/// unchanged, apply with logspout_roles = ["swarm"], destroy. Asserts nothing; records.
FullStack run_full_stack(const DockerLab& lab) {
  Bench b(lab);
  FullStack run;
  run.prefix = b.host.prefix();
  for (const auto& n : b.nodes) run.node_names.push_back(n["name"].get<std::string>());
  auto call = [&](const std::string& op, const json& req, const char* step) -> std::optional<json> {
    auto [st, out] = b.host.call(op, req);
    if (st == FLT_OK) return json::parse(out);
    run.failed = std::string(step) + ": " + op + " returned status " + std::to_string(st) + ": " + out;
    return std::nullopt;
  };
  const std::string ls_url = "http://" + b.infra.address + ":9600";

  const json req = b.host.request(json::object(), {"infra"}, b.dir);
  json two = req;
  two["nodes"].erase(2);
  // As the engine runs it: each stage in the manifest's order, then the whole apply, told what
  // the stages reported.
  json stages = json::object();
  for (const char* stage : {"elasticsearch", "logstash", "kibana"}) {
    json staged = two;
    staged["stage"] = stage;
    const auto done = call("apply", staged, "a stage of the first apply");
    if (!done) return run;
    stages[stage] = done->value("outputs", json::object());
    if (stage == std::string("elasticsearch")) run.after_es_stage = addon_containers(b.infra, "elk");
  }
  run.stage_outputs = stages;
  json whole = two;
  whole["stages"] = stages;
  auto out = call("apply", whole, "the first apply (infra and swarm-1)");
  if (!out) return run;
  run.first = *out;
  run.swarm2_after_first = addon_containers(lab.nodes()[2], "elk");
  run.es = b.docker.inspect_container(b.host.workload_name("elasticsearch"));
  run.ls = b.docker.inspect_container(b.host.workload_name("logstash"));
  run.kb = b.docker.inspect_container(b.host.workload_name("kibana"));
  run.pipeline_conf = get_body(ls_url + "/pipeline.conf");
  run.ls_health_at_start = get_body(ls_url + "/es-health-at-start");
  run.kb_health_at_start = get_body("http://" + b.infra.address + ":5601/es-health-at-start");
  run.reached = FullStack::kFirstApply;

  if (!(out = call("apply", req, "the second apply (swarm-2 joined)"))) return run;
  run.second = *out;
  run.ls_id_after_join = id_of(b.docker.inspect_container(b.host.workload_name("logstash")));
  for (const auto& node : lab.nodes()) {
    s::DockerClient d({.node = node.name, .host = node.host});
    run.logspout.push_back(d.inspect_container(b.host.workload_name("logspout")));
  }
  const std::string route = "syslog+tcp://" + b.infra.address + ":5000";
  run.received_all = s::wait_until(30s, 250ms, [&] {
    run.received = get_body(ls_url + "/received");
    return std::all_of(b.nodes.begin(), b.nodes.end(), [&](const json& n) {
      return run.received.find(" " + n["name"].get<std::string>() + " logspout-stand-in: route=" + route +
                               " docker.sock=socket format=rfc3164 ignore=ignore") != std::string::npos;
    });
  });
  run.reached = FullStack::kNodeJoined;

  if (!(out = call("apply", req, "the third apply (nothing changed)"))) return run;
  run.third = *out;
  run.es_id_after_rerun = id_of(b.docker.inspect_container(b.host.workload_name("elasticsearch")));
  run.kb_id_after_rerun = id_of(b.docker.inspect_container(b.host.workload_name("kibana")));
  run.reached = FullStack::kUnchangedApply;

  json swarm_only = req;
  swarm_only["addon"]["config"]["logspout_roles"] = {"swarm"};
  if (!call("apply", swarm_only, "the fourth apply (logspout_roles = [\"swarm\"])")) return run;
  run.infra_after_narrowing = addon_containers(b.infra, "elk");
  run.reached = FullStack::kRolesNarrowed;

  if (!call("destroy", swarm_only, "destroy")) return run;
  for (const auto& node : lab.nodes()) run.after_destroy.push_back(addon_containers(node, "elk"));
  run.state_after_destroy = b.host.state();
  run.reached = FullStack::kDestroyed;
  return run;
}

/// The scenario's record, made on the first call in this process; a scenario that threw is
/// recorded as failed, not run again.
const FullStack& full_stack(const DockerLab& lab) {
  static const FullStack run = [&] {
    try {
      return run_full_stack(lab);
    } catch (const std::exception& e) {
      FullStack failed;
      failed.failed = std::string("the scenario threw: ") + e.what();
      return failed;
    }
  }();
  return run;
}

}  // namespace

TEST_CASE("elk containers at their contract on real dockerds (stand-in images): Elasticsearch healthy first, logspout routes every node to Logstash",
          "[elk][docker][integration]") {
  FLOTILLA_LAB_OR_SKIP(lab);
  const elk::Options defaults;
  const auto& infra = lab->nodes()[0];

  SECTION("a process-runtime ELK node is refused before anything starts") {
    Bench b(*lab);
    json req = b.host.request(json::object(), {"infra"}, b.dir);
    req["nodes"][0]["runtime"] = "process";
    auto [st, out] = b.host.call("apply", req);
    CHECK(st == FLT_INVALID);
    CHECK_THAT(out, Catch::Contains("node infra") && Catch::Contains("process") && Catch::Contains("Docker node"));
    CHECK(addon_containers(infra, "elk").empty());
  }

  SECTION("Elasticsearch never healthy: the error names node and URL, and Logstash and Kibana are not started") {
    Bench b(*lab);
    const json req = b.host.request({{"elasticsearch_image", kRedElasticsearch}, {"es_health_timeout_s", 3}}, {"infra"}, b.dir);
    auto [st, out] = b.host.call("apply", req);
    INFO(out);
    CHECK(st == FLT_ERROR);
    const std::string url = "http://" + infra.address + ":9200/_cluster/health";
    CHECK_THAT(out, Catch::Contains("node infra") && Catch::Contains(url) && Catch::Contains("yellow or green") &&
                        Catch::Contains("\"red\"") && Catch::Contains("es_heap"));
    CHECK(addon_containers(infra, "elk") == std::vector<std::string>{b.host.workload_name("elasticsearch")});
    auto [st2, out2] = b.host.call("destroy", req);
    CHECK(st2 == FLT_OK);
    CHECK(addon_containers(infra, "elk").empty());
  }

  SECTION("the full stack, a node joining on the next apply, re-apply unchanged, destroy removes everything") {
    const FullStack& run = full_stack(*lab);
    INFO("full-stack scenario: " << (run.failed.empty() ? std::string("every step succeeded") : run.failed));
    const std::string es_url = "http://" + infra.address + ":9200";
    const std::string ls_url = "http://" + infra.address + ":9600";
    const std::string route = "syslog+tcp://" + infra.address + ":5000";

    SECTION("the first apply's result: endpoints, changed and Kibana's URL in the message") {
      REQUIRE(run.reached >= FullStack::kFirstApply);
      CHECK(run.first["endpoints"]["kibana"] == "http://" + infra.address + ":5601");
      CHECK(run.first["endpoints"]["elasticsearch"] == es_url);
      CHECK(run.first["outputs"]["changed"] == true);
      for (const char* stage : {"elasticsearch", "logstash", "kibana"}) CHECK(run.stage_outputs[stage]["changed"] == true);
      CHECK_THAT(run.first["messages"][0].get<std::string>(), Catch::Contains("Kibana at http://" + infra.address + ":5601"));
    }

    SECTION("the Elasticsearch container: the documented single-node settings and heap, 9200 on infra's address") {
      REQUIRE(run.reached >= FullStack::kFirstApply);
      REQUIRE(run.es.has_value());
      check_common(*run.es, defaults.elasticsearch_image, "infra", run.workload("elasticsearch"));
      auto env = env_of(*run.es);
      CHECK(env["discovery.type"] == "single-node");
      CHECK(env["xpack.security.enabled"] == "false");
      CHECK(env["ES_JAVA_OPTS"] == "-Xms512m -Xmx512m");
      CHECK((*run.es)["HostConfig"]["PortBindings"]["9200/tcp"] == binding(infra.address, 9200));
    }

    SECTION("the Logstash container: -f on the pipeline file the addon wrote, its heap and API settings, 5000 and 9600 published") {
      REQUIRE(run.reached >= FullStack::kFirstApply);
      REQUIRE(run.ls.has_value());
      check_common(*run.ls, defaults.logstash_image, "infra", run.workload("logstash"));
      CHECK((*run.ls)["Config"]["Cmd"] == json::array({"-f", "/flotilla/files/elk/logstash/pipeline.conf"}));
      auto env = env_of(*run.ls);
      CHECK(env["LS_JAVA_OPTS"] == "-Xms256m -Xmx256m");
      CHECK(env["API_HTTP_HOST"] == "0.0.0.0");
      CHECK((*run.ls)["HostConfig"]["PortBindings"]["5000/tcp"] == binding(infra.address, 5000));
      CHECK((*run.ls)["HostConfig"]["PortBindings"]["9600/tcp"] == binding(infra.address, 9600));
      CHECK(run.pipeline_conf == elk::pipeline_config(defaults, es_url));
    }

    SECTION("the Kibana container: ELASTICSEARCH_HOSTS at Elasticsearch, 5601 published") {
      REQUIRE(run.reached >= FullStack::kFirstApply);
      REQUIRE(run.kb.has_value());
      check_common(*run.kb, defaults.kibana_image, "infra", run.workload("kibana"));
      CHECK(env_of(*run.kb)["ELASTICSEARCH_HOSTS"] == es_url);
      CHECK((*run.kb)["HostConfig"]["PortBindings"]["5601/tcp"] == binding(infra.address, 5601));
    }

    SECTION("the order: Logstash and Kibana, started after the health wait, found Elasticsearch green") {
      // The Elasticsearch stand-in was "red" for its first 3 s; they asked it through the URL they were given.
      REQUIRE(run.reached >= FullStack::kFirstApply);
      CHECK_THAT(run.ls_health_at_start, Catch::Contains("\"status\":\"green\""));
      CHECK_THAT(run.kb_health_at_start, Catch::Contains("\"status\":\"green\""));
      // The stage "elasticsearch" started Elasticsearch alone.
      CHECK(run.after_es_stage == std::vector<std::string>{run.workload("elasticsearch")});
    }

    SECTION("a node joining the cluster gets logspout on the next apply, the rest stays") {
      REQUIRE(run.reached >= FullStack::kNodeJoined);
      CHECK(run.swarm2_after_first.empty());
      CHECK(run.second["outputs"]["changed"] == true);
      CHECK(run.second["outputs"]["logspout_nodes"] == json::array({"infra", "swarm-1", "swarm-2"}));
      REQUIRE(run.ls.has_value());
      CHECK(run.ls_id_after_join == (*run.ls)["Id"]);
    }

    SECTION("the logspout containers: route, syslog settings and each node's own Docker socket") {
      REQUIRE(run.reached >= FullStack::kNodeJoined);
      REQUIRE(run.logspout.size() == lab->nodes().size());
      REQUIRE(run.node_names.size() == lab->nodes().size());
      for (size_t i = 0; i < 3; ++i) {
        const auto& node = lab->nodes()[i];
        const std::string& name = run.node_names[i];
        INFO(name);
        const auto& lp = run.logspout[i];
        REQUIRE(lp.has_value());
        check_common(*lp, defaults.logspout_image, name, run.workload("logspout"));
        CHECK((*lp)["Config"]["Cmd"] == json::array({route}));
        auto env = env_of(*lp);
        CHECK(env["SYSLOG_FORMAT"] == "rfc3164");
        CHECK(env["SYSLOG_HOSTNAME"] == name);
        CHECK(env["LOGSPOUT"] == "ignore");
        // The node's own Docker socket (the lab dockerd's) at the path logspout reads.
        const std::string socket = node.host.substr(std::string("unix://").size());
        bool mounted = false;
        for (const auto& m : (*lp)["Mounts"])
          if (m.value("Destination", "") == "/var/run/docker.sock") {
            mounted = true;
            CHECK(m["Type"] == "bind");
            CHECK(m["Source"] == socket);
          }
        CHECK(mounted);
      }
    }

    SECTION("the route: each logspout's line arrived at Logstash's syslog input") {
      REQUIRE(run.reached >= FullStack::kNodeJoined);
      INFO(run.received);
      CHECK(run.received_all);
    }

    SECTION("an unchanged apply replaces nothing and says so") {
      REQUIRE(run.reached >= FullStack::kUnchangedApply);
      REQUIRE(run.es.has_value());
      REQUIRE(run.kb.has_value());
      CHECK(run.third["outputs"]["changed"] == false);
      CHECK(run.es_id_after_rerun == (*run.es)["Id"]);
      CHECK(run.kb_id_after_rerun == (*run.kb)["Id"]);
    }

    SECTION("a node leaving logspout_roles loses its logspout on the next apply") {
      REQUIRE(run.reached >= FullStack::kRolesNarrowed);
      const auto& left = run.infra_after_narrowing;
      CHECK(std::find(left.begin(), left.end(), run.workload("logspout")) == left.end());
      CHECK(left.size() == 3);
    }

    SECTION("removal (rmLogging.sh): destroy leaves no container of the addon on any node") {
      REQUIRE(run.reached >= FullStack::kDestroyed);
      for (const auto& left : run.after_destroy) CHECK(left.empty());
      CHECK(run.state_after_destroy == json::object());
    }
  }
}
