#include "driver_aws/driver.hpp"

#include <flotilla/support/aws_credentials.hpp>
#include <flotilla/support/certificates.hpp>
#include <flotilla/support/config_map.hpp>
#include <flotilla/support/docker_client.hpp>
#include <flotilla/support/ec2_client.hpp>
#include <flotilla/support/encoding.hpp>
#include <flotilla/support/files.hpp>
#include <flotilla/support/plugin_options.hpp>
#include <flotilla/support/request.hpp>
#include <flotilla/support/ssh_keys.hpp>
#include <flotilla/support/wait.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <optional>

namespace flotilla::aws {
namespace {

namespace fs = std::filesystem;
namespace s = flotilla::support;
using flotilla::sdk::Context;
using flotilla::sdk::Error;
using flotilla::sdk::Invalid;
using flotilla::sdk::json;
using flotilla::support::str_or;
using namespace std::chrono_literals;

constexpr const char* kClusterTag = "flotilla:cluster";
constexpr const char* kNodeTag = "flotilla:node";

const s::ConfigMap<Options>& options_map() {
  static const auto map =
      s::ConfigMap<Options>()
          .string("region", &Options::region, "AWS region; default AWS_REGION, AWS_DEFAULT_REGION, then the profile's region")
          .pattern(R"((|[a-z]{2}(-[a-z]+)+-\d))")
          .string("endpoint", &Options::endpoint,
                  "EC2 endpoint URL; default https://ec2.REGION.amazonaws.com (set for other partitions or a stand-in)")
          .string("profile", &Options::profile, "Profile of the shared credentials and config files; default AWS_PROFILE or default")
          .string("access_key_id", &Options::access_key_id,
                  "Access key id as a reference (env:NAME or file:/path); default the credential chain (environment, profile, IMDSv2)")
          .secret()
          .string("secret_access_key", &Options::secret_access_key, "Secret access key as a reference, with access_key_id")
          .secret()
          .string("session_token", &Options::session_token, "Session token of temporary keys, as a reference")
          .secret()
          .string("instance_type", &Options::instance_type, "EC2 instance type of every node")
          .string("ami", &Options::ami, "Image of every node; default the newest ami_name image of ami_owner, looked up at run time")
          .pattern(R"((|ami-[0-9a-f]+))")
          .string("ami_owner", &Options::ami_owner, "Owner of the default image (136693071363 is Debian)")
          .string("ami_name", &Options::ami_name, "Name pattern of the default image")
          .string("vpc_id", &Options::vpc_id, "VPC of the security group; default the region's default VPC")
          .string("subnet_id", &Options::subnet_id, "Subnet of the instances; default one EC2 picks in the default VPC")
          .string("operator_cidr", &Options::operator_cidr,
                  "IPv4 network allowed to reach SSH and Docker's TLS port, e.g. your address/32; required")
          .pattern(R"((|\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}/\d{1,2}))")
          .integer("docker_port", &Options::docker_port, "TCP port of dockerd's TLS endpoint on every node")
          .range(1, 65535)
          .integer("ingress_port", &Options::ingress_port, "TCP port open to ingress_cidr (the ingress addon's port); 0 for none")
          .range(0, 65535)
          .string("ingress_cidr", &Options::ingress_cidr, "IPv4 network allowed to reach the ingress port")
          .pattern(R"(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}/\d{1,2})")
          .integer("running_timeout", &Options::running_timeout, "Seconds an instance may take to be running")
          .range(1, 3600)
          .integer("docker_timeout", &Options::docker_timeout,
                   "Seconds Docker may take to answer over TLS after boot (cloud-init installs it); 0 to not wait")
          .range(0, 7200)
          .string("files_image", &Options::files_image,
                  "Image (with `rm`) of the containers through which the docker runtime places files in volumes on the nodes");
  return map;
}

std::string dns_label(const std::string& text) {
  std::string out;
  for (const char c : text) out += std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::tolower(c)) : '-';
  while (!out.empty() && out.front() == '-') out.erase(0, 1);
  while (!out.empty() && out.back() == '-') out.pop_back();
  if (out.size() > 63) out.resize(63);
  return out.empty() ? "x" : out;
}

/// What one call of the driver works with: options, names and a signed EC2 client.
struct Session {
  Options o;
  std::string cluster;  ///< the cluster's name
  std::string id;       ///< cluster_id()
  fs::path dir;         ///< STATE_DIR/aws: key, CA, certificates, generations
  std::string region;
  std::optional<s::Ec2Client> ec2;
};

fs::path state_dir_of(const json& cluster) {
  const std::string dir = str_or(cluster, "state_dir");
  if (dir.empty() || !fs::path(dir).is_absolute())
    throw Invalid("driver aws: the cluster has no absolute state_dir; the engine gives one to every driver call");
  return fs::path(dir) / "aws";
}

/// The message of an EC2 error as the user should read it: what was refused and what to do.
std::string explain(const s::Ec2Error& e, const Session& ss) {
  const std::string action = e.action();
  const std::string said = e.code().empty() ? std::string(e.what()) : e.code() + ": " + e.error_message();
  if (e.code() == "UnauthorizedOperation")
    return "EC2 refused " + action + " (" + said + "); the credentials' IAM policy must allow ec2:" + action;
  if (e.code() == "AuthFailure" || e.code() == "SignatureDoesNotMatch" || e.code() == "InvalidClientTokenId")
    return "EC2 at " + ss.ec2->endpoint() + " rejected the request for region " + ss.region + " (" + said +
           "); check that the region exists and the access key is valid";
  if (e.status() == 0)
    return "cannot reach EC2 at " + ss.ec2->endpoint() + " for " + action + " (" + said + "); check region " + ss.region +
           " (a region that does not exist has no endpoint) and the network";
  return "EC2 " + action + " failed (" + said + ")";
}

Session open_session(const json& req, const s::EnvLookup& env, Context* ctx) {
  Session ss;
  ss.o = s::plugin_options(options_map(), req, "driver aws");
  const json cluster = req.value("cluster", json::object());
  ss.cluster = str_or(cluster, "name");
  ss.id = cluster_id(cluster);
  ss.dir = state_dir_of(cluster);
  s::AwsCredentialOptions copts;
  copts.env = env;
  copts.profile = ss.o.profile;
  try {
    ss.region = s::resolve_aws_region(ss.o.region, copts);
  } catch (const s::AwsCredentialsError& e) {
    throw Invalid(std::string("driver aws: ") + e.what() + "; or set region in [driver.aws]");
  }
  // Resolved once here, so that missing keys are reported before anything else happens.
  std::optional<s::AwsCredentials> first;
  if (!ss.o.access_key_id.empty() || !ss.o.secret_access_key.empty()) {
    if (ss.o.access_key_id.empty() || ss.o.secret_access_key.empty())
      throw Invalid("driver aws: access_key_id and secret_access_key go together; set both in [driver.aws] (as env:NAME), or neither "
                    "to use the credential chain");
    first = s::AwsCredentials{.access_key_id = ss.o.access_key_id, .secret_access_key = s::Secret(ss.o.secret_access_key),
                              .session_token = s::Secret(ss.o.session_token), .source = "[driver.aws] options", .expiration = {}};
    copts.env = [first](const std::string& name) -> std::optional<std::string> {
      // Later refreshes give the same keys: the options are all there is.
      if (name == "AWS_ACCESS_KEY_ID") return first->access_key_id;
      if (name == "AWS_SECRET_ACCESS_KEY") return std::string(first->secret_access_key.reveal());
      if (name == "AWS_SESSION_TOKEN" && !first->session_token.reveal().empty()) return std::string(first->session_token.reveal());
      return std::nullopt;
    };
  }
  try {
    if (!first) first = s::resolve_aws_credentials(copts);
  } catch (const s::AwsCredentialsError& e) {
    throw Invalid(std::string("driver aws: ") + e.what());
  }
  s::Ec2ClientOptions eo;
  eo.region = ss.region;
  eo.endpoint = ss.o.endpoint;
  eo.credentials = [first, copts, used = false]() mutable {
    if (!used) {
      used = true;
      return *first;
    }
    return s::resolve_aws_credentials(copts);
  };
  if (ctx) {
    eo.cancelled = [ctx] { return ctx->cancelled(); };
    eo.log = [ctx](const std::string& line) { ctx->debug(line); };
  }
  ss.ec2.emplace(std::move(eo));
  return ss;
}

/// Runs an EC2 call, turning its errors into messages that say what to do.
template <class F>
auto ec2(Session& ss, F&& f) {
  try {
    return f(*ss.ec2);
  } catch (const s::Ec2Error& e) {
    throw Error(FLT_ERROR, "driver aws: " + explain(e, ss));
  }
}

std::vector<s::Ec2Tag> cluster_tags(const Session& ss, const std::string& name) {
  return {{"Name", name}, {kClusterTag, ss.id}};
}

// ---- preflight: what can be known to be wrong before anything is created ----

std::string resolve_ami(Session& ss) {
  if (!ss.o.ami.empty()) {
    bool found = false;
    ec2(ss, [&](s::Ec2Client& c) {
      try {
        const auto r = c.call("DescribeImages", s::Ec2Params().list("ImageId", {ss.o.ami}));
        found = !r.items("imagesSet").empty();
      } catch (const s::Ec2Error& e) {
        if (e.code() != "InvalidAMIID.NotFound" && e.code() != "InvalidAMIID.Malformed") throw;
      }
      return 0;
    });
    if (!found)
      throw Invalid("driver aws: image " + ss.o.ami + " (option ami) does not exist in region " + ss.region +
                    " or is not visible to this account; use an image of this region, or leave ami unset for Debian 12");
    return ss.o.ami;
  }
  // One call: DescribeImages answers every match at once unless asked for pages (MaxResults),
  // and the API version's model (botocore 1.29) has no NextToken for it.
  std::string best, best_date;
  ec2(ss, [&](s::Ec2Client& c) {
    const auto page = c.call("DescribeImages", s::Ec2Params().list("Owner", {ss.o.ami_owner}).filters(
                                                   {{"name", {ss.o.ami_name}}, {"architecture", {"x86_64"}}, {"state", {"available"}}}));
    for (const auto* image : page.items("imagesSet")) {
      const std::string date = image->child_text("creationDate");
      if (best.empty() || date > best_date) {
        best = image->child_text("imageId");
        best_date = date;
      }
    }
    return 0;
  });
  if (best.empty())
    throw Invalid("driver aws: no image named " + ss.o.ami_name + " owned by " + ss.o.ami_owner + " in region " + ss.region +
                  "; set ami in [driver.aws] to an image of this region");
  return best;
}

void check_instance_type(Session& ss) {
  bool offered = false;
  ec2(ss, [&](s::Ec2Client& c) {
    c.call_pages("DescribeInstanceTypeOfferings",
                 s::Ec2Params().set("LocationType", "region").filters({{"instance-type", {ss.o.instance_type}}}),
                 [&](const s::XmlElement& page) { offered = offered || !page.items("instanceTypeOfferingSet").empty(); });
    return 0;
  });
  if (!offered)
    throw Invalid("driver aws: instance type " + ss.o.instance_type + " (option instance_type) is not offered in region " + ss.region +
                  "; choose one listed by `aws ec2 describe-instance-type-offerings --region " + ss.region + "`");
}

// ---- cluster resources ----

std::string key_name(const Session& ss) { return "flotilla-" + ss.id; }
std::string group_name(const Session& ss) { return "flotilla-" + ss.id; }

/// "SHA256:abc" and EC2's "abc=" name the same key.
std::string bare_fingerprint(std::string f) {
  if (f.starts_with("SHA256:")) f.erase(0, 7);
  while (!f.empty() && f.back() == '=') f.pop_back();
  return f;
}

void ensure_key_pair(Session& ss, Context& ctx) {
  const s::SshKeyPair key = s::ensure_ssh_key_pair(ss.dir / "ssh_key", "flotilla " + ss.cluster);
  std::optional<std::string> existing;
  ec2(ss, [&](s::Ec2Client& c) {
    try {
      const auto r = c.call("DescribeKeyPairs", s::Ec2Params().list("KeyName", {key_name(ss)}));
      for (const auto* k : r.items("keySet")) existing = k->child_text("keyFingerprint");
    } catch (const s::Ec2Error& e) {
      if (e.code() != "InvalidKeyPair.NotFound") throw;
    }
    return 0;
  });
  if (existing) {
    if (bare_fingerprint(*existing) != bare_fingerprint(key.fingerprint))
      throw Error(FLT_ERROR, "driver aws: key pair " + key_name(ss) + " in region " + ss.region + " has fingerprint " + *existing +
                                 ", not that of " + key.private_key.string() + " (" + key.fingerprint +
                                 "); restore that key file, or delete the key pair in EC2 if no instance uses it");
    return;
  }
  ec2(ss, [&](s::Ec2Client& c) {
    return c.call("ImportKeyPair", s::Ec2Params()
                                       .set("KeyName", key_name(ss))
                                       .set("PublicKeyMaterial", s::base64_encode(key.public_key))
                                       .tag_specification("key-pair", cluster_tags(ss, key_name(ss))));
  });
  ctx.info("imported key pair " + key_name(ss) + " (" + key.fingerprint + ")");
}

/// The cluster's security group (id, and whether it has rules), if it exists.
std::optional<std::pair<std::string, bool>> find_group(Session& ss) {
  std::optional<std::pair<std::string, bool>> out;
  s::Ec2Params p;
  std::vector<s::Ec2Filter> f = {{"group-name", {group_name(ss)}}, {"tag:" + std::string(kClusterTag), {ss.id}}};
  if (!ss.o.vpc_id.empty()) f.push_back({"vpc-id", {ss.o.vpc_id}});
  p.filters(f);
  ec2(ss, [&](s::Ec2Client& c) {
    c.call_pages("DescribeSecurityGroups", p, [&](const s::XmlElement& page) {
      for (const auto* g : page.items("securityGroupInfo"))
        out = std::make_pair(g->child_text("groupId"), !g->items("ipPermissions").empty());
    });
    return 0;
  });
  return out;
}

std::string ensure_security_group(Session& ss, Context& ctx) {
  auto found = find_group(ss);
  std::string id;
  if (found) {
    id = found->first;
  } else {
    s::Ec2Params p;
    p.set("GroupName", group_name(ss)).set("GroupDescription", "Flotilla cluster " + ss.cluster + " (" + ss.id + ")");
    if (!ss.o.vpc_id.empty()) p.set("VpcId", ss.o.vpc_id);
    p.tag_specification("security-group", cluster_tags(ss, group_name(ss)));
    const auto r = ec2(ss, [&](s::Ec2Client& c) { return c.call("CreateSecurityGroup", p); });
    id = r.child_text("groupId");
    ctx.info("created security group " + id + " (" + group_name(ss) + ")");
  }
  if (found && found->second) return id;
  // SSH and Docker's TLS port from the operator only; the ingress port as configured; all
  // traffic between members through the group itself.
  s::Ec2Params p;
  p.set("GroupId", id);
  int n = 0;
  const auto tcp = [&](std::int64_t port, const std::string& cidr) {
    const std::string k = "IpPermissions." + std::to_string(++n) + ".";
    p.set(k + "IpProtocol", "tcp").set(k + "FromPort", std::to_string(port)).set(k + "ToPort", std::to_string(port));
    p.set(k + "IpRanges.1.CidrIp", cidr);
  };
  tcp(22, ss.o.operator_cidr);
  tcp(ss.o.docker_port, ss.o.operator_cidr);
  if (ss.o.ingress_port > 0) tcp(ss.o.ingress_port, ss.o.ingress_cidr);
  const std::string k = "IpPermissions." + std::to_string(++n) + ".";
  p.set(k + "IpProtocol", "-1").set(k + "Groups.1.GroupId", id);
  ec2(ss, [&](s::Ec2Client& c) {
    try {
      c.call("AuthorizeSecurityGroupIngress", p);
    } catch (const s::Ec2Error& e) {
      if (e.code() != "InvalidPermission.Duplicate") throw;
    }
    return 0;
  });
  return id;
}

struct ClusterTls {
  s::CertificateAuthority ca;
  fs::path dir;
};

ClusterTls ensure_cluster_tls(const Session& ss) {
  ClusterTls t{s::ensure_certificate_authority(ss.dir / "tls", "flotilla " + ss.cluster + " CA"), ss.dir / "tls"};
  (void)s::ensure_certificate(t.ca, {.common_name = "flotilla client", .ip_addresses = {}, .dns_names = {}, .use = s::CertificateUse::client},
                              t.dir / "cert.pem", t.dir / "key.pem");
  return t;
}

// ---- instances ----

struct Instance {
  std::string id;
  std::string state;  ///< pending, running, stopping, stopped, shutting-down, terminated
  std::string public_ip;
  std::string private_ip;
};

Instance instance_of(const s::XmlElement& item) {
  return {item.child_text("instanceId"), item.at("instanceState/name") ? item.at("instanceState/name")->text : "",
          item.child_text("ipAddress"), item.child_text("privateIpAddress")};
}

/// Instances carrying the cluster's tag (and the node's, when `node` is not empty).
std::vector<Instance> tagged_instances(Session& ss, const std::string& node) {
  std::vector<s::Ec2Filter> f = {{"tag:" + std::string(kClusterTag), {ss.id}}};
  if (!node.empty()) f.push_back({"tag:" + std::string(kNodeTag), {node}});
  std::vector<Instance> out;
  ec2(ss, [&](s::Ec2Client& c) {
    c.call_pages("DescribeInstances", s::Ec2Params().filters(f), [&](const s::XmlElement& page) {
      for (const auto* r : page.items("reservationSet"))
        for (const auto* i : r->items("instancesSet")) out.push_back(instance_of(*i));
    });
    return 0;
  });
  return out;
}

bool gone(const Instance& i) { return i.state == "terminated" || i.state == "shutting-down"; }

/// The instance by id; nullopt while EC2 does not know it yet (eventual consistency).
std::optional<Instance> describe_instance(Session& ss, const std::string& id) {
  std::optional<Instance> out;
  ec2(ss, [&](s::Ec2Client& c) {
    try {
      const auto r = c.call("DescribeInstances", s::Ec2Params().list("InstanceId", {id}));
      for (const auto* res : r.items("reservationSet"))
        for (const auto* i : res->items("instancesSet")) out = instance_of(*i);
    } catch (const s::Ec2Error& e) {
      if (e.code() != "InvalidInstanceID.NotFound") throw;
    }
    return 0;
  });
  return out;
}

/// The launch generation of `node` that `file` holds, 0 when there is none yet. A file that holds
/// no number (damaged by hand or by a full disk) is read as 0 and said so: launch_instance moves
/// past the token of any instance that was terminated, so this never launches a second one.
std::int64_t read_generation(const Context& ctx, const std::string& node, const fs::path& file) {
  std::string text = s::read_text(file);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  if (text.empty()) return 0;
  std::int64_t generation = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), generation);
  if (ec == std::errc() && end == text.data() + text.size() && generation >= 0) return generation;
  ctx.warn("node " + node + ": " + file.string() + " holds no launch generation; starting again from 0");
  return 0;
}

