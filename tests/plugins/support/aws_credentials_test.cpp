// The AWS credential chain: environment, shared credentials and config files through profiles,
// and IMDSv2 against a local metadata stand-in on 127.0.0.1 (never the real 169.254.169.254).
#include "flotilla/support/aws_credentials.hpp"

#include "flotilla/support/files.hpp"
#include "flotilla/support/net.hpp"
#include "support/http_server.hpp"
#include "support/process_util.hpp"
#include "support/test_resources.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <mutex>
#include <string>

namespace s = flotilla::support;
using flotilla::test::HttpTestServer;
using flotilla::test::ServedRequest;
using flotilla::test::ServedResponse;

namespace {

constexpr const char* kCanary = "CANARY-SECRET-9f27c1";

// An environment of its own: HOME in a scratch directory, metadata pointed at a closed
// loopback port unless a test sets it.
struct Env {
  flotilla::test::proc::ScratchDir home{"flotilla-aws-creds"};
  std::map<std::string, std::string> vars;
  Env() {
    vars["HOME"] = home.path().string();
    vars["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = "http://127.0.0.1:" + std::to_string(flotilla::test::resources::free_port());
  }
  s::AwsCredentialOptions options() const {
    return {.env = [vars = vars](const std::string& n) -> std::optional<std::string> {
      const auto it = vars.find(n);
      return it == vars.end() ? std::nullopt : std::optional<std::string>(it->second);
    }};
  }
  void write(const std::string& rel, const std::string& text) const {
    std::filesystem::create_directories((home.path() / rel).parent_path());
    s::write_file_atomic(home.path() / rel, text, 0600);
  }
};

std::string error_of(const s::AwsCredentialOptions& o) {
  try {
    (void)s::resolve_aws_credentials(o);
  } catch (const s::AwsCredentialsError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("aws credentials: the environment's keys come first", "[support][aws]") {
  Env env;
  env.vars["AWS_ACCESS_KEY_ID"] = "AKIAENV";
  env.vars["AWS_SECRET_ACCESS_KEY"] = kCanary;
  env.vars["AWS_SESSION_TOKEN"] = "session";
  env.write(".aws/credentials", "[default]\naws_access_key_id = AKIAFILE\naws_secret_access_key = other\n");
  const auto c = s::resolve_aws_credentials(env.options());
  CHECK(c.access_key_id == "AKIAENV");
  CHECK(c.secret_access_key.reveal() == kCanary);
  CHECK(c.session_token.reveal() == "session");
  CHECK(c.source.find("environment") != std::string::npos);
}

TEST_CASE("aws credentials: half a key in the environment is an error that names the missing variable, not the key",
          "[support][aws]") {
  Env env;
  env.vars["AWS_SECRET_ACCESS_KEY"] = kCanary;
  const std::string msg = error_of(env.options());
  CHECK(msg.find("AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not") != std::string::npos);
  CHECK(msg.find(kCanary) == std::string::npos);
}

TEST_CASE("aws credentials: AWS_PROFILE reads [NAME] of the credentials file and [profile NAME] of the config file",
          "[support][aws]") {
  Env env;
  env.write(".aws/credentials",
            "# comment\n[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = d\n\n"
            "[dev]\naws_access_key_id = AKIADEV\naws_secret_access_key = " + std::string(kCanary) + "\n");
  env.write(".aws/config", "[profile dev]\nregion = eu-west-3\ns3 =\n  max_concurrent_requests = 4\n"
                           "[profile cfgonly]\naws_access_key_id = AKIACFG\naws_secret_access_key = c\naws_session_token = t\n"
                           "[plain]\naws_access_key_id = AKIAWRONG\naws_secret_access_key = w\n");
  SECTION("the default profile") {
    CHECK(s::resolve_aws_credentials(env.options()).access_key_id == "AKIADEFAULT");
  }
  SECTION("a profile in the credentials file, its region in the config file") {
    env.vars["AWS_PROFILE"] = "dev";
    const auto c = s::resolve_aws_credentials(env.options());
    CHECK(c.access_key_id == "AKIADEV");
    CHECK(c.secret_access_key.reveal() == kCanary);
    CHECK(c.source == "profile dev in " + (env.home.path() / ".aws/credentials").string());
    CHECK(s::resolve_aws_region("", env.options()) == "eu-west-3");
  }
  SECTION("a profile only in the config file") {
    env.vars["AWS_PROFILE"] = "cfgonly";
    const auto c = s::resolve_aws_credentials(env.options());
    CHECK(c.access_key_id == "AKIACFG");
    CHECK(c.session_token.reveal() == "t");
  }
  SECTION("[NAME] in the config file is not the profile NAME") {
    env.vars["AWS_PROFILE"] = "plain";
    const std::string msg = error_of(env.options());
    CHECK(msg.find("the AWS profile plain has no usable keys") != std::string::npos);
    CHECK(msg.find("no [profile plain] section in " + (env.home.path() / ".aws/config").string()) != std::string::npos);
  }
  SECTION("AWS_SHARED_CREDENTIALS_FILE and AWS_CONFIG_FILE move the files") {
    env.write("elsewhere/creds", "[moved]\naws_access_key_id = AKIAMOVED\naws_secret_access_key = m\n");
    env.write("elsewhere/conf", "[profile moved]\nregion = ap-south-1\n");
    env.vars["AWS_SHARED_CREDENTIALS_FILE"] = (env.home.path() / "elsewhere/creds").string();
    env.vars["AWS_CONFIG_FILE"] = (env.home.path() / "elsewhere/conf").string();
    auto o = env.options();
    o.profile = "moved";
    CHECK(s::resolve_aws_credentials(o).access_key_id == "AKIAMOVED");
    CHECK(s::resolve_aws_region("", o) == "ap-south-1");
  }
}

TEST_CASE("aws credentials: a broken credentials file is an error naming file and line", "[support][aws]") {
  Env env;
  env.write(".aws/credentials", "[default]\naws_access_key_id AKIA\n");
  CHECK(error_of(env.options()) == (env.home.path() / ".aws/credentials").string() +
                                       ":2: expected KEY = VALUE; fix the file (the AWS CLI's format: [section] lines, "
                                       "then key = value lines)");
}

TEST_CASE("aws credentials: the region comes from the topology, then AWS_REGION, AWS_DEFAULT_REGION, the profile",
          "[support][aws]") {
  Env env;
  env.write(".aws/config", "[default]\nregion = us-west-2\n");
  CHECK(s::resolve_aws_region("", env.options()) == "us-west-2");
  env.vars["AWS_DEFAULT_REGION"] = "eu-central-1";
  CHECK(s::resolve_aws_region("", env.options()) == "eu-central-1");
  env.vars["AWS_REGION"] = "eu-north-1";
  CHECK(s::resolve_aws_region("", env.options()) == "eu-north-1");
  CHECK(s::resolve_aws_region("ca-central-1", env.options()) == "ca-central-1");
  CHECK_THROWS_WITH(s::resolve_aws_region("EU West", env.options()),
                    Catch::Contains("\"EU West\" (from the driver's region option) is not a region name"));
  Env none;
  CHECK_THROWS_WITH(s::resolve_aws_region("", none.options()), Catch::Contains("no AWS region: set region"));
}

TEST_CASE("aws credentials: IMDSv2 against a local metadata stand-in: token first, then the role's keys",
          "[support][aws][integration]") {
  std::mutex mu;
  bool token_ok = true;
  HttpTestServer imds([&](const ServedRequest& r) -> ServedResponse {
    std::lock_guard lock(mu);
    if (r.method == "PUT" && r.target == "/latest/api/token") {
      const auto ttl = r.headers.find("x-aws-ec2-metadata-token-ttl-seconds");
      if (ttl == r.headers.end()) return {.status = 400, .body = "no ttl"};
      return {.body = "TOKEN-1"};
    }
    const auto tok = r.headers.find("x-aws-ec2-metadata-token");
    if (tok == r.headers.end() || tok->second != "TOKEN-1") {
      token_ok = false;
      return {.status = 401};
    }
    if (r.target == "/latest/meta-data/iam/security-credentials/") return {.body = "flotilla-role\n"};
    if (r.target == "/latest/meta-data/iam/security-credentials/flotilla-role")
      return {.body = R"({"Code":"Success","Type":"AWS-HMAC","AccessKeyId":"ASIAIMDS","SecretAccessKey":")" +
                      std::string(kCanary) + R"(","Token":"imds-token","Expiration":"2026-12-01T10:00:00Z"})"};
    return {.status = 404};
  });
  Env env;
  env.vars["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = imds.url();
  const auto c = s::resolve_aws_credentials(env.options());
  CHECK(c.access_key_id == "ASIAIMDS");
  CHECK(c.secret_access_key.reveal() == kCanary);
  CHECK(c.session_token.reveal() == "imds-token");
  CHECK(c.source == "instance role flotilla-role from the instance metadata at " + imds.url());
  REQUIRE(c.expiration);
  CHECK(s::amz_date(*c.expiration) == "20261201T100000Z");
  const auto reqs = imds.requests();
  REQUIRE(reqs.size() == 3);
  CHECK(reqs[0].method == "PUT");
  CHECK(token_ok);
}

TEST_CASE("aws credentials: nothing anywhere lists every source tried and what to do", "[support][aws][integration]") {
  Env env;  // metadata at a closed loopback port
  const std::string msg = error_of(env.options());
  CHECK(msg.starts_with("no AWS credentials found; tried:"));
  CHECK(msg.find("environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set") != std::string::npos);
  CHECK(msg.find((env.home.path() / ".aws/credentials").string() + " does not exist") != std::string::npos);
  CHECK(msg.find("instance metadata (IMDSv2) at " + env.vars["AWS_EC2_METADATA_SERVICE_ENDPOINT"]) != std::string::npos);
  CHECK(msg.find("Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY") != std::string::npos);
  env.vars["AWS_EC2_METADATA_DISABLED"] = "true";
  CHECK(error_of(env.options()).find("disabled by AWS_EC2_METADATA_DISABLED=true") != std::string::npos);
}

TEST_CASE("aws credentials: a metadata service without a role is an error saying to attach one", "[support][aws][integration]") {
  HttpTestServer imds([&](const ServedRequest& r) -> ServedResponse {
    if (r.method == "PUT") return {.body = "T"};
    return {.status = 404, .body = "Not Found"};
  });
  Env env;
  env.vars["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = imds.url() + "/";
  const std::string msg = error_of(env.options());
  CHECK(msg.find("attach an instance role") != std::string::npos);
  CHECK(msg.find("404") != std::string::npos);
}
