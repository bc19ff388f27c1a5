#include "schema.hpp"

#include "flotilla/support/secret.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <regex>
#include <tuple>

namespace flotilla {
namespace {

const std::vector<std::string> kTypes = {"string", "integer", "number", "boolean", "array", "table"};
const std::vector<std::string> kEntryKeys = {"type",   "default", "enum",    "required",
                                             "secret", "description", "minimum", "maximum", "pattern"};
constexpr std::string_view kRedacted = "[redacted]";  // the marker the log redaction uses too

struct Issue {
  std::uint32_t line = 0;
  std::uint32_t column = 0;
  std::string text;
};

// JSON quoting escapes control characters; invalid UTF-8 is shown as U+FFFD, never thrown on.
std::string in_quotes(std::string_view s) { return json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace); }

// A value for a message: JSON text, never throwing on bad UTF-8, cut short when long.
std::string show(const json& value) {
  constexpr std::size_t kMaxShown = 60;
  std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > kMaxShown) text = text.substr(0, kMaxShown) + "...";
  return text;
}

std::string join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += sep;
    out += item;
  }
  return out;
}

// Sorted by position so a user reads the problems top to bottom, as in the file.
std::string join_issues(std::vector<Issue> issues) {
  std::stable_sort(issues.begin(), issues.end(),
                   [](const Issue& a, const Issue& b) { return std::tie(a.line, a.column) < std::tie(b.line, b.column); });
  std::string out;
  for (const auto& issue : issues) {
    if (!out.empty()) out += '\n';
    out += issue.text;
  }
  return out;
}

bool has_type(const json& value, const std::string& type) {
  if (type == "string") return value.is_string();
  if (type == "integer") return value.is_number_integer();
  if (type == "number") return value.is_number();
  if (type == "boolean") return value.is_boolean();
  if (type == "array") return value.is_array();
  if (type == "table") return value.is_object();
  return false;
}

std::string json_type_name(const json& value) {
  switch (value.type()) {
    case json::value_t::string: return "a string";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "an integer";
    case json::value_t::number_float: return "a float";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::array: return "an array";
    case json::value_t::object: return "a table";
    case json::value_t::null: return "null";
    default: return "an unsupported value";
  }
}

std::string article_type(const std::string& type) {
  if (type == "integer") return "an integer";
  if (type == "array") return "an array";
  if (type == "table") return "a table";
  return "a " + type;
}

bool is_secret(const json& entry) { return entry.is_object() && entry.value("secret", false) == true; }

// "file:line:column: ", or nothing when the caller knows no position.
std::string at(const SourcePos& pos) { return pos.file.empty() && pos.line == 0 ? std::string() : pos.str() + ": "; }

SourcePos pos_of(const std::map<std::string, SourcePos>& positions, const std::string& key, const SourcePos& table_pos) {
  auto it = positions.find(key);
  return it == positions.end() ? table_pos : it->second;
}

