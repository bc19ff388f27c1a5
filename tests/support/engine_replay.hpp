// Replays recorded Docker Engine API exchanges (tests/data/docker/*.json) on a unix socket, as
// dockerd serves them: each request must match the next recorded one (method, path, query
// parameters in any order, and a JSON body or headers when recorded) and gets the recorded
// answer; a recorded `"drop": true` closes the connection instead of answering. Mismatches are
// answered with HTTP 599 and remembered, so a test can assert the client spoke the recording.
//
//   {"description": "...", "source": "where the shapes come from",
//    "exchanges": [{"request":  {"method": "GET", "path": "/v1.41/containers/json?all=1",
//                                "headers": {"x-registry-auth": "..."}, "body": <json>},
//                   "response": {"status": 200, "body": <json>|"text", "drop": false}}]}
#pragma once

#include "support/http_server.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace flotilla::test {

class EngineReplay {
 public:
  /// Loads tests/data/docker/<name>.json and serves it on a fresh socket in a temporary directory.
  explicit EngineReplay(const std::string& name);
  ~EngineReplay();
  EngineReplay(const EngineReplay&) = delete;
  EngineReplay& operator=(const EngineReplay&) = delete;

  /// "unix:///tmp/.../docker.sock", as DockerEndpoint::host takes it.
  [[nodiscard]] std::string host() const { return "unix://" + socket_.string(); }
  [[nodiscard]] size_t served() const;
  [[nodiscard]] size_t recorded() const { return exchanges_.size(); }
  /// Requests that did not match the recording, described.
  [[nodiscard]] std::vector<std::string> mismatches() const;
  /// Every request as it arrived (headers lower-cased).
  [[nodiscard]] std::vector<ServedRequest> requests() const { return server_->requests(); }

 private:
  ServedResponse answer(const ServedRequest& request);

  nlohmann::json exchanges_;
  std::filesystem::path dir_;
  std::filesystem::path socket_;
  mutable std::mutex mu_;
  size_t next_ = 0;
  std::vector<std::string> mismatches_;
  std::unique_ptr<HttpTestServer> server_;
};

}  // namespace flotilla::test
