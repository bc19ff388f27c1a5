#include "cli_state.hpp"

#include "cli.hpp"
#include "clock.hpp"
#include "engine.hpp"
#include "state_records.hpp"
#include "state_store.hpp"
#include "util.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>

namespace flotilla {
namespace fs = std::filesystem;
namespace {

int report(std::ostream& err, const std::string& message, int code) {
  err << "error: " << redact(message) << "\n";
  return code;
}

// Up to `max` names, then "and N more".
std::string some_names(const std::vector<std::string>& names, std::size_t max = 8) {
  if (names.size() <= max) return join(names, ", ");
  std::vector<std::string> first(names.begin(), names.begin() + static_cast<std::ptrdiff_t>(max));
  return join(first, ", ") + " and " + std::to_string(names.size() - max) + " more";
}

std::vector<std::string> keys_of(const json& state, const char* section) {
  std::vector<std::string> out;
  const auto it = state.find(section);
  if (it != state.end() && it->is_object())
    for (const auto& [k, v] : it->items()) out.push_back(k);
  return out;
}

// "3 nodes (a, b, c), 5 instances (...), 1 addon (x)": what a state records, by name.
std::string recorded_names(const json& state) {
  std::vector<std::string> parts;
  for (const auto& [section, one] : {std::pair{"nodes", "node"}, std::pair{"instances", "instance"}, std::pair{"addons", "addon"}}) {
    const auto names = keys_of(state, section);
    std::string part = std::to_string(names.size()) + " " + (names.size() == 1 ? one : section);
    if (!names.empty()) part += " (" + some_names(names) + ")";
    parts.push_back(part);
  }
  return join(parts, ", ");
}

/// Where the state lives: --state-dir, else beside the topology file (read for its cluster
/// name only: no plugin is loaded, so a broken plugin never blocks a recovery).
Result<fs::path> state_dir_of(const StateCommand& c) {
  if (c.topology_file.empty()) {
    if (c.state_dir.empty()) return fail("name the topology file or the state directory: flotilla state " + c.action + " FILE");
    return fs::absolute(c.state_dir);
  }
  auto topo = load_topology(c.topology_file);
  if (!topo) return std::unexpected(topo.error());
  return Engine::state_dir_for(*topo, c.state_dir);
}

std::string restore_hint(const StateCommand& c) {
  if (c.topology_file.empty()) return "flotilla state restore-backup --state-dir " + c.state_dir.string();
  return restore_command(c.topology_file, c.state_dir);
}

std::string status_of(const json& status) { return status.is_string() ? status.get<std::string>() : "?"; }

void print_records(const json& state, std::ostream& out) {
  char line[512];
  const auto nodes = records_of<NodeRecord>(state, "nodes");
  out << "\nNODES (" << nodes.size() << ")\n";
  for (const auto& [name, n] : nodes) {
    std::snprintf(line, sizeof line, "  %-24s %-11s %-16s %s\n", name.c_str(), status_of(json(n.status)).c_str(), n.address.c_str(),
                  n.runtime.c_str());
    out << line;
  }
  const auto instances = records_of<InstanceRecord>(state, "instances");
  out << "\nINSTANCES (" << instances.size() << ")\n";
  for (const auto& [id, i] : instances) {
    const int pid = i.record.is_object() ? i.record.value("pid", 0) : 0;
    std::snprintf(line, sizeof line, "  %-24s %-11s %-16s port %-6d pid %d\n", id.c_str(), status_of(json(i.status)).c_str(), i.node.c_str(),
                  i.port, pid);
    out << line;
  }
  const auto addons = records_of<AddonRecord>(state, "addons");
  out << "\nADDONS (" << addons.size() << ")\n";
  for (const auto& [name, a] : addons) {
    out << "  " << name << " (" << a.plugin << "): " << status_of(json(a.status)) << "\n";
    for (const auto& [key, comp] : a.components) {
      const int pid = comp.record.is_object() ? comp.record.value("pid", 0) : 0;
      std::snprintf(line, sizeof line, "    %-22s %-11s pid %d\n", key.c_str(), status_of(json(comp.status)).c_str(), pid);
      out << line;
    }
  }
}

void print_summary(const fs::path& file, const json& state, std::ostream& out) {
  out << "State of cluster \"" << state.value("cluster", std::string("?")) << "\" in " << file.string() << "\n";
  out << "  serial " << state.value("serial", 0LL) << ", format " << state.value("format_version", kStateFormatVersion)
      << ", updated " << state.value("updated", std::string("?")) << ", topology " << state.value("topology", std::string("?")) << "\n";
  print_records(state, out);
  const json overrides = state.value("overrides", json::object()).value("replicas", json::object());
  if (!overrides.empty()) {
    out << "\nOVERRIDES (flotilla scale)\n";
    for (const auto& [service, o] : overrides.items())
      out << "  " << service << ": " << o.value("replicas", 0) << " replicas while the file says " << o.value("file_replicas", 0) << "\n";
  }
}

int show(const StateCommand& c, const fs::path& dir, std::ostream& out, std::ostream& err) {
  FileStateStore store(dir, restore_hint(c));
  const fs::path file = c.backup ? store.backup() : store.file();
  Result<std::optional<json>> state = std::optional<json>{};
  if (c.backup) {
    state = read_state_file(file, "fix it by hand");
  } else {
    std::error_code ec;
    const bool exists = fs::exists(fs::symlink_status(file, ec));
    auto loaded = store.load();  // says so when only the backup is left
    if (!loaded) return report(err, loaded.error().message, kExitFailed);
    if (exists) state = std::optional<json>(std::move(*loaded));
  }
  if (!state) return report(err, state.error().message, kExitFailed);
  if (!*state) {
    if (c.json) out << "{}\n";
    else out << "No state recorded: " << file.string() << " does not exist.\n";
    return kExitOk;
  }
  if (c.json) out << (*state)->dump(2) << "\n";
  else print_summary(file, **state, out);
  return kExitOk;
}

// Keeps the file a restore replaces as `state.json.replaced-TIME`: it may record workloads the
// backup does not. Empty when there is nothing to keep.
Result<fs::path> keep_replaced(const fs::path& file) {
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(file, ec))) return fs::path{};
  fs::path kept = file;
  kept += ".replaced-" + utc_now("%Y%m%dT%H%M%SZ");
  if (::link(file.c_str(), kept.c_str()) == 0) return kept;
  // Not a regular file (a directory) or no hard links here: the user decides where it goes.
  return fail("cannot keep " + file.string() + " as " + kept.string() + " before restoring: " + std::strerror(errno) +
              "; move " + file.string() + " aside yourself, then run the restore again");
}

