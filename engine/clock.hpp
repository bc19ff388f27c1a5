// The engine's one way to write the current time: UTC, in a given strftime format.
#pragma once

#include <string>

namespace flotilla {

/// Current UTC time in strftime's `format` (at most 63 characters long).
[[nodiscard]] std::string utc_now(const char* format);

/// Current UTC time as ISO 8601 with seconds ("2026-11-25T14:00:00Z").
[[nodiscard]] std::string iso_now();

}  // namespace flotilla
