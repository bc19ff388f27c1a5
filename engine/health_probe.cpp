#include "health_probe.hpp"

#include "util.hpp"

namespace flotilla {

int HttpHealthProbe::http_status(const std::string& url, std::chrono::milliseconds timeout) { return http_get(url, timeout); }

}  // namespace flotilla
