#!/usr/bin/env bash
# Offline stand-ins for the public base images that docker/Dockerfile and the compose files name:
#   node:20-bookworm-slim   this machine's node and npm, a POSIX shell and coreutils, user node (1000)
#   nats:2.10               this machine's nats-server as /nats-server (the entrypoint, as in the public image)
#   redis:7                 this machine's redis-server, user redis (999), WORKDIR /data
# Each is a root file system made of the host's own installed binaries and the shared libraries
# ldd names for them, loaded with `docker import`: no registry is asked. Online, skip this script
# and let docker pull the public images. The versions are the host's, whatever the tag says; the
# script prints them. An image that already carries one of these tags is left alone unless
# --force is given, so a real pulled image is never overwritten by accident.
#   usage: docker/offline-images.sh [--force]
set -euo pipefail

force=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h | --help)
      sed -n '2,11p' "$0"
      exit 0
      ;;
    *)
      echo "offline-images.sh: unknown argument '$arg' (try --help)" >&2
      exit 2
      ;;
  esac
done

need() { command -v "$1" >/dev/null 2>&1 || [ -x "$1" ] || {
  echo "offline-images.sh: $1 is not installed here (it goes into an image); install it with apt-get" >&2
  exit 1
}; }
need docker
need ldd
docker info >/dev/null 2>&1 || {
  echo "offline-images.sh: no Docker engine answers (start one: dockerd --bridge=none --iptables=false)" >&2
  exit 1
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A root file system with Debian's merged /usr layout, /tmp, and the users given as name:uid lines.
new_root() {
  local root="$work/$1"
  shift
  mkdir -p "$root"/{usr/bin,usr/sbin,usr/lib,usr/lib64,usr/local/bin,etc,tmp,root,proc,sys,dev}
  ln -s usr/bin "$root/bin"
  ln -s usr/sbin "$root/sbin"
  ln -s usr/lib "$root/lib"
  ln -s usr/lib64 "$root/lib64"
  chmod 1777 "$root/tmp"
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
  printf 'root:x:0:\n' >"$root/etc/group"
  local user name uid
  for user in "$@"; do
    name=${user%%:*}
    uid=${user##*:}
    printf '%s:x:%s:%s::/home/%s:/bin/sh\n' "$name" "$uid" "$uid" "$name" >>"$root/etc/passwd"
    printf '%s:x:%s:\n' "$name" "$uid" >>"$root/etc/group"
    mkdir -p "$root/home/$name"
    chown "$uid:$uid" "$root/home/$name"
  done
  for f in /etc/nsswitch.conf /etc/ssl/certs/ca-certificates.crt; do
    [ -e "$f" ] && cp --parents -L "$f" "$root"
  done
  echo "$root"
}

# Copies each file to the same path under ROOT, with every shared library ldd lists for it.
add() {
  local root=$1
  shift
  local f lib
  for f in "$@"; do
    cp --parents -L "$f" "$root"
    # ldd prints "name => /path (addr)" or "/path (addr)"; static binaries print no paths.
    for lib in $(ldd "$f" 2>/dev/null | grep -Eo '/[^ ]+' || true); do
      [ -e "$root$lib" ] || cp --parents -L "$lib" "$root"
    done
  done
}

# A POSIX shell and the coreutils, for RUN steps and npm's scripts.
add_shell() {
  local root=$1
  # Debian lists coreutils under /bin or /usr/bin (one directory, with merged /usr).
  add "$root" /usr/bin/dash $(dpkg -L coreutils | grep -E '^(/usr)?/bin/[^/]+$' | while read -r f; do [ -f "$f" ] && readlink -f "$f"; done | sort -u)
  ln -sf dash "$root/usr/bin/sh"
}

# Whether TAG is to be made: not here yet, or --force.
wanted() {
  if [ "$force" -eq 0 ] && docker image inspect "$1" >/dev/null 2>&1; then
    echo "$1: already here, left alone (--force replaces it)"
    return 1
  fi
}

import() {
  local tag=$1 root=$2
  shift 2
  local args=()
  for c in "$@"; do args+=(--change "$c"); done
  tar -C "$root" --numeric-owner -c . | docker import "${args[@]}" -m "offline stand-in made by docker/offline-images.sh" - "$tag" >/dev/null
  echo "$tag: $(docker image inspect -f '{{.Size}}' "$tag" | awk '{ printf "%.0f MB", $1 / 1e6 }')"
}

PATH_ENV='ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

# node:20-bookworm-slim: node in /usr/local/bin and npm in /usr/local/lib/node_modules, as the public image has them.
make_node() {
  local node_bin npm_dir root ca_env
  node_bin=$(readlink -f "$(command -v node)")
  npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
  root=$(new_root node node:1000)
  add_shell "$root"
  add "$root" "$node_bin"
  mkdir -p "$root/usr/local/lib/node_modules"
  mv "$root$node_bin" "$root/usr/local/bin/node"
  cp -a "$npm_dir" "$root/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
  echo "node $("$node_bin" --version), npm $(npm --version)"
  # The host's trust store goes in with its CA bundle (new_root), and node is told to use it: where
  # the registry is reached through a proxy with its own certificate, npm ci in a build trusts it as
  # the host's npm does. The public image trusts the usual public roots only.
  ca_env=()
  [ -e /etc/ssl/certs/ca-certificates.crt ] && ca_env=('ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt')
  import node:20-bookworm-slim "$root" "$PATH_ENV" "${ca_env[@]}" 'ENV NODE_VERSION='"$("$node_bin" --version | tr -d v)" 'CMD ["node"]'
}

# nats:2.10
make_nats() {
  local nats_bin root
  nats_bin=$(command -v nats-server || echo /usr/sbin/nats-server)
  need "$nats_bin"
  root=$(new_root nats)
  add "$root" "$nats_bin"
  mv "$root$nats_bin" "$root/nats-server"
  echo "$("$nats_bin" --version)"
  import nats:2.10 "$root" "$PATH_ENV" 'ENTRYPOINT ["/nats-server"]' 'CMD ["--help"]'
}

# redis:7
make_redis() {
  local redis_bin root
  redis_bin=$(command -v redis-server || echo /usr/bin/redis-server)
  need "$redis_bin"
  root=$(new_root redis redis:999)
  add_shell "$root"
  add "$root" "$redis_bin"
  mv "$root$redis_bin" "$root/usr/local/bin/redis-server"
  mkdir -p "$root/data"
  chown 999:999 "$root/data"
  echo "$("$redis_bin" --version | cut -d' ' -f1-3)"
  import redis:7 "$root" "$PATH_ENV" 'USER redis' 'WORKDIR /data' 'VOLUME /data' 'CMD ["redis-server"]'
}

wanted node:20-bookworm-slim && make_node
wanted nats:2.10 && make_nats
wanted redis:7 && make_redis
exit 0
