#include "topology.hpp"

#include "input_limits.hpp"
#include "schema.hpp"
#include "duration.hpp"
#include "util.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>
#include <sstream>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

namespace flotilla {
namespace {

constexpr int kMaxCount = 1000;
constexpr int kMaxReplicas = 1000;
constexpr std::size_t kMaxClusterName = 40;
constexpr std::size_t kMaxName = 63;  // a DNS label
constexpr std::size_t kMaxListed = 10;

const std::vector<std::string> kTopKeys = {"cluster", "driver", "runtime", "nodes", "addons", "services"};
const std::vector<std::string> kClusterKeys = {"name", "driver", "runtime"};
const std::vector<std::string> kGroupKeys = {"name", "count", "roles", "labels"};
const std::vector<std::string> kAddonKeys = {"plugin", "name", "roles", "nodes", "options"};
const std::vector<std::string> kServiceKeys = {"name", "command", "image", "replicas", "port",
                                               "health", "roles", "nodes", "env", "mode", "update"};
const std::vector<std::string> kUpdateKeys = {"max_parallel", "min_healthy_time", "healthy_deadline", "auto_revert", "canary"};
const std::vector<std::string> kPlaceholders = {"address", "port", "instance", "node"};

// JSON quoting escapes control characters; invalid UTF-8 is shown as U+FFFD, never thrown on.
// A long value is cut (no valid name is that long), so a message stays one readable line.
std::string in_quotes(std::string_view s) {
  constexpr std::size_t kMaxShown = 80;
  const auto quote = [](std::string_view v) { return json(std::string(v)).dump(-1, ' ', false, json::error_handler_t::replace); };
  if (s.size() <= kMaxShown) return quote(s);
  return quote(s.substr(0, kMaxShown / 2)) + "... (" + std::to_string(s.size()) + " characters)";
}

std::string join(const std::vector<std::string>& items, std::string_view sep = ", ") {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += sep;
    out += item;
  }
  return out;
}

// At most kMaxListed names, so a message about a 10,000-node topology stays readable.
std::string short_list(const std::vector<std::string>& items) {
  if (items.size() <= kMaxListed) return join(items);
  std::vector<std::string> head(items.begin(), items.begin() + static_cast<std::ptrdiff_t>(kMaxListed));
  return join(head) + " and " + std::to_string(items.size() - kMaxListed) + " more";
}

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// [a-z0-9] at both ends, [a-z0-9] or one of `inner` in between.
bool is_simple_name(std::string_view s, std::string_view inner) {
  if (s.empty() || !is_lower_alnum(s.front()) || !is_lower_alnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(), [&](char c) { return is_lower_alnum(c) || inner.find(c) != std::string_view::npos; });
}

bool is_env_name(std::string_view s) {
  if (s.empty() || (s.front() >= '0' && s.front() <= '9')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

bool is_label_key(std::string_view s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
  });
}

bool is_health_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '/' || c == '_' ||
         c == '.' || c == '~' || c == '-';
}

std::string type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    default: return "nothing";
  }
}

std::vector<std::string> split_whitespace(std::string_view text) {
  std::vector<std::string> words;
  std::istringstream in{std::string(text)};
  for (std::string word; in >> word;) words.push_back(word);
  return words;
}

// A string list with the position of each entry, for messages about one entry.
struct StringList {
  std::vector<std::string> values;
  std::vector<toml::source_region> positions;
};

// A placement as written, kept with its positions until the nodes are known.
struct PlacementSource {
  StringList roles;
  StringList nodes;
  std::optional<toml::source_region> roles_at;
  std::optional<toml::source_region> nodes_at;
};

struct Issue {
  std::uint32_t line = 0;
  std::uint32_t column = 0;
  std::string text;
};

class Loader {
 public:
  explicit Loader(std::string file) : file_(std::move(file)) {}

  Result<Topology> load(const std::string& text, const std::filesystem::path& path) {
    // toml++ recurses per level of nesting (and so does the conversion below): deep nesting
    // is refused before it parses, where no topology needs more than a few levels.
    if (auto deep = toml_too_deep(text, kMaxNesting)) {
      return fail(SourcePos{file_, deep->line, deep->column}.located(
          "tables, keys or values nest more than " + std::to_string(kMaxNesting) +
          " levels deep here; a topology needs a few levels at most, so flatten it"));
    }
    toml::table root;
    try {
      root = toml::parse(std::string_view(text), std::string_view(file_));
    } catch (const toml::parse_error& e) {
      return fail(pos(e.source()).located("invalid TOML: " + std::string(e.description()) +
                                          "; fix the syntax at this position (see docs/topology.md)"));
    }
    std::error_code ec;  // absolute() only fails without a working directory; keep the path then
    const auto absolute = std::filesystem::absolute(path, ec);
    topo_.file = (ec ? path : absolute).lexically_normal();

    check_keys(root, kTopKeys, "the top level of the topology");
    read_cluster(root);
    read_driver(root);
    read_runtimes(root);
    read_groups(root);
    read_addons(root);
    read_services(root);
    check_placements();
    check_ports();

    if (!issues_.empty()) {
      std::stable_sort(issues_.begin(), issues_.end(), [](const Issue& a, const Issue& b) {
        return std::tie(a.line, a.column) < std::tie(b.line, b.column);
      });
      std::string message;
      for (const auto& issue : issues_) {
        if (!message.empty()) message += '\n';
        message += issue.text;
      }
      return fail(message);
    }
    return std::move(topo_);
  }

 private:
  // ---- reporting -------------------------------------------------------------------------

  SourcePos pos(const toml::source_region& r) const { return SourcePos{file_, r.begin.line, r.begin.column}; }

  void error(const toml::source_region& r, const std::string& text) { error(pos(r), text); }
  void error(const SourcePos& p, const std::string& text) { issues_.push_back({p.line, p.column, p.located(text)}); }

