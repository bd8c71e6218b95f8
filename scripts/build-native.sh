#!/usr/bin/env bash
# Builds the Orthanc plugin (the bridge, native/*.c) into build/libOrthancCloudStorage.so with the system C
# compiler. Needs the Orthanc plugin SDK header of Orthanc 1.13.0 (Debian sid's orthanc-dev, which
# scripts/orthanc-sdk.sh downloads once per machine: the storage area with custom data of Orthanc >= 1.12.8;
# the library still loads in older Orthanc, where it registers the older API), glibc >= 2.34, and the compiled
# TypeScript (npm run build): the wire protocol's constants come from dist/src/daemon/protocol-header.js,
# written to build/protocol.h, so that src/daemon/protocol.ts is their only source.
# Usage: scripts/build-native.sh [extra compiler flags...]   e.g. -fsanitize=address for a test build.
# The version reported to Orthanc is $OCS_VERSION, or else package.json's.
set -euo pipefail
cd "$(dirname "$0")/.."

# Only the header comes from sid: compiled here with the host's compiler, the library needs no newer glibc.
sdk=$(bash scripts/orthanc-sdk.sh) || {
  echo "build-native: Orthanc's plugin SDK from Debian sid is missing (scripts/orthanc-sdk.sh, above)" >&2
  exit 1
}
cc=${CC:-cc}
if ! command -v "$cc" >/dev/null; then
  echo "build-native: no C compiler ($cc): install gcc (apt-get install gcc libc6-dev)" >&2
  exit 1
fi

version=${OCS_VERSION:-$(sed -n 's/^  "version": "\([^"]*\)",*$/\1/p' package.json | head -n 1)}
version=${version:-0.1.0}

generator=dist/src/daemon/protocol-header.js
if [ ! -f "$generator" ]; then
  echo "build-native: $generator is missing: run \"npm run build\" first" >&2
  exit 1
fi
mkdir -p build
node --input-type=module \
  -e "process.stdout.write((await import('./$generator')).protocolHeader())" >build/protocol.h
"$cc" -O2 -g -Wall -Wextra -Werror -std=gnu11 -shared -fPIC -fvisibility=hidden -Ibuild -I"$sdk" \
  -DOCS_VERSION="\"$version\"" \
  -o build/libOrthancCloudStorage.so native/*.c "$@" -lpthread

# Only the 4 entry points Orthanc looks up may be exported.
exported=$(nm -D --defined-only build/libOrthancCloudStorage.so | awk '$2 ~ /^[TDBR]$/ { print $3 }' | sort | tr '\n' ' ')
expected="OrthancPluginFinalize OrthancPluginGetName OrthancPluginGetVersion OrthancPluginInitialize "
if [ "$exported" != "$expected" ]; then
  echo "build-native: unexpected exported symbols: $exported" >&2
  exit 1
fi
echo "build-native: built build/libOrthancCloudStorage.so (version $version)"
