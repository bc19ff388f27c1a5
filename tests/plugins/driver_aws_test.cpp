// The aws driver, loaded as a plugin, against a fake EC2 on 127.0.0.1: the in-memory cloud of
// support/fake_ec2_cloud (key pairs, security groups, instances, tags) behind support/fake_ec2,
// which checks every request's SigV4 signature, with throttling, eventual consistency,
// paginated answers, instances that stop or shut down behind Flotilla's back and a security
// group still in use after termination. The nodes'
// docker_timeout is 0 except where a test waits for Docker's TLS port.
#include "driver_aws/driver.hpp"

#include "flotilla/support/docker_client.hpp"
#include "flotilla/support/encoding.hpp"
#include "flotilla/support/files.hpp"
#include "flotilla/support/request.hpp"
#include "support/docker_lab.hpp"
#include "support/fake_ec2.hpp"
#include "support/fake_ec2_cloud.hpp"
#include "support/plugin_harness.hpp"
#include "support/process_util.hpp"
#include "support/skip.hpp"
#include "support/test_resources.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

namespace fs = std::filesystem;
namespace s = flotilla::support;
using flotilla::test::ec2_error;
using flotilla::test::FakeEc2;
using flotilla::test::FakeEc2Cloud;
using flotilla::test::PluginHarness;
using flotilla::test::proc::ScratchDir;
using json = nlohmann::json;

namespace {

// Sets environment variables for one test and puts the old values back.
class ScopedEnv {
 public:
  void set(const std::string& name, const std::optional<std::string>& value) {
    if (!saved_.count(name)) {
      const char* old = std::getenv(name.c_str());
      saved_[name] = old ? std::optional<std::string>(old) : std::nullopt;
    }
    if (value) ::setenv(name.c_str(), value->c_str(), 1);
    else ::unsetenv(name.c_str());
  }
  ~ScopedEnv() {
    for (const auto& [name, value] : saved_) {
      if (value) ::setenv(name.c_str(), value->c_str(), 1);
      else ::unsetenv(name.c_str());
    }
  }

 private:
  std::map<std::string, std::optional<std::string>> saved_;
};

void use_fake_credentials(ScopedEnv& env, const fs::path& dir) {
  env.set("AWS_ACCESS_KEY_ID", flotilla::test::kFakeEc2KeyId);
  env.set("AWS_SECRET_ACCESS_KEY", flotilla::test::kFakeEc2Secret);
  env.set("AWS_SESSION_TOKEN", std::nullopt);
  env.set("AWS_PROFILE", std::nullopt);
  env.set("AWS_REGION", std::nullopt);
  env.set("AWS_DEFAULT_REGION", std::nullopt);
  env.set("AWS_SHARED_CREDENTIALS_FILE", (dir / "no-credentials").string());
  env.set("AWS_CONFIG_FILE", (dir / "no-config").string());
  env.set("AWS_EC2_METADATA_DISABLED", "true");
}


const std::set<std::string> kCreatingActions = {"ImportKeyPair", "CreateSecurityGroup", "AuthorizeSecurityGroupIngress", "RunInstances",
                                                "StartInstances", "CreateTags"};

int creating_calls(const std::vector<FakeEc2::Params>& calls) {
  return static_cast<int>(std::count_if(calls.begin(), calls.end(), [](const auto& p) { return kCreatingActions.count(p.at("Action")); }));
}

struct Lab {
  ScratchDir dir{"flotilla-aws"};
  ScopedEnv env;
  FakeEc2Cloud cloud;
  FakeEc2 fake{[this](const FakeEc2::Params& p, int call) { return cloud(p, call); }};
  PluginHarness plugin{"driver_aws"};
  json config = {{"region", "eu-west-1"}, {"operator_cidr", "203.0.113.7/32"}, {"docker_timeout", 0}};

