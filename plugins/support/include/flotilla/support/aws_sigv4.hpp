// AWS Signature Version 4 (AWS4-HMAC-SHA256): the canonical request, the string to sign, the
// derived signing key and the signature, for signing in headers (Authorization) or in the
// query (a presigned URL). Checked against AWS's published test suites (tests/data/).
// Hashes and HMAC come from encoding.hpp (OpenSSL); credentials hold the key as a Secret.
#pragma once

#include "flotilla/support/secret.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace flotilla::support {

/// An access key: the id (not secret) and the secret key and session token (Secrets).
struct AwsCredentials {
  std::string access_key_id;
  Secret secret_access_key;
  Secret session_token;  ///< empty for long-term keys
  std::string source;    ///< where they came from, e.g. "environment" or "profile dev in /home/u/.aws/credentials"
  std::optional<std::chrono::system_clock::time_point> expiration;  ///< for temporary credentials
};

/// The request to sign. The path is the decoded path ("/example space/"); the query is as it
/// stands in the URL ("a=b&c=d", percent-encoded or not). Headers keep their order; repeated
/// names are allowed.
struct SigV4Request {
  std::string method = "GET";
  std::string path = "/";
  std::string query;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

/// How to sign.
struct SigV4Options {
  std::string region;
  std::string service;
  std::chrono::system_clock::time_point time;  ///< becomes X-Amz-Date (unless the request has one) and the scope date
  bool normalize_path = true;                  ///< remove "." and ".." segments and repeated slashes (every service but S3)
  bool sign_session_token = true;              ///< the token is a signed header/parameter; false adds it after signing
  bool sign_body_header = false;               ///< add and sign x-amz-content-sha256 (S3 style)
  std::chrono::seconds expires{3600};          ///< presigned URLs only: X-Amz-Expires
};

/// A signed request and the intermediate values (the test suites compare each of them).
struct SigV4Signed {
  std::string canonical_request;
  std::string string_to_sign;
  std::string signature;      ///< 64 hex digits
  std::string authorization;  ///< the Authorization header's value (header signing; "" for presigning)
  SigV4Request request;       ///< the request with the headers or query parameters signing added
};

/// "20150830T123600Z" for `time` (UTC).
[[nodiscard]] std::string amz_date(std::chrono::system_clock::time_point time);

/// Parses an X-Amz-Date value ("20150830T123600Z"); nullopt when it is not one.
[[nodiscard]] std::optional<std::chrono::system_clock::time_point> parse_amz_date(std::string_view text);

/// The canonical URI of a decoded path: each segment percent-encoded (RFC 3986 unreserved
/// kept), after removing dot segments and repeated slashes when `normalize`.
[[nodiscard]] std::string sigv4_canonical_uri(std::string_view path, bool normalize);

/// The canonical query string: every name and value decoded then encoded again, sorted by
/// name then value; a name without "=" gets an empty value.
[[nodiscard]] std::string sigv4_canonical_query(std::string_view query);

/// Signs in the Authorization header: adds X-Amz-Date (when missing), X-Amz-Security-Token (a
/// session token) and x-amz-content-sha256 (when asked), signs every header of the request,
/// and adds Authorization. Throws std::invalid_argument when the key id, secret, region or
/// service is empty, or the request has no Host header.
[[nodiscard]] SigV4Signed sigv4_sign(const SigV4Request& request, const AwsCredentials& credentials,
                                     const SigV4Options& options);

/// Signs in the query string (a presigned URL): adds X-Amz-Algorithm, -Credential, -Date,
/// -Expires, -SignedHeaders (and -Security-Token) to the query, then X-Amz-Signature. The
/// payload is hashed as for header signing. Throws like sigv4_sign.
[[nodiscard]] SigV4Signed sigv4_presign(const SigV4Request& request, const AwsCredentials& credentials,
                                        const SigV4Options& options);

}  // namespace flotilla::support
