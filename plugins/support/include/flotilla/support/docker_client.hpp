// A client for the Docker Engine API, on the support HTTP client: a unix socket, plain TCP or
// TCP with TLS client certificates. It speaks a pinned API version (kDockerApiVersion) and
// negotiates down through GET /version when the daemon is older. Calls are ensure-style where
// the API allows: starting a running container, stopping a stopped one or removing a missing
// one is not an error. Every error names the node and carries the daemon's own message.
#pragma once

#include "flotilla/support/http.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace flotilla::support {

/// The Engine API version this client is written against (Docker 20.10).
inline constexpr std::string_view kDockerApiVersion = "1.41";
/// The oldest Engine API version it can speak (Docker 1.13): older daemons are refused.
inline constexpr std::string_view kDockerMinApiVersion = "1.25";

/// Where a daemon listens and how to reach it.
struct DockerEndpoint {
  std::string node;  ///< the node's name, for error messages
  /// "unix:///path/docker.sock", "tcp://ADDRESS:PORT" (TLS when tls.cert_file is set or
  /// `use_tls`), or "https://ADDRESS:PORT".
  std::string host;
  bool use_tls = false;
  TlsOptions tls;
  HttpTimeouts timeouts{std::chrono::milliseconds(3000), std::chrono::milliseconds(30000)};
  CancelledFn cancelled;
};

/// The endpoint of a node as drivers record it in the node's view: `name`, and in
/// `runtime_config` the `host` and, for TLS client certificates, `tls` {ca, cert, key, and
/// optionally server_name: the name the daemon's certificate carries when not its address}. `host`
/// is empty when the driver recorded none; the caller says what that means.
[[nodiscard]] DockerEndpoint docker_endpoint_of(const nlohmann::json& node);

/// Credentials for one pull, given by the caller for that call only: the client never keeps,
/// logs or puts them in an error message.
struct RegistryAuth {
  std::string username;
  std::string password;
  std::string server_address;  ///< the registry, e.g. "127.88.0.1:5000"
  std::string identity_token;  ///< instead of username/password, when the registry issued one
};

/// A failed Engine API call. what() reads "docker on node N: WHAT: DAEMON MESSAGE (HTTP S)".
class DockerError : public std::runtime_error {
 public:
  DockerError(const std::string& message, std::string node, long status, std::string daemon_message, bool unreachable)
      : std::runtime_error(message), node_(std::move(node)), status_(status), daemon_message_(std::move(daemon_message)),
        unreachable_(unreachable) {}
  [[nodiscard]] const std::string& node() const { return node_; }
  /// The HTTP status of the answer; 0 when none came (or the error came inside a stream).
  [[nodiscard]] long status() const { return status_; }
  /// What the daemon said ("No such image: x"), or the transport's error when it said nothing.
  [[nodiscard]] const std::string& daemon_message() const { return daemon_message_; }
  /// True when the daemon could not be reached or dropped the connection (worth retrying).
  [[nodiscard]] bool unreachable() const { return unreachable_; }

 private:
  std::string node_;
  long status_;
  std::string daemon_message_;
  bool unreachable_;
};

/// One line of GET /containers/json.
struct ContainerSummary {
  std::string id;
  std::string name;   ///< without the leading '/'
  std::string image;
  std::string state;  ///< "running", "exited", "created", ...
  std::string status; ///< "Up 2 minutes", "Exited (3) 5 seconds ago"
  std::map<std::string, std::string> labels;
};

/// What a container's logs held, split by stream.
struct ContainerLogs {
  std::string out;
  std::string err;
};

/// Talks to one daemon. Thread-compatible: one client per thread (it keeps one connection).
class DockerClient {
 public:
  /// Throws std::invalid_argument naming the node when `endpoint.host` is not a form above.
  explicit DockerClient(DockerEndpoint endpoint);

  [[nodiscard]] const DockerEndpoint& endpoint() const { return endpoint_; }

