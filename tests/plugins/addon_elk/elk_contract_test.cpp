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

namespace {

namespace s = flotilla::support;
namespace elk = flotilla::addons::elk;
using flotilla::test::call_ok;
using flotilla::test::DockerAddonHost;
using flotilla::test::DockerLab;
using nlohmann::json;
using namespace std::chrono_literals;

/// The Elasticsearch stand-in for the "never healthy" case; not a real reference on purpose.
constexpr const char* kRedElasticsearch = "flotilla-elk-test/elasticsearch:red";

struct StandIn {
  std::string reference;
  std::string script;
  int port;
};

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

/// Tags each stand-in under its reference in `docker`'s store (the lab's busybox with the
/// stand-in's script as entrypoint); removes them again when destroyed, failed tests included.
class StandInImages {
 public:
  StandInImages(const DockerLab& lab) {
    for (const auto& node : lab.nodes()) {
      s::DockerClient docker({.node = node.name, .host = node.host});
      for (const auto& st : stand_ins()) {
        const std::string name = "flotilla-elk-stand-in";
        docker.remove_container(name);
        const std::string id = docker.create_container(name, {{"Image", DockerLab::kImage}, {"Cmd", {"/bin/sh"}}});
        const auto colon = st.reference.rfind(':');
        const json config = {{"Entrypoint", {"/bin/sh", "-c", st.script, "stand-in"}},
                             {"Cmd", nullptr},
                             {"ExposedPorts", {{std::to_string(st.port) + "/tcp", json::object()}}}};
        const auto r = docker.call("POST",
                                   "/commit?container=" + id + "&repo=" + st.reference.substr(0, colon) + "&tag=" + st.reference.substr(colon + 1),
                                   config.dump(), {"Content-Type: application/json"});
        docker.remove_container(id);
        if (r.status != 201) throw std::runtime_error("cannot tag stand-in " + st.reference + " on " + node.name + ": " + r.body);
        tagged_.push_back({node, st.reference});
      }
    }
  }
  ~StandInImages() {
    for (const auto& [node, ref] : tagged_) {
      try {
        s::DockerClient docker({.node = node.name, .host = node.host});
        (void)docker.call("DELETE", "/images/" + ref + "?force=true");
      } catch (...) {
      }
    }
  }
  StandInImages(const StandInImages&) = delete;
  StandInImages& operator=(const StandInImages&) = delete;

