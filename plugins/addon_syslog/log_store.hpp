// The collector's store: what flotilla-logstore does with each line rsyslog hands it.
//
// A line arrives as the shipper's wire record (one JSON object: node, file, offset, ts, msg and
// optional service/instance/stream). RELP delivers at least once, so a line can arrive twice;
// its key (node, file, offset) and a hash of its text tell a resend from a new line. Stored
// lines go to <store>/<service>/<YYYY-MM-DD>.jsonl (the day of the line's UTC timestamp);
// a file that would grow past the size limit is renamed to <YYYY-MM-DD>.<n>.jsonl first, and
// files of days older than the retention are deleted.
#pragma once

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

namespace flotilla::syslog_addon {

namespace store_detail {

inline void put_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

inline int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

inline bool read_hex4(std::string_view s, std::size_t& i, std::uint32_t& out) {
  if (i + 4 > s.size()) return false;
  out = 0;
  for (int k = 0; k < 4; ++k) {
    const int v = hex_value(s[i + k]);
    if (v < 0) return false;
    out = out * 16 + static_cast<std::uint32_t>(v);
  }
  i += 4;
  return true;
}

inline void skip_ws(std::string_view s, std::size_t& i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')) ++i;
}

}  // namespace store_detail

/// Decodes the JSON string starting at s[i] (the opening quote) into raw bytes. Lenient on
/// purpose: rsyslog's JSON escaping passes bytes >= 0x80 through unchanged, valid UTF-8 or not,
/// and those bytes must survive. Returns false on a malformed string.
inline bool decode_json_string(std::string_view s, std::size_t& i, std::string& out) {
  using namespace store_detail;
  if (i >= s.size() || s[i] != '"') return false;
  ++i;
  out.clear();
  while (i < s.size()) {
    const char c = s[i];
    if (c == '"') {
      ++i;
      return true;
    }
    if (c != '\\') {
      // Copy the run up to the next quote or backslash in one go (1 MB lines are normal).
      std::size_t j = i;
      while (j < s.size() && s[j] != '"' && s[j] != '\\') ++j;
      out.append(s.substr(i, j - i));
      i = j;
      continue;
    }
    if (++i >= s.size()) return false;
    const char e = s[i++];
    switch (e) {
      case '"': out += '"'; break;
      case '\\': out += '\\'; break;
      case '/': out += '/'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'u': {
        std::uint32_t cp = 0;
        if (!read_hex4(s, i, cp)) return false;
        if (cp >= 0xD800 && cp <= 0xDBFF && i + 1 < s.size() && s[i] == '\\' && s[i + 1] == 'u') {
          std::size_t k = i + 2;
          std::uint32_t low = 0;
          if (read_hex4(s, k, low) && low >= 0xDC00 && low <= 0xDFFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            i = k;
          }
        }
        put_utf8(out, cp);
        break;
      }
      default: return false;
    }
  }
  return false;
}

/// Walks a flat JSON object of strings and numbers, calling `field(key, value)` with values as
/// raw bytes (numbers as their text). Returns false when the text is not such an object.
template <class Field>
bool visit_flat_object(std::string_view s, Field&& field) {
  using namespace store_detail;
  std::size_t i = 0;
  skip_ws(s, i);
  if (i >= s.size() || s[i] != '{') return false;
  ++i;
  skip_ws(s, i);
  if (i < s.size() && s[i] == '}') return true;
  std::string key, value;
  for (;;) {
    skip_ws(s, i);
    if (!decode_json_string(s, i, key)) return false;
    skip_ws(s, i);
    if (i >= s.size() || s[i] != ':') return false;
    ++i;
    skip_ws(s, i);
    if (i >= s.size()) return false;
    if (s[i] == '"') {
      if (!decode_json_string(s, i, value)) return false;
    } else {
      const std::size_t start = i;
      while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ' ') ++i;
      value.assign(s.substr(start, i - start));
      if (value.empty()) return false;
    }
    field(key, value);
    skip_ws(s, i);
    if (i >= s.size()) return false;
    if (s[i] == ',') {
      ++i;
      continue;
    }
    return s[i] == '}';
  }
}

