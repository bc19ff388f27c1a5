// The reader behind `flotilla logs`. The store's format is written by flotilla-logstore
// (plugins/addon_syslog/log_store.hpp) and documented in docs/addons/syslog.md.
#include "logs.hpp"

#include <nlohmann/json.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstdint>
#include <ctime>
#include <fstream>
#include <map>
#include <queue>
#include <set>
#include <system_error>
#include <tuple>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

namespace flotilla {

namespace {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

constexpr auto kFollowPoll = std::chrono::milliseconds(250);

/// One stored line, as the reader needs it.
struct LogLine {
  std::string ts;  // "2026-11-25T14:38:51.743351Z"
  std::string node;
  std::string service;
  std::string instance;
  std::string stream;
  std::string source;  // node + file: the unit whose order is kept
  std::uint32_t gen = 0;  // generation of the file at that path (a recreated file starts a new one)
  std::uint64_t offset = 0;
  std::string text;    // the exact bytes of the line
  ojson record;        // for --output json
};

bool valid_utf8_at(std::string_view s, std::size_t i, std::size_t& len, std::uint32_t& cp) {
  const auto c = static_cast<unsigned char>(s[i]);
  if ((c & 0xE0) == 0xC0) len = 2, cp = c & 0x1F;
  else if ((c & 0xF0) == 0xE0) len = 3, cp = c & 0x0F;
  else if ((c & 0xF8) == 0xF0) len = 4, cp = c & 0x07;
  else return false;
  if (i + len > s.size()) return false;
  for (std::size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return false;
    cp = (cp << 6) | (b & 0x3F);
  }
  return !((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
           (cp >= 0xD800 && cp <= 0xDFFF));
}

void append_hex(std::string& out, unsigned char b) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += "\\x";
  out += kHex[b >> 4];
  out += kHex[b & 15];
}

std::optional<std::string> decode_base64(std::string_view in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    const int v = value(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  return out;
}

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

/// A store file name "<day>[.<part>].jsonl": its sort key, or nullopt for other files.
std::optional<std::pair<std::string, long>> store_file_order(const std::string& name) {
  if (name.size() < 16 || name.compare(name.size() - 6, 6, ".jsonl") != 0) return std::nullopt;
  const std::string day = name.substr(0, 10);
  for (std::size_t i = 0; i < 10; ++i) {
    const bool digit = std::isdigit(static_cast<unsigned char>(day[i])) != 0;
    if ((i == 4 || i == 7) ? day[i] != '-' : !digit) return std::nullopt;
  }
  const std::string middle = name.substr(10, name.size() - 16);
  if (middle.empty()) return std::make_pair(day, LONG_MAX);  // the current file comes after its parts
  if (middle.size() < 2 || middle[0] != '.' ||
      !std::all_of(middle.begin() + 1, middle.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }))
    return std::nullopt;
  return std::make_pair(day, std::stol(middle.substr(1)));
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

/// Reads the store incrementally: each file from where the last poll stopped (files are
/// tracked by inode, so a rotation's rename does not make them read twice).
class StoreReader {
 public:
  StoreReader(const LogsOptions& opts) : opts_(opts) {
    if (opts.since) cutoff_ = utc_ts(std::chrono::system_clock::now() - *opts.since);
  }

  /// Service directories to read now.
  std::vector<fs::path> service_dirs(bool& missing_service) const {
    std::vector<fs::path> dirs;
    missing_service = false;
    std::error_code ec;
    if (!opts_.service.empty()) {
      for (const auto& c : service_dir_candidates(opts_.service))
        if (fs::is_directory(opts_.store_dir / c, ec)) return {opts_.store_dir / c};
      missing_service = true;
      return dirs;
    }
    for (fs::directory_iterator it(opts_.store_dir, ec), end; !ec && it != end; it.increment(ec))
      if (it->is_directory(ec)) dirs.push_back(it->path());
    std::sort(dirs.begin(), dirs.end());
    return dirs;
  }

  /// New lines since the last poll that pass the filters, in store order.
  std::vector<LogLine> poll(std::ostream& err, bool& missing_service) {
    std::vector<LogLine> lines;
    for (const fs::path& dir : service_dirs(missing_service)) {
      std::vector<std::pair<std::pair<std::string, long>, fs::path>> files;
      std::error_code ec;
      for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
        if (auto order = store_file_order(it->path().filename().string())) files.emplace_back(*order, it->path());
      std::sort(files.begin(), files.end());
      for (const auto& [order, path] : files) {
        if (!cutoff_.empty() && order.first < cutoff_.substr(0, 10)) continue;
        read_file(path, dir.filename().string(), lines, err);
      }
    }
    return lines;
  }

 private:
  void read_file(const fs::path& path, const std::string& dir_name, std::vector<LogLine>& lines, std::ostream& err) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return;  // rotated or expired between listing and reading
    const auto id = std::make_pair(static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino));
    std::uint64_t& pos = offsets_[id];
    if (static_cast<std::uint64_t>(st.st_size) < pos) pos = 0;
    if (static_cast<std::uint64_t>(st.st_size) == pos) return;
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      err << "flotilla logs: cannot read " << path.string() << "; skipping it\n";
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
      parse_line(std::string_view(chunk).substr(start, nl - start), dir_name, path, lines, err);
      start = nl + 1;
    }
  }

