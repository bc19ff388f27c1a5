// Addon elk. apply, in order: Elasticsearch on the ELK node, then a wait (with a deadline) for
// its cluster health to be yellow or green; then the Logstash pipeline file, Logstash and a wait
// for its pipeline to run, and Kibana; then logspout on every Docker node, routing to Logstash.
// The first three are the manifest's stages (elasticsearch; logstash and kibana after it), so
// the engine runs them as steps of the plan in that order before the whole apply, which does
// the rest. Every step goes through the engine's runtime operations, so an unchanged cluster
// changes nothing (`changed: false`) and `down` removes the containers even if this addon
// cannot.
#include "addon_elk/elk_addon.hpp"

#include "addon_elk/elk_model.hpp"
#include "flotilla/support/encoding.hpp"
#include "flotilla/support/http.hpp"
#include "flotilla/support/http_wait.hpp"
#include "flotilla/support/plugin_options.hpp"
#include "flotilla/support/request.hpp"

#include <algorithm>
#include <chrono>
#include <iterator>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace flotilla::addons::elk {
namespace {

using flotilla::sdk::Context;
using flotilla::sdk::Error;
using flotilla::sdk::json;
using flotilla::support::str_or;
namespace support = flotilla::support;
using namespace std::chrono_literals;

/// Starts `workload` on `node`; true when the runtime made or replaced the container.
bool start(Context& ctx, const std::string& node, const json& workload) {
  ctx.progress(workload["name"].get<std::string>() + " on " + node);
  const json r = ctx.runtime(json{{"op", "start"}, {"node", node}, {"workload", workload}});
  return r.value("changed", true);
}

/// Polls `url` until `ok(body)` holds or `timeout_s` passes; returns "" on success, else the
/// last answer seen.
std::string wait_for(Context& ctx, const std::string& url, int timeout_s, bool (*ok)(const std::string&)) {
  support::HttpClient http({.timeouts = {2000ms, 5000ms}, .cancelled = [&ctx] { return ctx.cancelled(); }});
  const support::HttpWaitResult r =
      support::wait_for_http(http, url, std::chrono::seconds(timeout_s), 1000ms, ok, [&ctx] { return ctx.cancelled(); });
  ctx.check_cancelled();
  return r.ok ? std::string() : r.last_answer;
}

/// Stops this addon's components that are no longer wanted (a node left logspout_roles, the ELK
/// node moved); true when one was stopped.
bool stop_unwanted(Context& ctx, const std::set<std::pair<std::string, std::string>>& wanted) {
  bool stopped = false;
  for (const auto& c : ctx.list()) {
    if (wanted.contains({c.node, c.name})) continue;
    ctx.info("stopping " + c.name + " on " + c.node + ": no longer placed there");
    try {
      (void)ctx.runtime(json{{"op", "stop"}, {"node", c.node}, {"name", c.name}, {"timeout_s", 10}});
      stopped = true;
    } catch (const Error& e) {
      if (e.status() != FLT_NOT_FOUND) throw;
    }
  }
  return stopped;
}

/// `items` separated by `separator`: the one place this addon turns a list into message text.
std::string joined(const std::vector<std::string>& items, const std::string& separator = ", ") {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : separator) + i;
  return out;
}

/// One apply: the ELK node and the options it is applied with, and what its phases did so far
/// (whether a component changed, which components are wanted where).
struct Run {
  Context& ctx;
  const json& request;
  Options o;
  const json& node;
  std::string name;     // the ELK node's
  std::string address;  // the ELK node's
  std::string es_url;
  bool changed = false;
  std::set<std::pair<std::string, std::string>> wanted;

  /// Starts `workload` (component `component`) on node `on` and records it as wanted there.
  void start_on(const std::string& on, const char* component, const json& workload) {
    changed |= start(ctx, on, workload);
    wanted.insert({on, component});
  }
  /// The container name of `component`, for the `docker logs` hints of the error messages.
  [[nodiscard]] std::string container(const char* component) const {
    return str_or(request.at("addon"), "workload_prefix", "addon-elk-") + component;
  }
};

