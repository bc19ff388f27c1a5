// Encodings and hashes: base64, UTF-8 validation, the stable content hash and SHA-256. The
// only copies in the tree; base64 and SHA-256 come from OpenSSL.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace flotilla::support {

/// Standard base64 (RFC 4648 section 4, with padding) of `data`. Does not fail.
[[nodiscard]] std::string base64_encode(std::string_view data);

/// Decodes standard or URL-safe base64; whitespace and missing padding are accepted. nullopt
/// when `text` holds a character outside the alphabet or cannot be base64 at all.
[[nodiscard]] std::optional<std::string> base64_decode(std::string_view text);

/// The length (1 to 4) of the well-formed UTF-8 sequence starting at `text[at]`, storing its
/// code point in `code_point`; 0 when the bytes there are not one (truncated, overlong,
/// surrogate, above U+10FFFF, or `at` past the end).
[[nodiscard]] std::size_t utf8_sequence(std::string_view text, std::size_t at, std::uint32_t& code_point);

/// True when all of `text` is well-formed UTF-8.
[[nodiscard]] bool valid_utf8(std::string_view text);

/// 64-bit FNV-1a of `data` (offset basis 14695981039346656037, prime 1099511628211). It detects
/// change across runs and builds (unlike std::hash); it does not defend against anyone.
[[nodiscard]] std::uint64_t fnv1a64(std::string_view data);

/// fnv1a64(data) as 16 lower-case hex digits: the hash stored wherever content is compared.
[[nodiscard]] std::string stable_hash(std::string_view data);

/// The hash earlier releases stored: FNV-1a 64 with a mistaken offset basis
/// (1469598103934665603), as 16 hex digits. Only for recognising values in state written by
/// them, so that moving to stable_hash restarts or reloads nothing; never for new values.
[[nodiscard]] std::string legacy_stable_hash(std::string_view data);

/// `value` as 16 lower-case hex digits, zero-padded.
[[nodiscard]] std::string hex64(std::uint64_t value);

/// SHA-256 of `data` as 64 lower-case hex digits; throws std::runtime_error if OpenSSL fails.
[[nodiscard]] std::string sha256_hex(std::string_view data);

/// SHA-256 of `data` as its 32 raw bytes; throws std::runtime_error if OpenSSL fails.
[[nodiscard]] std::string sha256_bytes(std::string_view data);

/// HMAC-SHA256 of `data` under `key`, as its 32 raw bytes (OpenSSL); throws
/// std::runtime_error if OpenSSL fails.
[[nodiscard]] std::string hmac_sha256(std::string_view key, std::string_view data);

/// `bytes` as lower-case hex, two digits a byte. Does not fail.
[[nodiscard]] std::string hex_encode(std::string_view bytes);

}  // namespace flotilla::support