// Damerau-Levenshtein in its "optimal string alignment" form ("prot" is one edit from "port"),
// computed only as far as `limit`: cells more than `limit` off the diagonal cannot lead to a
// distance within it, so each row is a band of 2 * limit + 1 cells and two long names cost
// time linear in their length, in three rows of memory. Returns limit + 1 for anything farther.
std::size_t edit_distance_within(std::string_view a, std::string_view b, std::size_t limit) {
  const std::size_t n = a.size();
  const std::size_t m = b.size();
  const std::size_t far = limit + 1;
  if ((n > m ? n - m : m - n) > limit) return far;
  const auto lower = [](char c) { return std::tolower(static_cast<unsigned char>(c)); };
  std::vector<std::size_t> before(m + 1, far), previous(m + 1, far), row(m + 1, far);
  for (std::size_t j = 0; j <= std::min(m, limit); ++j) previous[j] = j;
  for (std::size_t i = 1; i <= n; ++i) {
    const std::size_t first = i > limit ? i - limit : 1;
    const std::size_t last = std::min(m, i + limit);
    // The cells just outside the band are all the next row reads of this one.
    row[first - 1] = first == 1 && i <= limit ? i : far;
    if (last < m) row[last + 1] = far;
    for (std::size_t j = first; j <= last; ++j) {
      const std::size_t cost = lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1;
      std::size_t d = std::min({previous[j] + 1, row[j - 1] + 1, previous[j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d = std::min(d, before[j - 2] + 1);
      row[j] = std::min(d, far);
    }
    std::swap(before, previous);
    std::swap(previous, row);
  }
  return std::min(previous[m], far);
}


// ECMAScript, matched against the whole string, as the plugin support library's config map does.
bool matches(const std::string& pattern, const std::string& text) {
  return std::regex_match(text, std::regex(pattern, std::regex::ECMAScript));
}

// What is wrong with `value` against the entry's minimum, maximum and pattern; "" when nothing.
// An array's pattern applies to each of its strings. A secret written env:NAME is not checked
// or file:/path is not checked against the pattern: it is a reference, not the value.
std::string limit_problem(const json& entry, const json& value) {
  if (value.is_number()) {
    const double v = value.get<double>();
    if (entry.contains("minimum") && v < entry["minimum"].get<double>())
      return "is " + show(value) + "; it must be at least " + show(entry["minimum"]);
    if (entry.contains("maximum") && v > entry["maximum"].get<double>())
      return "is " + show(value) + "; it must be at most " + show(entry["maximum"]);
  }
  if (!entry.contains("pattern")) return {};
  const std::string pattern = entry["pattern"].get<std::string>();
  if (value.is_string()) {
    const std::string text = value.get<std::string>();
    if (is_secret(entry) && support::is_secret_reference(text)) return {};
    if (!matches(pattern, text)) return "is " + show(value) + ", which does not match the pattern " + pattern;
  } else if (value.is_array()) {
    for (const auto& item : value) {
      if (!item.is_string()) return "must hold strings; " + show(item) + " is not one";
      if (!matches(pattern, item.get<std::string>()))
        return "has the entry " + show(item) + ", which does not match the pattern " + pattern;
    }
  }
  return {};
}

// The problem with an entry's minimum, maximum and pattern fields themselves; "" when none.
std::string limit_field_problem(const json& entry, const std::string& type) {
  for (const char* bound : {"minimum", "maximum"}) {
    if (!entry.contains(bound)) continue;
    if (type != "integer" && type != "number")
      return std::string("\"") + bound + "\" is only for integer and number options";
    if (!entry[bound].is_number()) return std::string("\"") + bound + "\" must be a number";
  }
  if (entry.contains("minimum") && entry.contains("maximum") &&
      entry["minimum"].get<double>() > entry["maximum"].get<double>())
    return "\"minimum\" is larger than \"maximum\"";
  if (entry.contains("pattern")) {
    if (type != "string" && type != "array") return "\"pattern\" is only for string and array options";
    if (!entry["pattern"].is_string()) return "\"pattern\" must be a string";
    try {
      (void)std::regex(entry["pattern"].get<std::string>(), std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      return "\"pattern\" is not a regular expression: " + std::string(e.what());
    }
  }
  return {};
}

}  // namespace

std::optional<std::string> process_env(const std::string& name) { return support::process_env(name); }

std::optional<std::string> closest_match(std::string_view word, const std::vector<std::string>& candidates) {
  std::optional<std::string> best;
  std::size_t best_distance = 0;
  for (const auto& candidate : candidates) {
    // Allow about one edit per three characters, at least one and at most three, so short
    // words only match near-identical candidates.
    const std::size_t longest = std::max(word.size(), candidate.size());
    const std::size_t limit = std::clamp<std::size_t>(longest / 3, 1, 3);
    const std::size_t distance = edit_distance_within(word, candidate, limit);
    if (distance <= limit && (!best || distance < best_distance)) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best;
}

Result<void> check_schema(const json& schema, const std::string& what) {
  const std::string prefix = "the plugin manifest of " + what + " has an invalid schema: ";
  const std::string fix = "; the plugin must be fixed (see docs/sdk-reference.md, \"The manifest\")";
  if (schema.is_null()) return {};
  if (!schema.is_object()) return fail(prefix + "it is " + json_type_name(schema) + ", not a table of options" + fix);
  for (const auto& [key, entry] : schema.items()) {
    const std::string name = "option " + in_quotes(key);
    if (!entry.is_object()) return fail(prefix + name + " is " + json_type_name(entry) + ", not a table" + fix);
    for (const auto& [field, value] : entry.items()) {
      if (std::find(kEntryKeys.begin(), kEntryKeys.end(), field) == kEntryKeys.end())
        return fail(prefix + name + " has the unknown field " + in_quotes(field) + fix);
      (void)value;
    }
    if (!entry.contains("type") || !entry["type"].is_string())
      return fail(prefix + name + " has no \"type\" (one of " + join(kTypes, ", ") + ")" + fix);
    const std::string type = entry["type"].get<std::string>();
    if (std::find(kTypes.begin(), kTypes.end(), type) == kTypes.end())
      return fail(prefix + name + " has the unknown type " + in_quotes(type) + " (known: " + join(kTypes, ", ") + ")" + fix);
    for (const char* flag : {"required", "secret"}) {
      if (entry.contains(flag) && !entry[flag].is_boolean())
        return fail(prefix + name + ": \"" + flag + "\" must be true or false" + fix);
    }
    if (entry.contains("description") && !entry["description"].is_string())
      return fail(prefix + name + ": \"description\" must be a string" + fix);
    if (auto problem = limit_field_problem(entry, type); !problem.empty()) return fail(prefix + name + ": " + problem + fix);
    if (entry.contains("enum")) {
      const json& allowed = entry["enum"];
      if (!allowed.is_array() || allowed.empty())
        return fail(prefix + name + ": \"enum\" must be a non-empty array" + fix);
      for (const auto& value : allowed) {
        if (!has_type(value, type))
          return fail(prefix + name + ": the enum value " + show(value) + " is not " + article_type(type) + fix);
      }
    }
    if (entry.contains("default")) {
      const json& value = entry["default"];
      if (!has_type(value, type))
        return fail(prefix + name + ": the default " + show(value) + " is not " + article_type(type) + fix);
      if (entry.contains("enum")) {
        const json& allowed = entry["enum"];
        if (std::find(allowed.begin(), allowed.end(), value) == allowed.end())
          return fail(prefix + name + ": the default " + show(value) + " is not one of its enum values" + fix);
      }
      if (auto problem = limit_problem(entry, value); !problem.empty())
        return fail(prefix + name + ": the default " + problem + fix);
    }
  }
  return {};
}

Result<json> apply_schema(const json& schema, const json& options, const std::map<std::string, SourcePos>& positions,
                          const SourcePos& table_pos, const std::string& what) {
  if (auto checked = check_schema(schema, what); !checked) return std::unexpected(checked.error());
  const json empty = json::object();
  const json& entries = schema.is_object() ? schema : empty;
  if (!options.is_null() && !options.is_object())
    return fail(at(table_pos) + "the options of " + what + " must be a table, not " + json_type_name(options));

  std::vector<std::string> known;
  for (const auto& [key, entry] : entries.items()) {
    (void)entry;
    known.push_back(key);
  }
  const std::string known_list = known.empty() ? "none (it takes no options)" : join(known, ", ");

  std::vector<Issue> issues;
  const auto report = [&](const SourcePos& pos, const std::string& text) {
    issues.push_back({pos.line, pos.column, pos.located(text)});
  };

  json result = options.is_object() ? options : json::object();
  for (const auto& [key, value] : result.items()) {
    const SourcePos pos = pos_of(positions, key, table_pos);
    if (!entries.contains(key)) {
      std::string text = "option " + in_quotes(key) + " is not known to " + what;
      if (auto guess = closest_match(key, known)) text += "; did you mean " + in_quotes(*guess) + "?";
      else text += "; remove it.";
      report(pos, text + " Known options: " + known_list);
      continue;
    }
    const json& entry = entries[key];
    const std::string type = entry["type"].get<std::string>();
    if (!has_type(value, type)) {
      std::string text = "option " + in_quotes(key) + " of " + what + " must be " + article_type(type) + ", not " +
                         json_type_name(value) + " (" + show(value) + ")";
      // Quotes are the mistake only for a scalar written as a string ("8080", "true").
      if (type == "array") text += "; write it in brackets, e.g. " + key + " = [\"a\", \"b\"]";
      else if (type == "table") text += "; write it as a table, e.g. " + key + " = { name = \"value\" }";
      else if (value.is_string() && type != "string") text += "; write it without quotes";
      else if (type == "string") text += "; put the value in quotes";
      report(pos, text);
      continue;
    }
    if (entry.contains("enum")) {
      const json& allowed = entry["enum"];
      if (std::find(allowed.begin(), allowed.end(), value) == allowed.end()) {
        std::vector<std::string> choices;
        for (const auto& choice : allowed) choices.push_back(show(choice));
        report(pos, "option " + in_quotes(key) + " of " + what + " is " + show(value) + "; it must be one of " +
                        join(choices, ", "));
      }
    }
    if (auto problem = limit_problem(entry, value); !problem.empty())
      report(pos, "option " + in_quotes(key) + " of " + what + " " + problem);
  }
  for (const auto& [key, entry] : entries.items()) {
    if (result.contains(key)) continue;
    if (entry.contains("default")) {
      result[key] = entry["default"];
    } else if (entry.value("required", false)) {
      std::string text = "missing required option " + in_quotes(key) + " (" + entry["type"].get<std::string>() + ") of " + what;
      if (entry.contains("description")) text += ": " + entry["description"].get<std::string>();
      text += "; add " + key + " = ... to its options";
      if (is_secret(entry)) text += " (a secret may be written \"env:VARIABLE\" or \"file:/path\")";
      report(table_pos, text);
    }
  }
  if (!issues.empty()) return fail(join_issues(std::move(issues)));
  return result;
}

Result<json> resolve_secrets(const json& schema, const json& options, const std::map<std::string, SourcePos>& positions,
                             const SourcePos& table_pos, const std::string& what, const EnvLookup& env) {
  if (!options.is_object() || !schema.is_object()) return options;
  json result = options;
  std::vector<Issue> issues;
  for (const auto& [key, entry] : schema.items()) {
    if (!is_secret(entry) || !result.contains(key) || !result[key].is_string()) continue;
    const std::string value = result[key].get<std::string>();
    if (!support::is_secret_reference(value)) continue;
    const SourcePos pos = pos_of(positions, key, table_pos);
    auto found = support::resolve_secret_reference(value, env);
    if (found) result[key] = std::move(*found);
    else issues.push_back({pos.line, pos.column, pos.located("secret option " + in_quotes(key) + " of " + what + " " + found.error())});
  }
  if (!issues.empty()) return fail(join_issues(std::move(issues)));
  return result;
}

std::vector<std::string> secret_values(const json& schema, const json& resolved_options) {
  std::vector<std::string> values;
  if (!schema.is_object() || !resolved_options.is_object()) return values;
  for (const auto& [key, entry] : schema.items()) {
    if (!is_secret(entry) || !resolved_options.contains(key)) continue;
    const json& value = resolved_options[key];
    if (value.is_null()) continue;
    std::string text = value.is_string() ? value.get<std::string>() : value.dump();
    if (!text.empty() && std::find(values.begin(), values.end(), text) == values.end()) values.push_back(std::move(text));
  }
  return values;
}

json redact_options(const json& schema, const json& options) {
  if (!schema.is_object() || !options.is_object()) return options;
  json result = options;
  for (const auto& [key, entry] : schema.items()) {
    if (!is_secret(entry) || !result.contains(key)) continue;
    const json& value = result[key];
    if (value.is_string() && support::is_secret_reference(value.get<std::string>())) continue;
    result[key] = std::string(kRedacted);
  }
  return result;
}

}  // namespace flotilla
