// Cleanup guards report what failed: a `down` run from a destructor that failed leaves
// processes and ports behind for the next test, so it is never swallowed.
#pragma once

#include <catch2/catch.hpp>

#include <exception>
#include <iostream>
#include <string>

namespace flotilla::test {

/// Reports a failed cleanup step, `what` saying which and its output: a failed check of the
/// running test case, or, while a failed REQUIRE unwinds (an assertion then would be lost), a
/// line on stderr, which ctest shows with the failure.
inline void report_cleanup_failure(const std::string& what) {
  if (std::uncaught_exceptions() > 0) std::cerr << "cleanup failed: " << what << '\n';
  else FAIL_CHECK("cleanup failed: " << what);
}

}  // namespace flotilla::test
