// How the collector tells a resend from a new line (RELP delivers at least once).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>

namespace flotilla::syslog_addon {

/// Tells resends from new lines, per source file (node + path), in any arrival order.
///
/// Each stored line covers the bytes [offset, offset + length + 1) of its file (the text and
/// its newline). A source remembers the byte ranges it has stored, merged as they meet, so a
/// steady stream costs one range whatever its length. A line that starts inside a stored range
/// is a resend: lines of one file never overlap. Ranges are exact, so lines may arrive in any
/// order (a shipper that restarts reads its files again from the start).
///
/// A file can be recreated at the same path (a workload removed with its logs and started
/// again); its lines then start at offsets already stored. The source remembers the text
/// hashes of its last `window` lines and of its first line: a known offset with other text
/// starts a new generation, which forgets the old ranges. Generations order a source's lines
/// for the reader.
class Dedupe {
 public:
  explicit Dedupe(std::size_t window = 4096) : window_(window) {}

  /// The line's generation if it is new (and now remembered), nullopt if it is a resend.
  std::optional<std::uint32_t> accept(const std::string& source, std::uint64_t offset, std::uint64_t length, std::uint64_t hash);

  /// Replays a line read back from the store (it was new when it came): lines of the newest
  /// generation are remembered, older generations only move the generation on.
  void replay(const std::string& source, std::uint64_t offset, std::uint64_t length, std::uint64_t hash, std::uint32_t gen);

  [[nodiscard]] std::size_t sources() const { return sources_.size(); }
  /// Byte ranges remembered for a source (for tests and diagnostics).
  [[nodiscard]] std::size_t ranges(const std::string& source) const;

 private:
  struct Source {
    std::uint32_t gen = 0;
    std::map<std::uint64_t, std::uint64_t> ranges;  // start -> end (exclusive), disjoint
    std::deque<std::uint64_t> recent;                // offsets of the last lines, oldest first
    std::unordered_map<std::uint64_t, std::uint64_t> recent_hash;
    std::uint64_t first_hash = 0;
    bool has_first = false;
  };

  static bool covered(const Source& s, std::uint64_t offset);
  static void start_generation(Source& s, std::uint32_t gen);
  void remember(Source& s, std::uint64_t offset, std::uint64_t length, std::uint64_t hash);

  std::size_t window_;
  std::unordered_map<std::string, Source> sources_;
};

}  // namespace flotilla::syslog_addon
