// Fuzz target: a saved plan file (`flotilla plan --out`) through the stages `up --plan` reads
// it with: the bounded read (read_input_file), the nesting guard that runs before the
// recursive JSON parser (json_too_deep), and the parse. Checked besides: text the guard lets
// through really nests no deeper than the limit once parsed, so the parser's recursion stays
// bounded. A crash, a sanitizer report, an escaping exception or a guard that lets deep text
// through is a finding.
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

const std::filesystem::path& plan_file() {
  static const std::filesystem::path file = [] {
    auto f = std::filesystem::temp_directory_path() / ("flotilla-fuzz-plan-" + std::to_string(::getpid()) + ".json");
    std::atexit([] { std::error_code ec; std::filesystem::remove(plan_file(), ec); });
    return f;
  }();
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
  const auto text = flotilla::read_input_file(plan_file(), flotilla::kMaxPlanBytes, "plan file");
  if (!text) {
    if (text.error().message.find(plan_file().string()) == std::string::npos) std::abort();  // must name the file
    return 0;
  }
  if (flotilla::json_too_deep(*text, flotilla::kMaxNesting)) return 0;
  const auto doc = nlohmann::json::parse(*text, nullptr, false);
  if (!doc.is_discarded() && depth_of(doc) > flotilla::kMaxNesting) std::abort();  // the guard let deep text through
  return 0;
}