/// A flat JSON object as a map of raw values; nullopt when the text is not such an object.
inline std::optional<std::map<std::string, std::string>> parse_flat_object(std::string_view s) {
  std::map<std::string, std::string> fields;
  if (!visit_flat_object(s, [&](const std::string& k, std::string& v) { fields[k] = std::move(v); })) return std::nullopt;
  return fields;
}

/// True if `s` is well-formed UTF-8 (no overlongs, no surrogates, nothing past U+10FFFF).
inline bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  while (i < n) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len = 0;
    std::uint32_t cp = 0;
    if ((c & 0xE0) == 0xC0) len = 2, cp = c & 0x1F;
    else if ((c & 0xF0) == 0xE0) len = 3, cp = c & 0x0F;
    else if ((c & 0xF8) == 0xF0) len = 4, cp = c & 0x07;
    else return false;
    if (i + len > n) return false;
    for (std::size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += len;
  }
  return true;
}

/// Appends `text` as the inside of a JSON string. Bytes that are not valid UTF-8 become
/// U+FFFD (and `invalid` is set); control characters are escaped.
inline void append_json_string(std::string& out, std::string_view text, bool& invalid) {
  static constexpr char kHex[] = "0123456789abcdef";
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      std::size_t j = i + 1;
      while (j < n && p[j] >= 0x20 && p[j] < 0x80 && p[j] != '"' && p[j] != '\\') ++j;
      out.append(text.substr(i, j - i));
      i = j;
      continue;
    }
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    if (c < 0x20) {
      switch (c) {
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default:
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 15];
      }
      ++i;
      continue;
    }
    // c >= 0x80: copy a well-formed sequence, replace anything else byte by byte.
    std::size_t len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (len != 0 && valid_utf8(text.substr(i, std::min(len, n - i))) && i + len <= n) {
      out.append(text.substr(i, len));
      i += len;
    } else {
      out += "\xef\xbf\xbd";
      invalid = true;
      ++i;
    }
  }
}

/// Standard base64 with padding.
inline std::string base64(std::string_view in) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const std::uint32_t v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                            static_cast<unsigned char>(in[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i < in.size()) {
    std::uint32_t v = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size()) v |= static_cast<unsigned char>(in[i + 1]) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < in.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

/// FNV-1a 64 of a line's bytes: part of telling a resend from a new line at a reused offset.
inline std::uint64_t line_hash(std::string_view s) {
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

inline std::string hash_hex(std::uint64_t h) {
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(h));
  return out;
}

/// Where a line came from, as stored.
struct Origin {
  std::string service;
  std::string instance;
  std::string stream;
};

/// A name usable as one directory: [a-z0-9._-] kept, anything else becomes '_'.
inline std::string safe_dir_name(std::string_view name) {
  std::string out;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
    out += ok ? c : (c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : '_');
  }
  if (out.empty() || out == "." || out == "..") out = "_" + out;
  return out;
}

