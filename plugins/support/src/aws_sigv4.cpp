#include "flotilla/support/aws_sigv4.hpp"

#include "flotilla/support/encoding.hpp"
#include "flotilla/support/http.hpp"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <map>
#include <stdexcept>

namespace flotilla::support {
namespace {

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes %XX; anything else (a lone '%', '+') stays as it is.
std::string percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      const int hi = hex_digit(text[i + 1]);
      const int lo = hex_digit(text[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += text[i];
  }
  return out;
}

// Trims a header value and folds each run of blanks into one space.
std::string canonical_header_value(std::string_view value) {
  std::string out;
  bool blank = false;
  for (char c : value) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      blank = true;
      continue;
    }
    if (blank && !out.empty()) out += ' ';
    blank = false;
    out += c;
  }
  return out;
}

struct CanonicalHeaders {
  std::string text;    // "name:value\n" lines
  std::string signed_names;  // "a;b;c"
};

CanonicalHeaders canonical_headers(const std::vector<std::pair<std::string, std::string>>& headers) {
  // Repeated names are joined with commas in the order they came, under the lower-case name.
  std::map<std::string, std::vector<std::string>> merged;
  for (const auto& [name, value] : headers) merged[lower(name)].push_back(canonical_header_value(value));
  CanonicalHeaders out;
  for (const auto& [name, values] : merged) {
    out.text += name + ':';
    for (std::size_t i = 0; i < values.size(); ++i) out.text += (i ? "," : "") + values[i];
    out.text += '\n';
    if (!out.signed_names.empty()) out.signed_names += ';';
    out.signed_names += name;
  }
  return out;
}

bool has_header(const SigV4Request& r, std::string_view name) {
  return std::any_of(r.headers.begin(), r.headers.end(), [&](const auto& h) { return lower(h.first) == lower(name); });
}

void check_inputs(const SigV4Request& request, const AwsCredentials& credentials, const SigV4Options& options) {
  if (credentials.access_key_id.empty()) throw std::invalid_argument("sigv4: the access key id is empty");
  if (credentials.secret_access_key.empty()) throw std::invalid_argument("sigv4: the secret access key is empty");
  if (options.region.empty()) throw std::invalid_argument("sigv4: the region is empty");
  if (options.service.empty()) throw std::invalid_argument("sigv4: the service name is empty");
  if (!has_header(request, "host")) throw std::invalid_argument("sigv4: the request has no Host header");
}

std::string scope_of(const SigV4Options& options) {
  return amz_date(options.time).substr(0, 8) + '/' + options.region + '/' + options.service + "/aws4_request";
}

std::string signing_key(const AwsCredentials& credentials, const SigV4Options& options) {
  const std::string k_date = hmac_sha256("AWS4" + credentials.secret_access_key.reveal(), amz_date(options.time).substr(0, 8));
  const std::string k_region = hmac_sha256(k_date, options.region);
  const std::string k_service = hmac_sha256(k_region, options.service);
  return hmac_sha256(k_service, "aws4_request");
}

// Fills the canonical request, string to sign and signature of `out` for `r` (already carrying
// what signing adds).
void compute(SigV4Signed& out, const SigV4Request& r, const AwsCredentials& credentials, const SigV4Options& options,
             const std::string& date) {
  const CanonicalHeaders headers = canonical_headers(r.headers);
  out.canonical_request = r.method + '\n' + sigv4_canonical_uri(r.path, options.normalize_path) + '\n' +
                          sigv4_canonical_query(r.query) + '\n' + headers.text + '\n' + headers.signed_names + '\n' +
                          sha256_hex(r.body);
  out.string_to_sign = std::string(kAlgorithm) + '\n' + date + '\n' + scope_of(options) + '\n' + sha256_hex(out.canonical_request);
  out.signature = hex_encode(hmac_sha256(signing_key(credentials, options), out.string_to_sign));
  out.authorization = std::string(kAlgorithm) + " Credential=" + credentials.access_key_id + '/' + scope_of(options) +
                      ", SignedHeaders=" + headers.signed_names + ", Signature=" + out.signature;
}

void add_query(std::string& query, std::string_view name, std::string_view value) {
  if (!query.empty()) query += '&';
  query += url_encode(name) + '=' + url_encode(value);
}

}  // namespace

