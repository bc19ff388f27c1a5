// A small EC2 region in memory, the script of a FakeEc2: key pairs, security groups and
// instances with their tags, enough for the aws driver's calls. It injects throttling of
// RunInstances, eventual consistency after it (a describe by id does not know a new instance
// once) and paginated DescribeInstances answers (one reservation per page, after as many empty
// pages as `empty_pages` asks for), and counts what it injected; instances pass
// through stopping and shutting-down as in EC2, one step per describe. A test may let each new
// instance boot something real (on_launch), boot again when a stopped one is started
// (on_start) and be torn down on termination (on_terminate).
//
//   FakeEc2Cloud cloud;
//   FakeEc2 fake{[&](const FakeEc2::Params& p, int call) { return cloud(p, call); }};
#pragma once

#include "support/fake_ec2.hpp"

#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>

namespace flotilla::test {

struct FakeEc2Cloud {
  using Tags = std::map<std::string, std::string>;
  struct KeyPair { std::string fingerprint; Tags tags; };
  struct Group { std::string name; Tags tags; bool rules = false; };
  struct Instance { std::string state; Tags tags; std::string token; std::string user_data; std::string ip; std::string image; };

  /// Held while answering; a test that changes the cloud during a call takes it too.
  std::mutex mu;
  std::map<std::string, KeyPair> keys;
  std::map<std::string, Group> groups;
  std::map<std::string, Instance> instances;
  std::set<std::string> hidden_once;  ///< instances a describe by id does not know yet
  int throttle_run_instances = 1;     ///< RunInstances answers RequestLimitExceeded this many times
  std::string unauthorized;           ///< an action answered with UnauthorizedOperation
  std::string public_ip;              ///< the public address of new instances, when not 198.51.100.N
  int stopping_for = 0;               ///< describes a stopping instance still reports stopping
  int dependency_violations = 0;      ///< DeleteSecurityGroup answers DependencyViolation this many times
  /// DescribeInstances by filter starts with this many pages holding no reservation (EC2 may
  /// answer so when its filters leave a page empty), each with a nextToken.
  int empty_pages = 0;
  /// What was injected so far.
  struct Injected {
    int throttled = 0;       ///< RequestLimitExceeded answers
    int not_yet_known = 0;   ///< InvalidInstanceID.NotFound for an instance that exists (hidden_once)
    int next_pages = 0;      ///< DescribeInstances answers to a NextToken
  } injected;
  int next = 1;
  /// Called (under `mu`) for each new instance with its id and decoded user data; a non-empty
  /// answer is its public address. Should not block: boot in the background.
  std::function<std::string(const std::string& id, const std::string& user_data)> on_launch;
  /// Called (under `mu`) when an instance is told to terminate. Should not block either.
  std::function<void(const std::string& id)> on_terminate;
  /// Called (under `mu`) when a stopped instance is told to start. Should not block either.
  std::function<void(const std::string& id)> on_start;

  /// The answer to one request, as FakeEc2's script.
  ServedResponse operator()(const FakeEc2::Params& p, int call);

 private:
  // One handler per action, called with `mu` held; `a` is the action's name.
  ServedResponse describe_images(const FakeEc2::Params& p, const std::string& a);
  ServedResponse describe_instance_type_offerings(const FakeEc2::Params& p, const std::string& a);
  ServedResponse describe_key_pairs(const FakeEc2::Params& p, const std::string& a);
  ServedResponse import_key_pair(const FakeEc2::Params& p, const std::string& a);
  ServedResponse describe_security_groups(const FakeEc2::Params& p, const std::string& a);
  ServedResponse create_security_group(const FakeEc2::Params& p, const std::string& a);
  ServedResponse authorize_security_group_ingress(const FakeEc2::Params& p, const std::string& a);
  ServedResponse delete_security_group(const FakeEc2::Params& p, const std::string& a);
  ServedResponse delete_key_pair(const FakeEc2::Params& p, const std::string& a);
  ServedResponse run_instances(const FakeEc2::Params& p, const std::string& a);
  ServedResponse describe_instances(const FakeEc2::Params& p, const std::string& a);
  ServedResponse start_or_terminate_instances(const FakeEc2::Params& p, const std::string& a);
  void advance(const std::string& id, bool by_id);
  std::string instance_xml(const std::string& id);
};

}  // namespace flotilla::test
