// Durations as users write them in topologies and on the command line ("30s", "1h30m").
#pragma once

#include "result.hpp"

#include <chrono>
#include <string>

namespace flotilla {

/// Parses "30s", "10m", "2h", "1d" or a sum such as "1h30m"; fails with a message naming the
/// text and the accepted units.
[[nodiscard]] Result<std::chrono::seconds> parse_duration(const std::string& text);

}  // namespace flotilla
