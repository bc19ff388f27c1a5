// Plugin options checked against the schema a plugin declares in its manifest
// (docs/sdk-reference.md, "The manifest"), and the secrets among them.
#pragma once

#include "result.hpp"
#include "topology.hpp"

#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace flotilla {

using json = nlohmann::json;

/// Looks up an environment variable; std::nullopt when it is not set.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

/// The process environment (std::getenv).
[[nodiscard]] std::optional<std::string> process_env(const std::string& name);

/// The candidate closest to `word` by edit distance (a transposition counts as one edit), if
/// it is close enough to be a plausible typo; for "did you mean" hints.
[[nodiscard]] std::optional<std::string> closest_match(std::string_view word, const std::vector<std::string>& candidates);

/// Checks a plugin's schema itself (an object of {type, default, enum, required, secret,
/// description, minimum, maximum, pattern} entries). Fails with a message naming `what` and the bad entry: a plugin bug.
[[nodiscard]] Result<void> check_schema(const json& schema, const std::string& what);

/// Checks `options` (a plugin's table from the topology) against `schema` and returns them
/// with defaults filled in. Fails on unknown keys (with a "did you mean" hint), wrong types,
/// values outside `enum`, below `minimum` or above `maximum`, strings (or array entries) that
/// do not wholly match `pattern`, and missing required keys; every problem is one line
/// "file:line:column: ..." (from `positions`, key -> position, or `table_pos`; no prefix for
/// an empty SourcePos), sorted by line.
/// `what` names the owner in messages, e.g. `addon "haproxy" (plugin haproxy)`.
[[nodiscard]] Result<json> apply_schema(const json& schema, const json& options,
                                        const std::map<std::string, SourcePos>& positions,
                                        const SourcePos& table_pos, const std::string& what);

/// Replaces each value `env:NAME` or `file:/path` of a key marked `"secret": true` by the value
/// it refers to (support/secret.hpp). Fails, naming the key, the variable or file and its
/// position, when that is unset, unreadable or empty. Other values are returned unchanged.
[[nodiscard]] Result<json> resolve_secrets(const json& schema, const json& options,
                                           const std::map<std::string, SourcePos>& positions,
                                           const SourcePos& table_pos, const std::string& what,
                                           const EnvLookup& env = process_env);

/// The values of the secret keys of resolved options (non-empty strings; other types as their
/// JSON text), to register for redaction from logs (add_secret in plugin_host.hpp).
[[nodiscard]] std::vector<std::string> secret_values(const json& schema, const json& resolved_options);

/// `options` with the value of every secret key replaced by "[redacted]" (an `env:NAME` or
/// `file:/path` reference is kept, since it is not the secret): safe to store in state or a plan.
[[nodiscard]] json redact_options(const json& schema, const json& options);

}  // namespace flotilla
