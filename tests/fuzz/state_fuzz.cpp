// Fuzz target: a state file's bytes through the state reader (FileStateStore::load: the
// version line, the JSON, its shape) and into the typed records every command reads. A damaged
// file must come back as an Error naming it; a file the reader accepts must yield its records
// without an exception. A crash, a sanitizer report or an escaping exception is a finding.
#include "state_records.hpp"
#include "state_store.hpp"

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace {

// One scratch state directory for the whole run, in TMPDIR (see plan_fuzz.cpp for why it is not
// removed at exit; scripts/fuzz.sh removes it).
const std::filesystem::path& state_dir() {
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("flotilla-fuzz-state-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  flotilla::FileStateStore store(state_dir());
  {
    std::FILE* f = std::fopen((state_dir() / "state.json").c_str(), "wb");
    if (f == nullptr) std::abort();
    if (size > 0 && std::fwrite(data, 1, size, f) != size) std::abort();
    std::fclose(f);
  }
  const auto state = store.load();
  if (!state) {
    if (state.error().message.find("state.json") == std::string::npos) std::abort();  // must name the file
    return 0;
  }
  (void)flotilla::records_of<flotilla::NodeRecord>(*state, "nodes");
  (void)flotilla::records_of<flotilla::InstanceRecord>(*state, "instances");
  for (const auto& [name, addon] : flotilla::records_of<flotilla::AddonRecord>(*state, "addons"))
    for (const auto& [key, component] : addon.components) (void)component.status;
  return 0;
}
