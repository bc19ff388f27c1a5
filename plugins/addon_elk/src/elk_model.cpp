#include "addon_elk/elk_model.hpp"
#include "flotilla/support/docker_socket.hpp"

#include "flotilla/support/plugin_options.hpp"
#include "flotilla/support/request.hpp"

#include <algorithm>
#include <map>
#include <stdexcept>
#include <utility>

namespace flotilla::addons::elk {
namespace {

using flotilla::support::str_or;

// A Java heap size as -Xms/-Xmx take it: a number and a unit, e.g. 512m or 2g.
constexpr const char* kHeapPattern = "[1-9][0-9]*[kKmMgG]";

bool has_role(const json& node, const std::vector<std::string>& roles) {
  if (roles.empty()) return true;
  const auto it = node.find("roles");
  if (it == node.end() || !it->is_array()) return false;
  return std::any_of(it->begin(), it->end(), [&](const json& r) {
    return r.is_string() && std::find(roles.begin(), roles.end(), r.get<std::string>()) != roles.end();
  });
}

std::string heap_opts(const std::string& heap) { return "-Xms" + heap + " -Xmx" + heap; }

std::string address_of(const json& node) { return str_or(node, "address"); }

}  // namespace

const flotilla::support::ConfigMap<Options>& options_map() {
  using M = flotilla::support::ConfigMap<Options>;
  static const auto map =
      M()
          .string("elasticsearch_image", &Options::elasticsearch_image,
                  "Elasticsearch image (docker.elastic.co/elasticsearch/elasticsearch; the same version as Logstash and Kibana)")
          .string("logstash_image", &Options::logstash_image, "Logstash image (docker.elastic.co/logstash/logstash)")
          .string("kibana_image", &Options::kibana_image, "Kibana image (docker.elastic.co/kibana/kibana)")
          .string("logspout_image", &Options::logspout_image, "logspout image for every Docker node (gliderlabs/logspout)")
          .string("registry", &Options::registry,
                  "A registry holding the images (ADDRESS:PORT): every image is pulled from there under the same path and tag")
          .pattern("([A-Za-z0-9.-]+(:[0-9]+)?)?")
          .string("es_heap", &Options::es_heap, "Elasticsearch's Java heap (-Xms and -Xmx through ES_JAVA_OPTS), e.g. 512m, 2g")
          .pattern(kHeapPattern)
          .string("logstash_heap", &Options::logstash_heap, "Logstash's Java heap (-Xms and -Xmx through LS_JAVA_OPTS), e.g. 256m, 1g")
          .pattern(kHeapPattern)
          .integer("es_port", &Options::es_port, "Port on the ELK node's address where Elasticsearch's 9200 is published")
          .range(1, 65535)
          .integer("kibana_port", &Options::kibana_port, "Port on the ELK node's address where Kibana's 5601 is published")
          .range(1, 65535)
          .integer("syslog_port", &Options::syslog_port,
                   "Port on the ELK node's address where Logstash's syslog input (5000 in its container) is published; logspout sends there")
          .range(1, 65535)
          .integer("logstash_api_port", &Options::logstash_api_port,
                   "Port on the ELK node's address where Logstash's monitoring API (9600) is published; apply waits on it")
          .range(1, 65535)
          .string("index", &Options::index, "Elasticsearch index Logstash writes to; %{+YYYY.MM.dd} makes one per day")
          .strings("logspout_roles", &Options::logspout_roles, "Roles of the Docker nodes that get logspout (empty: every Docker node)")
          .string("docker_socket", &Options::docker_socket,
                  "Path of the Docker socket on every node, mounted into logspout (empty: the node's own unix endpoint, else /var/run/docker.sock)")
          .pattern("(/.*)?")
          .integer("es_health_timeout_s", &Options::es_health_timeout_s,
                   "How long apply waits for Elasticsearch to report yellow or green before starting Logstash and Kibana")
          .range(1, 3600)
          .integer("logstash_timeout_s", &Options::logstash_timeout_s,
                   "How long apply waits for Logstash's pipeline to run before starting logspout")
          .range(1, 3600);
  return map;
}

const char* manifest() {
  static const std::string text = options_map().manifest(R"json({
  "provides": ["logs"],
  "placement": {"roles": ["infra"], "mode": "first"},
  "stages": [{"name": "elasticsearch"}, {"name": "logstash", "after": ["elasticsearch"]}, {"name": "kibana", "after": ["elasticsearch"]}]
})json");
  return text.c_str();
}

Options parse_options(const json& config, std::vector<OptionError>& errors) {
  auto filled = options_map().fill(config);
  const bool index_checked = std::any_of(filled.errors.begin(), filled.errors.end(), [](const OptionError& e) { return e.key == "index"; });
  for (auto& e : filled.errors) errors.push_back({e.key, "elk " + e.message});
  if (const std::string p = index_problem(filled.config.index); !p.empty() && !index_checked)
    errors.push_back({"index", "elk option \"index\" = \"" + filled.config.index + "\": " + p + "; e.g. \"logstash-%{+YYYY.MM.dd}\""});
  for (const auto& [key, image] : {std::pair{"elasticsearch_image", &filled.config.elasticsearch_image},
                                   std::pair{"logstash_image", &filled.config.logstash_image},
                                   std::pair{"kibana_image", &filled.config.kibana_image},
                                   std::pair{"logspout_image", &filled.config.logspout_image}})
    if (image->empty() || image->find(' ') != std::string::npos)
      errors.push_back({key, std::string("elk option \"") + key + "\" must be an image reference such as " +
                                 options_map().to_json(Options{})[key].get<std::string>()});
  return filled.config;
}

