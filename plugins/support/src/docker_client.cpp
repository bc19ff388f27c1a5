#include "flotilla/support/docker_client.hpp"

#include "flotilla/support/encoding.hpp"
#include "flotilla/support/net.hpp"

#include <algorithm>
#include <charconv>
#include <sstream>

namespace flotilla::support {

using nlohmann::json;

namespace {

/// The daemon's message in an error body ({"message": "..."}), or the body itself.
std::string daemon_message_of(const std::string& body) {
  const json doc = json::parse(body, nullptr, false);
  if (doc.is_object() && doc.contains("message") && doc["message"].is_string()) return doc["message"].get<std::string>();
  std::string text = body.substr(0, 300);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.pop_back();
  return text;
}

/// "repo" and "tag" of a reference as POST /images/create takes them; a digest stays whole.
std::pair<std::string, std::string> split_reference(const std::string& reference) {
  if (reference.find('@') != std::string::npos) return {reference, ""};
  const auto slash = reference.rfind('/');
  const auto colon = reference.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash))
    return {reference.substr(0, colon), reference.substr(colon + 1)};
  return {reference, "latest"};
}

/// The first {"error": ...} of a pull's progress stream (one JSON document per line), or "".
std::string stream_error(const std::string& body) {
  std::istringstream in(body);
  std::string line;
  while (std::getline(in, line)) {
    const json doc = json::parse(line, nullptr, false);
    if (!doc.is_object()) continue;
    if (doc.contains("errorDetail") && doc["errorDetail"].is_object() && doc["errorDetail"].contains("message"))
      return doc["errorDetail"]["message"].get<std::string>();
    if (doc.contains("error") && doc["error"].is_string()) return doc["error"].get<std::string>();
  }
  return {};
}

std::pair<int, int> parse_version(std::string_view v) {
  int major = 0, minor = 0;
  const auto dot = v.find('.');
  std::from_chars(v.data(), v.data() + (dot == std::string_view::npos ? v.size() : dot), major);
  if (dot != std::string_view::npos) std::from_chars(v.data() + dot + 1, v.data() + v.size(), minor);
  return {major, minor};
}

}  // namespace

int compare_api_versions(std::string_view a, std::string_view b) {
  const auto [am, an] = parse_version(a);
  const auto [bm, bn] = parse_version(b);
  if (am != bm) return am < bm ? -1 : 1;
  if (an != bn) return an < bn ? -1 : 1;
  return 0;
}

std::string registry_auth_header(const RegistryAuth& auth) {
  json doc = json::object();
  if (!auth.identity_token.empty()) {
    doc["identitytoken"] = auth.identity_token;
  } else {
    doc["username"] = auth.username;
    doc["password"] = auth.password;
  }
  if (!auth.server_address.empty()) doc["serveraddress"] = auth.server_address;
  std::string text = base64_encode(doc.dump());
  std::replace(text.begin(), text.end(), '+', '-');
  std::replace(text.begin(), text.end(), '/', '_');
  return text;
}

ContainerLogs demux_log_stream(std::string_view data) {
  ContainerLogs out;
  const auto framed = [](std::string_view d) {
    return d.size() >= 8 && static_cast<unsigned char>(d[0]) <= 2 && d[1] == 0 && d[2] == 0 && d[3] == 0;
  };
  if (!framed(data)) {
    out.out = std::string(data);
    return out;
  }
  while (data.size() >= 8) {
    const auto b = [&](size_t i) { return static_cast<std::uint32_t>(static_cast<unsigned char>(data[i])); };
    const size_t size = (b(4) << 24) | (b(5) << 16) | (b(6) << 8) | b(7);
    const std::string_view payload = data.substr(8, size);
    (data[0] == 2 ? out.err : out.out) += payload;
    data.remove_prefix(std::min(data.size(), 8 + size));
  }
  return out;
}