  /// The API version in use ("1.41", or the daemon's when older); asks GET /version the first
  /// time. Throws DockerError when the daemon is unreachable or older than kDockerMinApiVersion.
  const std::string& api_version();
  /// GET /version: the daemon's version document.
  [[nodiscard]] nlohmann::json version();

  /// True when the image is in the daemon's store.
  [[nodiscard]] bool image_present(const std::string& reference);
  /// Pulls `reference` unless it is present; `auth` (may be null) is sent with this pull only.
  /// Throws DockerError with the registry's message (e.g. an authentication failure).
  void ensure_image(const std::string& reference, const RegistryAuth* auth = nullptr,
                    std::chrono::milliseconds timeout = std::chrono::minutes(5));

  /// Imports `tar` (a root filesystem, see make_tar) as image `reference` ("name:tag"), as
  /// `docker import` does; returns the image's ID.
  std::string import_image(const std::string& tar, const std::string& reference);

  /// POST /containers/create?name=NAME with `config` (the Engine API's container config with
  /// HostConfig); returns the new container's ID. A name in use is a DockerError (HTTP 409).
  std::string create_container(const std::string& name, const nlohmann::json& config);
  /// Starts it; already running is not an error.
  void start_container(const std::string& id_or_name);
  /// GET /containers/{id}/json, or nullopt when there is no such container.
  [[nodiscard]] std::optional<nlohmann::json> inspect_container(const std::string& id_or_name);
  /// Stops it, killing it after `grace`; already stopped or missing is not an error.
  void stop_container(const std::string& id_or_name, std::chrono::seconds grace = std::chrono::seconds(10));
  /// Removes it (forced: a running container is killed) with its anonymous volumes; missing is not an error.
  void remove_container(const std::string& id_or_name);
  /// Sends a signal ("HUP", "SIGUSR2", "9"). A container that is not running is a DockerError.
  void kill_container(const std::string& id_or_name, const std::string& signal);
  /// Every container (running or not) carrying all `labels` ("key" or "key=value").
  [[nodiscard]] std::vector<ContainerSummary> list_containers(const std::vector<std::string>& labels);
  /// Extracts `tar` (a tar archive, see make_tar) into directory `path` of the container, which must exist.
  void upload_archive(const std::string& id_or_name, const std::string& path, const std::string& tar);
  /// The last `tail` lines of its stdout and stderr (0: all).
  [[nodiscard]] ContainerLogs logs(const std::string& id_or_name, int tail = 0);

  /// Sends one request to /v{api_version}{path}; returns the answer whatever its status. Throws
  /// DockerError when no answer came. For calls this class does not wrap.
  HttpResponse call(const std::string& method, const std::string& path, std::string body = {},
                    std::vector<std::string> headers = {}, std::optional<HttpTimeouts> timeouts = std::nullopt);

  /// Throws the DockerError for a non-2xx answer to `what` ("create container web-1").
  [[noreturn]] void fail(const std::string& what, const HttpResponse& response) const;

 private:
  HttpResponse send(HttpRequest request, const std::string& what);
  [[nodiscard]] bool tls_refused() const;

  DockerEndpoint endpoint_;
  std::string base_url_;
  std::string api_version_;
  HttpClient http_;
};

/// The X-Registry-Auth header value for `auth`: URL-safe base64 of its JSON.
[[nodiscard]] std::string registry_auth_header(const RegistryAuth& auth);

/// Splits a multiplexed log stream (8-byte frame headers) into stdout and stderr. A stream
/// that does not start with a frame header (a TTY container's) is all stdout.
[[nodiscard]] ContainerLogs demux_log_stream(std::string_view data);

/// Compares "1.41"-style versions: negative, 0 or positive as strcmp.
[[nodiscard]] int compare_api_versions(std::string_view a, std::string_view b);

}  // namespace flotilla::support