  Lab() {
    use_fake_credentials(env, dir.path());
    config["endpoint"] = fake.url();
  }
  json request(const std::string& node) const {
    return {{"config", config},
            {"cluster", {{"name", "demo"}, {"state_dir", (dir.path() / "state").string()}}},
            {"node", {{"name", node}, {"slot", node == "infra" ? 0 : 1}, {"workdir", (dir.path() / "state" / "nodes" / node).string()}}}};
  }
  flotilla::test::PluginCallOutcome call(const std::string& op, const std::string& node) const { return plugin.call(op, request(node)); }
};

bool cert_names(const fs::path& pem, const std::string& name) {
  BIO* bio = BIO_new_file(pem.c_str(), "r");
  if (!bio) return false;
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (!cert) return false;
  const bool ok = X509_check_host(cert, name.c_str(), name.size(), 0, nullptr) == 1;
  X509_free(cert);
  return ok;
}

}  // namespace

TEST_CASE("driver aws against a fake EC2 creates a 2-node cluster with one key pair, one group and two tagged instances",
          "[plugins][driver_aws]") {
  Lab lab;
  const fs::path aws = lab.dir.path() / "state" / "aws";
  std::vector<json> results;
  for (const std::string node : {"infra", "swarm-1"}) {
    const auto out = lab.call("create", node);
    INFO(out.describe());
    REQUIRE(out.ok());
    results.push_back(out.result);
  }
  const auto calls = lab.fake.calls();
  CHECK(lab.fake.bad_signatures() == 0);
  CHECK(lab.fake.calls_of("ImportKeyPair") == 1);
  CHECK(lab.fake.calls_of("CreateSecurityGroup") == 1);
  CHECK(lab.fake.calls_of("AuthorizeSecurityGroupIngress") == 1);
  CHECK(lab.fake.calls_of("RunInstances") == 3);  // the first was throttled and retried with its ClientToken
  CHECK(lab.cloud.instances.size() == 2);
  CHECK(lab.cloud.keys.size() == 1);
  CHECK(lab.cloud.groups.size() == 1);

  const std::string id = flotilla::aws::cluster_id({{"name", "demo"}, {"state_dir", (lab.dir.path() / "state").string()}});
  // The key pair and group carry the cluster's tag; the group's rules are the documented ones.
  CHECK(lab.cloud.keys.begin()->second.tags.at("flotilla:cluster") == id);
  CHECK(lab.cloud.groups.begin()->second.tags.at("flotilla:cluster") == id);
  for (const auto& p : calls) {
    if (p.at("Action") != "AuthorizeSecurityGroupIngress") continue;
    CHECK(p.at("IpPermissions.1.FromPort") == "22");
    CHECK(p.at("IpPermissions.1.IpRanges.1.CidrIp") == "203.0.113.7/32");
    CHECK(p.at("IpPermissions.2.FromPort") == "2376");
    CHECK(p.at("IpPermissions.2.IpRanges.1.CidrIp") == "203.0.113.7/32");
    CHECK(p.at("IpPermissions.3.FromPort") == "8080");
    CHECK(p.at("IpPermissions.4.IpProtocol") == "-1");
    CHECK(p.at("IpPermissions.4.Groups.1.GroupId") == lab.cloud.groups.begin()->first);
  }
  // The private key stays here, readable by its owner only.
  CHECK((fs::status(aws / "ssh_key").permissions() & fs::perms::all) == (fs::perms::owner_read | fs::perms::owner_write));

  const std::string ca = s::read_text(aws / "tls" / "ca.pem");
  REQUIRE(!ca.empty());
  for (std::size_t n = 0; n < 2; ++n) {
    const std::string node = n == 0 ? "infra" : "swarm-1";
    const auto& [iid, inst] = *std::find_if(lab.cloud.instances.begin(), lab.cloud.instances.end(),
                                            [&](const auto& e) { return e.second.tags.at("flotilla:node") == node; });
    CHECK(inst.tags.at("flotilla:cluster") == id);
    CHECK(inst.tags.at("Name") == "demo-" + node);
    CHECK(inst.token == flotilla::aws::client_token(id, node, 0));
    CHECK(inst.image == "ami-0new");  // the newest of Debian's images
    const std::string user_data = s::base64_decode(inst.user_data).value_or("");
    CHECK(user_data.starts_with("#cloud-config\n"));
    const std::string server_name = node + ".demo.flotilla.internal";
    const fs::path cert = aws / "nodes" / node / "server.pem";
    CHECK(cert_names(cert, server_name));
    const auto first_line = [](const std::string& pem) { return pem.substr(pem.find('\n') + 1, 64); };
    CHECK(user_data.find(first_line(s::read_text(cert))) != std::string::npos);
    CHECK(user_data.find(first_line(ca)) != std::string::npos);
    CHECK(user_data.find("--tlsverify") != std::string::npos);
    // What the docker runtime gets: the instance's address, TLS files and the certificate's name.
    const json& r = results[n];
    CHECK(r.at("runtime") == "docker");
    CHECK(r.at("address") == inst.ip);
    CHECK(r.at("runtime_config").at("host") == "tcp://" + inst.ip + ":2376");
    CHECK(r.at("runtime_config").at("tls").at("server_name") == server_name);
    CHECK(r.at("data").at("instance_id") == iid);
    // No secret in what Flotilla records or prints.
    const std::string out = r.dump();
    CHECK(out.find(flotilla::test::kFakeEc2Secret) == std::string::npos);
    CHECK(out.find("PRIVATE KEY") == std::string::npos);
  }

  // Again: nothing new is created.
  const int before = creating_calls(lab.fake.calls());
  for (const std::string node : {"infra", "swarm-1"}) {
    const auto out = lab.call("create", node);
    REQUIRE(out.ok());
    for (const auto& line : out.logs) CHECK(line.find(flotilla::test::kFakeEc2Secret) == std::string::npos);
  }
  CHECK(creating_calls(lab.fake.calls()) == before);
  CHECK(lab.cloud.instances.size() == 2);
}

