#include "test_resources.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <vector>

namespace flotilla::test::resources {

namespace fs = std::filesystem;

Reservation::Reservation(int fd, fs::path path) : fd_(fd), owner_(::getpid()), path_(std::move(path)) {}

Reservation::Reservation(Reservation&& other) noexcept : fd_(other.fd_), owner_(other.owner_), path_(std::move(other.path_)) {
  other.fd_ = -1;
}

Reservation& Reservation::operator=(Reservation&& other) noexcept {
  if (this != &other) {
    release();
    fd_ = other.fd_;
    owner_ = other.owner_;
    path_ = std::move(other.path_);
    other.fd_ = -1;
  }
  return *this;
}

Reservation::~Reservation() { release(); }

void Reservation::release() noexcept {
  if (fd_ < 0) return;
  // Unlinked while still locked: a process that opened the file before the unlink finds, once it
  // gets the lock, that the path no longer names its file, and tries again (see try_reserve).
  if (::getpid() == owner_) ::unlink(path_.c_str());
  ::close(fd_);
  fd_ = -1;
}

fs::path reservation_dir() {
  const char* dir = std::getenv("FLOTILLA_TEST_RESERVATIONS");
  return dir != nullptr && *dir != '\0' ? fs::path(dir) : fs::path("/tmp/flotilla-test-reservations");
}

namespace {

fs::path ensure_dir() {
  const fs::path dir = reservation_dir();
  std::error_code ec;
  if (fs::create_directories(dir, ec)) ::chmod(dir.c_str(), 01777);  // shared by every user's tests
  if (!fs::is_directory(dir))
    throw std::runtime_error("test resources: cannot create the reservation directory " + dir.string() + ": " + ec.message() +
                             "; set FLOTILLA_TEST_RESERVATIONS to a writable directory");
  return dir;
}

/// The lock on `dir`/`name` if no other process holds it; nullopt if one does.
std::optional<Reservation> try_reserve(const fs::path& dir, const std::string& name) {
  const fs::path path = dir / name;
  for (int attempt = 0; attempt < 100; ++attempt) {
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) throw std::runtime_error("test resources: cannot open " + path.string() + ": " + std::strerror(errno));
    ::fchmod(fd, 0666);  // another user's tests may lock it next; fails harmlessly if not ours
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd);
      return std::nullopt;
    }
    // The holder may have released (unlinked) the file between our open and our lock: then we
    // locked an orphan and must lock the file the path names now.
    struct stat locked{}, named{};
    if (::fstat(fd, &locked) == 0 && ::stat(path.c_str(), &named) == 0 && locked.st_ino == named.st_ino && locked.st_dev == named.st_dev) {
      // The holder's pid, for people looking at the directory; the lock alone decides.
      const std::string owner = std::to_string(::getpid()) + "\n";
      [[maybe_unused]] const bool noted = ::ftruncate(fd, 0) == 0 && ::write(fd, owner.data(), owner.size()) > 0;
      return Reservation(fd, path);
    }
    ::close(fd);
  }
  throw std::runtime_error("test resources: " + path.string() + " keeps being replaced; is something deleting " + dir.string() + "?");
}

/// A start index that differs between processes and calls, so concurrent reservers rarely try
/// the same candidates first (correctness comes from the locks, not from this).
std::size_t spread(std::size_t count) {
  static std::atomic<std::size_t> calls{0};
  const auto now = static_cast<std::size_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  const std::size_t mixed = (static_cast<std::size_t>(::getpid()) * 2654435761u) ^ (now >> 10) ^ (calls++ * 40503u);
  return mixed % count;
}

/// A candidate that no other process held, and the lock that now makes it this process's.
struct Taken {
  std::size_t index;
  Reservation lock;
};

/// The first of `count` candidates, from a spread start, whose lock file `name_of(n)` no other
/// process holds and which is `usable` (when given); nullopt if there is none.
std::optional<Taken> first_free(std::size_t count, const std::function<std::string(std::size_t)>& name_of,
                                const std::function<bool(std::size_t)>& usable = {}) {
  const fs::path dir = ensure_dir();
  const std::size_t start = spread(count);
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t n = (start + i) % count;
    auto lock = try_reserve(dir, name_of(n));
    if (lock && (!usable || usable(n))) return Taken{n, std::move(*lock)};
  }
  return std::nullopt;
}

