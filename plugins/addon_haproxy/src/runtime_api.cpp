#include "addon_haproxy/runtime_api.hpp"

#include "flotilla/support/net.hpp"

namespace flotilla::haproxy {

std::string StatRow::get(std::string_view column) const {
  const auto it = fields.find(column);
  return it == fields.end() ? std::string() : it->second;
}

int ProcTable::current_worker() const {
  for (const auto& p : processes) {
    if (p.type == "worker" && !p.old) return p.pid;
  }
  return 0;
}

std::string RuntimeApi::send(std::string_view command) const {
  if (command.find_first_of("\n\r;") != std::string_view::npos) {
    throw RuntimeApiError("refusing to send a runtime API command with a newline or ';'");
  }
  try {
    return support::stream_exchange(path_, std::string(command) + "\n", timeout_);
  } catch (const support::StreamError& e) {
    throw RuntimeApiError("HAProxy at " + path_ + ", '" + std::string(command) + "': " + e.what());
  }
}

void RuntimeApi::run(std::string_view command, std::string_view success) const {
  const std::string answer = send(command);
  const std::string text = trim(answer);
  if (text.empty() && success.empty()) return;
  if (!success.empty() && text.starts_with(success)) return;
  throw RuntimeApiError("HAProxy refused '" + std::string(command) + "': " + (text.empty() ? "no answer" : text));
}

bool RuntimeApi::ready() const {
  try {
    return send("show info").find("Pid:") != std::string::npos;
  } catch (const RuntimeApiError&) {
    return false;
  }
}

int RuntimeApi::worker_pid() const {
  std::istringstream in(send("show info"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("Pid: ")) return std::atoi(line.c_str() + 5);
  }
  return 0;
}

std::vector<StatRow> RuntimeApi::show_stat(std::string_view backend) const {
  const std::string cmd = backend.empty() ? "show stat -1 4 -1" : "show stat " + std::string(backend) + " 4 -1";
  return parse_stat(send(cmd));
}

std::vector<StatRow> RuntimeApi::parse_stat(std::string_view text) {
  std::vector<StatRow> rows;
  std::vector<std::string> columns;
  for (const std::string& line : lines(text)) {
    if (line.starts_with("# ")) {
      columns = split(line.substr(2), ',');
      continue;
    }
    if (line.empty() || columns.empty()) continue;
    const auto values = split(line, ',');
    StatRow row;
    for (std::size_t i = 0; i < columns.size() && i < values.size(); ++i) {
      if (!columns[i].empty()) row.fields[columns[i]] = values[i];
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

std::vector<ServerState> RuntimeApi::parse_servers_state(std::string_view text) {
  std::vector<ServerState> out;
  std::map<std::string, std::size_t> col;
  for (const std::string& line : lines(text)) {
    if (line.starts_with("# ")) {
      const auto names = split(line.substr(2), ' ');
      for (std::size_t i = 0; i < names.size(); ++i) col[names[i]] = i;
      continue;
    }
    if (col.empty() || line.empty()) continue;
    const auto f = split(line, ' ');
    auto at = [&](const char* name) -> std::string {
      const auto it = col.find(name);
      return it != col.end() && it->second < f.size() ? f[it->second] : std::string();
    };
    ServerState s;
    s.backend = at("be_name");
    s.name = at("srv_name");
    s.address = at("srv_addr");
    s.port = std::atoi(at("srv_port").c_str());
    s.admin_state = std::atoi(at("srv_admin_state").c_str());
    if (!s.backend.empty() && !s.name.empty()) out.push_back(std::move(s));
  }
  return out;
}

ProcTable RuntimeApi::parse_proc(std::string_view text) {
  ProcTable table;
  bool old = false;
  for (const std::string& line : lines(text)) {
    if (line.starts_with("# old workers")) old = true;
    else if (line.starts_with("# workers") || line.starts_with("# programs")) old = false;
    if (line.empty() || line.front() == '#') continue;
    std::istringstream in(line);
    ProcInfo p;
    std::string reloads;
    in >> p.pid >> p.type >> reloads;
    if (!in || p.pid <= 0) continue;
    p.old = old;
    if (p.type == "master") {
      table.reloads = std::atoi(reloads.c_str());
      const auto failed = line.find("[failed: ");
      if (failed != std::string::npos) table.failed_reloads = std::atoi(line.c_str() + failed + 9);
    }
    table.processes.push_back(p);
  }
  return table;
}

std::string RuntimeApi::trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

std::vector<std::string> RuntimeApi::lines(std::string_view text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    const auto end = text.find('\n', start);
    const auto piece = text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    out.emplace_back(trim(piece));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return out;
}

std::vector<std::string> RuntimeApi::split(std::string_view text, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (const char c : text) {
    if (c == sep) {
      if (sep != ' ' || !cur.empty()) out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (sep != ' ' || !cur.empty()) out.push_back(std::move(cur));
  return out;
}
}  // namespace flotilla::haproxy
