// What runs on a local node, found the way the kernel sees it rather than through any
// plugin's files: a node is a directory, and the node's workloads are the daemons working in
// it. Destroying a machine ends what runs on it; destroying a local node does the same for
// these processes, as `fuser -k` does for a mount.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace flotilla::local {

/// A process found on a node: its pid, its start time (so a reused pid is never signalled) and
/// its command name.
struct NodeProcess {
  pid_t pid = 0;
  std::uint64_t start_time = 0;
  std::string name;
};

/// The daemons working in `workdir`: session leaders without a controlling terminal whose
/// current directory is `workdir` or below it (every runtime starts a workload that way; a
/// user's shell has a terminal and is left alone). This process is never among them.
[[nodiscard]] std::vector<NodeProcess> node_processes(const std::filesystem::path& workdir);

/// Ends `found`'s process groups: TERM, up to `grace` for them to exit, then KILL and up to 5 s
/// more. False when one survived. `cancelled` (may be empty) cuts the waits short.
[[nodiscard]] bool end_processes(const std::vector<NodeProcess>& found, std::chrono::milliseconds grace,
                                 const std::function<bool()>& cancelled = {});

}  // namespace flotilla::local
