// The elk addon's model: options and their errors, the Logstash pipeline text, the container
// specs of Elasticsearch, Logstash, Kibana and logspout, placement and runtime checks.
#include "addon_elk/elk_model.hpp"
#include "planner.hpp"

#include <catch2/catch.hpp>

namespace elk = flotilla::addons::elk;
using json = nlohmann::json;

namespace {

json node(const std::string& name, const std::string& role, const std::string& address, const std::string& runtime = "docker") {
  json n = {{"name", name}, {"roles", {role}}, {"address", address}, {"runtime", runtime}, {"state", "running"}};
  if (runtime == "docker") n["runtime_config"] = {{"host", "unix:///var/lib/flotilla/" + name + "/docker.sock"}};
  return n;
}

json request(const json& config = json::object(), const std::string& swarm_runtime = "docker") {
  return json{{"addon", {{"name", "elk"}, {"plugin", "elk"}, {"config", config}, {"nodes", {"infra"}}, {"workload_prefix", "addon-elk-"}}},
              {"cluster", {{"name", "local"}}},
              {"nodes",
               {node("infra", "infra", "10.214.0.2"), node("swarm-1", "swarm", "10.214.0.3", swarm_runtime),
                node("swarm-2", "swarm", "10.214.0.4")}},
              {"services", json::array()},
              {"addons", json::object()},
              {"components", json::array()}};
}

std::vector<std::string> keys(const std::vector<elk::OptionError>& errors) {
  std::vector<std::string> out;
  for (const auto& e : errors) out.push_back(e.key);
  return out;
}

std::string messages(const std::vector<elk::OptionError>& errors) {
  std::string out;
  for (const auto& e : errors) out += e.message + "\n";
  return out;
}

}  // namespace

TEST_CASE("elk options: pinned defaults of one Elastic version, and the manifest's schema", "[elk]") {
  std::vector<elk::OptionError> errors;
  const elk::Options o = elk::parse_options(json::object(), errors);
  CHECK(errors.empty());
  CHECK(o.elasticsearch_image == "docker.elastic.co/elasticsearch/elasticsearch:8.15.4");
  CHECK(o.logstash_image == "docker.elastic.co/logstash/logstash:8.15.4");
  CHECK(o.kibana_image == "docker.elastic.co/kibana/kibana:8.15.4");
  CHECK(o.logspout_image == "gliderlabs/logspout:v3.2.14");
  CHECK(o.es_heap == "512m");
  CHECK(o.index == "logstash-%{+YYYY.MM.dd}");

  const json manifest = json::parse(elk::manifest());
  CHECK(manifest["provides"] == json::array({"logs"}));
  CHECK(manifest["placement"]["roles"] == json::array({"infra"}));
  CHECK(manifest["placement"]["mode"] == "first");
  CHECK(manifest["schema"]["es_heap"]["default"] == "512m");
  CHECK(manifest["schema"]["es_port"]["maximum"] == 65535);
  // Elasticsearch healthy before Logstash and Kibana: steps of the engine's plan in that order.
  std::vector<flotilla::AddonStage> stages;
  REQUIRE(flotilla::parse_addon_stages(manifest, stages).empty());
  REQUIRE(stages.size() == 3);
  CHECK(stages[0].name == "elasticsearch");
  CHECK(stages[0].after.empty());
  CHECK(stages[1].name == "logstash");
  CHECK(stages[1].after == std::vector<std::string>{"elasticsearch"});
  CHECK(stages[2].name == "kibana");
  CHECK(stages[2].after == std::vector<std::string>{"elasticsearch"});
}

TEST_CASE("elk options: every bad value is named with what to write instead", "[elk]") {
  std::vector<elk::OptionError> errors;
  (void)elk::parse_options({{"es_heap", "lots"}, {"logstash_heap", "0m"}, {"es_port", 0}, {"index", "Logs-%{+YYYY.MM.dd}"},
                            {"registry", "http://x"}, {"docker_socket", "docker.sock"}, {"kibana_image", ""},
                            {"es_health_timeout_s", 0}, {"unknown", 1}},
                           errors);
  const auto k = keys(errors);
  for (const char* key : {"es_heap", "logstash_heap", "es_port", "index", "registry", "docker_socket", "kibana_image", "es_health_timeout_s", "unknown"}) {
    INFO(key << "\n" << messages(errors));
    CHECK(std::find(k.begin(), k.end(), key) != k.end());
  }
  for (const auto& e : errors) CHECK(e.message.rfind("elk ", 0) == 0);
  CHECK_THAT(messages(errors), Catch::Contains("lower case") && Catch::Contains("logstash-%{+YYYY.MM.dd}"));
}

