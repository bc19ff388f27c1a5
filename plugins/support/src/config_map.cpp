#include "flotilla/support/config_map.hpp"

#include "flotilla/support/secret.hpp"

#include <algorithm>
#include <regex>

namespace flotilla::support {
namespace {

std::string in_quotes(const std::string& name) { return json(name).dump(); }

std::string shown(const json& value) {
  constexpr std::size_t kMaxShown = 60;
  std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > kMaxShown) text = text.substr(0, kMaxShown) + "...";
  return text;
}

bool has_type(const json& value, OptionType type) {
  switch (type) {
    case OptionType::String: return value.is_string();
    case OptionType::Integer: return value.is_number_integer();
    case OptionType::Number: return value.is_number();
    case OptionType::Boolean: return value.is_boolean();
    case OptionType::StringArray: return value.is_array();
    case OptionType::Table: return value.is_object();
  }
  return false;
}

std::string article(OptionType type) {
  switch (type) {
    case OptionType::Integer: return "an integer";
    case OptionType::StringArray: return "an array of strings";
    case OptionType::Table: return "a table";
    default: return "a " + std::string(type_name(type));
  }
}

bool full_match(const std::string& pattern, const std::string& text) {
  return std::regex_match(text, std::regex(pattern, std::regex::ECMAScript));
}

}  // namespace

std::string_view type_name(OptionType type) {
  switch (type) {
    case OptionType::String: return "string";
    case OptionType::Integer: return "integer";
    case OptionType::Number: return "number";
    case OptionType::Boolean: return "boolean";
    case OptionType::StringArray: return "array";
    case OptionType::Table: return "table";
  }
  return "string";
}

namespace {
std::string joined(const std::vector<OptionError>& errors) {
  std::string out;
  for (const auto& e : errors) out += (out.empty() ? "" : "\n") + e.message;
  return out;
}
}  // namespace

ConfigError::ConfigError(std::vector<OptionError> errors)
    : std::invalid_argument(joined(errors)), errors_(std::move(errors)) {}

json OptionSpec::schema() const {
  json entry = {{"type", type_name(type)}};
  if (!description.empty()) entry["description"] = description;
  if (!default_value.is_null()) entry["default"] = default_value;
  if (required) entry["required"] = true;
  if (secret) entry["secret"] = true;
  if (minimum) entry["minimum"] = *minimum;
  if (maximum) entry["maximum"] = *maximum;
  if (pattern) entry["pattern"] = *pattern;
  if (!one_of.empty()) entry["enum"] = one_of;
  return entry;
}

std::vector<OptionError> OptionSpec::check(const json& value) const {
  std::vector<OptionError> out;
  const std::string key = "option " + in_quotes(name);
  const auto report = [&](std::string text) { out.push_back({name, key + " " + std::move(text)}); };
  if (!has_type(value, type)) {
    report("must be " + article(type) + ", not " + shown(value));
    return out;
  }
  if (!one_of.empty() && std::find(one_of.begin(), one_of.end(), value) == one_of.end()) {
    std::string choices;
    for (const auto& choice : one_of) choices += (choices.empty() ? "" : ", ") + shown(choice);
    report("is " + shown(value) + "; it must be one of " + choices);
  }
  if (value.is_number()) {
    const double v = value.get<double>();
    if (minimum && v < minimum->get<double>()) report("is " + shown(value) + "; it must be at least " + shown(*minimum));
    if (maximum && v > maximum->get<double>()) report("is " + shown(value) + "; it must be at most " + shown(*maximum));
  }
  if (type == OptionType::StringArray) {
    for (const auto& item : value) {
      if (!item.is_string()) {
        report("must be an array of strings; " + shown(item) + " is not a string");
      } else if (pattern && !full_match(*pattern, item.get<std::string>())) {
        report("has the entry " + shown(item) + ", which does not match the pattern " + *pattern);
      }
    }
  } else if (pattern && value.is_string()) {
    const std::string text = value.get<std::string>();
    // A secret may still be an unresolved reference when checked before the engine runs.
    const bool reference = secret && is_secret_reference(text);
    if (!reference && !full_match(*pattern, text))
      report("is " + shown(value) + ", which does not match the pattern " + *pattern);
  }
  return out;
}

json OptionTable::schema() const {
  json out = json::object();
  for (const auto& spec : specs_) out[spec.name] = spec.schema();
  return out;
}

std::string OptionTable::manifest(std::string_view manifest_json) const {
  json manifest = manifest_json.empty() ? json::object() : json::parse(manifest_json);
  if (!manifest.is_object()) throw std::invalid_argument("a plugin manifest must be a JSON object");
  manifest["schema"] = schema();
  return manifest.dump();
}

std::vector<OptionError> OptionTable::check(const json& config) const {
  std::vector<OptionError> out;
  if (config.is_null()) return check(json::object());
  if (!config.is_object()) return {{"", "the options must be a table, not " + shown(config)}};
  for (const auto& item : config.items()) {
    const std::string& key = item.key();
    const bool known = std::any_of(specs_.begin(), specs_.end(), [&](const OptionSpec& s) { return s.name == key; });
    if (!known) out.push_back({key, "option " + in_quotes(key) + " is not known; remove it"});
  }
  for (const auto& spec : specs_) {
    const auto it = config.find(spec.name);
    if (it == config.end() || it->is_null()) {
      if (spec.required) out.push_back({spec.name, "missing required option " + in_quotes(spec.name)});
      continue;
    }
    for (auto& e : spec.check(*it)) out.push_back(std::move(e));
  }
  return out;
}

OptionSpec& OptionTable::add(OptionSpec spec) {
  const auto same = [&](const OptionSpec& s) { return s.name == spec.name; };
  if (std::any_of(specs_.begin(), specs_.end(), same))
    throw std::logic_error("option " + in_quotes(spec.name) + " is declared twice");
  specs_.push_back(std::move(spec));
  return specs_.back();
}

OptionSpec& OptionTable::last() {
  if (specs_.empty()) throw std::logic_error("an option modifier comes before any option");
  return specs_.back();
}

}  // namespace flotilla::support
