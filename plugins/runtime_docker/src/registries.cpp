#include "runtime_docker/registries.hpp"

#include <flotilla/support/request.hpp>
#include <flotilla/support/secret.hpp>

#include <algorithm>
#include <cctype>
#include <regex>
#include <set>

namespace flotilla::docker_runtime {
namespace {

using flotilla::sdk::json;
using flotilla::support::str_or;

const std::set<std::string> kEntryKeys = {"address", "username", "password"};
constexpr const char* kWhere = "[[runtime.docker.registries]]";

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

/// One spelling per registry: no scheme, no trailing '/', Docker Hub's aliases as "docker.io".
std::string normalized(std::string address) {
  for (const char* scheme : {"https://", "http://"})
    if (address.starts_with(scheme)) address.erase(0, std::string_view(scheme).size());
  while (address.ends_with('/')) address.pop_back();
  address = lower(address);
  if (address == "index.docker.io" || address == "registry-1.docker.io" || address == "index.docker.io/v1") return "docker.io";
  return address;
}

void check_password(const json& entry, const std::string& path, json& errors) {
  const auto report = [&](const std::string& message) { errors.push_back({{"message", message}, {"key", path + ".password"}}); };
  const auto it = entry.find("password");
  if (it == entry.end()) {
    if (entry.contains("username"))
      report(std::string(kWhere) + " entry for " + str_or(entry, "address", "?") +
             " has a username but no password; add password = \"env:NAME\" or \"file:/path/to/secret\"");
    return;
  }
  if (!it->is_string()) {
    report("password must be a string naming the secret: \"env:NAME\" or \"file:/path/to/secret\"");
    return;
  }
  const std::string value = it->get<std::string>();
  if (!support::is_secret_reference(value)) {
    // The value is not repeated: it may be the very secret that must not be written down.
    report("password is written as the secret itself, which a topology never holds; put the secret in an environment "
           "variable or a file and write password = \"env:NAME\" or password = \"file:/path/to/secret\"");
    return;
  }
  if (const std::string problem = support::secret_reference_problem(value); !problem.empty()) report("password " + problem);
  if (!entry.contains("username")) report("a password needs a username; add username = \"...\"");
}

void check_entry(const json& entry, const std::string& path, std::set<std::string>& seen, json& errors) {
  const auto report = [&](const std::string& key, const std::string& message) {
    errors.push_back({{"message", message}, {"key", key.empty() ? path : path + "." + key}});
  };
  if (!entry.is_object()) {
    report("", "each entry of registries must be a table; write it as " + std::string(kWhere) + " followed by address, username and password");
    return;
  }
  for (const auto& [key, value] : entry.items()) {
    (void)value;
    if (!kEntryKeys.contains(key)) report(key, "unknown key \"" + key + "\" in " + kWhere + "; remove it (known: address, username, password)");
  }
  static const std::regex host_port(R"([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?)");
  const auto address = entry.find("address");
  if (address == entry.end() || !address->is_string() || address->get<std::string>().empty()) {
    report("", std::string(kWhere) + " entry has no address; add address = \"registry.example.com:5000\" (the registry as image names write it)");
  } else if (const std::string a = normalized(address->get<std::string>()); !std::regex_match(a, host_port)) {
    report("address", "address \"" + address->get<std::string>() + "\" is not a registry host[:port]; write it as image names do, e.g. \"registry.example.com:5000\"");
  } else if (!seen.insert(a).second) {
    report("address", "registry " + a + " has a second " + std::string(kWhere) + " entry; keep one");
  }
  if (const auto user = entry.find("username"); user != entry.end() && (!user->is_string() || user->get<std::string>().empty()))
    report("username", "username must be a non-empty string");
  check_password(entry, path, errors);
}

bool asked_for_credentials(const support::DockerError& e) {
  const std::string said = lower(e.daemon_message());
  return e.status() == 401 || said.find("unauthorized") != std::string::npos || said.find("authentication required") != std::string::npos ||
         said.find("no basic auth credentials") != std::string::npos || said.find("access to the resource is denied") != std::string::npos;
}

}  // namespace

json config_errors(const json& config) {
  json errors = json::array();
  if (!config.is_object() || !config.contains("registries")) return errors;
  const json& registries = config["registries"];
  if (!registries.is_array()) {
    errors.push_back({{"message", "registries must be an array of tables, written " + std::string(kWhere)}, {"key", "registries"}});
    return errors;
  }
  std::set<std::string> seen;
  for (std::size_t i = 0; i < registries.size(); ++i) check_entry(registries[i], "registries[" + std::to_string(i) + "]", seen, errors);
  return errors;
}

std::string registry_of(const std::string& image) {
  const auto slash = image.find('/');
  if (slash == std::string::npos) return "docker.io";
  const std::string first = image.substr(0, slash);
  if (first.find_first_of(".:") == std::string::npos && first != "localhost") return "docker.io";
  return normalized(first);
}

std::optional<RegistryLogin> login_for(const json& config, const std::string& image) {
  if (!config.is_object() || !config.contains("registries") || !config["registries"].is_array()) return std::nullopt;
  const std::string registry = registry_of(image);
  for (const json& entry : config["registries"]) {
    if (!entry.is_object() || normalized(str_or(entry, "address")) != registry) continue;
    return RegistryLogin{normalized(str_or(entry, "address")), str_or(entry, "username"), str_or(entry, "password")};
  }
  return std::nullopt;
}

support::RegistryAuth resolve_login(const RegistryLogin& login, const std::string& node, const std::string& image) {
  const auto fail = [&](const std::string& what, const std::string& why) -> sdk::Invalid {
    return sdk::Invalid("node " + node + " cannot pull image " + image + ": the " + what + " for registry " + login.address +
                        " in [runtime.docker] " + why);
  };
  std::string username = login.username;
  if (support::is_secret_reference(username)) {
    auto found = support::resolve_secret_reference(username);
    if (!found) throw fail("username", found.error());
    username = std::move(*found);
  }
  auto password = support::resolve_secret_reference(login.password);
  if (!password) throw fail("password", password.error());
  return support::RegistryAuth{.username = username, .password = std::move(*password), .server_address = login.address};
}

std::string pull_hint(const support::DockerError& e, const std::string& image, const RegistryLogin* login) {
  if (!asked_for_credentials(e)) return {};
  const std::string registry = registry_of(image);
  if (login == nullptr)
    return "; registry " + registry + " asks for credentials and [runtime.docker] gives none for it: add " + kWhere +
           " with address = \"" + registry + "\", username and password = \"env:NAME\" (see docs/docker.md)";
  return "; registry " + registry + " refused the credentials [runtime.docker] gives for it (username " +
         (support::is_secret_reference(login->username) ? login->username : "\"" + login->username + "\"") +
         ", password from " + login->password + "): check both, and that the secret " + login->password + " names is current";
}

void ensure_image(support::DockerClient& docker, const json& config, const std::string& image, const std::string& what,
                  const std::string& otherwise) {
  const std::string node = docker.endpoint().node;
  const auto login = login_for(config, image);
  std::optional<support::RegistryAuth> auth;
  if (login && !docker.image_present(image)) auth = resolve_login(*login, node, image);
  try {
    docker.ensure_image(image, auth ? &*auth : nullptr);
  } catch (const support::DockerError& e) {
    // Still a DockerError, so the caller keeps it retryable; the image is named for the user.
    if (e.unreachable())
      throw support::DockerError(std::string(e.what()) + " (pulling image " + image + ")", e.node(), e.status(), e.daemon_message(), true);
    std::string message = std::string(e.what()) + " (" + what + ")";
    if (std::string hint = pull_hint(e, image, login ? &*login : nullptr); !hint.empty()) message += hint;
    else if (!otherwise.empty()) message += otherwise;
    else message += "; check the image's name and tag, that node " + node + " reaches its registry, and the registry's credentials";
    // A registry may echo what it was sent; the secret goes no further than this function.
    if (auth && !auth->password.empty())
      for (auto at = message.find(auth->password); at != std::string::npos; at = message.find(auth->password))
        message.replace(at, auth->password.size(), "[redacted]");
    throw sdk::Error(FLT_ERROR, message);
  }
}

}  // namespace flotilla::docker_runtime