std::string amz_date(std::chrono::system_clock::time_point time) {
  const std::time_t t = std::chrono::system_clock::to_time_t(time);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

std::optional<std::chrono::system_clock::time_point> parse_amz_date(std::string_view text) {
  if (text.size() != 16 || text[8] != 'T' || text[15] != 'Z') return std::nullopt;
  for (std::size_t i = 0; i < 15; ++i)
    if (i != 8 && !std::isdigit(static_cast<unsigned char>(text[i]))) return std::nullopt;
  const auto num = [&](std::size_t at, std::size_t n) { return std::stoi(std::string(text.substr(at, n))); };
  std::tm tm{};
  tm.tm_year = num(0, 4) - 1900;
  tm.tm_mon = num(4, 2) - 1;
  tm.tm_mday = num(6, 2);
  tm.tm_hour = num(9, 2);
  tm.tm_min = num(11, 2);
  tm.tm_sec = num(13, 2);
  if (tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
    return std::nullopt;
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

std::string sigv4_canonical_uri(std::string_view path, bool normalize) {
  if (path.empty()) return "/";
  std::vector<std::string_view> segments;
  std::size_t start = path.front() == '/' ? 1 : 0;
  while (start <= path.size()) {
    const std::size_t end = std::min(path.find('/', start), path.size());
    const std::string_view seg = path.substr(start, end - start);
    if (!normalize) {
      segments.push_back(seg);
    } else if (seg == "..") {
      if (!segments.empty()) segments.pop_back();
    } else if (!seg.empty() && seg != ".") {
      segments.push_back(seg);
    }
    start = end + 1;
  }
  std::string out;
  for (const auto seg : segments) out += '/' + url_encode(seg);
  if (out.empty()) return "/";
  // A path naming a directory keeps its trailing slash (without normalization the empty last
  // segment already gave it).
  if (normalize && path.back() == '/') out += '/';
  return out;
}

std::string sigv4_canonical_query(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> params;
  std::size_t start = 0;
  while (start < query.size()) {
    const std::size_t end = std::min(query.find('&', start), query.size());
    const std::string_view pair = query.substr(start, end - start);
    if (!pair.empty()) {
      const std::size_t eq = pair.find('=');
      const std::string_view name = pair.substr(0, eq);
      const std::string_view value = eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
      params.emplace_back(url_encode(percent_decode(name)), url_encode(percent_decode(value)));
    }
    start = end + 1;
  }
  std::sort(params.begin(), params.end());
  std::string out;
  for (const auto& [name, value] : params) {
    if (!out.empty()) out += '&';
    out += name + '=' + value;
  }
  return out;
}

SigV4Signed sigv4_sign(const SigV4Request& request, const AwsCredentials& credentials, const SigV4Options& options) {
  check_inputs(request, credentials, options);
  SigV4Signed out;
  out.request = request;
  const std::string date = amz_date(options.time);
  if (!has_header(request, "x-amz-date")) out.request.headers.emplace_back("X-Amz-Date", date);
  const bool token = !credentials.session_token.empty() && !has_header(request, "x-amz-security-token");
  if (token && options.sign_session_token)
    out.request.headers.emplace_back("X-Amz-Security-Token", credentials.session_token.reveal());
  if (options.sign_body_header && !has_header(request, "x-amz-content-sha256"))
    out.request.headers.emplace_back("X-Amz-Content-Sha256", sha256_hex(request.body));
  compute(out, out.request, credentials, options, date);
  if (token && !options.sign_session_token)
    out.request.headers.emplace_back("X-Amz-Security-Token", credentials.session_token.reveal());
  out.request.headers.emplace_back("Authorization", out.authorization);
  return out;
}

SigV4Signed sigv4_presign(const SigV4Request& request, const AwsCredentials& credentials, const SigV4Options& options) {
  check_inputs(request, credentials, options);
  SigV4Signed out;
  out.request = request;
  const std::string date = amz_date(options.time);
  std::string& q = out.request.query;
  add_query(q, "X-Amz-Algorithm", kAlgorithm);
  add_query(q, "X-Amz-Credential", credentials.access_key_id + '/' + scope_of(options));
  add_query(q, "X-Amz-Date", date);
  add_query(q, "X-Amz-Expires", std::to_string(options.expires.count()));
  add_query(q, "X-Amz-SignedHeaders", canonical_headers(request.headers).signed_names);
  const bool token = !credentials.session_token.empty();
  if (token && options.sign_session_token) add_query(q, "X-Amz-Security-Token", credentials.session_token.reveal());
  compute(out, out.request, credentials, options, date);
  out.authorization.clear();
  if (token && !options.sign_session_token) add_query(q, "X-Amz-Security-Token", credentials.session_token.reveal());
  add_query(q, "X-Amz-Signature", out.signature);
  return out;
}

}  // namespace flotilla::support
