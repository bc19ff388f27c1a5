// DNS names for the etcd backend, served by dnsmasq: A records from a hosts file in a
// --hostsdir (dnsmasq re-reads it on change, no signal needed) and SRV records from
// srv-host lines in a conf file (read only at start, so the registrator restarts dnsmasq when
// that set changes). Names follow Consul's so clients need not care which backend runs:
//   <name>.service.<domain>          A    every instance address
//   <name>.service.<domain>          SRV  one per instance: <hex-ip>.addr.<domain>:<port>
//   _<name>._tcp.service.<domain>    SRV  the same (RFC 2782 form)
//   <hex-ip>.addr.<domain>           A    the address itself (SRV targets)
//   <node>.node.<domain>             A    each node's address
#pragma once

#include "addon_registrator/catalog.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace flotilla::discovery {

/// Consul's hex form of an IP address ("127.77.0.2" -> "7f4d0002"), or "" if not an IP.
[[nodiscard]] std::string hex_address(const std::string& address);

/// The hosts file dnsmasq reads from its --hostsdir: one "ADDRESS NAME" line per record,
/// sorted, so unchanged input gives byte-identical output. `nodes` is the request's node list.
[[nodiscard]] std::string render_hosts(const std::vector<Registration>& regs, const std::string& domain,
                                              const json& nodes = json::array());

/// The dnsmasq conf file with one srv-host line per instance and name form (entries without a
/// port have no SRV record).
[[nodiscard]] std::string render_srv_conf(const std::vector<Registration>& regs, const std::string& domain);

/// The FLOTILLA_SRV_DIGEST for dnsmasq's workload, from the srv-host lines `srv_conf` and the
/// registrator's state. dnsmasq reads those lines only at start, so the digest is part of the
/// workload's spec and a changed digest restarts it. The digest is support::stable_hash, except
/// that while the lines are the ones of the last apply the digest it gave then is kept (the
/// state's `srv_hash` and `srv_digest`), and state from a release that recorded neither gets
/// the hash that release used (support::legacy_stable_hash): the corrected hash never restarts
/// a running dnsmasq; it comes in with the next change of the lines, which restarts it anyway.
[[nodiscard]] std::string srv_digest(const json& state, const std::string& srv_conf);

/// How to run dnsmasq for the cluster's names.
struct DnsmasqOptions {
  std::string binary = "/usr/sbin/dnsmasq";
  std::string listen_address;
  int port = 8600;
  std::string domain = "consul";
  std::string hosts_dir;  // watched directory holding the hosts file
  std::string srv_file;   // conf file with srv-host lines
  bool stay_root = false; // keep root: needed when the files are not readable by "nobody"
};

/// The dnsmasq command line: foreground, no upstream servers, no /etc/hosts, authoritative
/// for `domain` (unknown names there get NXDOMAIN), bound only to the node's address, logging
/// to stderr, writing no pid file.
[[nodiscard]] std::vector<std::string> dnsmasq_command(const DnsmasqOptions& o);

/// A DNS forwarder on a Docker node, as Consul's agent on docker0 was in the original: the
/// node's containers use it as their resolver (Docker's `Dns` takes addresses on port 53).
struct ForwarderOptions {
  std::string binary = "dnsmasq";
  std::string listen_address;  // the node's Docker bridge gateway
  std::string domain = "consul";
  std::string server;          // "ADDRESS:PORT" of the cluster's DNS; empty: none
};

/// The forwarder's dnsmasq command line: foreground, port 53 on `listen_address` alone, names
/// under `domain` sent to `server` (no cache of missing names, so a service registered a moment
/// later resolves at once), everything else to the resolvers of the node's resolv.conf; as the
/// container's root, no pid file, logging to stderr. Throws std::invalid_argument when
/// `server` is not ADDRESS:PORT.
[[nodiscard]] std::vector<std::string> forwarder_command(const ForwarderOptions& o);

/// True when a process running as "nobody" could read `dir`: every ancestor is searchable by
/// others and `dir` itself readable and searchable. dnsmasq drops to "nobody" unless told
/// otherwise, and Flotilla's state directory is 0700.
[[nodiscard]] bool readable_by_others(const std::filesystem::path& dir);

/// Sends one DNS query (type A, recursion not desired) for `name` to ADDRESS:PORT over UDP and
/// waits up to `timeout` for any answer with the same ID; returns the answer's RCODE, or -1
/// when nothing came back. Used to tell when dnsmasq is ready.
[[nodiscard]] int dns_probe(const std::string& address, int port, const std::string& name,
                                   std::chrono::milliseconds timeout);

}  // namespace flotilla::discovery