TEST_CASE("driver aws against a fake EC2 reports a stopped or terminated instance and repairs it", "[plugins][driver_aws]") {
  Lab lab;
  REQUIRE(lab.call("create", "infra").ok());
  REQUIRE(lab.cloud.instances.size() == 1);
  const std::string first = lab.cloud.instances.begin()->first;
  CHECK(lab.call("inspect", "infra").result.at("state") == "running");

  lab.cloud.instances[first].state = "stopped";  // stopped behind Flotilla's back
  CHECK(lab.call("inspect", "infra").result.at("state") == "stopped");
  REQUIRE(lab.call("create", "infra").ok());
  CHECK(lab.fake.calls_of("StartInstances") == 1);
  CHECK(lab.cloud.instances.size() == 1);
  CHECK(lab.call("inspect", "infra").result.at("state") == "running");

  lab.cloud.instances[first].state = "terminated";
  CHECK(lab.call("inspect", "infra").result.at("state") == "missing");
  const auto again = lab.call("create", "infra");
  INFO(again.describe());
  REQUIRE(again.ok());
  REQUIRE(lab.cloud.instances.size() == 2);
  const auto& replacement = std::prev(lab.cloud.instances.end())->second;
  CHECK(replacement.state == "running");
  CHECK(replacement.token != lab.cloud.instances[first].token);
}

TEST_CASE("driver aws against a fake EC2 destroys only what carries its cluster tag", "[plugins][driver_aws]") {
  Lab lab;
  // Another owner's resources in the same region.
  lab.cloud.keys["someone-else"] = {"abc", {{"Name", "someone-else"}}};
  lab.cloud.groups["sg-foreign"] = {"flotilla-demo-other", {{"flotilla:cluster", "other-00000000"}}, true};
  lab.cloud.instances["i-foreign"] = {"running", {{"flotilla:cluster", "other-00000000"}, {"flotilla:node", "infra"}}, "t", "", "192.0.2.9", "ami-x"};
  for (const std::string node : {"infra", "swarm-1"}) REQUIRE(lab.call("create", node).ok());
  REQUIRE(lab.cloud.instances.size() == 3);

  REQUIRE(lab.call("destroy", "infra").ok());
  CHECK(lab.cloud.groups.size() == 2);  // swarm-1 still runs in it
  REQUIRE(lab.call("destroy", "swarm-1").ok());
  for (const auto& [id, i] : lab.cloud.instances) CHECK(i.state == (id == "i-foreign" ? "running" : "terminated"));
  CHECK(lab.cloud.groups.size() == 1);
  CHECK(lab.cloud.groups.count("sg-foreign") == 1);
  CHECK(lab.cloud.keys.size() == 1);
  CHECK(lab.cloud.keys.count("someone-else") == 1);
  CHECK(lab.call("inspect", "infra").result.at("state") == "missing");
  // Again: nothing left to remove, not an error.
  CHECK(lab.call("destroy", "infra").ok());
}

