#include "support/docker_lab.hpp"

#include <flotilla/support/command.hpp>
#include <flotilla/support/docker_client.hpp>
#include <flotilla/support/files.hpp>
#include <flotilla/support/process.hpp>
#include <flotilla/support/request.hpp>
#include <flotilla/support/tar.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <future>
#include <memory>
#include <sstream>
#include <stdexcept>

namespace flotilla::test {
namespace fs = std::filesystem;
namespace s = flotilla::support;

namespace {

const fs::path kLabDir = "/tmp/flotilla-docker-lab";
constexpr int kSlots = 64;

std::string lab_address(int k, int host) { return "10.213." + std::to_string(k) + "." + std::to_string(host); }

/// Removes what the lab of slot `k` made, in reverse order; each step only if its object exists.
void teardown_slot(int k) noexcept {
  try {
    netns::stop_registry(lab_registry(k));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "docker lab: %s\n", e.what());
  }
  for (const LabNode& node : lab_layout(k)) {
    try {
      netns::stop_dockerd(node.dockerd, std::chrono::seconds(10));
    } catch (...) {
    }
    try {
      netns::remove_namespace(node.net);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "docker lab: %s\n", e.what());
    }
    try {
      netns::remove_tree(node.dockerd.root);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "docker lab: cannot remove %s: %s\n", node.dockerd.root.c_str(), e.what());
    }
  }
  try {
    netns::remove_bridge("fltlab" + std::to_string(k));
    fs::remove_all(kLabDir / std::to_string(k));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "docker lab: %s\n", e.what());
  }
}

/// Claims a free slot (or one whose owner died, after tearing its lab down) for this process.
int claim_slot() {
  const s::FileLock lock(kLabDir / ".lock");
  const auto me = s::process_id(::getpid());
  for (int k = 0; k < kSlots; ++k) {
    const fs::path dir = kLabDir / std::to_string(k);
    if (fs::exists(dir)) {
      const auto owner = s::read_pid_file(dir / "owner");
      if (owner && s::is_running(*owner)) continue;
      teardown_slot(k);  // a lab whose process was killed before it could clean up
    }
    // A bridge of that name that no lab claims is someone else's: leave it and its subnet alone.
    if (netns::link_exists("fltlab" + std::to_string(k))) continue;
    fs::create_directories(dir);
    s::write_pid_file(dir / "owner", *me);
    return k;
  }
  throw std::runtime_error("docker lab: all " + std::to_string(kSlots) + " slots under " + kLabDir.string() + " are in use");
}

}  // namespace

std::string lab_image_tar() {
  const auto busybox = s::find_executable("busybox");
  if (!busybox) throw std::runtime_error("docker lab: busybox not found");
  std::vector<s::TarEntry> entries = {{.path = "bin", .mode = 0755, .directory = true},
                                      {.path = "bin/busybox", .content = s::read_file(*busybox), .mode = 0755},
                                      {.path = "tmp", .mode = 01777, .directory = true},
                                      {.path = "www", .mode = 0755, .directory = true}};
  for (const char* applet : {"sh", "httpd", "sleep", "cat", "echo", "ls", "wget", "nc", "mkdir", "rm"})
    entries.push_back({.path = std::string("bin/") + applet, .link_target = "busybox"});
  return s::make_tar(entries);
}

std::vector<LabNode> lab_layout(int k) {
  std::vector<LabNode> out;
  const std::string tag = "fltlab" + std::to_string(k);
  for (int i = 1; i <= DockerLab::kNodes; ++i) {
    LabNode n;
    n.name = "node-" + std::to_string(i);
    n.address = lab_address(k, i + 1);
    n.net = {.netns = tag + "-" + std::to_string(i), .host_veth = tag + "v" + std::to_string(i), .bridge = tag,
             .address = n.address, .prefix = 24, .gateway = lab_address(k, 1)};
    n.dockerd.netns = n.net.netns;
    n.dockerd.root = kLabDir / std::to_string(k) / n.name;
    n.dockerd.insecure_registry = lab_registry(k).address;
    n.host = n.dockerd.unix_host();
    out.push_back(std::move(n));
  }
  return out;
}

netns::RegistrySpec lab_registry(int k) {
  return {.address = lab_address(k, 1) + ":5053", .root = kLabDir / std::to_string(k) / "registry", .storage = DockerLab::registry_cache()};
}

fs::path DockerLab::registry_cache() { return fs::path(FLOTILLA_BINARY_DIR) / "lab-registry-cache"; }

std::string DockerLab::unavailable_reason() {
  if (::geteuid() != 0) return "the Docker lab needs root (network namespaces and dockerd); [docker] tests skipped";
  for (const char* tool : {"dockerd", "containerd", "ip", "nsenter", "busybox"})
    if (!s::find_executable(tool)) return std::string("the Docker lab needs `") + tool + "` (scripts/install-deps.sh installs it); [docker] tests skipped";
  return {};
}

DockerLab* DockerLab::get() {
  static std::unique_ptr<DockerLab> lab;
  static bool tried = false;
  if (tried) return lab.get();
  tried = true;
  if (!unavailable_reason().empty()) return nullptr;
  lab.reset(new DockerLab());
  try {
    lab->start();
  } catch (...) {
    lab.reset();  // tears down what was made
    throw;
  }
  return lab.get();
}

void DockerLab::start() {
  const auto began = std::chrono::steady_clock::now();
  slot_ = claim_slot();
  bridge_ = "fltlab" + std::to_string(slot_);
  gateway_ = lab_address(slot_, 1);
  nodes_ = lab_layout(slot_);
  netns::ensure_bridge(bridge_, gateway_, 24);
  if (s::find_executable("docker-registry")) {
    (void)netns::start_registry(lab_registry(slot_));
    registry_ = lab_registry(slot_).address;
  }
  for (const auto& n : nodes_) netns::ensure_namespace(n.net);
  // The daemons start in parallel: each takes about two seconds on its own.
  const std::string image = lab_image_tar();
  std::vector<std::future<void>> started;
  for (const auto& n : nodes_) {
    started.push_back(std::async(std::launch::async, [&n, &image] {
      (void)netns::start_dockerd(n.dockerd);
      s::DockerClient docker({.node = n.name, .host = n.host});
      (void)docker.import_image(image, kImage);
    }));
  }
  for (auto& f : started) f.get();
  startup_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
}

void DockerLab::teardown() noexcept {
  if (slot_ < 0) return;
  // Containers first, so that no dockerd waits on shutdown for containers to stop.
  for (const auto& n : nodes_) {
    try {
      s::DockerClient docker({.node = n.name, .host = n.host});
      for (const auto& c : docker.list_containers({})) docker.remove_container(c.id);
    } catch (...) {
    }
  }
  teardown_slot(slot_);
  slot_ = -1;
}

DockerLab::~DockerLab() { teardown(); }

std::string host_iptables_rules() {
  std::istringstream in(s::run_checked({"iptables-save"}).out);
  std::string out, line;
  while (std::getline(in, line)) {
    if (line.starts_with("#")) continue;
    if (line.starts_with(":")) line = line.substr(0, line.rfind(" ["));  // ":INPUT ACCEPT [12:345]"
    out += line + "\n";
  }
  return out;
}

}  // namespace flotilla::test
