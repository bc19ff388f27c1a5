// SigV4 against AWS's published test suites in tests/data/ (or the suite FLOTILLA_SIGV4_SUITE
// names), in either layout:
// - 2015 ("aws-sig-v4-test-suite"): CASE/CASE.req, .creq, .sts, .authz, .sreq; the key, region
//   and service are the suite's fixed example values;
// - aws-c-auth's ("aws-signing-test-suite"): CASE/context.json, request.txt and the
//   header-* and query-* canonical request, string to sign, signature and signed request.
// Every expected file is compared; a tampered copy of a case must fail.
#include "flotilla/support/aws_sigv4.hpp"

#include "flotilla/support/encoding.hpp"
#include "flotilla/support/files.hpp"
#include "support/process_util.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

namespace s = flotilla::support;
namespace fs = std::filesystem;

namespace {

// The example key of both suites (the 2015 one has no context file; aws-c-auth's states them).
constexpr const char* kAccessKey = "AKIDEXAMPLE";
constexpr const char* kSecretKey = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
// The session token of the 2015 suite's post-sts-token cases, as its readme.txt gives it.
constexpr const char* kLegacyToken =
    "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/"
    "qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+"
    "xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";

std::string read(const fs::path& p) { return s::read_file(p); }

std::string without_trailing_newlines(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

std::string percent_decoded(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && std::isxdigit(static_cast<unsigned char>(text[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(text[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(text.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

// A request as the suites write it. The request target may hold spaces ("GET /a b/ HTTP/1.1");
// a folded header line (starting with a blank) is one more value of the header above it.
s::SigV4Request parse_request(const std::string& text) {
  s::SigV4Request r;
  std::size_t at = text.find('\n');
  const std::string first = without_trailing_newlines(text.substr(0, at));
  const std::size_t sp1 = first.find(' ');
  const std::size_t sp2 = first.rfind(' ');
  r.method = first.substr(0, sp1);
  const std::string target = sp2 > sp1 ? first.substr(sp1 + 1, sp2 - sp1 - 1) : first.substr(sp1 + 1);
  const std::size_t q = target.find('?');
  r.path = percent_decoded(target.substr(0, q));
  r.query = q == std::string::npos ? "" : target.substr(q + 1);
  while (at != std::string::npos) {
    const std::size_t next = text.find('\n', at + 1);
    std::string line = text.substr(at + 1, next == std::string::npos ? std::string::npos : next - at - 1);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    at = next;
    if (line.empty()) {
      r.body = at == std::string::npos ? "" : text.substr(at + 1);
      break;
    }
    if ((line.front() == ' ' || line.front() == '\t') && !r.headers.empty()) {
      r.headers.emplace_back(r.headers.back().first, line);
      continue;
    }
    const std::size_t colon = line.find(':');
    r.headers.emplace_back(line.substr(0, colon), colon == std::string::npos ? "" : line.substr(colon + 1));
  }
  return r;
}

std::string trimmed(std::string v) {
  v.erase(0, v.find_first_not_of(" \t"));
  v.erase(v.find_last_not_of(" \t") + 1);
  return v;
}

// The parts of a signed request that carry values: method, path, query parameters (in any
// order), headers (in any order, names case-insensitive) and body.
std::string request_summary(const s::SigV4Request& r) {
  std::vector<std::string> params;
  std::size_t start = 0;
  while (start < r.query.size()) {
    const std::size_t end = std::min(r.query.find('&', start), r.query.size());
    params.push_back(r.query.substr(start, end - start));
    start = end + 1;
  }
  std::sort(params.begin(), params.end());
  std::vector<std::string> headers;
  for (const auto& [name, value] : r.headers) {
    std::string n = name;
    for (char& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    headers.push_back(n + ':' + trimmed(value));
  }
  std::sort(headers.begin(), headers.end());
  std::string out = r.method + ' ' + r.path + '\n';
  for (const auto& p : params) out += "query " + p + '\n';
  for (const auto& h : headers) out += "header " + h + '\n';
  return out + "body " + r.body;
}

void compare(std::vector<std::string>& failures, const fs::path& file, const std::string& got) {
  if (!fs::exists(file)) return;
  const std::string expected = without_trailing_newlines(read(file));
  if (expected != got)
    failures.push_back(file.string() + " differs\n--- expected:\n" + expected + "\n--- computed:\n" + got);
}

void compare_request(std::vector<std::string>& failures, const fs::path& file, const s::SigV4Request& got) {
  if (!fs::exists(file)) return;
  const std::string expected = request_summary(parse_request(read(file)));
  const std::string computed = request_summary(got);
  if (expected != computed)
    failures.push_back(file.string() + " differs\n--- expected:\n" + expected + "\n--- computed:\n" + computed);
}

std::vector<std::string> check_legacy_case(const fs::path& dir) {
  std::vector<std::string> failures;
  const std::string name = dir.filename().string();
  const s::SigV4Request request = parse_request(read(dir / (name + ".req")));
  s::AwsCredentials creds{.access_key_id = kAccessKey, .secret_access_key = s::Secret(kSecretKey)};
  s::SigV4Options options{.region = "us-east-1", .service = "service"};
  // The suite's readme: in "-header-after" the token is added once the request is signed.
  if (name.ends_with("-header-after")) {
    creds.session_token = s::Secret(kLegacyToken);
    options.sign_session_token = false;
  }
  for (const auto& [header, value] : request.headers)
    if (header == "X-Amz-Date") options.time = s::parse_amz_date(value).value();
  const s::SigV4Signed signed_request = s::sigv4_sign(request, creds, options);
  compare(failures, dir / (name + ".creq"), signed_request.canonical_request);
  compare(failures, dir / (name + ".sts"), signed_request.string_to_sign);
  compare(failures, dir / (name + ".authz"), signed_request.authorization);
  compare_request(failures, dir / (name + ".sreq"), signed_request.request);
  return failures;
}

std::chrono::system_clock::time_point parse_iso_time(const std::string& text) {
  // "2015-08-30T12:36:00Z" -> "20150830T123600Z"
  std::string compact;
  for (char c : text)
    if (c != '-' && c != ':') compact += c;
  const auto t = s::parse_amz_date(compact);
  if (!t) throw std::runtime_error("context.json: timestamp " + text + " is not YYYY-MM-DDTHH:MM:SSZ");
  return *t;
}

std::vector<std::string> check_context_case(const fs::path& dir) {
  std::vector<std::string> failures;
  const auto context = nlohmann::json::parse(read(dir / "context.json"));
  const auto& c = context.at("credentials");
  const s::AwsCredentials creds{.access_key_id = c.at("access_key_id").get<std::string>(),
                                .secret_access_key = s::Secret(c.at("secret_access_key").get<std::string>()),
                                .session_token = s::Secret(c.value("token", std::string{}))};
  const s::SigV4Options options{.region = context.at("region").get<std::string>(),
                                .service = context.at("service").get<std::string>(),
                                .time = parse_iso_time(context.at("timestamp").get<std::string>()),
                                .normalize_path = context.value("normalize", true),
                                .sign_session_token = !context.value("omit_session_token", false),
                                .sign_body_header = context.value("sign_body", false),
                                .expires = std::chrono::seconds(context.value("expiration_in_seconds", 3600))};
  const s::SigV4Request request = parse_request(read(dir / "request.txt"));
  const s::SigV4Signed header = s::sigv4_sign(request, creds, options);
  compare(failures, dir / "header-canonical-request.txt", header.canonical_request);
  compare(failures, dir / "header-string-to-sign.txt", header.string_to_sign);
  compare(failures, dir / "header-signature.txt", header.signature);
  compare_request(failures, dir / "header-signed-request.txt", header.request);
  const s::SigV4Signed query = s::sigv4_presign(request, creds, options);
  compare(failures, dir / "query-canonical-request.txt", query.canonical_request);
  compare(failures, dir / "query-string-to-sign.txt", query.string_to_sign);
  compare(failures, dir / "query-signature.txt", query.signature);
  compare_request(failures, dir / "query-signed-request.txt", query.request);
  return failures;
}

template <class T>
concept Streamable = requires(std::ostream& o, const T& x) { o << x; };

enum class Layout { none, legacy, context };

Layout layout_of(const fs::path& dir) {
  if (fs::exists(dir / (dir.filename().string() + ".req"))) return Layout::legacy;
  if (fs::exists(dir / "context.json") && fs::exists(dir / "request.txt")) return Layout::context;
  return Layout::none;
}

std::vector<std::string> check_case(const fs::path& dir) {
  try {
    return layout_of(dir) == Layout::legacy ? check_legacy_case(dir) : check_context_case(dir);
  } catch (const std::exception& e) {
    return {dir.string() + ": " + e.what()};
  }
}

// Every case directory under `suite` (cases may be grouped in subdirectories).
std::vector<fs::path> case_dirs(const fs::path& suite) {
  std::vector<fs::path> out;
  for (const auto& entry : fs::recursive_directory_iterator(suite))
    if (entry.is_directory() && layout_of(entry.path()) != Layout::none) out.push_back(entry.path());
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<fs::path> suites() {
  if (const char* env = std::getenv("FLOTILLA_SIGV4_SUITE"); env && *env) return {fs::path(env)};
  const fs::path data = fs::path(FLOTILLA_SOURCE_DIR) / "tests/data";
  return {data / "aws-sig-v4-test-suite", data / "aws-signing-test-suite-v4-sample"};
}

// The expected files of a case, each of which the check must notice a change in.
std::vector<std::string> expected_files(const fs::path& dir) {
  if (layout_of(dir) == Layout::legacy) {
    const std::string n = dir.filename().string();
    return {n + ".creq", n + ".sts", n + ".authz", n + ".sreq"};
  }
  std::vector<std::string> out;
  for (const char* kind : {"header-", "query-"})
    for (const char* what : {"canonical-request.txt", "string-to-sign.txt", "signature.txt", "signed-request.txt"})
      if (fs::exists(dir / (std::string(kind) + what))) out.push_back(std::string(kind) + what);
  return out;
}

}  // namespace

TEST_CASE("sigv4: every case of the AWS signing test suites gives the expected canonical request, string to sign, "
          "signature and signed request",
          "[support][sigv4]") {
  for (const fs::path& suite : suites()) {
    INFO("suite " << suite);
    REQUIRE(fs::is_directory(suite));
    const auto cases = case_dirs(suite);
    REQUIRE(!cases.empty());
    std::size_t passed = 0;
    for (const fs::path& dir : cases) {
      INFO("case " << dir);
      CHECK(!expected_files(dir).empty());
      const auto failures = check_case(dir);
      for (const auto& f : failures) FAIL_CHECK(f);
      if (failures.empty()) ++passed;
    }
    CHECK(passed == cases.size());
    // A directory holding files of neither layout would be a case silently skipped.
    for (const auto& entry : fs::recursive_directory_iterator(suite)) {
      if (!entry.is_directory() || layout_of(entry.path()) != Layout::none) continue;
      for (const auto& file : fs::directory_iterator(entry.path())) {
        const std::string ext = file.path().extension().string();
        INFO("file " << file.path());
        CHECK((ext != ".req" && file.path().filename() != "request.txt"));
      }
    }
  }
}

TEST_CASE("sigv4: the suite check fails when one byte of any expected value is altered", "[support][sigv4]") {
  for (const fs::path& suite : suites()) {
    const auto cases = case_dirs(suite);
    REQUIRE(!cases.empty());
    const fs::path original = cases.front();
    for (const std::string& file : expected_files(original)) {
      INFO("case " << original << ", file " << file);
      flotilla::test::proc::ScratchDir scratch("flotilla-sigv4");
      const fs::path copy = scratch / original.filename().string();
      fs::copy(original, copy, fs::copy_options::recursive);
      REQUIRE(check_case(copy).empty());
      // Alter the last letter or digit: the end of a signature, a hash or a body.
      std::string text = read(copy / file);
      std::size_t at = text.size();
      while (at > 0 && !std::isalnum(static_cast<unsigned char>(text[at - 1]))) --at;
      REQUIRE(at > 0);
      text[at - 1] = text[at - 1] == '0' ? '1' : '0';
      s::write_file_atomic(copy / file, text, 0644);
      const auto failures = check_case(copy);
      REQUIRE(!failures.empty());
      CHECK(failures.front().find(file) != std::string::npos);
    }
  }
}

TEST_CASE("sigv4: an EC2 form POST with a session token signs the token and the content type", "[support][sigv4]") {
  const s::AwsCredentials creds{.access_key_id = kAccessKey, .secret_access_key = s::Secret(kSecretKey),
                                .session_token = s::Secret("token-value")};
  const s::SigV4Request request{.method = "POST", .path = "/",
                                .headers = {{"Host", "ec2.eu-west-1.amazonaws.com"},
                                            {"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}},
                                .body = "Action=DescribeRegions&Version=2016-11-15"};
  const s::SigV4Options options{.region = "eu-west-1", .service = "ec2", .time = s::parse_amz_date("20260101T000000Z").value()};
  const auto signed_request = s::sigv4_sign(request, creds, options);
  CHECK(signed_request.authorization.starts_with(
      "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/eu-west-1/ec2/aws4_request, "
      "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature="));
  CHECK(signed_request.canonical_request.ends_with(s::sha256_hex(request.body)));
  // Another body, region or key gives another signature.
  auto other = request;
  other.body += "&DryRun=true";
  CHECK(s::sigv4_sign(other, creds, options).signature != signed_request.signature);
  CHECK(s::sigv4_sign(request, creds, {.region = "eu-west-2", .service = "ec2", .time = options.time}).signature !=
        signed_request.signature);
  CHECK_THROWS_WITH(s::sigv4_sign({.headers = {}}, creds, options), Catch::Contains("no Host header"));
}

TEST_CASE("sigv4: a Secret cannot be streamed and shows only its length", "[support][sigv4]") {
  static_assert(!Streamable<s::Secret>);
  static_assert(Streamable<std::string>);
  static_assert(!std::is_convertible_v<s::Secret, std::string>);
  s::Secret secret("canary-value");
  CHECK(secret.redacted() == "(secret, 12 characters)");
  CHECK(secret.redacted().find("canary") == std::string::npos);
  CHECK(s::Secret().redacted() == "(none)");
  s::Secret moved(std::move(secret));
  CHECK(secret.empty());
  CHECK(moved.reveal() == "canary-value");
}

TEST_CASE("sigv4: canonical URIs and queries follow the suite's encoding rules", "[support][sigv4]") {
  CHECK(s::sigv4_canonical_uri("/a/./b/../c//", true) == "/a/c/");
  CHECK(s::sigv4_canonical_uri("//a//", false) == "//a//");
  CHECK(s::sigv4_canonical_uri("", true) == "/");
  CHECK(s::sigv4_canonical_query("b=2&a=%7e&a=1&c") == "a=1&a=~&b=2&c=");
  CHECK(s::sigv4_canonical_query("k=a+b c") == "k=a%2Bb%20c");
  CHECK(s::amz_date(s::parse_amz_date("20150830T123600Z").value()) == "20150830T123600Z");
  CHECK(!s::parse_amz_date("2015-08-30T12:36:00Z"));
}
