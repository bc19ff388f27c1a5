#include "topology_schema.hpp"

namespace flotilla {
namespace {

using json = nlohmann::json;

// Names as the engine accepts them (docs/topology.md); the engine's messages stay the authority.
constexpr const char* kPluginName = "^[a-z0-9]+(-[a-z0-9]+)*$";
constexpr const char* kClusterName = "^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$";
constexpr const char* kGroupName = "^[a-z0-9]([a-z0-9-]*[a-z0-9])?$";
constexpr const char* kRole = "^[a-z0-9_-]+$";
constexpr const char* kServiceName = "^[a-z0-9]+([-_/][a-z0-9]+)*$";
constexpr const char* kAddonName = "^[a-z0-9_-]+$";
constexpr const char* kHealthPath = "^(/[A-Za-z0-9/_.~-]*)?$";
constexpr const char* kEnvName = "^[A-Za-z_][A-Za-z0-9_]*$";
constexpr const char* kLabelKey = "^[A-Za-z0-9_.-]+$";
constexpr const char* kSecretReference = "^(env:[A-Za-z_][A-Za-z0-9_]*|file:/.*)$";

json described(json schema, const char* description) {
  schema["description"] = description;
  return schema;
}

json string_list(const char* pattern, const char* description) {
  return described({{"type", "array"}, {"items", {{"type", "string"}, {"pattern", pattern}}}}, description);
}

json string_table(const char* key_pattern, const char* description) {
  return described({{"type", "object"}, {"propertyNames", {{"pattern", key_pattern}}}, {"additionalProperties", {{"type", "string"}}}},
                   description);
}

json names_of(const std::vector<PluginOptions>& plugins, const std::string& kind) {
  json names = json::array();
  for (const auto& p : plugins)
    if (p.kind == kind) names.push_back(p.name);
  return names;
}

/// A plugin name: one of the installed ones where there are any.
json plugin_name(const std::vector<PluginOptions>& plugins, const std::string& kind, const char* description) {
  json s = {{"type", "string"}, {"pattern", kPluginName}};
  if (auto names = names_of(plugins, kind); !names.empty()) s["enum"] = names;
  return described(s, description);
}

json json_type(const std::string& manifest_type) {
  if (manifest_type == "table") return "object";
  if (manifest_type == "string" || manifest_type == "integer" || manifest_type == "number" || manifest_type == "boolean" ||
      manifest_type == "array")
    return manifest_type;
  return nullptr;
}

json cluster_schema(const std::vector<PluginOptions>& plugins) {
  return {{"type", "object"},
          {"description", "The cluster's name and the plugins that make its nodes and run its workloads."},
          {"additionalProperties", false},
          {"required", {"name", "driver"}},
          {"properties",
           {{"name", described({{"type", "string"}, {"pattern", kClusterName}, {"maxLength", 40}},
                               "Lowercase letters, digits and `-`; state lives in .flotilla/<name>/")},
            {"driver", plugin_name(plugins, "driver", "The driver plugin that makes the nodes")},
            {"runtime", plugin_name(plugins, "runtime", "Overrides the runtime plugin the driver chooses")}}}};
}

json driver_tables_schema(const std::vector<PluginOptions>& plugins) {
  json props = json::object();
  for (const auto& p : plugins)
    if (p.kind == "driver") props[p.name] = described(options_json_schema(p.options), "Options of the driver");
  return {{"type", "object"},
          {"description", "Options per driver; only the table of the driver in [cluster] is used."},
          {"properties", props},
          {"additionalProperties", {{"type", "object"}}}};
}

json nodes_schema() {
  json group = {{"type", "object"},
                {"additionalProperties", false},
                {"required", {"name"}},
                {"properties",
                 {{"name", described({{"type", "string"}, {"pattern", kGroupName}, {"maxLength", 63}}, "The group's name; nodes are NAME-1, NAME-2, ...")},
                  {"count", described({{"type", "integer"}, {"minimum", 0}, {"maximum", 1000}, {"default", 1}}, "How many nodes")},
                  {"roles", string_list(kRole, "Roles of every node of the group; placements select nodes by role")},
                  {"labels", string_table(kLabelKey, "Free key/value labels passed to plugins")}}}};
  return described({{"type", "array"}, {"items", group}}, "Node groups");
}

json update_schema() {
  const json duration = {{"type", "string"}, {"pattern", "^([0-9]+[smhd])+$"}};
  json update = {{"type", "object"},
                 {"additionalProperties", false},
                 {"properties",
                  {{"max_parallel", described({{"type", "integer"}, {"minimum", 1}, {"maximum", 1000}, {"default", 1}},
                                              "How many instances a rollout replaces at once (one wave)")},
                   {"min_healthy_time", described([&] { json d = duration; d["default"] = "1s"; return d; }(),
                                                  "How long a replacement must stay healthy before the next wave")},
                   {"healthy_deadline", described(duration, "How long a replacement may take to become healthy (default: the engine's health timeout)")},
                   {"auto_revert", described({{"type", "boolean"}, {"default", true}},
                                             "Put a failed wave back on the previous spec and stop the rollout")},
                   {"canary", described({{"type", "integer"}, {"minimum", 0}, {"maximum", 1000}, {"default", 0}},
                                        "Instances of a new version that run beside the old ones until `flotilla promote`")}}}};
  return described(update, "How a changed spec replaces the running instances: a rolling update, wave by wave");
}

json services_schema() {
  json command = {{"anyOf", {{{"type", "array"}, {"items", {{"type", "string"}}}, {"minItems", 1}}, {{"type", "string"}, {"minLength", 1}}}},
                  {"description", "Program and arguments for the process runtime; {address}, {port}, {instance} and {node} are filled in"}};
  json service = {
      {"type", "object"},
      {"additionalProperties", false},
      {"required", {"name"}},
      {"anyOf", {{{"required", {"command"}}}, {{"required", {"image"}}}}},
      {"properties",
       {{"name", described({{"type", "string"}, {"pattern", kServiceName}, {"maxLength", 63}}, "The service's name, like hello/v1")},
        {"command", command},
        {"image", described({{"type", "string"}, {"minLength", 1}}, "The image for Docker runtimes")},
        {"replicas", described({{"type", "integer"}, {"minimum", 0}, {"maximum", 1000}, {"default", 1}}, "Number of instances")},
        {"port", described({{"type", "integer"}, {"minimum", 1}, {"maximum", 65535}}, "The port an instance listens on")},
        {"health", described({{"type", "string"}, {"pattern", kHealthPath}}, "HTTP path checked before an instance receives traffic; \"\" disables it")},
        {"roles", string_list(kRole, "Place instances on nodes with any of these roles")},
        {"nodes", described({{"type", "array"}, {"items", {{"type", "string"}}}}, "Place instances on these nodes")},
        {"env", string_table(kEnvName, "Environment of every instance")},
        {"mode", described({{"type", "string"}, {"enum", {"flotilla", "swarm"}}, {"default", "flotilla"}},
                           "Who runs the replicas: Flotilla places instances on nodes, or the swarm addon deploys a Swarm service")},
        {"update", update_schema()}}}};
  return described({{"type", "array"}, {"items", service}}, "Services and their placement");
}

json addons_schema(const std::vector<PluginOptions>& plugins) {
  json per_plugin = json::array();
  for (const auto& p : plugins)
    if (p.kind == "addon")
      per_plugin.push_back({{"if", {{"properties", {{"plugin", {{"const", p.name}}}}}, {"required", {"plugin"}}}},
                            {"then", {{"properties", {{"options", described(options_json_schema(p.options), "Options of the addon")}}}}}});
  json addon = {{"type", "object"},
                {"additionalProperties", false},
                {"required", {"plugin"}},
                {"properties",
                 {{"plugin", plugin_name(plugins, "addon", "The addon plugin")},
                  {"name", described({{"type", "string"}, {"pattern", kAddonName}, {"maxLength", 63}}, "The addon's name when one plugin runs twice")},
                  {"roles", string_list(kRole, "Place the addon on nodes with any of these roles")},
                  {"nodes", described({{"type", "array"}, {"items", {{"type", "string"}}}}, "Place the addon on these nodes")},
                  {"options", described({{"type", "object"}}, "The plugin's options")}}}};
  if (!per_plugin.empty()) addon["allOf"] = per_plugin;
  return described({{"type", "array"}, {"items", addon}}, "Addons: discovery, load balancing, metrics, logs");
}

}  // namespace

json options_json_schema(const json& manifest_schema) {
  json props = json::object();
  json required = json::array();
  if (manifest_schema.is_object()) {
    for (const auto& [key, entry] : manifest_schema.items()) {
      if (!entry.is_object()) continue;
      json s = json::object();
      if (auto t = json_type(entry.value("type", std::string())); !t.is_null()) s["type"] = t;
      for (const char* k : {"default", "description", "enum", "minimum", "maximum", "pattern"})
        if (entry.contains(k)) s[k] = entry[k];
      if (entry.value("secret", false)) {
        // A secret may name an environment variable instead: "env:NAME".
        json reference = {{"type", "string"}, {"pattern", kSecretReference}};
        json plain = s;
        plain.erase("description");
        plain.erase("default");
        s = {{"anyOf", {plain, reference}}, {"description", entry.value("description", std::string("secret")) + " (secret; may be env:NAME or file:/path)"}};
      }
      props[key] = s;
      if (entry.value("required", false)) required.push_back(key);
    }
  }
  json out = {{"type", "object"}, {"additionalProperties", false}, {"properties", props}};
  if (!required.empty()) out["required"] = required;
  return out;
}

json topology_json_schema(const std::vector<PluginOptions>& plugins, const std::string& version) {
  return {{"$schema", "http://json-schema.org/draft-07/schema#"},
          {"title", "Flotilla topology"},
          {"description", "A Flotilla topology file (flotilla " + version + "); see docs/topology.md"},
          {"type", "object"},
          {"additionalProperties", false},
          {"required", {"cluster"}},
          {"properties",
           {{"cluster", cluster_schema(plugins)},
            {"driver", driver_tables_schema(plugins)},
            {"nodes", nodes_schema()},
            {"services", services_schema()},
            {"addons", addons_schema(plugins)}}}};
}

}  // namespace flotilla
