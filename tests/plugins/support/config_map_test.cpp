#include "flotilla/support/config_map.hpp"
#include "flotilla/support/plugin_options.hpp"

#include "schema.hpp"

#include <catch2/catch.hpp>

using flotilla::support::ConfigError;
using flotilla::support::ConfigMap;
using flotilla::support::json;
using Catch::Matchers::Contains;

namespace {

struct Options {
  std::int64_t port = 8080;
  int workers = 2;
  double ratio = 0.5;
  bool strip_prefix = true;
  std::string mode = "a";
  std::string token;
  std::string name = "web";
  std::vector<std::string> tags{"x"};
  json extra = json::object();
};

const ConfigMap<Options>& options() {
  static const auto map = ConfigMap<Options>()
                              .integer("port", &Options::port, "Port of the frontend")
                              .range(1, 65535)
                              .integer("workers", &Options::workers, "Worker count")
                              .min(1)
                              .number("ratio", &Options::ratio, "A fraction")
                              .range(0.0, 1.0)
                              .boolean("strip_prefix", &Options::strip_prefix, "Strip the prefix")
                              .string("mode", &Options::mode, "Mode")
                              .one_of({"a", "b"})
                              .string("token", &Options::token, "Access token")
                              .required()
                              .secret()
                              .string("name", &Options::name, "A name")
                              .pattern("[a-z][a-z0-9-]*")
                              .strings("tags", &Options::tags, "Tags")
                              .pattern("[a-z]+")
                              .table("extra", &Options::extra, "Anything");
  return map;
}

}  // namespace

TEST_CASE("config map: the schema carries each option's type, default and limits", "[support][config_map]") {
  const json schema = options().schema();
  CHECK(schema["port"] == json::parse(R"({"type": "integer", "default": 8080, "description": "Port of the frontend",
                                         "minimum": 1, "maximum": 65535})"));
  CHECK(schema["workers"]["minimum"] == 1);
  CHECK_FALSE(schema["workers"].contains("maximum"));
  CHECK(schema["ratio"]["type"] == "number");
  CHECK(schema["ratio"]["maximum"] == 1.0);
  CHECK(schema["strip_prefix"]["default"] == true);
  CHECK(schema["mode"]["enum"] == json::array({"a", "b"}));
  CHECK(schema["token"] == json::parse(R"({"type": "string", "description": "Access token", "required": true, "secret": true})"));
  CHECK(schema["name"]["pattern"] == "[a-z][a-z0-9-]*");
  CHECK(schema["tags"]["type"] == "array");
  CHECK(schema["tags"]["default"] == json::array({"x"}));
  CHECK(schema["extra"]["type"] == "table");
}

TEST_CASE("config map: the generated schema is one the engine accepts and enforces", "[support][config_map]") {
  const json schema = options().schema();
  REQUIRE(flotilla::check_schema(schema, "addon \"t\"").has_value());
  const auto filled = flotilla::apply_schema(schema, json{{"token", "t"}}, {}, {}, "addon \"t\"");
  REQUIRE(filled.has_value());
  CHECK((*filled)["port"] == 8080);
  const auto refused = flotilla::apply_schema(schema, json{{"token", "t"}, {"port", 70000}}, {}, {}, "addon \"t\"");
  REQUIRE_FALSE(refused.has_value());
  CHECK_THAT(refused.error().message, Contains("at most 65535"));
}

TEST_CASE("config map: manifest text gains the schema beside the other keys", "[support][config_map]") {
  const json manifest = json::parse(options().manifest(R"({"provides": ["ingress"]})"));
  CHECK(manifest["provides"] == json::array({"ingress"}));
  CHECK(manifest["schema"] == options().schema());
  CHECK(json::parse(options().manifest())["schema"].size() == options().specs().size());
  CHECK_THROWS_AS(options().manifest("[1]"), std::invalid_argument);
}

TEST_CASE("config map: fills the struct, keeping defaults for absent options", "[support][config_map]") {
  const Options o = options().load(json{{"token", "s3"}, {"port", 9000}, {"tags", {"a", "b"}}, {"extra", {{"k", 1}}}});
  CHECK(o.port == 9000);
  CHECK(o.workers == 2);
  CHECK(o.strip_prefix);
  CHECK(o.token == "s3");
  CHECK(o.tags == std::vector<std::string>{"a", "b"});
  CHECK(o.extra["k"] == 1);
  // What the engine passes after filling defaults loads back to the same struct.
  const json resolved = options().to_json(o);
  CHECK(resolved["mode"] == "a");
  CHECK(options().load(resolved).port == 9000);
}