int restore(const StateCommand& c, const fs::path& dir, std::ostream& out, std::ostream& err) {
  const FileStateStore store(dir, restore_hint(c));
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(store.backup(), ec)))
    return report(err, "there is no backup to restore: " + store.backup().string() + " does not exist", kExitFailed);
  const std::string who = "flotilla state restore-backup" + (c.topology_file.empty() ? "" : " " + c.topology_file.string());
  auto lock = StateLock::acquire(dir, who, c.topology_file.empty() ? "flotilla unlock" : "flotilla unlock " + c.topology_file.string());
  if (!lock) return report(err, lock.error().message, lock.error().locked ? kExitLocked : kExitFailed);
  if (!lock->took_over().empty()) err << "note: " << lock->took_over() << "\n";

  auto backup = read_state_file(store.backup(), "it cannot be restored; fix it by hand");
  if (!backup) return report(err, backup.error().message, kExitFailed);
  if (!*backup) return report(err, "there is no backup to restore: " + store.backup().string() + " does not exist", kExitFailed);
  auto current = read_state_file(store.file(), "");
  if (current && *current && !c.force)
    return report(err, store.file().string() + " is valid (" + state_summary(**current) + "); restoring the backup (" +
                           state_summary(**backup) + ") would replace it with the state before the last change. " +
                           "Add --force to do that anyway; the replaced file is kept beside it",
                  kExitFailed);

  std::ifstream in(store.backup(), std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (!in && !in.eof()) return report(err, "cannot read " + store.backup().string(), kExitFailed);
  auto kept = keep_replaced(store.file());
  if (!kept) return report(err, kept.error().message, kExitFailed);
  if (auto ok = write_file_atomic(store.file(), bytes.str(), 0600); !ok) return report(err, ok.error().message, kExitFailed);

  out << "Restored " << store.file().string() << " from " << store.backup().string() << ": " << state_summary(**backup) << ".\n";
  out << "  recorded: " << recorded_names(**backup) << "\n";
  if (!kept->empty())
    out << "The file it replaced" << (current ? "" : " (damaged)") << " is kept as " << kept->string()
        << ": it may record workloads the backup does not; remove it once checked.\n";
  std::string file = c.topology_file.empty() ? "FILE" : c.topology_file.string();
  if (!c.state_dir.empty()) file += " --state-dir " + c.state_dir.string();
  out << "The backup is the state before the last change: `flotilla plan " << file << "` shows what `flotilla up " << file
      << "` will do to bring the cluster in line.\n";
  return kExitOk;
}

}  // namespace

int run_state_command(const StateCommand& c, std::ostream& out, std::ostream& err) {
  if (c.action != "show" && c.action != "restore-backup")
    return report(err, "unknown state action \"" + c.action + "\"; use `flotilla state show FILE` or `flotilla state restore-backup FILE`",
                  kExitUsage);
  if (c.action == "show" && c.force) return report(err, "--force is for restore-backup, not show", kExitUsage);
  if (c.action == "restore-backup" && (c.json || c.backup))
    return report(err, "--output json and --backup are for show, not restore-backup", kExitUsage);
  auto dir = state_dir_of(c);
  if (!dir) return report(err, dir.error().message, c.topology_file.empty() ? kExitUsage : kExitInvalid);
  return c.action == "show" ? show(c, *dir, out, err) : restore(c, *dir, out, err);
}

std::string unreadable_state_note(const fs::path& state_dir, const std::string& restore, const std::string& down) {
  std::string found;
  for (const char* name : {"state.json", "state.json.bak"}) {
    // Read as far as it goes: the keys of the sections, whatever their records hold.
    const fs::path file = state_dir / name;
    std::error_code ec;
    const auto size = fs::file_size(file, ec);
    if (ec || size > kMaxStateFileBytes || !fs::is_regular_file(file, ec)) continue;
    std::ifstream in(file, std::ios::binary);
    std::string header;
    std::getline(in, header);
    const json state = json::parse(in, nullptr, false);
    if (state.is_discarded() || !state.is_object()) continue;
    found = file.string() + " records " + recorded_names(state) + ", which may still be running";
    break;
  }
  std::string note = "down stopped nothing: it cannot know what the cluster runs without its state";
  note += found.empty() ? " (and no readable record of it is left); whatever the cluster ran is still running" : "; " + found;
  return note + ". Restore the state (`" + restore + "`) or fix the file, then run `" + down + "` again.";
}

}  // namespace flotilla
