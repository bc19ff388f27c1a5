// A stand-in for the hashicorp/consul image, for contract tests on the Docker lab (see
// tests/plugins/addon_consul/consul_contract_test.cpp for what the image documents). Called as
// the image's entrypoint is, with the agent arguments as its command, it serves on
// <-client>:<-http-port>: /args (the arguments it was given), GET /v1/status/leader (a server:
// "<-bind>:8300"; a client: what its -retry-join address answers there, once it has a leader;
// with `leader` false: "" for ever) and GET /v1/agent/services ({}, an agent with no services).
#pragma once

#include "support/docker_addon_host.hpp"

#include <string>

namespace flotilla::test {

inline StandIn consul_stand_in(const std::string& reference, bool leader) {
  const std::string args =
      "[ \"$1\" = agent ] || { echo \"stand-in: the command does not start with agent: $*\"; exit 2; }; "
      "mkdir -p /w/v1/status /w/v1/agent; echo \"$*\" > /w/args; echo '{}' > /w/v1/agent/services; "
      "for a in \"$@\"; do case \"$a\" in -client=*) c=${a#*=};; -http-port=*) p=${a#*=};; -bind=*) b=${a#*=};; "
      "-retry-join=*) j=${a#*=};; -server) srv=1;; esac; done; "
      "echo '\"\"' > /w/v1/status/leader; ";
  const std::string leads =
      "if [ -n \"$srv\" ]; then echo \"\\\"$b:8300\\\"\" > /w/v1/status/leader; else "
      "(n=0; until wget -q -O /w/l http://$j:$p/v1/status/leader && [ \"$(cat /w/l)\" != '\"\"' ]; do "
      "n=$((n+1)); [ $n -gt 120 ] && exit 1; sleep 1; done; cat /w/l > /w/v1/status/leader) & fi; ";
  const std::string serve = "trap 'exit 0' TERM; httpd -f -p $c:$p -h /w & wait";
  return {reference, args + (leader ? leads : std::string()) + serve, 0, {"/consul/data"}};
}

}  // namespace flotilla::test
