// The test resource allocator: reservations exclude each other across processes, and a holder
// that dies without cleaning up frees what it held.
#include "support/process_util.hpp"
#include "support/test_resources.hpp"

#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <set>
#include <string>

namespace r = flotilla::test::resources;

namespace {

/// Points the allocator at a scratch directory for one test, so the fill-everything cases do
/// not starve the rest of the suite.
class PrivateReservations {
 public:
  PrivateReservations() : dir_("flotilla-reservations-test") { ::setenv("FLOTILLA_TEST_RESERVATIONS", dir_.path().c_str(), 1); }
  ~PrivateReservations() { ::unsetenv("FLOTILLA_TEST_RESERVATIONS"); }
  PrivateReservations(const PrivateReservations&) = delete;
  PrivateReservations& operator=(const PrivateReservations&) = delete;

 private:
  flotilla::test::proc::ScratchDir dir_;
};

/// Runs `body` in a forked child that leaves with _exit (no destructors, as after a crash) and
/// returns what it wrote to the pipe, one name per line.
template <typename Body>
std::set<std::string> in_child(Body body) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    std::string out;
    try {
      out = body();
    } catch (const std::exception& e) {
      out += std::string("error:") + e.what() + "\n";
    }
    [[maybe_unused]] const auto n = ::write(fds[1], out.data(), out.size());
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string text;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) text.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  std::set<std::string> lines;
  for (std::size_t at = 0, nl; (nl = text.find('\n', at)) != std::string::npos; at = nl + 1) lines.insert(text.substr(at, nl - at));
  return lines;
}

}  // namespace

TEST_CASE("a name held by one process is never given to another, and is free again once its holder dies", "[resources]") {
  const PrivateReservations scratch;
  // "abcd" + one digit in 5 characters: exactly ten names exist.
  std::set<std::string> mine;
  for (int i = 0; i < 4; ++i) mine.insert(r::unique_name("abcd", 5));
  REQUIRE(mine.size() == 4);

  const auto theirs = in_child([] {
    std::string out;
    for (int i = 0; i < 7; ++i) {
      try {
        out += r::unique_name("abcd", 5) + "\n";
      } catch (const std::exception& e) {
        out += std::string("error:") + e.what() + "\n";
      }
    }
    return out;
  });
  std::string got;
  for (const auto& line : theirs) got += line + "\n";
  INFO("the child got:\n" << got);
  // Six names were left; the seventh request finds every name held.
  CHECK(theirs.size() == 7);
  int errors = 0;
  for (const auto& name : theirs) {
    if (name.starts_with("error:")) {
      ++errors;
      CHECK_THAT(name, Catch::Contains("every name abcdN is held"));
    } else {
      CHECK(mine.count(name) == 0);
    }
  }
  CHECK(errors == 1);

  // The child ended without releasing anything: its six names are free again.
  for (int i = 0; i < 6; ++i) mine.insert(r::unique_name("abcd", 5));
  CHECK(mine.size() == 10);
  CHECK_THROWS_WITH(r::unique_name("abcd", 5), Catch::Contains("every name abcdN is held"));
}

TEST_CASE("subnets and ports are distinct while held, and a released subnet can be taken again", "[resources]") {
  const PrivateReservations scratch;
  std::set<std::string> cidrs;
  {
    std::vector<r::Subnet> held;
    for (int i = 0; i < 50; ++i) {
      held.push_back(r::reserve_subnet());
      cidrs.insert(held.back().cidr());
    }
    CHECK(cidrs.size() == 50);
    const auto& s = held.front();
    CHECK(s.address(7) == s.prefix() + "7");
    CHECK(s.cidr() == s.prefix() + "0/24");
    CHECK(s.prefix().starts_with("127."));
    CHECK_THROWS_AS(s.address(255), std::invalid_argument);

    const auto child = in_child([&] {
      std::string out;
      for (int i = 0; i < 200; ++i) out += r::reserve_subnet().cidr() + "\n";  // each released at once
      return out;
    });
    for (const auto& c : child) CHECK(cidrs.count(c) == 0);
  }
  // All fifty were released: the lock files are gone.
  CHECK(std::filesystem::is_empty(r::reservation_dir()));

  std::set<int> ports;
  for (int i = 0; i < 20; ++i) ports.insert(r::free_port());
  CHECK(ports.size() == 20);
  for (const int p : ports) CHECK((p >= 20000 && p < 32768));
  CHECK(&r::process_subnet("x") == &r::process_subnet("x"));
  CHECK(r::process_subnet("x").cidr() != r::process_subnet("y").cidr());
}

TEST_CASE("a name prefix that leaves no room for digits is refused", "[resources]") {
  CHECK_THROWS_AS(r::unique_name("flotilla-bridge0", 15), std::invalid_argument);
}