std::string image_ref(const std::string& ref, const std::string& registry) {
  if (registry.empty()) return ref;
  std::string path = ref;
  if (const auto slash = ref.find('/'); slash != std::string::npos) {
    const std::string first = ref.substr(0, slash);
    if (first.find('.') != std::string::npos || first.find(':') != std::string::npos || first == "localhost") path = ref.substr(slash + 1);
  }
  return registry + "/" + path;
}

std::string index_problem(const std::string& index) {
  if (index.empty()) return "it is empty";
  std::string plain;  // the name without its %{...} references
  for (size_t i = 0; i < index.size(); ++i) {
    if (index.compare(i, 2, "%{") == 0) {
      const auto end = index.find('}', i);
      if (end == std::string::npos) return "a %{ is not closed";
      i = end;
      continue;
    }
    plain += index[i];
  }
  if (!plain.empty() && (plain[0] == '-' || plain[0] == '_' || plain[0] == '+')) return "it starts with - _ or +";
  for (char c : plain) {
    if (c >= 'A' && c <= 'Z') return "Elasticsearch index names are lower case";
    if (std::string_view(" \\/*?\"<>|,#:").find(c) != std::string_view::npos)
      return std::string("Elasticsearch index names cannot hold '") + c + "'";
  }
  return {};
}

std::string pipeline_config(const Options& o, const std::string& es_url) {
  // Logstash's config language quotes strings with double quotes; the values here are checked
  // (URL from an address and a port, index by index_problem), so they need no escaping.
  std::string c;
  c += "# Written by the Flotilla addon elk; it is replaced on every `flotilla up`.\n";
  c += "# logspout on every Docker node sends each container's output here as RFC 3164 syslog.\n";
  c += "input {\n";
  c += "  syslog {\n";
  c += "    port => " + std::to_string(kLogstashSyslogPort) + "\n";
  c += "  }\n";
  c += "}\n";
  c += "output {\n";
  c += "  elasticsearch {\n";
  c += "    hosts => [\"" + es_url + "\"]\n";
  c += "    index => \"" + o.index + "\"\n";
  // Logstash 8 writes to a data stream unless told otherwise; the per-day index is the point.
  c += "    data_stream => \"false\"\n";
  c += "  }\n";
  c += "}\n";
  return c;
}

const json& elk_node(const json& request) {
  const json& addon = request.at("addon");
  if (!addon.contains("nodes") || !addon["nodes"].is_array() || addon["nodes"].empty() || !addon["nodes"][0].is_string())
    throw std::invalid_argument("elk: no node matches the addon's placement; give a Docker node the role \"infra\" or set `roles` or "
                                "`nodes` in its [[addons]] table");
  const std::string name = addon["nodes"][0].get<std::string>();
  const json* node = flotilla::support::find_node(request, name);
  if (node == nullptr) throw std::invalid_argument("elk: the placement names node " + name + ", which is not in the cluster");
  return *node;
}

std::string runtime_of(const json& node) { return str_or(node, "runtime"); }

std::vector<const json*> logspout_nodes(const json& request, const Options& o) {
  std::vector<const json*> out;
  if (!request.contains("nodes") || !request["nodes"].is_array()) return out;
  for (const auto& n : request["nodes"])
    if (!address_of(n).empty() && runtime_of(n) == "docker" && has_role(n, o.logspout_roles)) out.push_back(&n);
  return out;
}

std::vector<std::string> nodes_without_logspout(const json& request, const Options& o) {
  std::vector<std::string> out;
  if (!request.contains("nodes") || !request["nodes"].is_array()) return out;
  for (const auto& n : request["nodes"]) {
    const std::string runtime = runtime_of(n);
    if (!runtime.empty() && runtime != "docker" && has_role(n, o.logspout_roles)) out.push_back(str_or(n, "name"));
  }
  return out;
}

std::string elasticsearch_url(const json& node, const Options& o) { return "http://" + address_of(node) + ":" + std::to_string(o.es_port); }

std::string kibana_url(const json& node, const Options& o) { return "http://" + address_of(node) + ":" + std::to_string(o.kibana_port); }

std::string logspout_route(const json& node, const Options& o) {
  return "syslog+tcp://" + address_of(node) + ":" + std::to_string(o.syslog_port);
}

