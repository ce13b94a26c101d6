#!/usr/bin/env bash
# Builds the Dockerfile with podman and buildah where no base image can be pulled: it makes a local
# stand-in for node:20-bookworm-slim (Debian bookworm by debootstrap, Node.js from the npm package
# node-linux-<arch>, npm, a `node` user with uid 1000) and builds on it with --isolation=chroot, so
# it needs no container engine daemon, only root. Opt-in; not run in CI. See docs/container.md.
#
#   sudo deploy/build-image.sh [--tag reefer-edge:local] [--rebuild-base] [--no-cache] [--no-smoke]
#
# Builds for this machine's own architecture only: the Dockerfile's RUN steps for another one need
# binfmt_misc emulation (`docker buildx build --platform linux/arm64,linux/arm/v7` where it exists).
# Environment: NODE_VERSION (20.20.2), NPM_VERSION (10.8.2), DEBIAN_MIRROR (http://deb.debian.org/debian),
# BUILD_CA_FILE: a CA bundle npm must trust during the build (behind a TLS-inspecting proxy); by
# default the host npm's own `cafile`, if set. It is mounted into the build steps, never stored.
set -euo pipefail
cd "$(dirname "$0")/.."

tag=reefer-edge:local
rebuild_base=false
layers=(--layers)
smoke=true
while [ $# -gt 0 ]; do
  case "$1" in
    --tag) tag=$2; shift 2 ;;
    --rebuild-base) rebuild_base=true; shift ;;
    --no-cache) layers=(--no-cache); shift ;;
    --no-smoke) smoke=false; shift ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-image: unknown flag $1 (see --help)" >&2; exit 2 ;;
  esac
done

node_version=${NODE_VERSION:-20.20.2}
npm_version=${NPM_VERSION:-10.8.2}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
say() { printf 'build-image: %s\n' "$*" >&2; }

case "$(uname -m)" in
  x86_64) deb_arch=amd64 node_arch=x64 ;;
  aarch64) deb_arch=arm64 node_arch=arm64 ;;
  *) say "no Node.js npm package for $(uname -m); build with docker buildx instead"; exit 1 ;;
esac
base_tag=localhost/reefer-node-base:$node_version-bookworm-slim-$deb_arch

if [ "$(id -u)" != 0 ]; then
  say "run as root: debootstrap and chroot isolation need it"
  exit 1
fi
# podman imports the base and builds; buildah runs the smoke test's commands in a chroot.
missing=()
for tool in debootstrap podman buildah; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 || { say "please install: ${missing[*]}"; exit 1; }
  say "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

