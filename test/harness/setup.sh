#!/bin/sh
# Installs what reefer-edge needs to build, test and run its demo on a Debian machine, then the npm
# packages. Safe to run again: each step is skipped when already done.
set -eu
cd "$(dirname "$0")/../.."

missing=""
command -v java >/dev/null 2>&1 || missing="$missing openjdk-17-jre-headless"
command -v mvn >/dev/null 2>&1 || missing="$missing maven"
command -v mosquitto >/dev/null 2>&1 || missing="$missing mosquitto"
command -v socat >/dev/null 2>&1 || missing="$missing socat"
command -v g++ >/dev/null 2>&1 || missing="$missing g++ make python3"
# The dashboard test drives Debian's Chromium headless; playwright-core brings no browser of its own.
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
# Test certificates for the TLS and SASL_SSL tests are made with openssl.
command -v openssl >/dev/null 2>&1 || missing="$missing openssl"
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing Debian packages:$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
  else
    echo "setup: please install:$missing" >&2
    exit 1
  fi
fi

# better-sqlite3 compiles from source where its prebuilt binary cannot be downloaded; point node-gyp
# at the headers installed with Node so it does not try to download them either.
if [ -z "${npm_config_nodedir:-}" ]; then
  nodedir=$(node -p "require('path').resolve(process.execPath, '..', '..')")
  if [ -f "$nodedir/include/node/node.h" ]; then
    npm_config_nodedir="$nodedir"
    export npm_config_nodedir
  fi
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