TEST_CASE("driver aws against a fake EC2 explains bad input before creating anything", "[plugins][driver_aws]") {
  const auto fails_with = [](Lab& lab, const std::string& text) {
    const auto out = lab.call("create", "infra");
    INFO(out.describe());
    CHECK_FALSE(out.ok());
    CHECK(out.error.find(text) != std::string::npos);
    CHECK(out.error.find(flotilla::test::kFakeEc2Secret) == std::string::npos);
    CHECK(creating_calls(lab.fake.calls()) == 0);
  };
  SECTION("no credentials") {
    Lab lab;
    lab.env.set("AWS_ACCESS_KEY_ID", std::nullopt);
    lab.env.set("AWS_SECRET_ACCESS_KEY", std::nullopt);
    fails_with(lab, "AWS_ACCESS_KEY_ID");
  }
  SECTION("a region the endpoint does not serve") {
    Lab lab;
    lab.config["region"] = "eu-wset-1";
    fails_with(lab, "region eu-wset-1");
  }
  SECTION("an image that does not exist") {
    Lab lab;
    lab.config["ami"] = "ami-0dead";
    fails_with(lab, "image ami-0dead (option ami) does not exist");
  }
  SECTION("an instance type the region lacks") {
    Lab lab;
    lab.config["instance_type"] = "x9.huge";
    fails_with(lab, "instance type x9.huge (option instance_type) is not offered in region eu-west-1");
  }
  SECTION("keys without permission") {
    Lab lab;
    lab.cloud.unauthorized = "DescribeImages";
    fails_with(lab, "must allow ec2:DescribeImages");
  }
  SECTION("no operator_cidr") {
    Lab lab;
    lab.config.erase("operator_cidr");
    const auto v = lab.plugin.call("validate", lab.request("infra"));
    REQUIRE(v.ok());
    CHECK(v.result.at("errors").dump().find("operator_cidr is required") != std::string::npos);
    fails_with(lab, "operator_cidr is required");
  }
}

TEST_CASE("driver aws against a fake EC2 sends only parameters python3-botocore's EC2 model knows", "[plugins][driver_aws]") {
  const fs::path path = flotilla::test::ec2_model_path();
  if (!fs::exists(path)) FLOTILLA_SKIP("the EC2 service model " << path << " is missing; install python3-botocore (scripts/install-deps.sh)");
  const auto model = json::parse(s::read_text(path));
  Lab lab;
  lab.config["subnet_id"] = "subnet-1";
  lab.config["vpc_id"] = "vpc-1";
  REQUIRE(lab.call("create", "infra").ok());
  lab.cloud.instances.begin()->second.state = "stopped";
  REQUIRE(lab.call("create", "infra").ok());
  REQUIRE(lab.call("inspect", "infra").ok());
  REQUIRE(lab.call("destroy", "infra").ok());
  std::set<std::string> actions;
  for (const auto& p : lab.fake.calls()) {
    actions.insert(p.at("Action"));
    for (const auto& [name, value] : p)
      if (name != "Action" && name != "Version") CHECK(flotilla::test::problem_in_model(model, p.at("Action"), name) == "");
  }
  // The elements the driver reads from the answers (and the fake writes).
  for (const auto& [action, element] : std::vector<std::pair<std::string, std::string>>{
           {"DescribeImages", "imagesSet/item/imageId"},
           {"DescribeImages", "imagesSet/item/creationDate"},
           {"DescribeInstanceTypeOfferings", "instanceTypeOfferingSet/item/instanceType"},
           {"DescribeKeyPairs", "keySet/item/keyFingerprint"},
           {"DescribeKeyPairs", "keySet/item/keyName"},
           {"DescribeSecurityGroups", "securityGroupInfo/item/groupId"},
           {"DescribeSecurityGroups", "securityGroupInfo/item/ipPermissions/item"},
           {"CreateSecurityGroup", "groupId"},
           {"RunInstances", "instancesSet/item/instanceState/name"},
           {"DescribeInstances", "reservationSet/item/instancesSet/item/ipAddress"},
           {"DescribeInstances", "reservationSet/item/instancesSet/item/privateIpAddress"},
           {"DescribeInstances", "nextToken"}})
    CHECK(flotilla::test::answer_problem_in_model(model, action, element) == "");
  // Every action the driver uses was seen here.
  for (const char* a : {"DescribeImages", "DescribeInstanceTypeOfferings", "DescribeKeyPairs", "ImportKeyPair", "DescribeSecurityGroups",
                        "CreateSecurityGroup", "AuthorizeSecurityGroupIngress", "RunInstances", "DescribeInstances", "StartInstances",
                        "TerminateInstances", "DeleteSecurityGroup", "DeleteKeyPair"})
    CHECK(actions.count(a) == 1);
}

