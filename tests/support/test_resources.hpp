// The one place tests take loopback subnets, ports and names from. Each reservation is a lock
// file under a shared directory (default /tmp/flotilla-test-reservations, or
// $FLOTILLA_TEST_RESERVATIONS) held with flock(2) by the reserving process: two test processes,
// of one suite or of two suites run side by side, never get the same subnet, port or name, and a
// test that crashes frees what it held because the kernel drops its locks. Taking the lock is
// the check: there is no "is it free?" question asked before use.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace flotilla::test::resources {

/// A held lock file; the resource is released (lock dropped, file removed) when this is
/// destroyed or the process ends.
class Reservation {
 public:
  Reservation() = default;
  Reservation(int fd, std::filesystem::path path);
  Reservation(Reservation&& other) noexcept;
  Reservation& operator=(Reservation&& other) noexcept;
  Reservation(const Reservation&) = delete;
  Reservation& operator=(const Reservation&) = delete;
  ~Reservation();
  [[nodiscard]] bool held() const { return fd_ >= 0; }

 private:
  void release() noexcept;
  int fd_ = -1;
  int owner_ = -1;  // the pid that took it: a forked child leaving must not remove the file
  std::filesystem::path path_;
};

/// A /24 of 127.0.0.0/8 (127.A.B.0/24 with A in 100-254) that no other test process holds.
/// Addresses in it and every port on them belong to the holder: servers bound to them may use
/// fixed ports. The local driver takes it as its `cidr`.
class Subnet {
 public:
  Subnet(int second, int third, Reservation lock) : second_(second), third_(third), lock_(std::move(lock)) {}
  /// "127.A.B." (append a host number).
  [[nodiscard]] std::string prefix() const;
  /// "127.A.B" (no trailing dot).
  [[nodiscard]] std::string net() const;
  /// "127.A.B.host"; host in 1-254.
  [[nodiscard]] std::string address(int host) const;
  /// "127.A.B.0/24"
  [[nodiscard]] std::string cidr() const;

 private:
  int second_;
  int third_;
  Reservation lock_;
};

/// A TCP+UDP port in 20000-32767 (below the kernel's ephemeral range, so no outgoing
/// connection is handed it) that no other test process holds and that binds on `address` now.
class Port {
 public:
  Port(int number, Reservation lock) : number_(number), lock_(std::move(lock)) {}
  [[nodiscard]] int number() const { return number_; }

 private:
  int number_;
  Reservation lock_;
};

/// A new subnet, held until the result is destroyed. Throws std::runtime_error (naming the
/// reservation directory) if every subnet is held.
[[nodiscard]] Subnet reserve_subnet();

/// A new port on `address` (a 127.x address), held until the result is destroyed. Throws
/// std::runtime_error if none is left.
[[nodiscard]] Port reserve_port(const std::string& address = "127.0.0.1");

/// The subnet this process uses for `purpose` (e.g. "cluster", "lab"): reserved at the first
/// call, the same one on later calls, held until the process ends. Test cases run in processes
/// of their own under ctest, so this is one subnet per test case.
[[nodiscard]] const Subnet& process_subnet(std::string_view purpose = "default");

/// A new port on `address`, held until the process ends: the replacement for "bind port 0 and
/// hope", safe against other test processes picking it before the server starts.
[[nodiscard]] int free_port(const std::string& address = "127.0.0.1");

/// "10.214.K.0/24" (K in 100-254) for a cluster of the netns driver, which puts a bridge and
/// routes on it: no other test process holds it; held until the process ends. (The shipped
/// configs/netns.toml uses 10.214.0.0/24, the Docker lab 10.213.K.0/24.)
[[nodiscard]] std::string netns_subnet();

/// A name `prefix` + digits, at most `max_length` characters (15 fits a Linux interface name),
/// that no other test process holds, held until the process ends. For network namespaces,
/// bridges and containers that live in a machine-wide namespace. Throws std::invalid_argument if
/// `prefix` leaves no room for digits, std::runtime_error if every name is held.
[[nodiscard]] std::string unique_name(std::string_view prefix, std::size_t max_length = 15);

/// The directory holding the lock files.
[[nodiscard]] std::filesystem::path reservation_dir();

}  // namespace flotilla::test::resources
