// A fake EC2 endpoint on 127.0.0.1 for tests of EC2 clients: it checks every request's SigV4
// signature with its own copy of the test key (kFakeEc2KeyId / kFakeEc2Secret, region
// eu-west-1), decodes the form body, records the parameters and lets the test's script answer
// in EC2's XML. Shared by the EC2 client's tests and the aws driver's (which script a small
// in-memory cloud on it).
#pragma once

#include "support/http_server.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace flotilla::test {

inline constexpr const char* kFakeEc2KeyId = "AKIAFAKEEC2TEST";
inline constexpr const char* kFakeEc2Secret = "fake-ec2-secret-key/for+tests";
inline constexpr const char* kFakeEc2Region = "eu-west-1";
/// The XML namespace of EC2's answers.
inline constexpr const char* kEc2Ns = "http://ec2.amazonaws.com/doc/2016-11-15/";

/// Decodes application/x-www-form-urlencoded text ('+' is a space).
[[nodiscard]] std::string form_decode(std::string_view v);
/// The fields of a form body.
[[nodiscard]] std::map<std::string, std::string> form(const std::string& body);
/// EC2's error document with `code` and `message`, at HTTP `status`.
[[nodiscard]] ServedResponse ec2_error(int status, const std::string& code, const std::string& message);
/// Why the request's signature is not what kFakeEc2Secret gives for kFakeEc2Region ("" when it is).
[[nodiscard]] std::string signature_problem(const ServedRequest& r);

/// The EC2 service model Debian's python3-botocore ships (FLOTILLA_EC2_MODEL moves it).
[[nodiscard]] std::string ec2_model_path();
/// Why `param` of `action` is not a name the ec2 protocol sends for the model's input shape
/// ("" when it is): botocore's EC2Serializer's names (queryName, else locationName with its
/// first letter upper-cased, else the member's name), lists 1-based.
[[nodiscard]] std::string problem_in_model(const nlohmann::json& model, const std::string& action, const std::string& param);
/// The same for an answer: why `path` ("/"-separated XML element names under <ACTIONResponse>,
/// lists written <xxxSet><item>) is not in the model's output shape of `action` ("" when it is).
[[nodiscard]] std::string answer_problem_in_model(const nlohmann::json& model, const std::string& action, const std::string& path);

/// A fake EC2: checks signatures, then lets the test's script answer.
class FakeEc2 {
 public:
  using Params = std::map<std::string, std::string>;
  /// `call` counts the requests that passed the checks, from 1.
  using Script = std::function<ServedResponse(const Params& params, int call)>;
  explicit FakeEc2(Script script);
  [[nodiscard]] std::string url() const { return server_.url() + "/"; }
  [[nodiscard]] std::vector<Params> calls() const;
  /// How many of those were `action` ("RunInstances").
  [[nodiscard]] int calls_of(const std::string& action) const;
  [[nodiscard]] int bad_signatures() const { return bad_signatures_.load(); }

 private:
  ServedResponse handle(const ServedRequest& r);
  Script script_;
  mutable std::mutex mu_;
  std::vector<Params> calls_;
  std::atomic<int> bad_signatures_{0};
  HttpTestServer server_;
};

}  // namespace flotilla::test
