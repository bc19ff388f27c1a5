#include "consul_replay.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

namespace flotilla::test::discovery {

using nlohmann::json;

namespace {

std::multimap<std::string, std::string> parse_query(const std::string& q) {
  std::multimap<std::string, std::string> out;
  std::istringstream in(q);
  std::string item;
  while (std::getline(in, item, '&')) {
    if (item.empty()) continue;
    const auto eq = item.find('=');
    out.emplace(item.substr(0, eq), eq == std::string::npos ? "" : item.substr(eq + 1));
  }
  return out;
}

std::pair<std::string, std::string> split_target(const std::string& target) {
  const auto q = target.find('?');
  return {target.substr(0, q), q == std::string::npos ? "" : target.substr(q + 1)};
}

bool send_all(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

ConsulReplay ConsulReplay::from_recording(const std::string& name) {
  const std::string path = std::string(FLOTILLA_SOURCE_DIR) + "/tests/data/consul/" + name + ".json";
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read recording " + path);
  json doc = json::parse(in, nullptr, false);
  if (doc.is_discarded() || !doc.contains("exchanges")) throw std::runtime_error("recording " + path + " is not valid");
  return ConsulReplay(std::move(doc));
}

ConsulReplay::ConsulReplay(json recording) {
  exchanges_ = recording.is_object() ? recording.value("exchanges", json::array()) : recording;
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) throw std::runtime_error("replay server: socket failed");
  const int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = 0;
  ::inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listen_fd_, 16) != 0) {
    ::close(listen_fd_);
    throw std::runtime_error("replay server: cannot listen on 127.0.0.1");
  }
  socklen_t len = sizeof a;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  thread_ = std::thread([this] { serve(); });
}

ConsulReplay::~ConsulReplay() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  ::close(listen_fd_);
}

std::string ConsulReplay::url() const { return "http://127.0.0.1:" + std::to_string(port_); }

std::vector<std::string> ConsulReplay::mismatches() const {
  std::lock_guard lock(mu_);
  return mismatches_;
}

void ConsulReplay::serve() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) != 1) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    handle(fd);
    ::close(fd);
  }
}

void ConsulReplay::handle(int fd) {
  // Read the head, then Content-Length bytes of body; bounded by a 5 s poll per read.
  std::string data;
  char buf[4096];
  size_t head_end = std::string::npos;
  size_t need = 0;
  while (true) {
    if (head_end != std::string::npos && data.size() >= head_end + 4 + need) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 5000) != 1) return;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return;
    data.append(buf, static_cast<size_t>(n));
    if (head_end == std::string::npos && (head_end = data.find("\r\n\r\n")) != std::string::npos) {
      std::string head = data.substr(0, head_end);
      std::transform(head.begin(), head.end(), head.begin(), [](unsigned char c) { return std::tolower(c); });
      const auto cl = head.find("content-length:");
      if (cl != std::string::npos) need = std::stoul(head.substr(cl + 15));
    }
  }
  const std::string line = data.substr(0, data.find("\r\n"));
  std::istringstream rl(line);
  std::string method, target;
  rl >> method >> target;
  const std::string body = data.substr(head_end + 4, need);

  const size_t index = served_.load();
  std::string problem;
  json response;
  if (index >= exchanges_.size()) {
    problem = "unexpected request " + method + " " + target + " after all " + std::to_string(exchanges_.size()) + " recorded exchanges";
  } else {
    const json& ex = exchanges_[index];
    const json& req = ex["request"];
    const auto [want_path, want_query] = split_target(req.value("path", ""));
    const auto [got_path, got_query] = split_target(target);
    if (req.value("method", "") != method || want_path != got_path || parse_query(want_query) != parse_query(got_query)) {
      problem = "exchange " + std::to_string(index) + ": expected " + req.value("method", "") + " " + req.value("path", "") +
                ", got " + method + " " + target;
    } else if (req.contains("body")) {
      const json& want = req["body"];
      bool same = false;
      if (want.is_string()) {
        same = want.get<std::string>() == body;
      } else {
        const json got = json::parse(body, nullptr, false);
        same = !got.is_discarded() && got == want;
      }
      if (!same) problem = "exchange " + std::to_string(index) + " (" + method + " " + target + "): body differs: got " + body;
    }
    if (problem.empty()) response = ex["response"];
  }
  std::string reply;
  if (!problem.empty()) {
    {
      std::lock_guard lock(mu_);
      mismatches_.push_back(problem);
    }
    reply = "HTTP/1.1 599 Replay Mismatch\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(problem.size()) +
            "\r\nConnection: close\r\n\r\n" + problem;
  } else {
    const int delay = response.value("delay_ms", 0);
    for (int waited = 0; waited < delay && !stop_; waited += 20) ::usleep(20 * 1000);
    const json b = response.contains("body") ? response["body"] : json("");
    const std::string text = b.is_string() ? b.get<std::string>() : b.dump();
    const int status = response.value("status", 200);
    reply = "HTTP/1.1 " + std::to_string(status) + " Recorded\r\n";
    bool typed = false;
    const json headers = response.value("headers", json::object());
    for (const auto& [k, v] : headers.items()) {
      reply += k + ": " + v.get<std::string>() + "\r\n";
      typed = typed || k == "Content-Type";
    }
    if (!typed) reply += std::string("Content-Type: ") + (b.is_string() ? "text/plain" : "application/json") + "\r\n";
    reply += "Content-Length: " + std::to_string(text.size()) + "\r\nConnection: close\r\n\r\n" + text;
    ++served_;
  }
  (void)send_all(fd, reply);
}

}  // namespace flotilla::test::discovery
