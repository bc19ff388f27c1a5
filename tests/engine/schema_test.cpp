#include "schema.hpp"
#include "support/process_util.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

using flotilla::apply_schema;
using flotilla::json;
using flotilla::SourcePos;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

// The manifest example of docs/sdk-reference.md.
const json kSchema = json::parse(R"({
  "port":     {"type": "integer", "default": 8080, "description": "Port of the frontend"},
  "mode":     {"type": "string", "enum": ["a", "b"], "default": "a"},
  "members":  {"type": "integer", "enum": [1, 3, 5], "default": 1},
  "tags":     {"type": "array", "default": []},
  "ratio":    {"type": "number"},
  "verbose":  {"type": "boolean"},
  "extra":    {"type": "table"},
  "password": {"type": "string", "required": true, "secret": true, "description": "Admin password"}
})");

const std::string kWhat = "addon \"haproxy\" (plugin haproxy)";
const SourcePos kTable{"c.toml", 10, 1};

std::map<std::string, SourcePos> positions_of(const json& options) {
  std::map<std::string, SourcePos> positions;
  std::uint32_t line = 11;
  for (const auto& [key, value] : options.items()) {
    (void)value;
    positions[key] = SourcePos{"c.toml", line++, 1};
  }
  return positions;
}

flotilla::Result<json> check_options(const json& options, const json& schema = kSchema) {
  return apply_schema(schema, options, positions_of(options), kTable, kWhat);
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// A fixed environment, so tests neither read nor change the real one.
flotilla::EnvLookup fake_env(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

}  // namespace

TEST_CASE("apply_schema fills defaults and keeps given values", "[schema]") {
  auto result = check_options({{"password", "pw"}, {"mode", "b"}, {"ratio", 2}, {"verbose", true}, {"extra", {{"k", 1}}}});
  INFO((result ? std::string() : result.error().message));
  REQUIRE(result);
  CHECK((*result)["port"] == 8080);
  CHECK((*result)["mode"] == "b");
  CHECK((*result)["members"] == 1);
  CHECK((*result)["tags"] == json::array());
  CHECK((*result)["ratio"] == 2);  // an integer is a number
  CHECK((*result)["password"] == "pw");
  CHECK((*result)["extra"] == json{{"k", 1}});
  CHECK_FALSE(result->contains("description"));
}

TEST_CASE("apply_schema: an unknown option names the owner, suggests and lists", "[schema]") {
  auto result = check_options({{"password", "pw"}, {"prot", 80}});
  REQUIRE_FALSE(result);
  CHECK(result.error().message ==
        "c.toml:12:1: option \"prot\" is not known to addon \"haproxy\" (plugin haproxy); did you mean \"port\"? Known "
        "options: extra, members, mode, password, port, ratio, tags, verbose");
  auto far = check_options({{"password", "pw"}, {"zzzzzz", 1}});
  REQUIRE_FALSE(far);
  CHECK_THAT(far.error().message, Contains("is not known to addon \"haproxy\" (plugin haproxy); remove it. Known options:"));
  auto none = check_options({{"x", 1}}, json::object());
  REQUIRE_FALSE(none);
  CHECK_THAT(none.error().message, Contains("Known options: none (it takes no options)"));
  auto null_schema = check_options({{"x", 1}}, json());
  CHECK_FALSE(null_schema.has_value());
  CHECK(check_options(json::object(), json()).has_value());
}

TEST_CASE("apply_schema: wrong types", "[schema]") {
  auto result = check_options({{"password", "pw"}, {"port", "8080"}});
  REQUIRE_FALSE(result);
  CHECK(result.error().message ==
        "c.toml:12:1: option \"port\" of addon \"haproxy\" (plugin haproxy) must be an integer, not a string (\"8080\"); "
        "write it without quotes");
  CHECK_THAT(check_options({{"password", 5}}).error().message, Contains("must be a string, not an integer (5); put the value in quotes"));
  CHECK_THAT(check_options({{"password", "p"}, {"port", 80.5}}).error().message, Contains("must be an integer, not a float"));
  CHECK_THAT(check_options({{"password", "p"}, {"verbose", "yes"}}).error().message, Contains("must be a boolean, not a string"));
  const std::string tags = check_options({{"password", "p"}, {"tags", "a"}}).error().message;
  CHECK_THAT(tags, Contains("must be an array, not a string (\"a\"); write it in brackets"));
  CHECK_THAT(tags, !Contains("without quotes"));
  CHECK_THAT(check_options({{"password", "p"}, {"extra", "x"}}).error().message, Contains("must be a table, not a string (\"x\"); write it as a table"));
  CHECK_THAT(check_options({{"password", "p"}, {"extra", json::array()}}).error().message, Contains("must be a table, not an array"));
  CHECK_THAT(check_options({{"password", "p"}, {"ratio", "x"}}).error().message, Contains("must be a number, not a string"));
}

TEST_CASE("apply_schema: enum violations list the choices", "[schema]") {
  auto mode = check_options({{"password", "pw"}, {"mode", "c"}});
  REQUIRE_FALSE(mode);
  CHECK(mode.error().message ==
        "c.toml:11:1: option \"mode\" of addon \"haproxy\" (plugin haproxy) is \"c\"; it must be one of \"a\", \"b\"");
  auto members = check_options({{"password", "pw"}, {"members", 2}});
  REQUIRE_FALSE(members);
  CHECK_THAT(members.error().message, Contains("is 2; it must be one of 1, 3, 5"));
  CHECK(check_options({{"password", "pw"}, {"members", 5}}).has_value());
}

TEST_CASE("apply_schema: minimum, maximum and pattern, with file:line:key", "[schema]") {
  const json schema = json::parse(R"({
    "port":  {"type": "integer", "default": 8080, "minimum": 1, "maximum": 65535},
    "ratio": {"type": "number", "minimum": 0.5},
    "name":  {"type": "string", "pattern": "[a-z][a-z0-9-]*"},
    "tags":  {"type": "array", "pattern": "[a-z]+"},
    "key":   {"type": "string", "secret": true, "pattern": "[0-9a-f]{8}"}
  })");
  const auto check = [&](const json& options) { return check_options(options, schema); };
  auto high = check({{"port", 65536}});
  REQUIRE_FALSE(high);
  CHECK(high.error().message ==
        "c.toml:11:1: option \"port\" of addon \"haproxy\" (plugin haproxy) is 65536; it must be at most 65535");
  CHECK_THAT(check({{"port", 0}}).error().message, Contains("c.toml:11:1: option \"port\"") && Contains("is 0; it must be at least 1"));
  CHECK_THAT(check({{"ratio", 0.25}}).error().message, Contains("it must be at least 0.5"));
  CHECK(check({{"port", 1}, {"ratio", 1}}).has_value());
  CHECK(check({{"port", 65535}}).has_value());
  // The pattern must match the whole string.
  CHECK_THAT(check({{"name", "Web"}}).error().message,
             Contains("option \"name\" of addon \"haproxy\" (plugin haproxy) is \"Web\", which does not match the pattern "
                      "[a-z][a-z0-9-]*"));
  CHECK_FALSE(check({{"name", "web!"}}).has_value());
  CHECK(check({{"name", "web-1"}}).has_value());
  CHECK_THAT(check({{"tags", {"ok", "NO"}}}).error().message, Contains("has the entry \"NO\""));
  CHECK_THAT(check({{"tags", {"ok", 3}}}).error().message, Contains("3 is not one"));
  CHECK(check({{"tags", {"a", "b"}}}).has_value());
  // A secret's env:NAME is a reference, checked once resolved by the plugin, not here.
  CHECK(check({{"key", "env:KEY"}}).has_value());
  CHECK_FALSE(check({{"key", "zz"}}).has_value());
  // Every problem is reported, each on its own line.
  auto both = check({{"port", 0}, {"name", "X"}});
  REQUIRE_FALSE(both);
  CHECK(lines_of(both.error().message).size() == 2);
}

