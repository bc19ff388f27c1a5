#!/usr/bin/env bash
# Builds the images Docker nodes run from this machine's Debian binaries, with `docker import`
# (no base image, no network): each image is the program, the shared libraries `ldd` names,
# the files it needs, and busybox-static as /bin/sh. Tags them REGISTRY/NAME:TAG and pushes
# them when a registry is given. Idempotent: an image whose content hash (label
# io.flotilla.content) is already in the registry is neither built nor pushed again, and one
# already in the daemon is not built again.
#
#   scripts/build-images.sh [--host DOCKER_HOST] [--registry ADDRESS:PORT] [--hello PATH] [NAME...]
#
# NAME is one of: busybox haproxy prometheus node-exporter etcd rsyslog dnsmasq flotilla-hello
# (all by default; flotilla-hello needs --hello, the built build/bin/flotilla-hello).
# The daemon (DOCKER_HOST, or --host) builds and pushes: for the netns lab's registry, a node
# of the cluster, whose dockerd trusts it:
#   eval "$(flotilla env configs/netns.toml infra)"
#   scripts/build-images.sh --registry 10.214.0.1:5050 --hello build/bin/flotilla-hello
set -euo pipefail

host="${DOCKER_HOST:-}"
registry=""
hello=""
tag="flotilla"
names=()
while [ $# -gt 0 ]; do
  case "$1" in
    --host) host="$2"; shift 2 ;;
    --registry) registry="$2"; shift 2 ;;
    --hello) hello="$2"; shift 2 ;;
    --tag) tag="$2"; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    -*) echo "build-images: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) names+=("$1"); shift ;;
  esac