TEST_CASE("driver aws against a fake EC2 takes keys from its options before the credential chain", "[plugins][driver_aws]") {
  Lab lab;
  lab.env.set("AWS_ACCESS_KEY_ID", std::nullopt);
  lab.env.set("AWS_SECRET_ACCESS_KEY", std::nullopt);
  // The engine resolves env:NAME references before the driver sees them; the harness does not.
  lab.config["access_key_id"] = flotilla::test::kFakeEc2KeyId;
  lab.config["secret_access_key"] = "not-the-key";
  auto out = lab.call("create", "infra");
  CHECK_FALSE(out.ok());
  CHECK(out.error.find("AuthFailure") != std::string::npos);  // the options' key was used, and is wrong
  CHECK(out.error.find("not-the-key") == std::string::npos);
  lab.config["secret_access_key"] = flotilla::test::kFakeEc2Secret;
  out = lab.call("create", "infra");
  INFO(out.describe());
  CHECK(out.ok());
  CHECK(lab.fake.bad_signatures() == 1);
  lab.config.erase("access_key_id");
  out = lab.call("inspect", "infra");
  CHECK_FALSE(out.ok());
  CHECK(out.error.find("access_key_id and secret_access_key go together") != std::string::npos);
}

TEST_CASE("driver aws against a fake EC2 waits for an instance that is stopping to stop, then starts it", "[plugins][driver_aws]") {
  Lab lab;
  REQUIRE(lab.call("create", "infra").ok());
  REQUIRE(lab.cloud.instances.size() == 1);
  const std::string first = lab.cloud.instances.begin()->first;
  {
    std::lock_guard lock(lab.cloud.mu);
    // Stopped behind Flotilla's back, and still stopping when create looks (for the describe that
    // finds it and the wait's first one): EC2 refuses to start it until it has stopped.
    lab.cloud.instances[first].state = "stopping";
    lab.cloud.stopping_for = 2;
  }
  const auto out = lab.call("create", "infra");
  INFO(out.describe());
  REQUIRE(out.ok());
  CHECK(lab.fake.calls_of("StartInstances") == 1);
  CHECK(lab.fake.calls_of("RunInstances") == 2);  // the first create's throttled one and its retry; none now
  CHECK(lab.cloud.instances.size() == 1);
  CHECK(lab.cloud.instances[first].state == "running");
  CHECK(out.result.at("data").at("instance_id") == first);
  bool logged = false;
  for (const auto& line : out.logs) logged = logged || line.find("started stopped instance " + first + " of node infra") != std::string::npos;
  CHECK(logged);
}