TEST_CASE("a schema's minimum, maximum and pattern are checked themselves", "[schema]") {
  const auto bad = [](const char* text) {
    auto result = flotilla::check_schema(json::parse(text), kWhat);
    REQUIRE_FALSE(result);
    CHECK_THAT(result.error().message, Contains("the plugin must be fixed"));
    return result.error().message;
  };
  CHECK_THAT(bad(R"({"p": {"type": "string", "minimum": 1}})"), Contains("\"minimum\" is only for integer and number"));
  CHECK_THAT(bad(R"({"p": {"type": "integer", "maximum": "9"}})"), Contains("\"maximum\" must be a number"));
  CHECK_THAT(bad(R"({"p": {"type": "integer", "minimum": 9, "maximum": 1}})"), Contains("larger than"));
  CHECK_THAT(bad(R"({"p": {"type": "integer", "pattern": "x"}})"), Contains("only for string and array"));
  CHECK_THAT(bad(R"({"p": {"type": "string", "pattern": "(["}})"), Contains("not a regular expression"));
  CHECK_THAT(bad(R"({"p": {"type": "integer", "default": 0, "minimum": 1}})"), Contains("the default is 0; it must be at least 1"));
  CHECK_THAT(bad(R"({"p": {"type": "string", "default": "A", "pattern": "[a-z]"}})"), Contains("the default is \"A\""));
  CHECK(flotilla::check_schema(json::parse(R"({"p": {"type": "number", "minimum": 0, "maximum": 1.5, "default": 1}})"), kWhat));
}

TEST_CASE("apply_schema: missing required options are reported at the table", "[schema]") {
  auto result = check_options(json::object());
  REQUIRE_FALSE(result);
  CHECK(result.error().message ==
        "c.toml:10:1: missing required option \"password\" (string) of addon \"haproxy\" (plugin haproxy): Admin "
        "password; add password = ... to its options (a secret may be written \"env:VARIABLE\" or \"file:/path\")");
  CHECK_FALSE(check_options(json()).has_value());  // null options are an empty table
}

TEST_CASE("apply_schema: every problem, sorted by line", "[schema]") {
  auto result = check_options({{"verbose", 1}, {"mode", "z"}, {"prot", 1}});
  REQUIRE_FALSE(result);
  const auto lines = lines_of(result.error().message);
  REQUIRE(lines.size() == 4);
  CHECK_THAT(lines[0], StartsWith("c.toml:10:1: missing required option \"password\""));
  CHECK_THAT(lines[1], StartsWith("c.toml:11:1: option \"mode\""));
  CHECK_THAT(lines[2], StartsWith("c.toml:12:1: option \"prot\""));
  CHECK_THAT(lines[3], StartsWith("c.toml:13:1: option \"verbose\""));
}

TEST_CASE("apply_schema uses the table's position for keys it has none for", "[schema]") {
  auto result = apply_schema(kSchema, json{{"password", "x"}, {"prot", 1}}, {}, kTable, kWhat);
  REQUIRE_FALSE(result);
  CHECK_THAT(result.error().message, StartsWith("c.toml:10:1: option \"prot\""));
}

TEST_CASE("a broken plugin schema is reported as the plugin's fault", "[schema]") {
  const auto bad = [](const char* text) {
    auto result = apply_schema(json::parse(text), json::object(), {}, kTable, kWhat);
    REQUIRE_FALSE(result);
    CHECK_THAT(result.error().message, StartsWith("the plugin manifest of addon \"haproxy\" (plugin haproxy) has an invalid schema"));
    CHECK_THAT(result.error().message, Contains("the plugin must be fixed"));
    return result.error().message;
  };
  CHECK_THAT(bad(R"({"port": {"type": "int"}})"), Contains("unknown type \"int\""));
  CHECK_THAT(bad(R"({"port": {}})"), Contains("has no \"type\""));
  CHECK_THAT(bad(R"({"port": 3})"), Contains("is an integer, not a table"));
  CHECK_THAT(bad(R"({"port": {"type": "integer", "default": "x"}})"), Contains("the default \"x\" is not an integer"));
  CHECK_THAT(bad(R"({"m": {"type": "string", "enum": ["a"], "default": "b"}})"), Contains("not one of its enum values"));
  CHECK_THAT(bad(R"({"m": {"type": "string", "enum": [1]}})"), Contains("the enum value 1 is not a string"));
  CHECK_THAT(bad(R"({"m": {"type": "string", "enum": []}})"), Contains("non-empty array"));
  CHECK_THAT(bad(R"({"m": {"type": "string", "secret": "yes"}})"), Contains("\"secret\" must be true or false"));
  CHECK_THAT(bad(R"({"m": {"type": "string", "requird": true}})"), Contains("unknown field \"requird\""));
  CHECK_THAT(bad(R"([1])"), Contains("not a table of options"));
  CHECK(flotilla::check_schema(kSchema, kWhat).has_value());
}

TEST_CASE("closest_match finds plausible typos only", "[schema]") {
  const std::vector<std::string> keys = {"name", "command", "image", "replicas", "port", "health", "roles", "nodes", "env"};
  CHECK(flotilla::closest_match("replica", keys) == "replicas");
  CHECK(flotilla::closest_match("prot", keys) == "port");
  CHECK(flotilla::closest_match("comand", keys) == "command");
  CHECK(flotilla::closest_match("Image", keys) == "image");
  CHECK(flotilla::closest_match("helth", keys) == "health");
  CHECK(flotilla::closest_match("nodse", keys) == "nodes");
  CHECK_FALSE(flotilla::closest_match("zzzzzz", keys));
  CHECK_FALSE(flotilla::closest_match("x", keys));
  CHECK_FALSE(flotilla::closest_match("replicas", {}));
  CHECK(flotilla::closest_match("placment-long-role-name", {"placement-long-role-name"}) == "placement-long-role-name");
  CHECK_FALSE(flotilla::closest_match("abcdefghijkl", {"abcdefghijklmnop"}));  // four edits: too far
}

// Two long names once took seconds and gigabytes (a full table of edit distances). No clock is
// read here (timing belongs in bench/): a full table would make the 50 rounds below fill
// 4 * 10^10 cells, which ctest's timeout stops long before they end.
TEST_CASE("closest_match answers for long names within its band", "[schema][limits]") {
  std::string a(20000, 'r');
  std::string b = a;
  b[10000] = 'x';
  const std::string c(20003, 's');
  CHECK(flotilla::closest_match(a, {b}) == b);
  CHECK_FALSE(flotilla::closest_match(a, {c}));
  CHECK_FALSE(flotilla::closest_match(a, {std::string(20000, 's')}));
  for (int i = 0; i < 50; ++i) CHECK(flotilla::closest_match(a, {b, c}) == b);
}

TEST_CASE("a message line break keeps the position on every line", "[schema]") {
  json schema = kSchema;
  schema["password"]["description"] = "Admin password\nread from the vault";
  auto result = check_options(json::object(), schema);
  REQUIRE_FALSE(result);
  const auto lines = lines_of(result.error().message);
  REQUIRE(lines.size() == 2);
  for (const auto& line : lines) CHECK_THAT(line, StartsWith("c.toml:10:1: "));
}

TEST_CASE("resolve_secrets reads env:NAME of secret keys only", "[schema]") {
  const json options = {{"password", "env:HAPROXY_PASSWORD"}, {"mode", "env:NOT_SECRET"}};
  auto result = flotilla::resolve_secrets(kSchema, options, positions_of(options), kTable, kWhat,
                                          fake_env({{"HAPROXY_PASSWORD", "s3cret"}, {"NOT_SECRET", "no"}}));
  REQUIRE(result);
  CHECK((*result)["password"] == "s3cret");
  CHECK((*result)["mode"] == "env:NOT_SECRET");

  const json literal = {{"password", "plain"}};
  CHECK((*flotilla::resolve_secrets(kSchema, literal, {}, kTable, kWhat, fake_env({})))["password"] == "plain");
}

TEST_CASE("resolve_secrets: an unset, empty or malformed variable is an error naming key and variable", "[schema]") {
  const json options = {{"password", "env:HAPROXY_PASSWORD"}};
  auto unset = flotilla::resolve_secrets(kSchema, options, positions_of(options), kTable, kWhat, fake_env({}));
  REQUIRE_FALSE(unset);
  CHECK(unset.error().message ==
        "c.toml:11:1: secret option \"password\" of addon \"haproxy\" (plugin haproxy) refers to the environment "
        "variable HAPROXY_PASSWORD, which is not set; export HAPROXY_PASSWORD before running flotilla");
  auto empty = flotilla::resolve_secrets(kSchema, options, positions_of(options), kTable, kWhat,
                                         fake_env({{"HAPROXY_PASSWORD", ""}}));
  REQUIRE_FALSE(empty);
  CHECK_THAT(empty.error().message, Contains("HAPROXY_PASSWORD, which is empty"));
  const json malformed = {{"password", "env:A-B"}};
  auto bad = flotilla::resolve_secrets(kSchema, malformed, {}, kTable, kWhat, fake_env({{"A-B", "x"}}));
  REQUIRE_FALSE(bad);
  CHECK_THAT(bad.error().message, StartsWith("c.toml:10:1: secret option \"password\""));
  CHECK_THAT(bad.error().message, Contains("is not an environment variable name"));
}

TEST_CASE("resolve_secrets reads file:/path of secret keys, less one trailing newline, and names a missing file", "[schema]") {
  flotilla::test::proc::ScratchDir dir("flotilla-secret-file");
  const auto file = dir.path() / "password";
  std::ofstream(file) << "from-a-file\n";
  const json options = {{"password", "file:" + file.string()}};
  auto result = flotilla::resolve_secrets(kSchema, options, positions_of(options), kTable, kWhat, fake_env({}));
  REQUIRE(result);
  CHECK((*result)["password"] == "from-a-file");
  // Stored, the reference stays; the value never does.
  CHECK(flotilla::redact_options(kSchema, options)["password"] == "file:" + file.string());

  std::filesystem::remove(file);
  auto missing = flotilla::resolve_secrets(kSchema, options, positions_of(options), kTable, kWhat, fake_env({}));
  REQUIRE_FALSE(missing);
  CHECK_THAT(missing.error().message, StartsWith("c.toml:11:1: secret option \"password\"") &&
                                          Contains("refers to the file " + file.string() + ", which does not exist"));
  auto relative = flotilla::resolve_secrets(kSchema, json{{"password", "file:secrets/pw"}}, {}, kTable, kWhat, fake_env({}));
  REQUIRE_FALSE(relative);
  CHECK_THAT(relative.error().message, Contains("not an absolute path"));
}

TEST_CASE("messages without a known position carry no position prefix", "[schema]") {
  const json options = {{"password", "env:UNSET_FOR_TEST"}};
  auto result = flotilla::resolve_secrets(kSchema, options, {}, {}, kWhat, fake_env({}));
  REQUIRE_FALSE(result);
  CHECK_THAT(result.error().message, StartsWith("secret option \"password\" of addon"));
  auto unknown = apply_schema(kSchema, json{{"password", "x"}, {"bogus", 1}}, {}, {}, kWhat);
  REQUIRE_FALSE(unknown);
  CHECK_THAT(unknown.error().message, StartsWith("option \"bogus\" is not known"));
}

TEST_CASE("resolve_secrets reads the process environment by default", "[schema]") {
  const json options = {{"password", "env:PATH"}};
  auto result = flotilla::resolve_secrets(kSchema, options, {}, kTable, kWhat);
  REQUIRE(result);
  CHECK((*result)["password"] == *flotilla::process_env("PATH"));
  CHECK_FALSE(flotilla::process_env("FLOTILLA_TEST_SURELY_UNSET_VARIABLE"));
}

TEST_CASE("secret values, and options made safe to store", "[schema]") {
  const json schema = json::parse(R"({
    "token":  {"type": "string", "secret": true},
    "pin":    {"type": "integer", "secret": true},
    "empty":  {"type": "string", "secret": true},
    "name":   {"type": "string"}
  })");
  const json resolved = {{"token", "abc123"}, {"pin", 4711}, {"empty", ""}, {"name", "visible"}};
  const auto secrets = flotilla::secret_values(schema, resolved);
  CHECK(secrets == std::vector<std::string>{"4711", "abc123"});  // not "visible", and never ""


  const json stored = flotilla::redact_options(schema, json{{"token", "abc123"}, {"pin", "env:PIN"}, {"name", "visible"}});
  CHECK(stored["token"] == "[redacted]");
  CHECK(stored["pin"] == "env:PIN");
  CHECK(stored["name"] == "visible");
  CHECK(stored.dump().find("abc123") == std::string::npos);
}

TEST_CASE("schema errors point into the topology file through option_pos", "[schema]") {
  auto topology = flotilla::parse_topology(R"([cluster]
name = "c"
driver = "local"

[driver.local]
cidr = "127.77.0.0/24"
sudo = true

[[nodes]]
name = "n"

[[addons]]
plugin = "haproxy"
[addons.options]
prot = 8080
password = "env:LB_PASSWORD"
)",
                                           "configs/x.toml");
  REQUIRE(topology);
  const auto& addon = topology->addons[0];
  auto checked = apply_schema(kSchema, addon.options, addon.option_pos, addon.pos, kWhat);
  REQUIRE_FALSE(checked);
  CHECK_THAT(checked.error().message,
             StartsWith("configs/x.toml:15:1: option \"prot\" is not known to addon \"haproxy\" (plugin haproxy); did "
                        "you mean \"port\"?"));

  json fixed_options = addon.options;
  fixed_options.erase("prot");
  auto applied = apply_schema(kSchema, fixed_options, addon.option_pos, addon.pos, kWhat);
  REQUIRE(applied);
  auto unresolved = flotilla::resolve_secrets(kSchema, *applied, addon.option_pos, addon.pos, kWhat, fake_env({}));
  REQUIRE_FALSE(unresolved);
  CHECK_THAT(unresolved.error().message, StartsWith("configs/x.toml:16:1: secret option \"password\""));

  const json driver_schema = json::parse(R"({"cidr": {"type": "string", "default": "127.77.0.0/24"}})");
  auto driver = apply_schema(driver_schema, topology->driver_config, topology->driver_option_pos, topology->driver_pos,
                             "driver \"local\"");
  REQUIRE_FALSE(driver);
  CHECK_THAT(driver.error().message, StartsWith("configs/x.toml:7:1: option \"sudo\" is not known to driver \"local\""));
}
