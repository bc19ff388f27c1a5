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
#include <utility>

namespace flotilla::support {

/// A secret value held in memory (a key, a token). It has no stream operator, no conversion
/// to string and no formatter, so it cannot reach a log line, a message or a state file by
/// accident; the one way to the value is reveal(), at the point of use. The value is wiped
/// (OPENSSL_cleanse) when the object is destroyed or assigned over.
class Secret {
 public:
  Secret() = default;
  explicit Secret(std::string value) : value_(std::move(value)) {}
  Secret(const Secret& other) : value_(other.value_) {}
  Secret(Secret&& other) noexcept : value_(std::move(other.value_)) { other.wipe(); }
  Secret& operator=(const Secret& other);
  Secret& operator=(Secret&& other) noexcept;
  ~Secret() { wipe(); }

  /// The value itself, for the code that uses it (a signature, a request header).
  [[nodiscard]] const std::string& reveal() const { return value_; }
  [[nodiscard]] bool empty() const { return value_.empty(); }
  /// What may be shown instead of the value: "(secret, N characters)" or "(none)".
  [[nodiscard]] std::string redacted() const;
  friend bool operator==(const Secret& a, const Secret& b) { return a.value_ == b.value_; }

 private:
  void wipe() noexcept;
  std::string value_;
};

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
