// `flotilla logs`, the engine's side: the question's arguments, and the printing of what the
// log addon answers. The store and its format are the addon's (plugins/addon_syslog).
#include "logs.hpp"

#include "flotilla/support/encoding.hpp"

#include <cctype>
#include <cstdint>

namespace flotilla {

namespace {

using ojson = nlohmann::ordered_json;

void append_hex(std::string& out, unsigned char b) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += "\\x";
  out += kHex[b >> 4];
  out += kHex[b & 15];
}

std::string str(const ojson& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

/// The exact bytes of a line: `msg_b64` when its text was not valid UTF-8, else `msg`.
std::string line_text(const ojson& record) {
  if (const std::string b64 = str(record, "msg_b64"); !b64.empty())
    if (auto raw = support::base64_decode(b64)) return std::move(*raw);
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
      std::uint32_t cp = 0;
      const std::size_t len = support::utf8_sequence(text, i, cp);
      const bool valid = len != 0;
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
