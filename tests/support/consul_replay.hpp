// A tiny HTTP server on 127.0.0.1 that replays recorded Consul API exchanges
// (tests/data/consul/*.json) in order: each incoming request must match the next recorded
// request (method, path, query parameters in any order, JSON body when one is recorded) and
// gets the recorded response. Mismatches are answered with HTTP 599 and remembered, so a test
// can assert that the client spoke exactly the recorded API.
//
// File format:
//   {"description": "...", "source": "which API documentation the shapes follow",
//    "exchanges": [{"request":  {"method": "PUT", "path": "/v1/kv/a?cas=0", "body": <json>|"text"},
//                   "response": {"status": 200, "headers": {"X-Consul-Index": "7"},
//                                "body": <json>|"text", "delay_ms": 0}}]}
// A request without "body" matches any body. A response body given as a JSON string is sent
// as that text; any other JSON value is sent serialised.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace flotilla::test::discovery {

/// Replays one recorded conversation; stops its thread on destruction.
class ConsulReplay {
 public:
  /// Loads tests/data/consul/<name>.json.
  static ConsulReplay from_recording(const std::string& name);
  explicit ConsulReplay(nlohmann::json exchanges);
  ~ConsulReplay();
  ConsulReplay(const ConsulReplay&) = delete;
  ConsulReplay& operator=(const ConsulReplay&) = delete;
  ConsulReplay(ConsulReplay&& other) = delete;

  /// "http://127.0.0.1:PORT"
  [[nodiscard]] std::string url() const;
  /// How many recorded exchanges have been answered.
  [[nodiscard]] size_t served() const { return served_.load(); }
  [[nodiscard]] size_t recorded() const { return exchanges_.size(); }
  /// Requests that did not match the recording, described.
  [[nodiscard]] std::vector<std::string> mismatches() const;

 private:
  void serve();
  void handle(int fd);

  nlohmann::json exchanges_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<size_t> served_{0};
  mutable std::mutex mu_;
  std::vector<std::string> mismatches_;
  std::thread thread_;
};

}  // namespace flotilla::test::discovery