/// Runs the node's instance from `ami` in `group` with `user_data`, tagged with the cluster and
/// the node, and returns it as RunInstances answered (pending, usually). `generation` picks the
/// ClientToken and is written to `generation_file` before each call; it moves on when EC2
/// answers with a terminated instance. Throws Error when EC2 refuses or keeps answering so.
Instance launch_instance(Session& ss, Context& ctx, const std::string& node, const std::string& ami, const std::string& group,
                         const std::string& user_data, const fs::path& generation_file, std::int64_t& generation) {
  const std::string encoded = s::base64_encode(user_data);
  const std::vector<s::Ec2Tag> tags = {{"Name", ss.cluster + "-" + node}, {kClusterTag, ss.id}, {kNodeTag, node}};
  // A ClientToken whose instance is terminated answers with that instance again: the next
  // generation gets a new token. Recorded before the call, so a resumed create reuses it.
  for (int attempt = 0; attempt < 2; ++attempt) {
    s::write_file_atomic(generation_file, std::to_string(generation) + "\n");
    s::Ec2Params p;
    p.set("ImageId", ami).set("InstanceType", ss.o.instance_type).set("MinCount", "1").set("MaxCount", "1");
    p.set("KeyName", key_name(ss)).set("ClientToken", client_token(ss.id, node, generation)).set("UserData", encoded);
    if (!ss.o.subnet_id.empty()) p.set("SubnetId", ss.o.subnet_id);
    p.list("SecurityGroupId", {group});
    p.tag_specification("instance", tags).tag_specification("volume", tags);
    const auto r = ec2(ss, [&](s::Ec2Client& c) { return c.call("RunInstances", p); });
    std::optional<Instance> launched;
    for (const auto* i : r.items("instancesSet")) launched = instance_of(*i);
    if (!launched) throw Error(FLT_ERROR, "driver aws: RunInstances for node " + node + " answered without an instance");
    if (!gone(*launched)) {
      ctx.info("node " + node + " is instance " + launched->id);
      return *launched;
    }
    ctx.info("instance " + launched->id + " of node " + node + " is " + launched->state + "; starting a new one");
    ++generation;
  }
  throw Error(FLT_ERROR, "driver aws: RunInstances for node " + node +
                             " keeps answering with terminated instances; see why in the EC2 console (State transition reason), "
                             "then run up again");
}

