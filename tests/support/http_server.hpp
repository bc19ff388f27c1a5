// A small HTTP/1.1 server for tests of HTTP clients: listens on 127.0.0.1 or on a unix socket,
// keeps connections alive, and answers each request through a handler that may stream its
// body in chunks with pauses. It counts connections, so tests can see keep-alive at work.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace flotilla::test {

struct ServedRequest {
  std::string method;
  std::string target;  ///< path and query as sent
  std::map<std::string, std::string> headers;  ///< names lower-cased
  std::string body;
};

struct ServedResponse {
  int status = 200;
  std::string body;
  std::map<std::string, std::string> headers;
  /// When not empty, sent with chunked transfer encoding, one chunk per entry, `pause` apart.
  std::vector<std::string> chunks;
  std::chrono::milliseconds pause{0};
  /// Wait this long before answering at all.
  std::chrono::milliseconds delay{0};
  /// Close the connection instead of answering (a server that drops it mid-request).
  bool drop = false;
};

/// Serves until destroyed; the destructor stops the thread and closes every connection.
class HttpTestServer {
 public:
  using Handler = std::function<ServedResponse(const ServedRequest&)>;
  /// On 127.0.0.1 at a free port. Throws std::runtime_error if it cannot listen.
  explicit HttpTestServer(Handler handler);
  /// On a unix socket at `socket_path`.
  HttpTestServer(const std::filesystem::path& socket_path, Handler handler);
  ~HttpTestServer();
  HttpTestServer(const HttpTestServer&) = delete;
  HttpTestServer& operator=(const HttpTestServer&) = delete;

  /// "http://127.0.0.1:PORT" (for a unix socket: "http://localhost").
  [[nodiscard]] std::string url() const;
  [[nodiscard]] int port() const { return port_; }
  /// Connections accepted so far.
  [[nodiscard]] int connections() const { return connections_.load(); }
  /// Every request served so far.
  [[nodiscard]] std::vector<ServedRequest> requests() const;

 private:
  void start();
  void serve();
  void handle(int fd);

  Handler handler_;
  std::filesystem::path socket_path_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  mutable std::mutex mu_;
  std::vector<ServedRequest> requests_;
  std::vector<std::thread> workers_;
  std::thread thread_;
};

}  // namespace flotilla::test