TEST_CASE("elk index names: Elasticsearch's rules outside Logstash's %{...} references", "[elk]") {
  CHECK(elk::index_problem("logstash-%{+YYYY.MM.dd}").empty());
  CHECK(elk::index_problem("flotilla-%{[host]}-%{+YYYY.MM}").empty());
  CHECK_THAT(elk::index_problem(""), Catch::Contains("empty"));
  CHECK_THAT(elk::index_problem("Logs"), Catch::Contains("lower case"));
  CHECK_THAT(elk::index_problem("a b"), Catch::Contains("' '"));
  CHECK_THAT(elk::index_problem("_x"), Catch::Contains("starts with"));
  CHECK_THAT(elk::index_problem("x-%{+YYYY"), Catch::Contains("not closed"));
}

TEST_CASE("elk images: a registry option replaces each image's registry, keeping path and tag", "[elk]") {
  CHECK(elk::image_ref("docker.elastic.co/kibana/kibana:8.15.4", "") == "docker.elastic.co/kibana/kibana:8.15.4");
  CHECK(elk::image_ref("docker.elastic.co/kibana/kibana:8.15.4", "10.214.0.1:5050") == "10.214.0.1:5050/kibana/kibana:8.15.4");
  CHECK(elk::image_ref("gliderlabs/logspout:v3.2.14", "10.214.0.1:5050") == "10.214.0.1:5050/gliderlabs/logspout:v3.2.14");
  CHECK(elk::image_ref("localhost/x:1", "reg.example:5000") == "reg.example:5000/x:1");
  CHECK(elk::image_ref("busybox", "reg.example") == "reg.example/busybox");
  elk::Options o;
  o.registry = "10.214.0.1:5050";
  CHECK(elk::elasticsearch_workload(o)["image"] == "10.214.0.1:5050/elasticsearch/elasticsearch:8.15.4");
  CHECK(elk::logspout_workload(node("swarm-1", "swarm", "10.214.0.3"), o, "syslog+tcp://x:5000")["image"] ==
        "10.214.0.1:5050/gliderlabs/logspout:v3.2.14");
}

TEST_CASE("elk pipeline: a syslog input on 5000 and an Elasticsearch output with a per-day index", "[elk]") {
  elk::Options o;
  const std::string text = elk::pipeline_config(o, "http://10.214.0.2:9200");
  const std::string expected = R"(# Written by the Flotilla addon elk; it is replaced on every `flotilla up`.
# logspout on every Docker node sends each container's output here as RFC 3164 syslog.
input {
  syslog {
    port => 5000
  }
}
output {
  elasticsearch {
    hosts => ["http://10.214.0.2:9200"]
    index => "logstash-%{+YYYY.MM.dd}"
    data_stream => "false"
  }
}
)";
  CHECK(text == expected);
  o.index = "flotilla-%{+YYYY.MM}";
  CHECK_THAT(elk::pipeline_config(o, "http://a:1"), Catch::Contains("index => \"flotilla-%{+YYYY.MM}\""));
}

TEST_CASE("elk container specs: Elasticsearch single node with its heap, Logstash on its pipeline, Kibana on Elasticsearch", "[elk]") {
  elk::Options o;
  o.es_heap = "1g";
  o.es_port = 19200;
  const json es = elk::elasticsearch_workload(o);
  CHECK(es["name"] == "elasticsearch");
  CHECK(es["env"] == json{{"discovery.type", "single-node"}, {"xpack.security.enabled", "false"}, {"ES_JAVA_OPTS", "-Xms1g -Xmx1g"}});
  CHECK(es["ports"] == json::array({{{"container", 9200}, {"host", 19200}}}));
  CHECK_FALSE(es.contains("cmd"));

  const json ls = elk::logstash_workload(o, "/flotilla/files/elk/logstash/pipeline.conf", "abc");
  CHECK(ls["image"] == o.logstash_image);
  CHECK(ls["cmd"] == json::array({"-f", "/flotilla/files/elk/logstash/pipeline.conf"}));
  CHECK(ls["env"]["LS_JAVA_OPTS"] == "-Xms256m -Xmx256m");
  CHECK(ls["env"]["API_HTTP_HOST"] == "0.0.0.0");
  CHECK(ls["env"]["FLOTILLA_PIPELINE_HASH"] == "abc");
  CHECK(ls["ports"] == json::array({{{"container", 5000}, {"host", 5000}}, {{"container", 9600}, {"host", 9600}}}));
  // A new pipeline is a new spec, so the runtime replaces the container.
  CHECK(elk::logstash_workload(o, "/p", "abc") != elk::logstash_workload(o, "/p", "def"));

  const json kb = elk::kibana_workload(o, "http://10.214.0.2:19200");
  CHECK(kb["env"] == json{{"ELASTICSEARCH_HOSTS", "http://10.214.0.2:19200"}});
  CHECK(kb["ports"] == json::array({{{"container", 5601}, {"host", 5601}}}));
}

