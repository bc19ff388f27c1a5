#!/usr/bin/env bash
# Installs what Flotilla needs to build, test and run its local cluster, from Debian 12's
# packages. Run as root (or with sudo). Safe to run again.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
packages=(
  # build
  cmake g++ make pkg-config
  libboost-dev libboost-filesystem-dev libboost-program-options-dev
  libtomlplusplus-dev nlohmann-json3-dev libspdlog-dev libfmt-dev catch2 libcurl4-openssl-dev libssl-dev
  libexpat1-dev
  # the real servers the addons run, and the tools the tests use
  haproxy prometheus prometheus-node-exporter etcd-server etcd-client
  rsyslog rsyslog-relp dnsmasq-base
  curl dnsutils wrk iproute2 procps openssl openssh-client
  # line coverage per directory (scripts/test.sh --coverage)
  gcovr
  # the Debian package (dpkg-shlibdeps), and the tests of the topology schema and completion
  dpkg-dev python3-jsonschema zsh man-db
  # the EC2 service model (botocore's) the EC2 client's parameter names are checked against
  python3-botocore
  # the fuzz targets (scripts/fuzz.sh): clang, and its runtime with libFuzzer and the sanitizers
  clang libclang-rt-14-dev
  # Docker nodes (the netns driver and the docker runtime): dockerd per namespace, the lab's
  # registry, busybox-static for the tests' tiny image, and iptables for the rule that lets
  # containers reach the other nodes
  docker.io docker-registry busybox-static util-linux iptables
)
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${packages[@]}"
