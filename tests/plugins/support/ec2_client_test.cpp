// The EC2 client: its flattened parameter names checked against the EC2 service model Debian's
// python3-botocore ships, and its calls against a fake EC2 endpoint on 127.0.0.1 that checks
// every request's SigV4 signature with its own copy of the key and answers in EC2's XML.
#include "flotilla/support/ec2_client.hpp"

#include "flotilla/support/files.hpp"
#include "support/fake_ec2.hpp"
#include "support/http_server.hpp"
#include "support/skip.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>

namespace s = flotilla::support;
using flotilla::test::HttpTestServer;
using flotilla::test::ServedRequest;
using flotilla::test::ServedResponse;

namespace {

constexpr const char* kKeyId = flotilla::test::kFakeEc2KeyId;
constexpr const char* kSecret = flotilla::test::kFakeEc2Secret;
constexpr const char* kNs = flotilla::test::kEc2Ns;
using flotilla::test::ec2_error;
using flotilla::test::FakeEc2;
using flotilla::test::answer_problem_in_model;
using flotilla::test::problem_in_model;

s::Ec2Client client_for(const FakeEc2& fake, std::string secret = kSecret, std::vector<std::string>* log = nullptr) {
  return s::Ec2Client({.region = "eu-west-1",
                       .endpoint = fake.url(),
                       .credentials = [secret] { return s::AwsCredentials{.access_key_id = kKeyId, .secret_access_key = s::Secret(secret)}; },
                       .max_attempts = 4,
                       .base_delay = std::chrono::milliseconds(20),
                       .max_delay = std::chrono::milliseconds(100),
                       .log = [log](const std::string& line) {
                         if (log) log->push_back(line);
                       }});
}

std::string instances_page(const std::vector<std::string>& ids, const std::string& next) {
  std::string xml = std::string("<DescribeInstancesResponse xmlns=\"") + kNs + "\"><requestId>r1</requestId><reservationSet><item>"
                    "<reservationId>r-1</reservationId><instancesSet>";
  for (const auto& id : ids)
    xml += "<item><instanceId>" + id + "</instanceId><instanceState><code>16</code><name>running</name></instanceState></item>";
  xml += "</instancesSet></item></reservationSet>";
  if (!next.empty()) xml += "<nextToken>" + next + "</nextToken>";
  return xml + "</DescribeInstancesResponse>";
}

}  // namespace

TEST_CASE("ec2: lists, filters and tags are flattened with 1-based indexes", "[support][ec2]") {
  s::Ec2Params p;
  p.list("InstanceId", {"i-1", "i-2"})
      .filters({{"tag:flotilla-cluster", {"c1"}}, {"instance-state-name", {"pending", "running"}}})
      .tag_specification("instance", {{"Name", "node 1"}, {"flotilla-cluster", "c1"}})
      .tag_specification("volume", {{"k", "v"}})
      .list("Empty", {});
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"InstanceId.1", "i-1"}, {"InstanceId.2", "i-2"}, {"Filter.1.Name", "tag:flotilla-cluster"}, {"Filter.1.Value.1", "c1"},
      {"Filter.2.Name", "instance-state-name"}, {"Filter.2.Value.1", "pending"}, {"Filter.2.Value.2", "running"},
      {"TagSpecification.1.ResourceType", "instance"}, {"TagSpecification.1.Tag.1.Key", "Name"},
      {"TagSpecification.1.Tag.1.Value", "node 1"}, {"TagSpecification.1.Tag.2.Key", "flotilla-cluster"},
      {"TagSpecification.1.Tag.2.Value", "c1"}, {"TagSpecification.2.ResourceType", "volume"},
      {"TagSpecification.2.Tag.1.Key", "k"}, {"TagSpecification.2.Tag.1.Value", "v"}};
  CHECK(p.items() == expected);
  CHECK(s::ec2_query_body("DescribeInstances", s::Ec2Params().set("Filter.1.Name", "tag:a b").set("X", "1/2+3")) ==
        "Action=DescribeInstances&Version=2016-11-15&Filter.1.Name=tag%3Aa%20b&X=1%2F2%2B3");
  CHECK(s::ec2_endpoint("eu-west-1") == "https://ec2.eu-west-1.amazonaws.com");
  CHECK(s::ec2_endpoint("cn-north-1") == "https://ec2.cn-north-1.amazonaws.com.cn");
}