TEST_CASE("elk logspout: the route as its command and the node's own Docker socket at /var/run/docker.sock", "[elk]") {
  elk::Options o;
  const json infra = node("infra", "infra", "10.214.0.2");
  const json w = elk::logspout_workload(node("swarm-1", "swarm", "10.214.0.3"), o, elk::logspout_route(infra, o));
  CHECK(w["name"] == "logspout");
  CHECK(w["cmd"] == json::array({"syslog+tcp://10.214.0.2:5000"}));
  CHECK(w["env"] == json{{"SYSLOG_FORMAT", "rfc3164"}, {"SYSLOG_HOSTNAME", "swarm-1"}, {"LOGSPOUT", "ignore"}});
  CHECK(w["mounts"] == json::array({{{"source", "/var/lib/flotilla/swarm-1/docker.sock"}, {"target", "/var/run/docker.sock"}, {"type", "bind"}}}));

  json tcp = node("aws-1", "swarm", "10.0.0.5");
  tcp["runtime_config"]["host"] = "tcp://10.0.0.5:2376";
  CHECK(elk::docker_socket_of(tcp, o) == "/var/run/docker.sock");
  o.docker_socket = "/run/docker.sock";
  CHECK(elk::docker_socket_of(infra, o) == "/run/docker.sock");
  CHECK_THROWS_WITH(elk::logspout_workload(node("p", "swarm", "127.0.0.9", "process"), o, "r"),
                    Catch::Contains("node p") && Catch::Contains("process"));
}

TEST_CASE("elk placement: ELK on the first placed node, logspout on every Docker node of its roles", "[elk]") {
  elk::Options o;
  const json req = request(json::object(), "process");
  CHECK(elk::elk_node(req)["name"] == "infra");
  CHECK(elk::elasticsearch_url(elk::elk_node(req), o) == "http://10.214.0.2:9200");
  CHECK(elk::kibana_url(elk::elk_node(req), o) == "http://10.214.0.2:5601");
  std::vector<std::string> names;
  for (const json* n : elk::logspout_nodes(req, o)) names.push_back(n->value("name", ""));
  CHECK(names == std::vector<std::string>{"infra", "swarm-2"});
  CHECK(elk::nodes_without_logspout(req, o) == std::vector<std::string>{"swarm-1"});
  o.logspout_roles = {"swarm"};
  names.clear();
  for (const json* n : elk::logspout_nodes(req, o)) names.push_back(n->value("name", ""));
  CHECK(names == std::vector<std::string>{"swarm-2"});

  json none = req;
  none["addon"]["nodes"] = json::array();
  CHECK_THROWS_WITH(elk::elk_node(none), Catch::Contains("infra") && Catch::Contains("[[addons]]"));
  json gone = req;
  gone["addon"]["nodes"] = {"nowhere"};
  CHECK_THROWS_WITH(elk::elk_node(gone), Catch::Contains("nowhere"));
}

TEST_CASE("elk validate: a process-runtime ELK node, an empty placement and clashing ports are refused with what to do", "[elk]") {
  CHECK(elk::validate_request(request()).empty());

  json process = request();
  process["nodes"][0]["runtime"] = "process";
  const auto errors = elk::validate_request(process);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].key == "placement");
  CHECK_THAT(errors[0].message, Catch::Contains("node infra") && Catch::Contains("process") && Catch::Contains("Docker node") &&
                                    Catch::Contains("syslog addon"));

  json unknown = request();
  unknown["nodes"][0].erase("runtime");  // validate before the driver declared it
  CHECK(elk::validate_request(unknown).empty());

  json none = request();
  none["addon"]["nodes"] = json::array();
  CHECK(keys(elk::validate_request(none)) == std::vector<std::string>{"placement"});

  const auto clash = elk::validate_request(request({{"kibana_port", 9200}}));
  REQUIRE(clash.size() == 1);
  CHECK_THAT(clash[0].message, Catch::Contains("es_port") && Catch::Contains("kibana_port") && Catch::Contains("9200"));
}

TEST_CASE("elk health answers: yellow or green is healthy, and Logstash's pipeline main is running", "[elk]") {
  CHECK(elk::cluster_healthy(R"({"cluster_name":"docker-cluster","status":"green"})"));
  CHECK(elk::cluster_healthy(R"({"status":"yellow"})"));
  CHECK_FALSE(elk::cluster_healthy(R"({"status":"red"})"));
  CHECK_FALSE(elk::cluster_healthy("not json"));
  CHECK(elk::pipeline_running(R"({"pipelines":{"main":{"workers":2}}})"));
  CHECK_FALSE(elk::pipeline_running(R"({"pipelines":{}})"));
  CHECK_FALSE(elk::pipeline_running("<html>"));
}
