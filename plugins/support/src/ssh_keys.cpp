#include "flotilla/support/ssh_keys.hpp"

#include "flotilla/support/encoding.hpp"
#include "flotilla/support/files.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

namespace flotilla::support {
namespace {

namespace fs = std::filesystem;

// OpenSSH's key format (PROTOCOL.key in OpenSSH's sources): a magic string, then SSH wire
// strings (a 32-bit big-endian length and the bytes).
constexpr std::string_view kMagic{"openssh-key-v1\0", 15};
constexpr std::string_view kType = "ssh-ed25519";
constexpr std::string_view kBegin = "-----BEGIN OPENSSH PRIVATE KEY-----";
constexpr std::string_view kEnd = "-----END OPENSSH PRIVATE KEY-----";
constexpr std::size_t kKeyBytes = 32;

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

void put_u32(std::string& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}

void put_string(std::string& out, std::string_view s) {
  put_u32(out, static_cast<std::uint32_t>(s.size()));
  out.append(s);
}

/// Reads SSH wire values from a buffer; every read fails (false) past its end.
struct WireReader {
  std::string_view data;
  bool u32(std::uint32_t& v) {
    if (data.size() < 4) return false;
    v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(data[static_cast<std::size_t>(i)]);
    data.remove_prefix(4);
    return true;
  }
  bool string(std::string_view& s) {
    std::uint32_t n = 0;
    if (!u32(n) || data.size() < n) return false;
    s = data.substr(0, n);
    data.remove_prefix(n);
    return true;
  }
};

std::string public_blob(std::string_view pub) {
  std::string blob;
  put_string(blob, kType);
  put_string(blob, pub);
  return blob;
}

/// The public key of an Ed25519 seed.
std::optional<std::string> public_of(std::string_view seed) {
  const Pkey key(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(seed.data()), seed.size()));
  std::array<unsigned char, kKeyBytes> pub{};
  std::size_t n = pub.size();
  if (!key || EVP_PKEY_get_raw_public_key(key.get(), pub.data(), &n) != 1 || n != kKeyBytes) return std::nullopt;
  return std::string(reinterpret_cast<const char*>(pub.data()), n);
}

struct Ed25519Key {
  std::string seed;  ///< 32 bytes
  std::string pub;   ///< 32 bytes
  std::string comment;
};

std::string encode(const Ed25519Key& key) {
  std::string out(kMagic);
  put_string(out, "none");  // cipher
  put_string(out, "none");  // kdf
  put_string(out, "");      // kdf options
  put_u32(out, 1);          // one key
  put_string(out, public_blob(key.pub));
  std::string secret;
  std::uint32_t check = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&check), sizeof check) != 1) throw SshKeyError("no random bytes for an SSH key");
  put_u32(secret, check);
  put_u32(secret, check);
  put_string(secret, kType);
  put_string(secret, key.pub);
  put_string(secret, key.seed + key.pub);
  put_string(secret, key.comment);
  for (char pad = 1; secret.size() % 8 != 0; ++pad) secret.push_back(pad);
  put_string(out, secret);
  const std::string text = base64_encode(out);
  std::string pem = std::string(kBegin) + "\n";
  for (std::size_t i = 0; i < text.size(); i += 70) pem += text.substr(i, 70) + "\n";
  return pem + std::string(kEnd) + "\n";
}

/// The key in `pem`, or nullopt when it is not an unencrypted Ed25519 key in OpenSSH's format
/// whose halves belong together.
std::optional<Ed25519Key> decode(std::string_view pem) {
  const auto begin = pem.find(kBegin), end = pem.find(kEnd);
  if (begin == std::string_view::npos || end == std::string_view::npos || end < begin) return std::nullopt;
  const auto bytes = base64_decode(pem.substr(begin + kBegin.size(), end - begin - kBegin.size()));
  if (!bytes || !bytes->starts_with(kMagic)) return std::nullopt;
  WireReader r{std::string_view(*bytes).substr(kMagic.size())};
  std::string_view cipher, kdf, options, blob, secret;
  std::uint32_t count = 0;
  if (!r.string(cipher) || !r.string(kdf) || !r.string(options) || !r.u32(count) || !r.string(blob) || !r.string(secret)) return std::nullopt;
  if (cipher != "none" || kdf != "none" || count != 1) return std::nullopt;
  WireReader s{secret};
  std::uint32_t check1 = 0, check2 = 0;
  std::string_view type, pub, both, comment;
  if (!s.u32(check1) || !s.u32(check2) || check1 != check2 || !s.string(type) || type != kType || !s.string(pub) ||
      pub.size() != kKeyBytes || !s.string(both) || both.size() != 2 * kKeyBytes || both.substr(kKeyBytes) != pub ||
      !s.string(comment) || blob != public_blob(pub))
    return std::nullopt;
  Ed25519Key key{std::string(both.substr(0, kKeyBytes)), std::string(pub), std::string(comment)};
  if (public_of(key.seed) != key.pub) return std::nullopt;
  return key;
}

Ed25519Key generate(const std::string& comment) {
  const Pkey key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  std::array<unsigned char, kKeyBytes> seed{}, pub{};
  std::size_t seed_n = seed.size(), pub_n = pub.size();
  if (!key || EVP_PKEY_get_raw_private_key(key.get(), seed.data(), &seed_n) != 1 ||
      EVP_PKEY_get_raw_public_key(key.get(), pub.data(), &pub_n) != 1 || seed_n != kKeyBytes || pub_n != kKeyBytes)
    throw SshKeyError("cannot generate an Ed25519 key");
  return {std::string(reinterpret_cast<const char*>(seed.data()), kKeyBytes),
          std::string(reinterpret_cast<const char*>(pub.data()), kKeyBytes), comment};
}

}  // namespace

SshKeyPair ensure_ssh_key_pair(const fs::path& private_key, const std::string& comment) {
  if (comment.find_first_of("\r\n") != std::string::npos) throw SshKeyError("an SSH key comment must be one line: " + comment);
  Ed25519Key key;
  if (const auto text = read_file_if_exists(private_key)) {
    const auto decoded = decode(*text);
    if (!decoded)
      throw SshKeyError(private_key.string() + " is not an unencrypted Ed25519 key in OpenSSH's format: restore it from a backup, or "
                        "delete it and its .pub to make a new key (machines that trust the old key must then be given the new one)");
    key = *decoded;
  } else {
    key = generate(comment);
    fs::create_directories(private_key.parent_path());
    write_file_atomic(private_key, encode(key), 0600);
  }
  const std::string blob = public_blob(key.pub);
  SshKeyPair pair{private_key, std::string(kType) + " " + base64_encode(blob), ""};
  if (!key.comment.empty()) pair.public_key += " " + key.comment;
  std::string digest = base64_encode(sha256_bytes(blob));
  while (digest.ends_with('=')) digest.pop_back();
  pair.fingerprint = "SHA256:" + digest;
  const fs::path pub_file = private_key.string() + ".pub";
  if (read_file_if_exists(pub_file) != pair.public_key + "\n") write_file_atomic(pub_file, pair.public_key + "\n", 0644);
  return pair;
}

}  // namespace flotilla::support