TEST_CASE("ec2: XML answers are read by local name, with item lists, malformed XML is an error with its place",
          "[support][ec2]") {
  const auto root = s::parse_xml(instances_page({"i-a", "i-b"}, "tok"));
  CHECK(root.name == "DescribeInstancesResponse");
  const auto reservations = root.items("reservationSet");
  REQUIRE(reservations.size() == 1);
  const auto instances = reservations[0]->items("instancesSet");
  REQUIRE(instances.size() == 2);
  CHECK(instances[1]->child_text("instanceId") == "i-b");
  CHECK(instances[0]->at("instanceState/name")->text == "running");
  CHECK(root.child_text("nextToken") == "tok");
  CHECK(root.at("no/such") == nullptr);
  CHECK_THROWS_WITH(s::parse_xml("<a><b></a>"), Catch::Contains("mismatched tag at line 1"));
  std::string deep;
  for (int i = 0; i < 70; ++i) deep += "<x>";
  for (int i = 0; i < 70; ++i) deep += "</x>";
  CHECK_THROWS_WITH(s::parse_xml(deep), Catch::Contains("deeper than 64"));
}

TEST_CASE("ec2: parameter names the client writes exist in python3-botocore's EC2 model", "[support][ec2]") {
  const std::filesystem::path path = flotilla::test::ec2_model_path();
  if (!std::filesystem::exists(path))
    FLOTILLA_SKIP("the EC2 service model " << path << " is missing; install python3-botocore (scripts/install-deps.sh)");
  const auto model = nlohmann::json::parse(s::read_file(path));
  CHECK(model.at("metadata").at("apiVersion") == std::string(s::kEc2ApiVersion));
  CHECK(model.at("metadata").at("protocol") == "ec2");
  const std::vector<s::Ec2Tag> tags = {{"flotilla-cluster", "c"}, {"Name", "n"}};
  const std::vector<std::pair<std::string, s::Ec2Params>> requests = {
      {"RunInstances", s::Ec2Params()
                           .set("ImageId", "ami-1").set("InstanceType", "t3.micro").set("MinCount", "1").set("MaxCount", "1")
                           .set("KeyName", "k").set("SubnetId", "subnet-1").set("UserData", "dXNlcg==").set("ClientToken", "t")
                           .list("SecurityGroupId", {"sg-1"}).set("MetadataOptions.HttpTokens", "required")
                           .set("BlockDeviceMapping.1.DeviceName", "/dev/xvda").set("BlockDeviceMapping.1.Ebs.VolumeSize", "8")
                           .set("BlockDeviceMapping.1.Ebs.DeleteOnTermination", "true")
                           .set("NetworkInterface.1.DeviceIndex", "0").set("NetworkInterface.1.AssociatePublicIpAddress", "true")
                           .list("NetworkInterface.1.SecurityGroupId", {"sg-1"})
                           .tag_specification("instance", tags).tag_specification("volume", tags)},
      {"DescribeInstances", s::Ec2Params().list("InstanceId", {"i-1"}).filters({{"tag:flotilla-cluster", {"c"}}})
                                .set("MaxResults", "5").set("NextToken", "x")},
      {"TerminateInstances", s::Ec2Params().list("InstanceId", {"i-1", "i-2"})},
      {"StartInstances", s::Ec2Params().list("InstanceId", {"i-1"})},
      {"CreateTags", s::Ec2Params().list("ResourceId", {"i-1"}).tags("Tag", tags)},
      {"ImportKeyPair", s::Ec2Params().set("KeyName", "k").set("PublicKeyMaterial", "c3No").tag_specification("key-pair", tags)},
      {"DescribeKeyPairs", s::Ec2Params().list("KeyName", {"k"}).filters({{"tag:flotilla-cluster", {"c"}}})},
      {"DeleteKeyPair", s::Ec2Params().set("KeyName", "k")},
      {"CreateSecurityGroup", s::Ec2Params().set("GroupName", "g").set("GroupDescription", "d").set("VpcId", "vpc-1")
                                  .tag_specification("security-group", tags)},
      {"DescribeSecurityGroups", s::Ec2Params().list("GroupId", {"sg-1"}).filters({{"group-name", {"g"}}})},
      {"AuthorizeSecurityGroupIngress", s::Ec2Params().set("GroupId", "sg-1").set("IpPermissions.1.IpProtocol", "tcp")
                                            .set("IpPermissions.1.FromPort", "22").set("IpPermissions.1.ToPort", "22")
                                            .set("IpPermissions.1.IpRanges.1.CidrIp", "203.0.113.1/32")
                                            .set("IpPermissions.1.IpRanges.1.Description", "ssh")
                                            .set("IpPermissions.2.Groups.1.GroupId", "sg-1")},
      {"DeleteSecurityGroup", s::Ec2Params().set("GroupId", "sg-1")},
      {"DescribeImages", s::Ec2Params().list("Owner", {"136693071363"}).list("ImageId", {"ami-1"})
                             .filters({{"name", {"debian-12-amd64-*"}}, {"architecture", {"x86_64"}}})},
      {"DescribeInstanceTypeOfferings", s::Ec2Params().set("LocationType", "region").filters({{"instance-type", {"t3.micro"}}})},
      {"DescribeVpcs", s::Ec2Params().filters({{"is-default", {"true"}}})},
      {"DescribeSubnets", s::Ec2Params().filters({{"vpc-id", {"vpc-1"}}})},
  };
  std::size_t checked = 0;
  for (const auto& [action, params] : requests) {
    for (const auto& [name, value] : params.items()) {
      INFO(action << " " << name);
      CHECK(problem_in_model(model, action, name) == "");
      ++checked;
    }
  }
  CHECK(checked > 50);
  // The answers the fake EC2 gives and the tests read are shaped as the model says.
  for (const char* path : {"reservationSet/item/reservationId", "reservationSet/item/instancesSet/item/instanceId",
                           "reservationSet/item/instancesSet/item/instanceState/name",
                           "reservationSet/item/instancesSet/item/instanceState/code",
                           "reservationSet/item/instancesSet/item/ipAddress", "nextToken"}) {
    INFO(path);
    CHECK(answer_problem_in_model(model, "DescribeInstances", path) == "");
  }
  CHECK(answer_problem_in_model(model, "RunInstances", "instancesSet/item/instanceId") == "");
  CHECK(answer_problem_in_model(model, "RunInstances", "instancesSet/item/clientToken") == "");
  CHECK(answer_problem_in_model(model, "DescribeInstances", "reservations/item") != "");
  // The check itself refuses names the model does not have.
  CHECK(problem_in_model(model, "RunInstances", "TagSpecifications.1.ResourceType") != "");
  CHECK(problem_in_model(model, "DescribeInstances", "Filter.1.Values.1") != "");
  CHECK(problem_in_model(model, "DescribeInstances", "InstanceId.0") != "");
  CHECK(problem_in_model(model, "CreateTags", "Tag.1") != "");
}

