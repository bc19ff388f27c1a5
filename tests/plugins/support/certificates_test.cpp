// The cluster CA of the support library: what it makes is checked by Debian's openssl command
// (verify, x509) and by a real mutual-TLS handshake between `openssl s_server` and the support
// library's HTTP client. A CA is never made again behind the user's back.
#include "flotilla/support/certificates.hpp"
#include "flotilla/support/command.hpp"
#include "flotilla/support/files.hpp"
#include "flotilla/support/http.hpp"
#include "flotilla/support/net.hpp"
#include "flotilla/support/process.hpp"
#include "support/process_util.hpp"
#include "support/test_resources.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <optional>

namespace fs = std::filesystem;
namespace s = flotilla::support;
using flotilla::test::proc::run_tool;
using flotilla::test::proc::ScratchDir;

namespace {

mode_t mode_of(const fs::path& p) {
  struct stat st{};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

s::CertificateRequest server(std::vector<std::string> ips) {
  return {.common_name = "node-1", .ip_addresses = std::move(ips), .use = s::CertificateUse::server};
}

/// A CA in a scratch directory, and a server certificate it issued for 10.1.2.3.
struct IssuedServer {
  ScratchDir dir{"flt-ca"};
  s::CertificateAuthority ca = s::ensure_certificate_authority(dir / "ca", "Flotilla test CA");
  fs::path cert = dir / "server.pem";
  fs::path key = dir / "server-key.pem";
  IssuedServer() { REQUIRE(s::ensure_certificate(ca, server({"10.1.2.3"}), cert, key)); }
};

/// `openssl s_server` with a server certificate of `server_request` from a scratch CA, demanding a
/// client certificate signed by it (-Verify; -www answers GET with a page), and that client
/// certificate (cert.pem, key.pem).
struct TlsLab {
  ScratchDir dir{"flt-ca"};
  s::CertificateAuthority ca = s::ensure_certificate_authority(dir / "ca", "Flotilla test CA");
  int port = flotilla::test::resources::free_port("127.0.0.1");
  std::string url = "https://127.0.0.1:" + std::to_string(port) + "/";
  s::HttpTimeouts timeouts{std::chrono::milliseconds(1000), std::chrono::milliseconds(3000)};
  std::optional<flotilla::test::proc::Child> server;

  explicit TlsLab(const s::CertificateRequest& server_request) {
    REQUIRE(s::ensure_certificate(ca, server_request, dir / "server.pem", dir / "server-key.pem"));
    REQUIRE(s::ensure_certificate(ca, {.common_name = "flotilla client", .use = s::CertificateUse::client}, dir / "cert.pem",
                                  dir / "key.pem"));
    const auto program = s::find_executable("openssl");
    REQUIRE(program);
    server.emplace(std::vector<std::string>{program->string(), "s_server", "-quiet", "-accept", "127.0.0.1:" + std::to_string(port),
                                            "-cert", (dir / "server.pem").string(), "-key", (dir / "server-key.pem").string(),
                                            "-CAfile", ca.cert.string(), "-Verify", "1", "-www"});
    REQUIRE(flotilla::test::proc::wait_until([&] { return s::tcp_port_open("127.0.0.1", port, std::chrono::milliseconds(200)); },
                                              std::chrono::seconds(10)));
  }
  /// TLS options with the client certificate, trusting `trusted`.
  [[nodiscard]] s::TlsOptions client(const fs::path& trusted) const {
    return {.ca_file = trusted, .cert_file = dir / "cert.pem", .key_file = dir / "key.pem"};
  }
};

}  // namespace

TEST_CASE("cluster CA: made once with a 0600 key, and what it issues verifies with openssl for its use", "[support][tls]") {
  ScratchDir dir("flt-ca");
  const auto ca = s::ensure_certificate_authority(dir / "ca", "Flotilla test CA");
  CHECK(ca.cert == dir / "ca" / "ca.pem");
  CHECK(mode_of(ca.key) == 0600);
  const std::string ca_pem = s::read_file(ca.cert);
  const auto text = run_tool("openssl", {"x509", "-noout", "-text", "-in", ca.cert.string()});
  REQUIRE(text.ok());
  CHECK_THAT(text.out, Catch::Contains("CA:TRUE") && Catch::Contains("Certificate Sign") && Catch::Contains("Flotilla test CA"));
  // Made once: the second call keeps both files.
  (void)s::ensure_certificate_authority(dir / "ca", "Flotilla test CA");
  CHECK(s::read_file(ca.cert) == ca_pem);

  const fs::path cert = dir / "server.pem", key = dir / "server-key.pem";
  CHECK(s::ensure_certificate(ca, server({"10.1.2.3", "127.0.0.1"}), cert, key));
  CHECK(mode_of(key) == 0600);
  const std::string issued = s::read_file(cert);
  CHECK_FALSE(s::ensure_certificate(ca, server({"10.1.2.3"}), cert, key));  // it already covers that address
  CHECK(s::read_file(cert) == issued);

  const auto verified = run_tool("openssl", {"verify", "-CAfile", ca.cert.string(), "-purpose", "sslserver", cert.string()});
  INFO(verified.out << verified.err);
  CHECK(verified.ok());
  const auto sans = run_tool("openssl", {"x509", "-noout", "-ext", "subjectAltName", "-in", cert.string()});
  CHECK_THAT(sans.out, Catch::Contains("IP Address:10.1.2.3") && Catch::Contains("IP Address:127.0.0.1"));

  const fs::path client = dir / "cert.pem", client_key = dir / "key.pem";
  CHECK(s::ensure_certificate(ca, {.common_name = "flotilla client", .use = s::CertificateUse::client}, client, client_key));
  CHECK(run_tool("openssl", {"verify", "-CAfile", ca.cert.string(), "-purpose", "sslclient", client.string()}).ok());
  // A client certificate is not a server's.
  CHECK_FALSE(run_tool("openssl", {"verify", "-CAfile", ca.cert.string(), "-purpose", "sslserver", client.string()}).ok());
}

TEST_CASE("cluster CA: a certificate is issued again when its address changes, it is damaged, or another CA signed it",
          "[support][tls]") {
  const IssuedServer issued;
  const auto& [dir, ca, cert, key] = issued;

  CHECK(s::ensure_certificate(ca, server({"10.1.2.4"}), cert, key));
  CHECK_THAT(run_tool("openssl", {"x509", "-noout", "-ext", "subjectAltName", "-in", cert.string()}).out, Catch::Contains("IP Address:10.1.2.4"));

  s::write_file_atomic(cert, "not a certificate\n");
  CHECK(s::ensure_certificate(ca, server({"10.1.2.4"}), cert, key));
  CHECK(run_tool("openssl", {"verify", "-CAfile", ca.cert.string(), cert.string()}).ok());

  const auto other = s::ensure_certificate_authority(dir / "other", "Another CA");
  REQUIRE(s::ensure_certificate(other, server({"10.1.2.4"}), cert, key));
  CHECK(s::ensure_certificate(ca, server({"10.1.2.4"}), cert, key));
  CHECK(run_tool("openssl", {"verify", "-CAfile", ca.cert.string(), cert.string()}).ok());

  // A key that does not match the certificate (a run stopped between the two writes).
  const auto spare = dir / "spare-key.pem";
  REQUIRE(s::ensure_certificate(ca, server({"10.1.2.4"}), dir / "spare.pem", spare));
  fs::copy_file(spare, key, fs::copy_options::overwrite_existing);
  CHECK(s::ensure_certificate(ca, server({"10.1.2.4"}), cert, key));
}

TEST_CASE("cluster CA: a lost or foreign CA key is an error saying what to restore, and a key left alone gets its certificate back",
          "[support][tls]") {
  const IssuedServer issued;
  const auto& [dir, ca, cert, key] = issued;
  const std::string ca_pem = s::read_file(ca.cert), ca_key = s::read_file(ca.key);

  fs::remove(ca.key);
  CHECK_THROWS_WITH(s::ensure_certificate_authority(dir / "ca", "Flotilla test CA"),
                    Catch::Contains(ca.key.string()) && Catch::Contains("restore the key"));
  CHECK(s::read_file(ca.cert) == ca_pem);  // nothing made again
  CHECK_FALSE(fs::exists(ca.key));

  const auto other = s::ensure_certificate_authority(dir / "other", "Another CA");
  fs::copy_file(other.key, ca.key);
  CHECK_THROWS_WITH(s::ensure_certificate_authority(dir / "ca", "Flotilla test CA"), Catch::Contains("does not belong"));
  CHECK(s::read_file(ca.cert) == ca_pem);

  // Only the key is there (a run stopped before writing the certificate): the certificate is
  // made from it again, and what the CA signed before still verifies.
  s::write_file_atomic(ca.key, ca_key, 0600);
  fs::remove(ca.cert);
  (void)s::ensure_certificate_authority(dir / "ca", "Flotilla test CA");
  REQUIRE(fs::exists(ca.cert));
  CHECK(s::read_file(ca.key) == ca_key);
  const auto verified = run_tool("openssl", {"verify", "-CAfile", ca.cert.string(), cert.string()});
  INFO(verified.out << verified.err);
  CHECK(verified.ok());
  CHECK_FALSE(s::ensure_certificate(ca, server({"10.1.2.3"}), cert, key));
}

TEST_CASE("cluster CA: openssl s_server with the issued certificate accepts the HTTP client with its client certificate, and only it",
          "[support][tls][integration]") {
  TlsLab lab(server({"127.0.0.1"}));
  s::HttpClient with_cert({.tls = lab.client(lab.ca.cert), .timeouts = lab.timeouts});
  CHECK(with_cert.get(lab.url).status == 200);

  s::HttpClient system_trust({.tls = lab.client({}), .timeouts = lab.timeouts});
  CHECK_THROWS_AS(system_trust.get(lab.url), s::Unreachable);  // the system's CAs do not know the cluster CA

  s::HttpClient without_cert({.tls = {.ca_file = lab.ca.cert}, .timeouts = lab.timeouts});
  CHECK_THROWS_AS(without_cert.get(lab.url), s::Unreachable);  // the server wants a client certificate
  // A client that trusts another CA refuses the server.
  const auto other = s::ensure_certificate_authority(lab.dir / "other", "Another CA");
  s::HttpClient other_trust({.tls = lab.client(other.cert), .timeouts = lab.timeouts});
  CHECK_THROWS_AS(other_trust.get(lab.url), s::Unreachable);
}

TEST_CASE("cluster CA: a server certificate for a DNS name only is accepted at its address when the client names it (server_name)",
          "[support][tls][integration]") {
  // The aws driver's case: the certificate is issued before the server has an address.
  TlsLab lab({.common_name = "node-1.demo.flotilla.internal", .dns_names = {"node-1.demo.flotilla.internal"}});
  s::TlsOptions tls = lab.client(lab.ca.cert);
  s::HttpClient by_address({.tls = tls, .timeouts = lab.timeouts});
  CHECK_THROWS_AS(by_address.get(lab.url), s::Unreachable);  // the certificate does not name 127.0.0.1
  tls.server_name = "node-1.demo.flotilla.internal";
  s::HttpClient by_name({.tls = tls, .timeouts = lab.timeouts});
  CHECK(by_name.get(lab.url).status == 200);
  tls.server_name = "node-2.demo.flotilla.internal";
  s::HttpClient other_name({.tls = tls, .timeouts = lab.timeouts});
  CHECK_THROWS_AS(other_name.get(lab.url), s::Unreachable);  // nor another node's name
}
