// Fuzz target: a saved plan file (`flotilla plan --out`) through read_saved_plan, the reader
// `up --plan` uses: the bounded read, the nesting guard that runs before the recursive JSON
// parser, the parse and the shape check. Checked besides: every error names the file, and what
// it accepts has the shape `up --plan` relies on and nests no deeper than the limit, so the
// parser's recursion stays bounded. A crash, a sanitizer report, an escaping exception or a
// guard that lets deep text through is a finding.
#include "input_limits.hpp"

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace {

// One scratch file for the whole run, in TMPDIR: libFuzzer ends a run with _Exit, so no exit
// handler could remove it; scripts/fuzz.sh gives each target a TMPDIR it deletes afterwards.
const std::filesystem::path& plan_file() {
  static const std::filesystem::path file =
      std::filesystem::temp_directory_path() / ("flotilla-fuzz-plan-" + std::to_string(::getpid()) + ".json");
  return file;
}

// The deepest nesting of arrays and objects in `doc`, walked without recursion.
int depth_of(const nlohmann::json& doc) {
  int deepest = 0;
  std::vector<std::pair<const nlohmann::json*, int>> todo{{&doc, 0}};
  while (!todo.empty()) {
    auto [node, depth] = todo.back();
    todo.pop_back();
    if (!node->is_structured()) continue;
    deepest = std::max(deepest, depth + 1);
    for (const auto& child : *node) todo.emplace_back(&child, depth + 1);
  }
  return deepest;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  {
    std::FILE* f = std::fopen(plan_file().c_str(), "wb");
    if (f == nullptr) std::abort();
    if (size > 0 && std::fwrite(data, 1, size, f) != size) std::abort();
    std::fclose(f);
  }
  const auto plan = flotilla::read_saved_plan(plan_file().string());
  if (!plan) {
    if (plan.error().message.find(plan_file().string()) == std::string::npos) std::abort();  // must name the file
    return 0;
  }
  // What it accepts has the shape `up --plan` relies on, and nests no deeper than the limit.
  if (!plan->is_object() || !plan->contains("state_serial") || !plan->at("state_serial").is_number_integer() ||
      !plan->contains("actions") || !plan->at("actions").is_array())
    std::abort();
  if (depth_of(*plan) > flotilla::kMaxNesting) std::abort();  // the guard let deep text through
  return 0;
}
