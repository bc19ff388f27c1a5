#include "flotilla/support/certificates.hpp"

#include "flotilla/support/files.hpp"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <ctime>
#include <memory>
#include <optional>
#include <utility>

namespace flotilla::support {
namespace {

namespace fs = std::filesystem;

struct Free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(BIGNUM* p) const { BN_free(p); }
};
using Key = std::unique_ptr<EVP_PKEY, Free>;
using Cert = std::unique_ptr<X509, Free>;
using Bio = std::unique_ptr<BIO, Free>;

constexpr long kDay = 24L * 60 * 60;
// Certificates are valid from an hour back, so a peer whose clock is a little behind accepts them.
constexpr long kClockSkew = 60L * 60;
// A certificate this close to its end is issued again.
constexpr long kRenewBefore = 30 * kDay;

/// `what`, with OpenSSL's first queued error when there is one; clears the queue.
[[noreturn]] void fail(const std::string& what) {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  std::string message = what;
  if (code != 0) {
    char text[256];
    ERR_error_string_n(code, text, sizeof text);
    message += " (" + std::string(text) + ")";
  }
  throw CertificateError(message);
}

Key new_key() {
  Key key(EVP_EC_gen("P-256"));
  if (!key) fail("cannot generate a P-256 key");
  return key;
}

Bio read_bio(const std::string& text) {
  Bio bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  if (!bio) fail("out of memory reading PEM text");
  return bio;
}

/// What `read` (a PEM_read_bio_* function) makes of the file at `path`; nullopt when the file
/// is missing or holds no such PEM block.
template <typename T, typename Read>
std::optional<std::unique_ptr<T, Free>> try_load(const fs::path& path, Read read) {
  const auto text = read_file_if_exists(path);
  if (!text) return std::nullopt;
  const Bio bio = read_bio(*text);
  std::unique_ptr<T, Free> value(read(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (!value) return std::nullopt;
  return value;
}

std::optional<Key> try_load_key(const fs::path& path) { return try_load<EVP_PKEY>(path, PEM_read_bio_PrivateKey); }
std::optional<Cert> try_load_cert(const fs::path& path) { return try_load<X509>(path, PEM_read_bio_X509); }

std::string drain(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(size));
}

std::string pem_of(EVP_PKEY* key) {
  const Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) fail("cannot encode a key");
  return drain(bio.get());
}

std::string pem_of(X509* cert) {
  const Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) fail("cannot encode a certificate");
  return drain(bio.get());
}

void add_extension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) fail("cannot make the certificate extension " + std::string(OBJ_nid2sn(nid)) + " = " + value);
  const int added = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  if (added != 1) fail("cannot add the certificate extension " + std::string(OBJ_nid2sn(nid)));
}

/// A certificate for `subject_key` named `common_name`, signed by `issuer_key` (self-signed when
/// `issuer` is null), with `extensions` in order.
Cert make_certificate(const std::string& common_name, EVP_PKEY* subject_key, X509* issuer, EVP_PKEY* issuer_key, int days,
                      const std::vector<std::pair<int, std::string>>& extensions) {
  if (common_name.empty() || common_name.size() > 64)
    throw CertificateError("certificate name \"" + common_name + "\" must be 1 to 64 bytes long");
  if (days < 1) throw CertificateError("certificate for " + common_name + ": validity of " + std::to_string(days) + " days");
  Cert cert(X509_new());
  if (!cert || X509_set_version(cert.get(), 2) != 1) fail("cannot make a certificate");
  // 127 random bits: unique without a counter, positive as RFC 5280 wants.
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1) fail("no random bytes for a serial number");
  serial[0] &= 0x7f;
  serial[0] |= 0x01;
  const std::unique_ptr<BIGNUM, Free> number(BN_bin2bn(serial, sizeof serial, nullptr));
  if (!number || BN_to_ASN1_INTEGER(number.get(), X509_get_serialNumber(cert.get())) == nullptr) fail("cannot set a serial number");
  if (X509_gmtime_adj(X509_getm_notBefore(cert.get()), -kClockSkew) == nullptr ||
      X509_gmtime_adj(X509_getm_notAfter(cert.get()), days * kDay) == nullptr)
    fail("cannot set the validity of " + common_name);
  X509_NAME* name = X509_get_subject_name(cert.get());
  if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1, 0) != 1)
    fail("cannot set the name " + common_name);
  if (X509_set_issuer_name(cert.get(), issuer != nullptr ? X509_get_subject_name(issuer) : name) != 1 ||
      X509_set_pubkey(cert.get(), subject_key) != 1)
    fail("cannot set the issuer or key of " + common_name);
  for (const auto& [nid, value] : extensions) add_extension(cert.get(), issuer != nullptr ? issuer : cert.get(), nid, value);
  if (X509_sign(cert.get(), issuer_key, EVP_sha256()) == 0) fail("cannot sign the certificate of " + common_name);
  return cert;
}