work=$(mktemp -d "${TMPDIR:-/var/tmp}/reefer-image-XXXXXX")
ctr=
cleanup() {
  if [ -n "$ctr" ]; then buildah rm "$ctr" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

image_exists() { podman inspect --type image "$1" >/dev/null 2>&1 || podman image exists "$1" >/dev/null 2>&1; }

# --- the base: what node:20-bookworm-slim provides that the Dockerfile relies on ------------------
if $rebuild_base || ! image_exists "$base_tag"; then
  t=$SECONDS
  rootfs=$work/rootfs
  say "debootstrap bookworm ($deb_arch) from $mirror"
  debootstrap --variant=minbase --arch="$deb_arch" bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
    tail -20 "$work/debootstrap.log" >&2
    say "debootstrap failed"
    exit 1
  }
  say "Node.js $node_version ($node_arch) and npm $npm_version from the npm registry"
  (cd "$work" && npm pack --silent "node-linux-$node_arch@$node_version" "npm@$npm_version" >/dev/null)
  tar -xzf "$work/node-linux-$node_arch-$node_version.tgz" -C "$rootfs/usr/local" --strip-components=1 package/bin package/include
  mkdir -p "$rootfs/usr/local/lib/node_modules/npm"
  tar -xzf "$work/npm-$npm_version.tgz" -C "$rootfs/usr/local/lib/node_modules/npm" --strip-components=1
  chmod +x "$rootfs/usr/local/lib/node_modules/npm/bin/npm-cli.js" "$rootfs/usr/local/lib/node_modules/npm/bin/npx-cli.js"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
  # The official image's unprivileged user.
  echo 'node:x:1000:1000::/home/node:/bin/bash' >>"$rootfs/etc/passwd"
  echo 'node:x:1000:' >>"$rootfs/etc/group"
  echo 'node:*:19000:0:99999:7:::' >>"$rootfs/etc/shadow"
  mkdir -p "$rootfs/home/node"
  chown 1000:1000 "$rootfs/home/node"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/tmp/*
  tar -C "$rootfs" -c . | podman import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV NODE_VERSION='"$node_version" \
    --change 'CMD ["node"]' - "$base_tag" >/dev/null
  rm -rf "$rootfs"
  say "base image $base_tag ($((SECONDS - t))s)"
else
  say "base image $base_tag (cached; --rebuild-base to make it again)"
fi

# --- the image ------------------------------------------------------------------------------------
t=$SECONDS
say "podman build --isolation=chroot -t $tag"
build=(build)
ca_file=${BUILD_CA_FILE:-$(npm config get cafile 2>/dev/null || true)}
if [ -n "$ca_file" ] && [ -f "$ca_file" ]; then
  say "npm in the build trusts $ca_file"
  printf 'cafile=/run/reefer-build-ca.crt\n' >"$work/npmrc"
  build+=(--volume "$ca_file:/run/reefer-build-ca.crt:ro" --volume "$work/npmrc:/usr/local/etc/npmrc:ro")
fi
podman "${build[@]}" --isolation=chroot --pull=never "${layers[@]}" --format docker \
  --build-arg NODE_IMAGE="$base_tag" \
  -t "$tag" -f Dockerfile .
say "built $tag in $((SECONDS - t))s: $(podman image inspect --format '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}')"

# --- smoke test: the image's own commands, in a chroot container (no daemon, no namespaces needed) -
if $smoke; then
  ctr=$(buildah from --pull-never "$tag")
  run() { buildah run --isolation=chroot "$ctr" -- "$@"; }
  say "as user: $(run id -un) ($(run id -u)), in $(run pwd), data dir $(run sh -c 'ls -ld /data' | awk '{print $1, $3}')"
  run node dist/gateway/cli.js --help | head -3
  run node dist/device-sim/cli.js --help | head -1
  run node -e "const D=require('better-sqlite3');const db=new D('/data/smoke.db');console.log('better-sqlite3 loads; SQLite', db.prepare('select sqlite_version() v').get().v);db.close();require('fs').rmSync('/data/smoke.db')"

  # The gateway starts without Kafka (it buffers), so the image's own HEALTHCHECK must pass. The chroot
  # shares this machine's network: loopback and ports the OS picks.
  port() { node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }
  http_port=$(port)
  buildah run --isolation=chroot --env REEFER_HTTP_PORT="$http_port" --env REEFER_MQTT_HOST=127.0.0.1 \
    --env REEFER_MQTT_PORT="$(port)" --env REEFER_KAFKA_BROKERS=127.0.0.1:9 "$ctr" -- node dist/gateway/cli.js >"$work/gateway.log" 2>&1 &
  gateway=$!
  mapfile -d '' check < <(podman image inspect --format '{{json .Config.Healthcheck.Test}}' "$tag" |
    node -e "const t=JSON.parse(require('fs').readFileSync(0,'utf8'));process.stdout.write(t.slice(1).map(a=>a+'\\0').join(''))")
  healthy=false
  for _ in $(seq 1 60); do
    if buildah run --isolation=chroot --env REEFER_HTTP_PORT="$http_port" "$ctr" -- "${check[@]}" 2>/dev/null; then healthy=true; break; fi
    kill -0 "$gateway" 2>/dev/null || break
    sleep 0.5
  done
  kill -TERM "$gateway" 2>/dev/null || true
  wait "$gateway" 2>/dev/null || true
  if ! $healthy; then
    tail -20 "$work/gateway.log" >&2
    say "the image's HEALTHCHECK did not pass against a running gateway"
    exit 1
  fi
  say "HEALTHCHECK passes against the running gateway (${check[*]:0:2} ...)"
  say "smoke test passed"
fi
