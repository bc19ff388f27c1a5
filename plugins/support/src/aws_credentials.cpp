#include "flotilla/support/aws_credentials.hpp"

#include "flotilla/support/files.hpp"

#include <nlohmann/json.hpp>

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <optional>
#include <system_error>
#include <vector>

namespace flotilla::support {
namespace {

constexpr const char* kDefaultImds = "http://169.254.169.254";
constexpr const char* kHowTo =
    "Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary keys), or AWS_PROFILE naming a "
    "profile with aws_access_key_id and aws_secret_access_key in the shared credentials file, or run on an EC2 instance "
    "with an instance role";

std::string trim(std::string_view text) {
  const auto b = text.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return {};
  const auto e = text.find_last_not_of(" \t\r");
  return std::string(text.substr(b, e - b + 1));
}

bool lower_eq(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string env_or(const EnvLookup& env, const char* name, std::string fallback = {}) {
  auto v = env(name);
  return v && !v->empty() ? *v : fallback;
}

// HOME, or the user's home directory from the password database when HOME is unset.
std::filesystem::path home_dir(const EnvLookup& env) {
  if (auto home = env_or(env, "HOME"); !home.empty()) return home;
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  if (getpwuid_r(getuid(), &pw, buf.data(), buf.size(), &found) == 0 && found && found->pw_dir) return found->pw_dir;
  return "/";
}

std::string profile_name(const AwsCredentialOptions& o) {
  if (!o.profile.empty()) return o.profile;
  return env_or(o.env, "AWS_PROFILE", env_or(o.env, "AWS_DEFAULT_PROFILE", "default"));
}

bool profile_named(const AwsCredentialOptions& o) { return !o.profile.empty() || !env_or(o.env, "AWS_PROFILE").empty(); }

// The file's sections, or nullopt (with why in `note`) when it does not exist.
std::optional<AwsIni> read_ini(const std::filesystem::path& path, std::string& note) {
  std::optional<std::string> text;
  try {
    text = read_file_if_exists(path);
  } catch (const std::system_error& e) {
    throw AwsCredentialsError("cannot read " + path.string() + ": " + e.code().message() +
                              "; make it readable by the user running flotilla");
  }
  if (!text) {
    note = path.string() + " does not exist";
    return std::nullopt;
  }
  return parse_aws_ini(*text, path.string());
}

const std::map<std::string, std::string>* section(const std::optional<AwsIni>& ini, const std::string& name) {
  if (!ini) return nullptr;
  const auto it = ini->find(name);
  return it == ini->end() ? nullptr : &it->second;
}

std::string get(const std::map<std::string, std::string>& s, const std::string& key) {
  const auto it = s.find(key);
  return it == s.end() ? "" : it->second;
}

struct Tried {
  std::vector<std::string> notes;
  [[noreturn]] void fail(const std::string& what) const {
    std::string msg = what + "; tried:";
    for (const auto& n : notes) msg += "\n  - " + n;
    throw AwsCredentialsError(msg + "\n" + kHowTo + ".");
  }
};

std::optional<AwsCredentials> from_env(const AwsCredentialOptions& o, Tried& tried) {
  const std::string id = env_or(o.env, "AWS_ACCESS_KEY_ID");
  const std::string secret = env_or(o.env, "AWS_SECRET_ACCESS_KEY");
  if (id.empty() && secret.empty()) {
    tried.notes.emplace_back("environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set");
    return std::nullopt;
  }
  if (id.empty() || secret.empty()) {
    tried.notes.emplace_back(std::string("environment: ") + (id.empty() ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID") +
                             " is set but " + (id.empty() ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY") + " is not");
    tried.fail("incomplete AWS credentials in the environment: set both variables or neither");
  }
  return AwsCredentials{.access_key_id = id,
                        .secret_access_key = Secret(secret),
                        .session_token = Secret(env_or(o.env, "AWS_SESSION_TOKEN")),
                        .source = "environment variables AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"};
}

std::optional<AwsCredentials> from_section(const std::map<std::string, std::string>* s, const std::string& where,
                                           Tried& tried) {
  if (!s) return std::nullopt;
  const std::string id = get(*s, "aws_access_key_id");
  const std::string secret = get(*s, "aws_secret_access_key");
  if (id.empty() || secret.empty()) {
    tried.notes.push_back(where + " has no aws_access_key_id and aws_secret_access_key (single sign-on, role_arn and "
                                  "credential_process profiles are not supported)");
    return std::nullopt;
  }
  return AwsCredentials{.access_key_id = id, .secret_access_key = Secret(secret),
                        .session_token = Secret(get(*s, "aws_session_token")), .source = where};
}

std::optional<AwsCredentials> from_profile(const AwsCredentialOptions& o, Tried& tried) {
  const std::string name = profile_name(o);
  const auto cred_path = aws_credentials_file(o.env);
  const auto conf_path = aws_config_file(o.env);
  std::string cred_note, conf_note;
  const auto creds = read_ini(cred_path, cred_note);
  const auto conf = read_ini(conf_path, conf_note);
  const auto* in_creds = section(creds, name);
  const auto* in_conf = section(conf, name == "default" ? "default" : "profile " + name);
  if (auto c = from_section(in_creds, "profile " + name + " in " + cred_path.string(), tried)) return c;
  if (auto c = from_section(in_conf, "profile " + name + " in " + conf_path.string(), tried)) return c;
  if (!in_creds) tried.notes.push_back("profile " + name + ": " + (creds ? "no [" + name + "] section in " + cred_path.string() : cred_note));
  if (!in_conf)
    tried.notes.push_back("profile " + name + ": " +
                          (conf ? "no [" + std::string(name == "default" ? "default" : "profile " + name) + "] section in " +
                                      conf_path.string()
                                : conf_note));
  if (profile_named(o)) tried.fail("the AWS profile " + name + " has no usable keys");
  return std::nullopt;
}

std::optional<AwsCredentials> from_imds(const AwsCredentialOptions& o, Tried& tried) {
  if (lower_eq(env_or(o.env, "AWS_EC2_METADATA_DISABLED"), "true")) {
    tried.notes.emplace_back("instance metadata: disabled by AWS_EC2_METADATA_DISABLED=true");
    return std::nullopt;
  }
  std::string endpoint = o.imds_endpoint.empty() ? env_or(o.env, "AWS_EC2_METADATA_SERVICE_ENDPOINT", kDefaultImds) : o.imds_endpoint;
  while (!endpoint.empty() && endpoint.back() == '/') endpoint.pop_back();
  HttpClient http({.timeouts = o.imds_timeouts, .cancelled = o.cancelled});
  std::string token;
  try {
    token = http.send_ok({.method = "PUT", .url = endpoint + "/latest/api/token", .content_type = "text/plain",
                          .headers = {"X-aws-ec2-metadata-token-ttl-seconds: 21600"}})
                .body;
  } catch (const HttpError& e) {
    tried.notes.push_back("instance metadata (IMDSv2) at " + endpoint + ": no session token (" + e.what() +
                          "); not on an EC2 instance, or its metadata service is off");
    return std::nullopt;
  }
  const std::string header = "X-aws-ec2-metadata-token: " + token;
  const std::string base = endpoint + "/latest/meta-data/iam/security-credentials/";
  try {
    std::string role = http.send_ok({.url = base, .headers = {header}}).body;
    role = trim(role.substr(0, role.find('\n')));
    if (role.empty()) throw Refused(base + " listed no role");
    const auto doc = nlohmann::json::parse(http.send_ok({.url = base + role, .headers = {header}}).body);
    if (doc.value("Code", std::string("Success")) != "Success")
      throw Refused(base + role + " answered Code " + doc.value("Code", std::string{}));
    AwsCredentials c{.access_key_id = doc.at("AccessKeyId").get<std::string>(),
                     .secret_access_key = Secret(doc.at("SecretAccessKey").get<std::string>()),
                     .session_token = Secret(doc.value("Token", std::string{})),
                     .source = "instance role " + role + " from the instance metadata at " + endpoint};
    std::string exp;
    for (char ch : doc.value("Expiration", std::string{}))
      if (ch != '-' && ch != ':') exp += ch;
    c.expiration = parse_amz_date(exp);
    if (c.access_key_id.empty() || c.secret_access_key.empty()) throw Refused(base + role + " gave no keys");
    return c;
  } catch (const HttpError& e) {
    tried.notes.push_back("instance metadata (IMDSv2) at " + endpoint + ": " + e.what());
  } catch (const nlohmann::json::exception& e) {
    tried.notes.push_back("instance metadata (IMDSv2) at " + endpoint +
                          ": the role's credentials are not the JSON expected (JSON error " + std::to_string(e.id) + ")");
  }
  tried.fail("the instance metadata service gave no usable role credentials; attach an instance role to the instance");
}

}  // namespace

AwsIni parse_aws_ini(std::string_view text, const std::string& where) {
  AwsIni out;
  std::string current;
  std::string parent;  // the key of an indented block ("s3 =")
  bool in_section = false;
  std::size_t line_no = 0;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t end = std::min(text.find('\n', start), text.size());
    const std::string_view raw = text.substr(start, end - start);
    start = end + 1;
    ++line_no;
    const std::string line = trim(raw);
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;
    const bool indented = raw.front() == ' ' || raw.front() == '\t';
    if (line.front() == '[') {
      if (line.back() != ']')
        throw AwsCredentialsError(where + ":" + std::to_string(line_no) + ": a section header must end with ']'");
      current = trim(line.substr(1, line.size() - 2));
      // "[profile   dev]" names the profile dev.
      if (current.starts_with("profile ")) current = "profile " + trim(current.substr(8));
      out[current];
      in_section = true;
      parent.clear();
      continue;
    }
    const std::size_t eq = line.find('=');
    if (!in_section || eq == std::string::npos)
      throw AwsCredentialsError(where + ":" + std::to_string(line_no) +
                                (in_section ? ": expected KEY = VALUE" : ": a key before any [section]") +
                                "; fix the file (the AWS CLI's format: [section] lines, then key = value lines)");
    std::string key = trim(line.substr(0, eq));
    for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const std::string value = trim(line.substr(eq + 1));
    if (indented && !parent.empty()) {
      out[current][parent + "." + key] = value;
      continue;
    }
    parent = value.empty() ? key : "";
    out[current][key] = value;
  }
  return out;
}

std::filesystem::path aws_credentials_file(const EnvLookup& env) {
  if (auto f = env_or(env, "AWS_SHARED_CREDENTIALS_FILE"); !f.empty()) return f;
  return home_dir(env) / ".aws/credentials";
}

std::filesystem::path aws_config_file(const EnvLookup& env) {
  if (auto f = env_or(env, "AWS_CONFIG_FILE"); !f.empty()) return f;
  return home_dir(env) / ".aws/config";
}

AwsCredentials resolve_aws_credentials(const AwsCredentialOptions& options) {
  Tried tried;
  if (auto c = from_env(options, tried)) return std::move(*c);
  if (auto c = from_profile(options, tried)) return std::move(*c);
  if (auto c = from_imds(options, tried)) return std::move(*c);
  tried.fail("no AWS credentials found");
}

std::string resolve_aws_region(std::string_view configured, const AwsCredentialOptions& options) {
  std::string region(configured);
  std::string from = "the driver's region option";
  for (const char* var : {"AWS_REGION", "AWS_DEFAULT_REGION"}) {
    if (!region.empty()) break;
    region = env_or(options.env, var);
    from = var;
  }
  const std::string name = profile_name(options);
  const auto conf_path = aws_config_file(options.env);
  if (region.empty()) {
    std::string note;
    const auto conf = read_ini(conf_path, note);
    if (const auto* s = section(conf, name == "default" ? "default" : "profile " + name)) region = get(*s, "region");
    from = "region of profile " + name + " in " + conf_path.string();
  }
  if (region.empty())
    throw AwsCredentialsError("no AWS region: set region in the driver's options, or AWS_REGION or AWS_DEFAULT_REGION, or "
                              "region = ... in profile " + name + " of " + conf_path.string());
  const bool ok = std::all_of(region.begin(), region.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  }) && region.find('-') != std::string::npos && region.front() != '-' && region.back() != '-';
  if (!ok)
    throw AwsCredentialsError("the AWS region \"" + region + "\" (from " + from +
                              ") is not a region name such as eu-west-1; correct it");
  return region;
}

}  // namespace flotilla::support
