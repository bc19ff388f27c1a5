#include "addon_syslog/query.hpp"

#include "addon_syslog/log_reader.hpp"
#include "addon_syslog/syslog_addon.hpp"
#include "flotilla/support/wait.hpp"

#include <filesystem>
#include <functional>
#include <iterator>
#include <vector>

namespace flotilla::syslog_addon {
namespace {

namespace fs = std::filesystem;
using sdk::json;
using ojson = nlohmann::ordered_json;

constexpr auto kFollowPoll = std::chrono::milliseconds(250);
constexpr std::size_t kLinesPerPart = 1000;
constexpr int kPullEvery = 4;  // follow polls per read of the Docker nodes' logs (one a second)

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

/// Reads the collector's store and the Docker nodes' store together, merged by time.
class StoresReader {
 public:
  StoresReader(const std::vector<fs::path>& stores, const ReadFilter& filter) {
    for (const auto& s : stores) readers_.emplace_back(s, filter);
  }
  std::vector<ReadLine> poll(const std::function<void(const std::string&)>& warn, bool& missing) {
    std::vector<ReadLine> lines;
    missing = true;
    for (auto& r : readers_) {
      bool m = false;
      auto got = r.poll(warn, m);
      missing = missing && m;
      lines.insert(lines.end(), std::make_move_iterator(got.begin()), std::make_move_iterator(got.end()));
    }
    return readers_.size() > 1 ? merge_by_time(std::move(lines)) : lines;
  }

 private:
  std::vector<StoreReader> readers_;
};

/// Pulls the Docker nodes' new container logs first, so the answer includes them; a node that
/// cannot be read is a warning in the answer.
void pull(const sdk::Context& ctx, const json& request) {
  const Options o = Options::from(request.value("addon", json::object()).value("config", json::object()));
  if (!o.errors.empty()) return;
  try {
    for (const auto& problem : pull_docker_nodes(request, o).problems) ctx.emit({{"warning", "container logs not read: " + problem}});
  } catch (const std::exception& e) {
    ctx.emit({{"warning", std::string("container logs not read: ") + e.what()}});
  }
}

}  // namespace

json answer_logs(const sdk::Context& ctx, const json& request) {
  const json addon = request.value("addon", json::object());
  const json args = request.value("args", json::object());
  const std::string dir = sdk::option<std::string>(addon, "dir", "");
  pull(ctx, request);
  std::vector<fs::path> stores;
  std::error_code ec;
  for (const fs::path& s : {fs::path(dir) / "store", fs::path(dir) / "docker" / "store"})
    if (!dir.empty() && fs::is_directory(s, ec)) stores.push_back(s);
  const fs::path store = fs::path(dir) / "store";
  if (stores.empty())
    throw sdk::NotFound("no log store at " + (dir.empty() ? std::string("(none)") : store.string()) +
                        "; add the syslog addon to the topology and run `flotilla up FILE`, then try again");
  const ReadFilter filter = filter_of(args);
  const bool follow = sdk::option<bool>(args, "follow", false);
  StoresReader reader(stores, filter);
  const auto warn = [&](const std::string& text) { ctx.emit({{"warning", text}}); };
  bool missing = false;
  emit_lines(ctx, reader.poll(warn, missing));
  if (missing && !follow) {
    std::string known;
    bool unused = false;
    for (const auto& s : stores)
      for (const auto& d : StoreReader(s, {}).service_dirs(unused)) known += (known.empty() ? "" : ", ") + d.filename().string();
    warn("no logs stored for service `" + filter.service + "` in " + store.string() +
         (known.empty() ? std::string(" (nothing stored yet)") : " (services with logs: " + known + ")"));
    return json::object();
  }
  for (int polls = 1; follow && support::sleep_for(kFollowPoll, [&ctx] { return ctx.cancelled(); }); ++polls) {
    if (polls % kPullEvery == 0) pull(ctx, request);
    emit_lines(ctx, reader.poll(warn, missing));
  }
  return json::object();
}

json SyslogAddon::answer(sdk::Context& ctx, const json& req) {
  const std::string question = sdk::option<std::string>(req, "question", "");
  if (question == "logs") return answer_logs(ctx, req);
  throw sdk::NotSupported("addon syslog answers `logs`, not `" + question + "`");
}

}  // namespace flotilla::syslog_addon