TEST_CASE("config map: every bad option is reported under its key", "[support][config_map]") {
  const json bad = {{"port", 0},        {"workers", "3"}, {"ratio", 1.5},          {"mode", "c"},
                    {"name", "Web"},    {"tags", {"ok", 3, "NO"}}, {"extra", 1}, {"colour", "red"}};
  const auto filled = options().fill(bad);
  REQUIRE_FALSE(filled.ok());
  const auto message_of = [&](const std::string& key) {
    std::string out;
    for (const auto& e : filled.errors)
      if (e.key == key) out += e.message + "\n";
    return out;
  };
  CHECK_THAT(message_of("port"), Contains("option \"port\" is 0; it must be at least 1"));
  CHECK_THAT(message_of("workers"), Contains("must be an integer, not \"3\""));
  CHECK_THAT(message_of("ratio"), Contains("at most 1.0"));
  CHECK_THAT(message_of("mode"), Contains("must be one of \"a\", \"b\""));
  CHECK_THAT(message_of("name"), Contains("does not match the pattern [a-z][a-z0-9-]*"));
  CHECK_THAT(message_of("tags"), Contains("3 is not a string"));
  CHECK_THAT(message_of("tags"), Contains("\"NO\", which does not match"));
  CHECK_THAT(message_of("extra"), Contains("must be a table"));
  CHECK_THAT(message_of("colour"), Contains("not known"));
  CHECK_THAT(message_of("token"), Contains("missing required option \"token\""));
  // Bad values never reach the struct.
  CHECK(filled.config.port == 8080);
  CHECK(filled.config.mode == "a");
}

TEST_CASE("config map: load throws one error naming each bad key", "[support][config_map]") {
  try {
    (void)options().load(json{{"token", "t"}, {"port", 65536}, {"mode", "z"}});
    FAIL("load accepted bad options");
  } catch (const ConfigError& e) {
    REQUIRE(e.errors().size() == 2);
    CHECK_THAT(std::string(e.what()), Contains("\"port\"") && Contains("\"mode\""));
  }
}

TEST_CASE("config map: a value too large for a narrow member is refused", "[support][config_map]") {
  const auto filled = options().fill(json{{"token", "t"}, {"workers", 5'000'000'000}});
  REQUIRE_FALSE(filled.ok());
  CHECK(filled.errors.front().key == "workers");
  CHECK(filled.config.workers == 2);
}

TEST_CASE("config map: a secret's env reference passes the pattern check", "[support][config_map]") {
  struct Secret {
    std::string key;
  };
  const auto map = ConfigMap<Secret>().string("key", &Secret::key, "Key").pattern("[0-9a-f]{8}").secret();
  CHECK(map.fill(json{{"key", "env:KEY"}}).ok());
  CHECK(map.fill(json{{"key", "deadbeef"}}).ok());
  CHECK_FALSE(map.fill(json{{"key", "nothex!!"}}).ok());
}

TEST_CASE("config map: declaring an option twice or a modifier first is a plugin bug", "[support][config_map]") {
  struct One {
    int a = 0;
  };
  CHECK_THROWS_AS(ConfigMap<One>().integer("a", &One::a, "").integer("a", &One::a, ""), std::logic_error);
  CHECK_THROWS_AS(ConfigMap<One>().min(1), std::logic_error);
}

TEST_CASE("plugin options: a request's config is filled, and a bad option is sdk::Invalid naming the plugin", "[support][config]") {
  const json addon_request = {{"addon", {{"name", "web"}, {"config", {{"port", 9090}, {"token", "t"}}}}}};
  CHECK(flotilla::support::addon_options(options(), addon_request, "demo").port == 9090);
  CHECK(flotilla::support::addon_config(json{{"addon", {{"name", "web"}}}}) == json::object());
  const json driver_request = {{"config", {{"workers", 7}, {"token", "t"}}}};
  CHECK(flotilla::support::plugin_options(options(), driver_request, "driver demo").workers == 7);
  CHECK(flotilla::support::plugin_config(json::object()) == json::object());

  const json bad = {{"addon", {{"config", {{"port", 0}, {"bogus", true}}}}}};
  try {
    (void)flotilla::support::addon_options(options(), bad, "demo");
    FAIL("a port of 0 and an unknown key were accepted");
  } catch (const flotilla::sdk::Invalid& e) {
    CHECK(e.status() == FLT_INVALID);
    CHECK_THAT(e.what(), Contains("demo: ") && Contains("port") && Contains("bogus"));
  }
}