done
[ ${#names[@]} -gt 0 ] || names=(busybox haproxy prometheus node-exporter etcd rsyslog dnsmasq flotilla-hello)
# Debian's 20.10 CLI speaks the daemons' API exactly; a newer CLI negotiates down too.
docker_cli=/usr/bin/docker
[ -x "$docker_cli" ] || docker_cli="$(command -v docker)"
docker() { if [ -n "$host" ]; then "$docker_cli" -H "$host" "$@"; else "$docker_cli" "$@"; fi; }

need() { command -v "$1" >/dev/null || { echo "build-images: $1 is not installed; run scripts/install-deps.sh" >&2; exit 1; }; }
need busybox
[ -z "$registry" ] || need curl

work="$(mktemp -d /tmp/flotilla-images.XXXXXX)"
trap 'rm -rf "$work"' EXIT

# add_binary ROOT PATH: the file and every shared library it loads, at their own paths.
add_binary() {
  local root="$1" bin="$2"
  install -D -m 0755 "$bin" "$root$bin"
  ldd "$bin" 2>/dev/null | awk '{for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i}' | while read -r lib; do
    [ -e "$root$lib" ] || install -D -m 0755 "$(readlink -f "$lib")" "$root$lib"
  done
}

# base ROOT: busybox as /bin/sh and its applets, /tmp, and the files name lookups read.
base() {
  local root="$1"
  install -D -m 0755 "$(command -v busybox)" "$root/bin/busybox"
  for applet in sh ls cat echo sleep kill ps wget nc mkdir rm; do ln -sf busybox "$root/bin/$applet"; done
  mkdir -p "$root/tmp" "$root/etc" "$root/var/run"
  chmod 1777 "$root/tmp"
  echo 'root:x:0:0:root:/root:/bin/sh' > "$root/etc/passwd"
  echo 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >> "$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
  echo 'hosts: files dns' > "$root/etc/nsswitch.conf"
}

# registry_content NAME: the io.flotilla.content label of NAME:TAG in the registry, or "" when
# the registry lacks it (plain HTTP first, as the lab's registry speaks, then HTTPS).
registry_content() {
  local name="$1" scheme manifest digest
  for scheme in http https; do
    manifest="$(curl -fsS --noproxy "*" --max-time 10 -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
      "$scheme://$registry/v2/$name/manifests/$tag" 2>/dev/null)" || continue
    digest="$(printf '%s' "$manifest" | tr -d ' \n' | grep -o '"config":{[^}]*}' | grep -o 'sha256:[0-9a-f]*' | head -n1)"
    [ -n "$digest" ] || return 0
    curl -fsS --noproxy "*" --max-time 10 "$scheme://$registry/v2/$name/blobs/$digest" 2>/dev/null |
      grep -o '"io.flotilla.content":"[0-9a-f]*"' | head -n1 | cut -d'"' -f4
    return 0
  done
}

# push REF: pushes REF to the registry, saying what to do when the daemon cannot.
push() {
  local ref="$1" out
  if ! out="$(docker push "$ref" 2>&1)"; then
    echo "build-images: cannot push $ref: $out" >&2
    echo "build-images: the daemon (${host:-the default DOCKER_HOST}) must reach $registry and trust it; for a netns cluster point it at a node: eval \"\$(flotilla env FILE infra)\"" >&2
    exit 1
  fi
  echo "$ref: pushed"
}

# image NAME CMD_JSON [ENTRYPOINT_JSON]: imports ROOT=$work/NAME as NAME:TAG unless that content
# is there already. An entrypoint makes the image take its flags as the upstream image does.
image() {
  local name="$1" cmd="$2" entrypoint="${3:-}" root="$work/$1"
  local sum
  sum="$( (cd "$root" && find . -type f -print0 | sort -z | xargs -0 sha256sum; find . -printf '%m %p -> %l\n' | sort; echo "$cmd${entrypoint:+ $entrypoint}") | sha256sum | cut -c1-16)"
  local ref="$name:$tag"
  [ -n "$registry" ] && ref="$registry/$name:$tag"
  if [ -n "$registry" ] && [ "$(registry_content "$name")" = "$sum" ]; then
    echo "$ref: up to date in $registry"
    return 0
  fi
  if [ "$(docker image inspect -f '{{index .Config.Labels "io.flotilla.content"}}' "$ref" 2>/dev/null || true)" = "$sum" ]; then
    echo "$ref: up to date"
  else
    local changes=(--change "CMD $cmd" --change "LABEL io.flotilla.content=$sum")
    [ -z "$entrypoint" ] || changes+=(--change "ENTRYPOINT $entrypoint")
    tar -C "$root" -c . | docker import "${changes[@]}" - "$ref" >/dev/null
    echo "$ref: built"
  fi
  if [ -n "$registry" ]; then push "$ref"; fi
}

for name in "${names[@]}"; do
  root="$work/$name"
  base "$root"
  case "$name" in
    busybox) image busybox '["/bin/sh"]' ;;
    haproxy) need haproxy; add_binary "$root" /usr/sbin/haproxy; mkdir -p "$root/etc/haproxy" "$root/run/haproxy"
      image haproxy '["/usr/sbin/haproxy", "-W", "-db", "-f", "/etc/haproxy/haproxy.cfg"]' ;;
    prometheus) need prometheus; add_binary "$root" /usr/bin/prometheus; mkdir -p "$root/etc/prometheus" "$root/prometheus"
      image prometheus '["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]' '["/usr/bin/prometheus"]' ;;
    node-exporter) need prometheus-node-exporter; add_binary "$root" /usr/bin/prometheus-node-exporter
      image node-exporter '[]' '["/usr/bin/prometheus-node-exporter"]' ;;
    etcd) need etcd; add_binary "$root" /usr/bin/etcd; add_binary "$root" /usr/bin/etcdctl; mkdir -p "$root/var/lib/etcd"
      image etcd '["/usr/bin/etcd"]' ;;
    rsyslog) need rsyslogd; add_binary "$root" /usr/sbin/rsyslogd
      for m in /usr/lib/x86_64-linux-gnu/rsyslog/*.so; do add_binary "$root" "$m"; done
      mkdir -p "$root/etc/rsyslog.d" "$root/var/spool/rsyslog"
      image rsyslog '["/usr/sbin/rsyslogd", "-n", "-f", "/etc/rsyslog.conf"]' ;;
    dnsmasq) need dnsmasq; add_binary "$root" /usr/sbin/dnsmasq
      image dnsmasq '["/usr/sbin/dnsmasq", "--keep-in-foreground", "--log-facility=-"]' ;;
    flotilla-hello)
      if [ -z "$hello" ]; then echo "build-images: flotilla-hello needs --hello build/bin/flotilla-hello; skipped" >&2; continue; fi
      add_binary "$root" "$(readlink -f "$hello")"
      mkdir -p "$root/usr/local/bin"; cp "$root$(readlink -f "$hello")" "$root/usr/local/bin/flotilla-hello"
      # In a container it listens on all of its addresses, on the port the engine gives in $PORT.
      image flotilla-hello '["/bin/sh", "-c", "exec /usr/local/bin/flotilla-hello --listen 0.0.0.0:${PORT:-8000}"]' ;;
    *) echo "build-images: unknown image $name" >&2; exit 2 ;;
  esac
done
