#include "addon_syslog/query.hpp"

#include "addon_syslog/log_reader.hpp"
#include "addon_syslog/syslog_addon.hpp"
#include "flotilla/support/wait.hpp"

#include <filesystem>

namespace flotilla::syslog_addon {
namespace {

namespace fs = std::filesystem;
using sdk::json;
using ojson = nlohmann::ordered_json;

constexpr auto kFollowPoll = std::chrono::milliseconds(250);
constexpr std::size_t kLinesPerPart = 1000;

void emit_lines(const sdk::Context& ctx, const std::vector<ReadLine>& lines) {
  for (std::size_t at = 0; at < lines.size(); at += kLinesPerPart) {
    ojson part = {{"lines", ojson::array()}};
    for (std::size_t i = at; i < lines.size() && i < at + kLinesPerPart; ++i) part["lines"].push_back(lines[i].record);
    ctx.emit_ordered(part);
  }
}

ReadFilter filter_of(const json& args) {
  ReadFilter f;
  f.service = sdk::option<std::string>(args, "service", "");
  f.node = sdk::option<std::string>(args, "node", "");
  f.grep = sdk::option<std::string>(args, "grep", "");
  if (const long long since = sdk::option<long long>(args, "since_s", -1); since >= 0) f.since = std::chrono::seconds(since);
  return f;
}

}  // namespace

json answer_logs(const sdk::Context& ctx, const json& request) {
  const json addon = request.value("addon", json::object());
  const json args = request.value("args", json::object());
  const std::string dir = sdk::option<std::string>(addon, "dir", "");
  const fs::path store = fs::path(dir) / "store";
  std::error_code ec;
  if (dir.empty() || !fs::is_directory(store, ec))
    throw sdk::NotFound("no log store at " + (dir.empty() ? std::string("(none)") : store.string()) +
                        "; add the syslog addon to the topology and run `flotilla up FILE`, then try again");
  const ReadFilter filter = filter_of(args);
  const bool follow = sdk::option<bool>(args, "follow", false);
  StoreReader reader(store, filter);
  const auto warn = [&](const std::string& text) { ctx.emit({{"warning", text}}); };
  bool missing = false;
  emit_lines(ctx, reader.poll(warn, missing));
  if (missing && !follow) {
    std::string known;
    bool unused = false;
    for (const auto& d : StoreReader(store, {}).service_dirs(unused)) known += (known.empty() ? "" : ", ") + d.filename().string();
    warn("no logs stored for service `" + filter.service + "` in " + store.string() +
         (known.empty() ? std::string(" (nothing stored yet)") : " (services with logs: " + known + ")"));
    return json::object();
  }
  while (follow && support::sleep_for(kFollowPoll, [&ctx] { return ctx.cancelled(); })) emit_lines(ctx, reader.poll(warn, missing));
  return json::object();
}

json SyslogAddon::answer(sdk::Context& ctx, const json& req) {
  const std::string question = sdk::option<std::string>(req, "question", "");
  if (question == "logs") return answer_logs(ctx, req);
  throw sdk::NotSupported("addon syslog answers `logs`, not `" + question + "`");
}

}  // namespace flotilla::syslog_addon