DockerClient::DockerClient(DockerEndpoint endpoint) : endpoint_(std::move(endpoint)) {
  HttpClientOptions options;
  options.timeouts = endpoint_.timeouts;
  options.cancelled = endpoint_.cancelled;
  const std::string& host = endpoint_.host;
  if (host.starts_with("unix://")) {
    options.unix_socket = host.substr(7);
    base_url_ = "http://docker";
  } else if (host.starts_with("tcp://") || host.starts_with("https://") || host.starts_with("http://")) {
    const std::string address = host.substr(host.find("://") + 3);
    const bool tls = host.starts_with("https://") || endpoint_.use_tls || !endpoint_.tls.cert_file.empty();
    base_url_ = (tls ? "https://" : "http://") + address;
    if (tls) options.tls = endpoint_.tls;
  } else {
    throw std::invalid_argument("docker on node " + endpoint_.node + ": host \"" + host +
                                "\" is not unix:///PATH, tcp://ADDRESS:PORT or https://ADDRESS:PORT");
  }
  while (!base_url_.empty() && base_url_.back() == '/') base_url_.pop_back();
  http_ = HttpClient(std::move(options));
}

/// True when the daemon's TCP port accepts connections: a TLS call that failed there was refused
/// by the handshake (a certificate the other side does not trust), not by a missing daemon.
bool DockerClient::tls_refused() const {
  if (base_url_.rfind("https://", 0) != 0) return false;
  const std::string address = base_url_.substr(8);
  const auto colon = address.rfind(':');
  if (colon == std::string::npos) return false;
  int port = 0;
  const auto [end, ec] = std::from_chars(address.data() + colon + 1, address.data() + address.size(), port);
  if (ec != std::errc() || port <= 0 || port > 65535) return false;
  return tcp_port_open(address.substr(0, colon), static_cast<std::uint16_t>(port), std::chrono::milliseconds(500));
}

HttpResponse DockerClient::send(HttpRequest request, const std::string& what) {
  try {
    return http_.send(request);
  } catch (const Unreachable& e) {
    if (e.cause() == Unreachable::Cause::transport && tls_refused())
      throw DockerError("docker on node " + endpoint_.node + ": " + what + ": the TLS connection to the daemon at " + endpoint_.host +
                            " failed (" + e.what() + ") although it listens there: the client certificate " +
                            (endpoint_.tls.cert_file.empty() ? std::string("(none given)") : endpoint_.tls.cert_file.string()) +
                            " is not signed by a CA the daemon trusts, or the CA " + endpoint_.tls.ca_file.string() +
                            " did not sign the daemon's certificate; use the certificates the node's driver made "
                            "(DOCKER_CERT_PATH in `flotilla env FILE " + endpoint_.node + "`)",
                        endpoint_.node, 0, e.what(), false);
    throw DockerError("docker on node " + endpoint_.node + ": " + what + ": the daemon at " + endpoint_.host +
                          " did not answer (" + e.what() + "); check that dockerd runs on that node",
                      endpoint_.node, 0, e.what(), true);
  }
}

void DockerClient::fail(const std::string& what, const HttpResponse& response) const {
  const std::string message = daemon_message_of(response.body);
  throw DockerError("docker on node " + endpoint_.node + ": " + what + ": " + message + " (HTTP " + std::to_string(response.status) + ")",
                    endpoint_.node, response.status, message, false);
}

json DockerClient::version() {
  const HttpResponse r = send({.method = "GET", .url = base_url_ + "/version"}, "GET /version");
  if (r.status != 200) fail("GET /version", r);
  json doc = json::parse(r.body, nullptr, false);
  if (!doc.is_object())
    throw DockerError("docker on node " + endpoint_.node + ": GET /version answered what is not a JSON object", endpoint_.node,
                      r.status, r.body.substr(0, 200), false);
  return doc;
}

const std::string& DockerClient::api_version() {
  if (!api_version_.empty()) return api_version_;
  const json v = version();
  const std::string daemon = v.value("ApiVersion", "");
  if (daemon.empty() || compare_api_versions(daemon, kDockerMinApiVersion) < 0) {
    const std::string shown = daemon.empty() ? "an unknown version" : "API " + daemon;
    throw DockerError("docker on node " + endpoint_.node + ": the daemon speaks " + shown + " (Docker " +
                          v.value("Version", std::string("?")) + "), older than API " + std::string(kDockerMinApiVersion) +
                          ", the oldest Flotilla can use; upgrade Docker on that node",
                      endpoint_.node, 200, shown, false);
  }
  api_version_ = compare_api_versions(daemon, kDockerApiVersion) < 0 ? daemon : std::string(kDockerApiVersion);
  return api_version_;
}

