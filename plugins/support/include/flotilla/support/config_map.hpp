// A plugin's options declared once: each option's name, type, limits and description, bound to
// a member of the plugin's config struct. From that one table come the manifest's `schema`
// (docs/sdk-reference.md, "The manifest"), which the engine checks the topology against with
// file:line errors, and the filled struct, so defaults and range checks are never written twice.
//
//   struct Options { std::int64_t port = 8080; bool strip_prefix = true; };
//   const ConfigMap<Options>& options() {
//     static const auto map = ConfigMap<Options>()
//         .integer("port", &Options::port, "Port of the ingress").range(1, 65535)
//         .boolean("strip_prefix", &Options::strip_prefix, "Strip the service's prefix");
//     return map;
//   }
//   ... options().manifest(R"({"provides": ["ingress"]})")   // manifest text with the schema
//   ... options().load(request["addon"]["config"])           // an Options, or throws
//
// The default of an option is the member's value in a default-constructed struct.
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace flotilla::support {

using json = nlohmann::json;

/// The types an option can have; `StringArray` is the schema's "array" with string elements.
enum class OptionType { String, Integer, Number, Boolean, StringArray, Table };

/// The schema's name of a type ("string", "integer", "number", "boolean", "array", "table").
[[nodiscard]] std::string_view type_name(OptionType type);

/// One problem with one option: the option's name and a message that names it too.
struct OptionError {
  std::string key;
  std::string message;
};

/// Thrown by ConfigMap::load: every problem, one per line, each naming its option.
class ConfigError : public std::invalid_argument {
 public:
  explicit ConfigError(std::vector<OptionError> errors);
  [[nodiscard]] const std::vector<OptionError>& errors() const noexcept { return errors_; }

 private:
  std::vector<OptionError> errors_;
};

/// What is declared about one option, apart from where it is stored.
struct OptionSpec {
  std::string name;
  OptionType type = OptionType::String;
  std::string description;
  json default_value;  // null: no default
  bool required = false;
  bool secret = false;
  std::optional<json> minimum;  // a number, for integer and number options
  std::optional<json> maximum;
  std::optional<std::string> pattern;  // ECMAScript; the whole string must match
  std::vector<json> one_of;            // the schema's `enum`; empty: any value

  /// This option's entry in the schema.
  [[nodiscard]] json schema() const;
  /// The problems of `value` for this option (type, enum, range, pattern, array elements).
  [[nodiscard]] std::vector<OptionError> check(const json& value) const;
};

/// The type-independent part of a ConfigMap: the declared options, schema and checks.
class OptionTable {
 public:
  /// The options in declaration order.
  [[nodiscard]] const std::vector<OptionSpec>& specs() const noexcept { return specs_; }
  /// The manifest's `schema` object.
  [[nodiscard]] json schema() const;
  /// `manifest_json` (a JSON object as text; "" for {}) with `schema` set to schema(), as text
  /// for the plugin descriptor. Throws std::invalid_argument when the text is not an object.
  [[nodiscard]] std::string manifest(std::string_view manifest_json = {}) const;
  /// The problems of a resolved config: unknown keys, missing required keys and every
  /// option's check. A config that is null counts as {}.
  [[nodiscard]] std::vector<OptionError> check(const json& config) const;

 protected:
  OptionSpec& add(OptionSpec spec);
  OptionSpec& last();

 private:
  std::vector<OptionSpec> specs_;
};

/// The options of a plugin whose config struct is `Config` (default-constructible; its
/// default member values are the options' defaults).
template <class Config>
class ConfigMap : public OptionTable {
 public:
  ConfigMap& string(std::string name, std::string Config::*member, std::string description) {
    return bind(std::move(name), OptionType::String, std::move(description), member);
  }
  template <class Int>
    requires std::is_integral_v<Int> && (!std::is_same_v<Int, bool>)
  ConfigMap& integer(std::string name, Int Config::*member, std::string description) {
    return bind(std::move(name), OptionType::Integer, std::move(description), member);
  }
  ConfigMap& number(std::string name, double Config::*member, std::string description) {
    return bind(std::move(name), OptionType::Number, std::move(description), member);
  }
  ConfigMap& boolean(std::string name, bool Config::*member, std::string description) {
    return bind(std::move(name), OptionType::Boolean, std::move(description), member);
  }
  ConfigMap& strings(std::string name, std::vector<std::string> Config::*member, std::string description) {
    return bind(std::move(name), OptionType::StringArray, std::move(description), member);
  }
  ConfigMap& table(std::string name, json Config::*member, std::string description) {
    return bind(std::move(name), OptionType::Table, std::move(description), member);
  }

  // Modifiers of the option declared last.

  /// Smallest and largest allowed value (inclusive) of an integer or number option.
  ConfigMap& range(json minimum, json maximum) { return min(std::move(minimum)).max(std::move(maximum)); }
  ConfigMap& min(json minimum) {
    last().minimum = std::move(minimum);
    return *this;
  }
  ConfigMap& max(json maximum) {
    last().maximum = std::move(maximum);
    return *this;
  }
  /// An ECMAScript regular expression the whole string (or every string of an array) matches.
  ConfigMap& pattern(std::string regex) {
    last().pattern = std::move(regex);
    return *this;
  }
  /// The only values allowed (the schema's `enum`).
  ConfigMap& one_of(std::vector<json> values) {
    last().one_of = std::move(values);
    return *this;
  }
  /// A secret: written `env:NAME` in the topology, resolved by the engine, never logged.
  ConfigMap& secret() {
    last().secret = true;
    return *this;
  }
  /// The topology must give this option; it has no default.
  ConfigMap& required() {
    last().required = true;
    last().default_value = nullptr;
    return *this;
  }
  /// The option has no default: when absent, the member keeps its value and the plugin sees
  /// no key (for options whose absence means something, such as "pick one").
  ConfigMap& no_default() {
    last().default_value = nullptr;
    return *this;
  }

  /// The struct filled from a resolved config (absent options keep their defaults) and the
  /// problems found; `config` is only as far filled as it was valid.
  struct Filled {
    Config config;
    std::vector<OptionError> errors;
    [[nodiscard]] bool ok() const noexcept { return errors.empty(); }
  };

  [[nodiscard]] Filled fill(const json& config) const {
    Filled out{Config{}, check(config)};
    if (!config.is_object()) return out;
    for (const auto& binding : bindings_) {
      const auto it = config.find(binding.name);
      if (it == config.end() || it->is_null()) continue;
      const bool bad = std::any_of(out.errors.begin(), out.errors.end(),
                                   [&](const OptionError& e) { return e.key == binding.name; });
      if (!bad && !binding.set(out.config, *it)) {
        out.errors.push_back({binding.name, "option \"" + binding.name + "\" is " + it->dump() + ", which is too large for this plugin"});
      }
    }
    return out;
  }

  /// The struct filled from a resolved config; throws ConfigError naming every bad option.
  [[nodiscard]] Config load(const json& config) const {
    Filled filled = fill(config);
    if (!filled.ok()) throw ConfigError(std::move(filled.errors));
    return std::move(filled.config);
  }

  /// `config` as the resolved JSON the engine would pass (every option with a default set).
  [[nodiscard]] json to_json(const Config& config) const {
    json out = json::object();
    for (const auto& binding : bindings_) out[binding.name] = binding.get(config);
    return out;
  }

 private:
  struct Binding {
    std::string name;
    std::function<bool(Config&, const json&)> set;  // false: the value does not fit the member
    std::function<json(const Config&)> get;
  };

  template <class Member>
  ConfigMap& bind(std::string name, OptionType type, std::string description, Member Config::*member) {
    OptionSpec spec;
    spec.name = name;
    spec.type = type;
    spec.description = std::move(description);
    spec.default_value = Config{}.*member;
    add(std::move(spec));
    bindings_.push_back({std::move(name), [member](Config& c, const json& v) { return assign(c.*member, v); },
                         [member](const Config& c) { return json(c.*member); }});
    return *this;
  }

  template <class Member>
  static bool assign(Member& member, const json& value) {
    if constexpr (std::is_integral_v<Member> && !std::is_same_v<Member, bool>) {
      // check() has made sure it is an integer; a narrower member must still hold it.
      if (value.is_number_unsigned()) {
        const auto v = value.get<std::uint64_t>();
        if (v > static_cast<std::uint64_t>(std::numeric_limits<Member>::max())) return false;
      } else {
        const auto v = value.get<std::int64_t>();
        if (std::cmp_less(v, std::numeric_limits<Member>::min()) || std::cmp_greater(v, std::numeric_limits<Member>::max())) return false;
      }
    }
    member = value.get<Member>();
    return true;
  }

  std::vector<Binding> bindings_;
};

}  // namespace flotilla::support
