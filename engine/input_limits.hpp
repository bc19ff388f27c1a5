// Bounds on what the engine reads from users: file sizes and nesting depth. Every file a user
// hands the engine (topology, saved plan) is read and checked here first, so a hostile file
// ends in a clear error naming it, never in a crash, a hang or memory without bound.
#pragma once

#include "result.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace flotilla {

/// The largest topology file the engine reads (docs/topology.md, "Limits").
inline constexpr std::size_t kMaxTopologyBytes = std::size_t{4} << 20;
/// The largest saved plan `up --plan` reads.
inline constexpr std::size_t kMaxPlanBytes = std::size_t{32} << 20;
/// The deepest nesting of tables, keys, arrays and inline tables in a topology, and of arrays
/// and objects in a saved plan. The parsers and the engine's conversions recurse per level.
inline constexpr int kMaxNesting = 64;

/// "4 MiB", "512 bytes": a limit for a message.
[[nodiscard]] std::string size_text(std::size_t bytes);

/// The whole of `file`, a regular file of at most `max_bytes`, read with that bound. `what`
/// names the file's role in messages ("topology file"). Fails naming the file and saying what
/// to do when it is missing, a directory, not a regular file (FIFO, device), too large or
/// unreadable.
[[nodiscard]] Result<std::string> read_input_file(const std::filesystem::path& file, std::size_t max_bytes,
                                                  std::string_view what);

/// A 1-based line and column (in bytes) of some text.
struct TextPos {
  std::uint32_t line = 1;
  std::uint32_t column = 1;
};

/// Where TOML text first nests deeper than `limit` levels, counting each part of a table
/// header or dotted key ([a.b.c], a.b.c = 1) and each array and inline table; nullopt when it
/// never does. One pass over the text, no recursion (strings and comments are skipped), so it
/// can run before a parser that recurses per level.
[[nodiscard]] std::optional<TextPos> toml_too_deep(std::string_view text, int limit);

/// Where JSON text first nests arrays and objects deeper than `limit`; nullopt when it never
/// does. One pass, no recursion.
[[nodiscard]] std::optional<TextPos> json_too_deep(std::string_view text, int limit);

/// A plan saved by `flotilla plan --out`, read with kMaxPlanBytes, its nesting bounded before
/// it is parsed and its shape checked (an object with an integer "state_serial" and an array
/// "actions"), so a damaged or foreign file is an error naming it, never an exception.
[[nodiscard]] Result<nlohmann::json> read_saved_plan(const std::string& file);

}  // namespace flotilla
