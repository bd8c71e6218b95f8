#!/usr/bin/env bash
# Prints the include folder of the newest Orthanc plugin SDK the bridge is built against: Debian sid's
# orthanc-dev (Orthanc 1.13.0), whose OrthancCPlugin.h declares the storage area with custom data of Orthanc
# >= 1.12.8 (OrthancPluginRegisterStorageArea3). Debian 12's orthanc-dev (1.10.1) lacks it. Only the header
# comes from sid: the bridge is compiled on the host with the host's compiler, so the library still loads
# with Debian 12's glibc, and the bridge calls the new API only when the running Orthanc offers it.
# The package is downloaded once per machine with apt inside sid's root filesystem (scripts/rootfs.sh, whose
# keyring verifies sid), its header extracted into $OCS_ROOTFS_CACHE/../orthanc-sdk/<that rootfs's name>.
# Usage: scripts/orthanc-sdk.sh [--cached]   --cached: fail at once when it is not there yet (no network).
# Needs root (the root filesystem), and a network the first time.
set -euo pipefail
cd "$(dirname "$0")/.."

cached=()
[ "${1:-}" = "--cached" ] && cached=(--cached)
cache=${OCS_ROOTFS_CACHE:-/var/cache/orthanc-cloud-storage/rootfs}
sdk_cache="$(dirname "$cache")/orthanc-sdk"

# Without --cached, any SDK already extracted for a sid root filesystem serves (a rebuilt root filesystem
# under a new name needs no new download while the old header is there).
existing=$(find "$sdk_cache" -mindepth 2 -maxdepth 2 -name .complete -printf '%h\n' 2>/dev/null | sort | tail -n 1 || true)
if [ -n "$existing" ]; then
  echo "$existing/include"
  exit 0
fi
if [ ${#cached[@]} -gt 0 ]; then
  echo "orthanc-sdk: Orthanc's plugin SDK from Debian sid is not in $sdk_cache yet: run scripts/setup.sh (or scripts/orthanc-sdk.sh) with a network first" >&2
  exit 1
fi
rootfs=$(bash scripts/rootfs.sh sid)
target="$sdk_cache/$(basename "$rootfs")"
state=$(mktemp -d)
chmod 755 "$state" # apt downloads as its _apt user
trap 'rm -rf "$state"' EXIT
echo "orthanc-sdk: downloading orthanc-dev from Debian sid (once per machine)" >&2
bash scripts/in-rootfs.sh --bind "$state" "$rootfs" "$state/overlay" -- bash -c \
  "cd '$state' && apt-get -qq -o Acquire::Check-Valid-Until=false update && apt-get -qq download orthanc-dev" >&2 || {
  echo "orthanc-sdk: cannot download orthanc-dev from Debian sid (its output is above)" >&2
  exit 1
}
deb=$(find "$state" -maxdepth 1 -name 'orthanc-dev_*.deb' | head -n 1)
[ -n "$deb" ] || { echo "orthanc-sdk: apt downloaded no orthanc-dev package" >&2; exit 1; }
rm -rf "$target.partial"
mkdir -p "$target.partial"
dpkg-deb -x "$deb" "$state/extracted"
mkdir -p "$target.partial/include/orthanc"
cp "$state/extracted/usr/include/orthanc/OrthancCPlugin.h" "$target.partial/include/orthanc/"
dpkg-deb -f "$deb" Version >"$target.partial/VERSION"
touch "$target.partial/.complete"
rm -rf "$target"
mv "$target.partial" "$target"
echo "orthanc-sdk: Orthanc's plugin SDK $(cat "$target/VERSION") in $target/include" >&2
echo "$target/include"