HttpResponse DockerClient::call(const std::string& method, const std::string& path, std::string body, std::vector<std::string> headers,
                                std::optional<HttpTimeouts> timeouts) {
  const std::string url = base_url_ + "/v" + api_version() + path;
  HttpRequest request{.method = method, .url = url, .body = std::move(body), .headers = std::move(headers), .timeouts = timeouts};
  return send(std::move(request), method + " " + path.substr(0, path.find('?')));
}

bool DockerClient::image_present(const std::string& reference) {
  const HttpResponse r = call("GET", "/images/" + reference + "/json");
  if (r.status == 200) return true;
  if (r.status == 404) return false;
  fail("inspect image " + reference, r);
}

void DockerClient::ensure_image(const std::string& reference, const RegistryAuth* auth, std::chrono::milliseconds timeout) {
  if (image_present(reference)) return;
  const auto [repo, tag] = split_reference(reference);
  std::string path = "/images/create?fromImage=" + url_encode(repo);
  if (!tag.empty()) path += "&tag=" + url_encode(tag);
  std::vector<std::string> headers;
  if (auth) headers.push_back("X-Registry-Auth: " + registry_auth_header(*auth));
  const HttpResponse r = call("POST", path, "", std::move(headers), HttpTimeouts{endpoint_.timeouts.connect, timeout});
  if (r.status < 200 || r.status >= 300) fail("pull image " + reference, r);
  // A pull that fails after it started still answers 200; the error is in the progress stream.
  if (const std::string error = stream_error(r.body); !error.empty())
    throw DockerError("docker on node " + endpoint_.node + ": pull image " + reference + ": " + error, endpoint_.node, r.status, error,
                      false);
}

std::string DockerClient::import_image(const std::string& tar, const std::string& reference) {
  const auto [repo, tag] = split_reference(reference);
  const std::string path = "/images/create?fromSrc=-&repo=" + url_encode(repo) + "&tag=" + url_encode(tag.empty() ? "latest" : tag);
  const std::string url = base_url_ + "/v" + api_version() + path;
  const HttpResponse r = send({.method = "POST", .url = url, .body = tar, .content_type = "application/x-tar"}, "import image " + reference);
  if (r.status != 200) fail("import image " + reference, r);
  if (const std::string error = stream_error(r.body); !error.empty())
    throw DockerError("docker on node " + endpoint_.node + ": import image " + reference + ": " + error, endpoint_.node, r.status, error, false);
  // The stream ends with {"status":"sha256:..."}.
  std::string id;
  std::istringstream in(r.body);
  std::string line;
  while (std::getline(in, line)) {
    const json doc = json::parse(line, nullptr, false);
    if (doc.is_object() && doc.contains("status") && doc["status"].is_string()) id = doc["status"].get<std::string>();
  }
  return id;
}

std::string DockerClient::create_container(const std::string& name, const json& config) {
  const HttpResponse r = call("POST", "/containers/create?name=" + url_encode(name), config.dump());
  if (r.status != 201 && r.status != 200) fail("create container " + name, r);
  const json doc = json::parse(r.body, nullptr, false);
  if (!doc.is_object() || !doc.contains("Id") || !doc["Id"].is_string())
    throw DockerError("docker on node " + endpoint_.node + ": create container " + name + ": the answer has no Id: " + r.body.substr(0, 200),
                      endpoint_.node, r.status, r.body.substr(0, 200), false);
  return doc["Id"].get<std::string>();
}

void DockerClient::start_container(const std::string& id) {
  const HttpResponse r = call("POST", "/containers/" + url_encode(id) + "/start");
  if (r.status != 204 && r.status != 304) fail("start container " + id, r);
}

std::optional<json> DockerClient::inspect_container(const std::string& id) {
  const HttpResponse r = call("GET", "/containers/" + url_encode(id) + "/json");
  if (r.status == 404) return std::nullopt;
  if (r.status != 200) fail("inspect container " + id, r);
  json doc = json::parse(r.body, nullptr, false);
  if (!doc.is_object()) fail("inspect container " + id, r);
  return doc;
}