/// Checks the request and the ELK node; throws Invalid with every problem, or Retryable when
/// the node is not running yet.
Run prepare(Context& ctx, const json& request) {
  if (const auto problems = validate_request(request); !problems.empty()) {
    std::vector<std::string> messages;
    for (const auto& p : problems) messages.push_back(p.message);
    throw flotilla::sdk::Invalid(joined(messages, "; "));
  }
  std::vector<OptionError> unused;
  Options o = parse_options(support::addon_config(request), unused);
  const json& node = elk_node(request);
  std::string name = str_or(node, "name");
  if (str_or(node, "address").empty() || runtime_of(node).empty())
    throw flotilla::sdk::Retryable("elk: node " + name + " has no address or runtime yet; it is not running");
  std::string es_url = elasticsearch_url(node, o);
  return Run{.ctx = ctx,
             .request = request,
             .o = std::move(o),
             .node = node,
             .name = std::move(name),
             .address = str_or(node, "address"),
             .es_url = std::move(es_url)};
}

/// Elasticsearch first; nothing else starts before it reports a usable cluster.
void start_elasticsearch(Run& run) {
  const std::string health_url = run.es_url + "/_cluster/health";
  run.start_on(run.name, kElasticsearchWorkload, elasticsearch_workload(run.o));
  run.ctx.progress("waiting for Elasticsearch's cluster health at " + health_url);
  if (const std::string last = wait_for(run.ctx, health_url, run.o.es_health_timeout_s, &cluster_healthy); !last.empty())
    throw Error(FLT_ERROR, "elk: Elasticsearch on node " + run.name + " did not report status yellow or green at " + health_url + " within " +
                               std::to_string(run.o.es_health_timeout_s) + " s (last answer: " + last +
                               "); Logstash and Kibana were not started. See its output (`docker logs " +
                               run.container(kElasticsearchWorkload) + "` with `flotilla env FILE " + run.name +
                               "`): a heap (option es_heap) larger than the node's memory is a "
                               "common cause; raise es_health_timeout_s on a slow node, then run `flotilla up` again");
}

/// logspout dials its route when it starts, so Logstash's input must be there first.
void await_pipeline(Run& run) {
  const std::string pipelines_url = "http://" + run.address + ":" + std::to_string(run.o.logstash_api_port) + "/_node/pipelines";
  run.ctx.progress("waiting for Logstash's pipeline at " + pipelines_url);
  if (const std::string last = wait_for(run.ctx, pipelines_url, run.o.logstash_timeout_s, &pipeline_running); !last.empty())
    throw flotilla::sdk::Retryable("elk: Logstash on node " + run.name + " did not run its pipeline \"main\" at " + pipelines_url + " within " +
                                   std::to_string(run.o.logstash_timeout_s) + " s (last answer: " + last +
                                   "); logspout was not started. Check its output (`docker logs " + run.container(kLogstashWorkload) +
                                   "`) for a pipeline error");
}

/// The pipeline file, Logstash reading it, and a wait for its pipeline to run.
void start_logstash(Run& run) {
  const std::string pipeline = pipeline_config(run.o, run.es_url);
  const flotilla::sdk::PlacedFile file = run.ctx.put_file(run.name, kPipelineFile, pipeline);
  run.changed |= file.changed;
  run.start_on(run.name, kLogstashWorkload, logstash_workload(run.o, file.path, support::stable_hash(pipeline)));
  await_pipeline(run);
}

void start_kibana(Run& run) { run.start_on(run.name, kKibanaWorkload, kibana_workload(run.o, run.es_url)); }

/// The stages, in the manifest's order.
constexpr std::pair<const char*, void (*)(Run&)> kStages[] = {
    {kStageElasticsearch, &start_elasticsearch}, {kStageLogstash, &start_logstash}, {kStageKibana, &start_kibana}};

/// logspout on every Docker node of logspout_roles, routing to `route`; returns those nodes and
/// warns about the nodes it cannot serve.
std::vector<std::string> start_logspout(Run& run, const std::string& route) {
  std::vector<std::string> shipped;
  for (const json* n : logspout_nodes(run.request, run.o)) {
    const std::string n_name = str_or(*n, "name");
    run.start_on(n_name, kLogspoutWorkload, logspout_workload(*n, run.o, route));
    shipped.push_back(n_name);
  }
  if (const auto skipped = nodes_without_logspout(run.request, run.o); !skipped.empty())
    run.ctx.warn("elk: node(s) " + joined(skipped) +
                 " do not run Docker, so logspout (a container reading the Docker socket) cannot ship their logs; the syslog addon serves "
                 "process nodes");
  return shipped;
}

