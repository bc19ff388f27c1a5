// Plugin directories an attacker or an interrupted copy could leave on the plugin path: a
// truncated library, an empty file, text, a directory, a symlink loop, a FIFO, foreign ELF
// files. Each candidate comes with the reason the engine must give for skipping it.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace flotilla::test {

/// One file (or directory, link, FIFO) on the plugin path that must be skipped.
struct HostileCandidate {
  std::string name;    // file name inside the directory, e.g. "driver_truncated.so"
  std::string reason;  // text the skip warning must contain, e.g. "truncated ELF (4096 of "
};

/// Fills `dir` (created if needed) with every kind of bad candidate, built from `real_plugin`
/// (a working plugin library) where a real ELF file is needed. Throws std::runtime_error if a
/// file cannot be made.
std::vector<HostileCandidate> make_hostile_plugin_dir(const std::filesystem::path& dir,
                                                      const std::filesystem::path& real_plugin);

}  // namespace flotilla::test