  void check_keys(const toml::table& t, const std::vector<std::string>& known, std::string_view where) {
    for (auto&& [key, value] : t) {
      (void)value;
      const std::string name(key.str());
      if (std::find(known.begin(), known.end(), name) != known.end()) continue;
      std::string text = "unknown key " + in_quotes(name) + " in " + std::string(where);
      if (auto guess = closest_match(name, known)) text += "; did you mean " + in_quotes(*guess) + "?";
      else text += "; remove it (known keys: " + join(known) + ")";
      error(key.source(), text);
    }
  }

  // ---- typed access ----------------------------------------------------------------------
  // Each getter reports a wrong type or a missing required key and returns nothing then;
  // `example` shows the user a correct line.

  const toml::node* find(const toml::table& t, std::string_view key) { return t.get(key); }

  toml::source_region key_at(const toml::table& t, std::string_view key) {
    for (auto&& [k, v] : t) {
      (void)v;
      if (k.str() == key) return k.source();
    }
    return t.source();
  }

  void wrong_type(const toml::node& n, std::string_view key, std::string_view where, std::string_view wanted,
                  std::string_view example) {
    error(n.source(), "key " + in_quotes(key) + " in " + std::string(where) + " must be " + std::string(wanted) + ", not " +
                          type_name(n) + "; write it like " + std::string(example));
  }

  void missing(const toml::table& t, std::string_view key, std::string_view where, std::string_view example) {
    error(t.source(), "missing required key " + in_quotes(key) + " in " + std::string(where) + "; add " + std::string(example));
  }

  std::optional<std::string> get_string(const toml::table& t, std::string_view key, std::string_view where, bool required,
                                        std::string_view example) {
    const toml::node* n = find(t, key);
    if (n == nullptr) {
      if (required) missing(t, key, where, example);
      return std::nullopt;
    }
    if (!n->is_string()) {
      wrong_type(*n, key, where, "a string", example);
      return std::nullopt;
    }
    return n->as_string()->get();
  }

  std::optional<std::int64_t> get_int(const toml::table& t, std::string_view key, std::string_view where,
                                      std::string_view example) {
    const toml::node* n = find(t, key);
    if (n == nullptr) return std::nullopt;
    if (!n->is_integer()) {
      wrong_type(*n, key, where, "an integer", example);
      return std::nullopt;
    }
    return n->as_integer()->get();
  }

  std::optional<StringList> get_string_list(const toml::table& t, std::string_view key, std::string_view where,
                                            std::string_view example) {
    const toml::node* n = find(t, key);
    if (n == nullptr) return std::nullopt;
    if (!n->is_array()) {
      wrong_type(*n, key, where, "an array of strings", example);
      return std::nullopt;
    }
    StringList list;
    bool ok = true;
    for (const toml::node& item : *n->as_array()) {
      if (!item.is_string()) {
        error(item.source(), "entries of " + in_quotes(key) + " in " + std::string(where) + " must be strings, not " +
                                 type_name(item) + "; write it like " + std::string(example));
        ok = false;
        continue;
      }
      list.values.push_back(item.as_string()->get());
      list.positions.push_back(item.source());
    }
    if (!ok) return std::nullopt;
    return list;
  }

  // A table of strings (labels, env); `valid_key` checks each key, `key_rule` explains it.
  std::optional<std::map<std::string, std::string>> get_string_table(const toml::table& t, std::string_view key,
                                                                     std::string_view where, std::string_view example,
                                                                     bool (*valid_key)(std::string_view),
                                                                     std::string_view key_rule) {
    const toml::node* n = find(t, key);
    if (n == nullptr) return std::nullopt;
    if (!n->is_table()) {
      wrong_type(*n, key, where, "a table of strings", example);
      return std::nullopt;
    }
    std::map<std::string, std::string> out;
    bool ok = true;
    for (auto&& [k, v] : *n->as_table()) {
      const std::string name(k.str());
      if (!valid_key(name)) {
        error(k.source(), std::string(key) + " key " + in_quotes(name) + " in " + std::string(where) + " is not valid; " +
                              std::string(key_rule));
        ok = false;
      }
      if (!v.is_string()) {
        error(v.source(), std::string(key) + " " + in_quotes(name) + " in " + std::string(where) + " must be a string, not " +
                              type_name(v) + "; put the value in quotes");
        ok = false;
        continue;
      }
      out[name] = v.as_string()->get();
    }
    if (!ok) return std::nullopt;
    return out;
  }

  // Plugin options go to the plugin as JSON; their keys keep positions for schema errors.
  // The recursion is bounded: load() refused text nested deeper than kMaxNesting, and `depth`
  // guards it again should the parser nest values some other way.
  std::optional<json> to_json(const toml::node& n, std::string_view key, std::string_view where, int depth = 1) {
    if (depth > kMaxNesting) {
      error(n.source(), "option " + in_quotes(key) + " in " + std::string(where) + " nests more than " +
                            std::to_string(kMaxNesting) + " levels deep; flatten it");
      return std::nullopt;
    }
    switch (n.type()) {
      case toml::node_type::string: return json(n.as_string()->get());
      case toml::node_type::integer: return json(n.as_integer()->get());
      case toml::node_type::boolean: return json(n.as_boolean()->get());
      case toml::node_type::floating_point: {
        const double value = n.as_floating_point()->get();
        if (!std::isfinite(value)) {
          error(n.source(), "option " + in_quotes(key) + " in " + std::string(where) +
                                " is not a finite number; plugin options cannot be inf or nan");
          return std::nullopt;
        }
        return json(value);
      }
      case toml::node_type::array: {
        json out = json::array();
        bool ok = true;
        for (const toml::node& item : *n.as_array()) {
          auto value = to_json(item, key, where, depth + 1);
          if (value) out.push_back(std::move(*value));
          else ok = false;
        }
        if (!ok) return std::nullopt;
        return out;
      }
      case toml::node_type::table: {
        json out = json::object();
        bool ok = true;
        for (auto&& [k, v] : *n.as_table()) {
          auto value = to_json(v, key, where, depth + 1);
          if (value) out[std::string(k.str())] = std::move(*value);
          else ok = false;
        }
        if (!ok) return std::nullopt;
        return out;
      }
      default:
        error(n.source(), "option " + in_quotes(key) + " in " + std::string(where) + " is " + type_name(n) +
                              ", which plugin options do not support; put the value in quotes");
        return std::nullopt;
    }
  }

