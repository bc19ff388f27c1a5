// The EC2 Query API (version 2016-11-15) on the support library's HTTP client: form-encoded
// POSTs signed with SigV4, lists flattened the way the ec2 protocol wants (InstanceId.1,
// Filter.1.Name, Filter.1.Value.1, TagSpecification.1.Tag.1.Key), XML answers and errors read
// with expat, NextToken pagination, and retries with full-jitter exponential backoff on
// throttling and transient failures. RunInstances is retried only when it carries a
// ClientToken, so a retry can never start a second instance.
#pragma once

#include "flotilla/support/aws_sigv4.hpp"
#include "flotilla/support/http.hpp"

#include <chrono>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace flotilla::support {

/// The EC2 API version every request names.
inline constexpr std::string_view kEc2ApiVersion = "2016-11-15";

/// One filter of a Describe call: Filter.N.Name and Filter.N.Value.M.
struct Ec2Filter {
  std::string name;
  std::vector<std::string> values;
};

/// One tag: Key and Value.
struct Ec2Tag {
  std::string key;
  std::string value;
};

/// The parameters of one request, in the order added. Helpers write the flattened names.
class Ec2Params {
 public:
  /// NAME=VALUE (replaces an earlier value of NAME).
  Ec2Params& set(const std::string& name, std::string value);
  /// NAME.1, NAME.2, ... (nothing for an empty list, as the protocol wants).
  Ec2Params& list(const std::string& name, const std::vector<std::string>& values);
  /// Filter.N.Name and Filter.N.Value.M, numbered after the filters already added.
  Ec2Params& filters(const std::vector<Ec2Filter>& filters);
  /// PREFIX.N.Key and PREFIX.N.Value (PREFIX "Tag" for CreateTags).
  Ec2Params& tags(const std::string& prefix, const std::vector<Ec2Tag>& tags);
  /// The next TagSpecification.N: its ResourceType and Tag.M.Key/Value.
  Ec2Params& tag_specification(const std::string& resource_type, const std::vector<Ec2Tag>& tags);

  /// The value of NAME, if set.
  [[nodiscard]] std::optional<std::string> get(std::string_view name) const;
  [[nodiscard]] const std::vector<std::pair<std::string, std::string>>& items() const { return items_; }

 private:
  int next_index(std::string_view prefix) const;
  std::vector<std::pair<std::string, std::string>> items_;
};

/// The form body of a request: Action=ACTION&Version=VERSION&NAME=VALUE..., every name and
/// value percent-encoded (RFC 3986 unreserved kept).
[[nodiscard]] std::string ec2_query_body(std::string_view action, const Ec2Params& params,
                                         std::string_view version = kEc2ApiVersion);

/// An XML element: its local name (any namespace prefix dropped), the text directly inside it
/// and its child elements. Attributes are not kept (EC2 answers use none).
struct XmlElement {
  std::string name;
  std::string text;
  std::vector<XmlElement> children;

  /// The first child named `name`, or nullptr.
  [[nodiscard]] const XmlElement* child(std::string_view name) const;
  /// The text of the first child named `name`, or "" when there is none.
  [[nodiscard]] std::string child_text(std::string_view name) const;
  /// The element at a "/"-separated path of child names ("instanceState/name"), or nullptr.
  [[nodiscard]] const XmlElement* at(std::string_view path) const;
  /// The <item> children of the child `set` (EC2's lists: <instancesSet><item>...).
  [[nodiscard]] std::vector<const XmlElement*> items(std::string_view set) const;
};

/// Parses an XML document with expat. Throws std::runtime_error naming line and column when
/// it is not well-formed or nests deeper than 64 elements.
[[nodiscard]] XmlElement parse_xml(std::string_view text);

/// An EC2 call that failed: EC2's error (code, message, request id) or no usable answer.
class Ec2Error : public std::runtime_error {
 public:
  Ec2Error(const std::string& message, std::string action, long status, std::string code, std::string error_message,
           std::string request_id, int attempts)
      : std::runtime_error(message), action_(std::move(action)), status_(status), code_(std::move(code)),
        error_message_(std::move(error_message)), request_id_(std::move(request_id)), attempts_(attempts) {}
  [[nodiscard]] const std::string& action() const { return action_; }
  /// The HTTP status; 0 when no answer came.
  [[nodiscard]] long status() const { return status_; }
  /// EC2's error code ("InvalidInstanceID.NotFound"); "" when the answer had none.
  [[nodiscard]] const std::string& code() const { return code_; }
  [[nodiscard]] const std::string& error_message() const { return error_message_; }
  [[nodiscard]] const std::string& request_id() const { return request_id_; }
  /// Requests sent for this call (1 when it was not retried).
  [[nodiscard]] int attempts() const { return attempts_; }

 private:
  std::string action_;
  long status_;
  std::string code_;
  std::string error_message_;
  std::string request_id_;
  int attempts_;
};

/// True for the codes AWS SDKs treat as throttling (RequestLimitExceeded, Throttling, ...).
[[nodiscard]] bool ec2_throttling_code(std::string_view code);
/// True for codes of transient server trouble (InternalError, Unavailable, RequestTimeout, ...).
[[nodiscard]] bool ec2_transient_code(std::string_view code);

/// "https://ec2.REGION.amazonaws.com" (".amazonaws.com.cn" for the China regions).
[[nodiscard]] std::string ec2_endpoint(std::string_view region);

/// How a client talks to EC2.
struct Ec2ClientOptions {
  std::string region;                             ///< signs every request; required
  std::string endpoint;                           ///< "" for ec2_endpoint(region); tests and other partitions set it
  std::function<AwsCredentials()> credentials;    ///< called once, and again when the keys expire within 5 minutes
  int max_attempts = 5;                           ///< requests per call, the first included
  std::chrono::milliseconds base_delay{500};      ///< backoff: a random wait in [0, min(max_delay, base_delay * 2^retry)]
  std::chrono::milliseconds max_delay{20000};
  HttpTimeouts timeouts{std::chrono::milliseconds(5000), std::chrono::milliseconds(60000)};
  TlsOptions tls;
  CancelledFn cancelled;                          ///< stops waits and transfers
  std::function<void(const std::string&)> log;    ///< told of each retry (action, error, wait); never of a key
};

/// An EC2 client. Thread-compatible: one per thread.
class Ec2Client {
 public:
  /// Throws std::invalid_argument when the region or credentials function is missing.
  explicit Ec2Client(Ec2ClientOptions options);

  /// Sends ACTION with `params` and returns the answer's root element (<ACTIONResponse>).
  /// Retries throttling (RequestLimitExceeded, ...), 5xx answers and connection failures up to
  /// max_attempts, except RunInstances without ClientToken, which is sent once. Throws Ec2Error
  /// for EC2's error answers and when the attempts run out.
  XmlElement call(std::string_view action, const Ec2Params& params);

  /// call() for each page, following nextToken, handing every answer to `on_page`. Throws
  /// Ec2Error like call(), and when EC2 repeats a token or gives more than `max_pages` pages.
  void call_pages(std::string_view action, Ec2Params params, const std::function<void(const XmlElement&)>& on_page,
                  int max_pages = 1000);

  [[nodiscard]] const std::string& endpoint() const { return endpoint_; }

 private:
  const AwsCredentials& current_credentials();
  HttpResponse send_once(const std::string& body);

  Ec2ClientOptions options_;
  std::string endpoint_;
  std::optional<AwsCredentials> credentials_;
  HttpClient http_;
};

}  // namespace flotilla::support
