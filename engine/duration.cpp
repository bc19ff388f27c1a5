#include "duration.hpp"

#include <cctype>
#include <cstdint>

namespace flotilla {

Result<std::chrono::seconds> parse_duration(const std::string& text) {
  auto bad = [&]() {
    return fail("invalid duration `" + text + "`: write a number and a unit s, m, h or d (e.g. 30s, 10m, 2h, 1d, 1h30m)");
  };
  if (text.empty()) return bad();
  std::int64_t total = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    std::int64_t n = 0;
    const std::size_t start = i;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])) != 0) {
      if (n > 1'000'000'000) return bad();
      n = n * 10 + (text[i] - '0');
      ++i;
    }
    if (i == start || i >= text.size()) return bad();
    std::int64_t unit = 0;
    switch (text[i]) {
      case 's': unit = 1; break;
      case 'm': unit = 60; break;
      case 'h': unit = 3600; break;
      case 'd': unit = 86400; break;
      default: return bad();
    }
    ++i;
    total += n * unit;
    if (total > 100LL * 365 * 86400) return bad();
  }
  return std::chrono::seconds(total);
}

}  // namespace flotilla
