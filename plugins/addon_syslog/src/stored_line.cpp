#include "addon_syslog/stored_line.hpp"

#include "addon_syslog/json_text.hpp"
#include "flotilla/support/encoding.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <exception>
#include <filesystem>
#include <string>

namespace flotilla::syslog_addon {

std::string safe_dir_name(std::string_view name) {
  std::string out;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
    out += ok ? c : (c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : '_');
  }
  if (out.empty() || out == "." || out == "..") out = "_" + out;
  return out;
}

Origin derive_origin(const std::string& file, const std::vector<std::string>& addons) {
  const std::filesystem::path p(file);
  Origin o;
  o.stream = p.stem().string();
  const std::string workload = p.parent_path().filename().string();
  const bool in_workloads = p.parent_path().parent_path().filename() == "workloads";
  if (!in_workloads || workload.empty()) {
    o.service = "files";
    o.instance = p.filename().string();
    return o;
  }
  if (workload.rfind("service-", 0) == 0) {
    const std::string rest = workload.substr(8);
    const auto dash = rest.rfind('-');
    if (dash != std::string::npos && dash > 0 && dash + 1 < rest.size() &&
        std::all_of(rest.begin() + static_cast<std::ptrdiff_t>(dash) + 1, rest.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      o.service = rest.substr(0, dash);
      o.instance = rest.substr(dash + 1);
      return o;
    }
  }
  if (workload.rfind("addon-", 0) == 0) {
    const std::string rest = workload.substr(6);
    std::string best;
    for (const auto& a : addons)
      if (rest.size() > a.size() + 1 && rest.compare(0, a.size(), a) == 0 && rest[a.size()] == '-' && a.size() > best.size()) best = a;
    if (!best.empty()) {
      o.service = "addon-" + best;
      o.instance = rest.substr(best.size() + 1);
      return o;
    }
  }
  o.service = workload;
  return o;
}

std::optional<std::string> normalize_ts(std::string_view ts) {
  int Y, M, D, h, m, sec;
  if (ts.size() < 20) return std::nullopt;
  const std::string head(ts.substr(0, 19));
  if (std::sscanf(head.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d", &Y, &M, &D, &h, &m, &sec) != 6) return std::nullopt;
  std::size_t i = 19;
  long micros = 0;
  if (i < ts.size() && ts[i] == '.') {
    ++i;
    int digits = 0;
    while (i < ts.size() && ts[i] >= '0' && ts[i] <= '9') {
      if (digits < 6) micros = micros * 10 + (ts[i] - '0'), ++digits;
      ++i;
    }
    while (digits < 6) micros *= 10, ++digits;
  }
  long offset_s = 0;
  if (i < ts.size() && (ts[i] == 'Z' || ts[i] == 'z')) {
    ++i;
  } else if (i + 6 <= ts.size() && (ts[i] == '+' || ts[i] == '-') && ts[i + 3] == ':') {
    const int oh = (ts[i + 1] - '0') * 10 + (ts[i + 2] - '0');
    const int om = (ts[i + 4] - '0') * 10 + (ts[i + 5] - '0');
    offset_s = (oh * 3600L + om * 60L) * (ts[i] == '+' ? 1 : -1);
    i += 6;
  } else {
    return std::nullopt;
  }
  if (i != ts.size()) return std::nullopt;
  std::tm tm{};
  tm.tm_year = Y - 1900;
  tm.tm_mon = M - 1;
  tm.tm_mday = D;
  tm.tm_hour = h;
  tm.tm_min = m;
  tm.tm_sec = sec;
  const std::time_t t = ::timegm(&tm) - offset_s;
  std::tm out{};
  ::gmtime_r(&t, &out);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", out.tm_year + 1900, out.tm_mon + 1, out.tm_mday,
                out.tm_hour, out.tm_min, out.tm_sec, micros);
  return std::string(buf);
}

std::string now_ts() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() % 1000000;
  std::tm out{};
  ::gmtime_r(&t, &out);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", out.tm_year + 1900, out.tm_mon + 1, out.tm_mday,
                out.tm_hour, out.tm_min, out.tm_sec, static_cast<long>(micros));
  return buf;
}