bool binds(int type, const std::string& address, int port) {
  const int fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, address.c_str(), &a.sin_addr) != 1) {
    ::close(fd);
    throw std::invalid_argument("test resources: " + address + " is not an IPv4 address");
  }
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

constexpr int kFirstSecondOctet = 100;
constexpr int kSecondOctets = 155;  // 100-254
constexpr int kFirstPort = 20000;
constexpr int kPorts = 32768 - kFirstPort;

std::mutex process_mutex;

/// Keeps `lock` until this process exits.
void hold_for_process(Reservation lock) {
  static std::vector<Reservation> held;
  const std::lock_guard guard(process_mutex);
  held.push_back(std::move(lock));
}

}  // namespace

std::string Subnet::net() const { return "127." + std::to_string(second_) + "." + std::to_string(third_); }

std::string Subnet::prefix() const { return net() + "."; }

std::string Subnet::address(int host) const {
  if (host < 1 || host > 254) throw std::invalid_argument("test resources: host " + std::to_string(host) + " is outside 1-254");
  return prefix() + std::to_string(host);
}

std::string Subnet::cidr() const { return prefix() + "0/24"; }

Subnet reserve_subnet() {
  auto name = [](std::size_t n) { return "subnet-127." + std::to_string(kFirstSecondOctet + n / 256) + "." + std::to_string(n % 256); };
  if (auto taken = first_free(kSecondOctets * 256, name))
    return Subnet(kFirstSecondOctet + static_cast<int>(taken->index / 256), static_cast<int>(taken->index % 256), std::move(taken->lock));
  throw std::runtime_error("test resources: every loopback /24 in 127.100-254.x is held by a test process (lock files in " +
                           reservation_dir().string() + ")");
}

Port reserve_port(const std::string& address) {
  auto port = [](std::size_t n) { return kFirstPort + static_cast<int>(n); };
  // Held by no test, but something else on this machine may listen there: skip it.
  auto usable = [&](std::size_t n) { return binds(SOCK_STREAM, address, port(n)) && binds(SOCK_DGRAM, address, port(n)); };
  if (auto taken = first_free(kPorts, [&](std::size_t n) { return "port-" + std::to_string(port(n)); }, usable))
    return Port(port(taken->index), std::move(taken->lock));
  throw std::runtime_error("test resources: no port in " + std::to_string(kFirstPort) + "-32767 is free on " + address +
                           " (lock files in " + reservation_dir().string() + ")");
}

const Subnet& process_subnet(std::string_view purpose) {
  static std::map<std::string, Subnet, std::less<>> held;
  const std::lock_guard lock(process_mutex);
  auto it = held.find(purpose);
  if (it == held.end()) it = held.emplace(std::string(purpose), reserve_subnet()).first;
  return it->second;
}

int free_port(const std::string& address) {
  static std::vector<Port> held;
  Port port = reserve_port(address);
  const int number = port.number();
  const std::lock_guard lock(process_mutex);
  held.push_back(std::move(port));
  return number;
}

std::string netns_subnet() {
  auto net = [](std::size_t n) { return "10.214." + std::to_string(100 + n); };
  if (auto taken = first_free(155, [&](std::size_t n) { return "subnet-" + net(n); })) {  // 10.214.100-254
    hold_for_process(std::move(taken->lock));
    return net(taken->index) + ".0/24";
  }
  throw std::runtime_error("test resources: every netns subnet 10.214.100-254.0/24 is held by a test process (lock files in " +
                           reservation_dir().string() + ")");
}

std::string unique_name(std::string_view prefix, std::size_t max_length) {
  if (prefix.size() >= max_length)
    throw std::invalid_argument("test resources: name prefix \"" + std::string(prefix) + "\" leaves no room for digits in " +
                                std::to_string(max_length) + " characters");
  std::size_t count = 1;
  for (std::size_t d = prefix.size(); d < max_length && count < 100000; ++d) count *= 10;
  auto name = [&](std::size_t n) { return std::string(prefix) + std::to_string(n); };
  if (auto taken = first_free(count, [&](std::size_t n) { return "name-" + name(n); })) {
    hold_for_process(std::move(taken->lock));
    return name(taken->index);
  }
  throw std::runtime_error("test resources: every name " + std::string(prefix) + "N is held (lock files in " +
                           reservation_dir().string() + ")");
}

}  // namespace flotilla::test::resources
