#!/usr/bin/env bash
# Builds the Debian package from a built tree, checks it with lintian, installs it with apt,
# brings a small cluster up and down with the installed binary, then purges the package and
# checks that nothing of it is left. Run as root after scripts/install-deps.sh; the package is
# built by scripts/package.sh (a release build without tests, in build-deb/).
#
#   sudo bash scripts/package-test.sh
#   BUILD_DIR=out sudo bash scripts/package-test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(pwd)
build=${BUILD_DIR:-build-deb}
[ "$(id -u)" -eq 0 ] || { echo "package-test: run as root (it installs and purges the package)" >&2; exit 2; }
if dpkg -s flotilla >/dev/null 2>&1; then
  echo "package-test: a flotilla package is already installed; purge it first (apt-get purge flotilla)" >&2
  exit 2
fi

export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q --no-install-recommends lintian dpkg-dev file >/dev/null

work=$(mktemp -d /tmp/flotilla-package-XXXXXX)
cluster_up=0
cleanup() {
  local code=$?
  if [ "$cluster_up" = 1 ]; then flotilla down "$work/local.toml" -q || true; fi
  if dpkg -s flotilla >/dev/null 2>&1; then apt-get purge -y -q flotilla >/dev/null || true; fi
  rm -rf "$work"
  exit $code
}
trap cleanup EXIT

step() { echo "== $*"; }

step "scripts/package.sh (a release build and cpack -G DEB)"
BUILD_DIR="$build" bash scripts/package.sh
deb=$(ls "$build"/flotilla_*.deb)
dpkg-deb --info "$deb" | sed -n '/Package:/,$p'

step "lintian (no errors allowed)"
lintian --fail-on error "$deb"

step "apt-get install $deb"
apt-get install -y -q "$(realpath "$deb")" >/dev/null
dpkg -L flotilla | sort > "$work/files"
test "$(command -v flotilla)" = /usr/bin/flotilla

step "flotilla plugins (found in /usr/lib/flotilla/plugins without --plugin-path)"
flotilla plugins | tee "$work/plugins"
for p in local process etcd registrator haproxy prometheus-cadvisor syslog consul elk; do
  grep -q " $p " "$work/plugins" || { echo "package-test: plugin $p missing from the installed package" >&2; exit 1; }
done
flotilla plugins 2>&1 >/dev/null | { ! grep -q warning; } || { echo "package-test: plugin warnings" >&2; exit 1; }
man -w flotilla-up >/dev/null
test -f /usr/share/bash-completion/completions/flotilla
test -f /usr/share/zsh/vendor-completions/_flotilla
test -f /usr/include/flotilla/plugin.h

step "a cluster from /usr/share/flotilla/configs/local.toml with the installed binary"
# Its own loopback /24 and cluster name, so it cannot meet a cluster a test left running.
sed -e 's|^name = "local"|name = "pkgtest"|' -e 's|127.77.0.0/24|127.76.0.0/24|' \
  /usr/share/flotilla/configs/local.toml > "$work/local.toml"
cd "$work"
cluster_up=1
flotilla up local.toml -q
addr=$(flotilla ip local.toml swarm-1)
body=$(curl -fsS --max-time 5 "http://$addr:8080/hello/v1")
echo "through HAProxy: $body"
flotilla down local.toml -q
cluster_up=0
cd "$src"
if [ -d "$work/.flotilla/pkgtest" ] && find "$work/.flotilla/pkgtest" -name '*.pid' | grep -q .; then
  echo "package-test: pid files left after down" >&2
  exit 1
fi

step "apt-get purge flotilla leaves nothing of the package"
apt-get purge -y -q flotilla >/dev/null
left=0
while read -r f; do
  [ -e "$f" ] || continue
  [ -d "$f" ] && [ -n "$(dpkg -S "$f" 2>/dev/null)" ] && continue  # a directory other packages own
  [ -d "$f" ] && [ "$(find "$f" -mindepth 1 -print -quit)" ] && continue
  echo "left behind: $f" >&2
  left=1
done < "$work/files"
[ "$left" = 0 ]
! command -v flotilla >/dev/null
echo "package-test: ok ($(basename "$deb"))"