Instance wait_running(Session& ss, Context& ctx, const std::string& node, const std::string& id) {
  Instance last{id, "unknown", "", ""};
  const bool ok = s::wait_until(
      std::chrono::seconds(ss.o.running_timeout), 2s,
      [&] {
        if (auto i = describe_instance(ss, id)) last = *i;
        if (gone(last)) throw Error(FLT_ERROR, "driver aws: instance " + id + " of node " + node + " is " + last.state +
                                                   " while starting; see its console output in EC2, then run up again");
        return last.state == "running" && (!last.public_ip.empty() || !last.private_ip.empty());
      },
      [&] { return ctx.cancelled(); });
  if (!ok)
    throw Error(FLT_ERROR, "driver aws: instance " + id + " of node " + node + " is still " + last.state + " after " +
                               std::to_string(ss.o.running_timeout) + " s (option running_timeout); run up again to keep waiting");
  return last;
}

json docker_runtime_config(const Session& ss, const ClusterTls& tls, const std::string& node, const std::string& address) {
  const std::string host = "tcp://" + address + ":" + std::to_string(ss.o.docker_port);
  return json{{"host", host},
              {"tls",
               {{"ca", tls.ca.cert.string()},
                {"cert", (tls.dir / "cert.pem").string()},
                {"key", (tls.dir / "key.pem").string()},
                {"server_name", docker_server_name(ss.cluster, node)}}},
              {"cluster", ss.cluster},
              {"files_image", ss.o.files_image},
              {"env", {{"DOCKER_HOST", host}, {"DOCKER_TLS_VERIFY", "1"}, {"DOCKER_CERT_PATH", tls.dir.string()}}}};
}