  json options_to_json(const toml::table& t, std::string_view where, std::map<std::string, SourcePos>& positions) {
    json out = json::object();
    for (auto&& [k, v] : t) {
      const std::string name(k.str());
      positions[name] = pos(k.source());
      record_positions(v, name, positions);
      if (auto value = to_json(v, name, where)) out[name] = std::move(*value);
    }
    return out;
  }

  // Positions inside an option's value, keyed by path ("registries[0].password", 0-based), so
  // a plugin's complaint about a nested key points at its line.
  void record_positions(const toml::node& n, const std::string& path, std::map<std::string, SourcePos>& positions,
                        int depth = 1) {
    if (depth > kMaxNesting) return;  // to_json reports it
    if (const toml::array* a = n.as_array()) {
      for (std::size_t i = 0; i < a->size(); ++i) {
        const std::string item = path + "[" + std::to_string(i) + "]";
        positions[item] = pos((*a)[i].source());
        record_positions((*a)[i], item, positions, depth + 1);
      }
    } else if (const toml::table* t = n.as_table()) {
      for (auto&& [k, v] : *t) {
        const std::string key = path + "." + std::string(k.str());
        positions[key] = pos(k.source());
        record_positions(v, key, positions, depth + 1);
      }
    }
  }

  // An array of tables, written [[key]]; returns nothing when absent or ill-typed.
  const toml::array* get_table_array(const toml::table& root, std::string_view key) {
    const toml::node* n = find(root, key);
    if (n == nullptr) return nullptr;
    const toml::array* array = n->as_array();
    if (array == nullptr || !array->is_array_of_tables()) {
      if (array != nullptr && array->empty()) return array;
      std::string text = in_quotes(key) + " must be an array of tables, not " + type_name(*n) + "; write each entry as [[" +
                         std::string(key) + "]] (two brackets) followed by its keys";
      if (array != nullptr) {
        for (const toml::node& item : *array) {
          if (!item.is_table()) {
            error(item.source(), "entries of " + in_quotes(key) + " must be tables, not " + type_name(item) +
                                     "; write each entry as [[" + std::string(key) + "]] followed by its keys");
          }
        }
        return nullptr;
      }
      error(key_at(root, key), text);
      return nullptr;
    }
    return array;
  }

  // ---- sections --------------------------------------------------------------------------

  void read_cluster(const toml::table& root) {
    const toml::node* n = find(root, "cluster");
    if (n == nullptr) {
      error(root.source(),
            "missing [cluster] table; add [cluster] with name = \"local\" and driver = \"local\" at the top of the file");
      return;
    }
    if (!n->is_table()) {
      error(key_at(root, "cluster"), "\"cluster\" must be a table, not " + type_name(*n) +
                                         "; write [cluster] followed by name = \"...\" and driver = \"...\"");
      return;
    }
    const toml::table& t = *n->as_table();
    check_keys(t, kClusterKeys, "[cluster]");
    if (auto name = get_string(t, "name", "[cluster]", true, "name = \"local\"")) {
      if (!is_simple_name(*name, "-") || name->size() > kMaxClusterName) {
        error(find(t, "name")->source(), "cluster name " + in_quotes(*name) +
                                             " is not valid; use lowercase letters, digits and '-' (not first or last), "
                                             "at most " + std::to_string(kMaxClusterName) + " characters");
      }
      topo_.cluster_name = *name;
    }
    if (auto driver = get_string(t, "driver", "[cluster]", true, "driver = \"local\"")) {
      check_plugin_name(*driver, *find(t, "driver"), "driver");
      topo_.driver = *driver;
      driver_value_at_ = find(t, "driver")->source();
    }
    if (auto runtime = get_string(t, "runtime", "[cluster]", false, "runtime = \"process\"")) {
      check_plugin_name(*runtime, *find(t, "runtime"), "runtime");
      topo_.runtime = *runtime;
    }
  }

  void check_plugin_name(const std::string& name, const toml::node& n, std::string_view kind) {
    if (!is_simple_name(name, "-") || name.size() > kMaxName) {
      error(n.source(), std::string(kind) + " plugin name " + in_quotes(name) +
                            " is not valid; plugin names are lowercase letters, digits and '-' (run `flotilla plugins` "
                            "to list the installed ones)");
    }
  }

  void read_driver(const toml::table& root) {
    if (driver_value_at_) topo_.driver_pos = pos(*driver_value_at_);
    const toml::node* n = find(root, "driver");
    if (n == nullptr) return;
    if (!n->is_table()) {
      error(key_at(root, "driver"), "\"driver\" must be a table of driver option tables, not " + type_name(*n) +
                                        "; choose the driver with driver = \"...\" in [cluster] and give its options in "
                                        "[driver.NAME]");
      return;
    }
    for (auto&& [k, v] : *n->as_table()) {
      const std::string name(k.str());
      if (!v.is_table()) {
        error(k.source(), "\"" + name + "\" in [driver] must be a table of options of the driver " + in_quotes(name) +
                              ", not " + type_name(v) + "; put the driver's options under [driver." +
                              (topo_.driver.empty() ? std::string("NAME") : topo_.driver) + "]");
        continue;
      }
      if (name != topo_.driver) continue;  // other drivers' tables stay for a one-line swap
      topo_.driver_pos = pos(v.source());
      topo_.driver_config = options_to_json(*v.as_table(), "[driver." + name + "]", topo_.driver_option_pos);
    }
  }

