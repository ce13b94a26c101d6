#!/usr/bin/env bash
# Installs (or upgrades) the reefer-edge gateway as a systemd service on a Raspberry Pi, or any
# Debian-like machine, from a built checkout (docs/raspberry-pi.md):
#
#   npm ci && npm run build && sudo deploy/install.sh [--enable]
#
# The application goes to /opt/reefer-edge (its production dependencies installed there, so
# better-sqlite3 compiles for this machine), the configuration to /etc/reefer-edge (created once from
# deploy/gateway.example.yaml, never overwritten), the unit to /etc/systemd/system. The outbox in
# /var/lib/reefer-edge is left alone. --enable also enables and starts the service; on an upgrade a
# running service is restarted.
set -euo pipefail
cd "$(dirname "$0")/.."

prefix=/opt/reefer-edge
etc=/etc/reefer-edge
user=reefer
enable=false
for arg in "$@"; do
  case "$arg" in
    --enable) enable=true ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install: unknown flag $arg (see --help)" >&2; exit 2 ;;
  esac
done
say() { printf 'install: %s\n' "$*" >&2; }
fail() { say "$*"; exit 1; }

[ "$(id -u)" = 0 ] || fail "run as root (sudo)"
command -v node >/dev/null 2>&1 || fail "Node.js 20 is missing (docs/raspberry-pi.md, \"Node.js\")"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || fail "Node.js $(node --version) is too old: 20 or newer is needed"
[ -f dist/gateway/cli.js ] || fail "no dist/: run npm ci && npm run build first"
for tool in make g++ python3; do
  command -v "$tool" >/dev/null 2>&1 || fail "$tool is missing (better-sqlite3 compiles here): apt-get install build-essential python3"
done

# A system user of its own; serial ports belong to the dialout group.
if ! getent passwd "$user" >/dev/null; then
  useradd --system --user-group --home-dir /var/lib/reefer-edge --no-create-home --shell /usr/sbin/nologin "$user"
  say "created system user $user"
fi
if getent group dialout >/dev/null; then usermod -a -G dialout "$user"; fi

# The application, staged beside the old one and swapped in once its dependencies are built.
stage=$(mktemp -d "$prefix.new.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/dist" "$stage/schemas" "$stage/docs"
cp -r dist/schemas dist/cloud-bridge dist/gateway dist/device-sim "$stage/dist/"
cp schemas/*.avsc "$stage/schemas/"
cp docs/*.md "$stage/docs/"
cp package.json package-lock.json "$stage/"
chmod 0755 "$stage/dist/gateway/cli.js" "$stage/dist/device-sim/cli.js"
# node-gyp compiles better-sqlite3 against the headers installed with Node when they are there,
# instead of downloading them.
nodedir=$(node -p 'require("path").resolve(process.execPath, "..", "..")')
if [ -z "${npm_config_nodedir:-}" ] && [ -f "$nodedir/include/node/node.h" ]; then export npm_config_nodedir=$nodedir; fi
say "installing production dependencies in $stage (better-sqlite3 compiles: a few minutes on a Pi)"
(cd "$stage" && npm ci --omit=dev --no-audit --no-fund --loglevel=error)
(cd "$stage" && node -e "new (require('better-sqlite3'))(':memory:').close()") || fail "better-sqlite3 does not load; see the npm output above"
chown -R root:root "$stage"
chmod -R go-w "$stage"
chmod 0755 "$stage"
if [ -d "$prefix" ]; then
  rm -rf "$prefix.old"
  mv "$prefix" "$prefix.old"
fi
mv "$stage" "$prefix"
rm -rf "$prefix.old"
trap - EXIT
ln -sf "$prefix/dist/gateway/cli.js" /usr/local/bin/reefer-gateway
ln -sf "$prefix/dist/device-sim/cli.js" /usr/local/bin/reefer-sim
say "application in $prefix ($(node -p "require('$prefix/package.json').version"))"

# Configuration and device list: readable by the gateway, writable by root only; kept on upgrades.
install -d -m 0750 -o root -g "$user" "$etc"
if [ ! -f "$etc/gateway.yaml" ]; then
  install -m 0640 -o root -g "$user" deploy/gateway.example.yaml "$etc/gateway.yaml"
  say "wrote $etc/gateway.yaml from the example: set gatewayId and kafka.brokers"
fi
if [ ! -f "$etc/devices.txt" ]; then
  install -m 0640 -o root -g "$user" /dev/null "$etc/devices.txt"
  say "wrote an empty $etc/devices.txt: add devices with reefer-gateway hash-password --user <name>"
fi

install -m 0644 deploy/reefer-gateway.service /etc/systemd/system/reefer-gateway.service
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  if $enable; then
    systemctl enable --now reefer-gateway.service
    say "reefer-gateway enabled and started: journalctl -u reefer-gateway -f"
  elif systemctl is-active --quiet reefer-gateway.service; then
    systemctl restart reefer-gateway.service
    say "reefer-gateway restarted on the new version"
  else
    say "next: edit $etc/gateway.yaml, then systemctl enable --now reefer-gateway"
  fi
else
  say "systemd is not running here: unit installed, not started"
fi
