#include "driver_aws/driver.hpp"

#include <sstream>

namespace flotilla::aws {
namespace {

// Indents every line of `text` by `spaces` for a YAML block scalar.
std::string indented(const std::string& text, int spaces) {
  std::istringstream in(text);
  std::string out, line;
  const std::string pad(static_cast<std::size_t>(spaces), ' ');
  while (std::getline(in, line)) out += pad + line + "\n";
  return out;
}

}  // namespace

std::string cloud_init_user_data(const std::string& ca_pem, const std::string& cert_pem, const std::string& key_pem,
                                 std::int64_t docker_port) {
  // Debian's docker.io, with dockerd told by a systemd drop-in to listen on the TLS port as
  // well as the local socket. daemon.json cannot carry "hosts" next to systemd's -H flag, so
  // the flags go on the command line; the files are root-only (the key 0600).
  const std::string port = std::to_string(docker_port);
  std::string doc = "#cloud-config\n";
  doc += "write_files:\n";
  doc += "  - path: /etc/docker/tls/ca.pem\n    permissions: '0644'\n    content: |\n" + indented(ca_pem, 6);
  doc += "  - path: /etc/docker/tls/server.pem\n    permissions: '0644'\n    content: |\n" + indented(cert_pem, 6);
  doc += "  - path: /etc/docker/tls/server-key.pem\n    permissions: '0600'\n    content: |\n" + indented(key_pem, 6);
  doc += "  - path: /etc/systemd/system/docker.service.d/flotilla-tls.conf\n    permissions: '0644'\n    content: |\n";
  doc += indented("[Service]\nExecStart=\nExecStart=/usr/sbin/dockerd -H fd:// -H tcp://0.0.0.0:" + port +
                      " --tlsverify --tlscacert=/etc/docker/tls/ca.pem --tlscert=/etc/docker/tls/server.pem"
                      " --tlskey=/etc/docker/tls/server-key.pem --containerd=/run/containerd/containerd.sock",
                  6);
  doc += "package_update: true\n";
  doc += "packages:\n  - docker.io\n";
  doc += "runcmd:\n  - [systemctl, daemon-reload]\n  - [systemctl, enable, --now, docker]\n  - [systemctl, restart, docker]\n";
  return doc;
}

}  // namespace flotilla::aws
