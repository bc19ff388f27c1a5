// A real multi-host Docker lab for [docker] tests: a bridge, N network namespaces with veths on
// a private /24 (10.213.K.0/24, K claimed under /tmp/flotilla-docker-lab so concurrent test
// processes never share one) and one dockerd per namespace (own data root, exec root, pid
// file and socket; vfs; --iptables=false), each holding a tiny busybox image, and, where
// docker-registry is installed, the lab's registry on the bridge's address (as the netns driver
// runs one), which every dockerd trusts and which keeps its images in the build tree across
// test processes, so build_lab_images pushes each image once for the whole suite. One lab serves
// every test of a process; it is torn down at exit, failed tests included, and a lab left by a
// killed process is torn down by the next one that claims its K. It ends only the dockerd
// processes it started and removes only the objects named after its K.
//
//   auto* lab = flotilla::test::DockerLab::get();
//   if (!lab) FLOTILLA_SKIP(flotilla::test::DockerLab::unavailable_reason());
#pragma once

#include "driver_netns/host.hpp"

#include <string>
#include <vector>

namespace flotilla::test {

struct LabNode {
  std::string name;     ///< "node-1"
  std::string address;  ///< its address on the bridge
  std::string host;     ///< "unix:///.../docker.sock", for DockerEndpoint::host
  netns::NamespaceSpec net;
  netns::DockerdSpec dockerd;
};

class DockerLab {
 public:
  /// The image every node holds: busybox-static as /bin/busybox with links for its applets.
  static constexpr const char* kImage = "flotilla-busybox:lab";
  static constexpr int kNodes = 3;

  /// The process's lab, started on first use; nullptr when it cannot run here (see
  /// unavailable_reason). Throws when it should run but fails to start (after cleaning up).
  static DockerLab* get();
  /// Why get() returned nullptr: not root, or dockerd, ip, nsenter or busybox missing.
  static std::string unavailable_reason();

  [[nodiscard]] const std::vector<LabNode>& nodes() const { return nodes_; }
  [[nodiscard]] const std::string& bridge() const { return bridge_; }
  [[nodiscard]] const std::string& gateway() const { return gateway_; }
  /// "ADDRESS:PORT" of the lab's registry, or "" when docker-registry is not installed.
  [[nodiscard]] const std::string& registry() const { return registry_; }
  /// Where the registry keeps its images (a cache in the build tree, shared by every lab).
  [[nodiscard]] static std::filesystem::path registry_cache();
  /// Seconds it took to start.
  [[nodiscard]] double startup_seconds() const { return startup_seconds_; }

  ~DockerLab();
  DockerLab(const DockerLab&) = delete;
  DockerLab& operator=(const DockerLab&) = delete;

 private:
  DockerLab() = default;
  void start();
  void teardown() noexcept;

  int slot_ = -1;
  std::string bridge_;
  std::string gateway_;
  std::string registry_;
  std::vector<LabNode> nodes_;
  double startup_seconds_ = 0;
};

/// The root filesystem of DockerLab::kImage as a tar archive: busybox-static as /bin/busybox
/// and a link per applet the tests use. Throws when busybox is not installed.
[[nodiscard]] std::string lab_image_tar();

/// The lab's names and paths for slot `k` (used also to clean up a dead process's lab).
[[nodiscard]] std::vector<LabNode> lab_layout(int k);

/// The lab's registry for slot `k`.
[[nodiscard]] netns::RegistrySpec lab_registry(int k);

/// The rules of this machine's own network namespace, as `iptables-save` prints them without
/// its dated comments and packet counters: equal before and after a lab when nothing of the
/// lab reached the host's firewall. Throws when iptables-save fails.
[[nodiscard]] std::string host_iptables_rules();

}  // namespace flotilla::test
