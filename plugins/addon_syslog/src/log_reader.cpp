#include "addon_syslog/log_reader.hpp"

#include "addon_syslog/store_files.hpp"
#include "flotilla/support/encoding.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <fstream>
#include <queue>
#include <tuple>

namespace flotilla::syslog_addon {
namespace {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

std::string utc_ts(std::chrono::system_clock::time_point t) {
  const std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count() % 1000000;
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                tm.tm_min, tm.tm_sec, static_cast<long>(micros));
  return buf;
}

/// Service directory names to try for what the user typed: as typed, then as a DNS label.
std::vector<std::string> service_dir_candidates(const std::string& service) {
  std::vector<std::string> out{service};
  std::string label;
  for (char c : service) {
    const char l = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    label += (l == '/' || l == '_' || l == '.') ? '-' : l;
  }
  std::string slash_only = service;
  std::replace(slash_only.begin(), slash_only.end(), '/', '-');
  for (const auto& c : {slash_only, label})
    if (std::find(out.begin(), out.end(), c) == out.end()) out.push_back(c);
  return out;
}

/// The exact bytes of a stored line: `msg_b64` when the text was not valid UTF-8, else `msg`.
std::string line_text(const ojson& j) {
  if (auto b = j.find("msg_b64"); b != j.end() && b->is_string())
    if (auto raw = support::base64_decode(b->get<std::string>())) return std::move(*raw);
  auto m = j.find("msg");
  return m != j.end() && m->is_string() ? m->get<std::string>() : std::string();
}

}  // namespace

StoreReader::StoreReader(std::filesystem::path store_dir, ReadFilter filter, Lister list)
    : store_(std::move(store_dir)), filter_(std::move(filter)), list_(std::move(list)) {
  if (filter_.since) cutoff_ = utc_ts(std::chrono::system_clock::now() - *filter_.since);
}

std::vector<fs::path> StoreReader::service_dirs(bool& missing_service) const {
  std::vector<fs::path> dirs;
  missing_service = false;
  std::error_code ec;
  if (!filter_.service.empty()) {
    for (const auto& c : service_dir_candidates(filter_.service))
      if (c.find("..") == std::string::npos && fs::is_directory(store_ / c, ec)) return {store_ / c};
    missing_service = true;
    return dirs;
  }
  for (fs::directory_iterator it(store_, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_directory(ec)) dirs.push_back(it->path());
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

std::vector<ReadLine> StoreReader::poll(const std::function<void(const std::string&)>& warn, bool& missing_service) {
  std::vector<ReadLine> lines;
  const auto read_all = [&](const std::vector<StoreFile>& files) {
    for (const StoreFile& f : files)
      if (cutoff_.empty() || f.day >= cutoff_.substr(0, 10)) read_file(f.path, lines, warn);
  };
  const auto paths = [](const std::vector<StoreFile>& files) {
    std::vector<fs::path> out;
    for (const auto& f : files) out.push_back(f.path);
    return out;
  };
  for (const fs::path& dir : service_dirs(missing_service)) {
    // A rotation between listing the files and reading them makes the current file's name
    // a new, empty file: its first lines would be read now and the last lines of the rotated
    // one (under a name not listed yet) only at the next poll, out of order. So the files are
    // listed again after reading, and while the listing changed, the new one is read too
    // (offsets make a second read of a file cost nothing); this poll's lines are then merged.
    std::vector<StoreFile> listed = list_(dir);
    read_all(listed);
    for (int pass = 0; pass < 4; ++pass) {
      std::vector<StoreFile> again = list_(dir);
      if (paths(again) == paths(listed)) break;
      read_all(again);
      listed = std::move(again);
    }
  }
  return merge_by_time(std::move(lines));
}

void StoreReader::read_file(const fs::path& path, std::vector<ReadLine>& lines,
                            const std::function<void(const std::string&)>& warn) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return;  // rotated or expired between listing and reading
  const auto id = std::make_pair(static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino));
  std::uint64_t& pos = offsets_[id];
  if (static_cast<std::uint64_t>(st.st_size) < pos) pos = 0;
  if (static_cast<std::uint64_t>(st.st_size) == pos) return;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    warn("cannot read " + path.string() + "; skipping it");
    return;
  }
  in.seekg(static_cast<std::streamoff>(pos));
  std::string chunk(static_cast<std::size_t>(st.st_size) - pos, '\0');
  in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
  chunk.resize(static_cast<std::size_t>(in.gcount()));
  const auto last_nl = chunk.rfind('\n');
  if (last_nl == std::string::npos) return;  // a line still being written
  pos += last_nl + 1;
  std::size_t start = 0;
  while (start <= last_nl) {
    const std::size_t nl = chunk.find('\n', start);
    parse_line(std::string_view(chunk).substr(start, nl - start), path, lines, warn);
    start = nl + 1;
  }
}

void StoreReader::parse_line(std::string_view text, const fs::path& path, std::vector<ReadLine>& lines,
                             const std::function<void(const std::string&)>& warn) {
  if (text.empty()) return;
  ojson j = ojson::parse(text, nullptr, false);
  if (!j.is_object()) {
    if (!warned_bad_) warn("skipping a line that is not JSON in " + path.string());
    warned_bad_ = true;
    return;
  }
  auto str = [&](const char* k) { return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : std::string(); };
  ReadLine l;
  l.ts = str("ts");
  l.source = str("node") + ":" + str("file");
  if (j.contains("gen") && j["gen"].is_number_unsigned()) l.gen = j["gen"].get<std::uint32_t>();
  if (j.contains("offset") && j["offset"].is_number_unsigned()) l.offset = j["offset"].get<std::uint64_t>();
  if (!cutoff_.empty() && l.ts < cutoff_) return;
  if (!filter_.node.empty() && str("node") != filter_.node) return;
  if (!filter_.grep.empty() && line_text(j).find(filter_.grep) == std::string::npos) return;
  const std::string key = str("key");
  if (!key.empty() && !seen_.insert(key + "#" + str("hash")).second) return;  // stored twice
  j.erase("hash");
  j.erase("len");
  l.record = std::move(j);
  lines.push_back(std::move(l));
}

std::vector<ReadLine> merge_by_time(std::vector<ReadLine> lines) {
  std::map<std::string, std::vector<std::size_t>> by_source;
  for (std::size_t i = 0; i < lines.size(); ++i) by_source[lines[i].source].push_back(i);
  for (auto& [source, idx] : by_source)
    if (!source.empty() && source != ":")
      std::stable_sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) {
        return std::tie(lines[a].gen, lines[a].offset) < std::tie(lines[b].gen, lines[b].offset);
      });
  using Head = std::pair<std::pair<std::string, std::string>, std::pair<const std::vector<std::size_t>*, std::size_t>>;
  auto later = [](const Head& a, const Head& b) { return a.first > b.first; };
  std::priority_queue<Head, std::vector<Head>, decltype(later)> heads(later);
  for (const auto& [source, idx] : by_source) heads.push({{lines[idx[0]].ts, source}, {&idx, 0}});
  std::vector<ReadLine> out;
  out.reserve(lines.size());
  while (!heads.empty()) {
    auto [key, pos] = heads.top();
    heads.pop();
    const auto& [idx, i] = pos;
    out.push_back(std::move(lines[(*idx)[i]]));
    if (i + 1 < idx->size()) heads.push({{lines[(*idx)[i + 1]].ts, key.second}, {idx, i + 1}});
  }
  return out;
}

}  // namespace flotilla::syslog_addon