TEST_CASE("driver aws against a fake EC2 replaces an instance that is shutting down with one of the next generation",
          "[plugins][driver_aws]") {
  Lab lab;
  REQUIRE(lab.call("create", "infra").ok());
  REQUIRE(lab.cloud.instances.size() == 1);
  const std::string first = lab.cloud.instances.begin()->first;
  const std::string id = flotilla::aws::cluster_id({{"name", "demo"}, {"state_dir", (lab.dir.path() / "state").string()}});
  {
    std::lock_guard lock(lab.cloud.mu);
    lab.cloud.instances[first].state = "shutting-down";  // terminated behind Flotilla's back, not gone yet
  }
  CHECK(lab.call("inspect", "infra").result.at("state") == "missing");
  const auto out = lab.call("create", "infra");
  INFO(out.describe());
  REQUIRE(out.ok());
  // Not adopted and not started: its ClientToken (generation 0) names it, so RunInstances answers
  // with it once more, and generation 1 gets the replacement.
  CHECK(lab.fake.calls_of("StartInstances") == 0);
  REQUIRE(lab.cloud.instances.size() == 2);
  const auto& [replacement_id, replacement] = *std::prev(lab.cloud.instances.end());
  CHECK(replacement_id != first);
  CHECK(replacement.state == "running");
  CHECK(replacement.token == flotilla::aws::client_token(id, "infra", 1));
  CHECK(out.result.at("data").at("instance_id") == replacement_id);
  CHECK(out.result.at("data").at("generation") == 1);
  CHECK(s::read_text(lab.dir.path() / "state" / "aws" / "nodes" / "infra" / "generation") == "1\n");
}

TEST_CASE("driver aws against a fake EC2 gives up when every instance it launches comes back terminated, and says what to do",
          "[plugins][driver_aws]") {
  Lab lab;
  const std::string id = flotilla::aws::cluster_id({{"name", "demo"}, {"state_dir", (lab.dir.path() / "state").string()}});
  {
    // The instances of generations 0 and 1 died at boot: their ClientTokens answer with them.
    std::lock_guard lock(lab.cloud.mu);
    lab.cloud.throttle_run_instances = 0;
    for (int generation : {0, 1})
      lab.cloud.instances["i-dead" + std::to_string(generation)] = {"terminated", {}, flotilla::aws::client_token(id, "infra", generation), "", "", ""};
  }
  const auto out = lab.call("create", "infra");
  REQUIRE_FALSE(out.ok());
  INFO(out.error);
  for (const char* part : {"node infra", "keeps answering with terminated instances", "run up again"}) CHECK(out.error.find(part) != std::string::npos);
  CHECK(lab.fake.calls_of("RunInstances") == 2);
  CHECK(lab.cloud.instances.size() == 2);  // none launched besides
}

TEST_CASE("driver aws against a fake EC2 reads a damaged generation file as 0, says so, and still launches no second instance",
          "[plugins][driver_aws]") {
  Lab lab;
  REQUIRE(lab.call("create", "infra").ok());
  REQUIRE(lab.cloud.instances.size() == 1);
  const std::string first = lab.cloud.instances.begin()->first;
  const fs::path generation = lab.dir.path() / "state" / "aws" / "nodes" / "infra" / "generation";
  s::write_file_atomic(generation, "1x\n");
  // Still running: generation 0's token finds it, whatever the file said.
  auto out = lab.call("create", "infra");
  INFO(out.describe());
  REQUIRE(out.ok());
  CHECK(lab.cloud.instances.size() == 1);
  CHECK(out.result.at("data").at("instance_id") == first);
  bool warned = false;
  for (const auto& line : out.logs) warned = warned || line.find("node infra: " + generation.string() + " holds no launch generation") != std::string::npos;
  CHECK(warned);
  // Terminated: generation 0's token names the terminated instance, so the next one launches.
  {
    std::lock_guard lock(lab.cloud.mu);
    lab.cloud.instances[first].state = "terminated";
  }
  s::write_file_atomic(generation, "garbage");
  out = lab.call("create", "infra");
  REQUIRE(out.ok());
  CHECK(lab.cloud.instances.size() == 2);
  CHECK(out.result.at("data").at("generation") == 1);
  CHECK(s::read_text(generation) == "1\n");
}

