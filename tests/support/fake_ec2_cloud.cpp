#include "support/fake_ec2_cloud.hpp"

#include "flotilla/support/encoding.hpp"

#include <algorithm>
#include <vector>

namespace flotilla::test {
namespace {

namespace s = flotilla::support;

using Tags = FakeEc2Cloud::Tags;

Tags tags_of(const FakeEc2::Params& p, const std::string& resource_type) {
  Tags out;
  for (int n = 1; p.count("TagSpecification." + std::to_string(n) + ".ResourceType"); ++n) {
    const std::string pre = "TagSpecification." + std::to_string(n) + ".";
    if (p.at(pre + "ResourceType") != resource_type) continue;
    for (int m = 1; p.count(pre + "Tag." + std::to_string(m) + ".Key"); ++m)
      out[p.at(pre + "Tag." + std::to_string(m) + ".Key")] = p.at(pre + "Tag." + std::to_string(m) + ".Value");
  }
  return out;
}

std::vector<std::pair<std::string, std::vector<std::string>>> filters_of(const FakeEc2::Params& p) {
  std::vector<std::pair<std::string, std::vector<std::string>>> out;
  for (int n = 1; p.count("Filter." + std::to_string(n) + ".Name"); ++n) {
    std::vector<std::string> values;
    for (int m = 1; p.count("Filter." + std::to_string(n) + ".Value." + std::to_string(m)); ++m)
      values.push_back(p.at("Filter." + std::to_string(n) + ".Value." + std::to_string(m)));
    out.emplace_back(p.at("Filter." + std::to_string(n) + ".Name"), values);
  }
  return out;
}

bool tags_match(const FakeEc2::Params& p, const Tags& tags) {
  for (const auto& [name, values] : filters_of(p)) {
    if (!name.starts_with("tag:")) continue;
    const auto it = tags.find(name.substr(4));
    if (it == tags.end() || std::find(values.begin(), values.end(), it->second) == values.end()) return false;
  }
  return true;
}

std::string tag_set(const Tags& tags) {
  std::string xml = "<tagSet>";
  for (const auto& [k, v] : tags) xml += "<item><key>" + k + "</key><value>" + v + "</value></item>";
  return xml + "</tagSet>";
}

ServedResponse answer(const std::string& action, const std::string& inner) {
  return {.status = 200, .body = "<" + action + "Response xmlns=\"" + kEc2Ns + "\"><requestId>r</requestId>" + inner + "</" + action + "Response>",
          .headers = {{"Content-Type", "text/xml;charset=UTF-8"}}};
}

/// The parameter `key` of a request, or "" when it was not sent.
std::string param(const FakeEc2::Params& p, const std::string& key) { return p.count(key) ? p.at(key) : std::string(); }

}  // namespace

ServedResponse FakeEc2Cloud::operator()(const FakeEc2::Params& p, int) {
  using Handler = ServedResponse (FakeEc2Cloud::*)(const FakeEc2::Params&, const std::string&);
  static const std::map<std::string, Handler> kHandlers = {
      {"DescribeImages", &FakeEc2Cloud::describe_images},
      {"DescribeInstanceTypeOfferings", &FakeEc2Cloud::describe_instance_type_offerings},
      {"DescribeKeyPairs", &FakeEc2Cloud::describe_key_pairs},
      {"ImportKeyPair", &FakeEc2Cloud::import_key_pair},
      {"DescribeSecurityGroups", &FakeEc2Cloud::describe_security_groups},
      {"CreateSecurityGroup", &FakeEc2Cloud::create_security_group},
      {"AuthorizeSecurityGroupIngress", &FakeEc2Cloud::authorize_security_group_ingress},
      {"DeleteSecurityGroup", &FakeEc2Cloud::delete_security_group},
      {"DeleteKeyPair", &FakeEc2Cloud::delete_key_pair},
      {"RunInstances", &FakeEc2Cloud::run_instances},
      {"DescribeInstances", &FakeEc2Cloud::describe_instances},
      {"StartInstances", &FakeEc2Cloud::start_or_terminate_instances},
      {"TerminateInstances", &FakeEc2Cloud::start_or_terminate_instances},
  };
  std::lock_guard lock(mu);
  const std::string a = p.at("Action");
  if (a == unauthorized) return ec2_error(403, "UnauthorizedOperation", "You are not authorized to perform this operation.");
  const auto handler = kHandlers.find(a);
  if (handler == kHandlers.end()) return ec2_error(400, "InvalidAction", "the fake EC2 does not know " + a);
  return (this->*handler->second)(p, a);
}

ServedResponse FakeEc2Cloud::describe_images(const FakeEc2::Params& p, const std::string& a) {
  if (p.count("ImageId.1")) {
    if (param(p, "ImageId.1") != "ami-0aaa") return ec2_error(400, "InvalidAMIID.NotFound", "The image id '[" + param(p, "ImageId.1") + "]' does not exist");
    return answer(a, "<imagesSet><item><imageId>ami-0aaa</imageId></item></imagesSet>");
  }
  if (param(p, "Owner.1") != "136693071363") return answer(a, "<imagesSet/>");
  return answer(a, "<imagesSet><item><imageId>ami-0old</imageId><creationDate>2025-01-01T00:00:00.000Z</creationDate></item>"
                   "<item><imageId>ami-0new</imageId><creationDate>2026-06-01T00:00:00.000Z</creationDate></item>"
                   "<item><imageId>ami-0mid</imageId><creationDate>2025-06-01T00:00:00.000Z</creationDate></item></imagesSet>");
}

ServedResponse FakeEc2Cloud::describe_instance_type_offerings(const FakeEc2::Params& p, const std::string& a) {
  const std::string type = param(p, "Filter.1.Value.1");
  if (type != "t3.small" && type != "t3.micro") return answer(a, "<instanceTypeOfferingSet/>");
  return answer(a, "<instanceTypeOfferingSet><item><instanceType>" + type + "</instanceType><locationType>region</locationType>"
                   "<location>eu-west-1</location></item></instanceTypeOfferingSet>");
}

ServedResponse FakeEc2Cloud::describe_key_pairs(const FakeEc2::Params& p, const std::string& a) {
  std::string items;
  if (p.count("KeyName.1")) {
    const auto it = keys.find(param(p, "KeyName.1"));
    if (it == keys.end()) return ec2_error(400, "InvalidKeyPair.NotFound", "The key pair '" + param(p, "KeyName.1") + "' does not exist");
    items = "<item><keyName>" + it->first + "</keyName><keyFingerprint>" + it->second.fingerprint + "</keyFingerprint></item>";
  } else {
    for (const auto& [name, k] : keys)
      if (tags_match(p, k.tags)) items += "<item><keyName>" + name + "</keyName>" + tag_set(k.tags) + "</item>";
  }
  return answer(a, "<keySet>" + items + "</keySet>");
}

ServedResponse FakeEc2Cloud::import_key_pair(const FakeEc2::Params& p, const std::string& a) {
  const std::string line = s::base64_decode(param(p, "PublicKeyMaterial")).value_or("");
  const auto first = line.find(' ');
  const std::string blob = s::base64_decode(line.substr(first + 1, line.find(' ', first + 1) - first - 1)).value_or("");
  keys[param(p, "KeyName")] = {s::base64_encode(s::sha256_bytes(blob)), tags_of(p, "key-pair")};
  return answer(a, "<keyName>" + param(p, "KeyName") + "</keyName><keyFingerprint>" + keys[param(p, "KeyName")].fingerprint + "</keyFingerprint>");
}

ServedResponse FakeEc2Cloud::describe_security_groups(const FakeEc2::Params& p, const std::string& a) {
  std::string items;
  for (const auto& [id, g] : groups) {
    bool ok = tags_match(p, g.tags);
    for (const auto& [name, values] : filters_of(p))
      if (name == "group-name" && values.front() != g.name) ok = false;
    if (ok)
      items += "<item><groupId>" + id + "</groupId><groupName>" + g.name + "</groupName><ipPermissions>" +
               (g.rules ? "<item><ipProtocol>-1</ipProtocol></item>" : "") + "</ipPermissions>" + tag_set(g.tags) + "</item>";
  }
  return answer(a, "<securityGroupInfo>" + items + "</securityGroupInfo>");
}

ServedResponse FakeEc2Cloud::create_security_group(const FakeEc2::Params& p, const std::string& a) {
  const std::string id = "sg-" + std::to_string(next++);
  groups[id] = {param(p, "GroupName"), tags_of(p, "security-group")};
  return answer(a, "<return>true</return><groupId>" + id + "</groupId>");
}

ServedResponse FakeEc2Cloud::authorize_security_group_ingress(const FakeEc2::Params& p, const std::string& a) {
  groups.at(param(p, "GroupId")).rules = true;
  return answer(a, "<return>true</return>");
}

ServedResponse FakeEc2Cloud::delete_security_group(const FakeEc2::Params& p, const std::string& a) {
  if (dependency_violations > 0) {
    --dependency_violations;
    return ec2_error(400, "DependencyViolation", "resource " + param(p, "GroupId") + " has a dependent object");
  }
  groups.erase(param(p, "GroupId"));
  return answer(a, "<return>true</return>");
}

ServedResponse FakeEc2Cloud::delete_key_pair(const FakeEc2::Params& p, const std::string& a) {
  keys.erase(param(p, "KeyName"));
  return answer(a, "<return>true</return>");
}

ServedResponse FakeEc2Cloud::run_instances(const FakeEc2::Params& p, const std::string& a) {
  if (throttle_run_instances > 0) {
    --throttle_run_instances;
    ++injected.throttled;
    return ec2_error(503, "RequestLimitExceeded", "Request limit exceeded.");
  }
  std::string id;
  for (const auto& [iid, i] : instances)
    if (i.token == param(p, "ClientToken")) id = iid;
  if (id.empty()) {
    id = "i-" + std::to_string(next++);
    std::string ip = public_ip.empty() ? "198.51.100." + std::to_string(next) : public_ip;
    if (on_launch)
      if (std::string booted = on_launch(id, s::base64_decode(param(p, "UserData")).value_or("")); !booted.empty()) ip = booted;
    instances[id] = {"pending", tags_of(p, "instance"), param(p, "ClientToken"), param(p, "UserData"), ip, param(p, "ImageId")};
    hidden_once.insert(id);
  }
  return answer(a, "<reservationId>r-1</reservationId><instancesSet>" + instance_xml(id) + "</instancesSet>");
}

ServedResponse FakeEc2Cloud::describe_instances(const FakeEc2::Params& p, const std::string& a) {
  std::vector<std::string> ids;
  if (p.count("InstanceId.1")) {
    const std::string id = param(p, "InstanceId.1");
    const bool hidden = instances.count(id) && hidden_once.erase(id);
    injected.not_yet_known += hidden ? 1 : 0;
    if (!instances.count(id) || hidden)
      return ec2_error(400, "InvalidInstanceID.NotFound", "The instance ID '" + id + "' does not exist");
    ids.push_back(id);
  } else {
    for (const auto& [id, i] : instances)
      if (tags_match(p, i.tags)) ids.push_back(id);
  }
  for (const auto& id : ids) advance(id, p.count("InstanceId.1") == 1);
  // The empty pages, then one reservation per page.
  const std::size_t at = param(p, "NextToken").empty() ? 0 : std::stoul(param(p, "NextToken"));
  injected.next_pages += at > 0 ? 1 : 0;
  const std::size_t empty = p.count("InstanceId.1") ? 0 : static_cast<std::size_t>(std::max(empty_pages, 0));
  std::string body = "<reservationSet>";
  if (at >= empty && at - empty < ids.size())
    body += "<item><reservationId>r-" + ids[at - empty] + "</reservationId><instancesSet>" + instance_xml(ids[at - empty]) +
            "</instancesSet></item>";
  body += "</reservationSet>";
  if (at < empty || at + 1 < empty + ids.size()) body += "<nextToken>" + std::to_string(at + 1) + "</nextToken>";
  return answer(a, body);
}

ServedResponse FakeEc2Cloud::start_or_terminate_instances(const FakeEc2::Params& p, const std::string& a) {
  const std::string id = param(p, "InstanceId.1");
  if (!instances.count(id)) return ec2_error(400, "InvalidInstanceID.NotFound", "no " + id);
  const std::string state = instances[id].state;
  if (a == "StartInstances" && state != "stopped" && state != "running" && state != "pending")
    return ec2_error(400, "IncorrectInstanceState", "The instance '" + id + "' is not in a state from which it can be started.");
  // Terminated instances pass through shutting-down, as in EC2.
  if (a == "TerminateInstances" && state != "terminated" && state != "shutting-down") {
    instances[id].state = "shutting-down";
    if (on_terminate) on_terminate(id);
  }
  if (a == "StartInstances" && state == "stopped") {
    instances[id].state = "pending";
    if (on_start) on_start(id);
  }
  return answer(a, "<instancesSet><item><instanceId>" + id + "</instanceId></item></instancesSet>");
}

// One step of an instance's life per describe; shutting-down ends only when asked for by id, so
// that a search by tag still finds it on its way out.
void FakeEc2Cloud::advance(const std::string& id, bool by_id) {
  std::string& state = instances[id].state;
  if (state == "pending") state = "running";
  else if (state == "shutting-down" && by_id) state = "terminated";
  else if (state == "stopping" && stopping_for-- <= 0) state = "stopped";
}

std::string FakeEc2Cloud::instance_xml(const std::string& id) {
  const Instance& i = instances.at(id);
  return "<item><instanceId>" + id + "</instanceId><imageId>" + i.image + "</imageId><instanceState><name>" + i.state +
         "</name></instanceState>" + (i.state == "running" ? "<ipAddress>" + i.ip + "</ipAddress>" : "") +
         "<privateIpAddress>10.0.0." + id.substr(2) + "</privateIpAddress>" + tag_set(i.tags) + "</item>";
}

}  // namespace flotilla::test