  // Every [runtime.NAME] table is kept: which runtime a node gets may be the driver's choice,
  // known only once the plugins are loaded, where the engine checks the tables.
  void read_runtimes(const toml::table& root) {
    const toml::node* n = find(root, "runtime");
    if (n == nullptr) return;
    if (!n->is_table()) {
      error(key_at(root, "runtime"), "\"runtime\" must be a table of runtime option tables, not " + type_name(*n) +
                                         "; give a runtime's options in [runtime.NAME], e.g. [runtime.docker]");
      return;
    }
    for (auto&& [k, v] : *n->as_table()) {
      const std::string name(k.str());
      if (!v.is_table()) {
        error(k.source(), "\"" + name + "\" in [runtime] must be a table of options of the runtime " + in_quotes(name) +
                              ", not " + type_name(v) + "; put the runtime's options under [runtime." + name + "]");
        continue;
      }
      check_plugin_name(name, v, "runtime");
      RuntimeOptions& r = topo_.runtime_options[name];
      r.pos = pos(v.source());
      r.options = options_to_json(*v.as_table(), "[runtime." + name + "]", r.option_pos);
    }
  }

  void read_groups(const toml::table& root) {
    const toml::array* array = get_table_array(root, "nodes");
    if (array == nullptr) return;
    // node name -> index of the group that made it, to report clashes once per pair of groups
    std::unordered_map<std::string, std::size_t> owner;
    std::set<std::pair<std::size_t, std::size_t>> reported;
    std::unordered_map<std::string, toml::source_region> group_names;
    for (const toml::node& item : *array) {
      const toml::table& t = *item.as_table();
      check_keys(t, kGroupKeys, "[[nodes]]");
      NodeGroup group;
      group.pos = pos(t.source());
      bool ok = true;
      auto name = get_string(t, "name", "[[nodes]]", true, "name = \"swarm\"");
      toml::source_region name_at = t.source();
      if (name) {
        name_at = find(t, "name")->source();
        group.name = *name;
        if (!is_simple_name(*name, "-") || name->size() > kMaxName) {
          error(name_at, "node group name " + in_quotes(*name) +
                             " is not valid; use lowercase letters, digits and '-' (not first or last), at most " +
                             std::to_string(kMaxName) + " characters");
          ok = false;
        }
      } else {
        ok = false;
      }
      const std::string where = name ? "node group " + in_quotes(*name) : "[[nodes]]";
      if (auto count = get_int(t, "count", where, "count = 3")) {
        if (*count < 0 || *count > kMaxCount) {
          error(find(t, "count")->source(), "count of " + where + " is " + std::to_string(*count) +
                                                "; it must be between 0 and " + std::to_string(kMaxCount));
          ok = false;
        } else {
          group.count = static_cast<int>(*count);
        }
      } else if (find(t, "count") != nullptr) {
        ok = false;
      }
      const std::string longest = group.count > 1 ? group.name + "-" + std::to_string(group.count) : group.name;
      if (ok && longest.size() > kMaxName) {
        error(name_at, "node names of " + where + " would be longer than " + std::to_string(kMaxName) + " characters (" +
                           in_quotes(longest) + "); shorten the group name");
        ok = false;
      }
      if (auto roles = get_string_list(t, "roles", where, "roles = [\"swarm\"]")) {
        for (std::size_t i = 0; i < roles->values.size(); ++i) {
          const std::string& role = roles->values[i];
          if (!is_simple_name(role, "-_") || role.size() > kMaxName) {
            error(roles->positions[i], "role " + in_quotes(role) + " of " + where +
                                           " is not valid; use lowercase letters, digits, '-' and '_' (not first or "
                                           "last), at most " + std::to_string(kMaxName) + " characters");
          } else if (std::find(group.roles.begin(), group.roles.end(), role) == group.roles.end()) {
            group.roles.push_back(role);
            declared_roles_.insert(role);
          }
        }
      }
      if (auto labels = get_string_table(t, "labels", where, "labels = { zone = \"a\" }", is_label_key,
                                         "label keys are letters, digits, '_', '.' and '-'")) {
        group.labels = std::move(*labels);
      }
      if (name) {
        if (auto [it, inserted] = group_names.emplace(*name, name_at); !inserted) {
          error(name_at, "node group " + in_quotes(*name) + " is defined twice (first at " + pos(it->second).str() +
                             "); give each [[nodes]] group its own name, or raise count on one");
          ok = false;
        }
      }
      if (!ok) {
        groups_failed_ = true;
        continue;
      }

      const std::size_t index = topo_.groups.size();
      for (int i = 1; i <= group.count; ++i) {
        NodeSpec node;
        node.name = group.count == 1 ? group.name : group.name + "-" + std::to_string(i);
        node.group = group.name;
        node.index = i;
        node.roles = group.roles;
        node.labels = group.labels;
        if (auto [it, inserted] = owner.emplace(node.name, index); !inserted) {
          if (reported.insert({it->second, index}).second) {
            const NodeGroup& other = topo_.groups[it->second];
            error(name_at, "node " + in_quotes(node.name) + " of " + where + " clashes with node " + in_quotes(node.name) +
                               " of node group " + in_quotes(other.name) + " (" + other.pos.str() +
                               "); rename one of the groups (a group of count N > 1 makes nodes NAME-1..NAME-N)");
          }
          continue;
        }
        node_index_.emplace(node.name, topo_.nodes.size());
        topo_.nodes.push_back(std::move(node));
      }
      topo_.groups.push_back(std::move(group));
    }
  }

  PlacementSource read_placement(const toml::table& t, std::string_view where) {
    PlacementSource p;
    if (auto roles = get_string_list(t, "roles", where, "roles = [\"swarm\"]")) {
      p.roles = std::move(*roles);
      p.roles_at = key_at(t, "roles");
    }
    if (auto nodes = get_string_list(t, "nodes", where, "nodes = [\"swarm-1\"]")) {
      p.nodes = std::move(*nodes);
      p.nodes_at = key_at(t, "nodes");
    }
    return p;
  }