  void parse_line(std::string_view text, const std::string& dir_name, const fs::path& path, std::vector<LogLine>& lines,
                  std::ostream& err) {
    if (text.empty()) return;
    ojson j = ojson::parse(text, nullptr, false);
    if (!j.is_object()) {
      if (!warned_bad_) err << "flotilla logs: skipping a line that is not JSON in " << path.string() << "\n";
      warned_bad_ = true;
      return;
    }
    auto str = [&](const char* k) { return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : std::string(); };
    LogLine l;
    l.ts = str("ts");
    l.node = str("node");
    l.service = str("service").empty() ? dir_name : str("service");
    // Shown as the topology names it, like status and ps do.
    if (auto it = opts_.service_names.find(l.service); it != opts_.service_names.end()) l.service = it->second;
    l.instance = str("instance");
    l.stream = str("stream");
    l.source = l.node + ":" + str("file");
    if (j.contains("gen") && j["gen"].is_number_unsigned()) l.gen = j["gen"].get<std::uint32_t>();
    if (j.contains("offset") && j["offset"].is_number_unsigned()) l.offset = j["offset"].get<std::uint64_t>();
    l.text = str("msg");
    if (j.contains("msg_b64") && j["msg_b64"].is_string())
      if (auto raw = decode_base64(j["msg_b64"].get<std::string>())) l.text = std::move(*raw);
    if (!cutoff_.empty() && l.ts < cutoff_) return;
    if (!opts_.node.empty() && l.node != opts_.node) return;
    if (!opts_.grep.empty() && l.text.find(opts_.grep) == std::string::npos) return;
    const std::string key = str("key");
    if (!key.empty() && !seen_.insert(key + "#" + str("hash")).second) return;  // stored twice
    j.erase("hash");
    j.erase("len");
    l.record = std::move(j);
    lines.push_back(std::move(l));
  }

  const LogsOptions& opts_;
  std::string cutoff_;
  std::map<std::pair<std::uint64_t, std::uint64_t>, std::uint64_t> offsets_;
  std::unordered_set<std::string> seen_;
  bool warned_bad_ = false;
};

/// Orders each source's lines as they stand in its file (generation, then offset: the store
/// holds them in arrival order, which a collector outage can shuffle), then merges the sources
/// by time; a source's own order wins over its timestamps (a clock stepped back).
std::vector<LogLine> merge_by_time(std::vector<LogLine> lines) {
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
  std::vector<LogLine> out;
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

void print(const std::vector<LogLine>& lines, const LogsOptions& opts, std::ostream& out) {
  for (const LogLine& l : lines) {
    if (opts.json) {
      out << l.record.dump(-1, ' ', false, ojson::error_handler_t::replace) << '\n';
      continue;
    }
    // Milliseconds are enough on a terminal; the JSON output keeps microseconds.
    std::string ts = l.ts;
    if (ts.size() == 27 && ts[19] == '.') ts = ts.substr(0, 23) + "Z";
    out << (ts.empty() ? "-" : ts) << ' ' << (l.node.empty() ? "-" : l.node) << ' ' << l.service;
    if (!l.instance.empty()) out << '#' << l.instance;
    out << ' ' << (l.stream.empty() ? "-" : l.stream) << " | " << escape_log_text(l.text) << '\n';
  }
  out.flush();
}

}  // namespace

