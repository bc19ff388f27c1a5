// Expected failures are values: Result<T> holds a T or an Error that says what, where and what to do.
#pragma once

#include <expected>
#include <string>
#include <utility>

namespace flotilla {

/// A failure a user can act on. `message` is complete: what failed, where, and what to do.
struct Error {
  std::string message;
  bool retryable = false; // the engine may retry the step with backoff
  bool locked = false;    // another run holds the lock the operation needs (exit code 4)
};

template <class T>
using Result = std::expected<T, Error>;

/// Shorthand for returning a failure: `return fail("...")`.
inline std::unexpected<Error> fail(std::string message) { return std::unexpected<Error>(Error{std::move(message)}); }

}  // namespace flotilla
