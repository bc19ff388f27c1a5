#include "support/http_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cctype>
#include <cstring>
#include <sstream>
#include <stdexcept>

namespace flotilla::test {
namespace {

bool send_all(int fd, const std::string& data) {
  size_t at = 0;
  while (at < data.size()) {
    const ssize_t n = ::send(fd, data.data() + at, data.size() - at, MSG_NOSIGNAL);
    if (n <= 0) return false;
    at += static_cast<size_t>(n);
  }
  return true;
}

/// Reads until `buffer` holds `want` bytes; false when the peer closed or `stop` is set.
bool fill(int fd, std::string& buffer, size_t want, const std::atomic<bool>& stop) {
  char chunk[4096];
  while (buffer.size() < want) {
    pollfd p{fd, POLLIN, 0};
    const int rc = ::poll(&p, 1, 100);
    if (stop) return false;
    if (rc <= 0) continue;
    const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    buffer.append(chunk, static_cast<size_t>(n));
  }
  return true;
}

const char* reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 404: return "Not Found";
    case 500: return "Internal Server Error";
    default: return "Status";
  }
}

}  // namespace

HttpTestServer::HttpTestServer(Handler handler) : handler_(std::move(handler)) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listen_fd_, 16) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    if (listen_fd_ >= 0) ::close(listen_fd_);
    throw std::runtime_error(std::string("test HTTP server: cannot listen on 127.0.0.1: ") + std::strerror(errno));
  }
  port_ = ntohs(a.sin_port);
  start();
}

HttpTestServer::HttpTestServer(const std::filesystem::path& socket_path, Handler handler)
    : handler_(std::move(handler)), socket_path_(socket_path) {
  listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (socket_path.string().size() >= sizeof a.sun_path) throw std::runtime_error("test HTTP server: socket path too long");
  std::strcpy(a.sun_path, socket_path.c_str());
  if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listen_fd_, 16) != 0) {
    if (listen_fd_ >= 0) ::close(listen_fd_);
    throw std::runtime_error("test HTTP server: cannot listen on " + socket_path.string() + ": " + std::strerror(errno));
  }
  start();
}

void HttpTestServer::start() {
  thread_ = std::thread([this] { serve(); });
}

HttpTestServer::~HttpTestServer() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  for (auto& w : workers_) w.join();
  ::close(listen_fd_);
  if (!socket_path_.empty()) ::unlink(socket_path_.c_str());
}

std::string HttpTestServer::url() const {
  return socket_path_.empty() ? "http://127.0.0.1:" + std::to_string(port_) : std::string("http://localhost");
}

std::vector<ServedRequest> HttpTestServer::requests() const {
  std::lock_guard lock(mu_);
  return requests_;
}

void HttpTestServer::serve() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    ++connections_;
    workers_.emplace_back([this, fd] {
      handle(fd);
      ::close(fd);
    });
  }
}

void HttpTestServer::handle(int fd) {
  std::string buffer;
  while (!stop_) {
    size_t end;
    while ((end = buffer.find("\r\n\r\n")) == std::string::npos)
      if (!fill(fd, buffer, buffer.size() + 1, stop_)) return;
    ServedRequest req;
    std::istringstream head(buffer.substr(0, end));
    std::string line, version;
    std::getline(head, line);
    std::istringstream(line) >> req.method >> req.target >> version;
    while (std::getline(head, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      const auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string name = line.substr(0, colon);
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      req.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1) == std::string::npos ? line.size() : line.find_first_not_of(' ', colon + 1));
    }
    buffer.erase(0, end + 4);
    const size_t length = req.headers.count("content-length") ? std::stoul(req.headers["content-length"]) : 0;
    if (!fill(fd, buffer, length, stop_)) return;
    req.body = buffer.substr(0, length);
    buffer.erase(0, length);
    {
      std::lock_guard lock(mu_);
      requests_.push_back(req);
    }
    const ServedResponse res = handler_(req);
    std::this_thread::sleep_for(res.delay);
    if (res.drop) return;
    std::string out = "HTTP/1.1 " + std::to_string(res.status) + " " + reason(res.status) + "\r\n";
    for (const auto& [k, v] : res.headers) out += k + ": " + v + "\r\n";
    if (res.chunks.empty()) {
      out += "Content-Length: " + std::to_string(res.body.size()) + "\r\n\r\n" + res.body;
      if (!send_all(fd, out)) return;
      continue;
    }
    out += "Transfer-Encoding: chunked\r\n\r\n";
    if (!send_all(fd, out)) return;
    for (const auto& chunk : res.chunks) {
      std::ostringstream hex;
      hex << std::hex << chunk.size() << "\r\n" << chunk << "\r\n";
      if (stop_ || !send_all(fd, hex.str())) return;
      std::this_thread::sleep_for(res.pause);
    }
    if (!send_all(fd, "0\r\n\r\n")) return;
  }
}

}  // namespace flotilla::test
