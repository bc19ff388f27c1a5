// The loadable docker runtime: its entry symbol over the runtime_docker_lib library.
#include "runtime_docker/runtime.hpp"

FLOTILLA_PLUGIN(flotilla::docker_runtime::DockerRuntime, "docker", "0.1.0",
                "Runs workloads as containers through the Docker Engine API of each node (unix socket, TCP or TCP+TLS)",
                R"json({"schema": {"registries": {"type": "array", "description": "registry logins: [[runtime.docker.registries]] with address, username and password (\"env:NAME\" or \"file:/path\", never the secret itself)"}}})json")
