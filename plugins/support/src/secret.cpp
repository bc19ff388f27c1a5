#include "flotilla/support/secret.hpp"

#include "flotilla/support/files.hpp"

#include <openssl/crypto.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <system_error>

namespace flotilla::support {

Secret& Secret::operator=(const Secret& other) {
  if (this != &other) {
    wipe();
    value_ = other.value_;
  }
  return *this;
}

Secret& Secret::operator=(Secret&& other) noexcept {
  if (this != &other) {
    wipe();
    value_ = std::move(other.value_);
    other.wipe();
  }
  return *this;
}

std::string Secret::redacted() const {
  return value_.empty() ? "(none)" : "(secret, " + std::to_string(value_.size()) + " characters)";
}

void Secret::wipe() noexcept {
  if (!value_.empty()) OPENSSL_cleanse(value_.data(), value_.size());
  value_.clear();
}

namespace {

constexpr std::string_view kEnv = "env:";
constexpr std::string_view kFile = "file:";

bool valid_env_name(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name.front()))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

std::expected<std::string, std::string> from_file(const std::string& path) {
  std::optional<std::string> text;
  try {
    text = read_file_if_exists(path);
  } catch (const std::system_error& e) {
    return std::unexpected("refers to the file " + path + ", which cannot be read (" + e.code().message() +
                           "); make it readable by the user running flotilla");
  }
  if (!text) return std::unexpected("refers to the file " + path + ", which does not exist; create it with the secret as its content");
  // Editors and `echo` end the file with a newline that is not part of the secret.
  if (text->ends_with('\n')) text->pop_back();
  if (text->ends_with('\r')) text->pop_back();
  if (text->empty()) return std::unexpected("refers to the file " + path + ", which is empty; write the secret into it");
  return *text;
}

}  // namespace

std::optional<std::string> process_env(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

bool is_secret_reference(std::string_view text) { return text.starts_with(kEnv) || text.starts_with(kFile); }

std::string secret_reference_problem(std::string_view reference) {
  if (reference.starts_with(kEnv)) {
    const std::string_view name = reference.substr(kEnv.size());
    if (!valid_env_name(name))
      return "refers to \"" + std::string(name) +
             "\", which is not an environment variable name; write \"env:NAME\" with NAME of letters, digits and '_'";
    return {};
  }
  if (reference.starts_with(kFile)) {
    const std::string_view path = reference.substr(kFile.size());
    if (path.empty() || path.front() != '/')
      return "refers to the file \"" + std::string(path) + "\", which is not an absolute path; write \"file:/path/to/secret\"";
    return {};
  }
  return "is not a reference; write \"env:NAME\" or \"file:/path/to/secret\"";
}

std::expected<std::string, std::string> resolve_secret_reference(std::string_view reference, const EnvLookup& env) {
  if (std::string problem = secret_reference_problem(reference); !problem.empty()) return std::unexpected(std::move(problem));
  if (reference.starts_with(kFile)) return from_file(std::string(reference.substr(kFile.size())));
  const std::string name(reference.substr(kEnv.size()));
  const auto found = env(name);
  if (!found) return std::unexpected("refers to the environment variable " + name + ", which is not set; export " + name + " before running flotilla");
  if (found->empty())
    return std::unexpected("refers to the environment variable " + name + ", which is empty; give " + name + " a value before running flotilla");
  return *found;
}

}  // namespace flotilla::support
