// A test that cannot run on this machine says so and why, and ctest counts it as skipped, not
// passed: tests/CMakeLists.txt gives every discovered test a SKIP_REGULAR_EXPRESSION on the
// marker, and scripts/test.sh lists the skipped tests with their reasons at the end.
#pragma once

#include <catch2/catch.hpp>

#include <iostream>

/// Ends the current test as skipped: prints the marker line (for ctest) and a Catch2 warning.
/// Use it only before any assertion that could fail, since ctest ignores the exit code then.
#define FLOTILLA_SKIP(reason)                                                 \
  do {                                                                        \
    std::cout << "FLOTILLA-TEST-SKIPPED: " << reason << std::endl;            \
    WARN("SKIPPED: " << reason);                                              \
    return;                                                                   \
  } while (false)