  void read_addons(const toml::table& root) {
    const toml::array* array = get_table_array(root, "addons");
    if (array == nullptr) return;
    std::unordered_map<std::string, SourcePos> names;
    for (const toml::node& item : *array) {
      const toml::table& t = *item.as_table();
      check_keys(t, kAddonKeys, "[[addons]]");
      AddonSpec addon;
      addon.pos = pos(t.source());
      auto plugin = get_string(t, "plugin", "[[addons]]", true, "plugin = \"haproxy\"");
      if (plugin) {
        check_plugin_name(*plugin, *find(t, "plugin"), "addon");
        addon.plugin = *plugin;
      }
      auto name = get_string(t, "name", "[[addons]]", false, "name = \"haproxy\"");
      const toml::node* name_node = find(t, name ? "name" : "plugin");
      if (name) {
        if (!is_simple_name(*name, "-_") || name->size() > kMaxName) {
          error(name_node->source(), "addon name " + in_quotes(*name) +
                                         " is not valid; use lowercase letters, digits, '-' and '_' (not first or last), "
                                         "at most " + std::to_string(kMaxName) + " characters");
        }
        addon.name = *name;
      } else if (plugin) {
        addon.name = *plugin;
      }
      const std::string where = addon.name.empty() ? std::string("[[addons]]") : "addon " + in_quotes(addon.name);
      if (!addon.name.empty() && name_node != nullptr) {
        const SourcePos here = pos(name_node->source());
        if (auto [it, inserted] = names.emplace(addon.name, here); !inserted) {
          error(name_node->source(), "addon name " + in_quotes(addon.name) + " is already used by the addon at " +
                                         it->second.str() + "; give one of them a distinct name = \"...\"");
        }
      }
      PlacementSource placement = read_placement(t, where);
      if (const toml::node* options = find(t, "options")) {
        if (!options->is_table()) {
          wrong_type(*options, "options", where, "a table", "[addons.options] followed by the plugin's keys");
        } else {
          addon.options = options_to_json(*options->as_table(), "the options of " + where, addon.option_pos);
        }
      }
      addon_placements_.push_back(std::move(placement));
      topo_.addons.push_back(std::move(addon));
    }
  }

  void read_services(const toml::table& root) {
    const toml::array* array = get_table_array(root, "services");
    if (array == nullptr) return;
    std::unordered_map<std::string, SourcePos> names;
    std::unordered_map<std::string, std::string> dns_labels;  // label -> service name
    for (const toml::node& item : *array) {
      const toml::table& t = *item.as_table();
      check_keys(t, kServiceKeys, "[[services]]");
      ServiceSpec service;
      ServiceSource source;
      service.pos = pos(t.source());
      auto name = get_string(t, "name", "[[services]]", true, "name = \"hello/v1\"");
      if (name) {
        const toml::source_region name_at = find(t, "name")->source();
        service.name = *name;
        if (auto checked = check_service_name(*name); !checked) {
          error(name_at, checked.error().message);
        } else {
          if (auto [it, inserted] = names.emplace(*name, pos(name_at)); !inserted) {
            error(name_at, "service " + in_quotes(*name) + " is defined twice (first at " + it->second.str() +
                               "); remove one, or give it another name");
          } else if (auto [dit, dinserted] = dns_labels.emplace(service_dns_label(*name), *name); !dinserted) {
            error(name_at, "service " + in_quotes(*name) + " has the same DNS name " + in_quotes(dit->first) + " as service " +
                               in_quotes(dit->second) + "; rename one of them");
          }
        }
      }
      const std::string where = name ? "service " + in_quotes(*name) : std::string("[[services]]");

      if (const toml::node* command = find(t, "command")) {
        if (command->is_string()) {
          service.command = split_whitespace(command->as_string()->get());
        } else if (auto list = get_string_list(t, "command", where,
                                               "command = [\"flotilla-hello\", \"--listen\", \"{address}:{port}\"]")) {
          service.command = std::move(list->values);
        }
        if ((command->is_string() || command->is_array()) && service.command.empty()) {
          error(command->source(), "command of " + where + " is empty; give the program and its arguments, e.g. "
                                                           "command = [\"flotilla-hello\", \"--listen\", \"{address}:{port}\"]");
        } else if (!service.command.empty() && service.command.front().empty()) {
          error(command->source(), "command of " + where + " starts with an empty program name; put the program first");
        }
        source.command_at = command->source();
      }
      if (auto image = get_string(t, "image", where, false, "image = \"sirile/node-test\"")) {
        const bool bad = image->empty() || std::any_of(image->begin(), image->end(), [](char c) {
                           return static_cast<unsigned char>(c) <= ' ' || c == 0x7f;
                         });
        if (bad) {
          error(find(t, "image")->source(),
                "image of " + where + " is not a valid image reference; write it like image = \"sirile/node-test\"");
        }
        service.image = *image;
      }
      if (find(t, "command") == nullptr && find(t, "image") == nullptr) {
        error(t.source(), where + " has neither command nor image; set command (for the process runtime) and/or image "
                                  "(for Docker runtimes)");
      }
      if (auto replicas = get_int(t, "replicas", where, "replicas = 3")) {
        if (*replicas < 0 || *replicas > kMaxReplicas) {
          error(find(t, "replicas")->source(), "replicas of " + where + " is " + std::to_string(*replicas) +
                                                   "; it must be between 0 and " + std::to_string(kMaxReplicas));
        } else {
          service.replicas = static_cast<int>(*replicas);
        }
        source.replicas_at = find(t, "replicas")->source();
      }
      if (auto port = get_int(t, "port", where, "port = 8000")) {
        if (*port < 1 || *port > 65535) {
          error(find(t, "port")->source(), "port of " + where + " is " + std::to_string(*port) +
                                               "; it must be between 1 and 65535 (leave port out for a service that "
                                               "listens on none)");
        } else {
          service.port = static_cast<int>(*port);
        }
        source.port_at = find(t, "port")->source();
      }
      if (auto health = get_string(t, "health", where, false, "health = \"/health\"")) {
        const toml::source_region health_at = find(t, "health")->source();
        if (!health->empty() && (health->front() != '/' || !std::all_of(health->begin(), health->end(), is_health_char))) {
          error(health_at, "health of " + where + " is " + in_quotes(*health) +
                               ", which is not a valid path; start it with '/' and use only letters, digits and /_.~- "
                               "(\"\" disables the check)");
        } else if (!health->empty() && find(t, "port") == nullptr) {
          error(health_at, "health of " + where + " needs a port to check; add port = ... or remove health");
        }
        service.health = *health;
      } else if (find(t, "port") == nullptr) {
        service.health.clear();  // nothing to check without a port
      }
      if (auto env = get_string_table(t, "env", where, "env = { GREETING = \"hi\" }", is_env_name,
                                      "variable names are letters, digits and '_', not starting with a digit")) {
        service.env = std::move(*env);
      }
      source.placement = read_placement(t, where);
      read_mode(t, where, service, source);
      read_update(t, where, service);
      check_placeholders(service, source, where);
      service_sources_.push_back(std::move(source));
      topo_.services.push_back(std::move(service));
    }
  }

