// What the elk addon wants on the cluster, computed from an addon request: options, the
// Logstash pipeline, the container specs of Elasticsearch, Logstash, Kibana and logspout, and
// the problems validate reports. Everything here is pure (no I/O), so it is tested without a
// Docker daemon.
#pragma once

#include "flotilla/support/config_map.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace flotilla::addons::elk {

using json = nlohmann::json;

/// Workload names on the nodes (the engine prefixes them with addon-<addon>-).
inline constexpr const char* kElasticsearchWorkload = "elasticsearch";
inline constexpr const char* kLogstashWorkload = "logstash";
inline constexpr const char* kKibanaWorkload = "kibana";
inline constexpr const char* kLogspoutWorkload = "logspout";

/// The stages of apply (the manifest's "stages"): Elasticsearch healthy, then Logstash (its
/// pipeline running) and Kibana, each a step of the engine's plan.
inline constexpr const char* kStageElasticsearch = "elasticsearch";
inline constexpr const char* kStageLogstash = "logstash";
inline constexpr const char* kStageKibana = "kibana";

/// Ports inside the containers, as the images document them: Elasticsearch's HTTP 9200,
/// Kibana's 5601, Logstash's monitoring API 9600. The syslog input listens on 5000 (not 514:
/// the Logstash image runs as an unprivileged user).
inline constexpr int kElasticsearchPort = 9200;
inline constexpr int kKibanaPort = 5601;
inline constexpr int kLogstashApiPort = 9600;
inline constexpr int kLogstashSyslogPort = 5000;

/// Where logspout's image expects the Docker socket ("--volume=/var/run/docker.sock:/var/run/docker.sock").
inline constexpr const char* kDockerSocket = "/var/run/docker.sock";

/// The pipeline file, relative to the addon's files (put_file).
inline constexpr const char* kPipelineFile = "logstash/pipeline.conf";

/// The addon's options; the defaults here are the manifest's.
struct Options {
  std::string elasticsearch_image = "docker.elastic.co/elasticsearch/elasticsearch:8.15.4";
  std::string logstash_image = "docker.elastic.co/logstash/logstash:8.15.4";
  std::string kibana_image = "docker.elastic.co/kibana/kibana:8.15.4";
  std::string logspout_image = "gliderlabs/logspout:v3.2.14";
  std::string registry;
  std::string es_heap = "512m";
  std::string logstash_heap = "256m";
  int es_port = kElasticsearchPort;
  int kibana_port = kKibanaPort;
  int syslog_port = kLogstashSyslogPort;
  int logstash_api_port = kLogstashApiPort;
  std::string index = "logstash-%{+YYYY.MM.dd}";
  std::vector<std::string> logspout_roles;
  std::string docker_socket;
  int es_health_timeout_s = 180;
  int logstash_timeout_s = 180;
};

/// One option problem, as the validate operation reports it.
using OptionError = flotilla::support::OptionError;

/// The options' declarations: the manifest's schema and the reader of Options.
[[nodiscard]] const flotilla::support::ConfigMap<Options>& options_map();

/// The manifest: option schema, capabilities and default placement (JSON text; lives as long
/// as the process).
[[nodiscard]] const char* manifest();

/// Reads the options table; every problem is added to `errors` (each message starts "elk ")
/// and the default is kept.
Options parse_options(const json& config, std::vector<OptionError>& errors);

/// `ref` pulled from `registry` instead of its own: the registry part of the reference (the part
/// before the first '/' when it holds a '.' or ':' or is "localhost") is replaced, so
/// "docker.elastic.co/kibana/kibana:8.15.4" with "10.214.0.1:5050" is
/// "10.214.0.1:5050/kibana/kibana:8.15.4". An empty registry leaves `ref` as it is.
[[nodiscard]] std::string image_ref(const std::string& ref, const std::string& registry);

/// The problem with a Logstash index name, or "" when it is fine: Elasticsearch index names are
/// lower case without spaces or \ / * ? " < > | , # and do not start with - _ +; the date
/// pattern inside %{+...} is Logstash's and exempt.
[[nodiscard]] std::string index_problem(const std::string& index);

/// The Logstash pipeline: a syslog input on kLogstashSyslogPort, an elasticsearch output to
/// `es_url` writing to the index `o.index` (one per day by default).
[[nodiscard]] std::string pipeline_config(const Options& o, const std::string& es_url);

/// The node Elasticsearch, Logstash and Kibana run on: the first of the resolved placement.
/// Throws std::invalid_argument when the placement is empty or names a node not in the request.
[[nodiscard]] const json& elk_node(const json& request);

/// "docker" or the node's runtime ("" when not known yet).
[[nodiscard]] std::string runtime_of(const json& node);

/// Nodes that get logspout: every node with an address whose roles meet `logspout_roles`
/// (every node when empty) and that runs Docker, in request order.
[[nodiscard]] std::vector<const json*> logspout_nodes(const json& request, const Options& o);

/// Nodes that would get logspout by their roles but run another runtime (they are left out).
[[nodiscard]] std::vector<std::string> nodes_without_logspout(const json& request, const Options& o);

/// "http://ADDRESS:ES_PORT", Elasticsearch as every node reaches it.
[[nodiscard]] std::string elasticsearch_url(const json& node, const Options& o);
/// "http://ADDRESS:KIBANA_PORT".
[[nodiscard]] std::string kibana_url(const json& node, const Options& o);
/// logspout's route: "syslog+tcp://ADDRESS:SYSLOG_PORT" (Logstash's syslog input on `node`).
[[nodiscard]] std::string logspout_route(const json& node, const Options& o);

/// The Elasticsearch container: a single node (discovery.type=single-node), security off, the
/// heap from es_heap (ES_JAVA_OPTS), 9200 published at es_port.
[[nodiscard]] json elasticsearch_workload(const Options& o);

/// The Logstash container: the image's entrypoint with `-f <pipeline_path>`, its heap
/// (LS_JAVA_OPTS), the syslog port and the monitoring API published. `pipeline_hash` goes into
/// the environment so a new pipeline replaces the container.
[[nodiscard]] json logstash_workload(const Options& o, const std::string& pipeline_path, const std::string& pipeline_hash);

/// The Kibana container: ELASTICSEARCH_HOSTS=`es_url`, 5601 published at kibana_port.
[[nodiscard]] json kibana_workload(const Options& o, const std::string& es_url);

/// The logspout container on `node`: the route as its command, the node's Docker socket at
/// /var/run/docker.sock, RFC 3164 syslog (what Logstash's syslog input parses) with the node's
/// name as hostname, itself ignored. Throws std::invalid_argument for a node without Docker.
[[nodiscard]] json logspout_workload(const json& node, const Options& o, const std::string& route);

/// The Docker socket of `node` as a path on that node: option docker_socket, else the path of
/// the node's unix endpoint (runtime_config.host "unix://PATH", as the netns driver records it),
/// else /var/run/docker.sock.
[[nodiscard]] std::string docker_socket_of(const json& node, const Options& o);

/// True when a GET /_cluster/health body reports status yellow or green.
[[nodiscard]] bool cluster_healthy(const std::string& body);

/// True when a GET /_node/pipelines body of Logstash's API lists the pipeline "main".
[[nodiscard]] bool pipeline_running(const std::string& body);

/// Problems with a request as the validate operation reports them: options, placement, node
/// runtimes and ports that clash on the ELK node.
[[nodiscard]] std::vector<OptionError> validate_request(const json& request);

}  // namespace flotilla::addons::elk