std::string escape_log_text(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\\') {
      out += "\\\\";
      ++i;
    } else if (c < 0x20 || c == 0x7f) {
      append_hex(out, c);
      ++i;
    } else if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
    } else {
      std::size_t len = 0;
      std::uint32_t cp = 0;
      const bool valid = valid_utf8_at(text, i, len, cp);
      if (valid && !(cp >= 0x80 && cp <= 0x9F)) {
        out.append(text.substr(i, len));
        i += len;
      } else if (valid) {
        // C1 controls are valid UTF-8 but terminals act on some of them.
        append_hex(out, static_cast<unsigned char>(text[i]));
        append_hex(out, static_cast<unsigned char>(text[i + 1]));
        i += 2;
      } else {
        append_hex(out, c);
        ++i;
      }
    }
  }
  return out;
}

std::optional<std::filesystem::path> log_store_from_state(const nlohmann::json& state) {
  const auto addons = state.find("addons");
  if (addons == state.end() || !addons->is_object()) return std::nullopt;
  for (const auto& [name, rec] : addons->items()) {
    const auto outputs = rec.find("outputs");
    if (outputs == rec.end() || !outputs->is_object()) continue;
    const auto store = outputs->find("log_store");
    if (store != outputs->end() && store->is_string() && !store->get<std::string>().empty()) return store->get<std::string>();
  }
  return std::nullopt;
}

Result<std::chrono::seconds> parse_duration(const std::string& text) {
  auto bad = [&]() {
    return fail("invalid duration `" + text + "`: write a number and a unit s, m, h or d (e.g. 30s, 10m, 2h, 1d, 1h30m)");
  };
  if (text.empty()) return bad();
  std::int64_t total = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    std::int64_t n = 0;
    const std::size_t start = i;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])) != 0) {
      if (n > 1'000'000'000) return bad();
      n = n * 10 + (text[i] - '0');
      ++i;
    }
    if (i == start || i >= text.size()) return bad();
    std::int64_t unit = 0;
    switch (text[i]) {
      case 's': unit = 1; break;
      case 'm': unit = 60; break;
      case 'h': unit = 3600; break;
      case 'd': unit = 86400; break;
      default: return bad();
    }
    ++i;
    total += n * unit;
    if (total > 100LL * 365 * 86400) return bad();
  }
  return std::chrono::seconds(total);
}

int run_logs_command(const LogsOptions& opts, std::ostream& out, std::ostream& err) {
  std::error_code ec;
  if (opts.store_dir.empty() || !fs::is_directory(opts.store_dir, ec)) {
    err << "flotilla logs: no log store at " << (opts.store_dir.empty() ? std::string("(none)") : opts.store_dir.string())
        << "; add the syslog addon to the topology and run `flotilla up FILE`, then try again\n";
    return kLogsFailed;
  }
  StoreReader reader(opts);
  bool missing = false;
  print(merge_by_time(reader.poll(err, missing)), opts, out);
  if (missing && !opts.follow) {
    std::string known;
    bool unused = false;
    LogsOptions all = opts;
    all.service.clear();
    for (const auto& d : StoreReader(all).service_dirs(unused)) known += (known.empty() ? "" : ", ") + d.filename().string();
    err << "flotilla logs: no logs stored for service `" << opts.service << "` in " << opts.store_dir.string()
        << (known.empty() ? std::string(" (nothing stored yet)") : " (services with logs: " + known + ")") << "\n";
    return kLogsOk;
  }
  if (!opts.follow) return kLogsOk;
  while (!(opts.stop && opts.stop())) {
    std::this_thread::sleep_for(kFollowPoll);
    print(merge_by_time(reader.poll(err, missing)), opts, out);
  }
  return kLogsOk;
}

}  // namespace flotilla