TEST_CASE("driver aws against a fake EC2 retries deleting the security group while EC2 says it is still in use",
          "[plugins][driver_aws]") {
  Lab lab;
  REQUIRE(lab.call("create", "infra").ok());
  REQUIRE(lab.cloud.groups.size() == 1);
  const std::string group = lab.cloud.groups.begin()->first;

  SECTION("until the instances' interfaces have left it") {
    lab.cloud.dependency_violations = 1;
    const auto out = lab.call("destroy", "infra");
    INFO(out.describe());
    REQUIRE(out.ok());
    CHECK(lab.fake.calls_of("DeleteSecurityGroup") == 2);
    CHECK(lab.cloud.groups.empty());
    CHECK(lab.cloud.keys.empty());
    CHECK(lab.cloud.instances.begin()->second.state == "terminated");
  }
  SECTION("and says to run down again when it stays in use") {
    lab.config["running_timeout"] = 1;
    lab.cloud.dependency_violations = 1000;
    const auto out = lab.call("destroy", "infra");
    INFO(out.describe());
    CHECK_FALSE(out.ok());
    CHECK(out.error.find("security group " + group + " is still in use (resource " + group + " has a dependent object); run down again") !=
          std::string::npos);
    CHECK(lab.fake.calls_of("DeleteSecurityGroup") >= 1);
    CHECK(lab.fake.calls_of("DeleteKeyPair") == 0);  // the key pair waits for the next down
    CHECK(lab.cloud.groups.count(group) == 1);
    CHECK(lab.cloud.keys.size() == 1);
    // Once the group is free, down again finishes the job.
    lab.cloud.dependency_violations = 0;
    const auto again = lab.call("destroy", "infra");
    INFO(again.describe());
    CHECK(again.ok());
    CHECK(lab.cloud.groups.empty());
    CHECK(lab.cloud.keys.empty());
  }
}

TEST_CASE("driver aws against a fake EC2 names the node and docker_timeout when Docker never answers over TLS",
          "[plugins][driver_aws]") {
  Lab lab;
  // The instance's public address is 127.0.0.1, where nothing listens on the Docker port.
  lab.cloud.public_ip = "127.0.0.1";
  lab.config["docker_port"] = flotilla::test::resources::free_port("127.0.0.1");
  lab.config["docker_timeout"] = 1;
  const auto out = lab.call("create", "infra");
  INFO(out.describe());
  CHECK_FALSE(out.ok());
  CHECK(out.error.find("Docker on node infra did not answer over TLS within 1 s (option docker_timeout)") != std::string::npos);
  CHECK(out.error.find("console output") != std::string::npos);
  CHECK(out.error.find("run up again") != std::string::npos);
  // The instance is kept for the next up to adopt.
  REQUIRE(lab.cloud.instances.size() == 1);
  CHECK(lab.cloud.instances.begin()->second.state == "running");
}

namespace {

/// A network namespace on a bridge of its own, as an instance the test stands in for, removed
/// with everything in it (its dockerd included) when the test ends, failed or not.
struct InstanceNamespace {
  ScratchDir dir{"flotilla-aws-node"};
  flotilla::netns::NamespaceSpec net;
  flotilla::netns::DockerdSpec dockerd;