  struct ServiceSource {
    PlacementSource placement;
    std::optional<toml::source_region> mode_at;
    std::optional<toml::source_region> command_at;
    std::optional<toml::source_region> replicas_at;
    std::optional<toml::source_region> port_at;
    bool placement_ok = false;
  };

  // `[services.update]`: the rollout strategy of a changed spec (see UpdateStrategy).
  void read_update(const toml::table& t, const std::string& where, ServiceSpec& service) {
    const toml::node* n = find(t, "update");
    if (n == nullptr) return;
    if (!n->is_table()) {
      wrong_type(*n, "update", where, "a table", "[services.update] with max_parallel = 2 under the service");
      return;
    }
    const toml::table& u = *n->as_table();
    const std::string in = "[services.update] of " + where;
    check_keys(u, kUpdateKeys, in);
    UpdateStrategy& s = service.update;
    if (auto v = get_int(u, "max_parallel", in, "max_parallel = 2")) {
      if (*v < 1 || *v > kMaxReplicas) {
        error(find(u, "max_parallel")->source(), "max_parallel of " + where + " is " + std::to_string(*v) +
                                                     "; it must be between 1 and " + std::to_string(kMaxReplicas) +
                                                     " (how many instances are replaced at once)");
      } else {
        s.max_parallel = static_cast<int>(*v);
      }
    }
    if (auto v = get_int(u, "canary", in, "canary = 1")) {
      if (*v < 0 || *v > kMaxReplicas) {
        error(find(u, "canary")->source(), "canary of " + where + " is " + std::to_string(*v) + "; it must be between 0 and " +
                                               std::to_string(kMaxReplicas) + " (instances of a new version run before `flotilla promote`)");
      } else {
        s.canary = static_cast<int>(*v);
      }
    }
    const auto duration = [&](std::string_view key, std::chrono::seconds& out, bool zero_ok) {
      auto text = get_string(u, key, in, false, std::string(key) + " = \"10s\"");
      if (!text) return;
      auto d = parse_duration(*text);
      if (!d) error(find(u, key)->source(), std::string(key) + " of " + where + ": " + d.error().message);
      else if (!zero_ok && d->count() == 0) error(find(u, key)->source(), std::string(key) + " of " + where + " must be longer than 0s");
      else out = *d;
    };
    duration("min_healthy_time", s.min_healthy_time, true);
    duration("healthy_deadline", s.healthy_deadline, false);
    if (const toml::node* b = find(u, "auto_revert")) {
      if (!b->is_boolean()) wrong_type(*b, "auto_revert", in, "true or false", "auto_revert = false");
      else s.auto_revert = b->as_boolean()->get();
    }
  }

  // `mode = "swarm"`: Swarm schedules the replicas on the swarm addon's nodes, so the service
  // needs an image and takes its placement from that addon.
  void read_mode(const toml::table& t, const std::string& where, ServiceSpec& service, ServiceSource& source) {
    auto mode = get_string(t, "mode", where, false, "mode = \"swarm\"");
    if (!mode) return;
    source.mode_at = find(t, "mode")->source();
    if (*mode != "swarm" && *mode != "flotilla") {
      error(*source.mode_at, "mode of " + where + " is " + in_quotes(*mode) +
                                 "; it is \"flotilla\" (instances placed by Flotilla, the default) or \"swarm\" (a Docker Swarm "
                                 "service deployed by the swarm addon)");
      return;
    }
    service.swarm_mode = *mode == "swarm";
    if (!service.swarm_mode) return;
    if (service.image.empty())
      error(*source.mode_at, where + " has mode = \"swarm\" but no image; a Swarm service runs an image: add image = \"...\"");
    if (source.placement.roles_at || source.placement.nodes_at)
      error(placement_at(source.placement), where + " has mode = \"swarm\", so Swarm places its replicas on the nodes of the swarm "
                                                 "addon; remove roles and nodes here and set the placement on the swarm addon");
  }

  void check_placeholders(const ServiceSpec& service, const ServiceSource& source, const std::string& where) {
    if (!source.command_at) return;
    std::set<std::string> seen;
    for (const auto& arg : service.command) {
      for (std::size_t open = arg.find('{'); open != std::string::npos; open = arg.find('{', open + 1)) {
        const std::size_t close = arg.find('}', open);
        if (close == std::string::npos) break;
        const std::string word = arg.substr(open + 1, close - open - 1);
        // Only {identifier} is a placeholder; other braces (JSON, shell) are left alone.
        if (word.empty() || !std::all_of(word.begin(), word.end(), [](char c) { return (c >= 'a' && c <= 'z') || c == '_'; }))
          continue;
        if (!seen.insert(word).second) continue;
        if (std::find(kPlaceholders.begin(), kPlaceholders.end(), word) == kPlaceholders.end()) {
          std::string text = "command of " + where + " uses the unknown placeholder {" + word + "}";
          if (auto guess = closest_match(word, kPlaceholders)) text += "; did you mean {" + *guess + "}?";
          else text += "; the placeholders are {address}, {port}, {instance} and {node}";
          error(*source.command_at, text);
        } else if (word == "port" && service.port == 0 && !source.port_at) {
          error(*source.command_at, "command of " + where + " uses {port} but the service has no port; add port = ...");
        }
      }
    }
  }

  // ---- checks across sections ------------------------------------------------------------

