#include "clock.hpp"

#include <ctime>

namespace flotilla {

std::string utc_now(const char* format) {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[64];
  if (std::strftime(buf, sizeof buf, format, &tm) == 0) return {};
  return buf;
}

std::string iso_now() { return utc_now("%Y-%m-%dT%H:%M:%SZ"); }

}  // namespace flotilla
