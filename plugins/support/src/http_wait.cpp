#include "flotilla/support/http_wait.hpp"

namespace flotilla::support {

HttpWaitResult wait_for_http(HttpClient& http, const std::string& url, std::chrono::milliseconds timeout,
                             std::chrono::milliseconds interval, const std::function<bool(const std::string& body)>& accept,
                             const CancelledFn& cancelled) {
  HttpWaitResult out{.ok = false, .last_answer = "no answer"};
  out.ok = wait_until(
      timeout, interval,
      [&] {
        try {
          const HttpResponse r = http.send({.url = url});
          if (r.status == 200 && accept(r.body)) return true;
          out.last_answer = "HTTP " + std::to_string(r.status) + ": " + r.body.substr(0, 200);
        } catch (const Unreachable& e) {
          out.last_answer = e.what();
        }
        return false;
      },
      cancelled);
  if (out.ok) out.last_answer.clear();
  return out;
}

}  // namespace flotilla::support
