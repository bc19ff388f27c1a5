#include "addon_haproxy/runtime_api.hpp"

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
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path_.size() >= sizeof(addr.sun_path)) {
    throw RuntimeApiError("socket path " + path_ + " is longer than " + std::to_string(sizeof(addr.sun_path) - 1) +
                          " bytes; use a shorter state directory");
  }
  std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);

  Socket sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (sock.fd < 0) throw RuntimeApiError("cannot create a unix socket: " + errno_text());
  if (::connect(sock.fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    throw RuntimeApiError("cannot connect to HAProxy at " + path_ + ": " + errno_text());
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  const std::string line = std::string(command) + "\n";
  std::size_t sent = 0;
  while (sent < line.size()) {
    wait_for(sock.fd, POLLOUT, deadline, command);
    const ssize_t n = ::send(sock.fd, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw RuntimeApiError("cannot send '" + std::string(command) + "' to " + path_ + ": " + errno_text());
    sent += static_cast<std::size_t>(n);
  }
  ::shutdown(sock.fd, SHUT_WR);
  std::string answer;
  char buf[16384];
  for (;;) {
    wait_for(sock.fd, POLLIN, deadline, command);
    const ssize_t n = ::recv(sock.fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw RuntimeApiError("cannot read the answer to '" + std::string(command) + "': " + errno_text());
    if (n == 0) break;
    answer.append(buf, static_cast<std::size_t>(n));
  }
  return answer;
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

void RuntimeApi::wait_for(int fd, short events, std::chrono::steady_clock::time_point deadline, std::string_view command) const {
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      throw RuntimeApiError("HAProxy at " + path_ + " did not answer '" + std::string(command) + "' within " +
                            std::to_string(timeout_.count()) + " ms");
    }
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n > 0) return;
    if (n < 0 && errno != EINTR) throw RuntimeApiError("poll on " + path_ + " failed: " + errno_text());
  }
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