  // Reports unknown roles and nodes; true when every name is known.
  bool check_names(const PlacementSource& p, const std::string& where) {
    bool ok = true;
    const std::vector<std::string> roles(declared_roles_.begin(), declared_roles_.end());
    for (std::size_t i = 0; i < p.roles.values.size(); ++i) {
      const std::string& role = p.roles.values[i];
      if (declared_roles_.count(role) != 0) continue;
      ok = false;
      std::string text = "role " + in_quotes(role) + " in the placement of " + where + " is not a role of any node group";
      if (role.size() > kMaxName) text += "; roles are at most " + std::to_string(kMaxName) + " characters";
      else if (auto guess = closest_match(role, roles)) text += "; did you mean " + in_quotes(*guess) + "?";
      else if (roles.empty()) text += "; no [[nodes]] group has roles: add roles = [\"" + role + "\"] to one";
      else text += "; the roles are " + short_list(roles);
      error(p.roles.positions[i], text);
    }
    for (std::size_t i = 0; i < p.nodes.values.size(); ++i) {
      const std::string& node = p.nodes.values[i];
      if (node_index_.count(node) != 0) continue;
      ok = false;
      if (groups_failed_) continue;  // the node may belong to a group already reported
      std::vector<std::string> names;
      names.reserve(topo_.nodes.size());
      for (const auto& n : topo_.nodes) names.push_back(n.name);
      std::string text = "node " + in_quotes(node) + " in the placement of " + where + " does not exist";
      if (node.size() > kMaxName) text += "; node names are at most " + std::to_string(kMaxName) + " characters";
      else if (auto guess = closest_match(node, names)) text += "; did you mean " + in_quotes(*guess) + "?";
      else if (names.empty()) text += "; the topology has no nodes: add a [[nodes]] group with count >= 1";
      else text += "; the nodes are " + short_list(names);
      error(p.nodes.positions[i], text);
    }
    return ok;
  }

  // The key of the placement's first non-empty list, for messages about the whole placement.
  static toml::source_region placement_at(const PlacementSource& p) {
    return !p.roles.values.empty() || !p.nodes_at ? *p.roles_at : *p.nodes_at;
  }

  static Placement to_placement(const PlacementSource& p) { return Placement{p.roles.values, p.nodes.values}; }

  static std::string describe(const Placement& p) {
    std::vector<std::string> parts;
    if (!p.roles.empty()) parts.push_back("roles " + join(p.roles));
    if (!p.nodes.empty()) parts.push_back("nodes " + join(p.nodes));
    return join(parts, " and ");
  }

  void check_placements() {
    for (std::size_t i = 0; i < topo_.addons.size(); ++i) {
      AddonSpec& addon = topo_.addons[i];
      const PlacementSource& source = addon_placements_[i];
      const std::string where = "addon " + in_quotes(addon.name);
      addon.placement = to_placement(source);
      if (!check_names(source, where) || addon.placement.empty() || groups_failed_) continue;
      if (topo_.place(addon.placement).empty()) {
        error(placement_at(source),
              "unreachable placement: " + describe(addon.placement) + " of " + where +
                  " match no node (their groups have count = 0); raise the count of such a group or change the placement");
      }
    }
    const bool has_swarm = std::any_of(topo_.nodes.begin(), topo_.nodes.end(), [](const NodeSpec& n) {
      return std::find(n.roles.begin(), n.roles.end(), "swarm") != n.roles.end();
    });
    for (std::size_t i = 0; i < topo_.services.size(); ++i) {
      ServiceSpec& service = topo_.services[i];
      ServiceSource& source = service_sources_[i];
      const std::string where = "service " + in_quotes(service.name);
      if (service.swarm_mode) {
        const bool has_addon = std::any_of(topo_.addons.begin(), topo_.addons.end(), [](const AddonSpec& a) { return a.plugin == "swarm"; });
        if (!has_addon)
          error(*source.mode_at, where + " has mode = \"swarm\" but the topology has no swarm addon to deploy it; add [[addons]] "
                                         "plugin = \"swarm\" or remove mode");
        continue;  // Swarm places it; its ports are published on ports the nodes' dockerd picks
      }
      service.placement = to_placement(source.placement);
      if (!check_names(source.placement, where)) continue;
      const bool explicit_placement = !service.placement.empty();
      if (!explicit_placement && has_swarm) service.placement.roles = {"swarm"};
      if (groups_failed_) continue;  // nodes are missing: reporting placements would only repeat that
      source.placement_ok = true;
      if (service.replicas == 0 || !topo_.place(service.placement).empty()) continue;
      source.placement_ok = false;
      if (explicit_placement) {
        error(placement_at(source.placement),
              "unreachable placement: " + describe(service.placement) + " of " + where +
                  " match no node (their groups have count = 0), but it has replicas = " +
                  std::to_string(service.replicas) + "; raise the count of such a group, change the placement or set "
                  "replicas = 0");
      } else {
        error(source.replicas_at ? pos(*source.replicas_at) : service.pos,
              where + " has replicas = " + std::to_string(service.replicas) +
                  " but the topology has no node to place them on; add a [[nodes]] group with count >= 1 or set "
                  "replicas = 0");
      }
    }
  }