void wait_docker(const Session& ss, Context& ctx, const std::string& node, const json& runtime_config) {
  if (ss.o.docker_timeout == 0) return;
  json view = {{"name", node}, {"runtime_config", runtime_config}};
  s::DockerEndpoint endpoint = s::docker_endpoint_of(view);
  endpoint.cancelled = [&ctx] { return ctx.cancelled(); };
  std::string last;
  const bool ok = s::wait_until(
      std::chrono::seconds(ss.o.docker_timeout), 5s,
      [&] {
        try {
          s::DockerClient docker(endpoint);
          (void)docker.version();
          return true;
        } catch (const std::exception& e) {
          last = e.what();
          return false;
        }
      },
      [&] { return ctx.cancelled(); });
  if (!ok)
    throw Error(FLT_ERROR, "driver aws: Docker on node " + node + " did not answer over TLS within " +
                               std::to_string(ss.o.docker_timeout) + " s (option docker_timeout): " + last +
                               "; cloud-init may still be installing it (see the instance's console output), run up again");
}

}  // namespace

std::string docker_server_name(const std::string& cluster, const std::string& node) {
  return dns_label(node) + "." + dns_label(cluster) + ".flotilla.internal";
}

std::string cluster_id(const json& cluster) {
  const std::string name = str_or(cluster, "name");
  return dns_label(name).substr(0, 40) + "-" + s::stable_hash(name + "\n" + str_or(cluster, "state_dir")).substr(0, 8);
}

