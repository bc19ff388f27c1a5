#include "support/fake_ec2.hpp"

#include "flotilla/support/aws_sigv4.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>

namespace flotilla::test {

namespace s = flotilla::support;

std::string form_decode(std::string_view v) {
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '%' && i + 2 < v.size()) {
      out += static_cast<char>(std::stoi(std::string(v.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += v[i] == '+' ? ' ' : v[i];
    }
  }
  return out;
}

std::map<std::string, std::string> form(const std::string& body) {
  std::map<std::string, std::string> out;
  std::size_t start = 0;
  while (start < body.size()) {
    const std::size_t end = std::min(body.find('&', start), body.size());
    const std::string pair = body.substr(start, end - start);
    const std::size_t eq = pair.find('=');
    out[form_decode(pair.substr(0, eq))] = eq == std::string::npos ? "" : form_decode(pair.substr(eq + 1));
    start = end + 1;
  }
  return out;
}

ServedResponse ec2_error(int status, const std::string& code, const std::string& message) {
  return {.status = status,
          .body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>" + code + "</Code><Message>" +
                  message + "</Message></Error></Errors><RequestID>req-" + code + "</RequestID></Response>",
          .headers = {{"Content-Type", "text/xml;charset=UTF-8"}}};
}

// Recomputes the signature of a received request from the headers it says it signed.
std::string signature_problem(const ServedRequest& r) {
  const auto auth = r.headers.find("authorization");
  const auto date = r.headers.find("x-amz-date");
  if (auth == r.headers.end() || date == r.headers.end()) return "no Authorization or X-Amz-Date header";
  const std::string& a = auth->second;
  const auto field = [&](const std::string& name) {
    const std::size_t at = a.find(name + "=");
    if (at == std::string::npos) return std::string();
    const std::size_t end = a.find(',', at);
    return a.substr(at + name.size() + 1, end == std::string::npos ? std::string::npos : end - at - name.size() - 1);
  };
  const std::string credential = field("Credential");
  if (!credential.starts_with(std::string(kFakeEc2KeyId) + "/")) return "unknown access key in " + credential;
  s::SigV4Request req{.method = r.method, .path = r.target.substr(0, r.target.find('?')), .body = r.body};
  std::string names = field("SignedHeaders");
  for (std::size_t start = 0; start <= names.size();) {
    const std::size_t end = std::min(names.find(';', start), names.size());
    const std::string name = names.substr(start, end - start);
    const auto h = r.headers.find(name);
    if (h == r.headers.end()) return "signed header " + name + " missing";
    req.headers.emplace_back(name, h->second);
    start = end + 1;
  }
  const auto time = s::parse_amz_date(date->second);
  if (!time) return "bad X-Amz-Date";
  const s::AwsCredentials creds{.access_key_id = kFakeEc2KeyId, .secret_access_key = s::Secret(kFakeEc2Secret)};
  const auto expected = s::sigv4_sign(req, creds, {.region = kFakeEc2Region, .service = "ec2", .time = *time});
  if (expected.authorization != a) return "signature mismatch";
  return {};
}

std::string ec2_model_path() {
  const char* env = std::getenv("FLOTILLA_EC2_MODEL");
  return env && *env ? env : "/usr/lib/python3/dist-packages/botocore/data/ec2/2016-11-15/service-2.json";
}

std::string problem_in_model(const nlohmann::json& model, const std::string& action, const std::string& param) {
  const auto& shapes = model.at("shapes");
  const auto op = model.at("operations").find(action);
  if (op == model.at("operations").end()) return action + " is not an operation of the model";
  std::string shape = op->at("input").at("shape").get<std::string>();
  std::size_t start = 0;
  while (start <= param.size()) {
    const std::size_t end = std::min(param.find('.', start), param.size());
    const std::string part = param.substr(start, end - start);
    start = end + 1;
    const auto& sh = shapes.at(shape);
    const std::string type = sh.at("type").get<std::string>();
    if (type == "list") {
      if (part.empty() || !std::all_of(part.begin(), part.end(), ::isdigit) || part == "0")
        return param + ": " + part + " should be a 1-based index of the list " + shape;
      shape = sh.at("member").at("shape").get<std::string>();
      continue;
    }
    if (type != "structure") return param + ": " + part + " under " + shape + ", which is a " + type;
    bool found = false;
    for (const auto& [member, spec] : sh.at("members").items()) {
      std::string wire = member;
      if (spec.contains("queryName")) {
        wire = spec.at("queryName").get<std::string>();
      } else if (spec.contains("locationName")) {
        wire = spec.at("locationName").get<std::string>();
        wire[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(wire[0])));
      }
      if (wire == part) {
        shape = spec.at("shape").get<std::string>();
        found = true;
        break;
      }
    }
    if (!found) return param + ": " + shape + " has no member sent as " + part;
  }
  const std::string last = shapes.at(shape).at("type").get<std::string>();
  if (last == "structure" || last == "list") return param + " ends at " + shape + ", a " + last + ", not a value";
  return {};
}

std::string answer_problem_in_model(const nlohmann::json& model, const std::string& action, const std::string& path) {
  const auto& shapes = model.at("shapes");
  std::string shape = model.at("operations").at(action).at("output").at("shape").get<std::string>();
  std::size_t start = 0;
  while (start <= path.size()) {
    const std::size_t end = std::min(path.find('/', start), path.size());
    const std::string part = path.substr(start, end - start);
    start = end + 1;
    const auto& sh = shapes.at(shape);
    const std::string type = sh.at("type").get<std::string>();
    if (type == "list") {
      const std::string item = sh.at("member").value("locationName", std::string("member"));
      if (part != item) return path + ": the list " + shape + " holds <" + item + ">, not <" + part + ">";
      shape = sh.at("member").at("shape").get<std::string>();
      continue;
    }
    if (type != "structure") return path + ": " + part + " under " + shape + ", which is a " + type;
    bool found = false;
    for (const auto& [member, spec] : sh.at("members").items()) {
      if (spec.value("locationName", member) == part) {
        shape = spec.at("shape").get<std::string>();
        found = true;
        break;
      }
    }
    if (!found) return path + ": " + shape + " has no element <" + part + ">";
  }
  return {};
}

FakeEc2::FakeEc2(Script script) : script_(std::move(script)), server_([this](const ServedRequest& r) { return handle(r); }) {}

std::vector<FakeEc2::Params> FakeEc2::calls() const {
  std::lock_guard lock(mu_);
  return calls_;
}

int FakeEc2::calls_of(const std::string& action) const {
  std::lock_guard lock(mu_);
  return static_cast<int>(std::count_if(calls_.begin(), calls_.end(), [&](const Params& p) { return p.at("Action") == action; }));
}

ServedResponse FakeEc2::handle(const ServedRequest& r) {
  if (const std::string p = signature_problem(r); !p.empty()) {
    ++bad_signatures_;
    return ec2_error(401, "AuthFailure", "SignatureDoesNotMatch: " + p);
  }
  if (r.headers.count("content-type") == 0 || !r.headers.at("content-type").starts_with("application/x-www-form-urlencoded"))
    return ec2_error(400, "InvalidParameterValue", "form body expected");
  const auto params = form(r.body);
  if (params.count("Version") == 0 || params.at("Version") != "2016-11-15")
    return ec2_error(400, "InvalidParameterValue", "Version must be 2016-11-15");
  int call;
  {
    std::lock_guard lock(mu_);
    calls_.push_back(params);
    call = static_cast<int>(calls_.size());
  }
  return script_(params, call);
}

}  // namespace flotilla::test