/// Service, instance and stream of a workload log file <...>/workloads/<workload>/<stream>.log:
/// "service-hello-v1-3" is service hello-v1, instance 3; "addon-<addon>-<component>" is service
/// addon-<addon>, instance <component> (the longest known addon name wins); anything else is
/// its own service.
inline Origin derive_origin(const std::string& file, const std::vector<std::string>& addons) {
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

/// Converts an RFC 3339 time ("2026-11-25T14:38:51.743351+00:00") to UTC with six fractional
/// digits and a Z ("2026-11-25T14:38:51.743351Z"); nullopt if it is not one.
inline std::optional<std::string> normalize_ts(std::string_view ts) {
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

/// The current UTC time in the store's format.
inline std::string now_ts() {
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

/// Tells resends from new lines, per source file (node + path), in any arrival order.
///
/// Each stored line covers the bytes [offset, offset + length + 1) of its file (the text and
/// its newline). A source remembers the byte ranges it has stored, merged as they meet, so a
/// steady stream costs one range whatever its length. A line that starts inside a stored range
/// is a resend: lines of one file never overlap. Ranges are exact, so lines may arrive in any
/// order (rsyslog's disk-assisted queues deliver spooled lines after newer ones).
///
/// A file can be recreated at the same path (a workload removed with its logs and started
/// again); its lines then start at offsets already stored. The source remembers the text
/// hashes of its last `window` lines and of its first line: a known offset with other text
/// starts a new generation, which forgets the old ranges. Generations order a source's lines
/// for the reader.
class Dedupe {
 public:
  explicit Dedupe(std::size_t window = 4096) : window_(window) {}

  /// The line's generation if it is new (and now remembered), nullopt if it is a resend.
  std::optional<std::uint32_t> accept(const std::string& source, std::uint64_t offset, std::uint64_t length, std::uint64_t hash) {
    Source& src = sources_[source];
    if (covered(src, offset)) {
      const auto it = src.recent_hash.find(offset);
      const bool other_text = (it != src.recent_hash.end() && it->second != hash) ||
                              (it == src.recent_hash.end() && offset == 0 && src.has_first && src.first_hash != hash);
      if (!other_text) return std::nullopt;
      start_generation(src, src.gen + 1);
    }
    remember(src, offset, length, hash);
    return src.gen;
  }

  /// Replays a line read back from the store (it was new when it came): lines of the newest
  /// generation are remembered, older generations only move the generation on.
  void replay(const std::string& source, std::uint64_t offset, std::uint64_t length, std::uint64_t hash, std::uint32_t gen) {
    Source& src = sources_[source];
    if (gen < src.gen) return;
    if (gen > src.gen) start_generation(src, gen);
    if (!covered(src, offset)) remember(src, offset, length, hash);
  }

  [[nodiscard]] std::size_t sources() const { return sources_.size(); }
  /// Byte ranges remembered for a source (for tests and diagnostics).
  [[nodiscard]] std::size_t ranges(const std::string& source) const {
    const auto it = sources_.find(source);
    return it == sources_.end() ? 0 : it->second.ranges.size();
  }

 private:
  struct Source {
    std::uint32_t gen = 0;
    std::map<std::uint64_t, std::uint64_t> ranges;  // start -> end (exclusive), disjoint
    std::deque<std::uint64_t> recent;                // offsets of the last lines, oldest first
    std::unordered_map<std::uint64_t, std::uint64_t> recent_hash;
    std::uint64_t first_hash = 0;
    bool has_first = false;
  };

  static bool covered(const Source& s, std::uint64_t offset) {
    auto it = s.ranges.upper_bound(offset);
    if (it == s.ranges.begin()) return false;
    --it;
    return offset < it->second;
  }

  static void start_generation(Source& s, std::uint32_t gen) {
    s = Source{};
    s.gen = gen;
  }

  void remember(Source& s, std::uint64_t offset, std::uint64_t length, std::uint64_t hash) {
    std::uint64_t start = offset, end = offset + length + 1;
    // A gap of one byte between ranges is an empty line, which imfile never ships: close it.
    auto next = s.ranges.lower_bound(start);
    if (next != s.ranges.end() && next->first <= end + 1) {
      end = std::max(end, next->second);
      next = s.ranges.erase(next);
    }
    if (next != s.ranges.begin()) {
      auto prev = std::prev(next);
      if (prev->second + 1 >= start) {
        start = prev->first;
        end = std::max(end, prev->second);
        s.ranges.erase(prev);
      }
    }
    s.ranges[start] = end;
    if (offset == 0) {
      s.first_hash = hash;
      s.has_first = true;
    }
    if (s.recent_hash.emplace(offset, hash).second) s.recent.push_back(offset);
    while (s.recent.size() > window_) {
      s.recent_hash.erase(s.recent.front());
      s.recent.pop_front();
    }
  }

  std::size_t window_;
  std::unordered_map<std::string, Source> sources_;
};

/// A line as stored, before it is written.
struct StoredLine {
  std::string key;  // "<node>:<file>:<offset>"
  std::uint64_t hash = 0;
  std::string ts;
  std::string node;
  Origin origin;
  std::string file;
  std::uint64_t offset = 0;
  std::uint32_t gen = 0;  // generation of the file at this path (see Dedupe)
  std::string msg;        // raw bytes
};

/// The store's JSON line (without the newline). `key`, `hash`, `len` and `gen` come first so a
/// restart can rebuild the dedupe table without decoding the text of every line.
inline std::string render_stored(const StoredLine& l) {
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
  out += ",\"hash\":\"" + hash_hex(l.hash) + "\"";
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
    out += base64(l.msg);
    out += '"';
  }
  out += '}';
  return out;
}

/// Parses the shipper's wire record into a StoredLine; nullopt if it lacks node, file or offset.
/// `origins`, when given, remembers each file's origin (deriving it is the costly part).
inline std::optional<StoredLine> parse_wire(std::string_view line, const std::vector<std::string>& addons,
                                            std::unordered_map<std::string, Origin>* origins = nullptr) {
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
  l.hash = line_hash(l.msg);
  return l;
}

/// One file of the store: <service>/<YYYY-MM-DD>[.<part>].jsonl. The current file of a day has
/// no part number; rotated ones have 1, 2, ... in the order they were written.
struct StoreFile {
  std::filesystem::path path;
  std::string day;
  int part = 0;  // 0: the current file, read after all numbered parts
};

/// Parses a store file name; nullopt for anything else.
inline std::optional<StoreFile> parse_store_file_name(const std::filesystem::path& path) {
  const std::string name = path.filename().string();
  if (name.size() < 16 || name.compare(name.size() - 6, 6, ".jsonl") != 0) return std::nullopt;
  const std::string day = name.substr(0, 10);
  for (std::size_t i = 0; i < 10; ++i) {
    const bool digit = day[i] >= '0' && day[i] <= '9';
    if ((i == 4 || i == 7) ? day[i] != '-' : !digit) return std::nullopt;
  }
  const std::string middle = name.substr(10, name.size() - 16);
  StoreFile f{path, day, 0};
  if (middle.empty()) return f;
  if (middle.size() < 2 || middle[0] != '.' ||
      !std::all_of(middle.begin() + 1, middle.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  f.part = std::stoi(middle.substr(1));
  return f.part > 0 ? std::optional<StoreFile>(f) : std::nullopt;
}

/// The store files of one service directory in the order they were written.
inline std::vector<StoreFile> list_store_files(const std::filesystem::path& service_dir) {
  std::vector<StoreFile> files;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(service_dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (auto f = parse_store_file_name(it->path())) files.push_back(*f);
  }
  std::sort(files.begin(), files.end(), [](const StoreFile& a, const StoreFile& b) {
    if (a.day != b.day) return a.day < b.day;
    const long pa = a.part == 0 ? LONG_MAX : a.part, pb = b.part == 0 ? LONG_MAX : b.part;
    return pa < pb;
  });
  return files;
}

/// Writes lines into the store: one open descriptor per current file, rotation by size,
/// deletion of days past the retention.
class StoreWriter {
 public:
  StoreWriter(std::filesystem::path dir, std::uint64_t max_file_size, int retention_days)
      : dir_(std::move(dir)), max_file_size_(max_file_size), retention_days_(retention_days) {}
  StoreWriter(const StoreWriter&) = delete;
  StoreWriter& operator=(const StoreWriter&) = delete;
  ~StoreWriter() { close_all(); }

  /// Appends `record` + '\n' to the service's file for `day`; throws std::runtime_error on I/O
  /// failure (the caller reports it and rsyslog retries the line later).
  void append(const std::string& service, const std::string& day, const std::string& record) {
    const std::filesystem::path path = dir_ / service / (day + ".jsonl");
    Open* f = &open(path);
    const std::uint64_t need = record.size() + 1;
    if (f->size > 0 && f->size + need > max_file_size_) {
      rotate(path);
      f = &open(path);
    }
    std::string buf;
    buf.reserve(need);
    buf += record;
    buf += '\n';
    std::size_t done = 0;
    while (done < buf.size()) {
      const ssize_t n = ::write(f->fd, buf.data() + done, buf.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        const int e = errno;
        close_one(path);
        throw std::runtime_error("cannot write " + path.string() + ": " + std::strerror(e));
      }
      done += static_cast<std::size_t>(n);
    }
    f->size += buf.size();
  }

  /// Deletes store files of days before today - retention_days (0 keeps everything) and
  /// service directories left empty. Returns how many files went.
  int enforce_retention(std::chrono::system_clock::time_point now) {
    if (retention_days_ <= 0) return 0;
    const std::time_t cutoff_t = std::chrono::system_clock::to_time_t(now) - static_cast<std::time_t>(retention_days_) * 86400;
    std::tm tm{};
    ::gmtime_r(&cutoff_t, &tm);
    char cutoff[48];
    std::snprintf(cutoff, sizeof cutoff, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    int removed = 0;
    std::error_code ec;
    for (std::filesystem::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
      if (!it->is_directory()) continue;
      for (const StoreFile& f : list_store_files(it->path())) {
        if (f.day >= cutoff) continue;
        close_one(f.path);
        std::error_code rm;
        if (std::filesystem::remove(f.path, rm)) ++removed;
      }
      std::error_code rm;
      if (std::filesystem::is_empty(it->path(), rm)) std::filesystem::remove(it->path(), rm);
    }
    return removed;
  }

  void close_all() {
    for (auto& [path, f] : open_) ::close(f.fd);
    open_.clear();
  }

 private:
  struct Open {
    int fd = -1;
    std::uint64_t size = 0;
  };

  Open& open(const std::filesystem::path& path) {
    if (auto it = open_.find(path.string()); it != open_.end()) return it->second;
    if (open_.size() >= kMaxOpen) close_all();  // rare: many services or days at once
    std::error_code ec;
    std::filesystem::create_directories(path.parent_path(), ec);
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) throw std::runtime_error("cannot open " + path.string() + ": " + std::strerror(errno));
    struct stat st {};
    ::fstat(fd, &st);
    return open_[path.string()] = Open{fd, static_cast<std::uint64_t>(st.st_size)};
  }

  void close_one(const std::filesystem::path& path) {
    if (auto it = open_.find(path.string()); it != open_.end()) {
      ::close(it->second.fd);
      open_.erase(it);
    }
  }

  void rotate(const std::filesystem::path& path) {
    close_one(path);
    const std::string day = path.stem().string();
    int next = 1;
    for (const StoreFile& f : list_store_files(path.parent_path()))
      if (f.day == day && f.part >= next) next = f.part + 1;
    const std::filesystem::path target = path.parent_path() / (day + "." + std::to_string(next) + ".jsonl");
    std::error_code ec;
    std::filesystem::rename(path, target, ec);
    if (ec) throw std::runtime_error("cannot rotate " + path.string() + " to " + target.string() + ": " + ec.message());
  }

  static constexpr std::size_t kMaxOpen = 64;
  std::filesystem::path dir_;
  std::uint64_t max_file_size_;
  int retention_days_;
  std::map<std::string, Open> open_;
};

/// What a restart needs of a stored line, read from its start without decoding the text.
struct StoredPrefix {
  std::string key;
  std::uint64_t hash = 0;
  std::uint64_t len = 0;
  std::uint32_t gen = 0;
};

inline std::optional<StoredPrefix> stored_prefix(std::string_view line) {
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
    const int v = store_detail::hex_value(line[i + k]);
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

/// Splits a key "<node>:<file>:<offset>" into its source ("<node>:<file>") and offset.
inline std::optional<std::pair<std::string, std::uint64_t>> split_key(const std::string& key) {
  const auto colon = key.rfind(':');
  if (colon == std::string::npos || colon + 1 >= key.size()) return std::nullopt;
  try {
    return std::make_pair(key.substr(0, colon), std::stoull(key.substr(colon + 1)));
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

/// Feeds every line already in the store to `dedupe`, so a restarted collector still knows
/// what it stored. Returns the number of lines read.
inline std::uint64_t rebuild_dedupe(Dedupe& dedupe, const std::filesystem::path& store) {
  std::uint64_t lines = 0;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(store, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_directory()) continue;
    for (const StoreFile& f : list_store_files(it->path())) {
      std::ifstream in(f.path, std::ios::binary);
      std::string line;
      while (std::getline(in, line)) {
        const auto p = stored_prefix(line);
        if (!p) continue;
        const auto sk = split_key(p->key);
        if (!sk) continue;
        dedupe.replay(sk->first, sk->second, p->len, p->hash, p->gen);
        ++lines;
      }
    }
  }
  return lines;
}

/// The collector's whole job for one line: parse, drop resends, store.
class LogStore {
 public:
  struct Options {
    std::filesystem::path dir;
    std::uint64_t max_file_size = 100ull << 20;
    int retention_days = 7;
    std::vector<std::string> addons;
  };
  enum class Outcome { stored, duplicate, unparsed };

  explicit LogStore(Options o) : opts_(std::move(o)), writer_(opts_.dir, opts_.max_file_size, opts_.retention_days) {}

  /// Rebuilds the dedupe table from the store and applies the retention.
  std::uint64_t open() {
    std::error_code ec;
    std::filesystem::create_directories(opts_.dir, ec);
    if (ec) throw std::runtime_error("cannot create the log store " + opts_.dir.string() + ": " + ec.message());
    writer_.enforce_retention(std::chrono::system_clock::now());
    return rebuild_dedupe(dedupe_, opts_.dir);
  }

  /// Handles one wire line; throws std::runtime_error when it cannot be stored.
  Outcome ingest(std::string_view wire) {
    auto line = parse_wire(wire, opts_.addons, &origins_);
    if (!line) {
      // Kept, not dropped: nothing is lost, and the reader shows it under "_unparsed".
      nlohmann::ordered_json j;
      const std::string ts = now_ts();
      j["ts"] = ts;
      j["msg"] = std::string(wire);
      if (!valid_utf8(wire)) j["msg_b64"] = base64(wire);
      writer_.append("_unparsed", ts.substr(0, 10), j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
      return Outcome::unparsed;
    }
    const std::string source = line->node + ":" + line->file;
    const auto gen = dedupe_.accept(source, line->offset, line->msg.size(), line->hash);
    if (!gen) return Outcome::duplicate;
    line->gen = *gen;
    try {
      writer_.append(safe_dir_name(line->origin.service), line->ts.substr(0, 10), render_stored(*line));
    } catch (...) {
      // Not stored, so a resend must not look like a duplicate: forget it by starting over
      // from the store (rare: only after an I/O error).
      dedupe_ = Dedupe();
      rebuild_dedupe(dedupe_, opts_.dir);
      throw;
    }
    return Outcome::stored;
  }

  int enforce_retention(std::chrono::system_clock::time_point now) { return writer_.enforce_retention(now); }
  void close() { writer_.close_all(); }

 private:
  Options opts_;
  StoreWriter writer_;
  Dedupe dedupe_;
  std::unordered_map<std::string, Origin> origins_;
};

}  // namespace flotilla::syslog_addon