Cert make_authority_certificate(const std::string& common_name, EVP_PKEY* key, int days) {
  return make_certificate(common_name, key, nullptr, key, days,
                          {{NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
                           {NID_key_usage, "critical,keyCertSign,cRLSign"},
                           {NID_subject_key_identifier, "hash"},
                           {NID_authority_key_identifier, "keyid:always"}});
}

/// True when `cert` (with `key`) is signed by `ca_cert`, still valid for more than
/// kRenewBefore, and names what `request` asks for.
bool fits(X509* cert, EVP_PKEY* key, X509* ca_cert, const CertificateRequest& request) {
  bool ok = X509_check_private_key(cert, key) == 1 && X509_verify(cert, X509_get0_pubkey(ca_cert)) == 1 &&
            X509_check_issued(ca_cert, cert) == X509_V_OK;
  std::time_t renew_at = std::time(nullptr) + kRenewBefore;
  ok = ok && X509_cmp_time(X509_get0_notAfter(cert), &renew_at) > 0;
  for (const auto& ip : request.ip_addresses) ok = ok && X509_check_ip_asc(cert, ip.c_str(), 0) == 1;
  for (const auto& dns : request.dns_names)
    ok = ok && X509_check_host(cert, dns.c_str(), dns.size(), X509_CHECK_FLAG_NO_WILDCARDS, nullptr) == 1;
  const int wanted = request.use == CertificateUse::server ? X509_PURPOSE_SSL_SERVER : X509_PURPOSE_SSL_CLIENT;
  ok = ok && X509_check_purpose(cert, wanted, 0) == 1;
  ERR_clear_error();
  return ok;
}

}  // namespace

CertificateAuthority ensure_certificate_authority(const fs::path& dir, const std::string& common_name, int days) {
  const CertificateAuthority ca{dir / "ca.pem", dir / "ca-key.pem"};
  fs::create_directories(dir);
  const bool has_cert = fs::exists(ca.cert), has_key = fs::exists(ca.key);
  if (has_cert && !has_key)
    throw CertificateError("the CA certificate " + ca.cert.string() + " is there but its key " + ca.key.string() +
                           " is not: restore the key from a backup (a new CA would invalidate every certificate it "
                           "signed), or delete " + ca.cert.string() + " to make a new CA");
  if (has_key) {
    const auto key = try_load_key(ca.key);
    if (!key) throw CertificateError(ca.key.string() + " is not a PEM private key: restore it from a backup, or delete it and " +
                                     ca.cert.string() + " to make a new CA");
    if (has_cert) {
      const auto cert = try_load_cert(ca.cert);
      if (!cert) throw CertificateError(ca.cert.string() + " is not a PEM certificate: delete it to make it again from " + ca.key.string());
      if (X509_check_private_key(cert->get(), key->get()) != 1) {
        ERR_clear_error();
        throw CertificateError("the CA certificate " + ca.cert.string() + " does not belong to the key " + ca.key.string() +
                               ": restore the pair from a backup, or delete both to make a new CA");
      }
      return ca;
    }
    // The key was written and the run stopped before the certificate: the same key and name
    // give a certificate under which whatever the key signed still verifies.
    write_file_atomic(ca.cert, pem_of(make_authority_certificate(common_name, key->get(), days).get()), 0644);
    return ca;
  }
  const Key key = new_key();
  const Cert cert = make_authority_certificate(common_name, key.get(), days);
  write_file_atomic(ca.key, pem_of(key.get()), 0600);
  write_file_atomic(ca.cert, pem_of(cert.get()), 0644);
  return ca;
}

bool ensure_certificate(const CertificateAuthority& ca, const CertificateRequest& request, const fs::path& cert_path,
                        const fs::path& key_path) {
  const auto ca_cert = try_load_cert(ca.cert);
  const auto ca_key = try_load_key(ca.key);
  if (!ca_cert || !ca_key)
    throw CertificateError("cannot read the CA (" + ca.cert.string() + ", " + ca.key.string() + ") to issue the certificate of " +
                           request.common_name);
  if (auto cert = try_load_cert(cert_path)) {
    if (auto key = try_load_key(key_path); key && fits(cert->get(), key->get(), ca_cert->get(), request)) return false;
  }
  std::string names;
  for (const auto& ip : request.ip_addresses) names += (names.empty() ? "IP:" : ",IP:") + ip;
  for (const auto& dns : request.dns_names) names += (names.empty() ? "DNS:" : ",DNS:") + dns;
  std::vector<std::pair<int, std::string>> extensions = {
      {NID_basic_constraints, "critical,CA:FALSE"},
      {NID_key_usage, "critical,digitalSignature,keyAgreement"},
      {NID_ext_key_usage, request.use == CertificateUse::server ? "serverAuth" : "clientAuth"},
      {NID_subject_key_identifier, "hash"},
      {NID_authority_key_identifier, "keyid:always"}};
  if (!names.empty()) extensions.emplace_back(NID_subject_alt_name, names);
  const Key key = new_key();
  const Cert cert = make_certificate(request.common_name, key.get(), ca_cert->get(), ca_key->get(), request.days, extensions);
  fs::create_directories(key_path.parent_path());
  fs::create_directories(cert_path.parent_path());
  // The key first: a run stopped between the two leaves a certificate that does not match the
  // key, which the next call replaces.
  write_file_atomic(key_path, pem_of(key.get()), 0600);
  write_file_atomic(cert_path, pem_of(cert.get()), 0644);
  return true;
}

}  // namespace flotilla::support