void DockerClient::stop_container(const std::string& id, std::chrono::seconds grace) {
  // The daemon answers only after the grace period has run out and the kill went through.
  const HttpTimeouts timeouts{endpoint_.timeouts.connect, endpoint_.timeouts.total + grace};
  const HttpResponse r = call("POST", "/containers/" + url_encode(id) + "/stop?t=" + std::to_string(grace.count()), "", {}, timeouts);
  if (r.status != 204 && r.status != 304 && r.status != 404) fail("stop container " + id, r);
}

void DockerClient::remove_container(const std::string& id) {
  const HttpResponse r = call("DELETE", "/containers/" + url_encode(id) + "?force=1&v=1");
  if (r.status != 204 && r.status != 404) fail("remove container " + id, r);
}

void DockerClient::kill_container(const std::string& id, const std::string& signal) {
  const HttpResponse r = call("POST", "/containers/" + url_encode(id) + "/kill?signal=" + url_encode(signal));
  if (r.status != 204) fail("send signal " + signal + " to container " + id, r);
}

std::vector<ContainerSummary> DockerClient::list_containers(const std::vector<std::string>& labels) {
  const json filters = {{"label", labels}};
  const HttpResponse r = call("GET", "/containers/json?all=1&filters=" + url_encode(filters.dump()));
  if (r.status != 200) fail("list containers", r);
  const json doc = json::parse(r.body, nullptr, false);
  if (!doc.is_array()) fail("list containers", r);
  std::vector<ContainerSummary> out;
  for (const json& c : doc) {
    ContainerSummary s;
    s.id = c.value("Id", "");
    if (c.contains("Names") && c["Names"].is_array() && !c["Names"].empty()) {
      s.name = c["Names"][0].get<std::string>();
      if (s.name.starts_with('/')) s.name.erase(0, 1);
    }
    s.image = c.value("Image", "");
    s.state = c.value("State", "");
    s.status = c.value("Status", "");
    if (c.contains("Labels") && c["Labels"].is_object())
      for (const auto& [k, v] : c["Labels"].items()) s.labels[k] = v.is_string() ? v.get<std::string>() : v.dump();
    out.push_back(std::move(s));
  }
  return out;
}

void DockerClient::upload_archive(const std::string& id, const std::string& path, const std::string& tar) {
  const std::string url = base_url_ + "/v" + api_version() + "/containers/" + url_encode(id) + "/archive?path=" + url_encode(path);
  const HttpResponse r =
      send({.method = "PUT", .url = url, .body = tar, .content_type = "application/x-tar"}, "PUT /containers/" + id + "/archive");
  if (r.status != 200) fail("upload files to " + path + " in container " + id, r);
}

ContainerLogs DockerClient::logs(const std::string& id, int tail) {
  const std::string path = "/containers/" + url_encode(id) + "/logs?stdout=1&stderr=1&tail=" + (tail > 0 ? std::to_string(tail) : "all");
  const HttpResponse r = call("GET", path);
  if (r.status != 200) fail("read the logs of container " + id, r);
  return demux_log_stream(r.body);
}

DockerEndpoint docker_endpoint_of(const nlohmann::json& node) {
  const auto text = [](const nlohmann::json& j, const char* key) {
    return j.is_object() && j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
  };
  const nlohmann::json rc = node.is_object() ? node.value("runtime_config", nlohmann::json::object()) : nlohmann::json::object();
  DockerEndpoint e;
  e.node = text(node, "name");
  e.host = text(rc, "host");
  if (const nlohmann::json tls = rc.is_object() ? rc.value("tls", nlohmann::json::object()) : nlohmann::json::object();
      tls.is_object() && !tls.empty()) {
    e.use_tls = true;
    e.tls.ca_file = text(tls, "ca");
    e.tls.cert_file = text(tls, "cert");
    e.tls.key_file = text(tls, "key");
    e.tls.server_name = text(tls, "server_name");
  }
  return e;
}

}  // namespace flotilla::support