  void check_ports() {
    struct Use {
      std::size_t service;
      int first;
      int last;
      std::vector<std::size_t> nodes;  // sorted indexes into topo_.nodes
    };
    std::vector<Use> uses;
    for (std::size_t i = 0; i < topo_.services.size(); ++i) {
      const ServiceSpec& service = topo_.services[i];
      const ServiceSource& source = service_sources_[i];
      if (service.port == 0 || service.replicas == 0 || !source.placement_ok) continue;
      Use use{i, service.port, service.port, {}};
      for (const NodeSpec* node : topo_.place(service.placement)) use.nodes.push_back(node_index_.at(node->name));
      std::sort(use.nodes.begin(), use.nodes.end());
      const int per_node = (service.replicas + static_cast<int>(use.nodes.size()) - 1) / static_cast<int>(use.nodes.size());
      use.last = service.port + per_node - 1;
      const toml::source_region port_at = *source.port_at;
      if (use.last > 65535) {
        error(port_at, "service " + in_quotes(service.name) + " needs ports " + std::to_string(use.first) + "-" +
                           std::to_string(use.last) + " (" + std::to_string(per_node) +
                           " instances on a node, one port each), beyond 65535; lower port or place it on more nodes");
        continue;
      }
      for (const Use& other : uses) {
        if (other.last < use.first || use.last < other.first) continue;
        std::vector<std::size_t> shared;
        std::set_intersection(use.nodes.begin(), use.nodes.end(), other.nodes.begin(), other.nodes.end(),
                              std::back_inserter(shared));
        if (shared.empty()) continue;
        const ServiceSpec& first = topo_.services[other.service];
        std::string nodes_text = "node " + in_quotes(topo_.nodes[shared.front()].name);
        if (shared.size() > 1) nodes_text += " and " + std::to_string(shared.size() - 1) + " more";
        error(port_at, "ports " + std::to_string(use.first) + "-" + std::to_string(use.last) + " of service " +
                           in_quotes(service.name) + " clash with ports " + std::to_string(other.first) + "-" +
                           std::to_string(other.last) + " of service " + in_quotes(first.name) + " (" + first.pos.str() +
                           ") on " + nodes_text + "; choose port = " + std::to_string(other.last + 1) +
                           " or higher, or place the services on different nodes (instance k on a node uses port + k - 1)");
        break;
      }
      uses.push_back(std::move(use));
    }
  }

  std::string file_;
  Topology topo_;
  std::vector<Issue> issues_;
  std::optional<toml::source_region> driver_value_at_;
  bool groups_failed_ = false;
  std::set<std::string> declared_roles_;
  std::unordered_map<std::string, std::size_t> node_index_;
  std::vector<PlacementSource> addon_placements_;
  std::vector<ServiceSource> service_sources_;
};

}  // namespace

std::string SourcePos::str() const {
  if (line == 0) return file;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

std::string SourcePos::located(std::string_view text) const {
  if (file.empty() && line == 0) return std::string(text);
  const std::string prefix = str() + ": ";
  std::string out = prefix;
  for (const char c : text) {
    out += c;
    if (c == '\n') out += prefix;
  }
  return out;
}

const NodeSpec* Topology::find_node(const std::string& name) const {
  // Nodes are expanded from the groups in order, so a name maps to an offset without a scan;
  // the name check guards against a model edited by hand, which falls back to the scan.
  std::size_t offset = 0;
  for (const auto& group : groups) {
    const auto count = static_cast<std::size_t>(std::max(group.count, 0));
    std::optional<std::size_t> index;
    if (group.count == 1 && name == group.name) {
      index = offset;
    } else if (group.count > 1 && name.size() > group.name.size() + 1 && name.starts_with(group.name) &&
               name[group.name.size()] == '-') {
      std::size_t i = 0;
      const char* begin = name.data() + group.name.size() + 1;
      const char* end = name.data() + name.size();
      if (auto [ptr, ec] = std::from_chars(begin, end, i); ec == std::errc() && ptr == end && i >= 1 && i <= count)
        index = offset + i - 1;
    }
    if (index && *index < nodes.size() && nodes[*index].name == name) return &nodes[*index];
    offset += count;
  }
  for (const auto& node : nodes) {
    if (node.name == name) return &node;
  }
  return nullptr;
}

const ServiceSpec* Topology::find_service(const std::string& name) const {
  for (const auto& service : services) {
    if (service.name == name) return &service;
  }
  return nullptr;
}

std::vector<const NodeSpec*> Topology::place(const Placement& p) const {
  std::vector<const NodeSpec*> out;
  if (p.empty()) {
    out.reserve(nodes.size());
    for (const auto& node : nodes) out.push_back(&node);
    return out;
  }
  const std::unordered_set<std::string> names(p.nodes.begin(), p.nodes.end());
  for (const auto& node : nodes) {
    const bool by_role = std::any_of(node.roles.begin(), node.roles.end(), [&](const std::string& role) {
      return std::find(p.roles.begin(), p.roles.end(), role) != p.roles.end();
    });
    if (by_role || names.count(node.name) != 0) out.push_back(&node);
  }
  return out;
}

Result<void> check_service_name(const std::string& name) {
  const std::string rule =
      "; use lowercase letters and digits in segments joined by one '-', '_' or '/' (like \"hello/v1\"), at most " +
      std::to_string(kMaxName) + " characters";
  if (name.empty()) return fail("service name is empty" + rule);
  if (name.size() > kMaxName)
    return fail("service name " + in_quotes(name) + " is " + std::to_string(name.size()) + " characters long" + rule);
  bool after_separator = true;  // the start counts as one: no leading separator
  for (char c : name) {
    if (is_lower_alnum(c)) {
      after_separator = false;
    } else if (c == '-' || c == '_' || c == '/') {
      if (after_separator) return fail("service name " + in_quotes(name) + " has a separator at the start or twice in a row" + rule);
      after_separator = true;
    } else {
      const bool printable = static_cast<unsigned char>(c) > ' ' && static_cast<unsigned char>(c) < 0x7f;
      return fail("service name " + in_quotes(name) + " contains " +
                  (printable ? "the character " + in_quotes(std::string(1, c)) : std::string("a space, control or non-ASCII character")) +
                  rule);
    }
  }
  if (after_separator) return fail("service name " + in_quotes(name) + " ends with a separator" + rule);
  return {};
}

std::string service_dns_label(const std::string& name) {
  std::string label = name;
  std::replace_if(label.begin(), label.end(), [](char c) { return c == '/' || c == '_'; }, '-');
  return label;
}

Result<Topology> parse_topology(const std::string& text, const std::filesystem::path& file) {
  return Loader(file.string()).load(text, file);
}

Result<Topology> load_topology(const std::filesystem::path& file) {
  auto text = read_input_file(file, kMaxTopologyBytes, "topology file");
  if (!text) return std::unexpected(text.error());
  return parse_topology(*text, file);
}

}  // namespace flotilla
