// How the engine asks a new instance whether it is healthy.
#pragma once

#include <chrono>
#include <string>

namespace flotilla {

class HealthProbe {
 public:
  virtual ~HealthProbe() = default;
  /// The HTTP status of a GET of `url` (0 when nothing answered within `timeout`).
  [[nodiscard]] virtual int http_status(const std::string& url, std::chrono::milliseconds timeout) = 0;
};

/// The real probe: an HTTP GET.
class HttpHealthProbe final : public HealthProbe {
 public:
  [[nodiscard]] int http_status(const std::string& url, std::chrono::milliseconds timeout) override;
};

}  // namespace flotilla
