// A cluster's certificate authority and the certificates it issues, with OpenSSL's library:
// P-256 keys, SHA-256 signatures, X.509 v3 with the extensions TLS peers check (basic
// constraints, key usage, extended key usage, subject alternative names, key identifiers).
//
// The CA is made once and never made again behind the user's back: a CA whose key is lost or
// does not match its certificate is an error saying what to restore. Certificates it issues
// are checked on every call and issued again only when they no longer fit (missing, damaged,
// signed by another CA, not covering the requested names, or within 30 days of expiry).
// Private keys are written atomically with mode 0600; certificates 0644.
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace flotilla::support {

/// A CA, or a certificate, that cannot be read, made or used; the message names the file.
class CertificateError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The files of a CA: `dir`/ca.pem and `dir`/ca-key.pem.
struct CertificateAuthority {
  std::filesystem::path cert;
  std::filesystem::path key;
};

enum class CertificateUse { server, client };

/// What a certificate must say.
struct CertificateRequest {
  std::string common_name;                ///< at most 64 bytes
  std::vector<std::string> ip_addresses;  ///< subjectAltName IP entries ("10.0.0.2", "::1")
  std::vector<std::string> dns_names;     ///< subjectAltName DNS entries
  CertificateUse use = CertificateUse::server;
  int days = 825;
};

/// The CA in `dir` (ca.pem, ca-key.pem), made with `common_name` when neither file exists.
/// A key without its certificate (a run killed between the two writes) gets its certificate
/// made again from that key, so what it signed still verifies. Throws CertificateError when
/// the certificate exists without its key, or the two do not belong together.
CertificateAuthority ensure_certificate_authority(const std::filesystem::path& dir, const std::string& common_name,
                                                  int days = 3650);

/// Makes `cert` and `key` signed by `ca` for `request`, unless the ones there already fit it.
/// Returns true when it wrote them. Throws CertificateError when the CA cannot be read.
bool ensure_certificate(const CertificateAuthority& ca, const CertificateRequest& request, const std::filesystem::path& cert,
                        const std::filesystem::path& key);

}  // namespace flotilla::support
