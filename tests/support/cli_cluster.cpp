#include "support/cli_cluster.hpp"

#include <catch2/catch.hpp>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>

extern char** environ;

namespace flotilla::test::cli {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::string cli_doc() {
  const std::string text = proc::read_text(fs::path(FLOTILLA_SOURCE_DIR) / "docs" / "cli.md");
  REQUIRE_FALSE(text.empty());
  return text;
}

}  // namespace

Cluster::Cluster(const std::string& name, const std::string& body)
    : subnet_(resources::reserve_subnet()), dir_("flotilla-cli-" + name), name_(name) {
  rewrite(body);
}

void Cluster::rewrite(const std::string& body) const {
  std::ofstream(file(), std::ios::trunc) << "[cluster]\nname = \"" << name_ << "\"\ndriver = \"local\"\n\n[driver.local]\ncidr = \"" << subnet_.cidr()
                                         << "\"\n\n" << body;
}

Cluster::~Cluster() {
  const Run down = run("down -q \"$TOPOLOGY\"");
  INFO("down when the test ended: exit " << down.code << "\n" << down.out << down.err);
  CHECK(down.code == 0);
  CHECK_FALSE(fs::exists(state_dir()));
  std::set<pid_t> left;
  CHECK(proc::wait_until([&] { return (left = processes()).empty(); }, std::chrono::seconds(5)));
  for (pid_t p : left) {
    UNSCOPED_INFO("left running after down: pid " << p << ": " << proc::read_text("/proc/" + std::to_string(p) + "/cmdline"));
    ::kill(p, SIGKILL);
  }
  CHECK(left.empty());
}

Run Cluster::run(const std::string& args, const std::string& env) const {
  const fs::path script = dir() / "run.sh", out = dir() / "run.out", err = dir() / "run.err";
  std::ofstream(script, std::ios::trunc) << "cd \"" << dir().string() << "\"\nDIR=\"" << dir().string() << "\"\nTOPOLOGY=\""
                                         << file().string() << "\"\n"
                                         << env_ << " " << env << " exec timeout 60 " << FLOTILLA_BINARY_DIR << "/bin/flotilla " << args
                                         << " " << options_ << "\n";
  const int status = std::system(("sh " + script.string() + " >" + out.string() + " 2>" + err.string() + " </dev/null").c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, proc::read_text(out), proc::read_text(err)};
}

json Cluster::status() const {
  const Run r = run("status \"$TOPOLOGY\" --output json");
  INFO(r.err);
  REQUIRE(r.code == 0);
  return json::parse(r.out);
}

std::set<pid_t> Cluster::processes() const {
  std::set<pid_t> found;
  const std::string address = subnet_.prefix(), where = dir().string();
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = std::stoi(name);
    if (pid == ::getpid()) continue;
    std::string cmdline = proc::read_text(entry.path() / "cmdline");
    for (char& ch : cmdline)
      if (ch == '\0') ch = ' ';
    std::error_code ec;
    const std::string cwd = fs::read_symlink(entry.path() / "cwd", ec).string();  // workloads run in their directory
    if ((cmdline.find(address) != std::string::npos || cmdline.find(where) != std::string::npos || cwd.rfind(where, 0) == 0) &&
        proc::running(pid))
      found.insert(pid);
  }
  return found;
}

std::set<pid_t> Cluster::unaccounted(const std::set<pid_t>& recorded) const {
  const std::set<pid_t> found = processes();
  for (pid_t p : recorded) {
    INFO("recorded pid " << p << " does not run");
    CHECK(found.count(p) == 1);
  }
  std::set<pid_t> out;
  for (pid_t p : found) {
    pid_t at = p;
    while (at > 1 && recorded.count(at) == 0) {
      const auto stat = proc::read_stat(at);
      at = stat ? stat->ppid : 0;
    }
    if (recorded.count(at) == 0) {
      UNSCOPED_INFO("pid " << p << " runs unrecorded: " << proc::read_text("/proc/" + std::to_string(p) + "/cmdline"));
      out.insert(p);
    }
  }
  return out;
}

std::set<pid_t> recorded_pids(const json& status) {
  std::set<pid_t> pids;
  for (const auto& s : status.at("services"))
    for (const auto& i : s.at("instances"))
      if (i.value("state", "") == "running") pids.insert(i.value("pid", 0));
  for (const auto& a : status.at("addons"))
    for (const auto& c : a.at("components"))
      if (c.value("state", "") == "running") pids.insert(c.value("pid", 0));
  return pids;
}

std::map<int, std::string> documented_exit_codes() {
  const std::string doc = cli_doc();
  const auto table = doc.find("## Exit codes");
  REQUIRE(table != std::string::npos);
  std::map<int, std::string> codes;
  std::istringstream in(doc.substr(table));
  const std::regex row(R"(^\| (\d+) \| (.+) \|$)");
  std::smatch m;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("## ", 0) == 0 && !codes.empty()) break;
    if (std::regex_match(line, m, row)) codes[std::stoi(m[1])] = m[2];
  }
  return codes;
}

int exit_code(const std::string& meaning) {
  for (const auto& [code, text] : documented_exit_codes())
    if (text.rfind(meaning, 0) == 0) return code;
  FAIL("docs/cli.md documents no exit code meaning \"" << meaning << "...\"");
  return -1;
}

