// Waiting for an HTTP endpoint to give an acceptable answer: the one loop for "poll this URL
// until it is ready", with the last answer kept for the error message when it never is.
#pragma once

#include "flotilla/support/http.hpp"
#include "flotilla/support/wait.hpp"

#include <chrono>
#include <functional>
#include <string>

namespace flotilla::support {

/// What wait_for_http saw.
struct HttpWaitResult {
  bool ok = false;  ///< an answer was accepted before the deadline
  /// When not ok, the last answer seen: "HTTP <status>: <its body's first 200 bytes>", why
  /// nothing answered (the Unreachable's message), or "no answer" when cancelled before a try.
  std::string last_answer;
};

/// GETs `url` with `http` at once and then every `interval` until an answer has status 200 and
/// `accept(body)` returns true (ok), `timeout` passes (after one last try at the deadline) or
/// `cancelled` returns true. No answer (Unreachable) is a failed try like any other; exceptions
/// from `accept` propagate. The client's own timeouts and cancellation bound each try.
[[nodiscard]] HttpWaitResult wait_for_http(HttpClient& http, const std::string& url, std::chrono::milliseconds timeout,
                                           std::chrono::milliseconds interval,
                                           const std::function<bool(const std::string& body)>& accept,
                                           const CancelledFn& cancelled = {});

}  // namespace flotilla::support
