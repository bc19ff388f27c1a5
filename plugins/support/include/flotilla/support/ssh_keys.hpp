// SSH key pairs for machines Flotilla creates (EC2 instances, VirtualBox VMs): an Ed25519 key
// made with OpenSSL's library, the private key written in OpenSSH's own format
// ("openssh-key-v1", unencrypted, as `ssh-keygen -t ed25519 -N ''` writes it) with mode 0600,
// and the public key as the one line authorized_keys, cloud-init and EC2's ImportKeyPair take.
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>

namespace flotilla::support {

/// A key pair that cannot be read or made; the message names the file.
class SshKeyError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct SshKeyPair {
  std::filesystem::path private_key;  ///< the file given to ensure_ssh_key_pair (mode 0600)
  std::string public_key;             ///< "ssh-ed25519 AAAA... COMMENT"
  std::string fingerprint;            ///< "SHA256:..." as ssh-keygen -l prints it
};

/// The key pair in `private_key` (its public half in `private_key`.pub), made with `comment`
/// when the private key does not exist. An existing key is never replaced: one that cannot be
/// read is an error saying what to restore. The .pub file is written again from the private
/// key whenever it is missing or differs.
SshKeyPair ensure_ssh_key_pair(const std::filesystem::path& private_key, const std::string& comment);

}  // namespace flotilla::support
