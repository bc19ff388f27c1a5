// SSH key pairs of the support library, checked by Debian's ssh-keygen both ways: it reads the
// keys Flotilla writes, and Flotilla reads the keys it writes.
#include "flotilla/support/command.hpp"
#include "flotilla/support/files.hpp"
#include "flotilla/support/ssh_keys.hpp"
#include "support/process_util.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>

namespace fs = std::filesystem;
namespace s = flotilla::support;
using flotilla::test::proc::run_tool;
using flotilla::test::proc::ScratchDir;

namespace {

/// "TYPE BASE64" of a public key line (without its comment).
std::string key_of(const std::string& line) {
  const auto first = line.find(' ');
  const auto second = line.find_first_of(" \n", first + 1);
  return line.substr(0, second);
}

}  // namespace

TEST_CASE("ssh keys: an Ed25519 pair made once, with a 0600 private key that ssh-keygen reads", "[support][ssh]") {
  ScratchDir dir("flt-ssh");
  const fs::path key = dir / "keys" / "id_ed25519";
  const auto pair = s::ensure_ssh_key_pair(key, "flotilla cluster demo");
  struct stat st{};
  REQUIRE(::stat(key.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0600);
  CHECK(pair.public_key.starts_with("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5"));
  CHECK(pair.public_key.ends_with(" flotilla cluster demo"));
  CHECK(s::read_file(key.string() + ".pub") == pair.public_key + "\n");

  const auto derived = run_tool("ssh-keygen", {"-y", "-f", key.string()});
  INFO(derived.out << derived.err);
  REQUIRE(derived.ok());
  CHECK(key_of(derived.out) == key_of(pair.public_key));
  const auto listed = run_tool("ssh-keygen", {"-l", "-E", "sha256", "-f", key.string() + ".pub"});
  REQUIRE(listed.ok());
  CHECK_THAT(listed.out, Catch::StartsWith("256 " + pair.fingerprint + " flotilla cluster demo (ED25519)"));

  // Made once: the same key and file next time; a lost .pub is written again from the key.
  const std::string text = s::read_file(key);
  fs::remove(key.string() + ".pub");
  const auto again = s::ensure_ssh_key_pair(key, "another comment");
  CHECK(s::read_file(key) == text);
  CHECK(again.public_key == pair.public_key);
  CHECK(s::read_file(key.string() + ".pub") == pair.public_key + "\n");
}

TEST_CASE("ssh keys: a key ssh-keygen made is used as it is, and a damaged one is an error that changes nothing",
          "[support][ssh]") {
  ScratchDir dir("flt-ssh");
  const fs::path key = dir / "id_ed25519";
  REQUIRE(run_tool("ssh-keygen", {"-q", "-t", "ed25519", "-N", "", "-C", "made by ssh-keygen", "-f", key.string()}).ok());
  const std::string theirs = s::read_file(key.string() + ".pub");
  const auto pair = s::ensure_ssh_key_pair(key, "unused");
  CHECK(key_of(pair.public_key) == key_of(theirs));
  CHECK(pair.public_key.ends_with(" made by ssh-keygen"));

  const fs::path damaged = dir / "damaged";
  s::write_file_atomic(damaged, "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n", 0600);
  CHECK_THROWS_WITH(s::ensure_ssh_key_pair(damaged, "x"), Catch::Contains(damaged.string()) && Catch::Contains("restore it"));
  CHECK(s::read_file(damaged).find("AAAA") != std::string::npos);
  CHECK_FALSE(fs::exists(damaged.string() + ".pub"));

  // A passphrase-protected key is not one Flotilla can use unattended.
  const fs::path locked = dir / "locked";
  REQUIRE(run_tool("ssh-keygen", {"-q", "-t", "ed25519", "-N", "secret phrase", "-f", locked.string()}).ok());
  CHECK_THROWS_AS(s::ensure_ssh_key_pair(locked, "x"), s::SshKeyError);
}