TEST_CASE("ec2: a fake EC2 endpoint pages DescribeInstances by nextToken, every request signed", "[support][ec2][integration]") {
  FakeEc2 fake([](const auto& p, int) -> ServedResponse {
    if (p.at("Action") != "DescribeInstances") return ec2_error(400, "InvalidAction", "unexpected");
    const auto token = p.find("NextToken");
    if (token == p.end()) return {.body = instances_page({"i-1", "i-2"}, "page2")};
    if (token->second == "page2") return {.body = instances_page({"i-3"}, "page3")};
    return {.body = instances_page({"i-4"}, "")};
  });
  auto ec2 = client_for(fake);
  std::vector<std::string> ids;
  ec2.call_pages("DescribeInstances", s::Ec2Params().filters({{"tag:flotilla-cluster", {"c1"}}}), [&](const s::XmlElement& page) {
    for (const auto* r : page.items("reservationSet"))
      for (const auto* i : r->items("instancesSet")) ids.push_back(i->child_text("instanceId"));
  });
  CHECK(ids == std::vector<std::string>{"i-1", "i-2", "i-3", "i-4"});
  const auto calls = fake.calls();
  REQUIRE(calls.size() == 3);
  CHECK(calls[0].at("Filter.1.Value.1") == "c1");
  CHECK(calls[1].at("NextToken") == "page2");
  CHECK(calls[2].at("Filter.1.Name") == "tag:flotilla-cluster");
  CHECK(fake.bad_signatures() == 0);
}

TEST_CASE("ec2: a fake EC2's error answer becomes an Ec2Error with code, message and request id, sent once",
          "[support][ec2][integration]") {
  FakeEc2 fake([](const auto&, int) { return ec2_error(400, "InvalidInstanceID.NotFound", "The instance ID 'i-9' does not exist"); });
  auto ec2 = client_for(fake);
  try {
    (void)ec2.call("DescribeInstances", s::Ec2Params().list("InstanceId", {"i-9"}));
    FAIL("no error");
  } catch (const s::Ec2Error& e) {
    CHECK(e.code() == "InvalidInstanceID.NotFound");
    CHECK(e.error_message() == "The instance ID 'i-9' does not exist");
    CHECK(e.request_id() == "req-InvalidInstanceID.NotFound");
    CHECK(e.status() == 400);
    CHECK(e.attempts() == 1);
    CHECK(std::string(e.what()) == "EC2 DescribeInstances at " + fake.url() +
                                       " failed: InvalidInstanceID.NotFound: The instance ID 'i-9' does not exist (HTTP 400, "
                                       "request id req-InvalidInstanceID.NotFound)");
  }
  CHECK(fake.calls().size() == 1);
}