json elasticsearch_workload(const Options& o) {
  // The settings the image reads from its environment ("Configuring Elasticsearch with Docker"):
  // dotted names are settings, ES_JAVA_OPTS the JVM's options. Single-node discovery also
  // skips the bootstrap checks a production cluster needs (vm.max_map_count among them).
  return json{{"name", kElasticsearchWorkload},
              {"image", image_ref(o.elasticsearch_image, o.registry)},
              {"env",
               {{"discovery.type", "single-node"},
                {"xpack.security.enabled", "false"},
                {"ES_JAVA_OPTS", heap_opts(o.es_heap)}}},
              {"ports", json::array({json{{"container", kElasticsearchPort}, {"host", o.es_port}}})}};
}

json logstash_workload(const Options& o, const std::string& pipeline_path, const std::string& pipeline_hash) {
  // The image's entrypoint runs logstash with the command's flags when they start with '-';
  // -f names the pipeline instead of /usr/share/logstash/pipeline/. API_HTTP_HOST (api.http.host)
  // lets the published monitoring API answer from outside the container.
  return json{{"name", kLogstashWorkload},
              {"image", image_ref(o.logstash_image, o.registry)},
              {"cmd", json::array({"-f", pipeline_path})},
              {"env",
               {{"LS_JAVA_OPTS", heap_opts(o.logstash_heap)},
                {"API_HTTP_HOST", "0.0.0.0"},
                {"XPACK_MONITORING_ENABLED", "false"},
                {"FLOTILLA_PIPELINE_HASH", pipeline_hash}}},
              {"ports", json::array({json{{"container", kLogstashSyslogPort}, {"host", o.syslog_port}},
                                     json{{"container", kLogstashApiPort}, {"host", o.logstash_api_port}}})}};
}

json kibana_workload(const Options& o, const std::string& es_url) {
  // Kibana's image maps ELASTICSEARCH_HOSTS to elasticsearch.hosts ("Configure Kibana on Docker").
  return json{{"name", kKibanaWorkload},
              {"image", image_ref(o.kibana_image, o.registry)},
              {"env", {{"ELASTICSEARCH_HOSTS", es_url}}},
              {"ports", json::array({json{{"container", kKibanaPort}, {"host", o.kibana_port}}})}};
}

std::string docker_socket_of(const json& node, const Options& o) {
  if (!o.docker_socket.empty()) return o.docker_socket;
  return support::docker_socket_of(node);
}

json logspout_workload(const json& node, const Options& o, const std::string& route) {
  if (runtime_of(node) != "docker")
    throw std::invalid_argument("elk: node " + str_or(node, "name") + " runs the `" + runtime_of(node) +
                                "` runtime; logspout runs only in a container on a Docker node");
  // As logspout's README runs it: the route URI as the command, the Docker socket mounted at
  // /var/run/docker.sock. SYSLOG_FORMAT=rfc3164 is what Logstash's syslog input parses,
  // SYSLOG_HOSTNAME names the node instead of the container's id, LOGSPOUT=ignore keeps its own
  // output out of the stream.
  return json{{"name", kLogspoutWorkload},
              {"image", image_ref(o.logspout_image, o.registry)},
              {"cmd", json::array({route})},
              {"env", {{"SYSLOG_FORMAT", "rfc3164"}, {"SYSLOG_HOSTNAME", str_or(node, "name")}, {"LOGSPOUT", "ignore"}}},
              {"mounts", json::array({json{{"source", docker_socket_of(node, o)}, {"target", kDockerSocket}, {"type", "bind"}}})}};
}

bool cluster_healthy(const std::string& body) {
  const json doc = json::parse(body, nullptr, false);
  if (!doc.is_object()) return false;
  const std::string status = str_or(doc, "status");
  return status == "green" || status == "yellow";
}

bool pipeline_running(const std::string& body) {
  const json doc = json::parse(body, nullptr, false);
  return doc.is_object() && doc.contains("pipelines") && doc["pipelines"].is_object() && doc["pipelines"].contains("main");
}

std::vector<OptionError> validate_request(const json& request) {
  std::vector<OptionError> errors;
  const Options o = parse_options(support::addon_config(request), errors);
  try {
    const json& node = elk_node(request);
    const std::string runtime = runtime_of(node);
    // The runtime is known once the driver declares it (validate) or has made the node.
    if (!runtime.empty() && runtime != "docker")
      errors.push_back({"placement", "elk: node " + str_or(node, "name") + " runs the `" + runtime +
                                         "` runtime; Elasticsearch, Logstash and Kibana run only as containers: place the addon on a "
                                         "Docker node (driver netns, or runtime \"docker\"), or use the syslog addon on process nodes"});
  } catch (const std::exception& e) {
    errors.push_back({"placement", e.what()});
  }
  const std::map<std::string, int> ports = {
      {"es_port", o.es_port}, {"kibana_port", o.kibana_port}, {"syslog_port", o.syslog_port}, {"logstash_api_port", o.logstash_api_port}};
  std::map<int, std::string> seen;
  for (const auto& [key, port] : ports) {
    const auto [it, fresh] = seen.emplace(port, key);
    if (!fresh)
      errors.push_back({key, "elk options \"" + it->second + "\" and \"" + key + "\" both use port " + std::to_string(port) +
                                 " on the ELK node's address; give them different ports"});
  }
  return errors;
}

}  // namespace flotilla::addons::elk
