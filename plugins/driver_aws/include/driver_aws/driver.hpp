// The `aws` driver: every node is an EC2 instance running Docker with TLS client certificates,
// reached by the docker runtime. Per cluster it makes an SSH key pair (generated here, imported
// with ImportKeyPair), a security group and a CA; per node a server certificate, cloud-init user
// data and one instance, started with a ClientToken derived from cluster and node so that a
// retried or resumed create never makes a second one. Everything it makes carries the tag
// flotilla:cluster, and destroy removes only what carries it.
#pragma once

#include <flotilla/plugin.hpp>
#include <flotilla/support/secret.hpp>

#include <cstdint>
#include <string>

namespace flotilla::aws {

/// The driver's options ([driver.aws] in the topology).
struct Options {
  std::string region;         ///< "": AWS_REGION, AWS_DEFAULT_REGION, the profile's region
  std::string endpoint;       ///< "": https://ec2.REGION.amazonaws.com
  std::string profile;        ///< "": AWS_PROFILE or default
  std::string access_key_id;      ///< secret reference ("env:NAME"); "": the credential chain
  std::string secret_access_key;  ///< secret reference, with access_key_id
  std::string session_token;      ///< secret reference, for temporary keys
  std::string instance_type = "t3.small";
  std::string ami;            ///< "": the newest image named ami_name owned by ami_owner
  std::string ami_owner = "136693071363";  ///< Debian's AWS account
  std::string ami_name = "debian-12-amd64-*";
  std::string vpc_id;         ///< "": the region's default VPC
  std::string subnet_id;      ///< "": EC2 picks a subnet of the default VPC
  std::string operator_cidr;  ///< required: who may reach SSH and Docker's TLS port
  std::int64_t docker_port = 2376;
  std::int64_t ingress_port = 8080;  ///< 0: none
  std::string ingress_cidr = "0.0.0.0/0";
  std::int64_t running_timeout = 300;  ///< seconds for an instance to be running
  std::int64_t docker_timeout = 600;   ///< seconds for Docker to answer over TLS; 0: do not wait
  std::string files_image = "busybox:latest";
};

/// The DNS name a node's Docker server certificate is issued for, before EC2 gives the node an
/// address: NODE.CLUSTER.flotilla.internal (labels lower-cased, other characters as '-').
[[nodiscard]] std::string docker_server_name(const std::string& cluster, const std::string& node);

/// The cluster's identity in tags and names: its name and 8 hex digits of name and state
/// directory, so two clusters of one name in different directories never share resources.
[[nodiscard]] std::string cluster_id(const sdk::json& cluster);

/// The ClientToken of a node's RunInstances: the same for the same cluster, node and
/// generation (a generation is one instance; replacing a terminated one starts the next).
[[nodiscard]] std::string client_token(const std::string& cluster_id, const std::string& node, std::int64_t generation);

/// The cloud-init user data (a #cloud-config document) that installs Docker and runs dockerd
/// with --tlsverify on `docker_port` with these PEM texts. Holds the node's private key: it is
/// handed to EC2 only, never logged or stored in state.
[[nodiscard]] std::string cloud_init_user_data(const std::string& ca_pem, const std::string& cert_pem, const std::string& key_pem,
                                               std::int64_t docker_port);

class AwsDriver final : public flotilla::sdk::Driver {
 public:
  /// `env` is where credentials and region come from (the process environment by default).
  AwsDriver(support::EnvLookup env = support::process_env) : env_(std::move(env)) {}
  sdk::json validate(sdk::Context& ctx, const sdk::json& request) override;
  sdk::json create(sdk::Context& ctx, const sdk::json& request) override;
  sdk::json inspect(sdk::Context& ctx, const sdk::json& request) override;
  sdk::json destroy(sdk::Context& ctx, const sdk::json& request) override;

 private:
  support::EnvLookup env_;
};

/// The manifest (JSON text, with the option schema); lives as long as the process.
[[nodiscard]] const char* manifest();

}  // namespace flotilla::aws