/// Endpoints, outputs (with the registrations a catalog addon makes) and the user's message.
json result(const Run& run, const std::string& route, const std::vector<std::string>& shipped) {
  const std::string kibana = kibana_url(run.node, run.o);
  return json{{"endpoints", {{"kibana", kibana}, {"elasticsearch", run.es_url}}},
              {"outputs",
               {{"changed", run.changed},
                {"route", route},
                {"index", run.o.index},
                {"logspout_nodes", shipped},
                {"registrations", json::array({json{{"name", "kibana"}, {"id", "kibana-" + run.name}, {"address", run.address},
                                                    {"port", run.o.kibana_port}, {"health", "/api/status"}},
                                               json{{"name", "elasticsearch"}, {"id", "elasticsearch-" + run.name},
                                                    {"address", run.address}, {"port", run.o.es_port}, {"health", "/_cluster/health"}}})}}},
              {"messages", json::array({"Kibana at " + kibana + " (logs of " + std::to_string(shipped.size()) + " Docker node(s), index " +
                                        run.o.index + ")"})}};
}

}  // namespace

json Elk::validate(Context&, const json& request) {
  json errors = json::array();
  for (const auto& e : validate_request(request)) errors.push_back(json{{"key", e.key}, {"message", e.message}});
  return json{{"errors", errors}};
}

json Elk::apply(Context& ctx, const json& request) {
  Run run = prepare(ctx, request);
  if (const std::string stage = str_or(request, "stage"); !stage.empty()) {
    const auto* it = std::find_if(std::begin(kStages), std::end(kStages), [&](const auto& s) { return stage == s.first; });
    if (it == std::end(kStages)) throw flotilla::sdk::Invalid("elk: there is no stage \"" + stage + "\"");
    it->second(run);
    return json{{"outputs", {{"changed", run.changed}}}};
  }
  // The stages this run has done already (the engine ran them as steps of the plan) are not
  // done again; called without them (a host that does not run stages), apply does them all.
  const json done = request.value("stages", json::object());
  for (const auto& [stage, run_stage] : kStages) {
    if (const auto d = done.find(stage); d != done.end() && d->is_object()) run.changed |= d->value("changed", false);
    else run_stage(run);
  }
  for (const char* component : {kElasticsearchWorkload, kLogstashWorkload, kKibanaWorkload}) run.wanted.insert({run.name, component});
  const std::string route = logspout_route(run.node, run.o);
  const std::vector<std::string> shipped = start_logspout(run, route);
  run.changed |= stop_unwanted(ctx, run.wanted);

  const json previous = ctx.state();
  json state = {{"node", run.name}, {"files", json::array({kPipelineFile})}, {"logspout", shipped}};
  if (previous != state) ctx.set_state(state);
  return result(run, route, shipped);
}

json Elk::destroy(Context& ctx, const json&) {
  // rmLogging.sh: every container the addon made, on every node, then its files.
  std::vector<std::string> failures;
  for (const auto& c : ctx.list()) {
    ctx.progress("removing " + c.name + " on " + c.node);
    try {
      (void)ctx.runtime(json{{"op", "stop"}, {"node", c.node}, {"name", c.name}, {"timeout_s", 10}});
    } catch (const Error& e) {
      if (e.status() != FLT_NOT_FOUND) failures.push_back(c.name + " on " + c.node + ": " + e.what());
    }
  }
  if (!failures.empty())
    throw Error(FLT_RETRYABLE, "elk: could not remove every container (" + joined(failures) + "); run the same command again");
  const json state = ctx.state();
  if (const std::string node = str_or(state, "node"); !node.empty()) {
    for (const auto& rel : state.value("files", json::array())) {
      if (!rel.is_string()) continue;
      try {
        (void)ctx.remove_file(node, rel.get<std::string>());
      } catch (const Error& e) {
        // The files go with the node when it is destroyed; a node already gone has none.
        ctx.debug("elk: could not remove " + rel.get<std::string>() + " on " + node + ": " + e.what());
      }
    }
  }
  ctx.set_state(json::object());
  return json::object();
}

}  // namespace flotilla::addons::elk
