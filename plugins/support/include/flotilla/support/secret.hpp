// Secrets given by reference: "env:NAME" (an environment variable) or "file:/absolute/path"
// (a file's content, one trailing newline dropped). The only place such references are read;
// the engine resolves secret options with it and plugins resolve their own references with it
// at the moment they need the value. Messages name the variable or file, never the value.
#pragma once

#include <expected>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace flotilla::support {

/// Looks up an environment variable; std::nullopt when it is not set.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

/// The process environment (std::getenv).
[[nodiscard]] std::optional<std::string> process_env(const std::string& name);

/// True when `text` is written as a reference ("env:..." or "file:..."), well formed or not.
[[nodiscard]] bool is_secret_reference(std::string_view text);

/// What is wrong with the form of a reference, "" when nothing: an environment variable name
/// that is not one, a file path that is not absolute. The text reads after "... refers to".
[[nodiscard]] std::string secret_reference_problem(std::string_view reference);

/// The value a reference names. Fails with a message to put after the secret's name, e.g.
/// "refers to the environment variable X, which is not set; export X before running flotilla":
/// an ill-formed reference, an unset or empty variable, a missing, unreadable or empty file.
[[nodiscard]] std::expected<std::string, std::string> resolve_secret_reference(std::string_view reference,
                                                                                const EnvLookup& env = process_env);

}  // namespace flotilla::support