 private:
  std::vector<std::pair<flotilla::test::LabNode, std::string>> tagged_;
};

/// The body of GET `url`, or "" when nothing answers.
std::string get(const std::string& url) {
  try {
    s::HttpClient http({.timeouts = {2000ms, 5000ms}});
    const auto r = http.send({.url = url});
    return r.status == 200 ? r.body : std::string();
  } catch (const s::HttpError&) {
    return {};
  }
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

/// The containers of addon elk on `node` (by the runtime's component label).
std::vector<std::string> elk_containers(const flotilla::test::LabNode& node) {
  s::DockerClient docker({.node = node.name, .host = node.host});
  std::vector<std::string> out;
  for (const auto& c : docker.list_containers({"io.flotilla.component=addon:elk"})) out.push_back(c.name);
  std::sort(out.begin(), out.end());
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

}  // namespace

TEST_CASE("elk containers at their contract on real dockerds (stand-in images): Elasticsearch healthy first, logspout routes every node to Logstash",
          "[elk][docker][integration]") {
  FLOTILLA_LAB_OR_SKIP(lab);
  const elk::Options defaults;

  // infra and two swarm nodes, every one a Docker node of the lab.
  json nodes = DockerAddonHost::lab_nodes(*lab, {"infra", "swarm", "swarm"}, "lab");
  for (auto& n : nodes) n["runtime_config"]["files_image"] = DockerLab::kImage;
  // As the netns driver does for its nodes: containers on a node's Docker bridge reach the other
  // nodes under their node's address (the rule lives and goes with the lab's namespace).
  for (const auto& node : lab->nodes()) flotilla::netns::ensure_masquerade(node.net.netns, flotilla::netns::docker_bridge(node.dockerd));
  const StandInImages images(*lab);
  const auto& infra = lab->nodes()[0];
  s::DockerClient docker({.node = infra.name, .host = infra.host});
  const std::string dir = (std::filesystem::temp_directory_path() / ("flotilla-elk-contract-" + std::to_string(::getpid()))).string();

  DockerAddonHost host("addon_elk", "elk", nodes);

  SECTION("a process-runtime ELK node is refused before anything starts") {
    json req = host.request(json::object(), {"infra"}, dir);
    req["nodes"][0]["runtime"] = "process";
    auto [st, out] = host.call("apply", req);
    CHECK(st == FLT_INVALID);
    CHECK_THAT(out, Catch::Contains("node infra") && Catch::Contains("process") && Catch::Contains("Docker node"));
    CHECK(elk_containers(infra).empty());
  }

  SECTION("Elasticsearch never healthy: the error names node and URL, and Logstash and Kibana are not started") {
    const json req = host.request({{"elasticsearch_image", kRedElasticsearch}, {"es_health_timeout_s", 3}}, {"infra"}, dir);
    auto [st, out] = host.call("apply", req);
    INFO(out);
    CHECK(st == FLT_ERROR);
    const std::string url = "http://" + infra.address + ":9200/_cluster/health";
    CHECK_THAT(out, Catch::Contains("node infra") && Catch::Contains(url) && Catch::Contains("yellow or green") &&
                        Catch::Contains("\"red\"") && Catch::Contains("es_heap"));
    CHECK(elk_containers(infra) == std::vector<std::string>{host.workload_name("elasticsearch")});
    auto [st2, out2] = host.call("destroy", req);
    CHECK(st2 == FLT_OK);
    CHECK(elk_containers(infra).empty());
  }

  SECTION("the full stack, a node joining on the next apply, re-apply unchanged, destroy removes everything") {
    // First apply: the cluster has infra and swarm-1; swarm-2 joins on the next one.
    json req = host.request(json::object(), {"infra"}, dir);
    json two = req;
    two["nodes"].erase(2);
    const std::string out = call_ok(host, "apply", two);
    const json result = json::parse(out);
    CHECK(result["endpoints"]["kibana"] == "http://" + infra.address + ":5601");
    CHECK(result["endpoints"]["elasticsearch"] == "http://" + infra.address + ":9200");
    CHECK(result["outputs"]["changed"] == true);
    CHECK_THAT(result["messages"][0].get<std::string>(), Catch::Contains("Kibana at http://" + infra.address + ":5601"));
    CHECK(elk_containers(lab->nodes()[2]).empty());

    // Elasticsearch: the documented single-node settings and heap, 9200 on infra's address.
    const auto es = docker.inspect_container(host.workload_name("elasticsearch"));
    REQUIRE(es.has_value());
    check_common(*es, defaults.elasticsearch_image, "infra", host.workload_name("elasticsearch"));
    auto env = env_of(*es);
    CHECK(env["discovery.type"] == "single-node");
    CHECK(env["xpack.security.enabled"] == "false");
    CHECK(env["ES_JAVA_OPTS"] == "-Xms512m -Xmx512m");
    CHECK((*es)["HostConfig"]["PortBindings"]["9200/tcp"] == binding(infra.address, 9200));

    // Logstash: -f on the pipeline the addon wrote, its heap and API settings, 5000 and 9600 published.
    const auto ls = docker.inspect_container(host.workload_name("logstash"));
    REQUIRE(ls.has_value());
    check_common(*ls, defaults.logstash_image, "infra", host.workload_name("logstash"));
    CHECK((*ls)["Config"]["Cmd"] == json::array({"-f", "/flotilla/files/elk/logstash/pipeline.conf"}));
    env = env_of(*ls);
    CHECK(env["LS_JAVA_OPTS"] == "-Xms256m -Xmx256m");
    CHECK(env["API_HTTP_HOST"] == "0.0.0.0");
    CHECK((*ls)["HostConfig"]["PortBindings"]["5000/tcp"] == binding(infra.address, 5000));
    CHECK((*ls)["HostConfig"]["PortBindings"]["9600/tcp"] == binding(infra.address, 9600));
    const std::string ls_url = "http://" + infra.address + ":9600";
    const std::string es_url = "http://" + infra.address + ":9200";
    CHECK(get(ls_url + "/pipeline.conf") == elk::pipeline_config(defaults, es_url));

    // Kibana: ELASTICSEARCH_HOSTS at Elasticsearch, 5601 published.
    const auto kb = docker.inspect_container(host.workload_name("kibana"));
    REQUIRE(kb.has_value());
    check_common(*kb, defaults.kibana_image, "infra", host.workload_name("kibana"));
    CHECK(env_of(*kb)["ELASTICSEARCH_HOSTS"] == es_url);
    CHECK((*kb)["HostConfig"]["PortBindings"]["5601/tcp"] == binding(infra.address, 5601));

    // The order: Elasticsearch was "red" for its first 3 s; Logstash and Kibana, started after the
    // health wait, found it green through the URL they were given.
    CHECK_THAT(get(ls_url + "/es-health-at-start"), Catch::Contains("\"status\":\"green\""));
    CHECK_THAT(get("http://" + infra.address + ":5601/es-health-at-start"), Catch::Contains("\"status\":\"green\""));

    // Second apply with swarm-2 in the cluster: it gets logspout; the rest stays.
    const std::string out2 = call_ok(host, "apply", req);
    CHECK(json::parse(out2)["outputs"]["changed"] == true);
    CHECK(json::parse(out2)["outputs"]["logspout_nodes"] == json::array({"infra", "swarm-1", "swarm-2"}));
    CHECK((*docker.inspect_container(host.workload_name("logstash")))["Id"] == (*ls)["Id"]);

    const std::string route = "syslog+tcp://" + infra.address + ":5000";
    for (size_t i = 0; i < 3; ++i) {
      const auto& node = lab->nodes()[i];
      const std::string name = nodes[i]["name"].get<std::string>();
      INFO(name);
      s::DockerClient d({.node = node.name, .host = node.host});
      const auto lp = d.inspect_container(host.workload_name("logspout"));
      REQUIRE(lp.has_value());
      check_common(*lp, defaults.logspout_image, name, host.workload_name("logspout"));
      CHECK((*lp)["Config"]["Cmd"] == json::array({route}));
      env = env_of(*lp);
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

    // Each logspout's line arrived at Logstash's syslog input through the route it was given.
    std::string received;
    const bool all = s::wait_until(30s, 250ms, [&] {
      received = get(ls_url + "/received");
      return std::all_of(nodes.begin(), nodes.end(), [&](const json& n) {
        return received.find(" " + n["name"].get<std::string>() + " logspout-stand-in: route=" + route + " docker.sock=socket format=rfc3164 ignore=ignore") !=
                   std::string::npos;
      });
    });
    INFO(received);
    CHECK(all);

    // Nothing changed: nothing is replaced and the addon says so.
    const std::string out3 = call_ok(host, "apply", req);
    CHECK(json::parse(out3)["outputs"]["changed"] == false);
    CHECK((*docker.inspect_container(host.workload_name("elasticsearch")))["Id"] == (*es)["Id"]);
    CHECK((*docker.inspect_container(host.workload_name("kibana")))["Id"] == (*kb)["Id"]);

    // A node leaving logspout_roles loses its logspout on the next apply.
    json swarm_only = req;
    swarm_only["addon"]["config"]["logspout_roles"] = {"swarm"};
    (void)call_ok(host, "apply", swarm_only);
    const auto left = elk_containers(infra);
    CHECK(std::find(left.begin(), left.end(), host.workload_name("logspout")) == left.end());
    CHECK(left.size() == 3);

    // rmLogging.sh: destroy leaves no container of the addon on any node.
    (void)call_ok(host, "destroy", swarm_only);
    for (const auto& node : lab->nodes()) CHECK(elk_containers(node).empty());
    CHECK(host.state() == json::object());
  }
}