std::string client_token(const std::string& id, const std::string& node, std::int64_t generation) {
  // At most 64 ASCII characters; the hash keeps it short whatever the names.
  return "flt-" + s::sha256_hex(id + "\n" + node + "\n" + std::to_string(generation)).substr(0, 48);
}

json AwsDriver::validate(Context&, const json& req) {
  auto filled = options_map().fill(req.value("config", json::object()));
  json errors = json::array();
  for (const auto& e : filled.errors) errors.push_back({{"message", "driver aws: " + e.message}, {"key", e.key}});
  if (filled.config.operator_cidr.empty())
    errors.push_back({{"message", "driver aws: operator_cidr is required: the IPv4 network allowed to reach SSH and Docker's "
                                  "TLS port on the nodes, e.g. operator_cidr = \"203.0.113.7/32\" (your public address)"},
                      {"key", "operator_cidr"}});
  return json{{"errors", errors}};
}

json AwsDriver::create(Context& ctx, const json& req) {
  Session ss = open_session(req, env_, &ctx);
  if (ss.o.operator_cidr.empty())
    throw Invalid("driver aws: operator_cidr is required in [driver.aws] (e.g. \"203.0.113.7/32\", your public address)");
  const std::string node = str_or(req.value("node", json::object()), "name");
  if (node.empty()) throw Invalid("driver aws: the request names no node");
  fs::create_directories(ss.dir / "nodes" / node);

  std::string ami, group;
  ClusterTls tls;
  {
    // Nodes are created in parallel; the cluster's resources are made by the first of them.
    const s::FileLock lock((ss.dir / "cluster.lock").string());
    // Read-only checks first, so that bad input fails before anything is created.
    ami = resolve_ami(ss);
    check_instance_type(ss);
    ensure_key_pair(ss, ctx);
    group = ensure_security_group(ss, ctx);
    tls = ensure_cluster_tls(ss);
  }
  const fs::path node_dir = ss.dir / "nodes" / node;
  const std::string name = docker_server_name(ss.cluster, node);
  (void)s::ensure_certificate(tls.ca, {.common_name = name, .ip_addresses = {}, .dns_names = {name}, .use = s::CertificateUse::server},
                              node_dir / "server.pem", node_dir / "server-key.pem");

  // An instance of this node that is not terminated is adopted (started when stopped).
  std::optional<Instance> current;
  for (const Instance& i : tagged_instances(ss, node))
    if (!gone(i)) current = i;
  if (current && (current->state == "stopping" || current->state == "stopped")) {
    if (current->state == "stopping") {
      (void)s::wait_until(std::chrono::seconds(ss.o.running_timeout), 2s, [&] {
        if (auto i = describe_instance(ss, current->id)) current = *i;
        return current->state != "stopping";
      }, [&] { return ctx.cancelled(); });
    }
    ec2(ss, [&](s::Ec2Client& c) { return c.call("StartInstances", s::Ec2Params().list("InstanceId", {current->id})); });
    ctx.info("started stopped instance " + current->id + " of node " + node);
  }
  const fs::path generation_file = node_dir / "generation";
  std::int64_t generation = read_generation(ctx, node, generation_file);
  if (!current)
    current = launch_instance(ss, ctx, node, ami, group,
                              cloud_init_user_data(s::read_text(tls.ca.cert), s::read_text(node_dir / "server.pem"),
                                                   s::read_text(node_dir / "server-key.pem"), ss.o.docker_port),
                              generation_file, generation);
  const Instance running = wait_running(ss, ctx, node, current->id);
  const std::string address = running.public_ip.empty() ? running.private_ip : running.public_ip;
  const json runtime_config = docker_runtime_config(ss, tls, node, address);
  wait_docker(ss, ctx, node, runtime_config);
  return json{{"address", address},
              {"runtime", "docker"},
              {"runtime_config", runtime_config},
              {"data",
               {{"instance_id", running.id},
                {"region", ss.region},
                {"private_ip", running.private_ip},
                {"security_group", group},
                {"generation", generation}}}};
}

