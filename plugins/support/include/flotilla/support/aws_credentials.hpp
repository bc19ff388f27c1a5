// AWS credentials and region, found where AWS users keep them: the environment
// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), a profile of the shared
// credentials and config files (AWS_PROFILE, AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE), and
// the instance metadata service (IMDSv2) on an EC2 instance. Keys are held as Secrets; no
// message carries one.
#pragma once

#include "flotilla/support/aws_sigv4.hpp"
#include "flotilla/support/http.hpp"
#include "flotilla/support/secret.hpp"

#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>

namespace flotilla::support {

/// Where the chain looks. Defaults: the process environment, AWS_PROFILE (or "default"), the
/// metadata service at AWS_EC2_METADATA_SERVICE_ENDPOINT (or http://169.254.169.254).
struct AwsCredentialOptions {
  EnvLookup env = process_env;
  std::string profile;        ///< overrides AWS_PROFILE
  std::string imds_endpoint;  ///< overrides AWS_EC2_METADATA_SERVICE_ENDPOINT
  HttpTimeouts imds_timeouts{std::chrono::milliseconds(1000), std::chrono::milliseconds(3000)};
  CancelledFn cancelled;
};

/// No credentials or no region could be found, or a source is unusable. what() lists every
/// source tried and what to do.
class AwsCredentialsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// An INI file of the AWS CLI: section name -> key -> value ("#" and ";" start comments, keys
/// are lower-cased, values trimmed). Lines of a nested block (indented, e.g. "s3 =") are kept
/// as "parent.key".
using AwsIni = std::map<std::string, std::map<std::string, std::string>>;

/// Parses the text of a shared credentials or config file; `where` names it in errors.
/// Throws AwsCredentialsError on a line that is neither a section, a key, a comment nor blank.
[[nodiscard]] AwsIni parse_aws_ini(std::string_view text, const std::string& where);

/// The shared credentials file (AWS_SHARED_CREDENTIALS_FILE, or ~/.aws/credentials) and config
/// file (AWS_CONFIG_FILE, or ~/.aws/config).
[[nodiscard]] std::filesystem::path aws_credentials_file(const EnvLookup& env = process_env);
[[nodiscard]] std::filesystem::path aws_config_file(const EnvLookup& env = process_env);

/// The first credentials found: environment, then the profile (its [NAME] section of the
/// credentials file, then its [profile NAME] section of the config file; [default] in both for
/// the default profile), then IMDSv2 (PUT a token, GET the role, GET its keys). A named profile
/// that does not exist or holds no keys is an error, not a reason to look further. Throws
/// AwsCredentialsError naming every source tried and how to provide credentials.
[[nodiscard]] AwsCredentials resolve_aws_credentials(const AwsCredentialOptions& options = {});

/// The region: `configured` (the topology's) when not empty, else AWS_REGION, else
/// AWS_DEFAULT_REGION, else the profile's region in the config file. Throws AwsCredentialsError
/// when none is set or the value is not a region name (lower-case letters, digits, hyphens).
[[nodiscard]] std::string resolve_aws_region(std::string_view configured, const AwsCredentialOptions& options = {});

}  // namespace flotilla::support