std::map<std::string, std::vector<std::string>> documented_json_keys(const std::string& command) {
  const std::string doc = cli_doc();
  const std::string name = "`" + command + " --output json`";
  std::size_t at = 0;
  for (at = doc.find(name); at != std::string::npos; at = doc.find(name, at + 1)) {
    std::size_t next = at + name.size();
    while (next < doc.size() && std::isspace(static_cast<unsigned char>(doc[next]))) ++next;
    if (doc.compare(next, 4, "has ") == 0) {
      at = next + 4;
      break;
    }
  }
  INFO("docs/cli.md: \"" << name << " has ...\"");
  REQUIRE(at != std::string::npos);
  std::map<std::string, std::vector<std::string>> keys;
  std::string top;
  int depth = 0;
  for (std::size_t i = at; i < doc.size(); ++i) {
    const char ch = doc[i];
    if (ch == '`') {
      const std::size_t end = doc.find('`', i + 1);
      REQUIRE(end != std::string::npos);
      const std::string token = doc.substr(i + 1, end - i - 1);
      if (depth == 0) keys[top = token];
      else if (depth == 1 && top.size() > 2 && top.substr(top.size() - 2) == "[]") keys[top].push_back(token);
      i = end;
    } else if (ch == '(') {
      ++depth;
    } else if (ch == ')') {
      --depth;
    } else if (depth == 0 && (ch == ';' || ch == '.')) {
      break;
    }
  }
  REQUIRE_FALSE(keys.empty());
  return keys;
}

json documented_status_example() {
  const std::string doc = cli_doc();
  const auto section = doc.find("## `status --output json`");
  REQUIRE(section != std::string::npos);
  const auto begin = doc.find("```json\n", section);
  REQUIRE(begin != std::string::npos);
  const auto end = doc.find("```", begin + 8);
  REQUIRE(end != std::string::npos);
  return json::parse(doc.substr(begin + 8, end - begin - 8));
}

std::vector<std::string> missing_keys(const json& documented, const json& actual, const std::string& at) {
  std::vector<std::string> missing;
  auto kind = [](const json& j) { return std::string(j.is_number() ? "number" : j.type_name()); };
  if (!documented.is_null() && kind(documented) != kind(actual)) {
    missing.push_back((at.empty() ? "." : at) + " (documented " + kind(documented) + ", got " + kind(actual) + ")");
    return missing;
  }
  if (documented.is_object()) {
    for (const auto& [key, value] : documented.items()) {
      const std::string path = at + "." + key;
      if (!actual.contains(key)) missing.push_back(path);
      else if (key == "endpoints") {
        if (!actual[key].is_object()) missing.push_back(path + " (not an object)");
      } else {
        for (auto& m : missing_keys(value, actual[key], path)) missing.push_back(std::move(m));
      }
    }
  } else if (documented.is_array() && !documented.empty()) {
    for (std::size_t i = 0; i < actual.size(); ++i)
      for (auto& m : missing_keys(documented[0], actual[i], at + "[" + std::to_string(i) + "]")) missing.push_back(std::move(m));
  }
  return missing;
}

std::vector<std::string> missing_documented_keys(const std::string& command, const json& doc) {
  std::vector<std::string> missing;
  if (!doc.is_object()) return {". (not an object)"};
  for (const auto& [key, elements] : documented_json_keys(command)) {
    const bool array = key.size() > 2 && key.substr(key.size() - 2) == "[]";
    const std::string name = array ? key.substr(0, key.size() - 2) : key;
    if (!doc.contains(name)) {
      missing.push_back("." + name);
      continue;
    }
    if (array && !doc[name].is_array()) missing.push_back("." + name + " (not an array)");
    if (!array || !doc[name].is_array()) continue;
    for (std::size_t i = 0; i < doc[name].size(); ++i)
      for (const auto& e : elements)
        if (!doc[name][i].is_object() || !doc[name][i].contains(e)) missing.push_back("." + name + "[" + std::to_string(i) + "]." + e);
  }
  return missing;
}

Terminal::Terminal(const std::vector<std::string>& argv, const std::vector<std::string>& env_add, const fs::path& cwd) {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) env.emplace_back(*e);
  env.insert(env.end(), env_add.begin(), env_add.end());
  env.emplace_back("TERM=xterm");
  std::vector<char*> args, envp;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  struct winsize size {};
  size.ws_row = 40;
  size.ws_col = 160;
  pid_ = ::forkpty(&master_, nullptr, nullptr, &size);
  if (pid_ < 0) throw std::runtime_error("forkpty failed");
  if (pid_ == 0) {
    if (::chdir(cwd.c_str()) != 0) ::_exit(126);
    ::execve(args[0], args.data(), envp.data());
    ::_exit(127);
  }
  ::fcntl(master_, F_SETFL, ::fcntl(master_, F_GETFL) | O_NONBLOCK);
}

Terminal::~Terminal() {
  if (!reaped_) {
    ::kill(-pid_, SIGKILL);  // forkpty made it a session (and group) leader
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  if (master_ >= 0) ::close(master_);
}

void Terminal::type(const std::string& bytes) const { (void)!::write(master_, bytes.data(), bytes.size()); }

const std::string& Terminal::read(std::chrono::milliseconds timeout) {
  struct pollfd p {master_, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return output_;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(master_, buf, sizeof buf);
    if (n <= 0) break;  // EAGAIN: drained for now; EIO: the terminal's other side is closed
    output_.append(buf, static_cast<std::size_t>(n));
  }
  return output_;
}

std::optional<int> Terminal::wait(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!reaped_ && std::chrono::steady_clock::now() < deadline) {
    read(std::chrono::milliseconds(20));
    if (::waitpid(pid_, &status_, WNOHANG) == pid_) reaped_ = true;
  }
  if (!reaped_) return std::nullopt;
  read(std::chrono::milliseconds(50));
  return WIFEXITED(status_) ? WEXITSTATUS(status_) : 128 + WTERMSIG(status_);
}

}  // namespace flotilla::test::cli