json AwsDriver::inspect(Context& ctx, const json& req) {
  Session ss = open_session(req, env_, &ctx);
  const std::string node = str_or(req.value("node", json::object()), "name");
  std::string state = "missing";
  for (const Instance& i : tagged_instances(ss, node)) {
    if (i.state == "pending" || i.state == "running") state = "running";
    else if ((i.state == "stopping" || i.state == "stopped") && state != "running") state = "stopped";
  }
  return json{{"state", state}};
}

json AwsDriver::destroy(Context& ctx, const json& req) {
  Session ss = open_session(req, env_, &ctx);
  const std::string node = str_or(req.value("node", json::object()), "name");
  std::vector<std::string> ids;
  for (const Instance& i : tagged_instances(ss, node))
    if (i.state != "terminated") ids.push_back(i.id);
  if (!ids.empty()) {
    ec2(ss, [&](s::Ec2Client& c) { return c.call("TerminateInstances", s::Ec2Params().list("InstanceId", ids)); });
    ctx.info("terminating node " + node + " (" + ids.front() + ")");
    const bool ok = s::wait_until(std::chrono::seconds(ss.o.running_timeout), 2s, [&] {
      for (const std::string& id : ids)
        if (auto i = describe_instance(ss, id); i && i->state != "terminated") return false;
      return true;
    }, [&] { return ctx.cancelled(); });
    if (!ok)
      throw Error(FLT_ERROR, "driver aws: instance " + ids.front() + " of node " + node + " is not terminated after " +
                                 std::to_string(ss.o.running_timeout) + " s; run down again");
  }
  std::error_code ec;
  fs::remove_all(ss.dir / "nodes" / node, ec);

  // The last node of the cluster takes the security group and key pair with it: only those
  // carrying the cluster's tag, found by that tag.
  const s::FileLock lock((ss.dir / "cluster.lock").string());
  for (const Instance& i : tagged_instances(ss, ""))
    if (i.state != "terminated") return json::object();
  if (auto group = find_group(ss)) {
    // The instances' network interfaces leave the group a little after termination.
    std::string last;
    const bool ok = s::wait_until(std::chrono::seconds(ss.o.running_timeout), 3s, [&] {
      try {
        ss.ec2->call("DeleteSecurityGroup", s::Ec2Params().set("GroupId", group->first));
        return true;
      } catch (const s::Ec2Error& e) {
        if (e.code() == "InvalidGroup.NotFound") return true;
        if (e.code() != "DependencyViolation") throw Error(FLT_ERROR, "driver aws: " + explain(e, ss));
        last = e.error_message();
        return false;
      }
    }, [&] { return ctx.cancelled(); });
    if (!ok) throw Error(FLT_ERROR, "driver aws: security group " + group->first + " is still in use (" + last + "); run down again");
    ctx.info("deleted security group " + group->first);
  }
  std::vector<std::string> keys;
  ec2(ss, [&](s::Ec2Client& c) {
    const auto r = c.call("DescribeKeyPairs", s::Ec2Params().filters({{"tag:" + std::string(kClusterTag), {ss.id}}}));
    for (const auto* k : r.items("keySet")) keys.push_back(k->child_text("keyName"));
    return 0;
  });
  for (const std::string& k : keys) {
    ec2(ss, [&](s::Ec2Client& c) { return c.call("DeleteKeyPair", s::Ec2Params().set("KeyName", k)); });
    ctx.info("deleted key pair " + k);
  }
  fs::remove_all(ss.dir / "tls", ec);
  fs::remove(ss.dir / "ssh_key", ec);
  fs::remove(ss.dir / "ssh_key.pub", ec);
  return json::object();
}

const char* manifest() {
  // EC2 calls are bounded by max_parallel: at most four nodes are created or removed at once,
  // each with its own client, which keeps a cluster's requests under EC2's request-rate limits.
  static const std::string text = options_map().manifest(R"json({
  "provides": [],
  "requires": [],
  "mutable_options": [],
  "runtime": "docker",
  "max_parallel": 4
})json");
  return text.c_str();
}

}  // namespace flotilla::aws
