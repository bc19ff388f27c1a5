#include "flotilla/support/ec2_client.hpp"

#include "flotilla/support/wait.hpp"

#include <expat.h>

#include <algorithm>
#include <memory>
#include <set>

namespace flotilla::support {
namespace {

constexpr std::string_view kFormType = "application/x-www-form-urlencoded; charset=utf-8";

// The part of a URL between "://" and the path.
std::string authority_of(const std::string& url) {
  const std::size_t scheme = url.find("://");
  const std::size_t start = scheme == std::string::npos ? 0 : scheme + 3;
  const std::size_t end = url.find('/', start);
  return url.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

std::string path_of(const std::string& url) {
  const std::size_t scheme = url.find("://");
  const std::size_t slash = url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  return slash == std::string::npos ? "/" : url.substr(slash);
}

// Builds the element tree as expat reports it.
struct XmlBuilder {
  std::vector<XmlElement*> stack;
  XmlElement root;
  bool have_root = false;
  bool too_deep = false;
};

std::string local_name(const XML_Char* name) {
  std::string n(name);
  const std::size_t colon = n.rfind(':');
  return colon == std::string::npos ? n : n.substr(colon + 1);
}

void XMLCALL on_start(void* data, const XML_Char* name, const XML_Char**) {
  auto* b = static_cast<XmlBuilder*>(data);
  if (b->stack.size() >= 64) {
    b->too_deep = true;
    b->stack.push_back(nullptr);
    return;
  }
  if (b->stack.empty()) {
    b->root.name = local_name(name);
    b->have_root = true;
    b->stack.push_back(&b->root);
    return;
  }
  XmlElement* parent = b->stack.back();
  if (!parent) {
    b->stack.push_back(nullptr);
    return;
  }
  parent->children.push_back(XmlElement{.name = local_name(name)});
  b->stack.push_back(&parent->children.back());
}

void XMLCALL on_end(void* data, const XML_Char*) { static_cast<XmlBuilder*>(data)->stack.pop_back(); }

void XMLCALL on_text(void* data, const XML_Char* s, int len) {
  auto* b = static_cast<XmlBuilder*>(data);
  if (!b->stack.empty() && b->stack.back()) b->stack.back()->text.append(s, static_cast<std::size_t>(len));
}

struct ParsedError {
  std::string code, message, request_id;
};

// EC2's <Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>; a
// body that is not that leaves the code empty and keeps the start of the body as the message.
ParsedError parse_error(const std::string& body) {
  ParsedError e;
  try {
    const XmlElement root = parse_xml(body);
    if (const XmlElement* err = root.at("Errors/Error")) {
      e.code = err->child_text("Code");
      e.message = err->child_text("Message");
    }
    e.request_id = root.child_text("RequestID");
    if (e.request_id.empty()) e.request_id = root.child_text("RequestId");
  } catch (const std::runtime_error&) {
  }
  if (e.code.empty() && e.message.empty()) e.message = body.substr(0, 200);
  return e;
}

bool retryable_status(long status) { return status == 500 || status == 502 || status == 503 || status == 504; }

}  // namespace

Ec2Params& Ec2Params::set(const std::string& name, std::string value) {
  for (auto& [n, v] : items_)
    if (n == name) {
      v = std::move(value);
      return *this;
    }
  items_.emplace_back(name, std::move(value));
  return *this;
}

Ec2Params& Ec2Params::list(const std::string& name, const std::vector<std::string>& values) {
  for (std::size_t i = 0; i < values.size(); ++i) set(name + "." + std::to_string(i + 1), values[i]);
  return *this;
}

int Ec2Params::next_index(std::string_view prefix) const {
  int max = 0;
  for (const auto& [n, v] : items_) {
    if (!n.starts_with(prefix) || n.size() <= prefix.size() || n[prefix.size()] != '.') continue;
    max = std::max(max, std::atoi(n.c_str() + prefix.size() + 1));
  }
  return max + 1;
}

Ec2Params& Ec2Params::filters(const std::vector<Ec2Filter>& filters) {
  for (const auto& f : filters) {
    const std::string p = "Filter." + std::to_string(next_index("Filter"));
    set(p + ".Name", f.name);
    list(p + ".Value", f.values);
  }
  return *this;
}

Ec2Params& Ec2Params::tags(const std::string& prefix, const std::vector<Ec2Tag>& tags) {
  for (const auto& t : tags) {
    const std::string p = prefix + "." + std::to_string(next_index(prefix));
    set(p + ".Key", t.key);
    set(p + ".Value", t.value);
  }
  return *this;
}

Ec2Params& Ec2Params::tag_specification(const std::string& resource_type, const std::vector<Ec2Tag>& tags) {
  const std::string p = "TagSpecification." + std::to_string(next_index("TagSpecification"));
  set(p + ".ResourceType", resource_type);
  return this->tags(p + ".Tag", tags);
}

std::optional<std::string> Ec2Params::get(std::string_view name) const {
  for (const auto& [n, v] : items_)
    if (n == name) return v;
  return std::nullopt;
}

std::string ec2_query_body(std::string_view action, const Ec2Params& params, std::string_view version) {
  std::string body = "Action=" + url_encode(action) + "&Version=" + url_encode(version);
  for (const auto& [name, value] : params.items()) body += "&" + url_encode(name) + "=" + url_encode(value);
  return body;
}

const XmlElement* XmlElement::child(std::string_view n) const {
  for (const auto& c : children)
    if (c.name == n) return &c;
  return nullptr;
}

std::string XmlElement::child_text(std::string_view n) const {
  const XmlElement* c = child(n);
  return c ? c->text : std::string();
}

const XmlElement* XmlElement::at(std::string_view path) const {
  const XmlElement* e = this;
  std::size_t start = 0;
  while (e && start <= path.size()) {
    const std::size_t end = std::min(path.find('/', start), path.size());
    e = e->child(path.substr(start, end - start));
    start = end + 1;
  }
  return e;
}

std::vector<const XmlElement*> XmlElement::items(std::string_view set) const {
  std::vector<const XmlElement*> out;
  if (const XmlElement* s = child(set))
    for (const auto& c : s->children)
      if (c.name == "item") out.push_back(&c);
  return out;
}

XmlElement parse_xml(std::string_view text) {
  const std::unique_ptr<std::remove_pointer_t<XML_Parser>, decltype(&XML_ParserFree)> parser(XML_ParserCreate("UTF-8"),
                                                                                               &XML_ParserFree);
  if (!parser) throw std::runtime_error("xml: expat could not create a parser");
  XmlBuilder b;
  // The stack points into children vectors: only the innermost open element gains children,
  // so a vector that grows only moves elements already closed.
  XML_SetUserData(parser.get(), &b);
  XML_SetElementHandler(parser.get(), on_start, on_end);
  XML_SetCharacterDataHandler(parser.get(), on_text);
  if (text.size() > static_cast<std::size_t>(INT32_MAX)) throw std::runtime_error("xml: the document is too large");
  if (XML_Parse(parser.get(), text.data(), static_cast<int>(text.size()), 1) != XML_STATUS_OK)
    throw std::runtime_error("xml: " + std::string(XML_ErrorString(XML_GetErrorCode(parser.get()))) + " at line " +
                             std::to_string(XML_GetCurrentLineNumber(parser.get())) + ", column " +
                             std::to_string(XML_GetCurrentColumnNumber(parser.get())));
  if (b.too_deep) throw std::runtime_error("xml: elements nested deeper than 64 levels");
  if (!b.have_root) throw std::runtime_error("xml: no root element");
  return std::move(b.root);
}

bool ec2_throttling_code(std::string_view code) {
  static const std::set<std::string_view> kCodes = {
      "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException", "TooManyRequestsException",
      "ProvisionedThroughputExceededException", "TransactionInProgressException", "RequestLimitExceeded",
      "BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled", "SlowDown", "PriorRequestNotComplete",
      "EC2ThrottledException"};
  return kCodes.contains(code);
}

bool ec2_transient_code(std::string_view code) {
  static const std::set<std::string_view> kCodes = {"RequestTimeout", "RequestTimeoutException", "InternalError",
                                                    "InternalFailure", "ServiceUnavailable", "Unavailable"};
  return kCodes.contains(code);
}

std::string ec2_endpoint(std::string_view region) {
  return "https://ec2." + std::string(region) + (region.starts_with("cn-") ? ".amazonaws.com.cn" : ".amazonaws.com");
}

Ec2Client::Ec2Client(Ec2ClientOptions options)
    : options_(std::move(options)),
      endpoint_(options_.endpoint.empty() ? ec2_endpoint(options_.region) : options_.endpoint),
      http_(HttpClientOptions{.tls = options_.tls, .timeouts = options_.timeouts, .cancelled = options_.cancelled}) {
  if (options_.region.empty()) throw std::invalid_argument("ec2 client: no region given");
  if (!options_.credentials) throw std::invalid_argument("ec2 client: no credentials given");
  if (options_.max_attempts < 1) options_.max_attempts = 1;
}

const AwsCredentials& Ec2Client::current_credentials() {
  const auto soon = std::chrono::system_clock::now() + std::chrono::minutes(5);
  if (!credentials_ || (credentials_->expiration && *credentials_->expiration < soon)) credentials_ = options_.credentials();
  return *credentials_;
}

HttpResponse Ec2Client::send_once(const std::string& body) {
  const std::string host = authority_of(endpoint_);
  const SigV4Request request{.method = "POST", .path = path_of(endpoint_), .headers = {{"Host", host}, {"Content-Type", std::string(kFormType)}},
                             .body = body};
  const SigV4Signed signed_request =
      sigv4_sign(request, current_credentials(),
                 {.region = options_.region, .service = "ec2", .time = std::chrono::system_clock::now()});
  HttpRequest http{.method = "POST", .url = endpoint_, .body = body, .content_type = std::string(kFormType)};
  for (const auto& [name, value] : signed_request.request.headers)
    if (name != "Content-Type") http.headers.push_back(name + ": " + value);
  return http_.send(http);
}

XmlElement Ec2Client::call(std::string_view action, const Ec2Params& params) {
  const std::string body = ec2_query_body(action, params);
  // Without a ClientToken, EC2 cannot tell a retried RunInstances from a new one.
  const bool may_retry = action != "RunInstances" || params.get("ClientToken").has_value();
  const std::string where = "EC2 " + std::string(action) + " at " + endpoint_;
  for (int attempt = 1;; ++attempt) {
    long status = 0;
    ParsedError err;
    bool retryable = false;
    try {
      const HttpResponse r = send_once(body);
      if (r.status >= 200 && r.status < 300) {
        try {
          return parse_xml(r.body);
        } catch (const std::runtime_error& e) {
          throw Ec2Error(where + ": the answer is not XML (" + e.what() + ")", std::string(action), r.status, "", "", "", attempt);
        }
      }
      status = r.status;
      err = parse_error(r.body);
      retryable = ec2_throttling_code(err.code) || ec2_transient_code(err.code) || retryable_status(status);
    } catch (const Unreachable& e) {
      err.message = e.what();
      retryable = e.cause() != Unreachable::Cause::cancelled;
    }
    const std::string what = err.code.empty() ? err.message : err.code + ": " + err.message;
    const std::string detail = (status ? " (HTTP " + std::to_string(status) : std::string(" (no answer")) +
                               (err.request_id.empty() ? "" : ", request id " + err.request_id) + ")";
    if (!retryable || attempt >= options_.max_attempts || !may_retry) {
      std::string msg = where + " failed: " + what + detail;
      if (retryable && !may_retry)
        msg += "; not retried: RunInstances without a ClientToken could start a second instance";
      else if (retryable)
        msg += "; gave up after " + std::to_string(attempt) + " attempts";
      throw Ec2Error(msg, std::string(action), status, err.code, err.message, err.request_id, attempt);
    }
    const auto wait = full_jitter(backoff_ceiling(options_.base_delay, options_.max_delay, attempt - 1));
    if (options_.log)
      options_.log(where + ": " + what + detail + "; attempt " + std::to_string(attempt) + " of " +
                   std::to_string(options_.max_attempts) + ", retrying in " + std::to_string(wait.count()) + " ms");
    if (!sleep_for(wait, options_.cancelled))
      throw Ec2Error(where + ": cancelled while waiting to retry after " + what, std::string(action), status, err.code,
                     err.message, err.request_id, attempt);
  }
}

void Ec2Client::call_pages(std::string_view action, Ec2Params params, const std::function<void(const XmlElement&)>& on_page,
                           int max_pages) {
  std::set<std::string> seen;
  for (int page = 1;; ++page) {
    const XmlElement answer = call(action, params);
    on_page(answer);
    const std::string token = answer.child_text("nextToken");
    if (token.empty()) return;
    if (!seen.insert(token).second || page >= max_pages)
      throw Ec2Error("EC2 " + std::string(action) + " at " + endpoint_ + ": " +
                         (page >= max_pages ? "more than " + std::to_string(max_pages) + " pages" : "the same nextToken twice") +
                         "; the listing does not end",
                     std::string(action), 200, "", "", "", 1);
    params.set("NextToken", token);
  }
}

}  // namespace flotilla::support
