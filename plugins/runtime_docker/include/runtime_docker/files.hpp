// Files placed for workloads on a Docker node, through the Engine API only (so a remote host
// works as well as a local one): each owner directory (the first part of a put_file path, the
// addon's name when the engine places it) is a named volume on the node, filled by archive
// uploads into a carrier container that is created and never started. Every container of
// that addon mounts the volume read-only at /flotilla/files/<addon>, so the path put_file
// returns is where its workloads find the file.
#pragma once

#include <flotilla/plugin.hpp>
#include <flotilla/support/docker_client.hpp>

#include <string>

namespace flotilla::docker_runtime {

/// Where placed files appear inside containers.
inline constexpr const char* kFilesRoot = "/flotilla/files";
/// The image carrier containers are made from when the node's runtime_config names none
/// (`files_image`); removing a file runs its `rm`.
inline constexpr const char* kDefaultFilesImage = "busybox:latest";
/// Label on volumes and carriers naming the owner directory they hold.
inline constexpr const char* kFilesLabel = "io.flotilla.files";

/// `s` with every character Docker does not allow in a volume or container name made '-'.
[[nodiscard]] std::string docker_safe(std::string s);

/// The volume holding owner directory `owner_dir` of `cluster`'s files on a node.
[[nodiscard]] std::string files_volume(const std::string& cluster, const std::string& owner_dir);

/// The read-only mount of its addon's files volume for a workload owned by "addon:NAME", or
/// null for any other owner. In Engine API form ({Type, Source, Target, ReadOnly}).
[[nodiscard]] sdk::json owner_files_mount(const std::string& cluster, const std::string& owner);

/// put_file of the runtime ABI: `{node, path, content, mode}` or `{node, path, remove: true}`
/// -> `{path, changed}`. Throws sdk::Invalid for a bad path or mode, sdk::Error (or
/// sdk::Retryable when the daemon is unreachable) naming the node otherwise.
[[nodiscard]] sdk::json place_file(sdk::Context& ctx, const sdk::json& request, const std::string& cluster);

}  // namespace flotilla::docker_runtime