  InstanceNamespace() {
    namespace r = flotilla::test::resources;
    const std::string subnet = r::netns_subnet();
    const std::string prefix = subnet.substr(0, subnet.rfind('.'));
    net = {.netns = r::unique_name("fltawsn"), .host_veth = r::unique_name("fltawsv"), .bridge = r::unique_name("fltawsb"),
           .address = prefix + ".2", .prefix = 24, .gateway = prefix + ".1"};
    dockerd.netns = net.netns;
    dockerd.root = dir.path() / "dockerd";
    dockerd.bridge_none = true;
    flotilla::netns::ensure_bridge(net.bridge, net.gateway, net.prefix);
    flotilla::netns::ensure_namespace(net);
  }
  ~InstanceNamespace() {
    try {
      (void)flotilla::netns::stop_dockerd(dockerd, std::chrono::seconds(10));
      flotilla::netns::remove_namespace(net);
      flotilla::netns::remove_bridge(net.bridge);
      flotilla::netns::remove_tree(dockerd.root);
    } catch (const std::exception& e) {
      WARN("cannot remove the instance's namespace " << net.netns << ": " << e.what());
    }
  }
  InstanceNamespace(const InstanceNamespace&) = delete;
  InstanceNamespace& operator=(const InstanceNamespace&) = delete;
};

/// Listens on `address`:`port` inside namespace `netns` (this thread only joins it) and closes the
/// first connection at once, as a port with nothing behind it yet; true once one came.
bool refuse_first_connection(const std::string& netns, const std::string& address, int port, std::atomic<bool>& listening,
                             const std::stop_token& stop) {
  const int ns = ::open(flotilla::netns::netns_path(netns).c_str(), O_RDONLY | O_CLOEXEC);
  if (ns < 0 || ::setns(ns, CLONE_NEWNET) != 0) return false;
  ::close(ns);
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(port));
  ::inet_pton(AF_INET, address.c_str(), &sa.sin_addr);
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(fd, 4) != 0) {
    ::close(fd);
    return false;
  }
  listening = true;
  bool accepted = false;
  for (int i = 0; i < 600 && !accepted && !stop.stop_requested(); ++i) {  // at most a minute
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) == 1) {
      const int conn = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
      accepted = conn >= 0;
      if (conn >= 0) ::close(conn);
    }
  }
  ::close(fd);
  return accepted;
}

}  // namespace

TEST_CASE("driver aws against a fake EC2 waits until the instance's dockerd answers over TLS with the certificates it made",
          "[plugins][driver_aws][docker]") {
  if (const std::string why = flotilla::test::DockerLab::unavailable_reason(); !why.empty()) FLOTILLA_SKIP(why);
  InstanceNamespace instance;
  Lab lab;
  const int port = 2376;
  lab.cloud.public_ip = instance.net.address;
  lab.config["docker_port"] = port;
  lab.config["docker_timeout"] = 60;
  const fs::path aws = lab.dir.path() / "state" / "aws";

  // The instance boots: its port first turns the driver's probe away, then the real dockerd,
  // with the CA and server certificate the driver issued (what its user data carries), takes it.
  std::atomic<bool> listening{false}, refused{false}, launching{false};
  std::string dockerd_error;
  std::jthread boot([&](const std::stop_token& stop) {
    refused = refuse_first_connection(instance.net.netns, instance.net.address, port, listening, stop);
    if (!refused || stop.stop_requested()) return;
    instance.dockerd.tcp_address = instance.net.address + ":" + std::to_string(port);
    instance.dockerd.tls = flotilla::netns::DockerdTls{
        .ca = aws / "tls" / "ca.pem", .cert = aws / "nodes" / "infra" / "server.pem", .key = aws / "nodes" / "infra" / "server-key.pem"};
    launching = true;
    try {
      (void)flotilla::netns::start_dockerd(instance.dockerd);
    } catch (const std::exception& e) {
      dockerd_error = e.what();
    }
  });
  REQUIRE(flotilla::test::proc::wait_until([&] { return listening.load(); }, std::chrono::seconds(10)));

  const auto out = lab.call("create", "infra");
  boot.request_stop();
  boot.join();
  INFO(out.describe() << "\ndockerd: " << dockerd_error);
  REQUIRE(out.ok());
  CHECK(dockerd_error.empty());
  // The driver probed before Docker was there, and returned only once it answered.
  CHECK(refused);
  CHECK(launching);
  const json& config = out.result.at("runtime_config");
  CHECK(config.at("host") == "tcp://" + instance.net.address + ":" + std::to_string(port));
  s::DockerClient docker(s::docker_endpoint_of({{"name", "infra"}, {"runtime_config", config}}));
  CHECK_FALSE(docker.version().value("Version", "").empty());
}