TEST_CASE("ec2: a fake EC2 that refuses a wrong key's signature answers AuthFailure, not retried", "[support][ec2][integration]") {
  FakeEc2 fake([](const auto&, int) { return ServedResponse{.body = instances_page({}, "")}; });
  auto wrong = client_for(fake, "not-the-secret");
  CHECK_THROWS_WITH(wrong.call("DescribeInstances", {}), Catch::Contains("AuthFailure: SignatureDoesNotMatch"));
  CHECK(fake.bad_signatures() == 1);
  auto right = client_for(fake);
  CHECK(right.call("DescribeInstances", {}).name == "DescribeInstancesResponse");
}

TEST_CASE("ec2: throttling and 5xx answers from a fake EC2 are retried with jittered waits until success",
          "[support][ec2][integration]") {
  FakeEc2 fake([](const auto&, int call) -> ServedResponse {
    if (call == 1) return ec2_error(503, "RequestLimitExceeded", "Request limit exceeded.");
    if (call == 2) return ec2_error(400, "Throttling", "Rate exceeded");
    if (call == 3) return ec2_error(500, "InternalError", "An internal error has occurred");
    return {.body = instances_page({"i-1"}, "")};
  });
  std::vector<std::string> log;
  auto ec2 = client_for(fake, kSecret, &log);
  const auto answer = ec2.call("DescribeInstances", {});
  CHECK(answer.items("reservationSet").size() == 1);
  CHECK(fake.calls().size() == 4);
  REQUIRE(log.size() == 3);
  CHECK(log[0].find("RequestLimitExceeded: Request limit exceeded. (HTTP 503, request id req-RequestLimitExceeded); attempt 1 of 4, "
                    "retrying in ") != std::string::npos);
  for (const auto& line : log) {
    const auto ms = std::stoi(line.substr(line.rfind("retrying in ") + 12));
    CHECK(ms >= 0);
    CHECK(ms <= 100);  // the cap
  }
}

TEST_CASE("ec2: a connection the fake EC2 drops is retried, attempts run out with a clear error",
          "[support][ec2][integration]") {
  FakeEc2 fake([](const auto&, int call) -> ServedResponse {
    if (call == 1) return {.drop = true};
    return ec2_error(503, "Unavailable", "try later");
  });
  auto ec2 = client_for(fake);
  try {
    (void)ec2.call("DescribeInstances", {});
    FAIL("no error");
  } catch (const s::Ec2Error& e) {
    CHECK(e.attempts() == 4);
    CHECK(e.code() == "Unavailable");
    CHECK(std::string(e.what()).ends_with("; gave up after 4 attempts"));
  }
  CHECK(fake.calls().size() == 4);
}

TEST_CASE("ec2: RunInstances is retried on throttling only with a ClientToken, never without", "[support][ec2][integration]") {
  FakeEc2 fake([](const auto& p, int call) -> ServedResponse {
    if (call == 1 || call == 2) return ec2_error(503, "RequestLimitExceeded", "Request limit exceeded.");
    return {.body = std::string("<RunInstancesResponse xmlns=\"") + kNs + "\"><instancesSet><item><instanceId>i-new</instanceId>"
                    "<clientToken>" + (p.count("ClientToken") ? p.at("ClientToken") : "") + "</clientToken></item></instancesSet>"
                    "</RunInstancesResponse>"};
  });
  auto ec2 = client_for(fake);
  const auto base = s::Ec2Params().set("ImageId", "ami-1").set("MinCount", "1").set("MaxCount", "1");
  try {
    (void)ec2.call("RunInstances", base);
    FAIL("no error");
  } catch (const s::Ec2Error& e) {
    CHECK(e.attempts() == 1);
    CHECK(std::string(e.what()).ends_with("; not retried: RunInstances without a ClientToken could start a second instance"));
  }
  CHECK(fake.calls().size() == 1);
  auto with_token = base;
  with_token.set("ClientToken", "c1-node1-0123");
  const auto answer = ec2.call("RunInstances", with_token);
  CHECK(answer.items("instancesSet").at(0)->child_text("clientToken") == "c1-node1-0123");
  const auto calls = fake.calls();
  REQUIRE(calls.size() == 3);
  CHECK(calls[1].at("ClientToken") == "c1-node1-0123");
  CHECK(calls[2].at("ClientToken") == "c1-node1-0123");
}
