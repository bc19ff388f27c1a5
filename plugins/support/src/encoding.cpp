#include "flotilla/support/encoding.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <memory>
#include <stdexcept>

namespace flotilla::support {

std::string base64_encode(std::string_view data) {
  if (data.empty()) return {};
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  // EVP_EncodeBlock takes an int length; split huge inputs on a 3-byte boundary.
  constexpr std::size_t kChunk = 3u << 28;
  std::size_t written = 0;
  for (std::size_t at = 0; at < data.size(); at += kChunk) {
    const std::size_t n = std::min(kChunk, data.size() - at);
    written += static_cast<std::size_t>(EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data() + written),
                                                        reinterpret_cast<const unsigned char*>(data.data() + at),
                                                        static_cast<int>(n)));
  }
  out.resize(written);
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  // OpenSSL decodes the standard alphabet in whole quads: map the URL-safe one onto it, drop
  // whitespace and padding, and pad again ourselves.
  std::string clean;
  clean.reserve(text.size() + 3);
  for (char c : text) {
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '=') continue;
    if (c == '-') c = '+';
    if (c == '_') c = '/';
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
    if (!ok) return std::nullopt;
    clean += c;
  }
  if (clean.size() % 4 == 1) return std::nullopt;  // no byte ends there
  const std::size_t pad = (4 - clean.size() % 4) % 4;
  clean.append(pad, '=');
  if (clean.empty()) return std::string();
  if (clean.size() > static_cast<std::size_t>(INT32_MAX)) return std::nullopt;
  std::string out(clean.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(clean.data()),
                                static_cast<int>(clean.size()));
  if (n < 0) return std::nullopt;
  // EVP_DecodeBlock counts the padding as zero bytes.
  out.resize(static_cast<std::size_t>(n) - pad);
  return out;
}

std::size_t utf8_sequence(std::string_view text, std::size_t at, std::uint32_t& code_point) {
  if (at >= text.size()) return 0;
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(at);
  std::size_t len = 0;
  std::uint32_t cp = 0;
  if (lead < 0x80) {
    code_point = lead;
    return 1;
  } else if ((lead & 0xE0) == 0xC0) {
    len = 2;
    cp = lead & 0x1Fu;
  } else if ((lead & 0xF0) == 0xE0) {
    len = 3;
    cp = lead & 0x0Fu;
  } else if ((lead & 0xF8) == 0xF0) {
    len = 4;
    cp = lead & 0x07u;
  } else {
    return 0;
  }
  if (text.size() - at < len) return 0;
  for (std::size_t i = 1; i < len; ++i) {
    if ((byte(at + i) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(at + i) & 0x3Fu);
  }
  const bool overlong = (len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000);
  if (overlong || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  code_point = cp;
  return len;
}

bool valid_utf8(std::string_view text) {
  std::uint32_t cp = 0;
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t len = utf8_sequence(text, i, cp);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

namespace {

std::uint64_t fnv1a64_from(std::uint64_t basis, std::string_view data) {
  std::uint64_t h = basis;
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

}  // namespace

std::uint64_t fnv1a64(std::string_view data) { return fnv1a64_from(14695981039346656037ULL, data); }

std::string legacy_stable_hash(std::string_view data) { return hex64(fnv1a64_from(1469598103934665603ULL, data)); }

std::string hex64(std::uint64_t value) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, value >>= 4) out[static_cast<std::size_t>(i)] = kHex[value & 0xF];
  return out;
}

std::string stable_hash(std::string_view data) { return hex64(fnv1a64(data)); }

std::string sha256_bytes(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("sha256: OpenSSL's EVP_Digest failed");
  return std::string(reinterpret_cast<const char*>(digest), len);
}

std::string sha256_hex(std::string_view data) { return hex_encode(sha256_bytes(data)); }

std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (key.size() > static_cast<std::size_t>(INT32_MAX) ||
      HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
           data.size(), digest, &len) == nullptr)
    throw std::runtime_error("hmac-sha256: OpenSSL's HMAC failed");
  return std::string(reinterpret_cast<const char*>(digest), len);
}

std::string hex_encode(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * bytes.size());
  for (unsigned char c : bytes) {
    out += kHex[c >> 4];
    out += kHex[c & 0xF];
  }
  return out;
}

}  // namespace flotilla::support
