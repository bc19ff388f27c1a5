// `flotilla logs`, the engine's side: the question's arguments, and the printing of what the
// log addon answers. The store and its format are the addon's (plugins/addon_syslog).
#include "logs.hpp"

#include <cctype>
#include <cstdint>
#include <optional>

namespace flotilla {

namespace {

using ojson = nlohmann::ordered_json;

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

std::string str(const ojson& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

/// The exact bytes of a line: `msg_b64` when its text was not valid UTF-8, else `msg`.
std::string line_text(const ojson& record) {
  if (const std::string b64 = str(record, "msg_b64"); !b64.empty())
    if (auto raw = decode_base64(b64)) return std::move(*raw);
  return str(record, "msg");
}

void print_line(const ojson& record, const LogsOptions& opts, std::ostream& out) {
  if (opts.json) {
    out << record.dump(-1, ' ', false, ojson::error_handler_t::replace) << '\n';
    return;
  }
  // Milliseconds are enough on a terminal; the JSON output keeps microseconds.
  std::string ts = str(record, "ts");
  if (ts.size() == 27 && ts[19] == '.') ts = ts.substr(0, 23) + "Z";
  std::string service = str(record, "service");
  // Shown as the topology names it, like status and ps do.
  if (auto it = opts.service_names.find(service); it != opts.service_names.end()) service = it->second;
  const std::string node = str(record, "node"), instance = str(record, "instance"), stream = str(record, "stream");
  out << (ts.empty() ? "-" : ts) << ' ' << (node.empty() ? "-" : node) << ' ' << service;
  if (!instance.empty()) out << '#' << instance;
  out << ' ' << (stream.empty() ? "-" : stream) << " | " << escape_log_text(line_text(record)) << '\n';
}

/// One part of the answer: {"lines": [record...]} or {"warning": TEXT}.
void print_part(std::string_view text, const LogsOptions& opts, std::ostream& out, std::ostream& err) {
  const ojson part = ojson::parse(text, nullptr, false);
  if (!part.is_object()) {
    err << "flotilla logs: the log addon answered something that is not a JSON object; skipping it\n";
    return;
  }
  if (auto lines = part.find("lines"); lines != part.end() && lines->is_array())
    for (const auto& record : *lines)
      if (record.is_object()) print_line(record, opts, out);
  if (auto warning = part.find("warning"); warning != part.end() && warning->is_string())
    err << "flotilla logs: " << warning->get<std::string>() << "\n";
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

nlohmann::json logs_args(const LogsOptions& opts) {
  nlohmann::json args = {{"service", opts.service}, {"node", opts.node}, {"grep", opts.grep}, {"follow", opts.follow}};
  if (opts.since) args["since_s"] = opts.since->count();
  return args;
}

int run_logs_command(const LogsOptions& opts, const LogsAsk& ask, std::ostream& out, std::ostream& err) {
  const std::function<bool()> stop = opts.stop ? opts.stop : [] { return false; };
  const CallResult r = ask(logs_args(opts), stop, [&](std::string_view part) { print_part(part, opts, out, err); });
  if (r.status != FLT_OK) {
    err << "flotilla logs: " << r.error << "\n";
    return kLogsFailed;
  }
  return kLogsOk;
}

}  // namespace flotilla