std::string render_stored(const StoredLine& l) {
  std::string out;
  out.reserve(l.msg.size() + l.file.size() * 2 + 256);
  bool invalid = false, ignored = false;
  auto str = [&](const char* name, std::string_view value, bool& bad) {
    out += name;
    out += '"';
    append_json_string(out, value, bad);
    out += '"';
  };
  str("{\"key\":", l.key, ignored);
  out += ",\"hash\":\"" + support::hex64(l.hash) + "\"";
  out += ",\"len\":" + std::to_string(l.msg.size());
  out += ",\"gen\":" + std::to_string(l.gen);
  str(",\"ts\":", l.ts, ignored);
  str(",\"node\":", l.node, ignored);
  str(",\"service\":", l.origin.service, ignored);
  str(",\"instance\":", l.origin.instance, ignored);
  str(",\"stream\":", l.origin.stream, ignored);
  str(",\"file\":", l.file, ignored);
  out += ",\"offset\":" + std::to_string(l.offset);
  str(",\"msg\":", l.msg, invalid);  // invalid UTF-8 shows as U+FFFD here ...
  if (invalid) {
    out += ",\"msg_b64\":\"";  // ... and the exact bytes stay here
    out += support::base64_encode(l.msg);
    out += '"';
  }
  out += '}';
  return out;
}

std::optional<StoredLine> parse_wire(std::string_view line, const std::vector<std::string>& addons,
                                     std::unordered_map<std::string, Origin>* origins) {
  StoredLine l;
  std::string offset, ts, service, instance, stream;
  const bool ok = visit_flat_object(line, [&](const std::string& k, std::string& v) {
    if (k == "msg") l.msg = std::move(v);
    else if (k == "node") l.node = std::move(v);
    else if (k == "file") l.file = std::move(v);
    else if (k == "offset") offset = std::move(v);
    else if (k == "ts") ts = std::move(v);
    else if (k == "service") service = std::move(v);
    else if (k == "instance") instance = std::move(v);
    else if (k == "stream") stream = std::move(v);
  });
  if (!ok || l.node.empty() || l.file.empty() || offset.empty()) return std::nullopt;
  if (!std::all_of(offset.begin(), offset.end(), [](char c) { return c >= '0' && c <= '9'; }) || offset.size() > 19)
    return std::nullopt;
  l.offset = std::stoull(offset);
  l.ts = normalize_ts(ts).value_or(now_ts());
  if (origins != nullptr) {
    auto it = origins->find(l.file);
    if (it == origins->end()) {
      if (origins->size() > 100000) origins->clear();
      it = origins->emplace(l.file, derive_origin(l.file, addons)).first;
    }
    l.origin = it->second;
  } else {
    l.origin = derive_origin(l.file, addons);
  }
  if (!service.empty()) l.origin.service = std::move(service);
  if (!instance.empty()) l.origin.instance = std::move(instance);
  if (!stream.empty()) l.origin.stream = std::move(stream);
  l.key = l.node + ":" + l.file + ":" + std::to_string(l.offset);
  l.hash = support::fnv1a64(l.msg);  // with the offset, tells a resend from a new line at a reused offset
  return l;
}

std::optional<StoredPrefix> stored_prefix(std::string_view line) {
  static constexpr std::string_view kKey = "{\"key\":";
  static constexpr std::string_view kHash = ",\"hash\":\"";
  static constexpr std::string_view kLen = "\",\"len\":";
  static constexpr std::string_view kGen = ",\"gen\":";
  if (line.substr(0, kKey.size()) != kKey) return std::nullopt;
  std::size_t i = kKey.size();
  StoredPrefix p;
  if (!decode_json_string(line, i, p.key)) return std::nullopt;
  if (line.substr(i, kHash.size()) != kHash) return std::nullopt;
  i += kHash.size();
  if (i + 16 > line.size()) return std::nullopt;
  for (std::size_t k = 0; k < 16; ++k) {
    const int v = hex_value(line[i + k]);
    if (v < 0) return std::nullopt;
    p.hash = p.hash * 16 + static_cast<std::uint64_t>(v);
  }
  i += 16;
  auto number = [&](std::string_view label, std::uint64_t& out) {
    if (line.substr(i, label.size()) != label) return false;
    i += label.size();
    const std::size_t start = i;
    out = 0;
    while (i < line.size() && line[i] >= '0' && line[i] <= '9') out = out * 10 + static_cast<std::uint64_t>(line[i++] - '0');
    return i > start;
  };
  std::uint64_t gen = 0;
  if (!number(kLen, p.len) || !number(kGen, gen)) return std::nullopt;
  p.gen = static_cast<std::uint32_t>(gen);
  return p;
}

std::optional<std::pair<std::string, std::uint64_t>> split_key(const std::string& key) {
  const auto colon = key.rfind(':');
  if (colon == std::string::npos || colon + 1 >= key.size()) return std::nullopt;
  try {
    return std::make_pair(key.substr(0, colon), std::stoull(key.substr(colon + 1)));
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace flotilla::syslog_addon
