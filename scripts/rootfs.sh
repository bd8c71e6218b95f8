#!/usr/bin/env bash
# Builds, once per machine, a Debian root filesystem of one suite with that suite's Orthanc, and prints its
# path. The e2e tests run Orthanc inside it (test-support/orthanc-releases.ts) to test the Orthanc versions other
# than the host's, and the package tests install our .deb into a throwaway overlay of it.
#   bookworm: Orthanc 1.10.1   trixie: Orthanc 1.12.7   sid: Orthanc 1.13.0 (on the mirror this machine uses)
# Usage: scripts/rootfs.sh [--cached] <suite>     --cached: fail at once when it is not built yet (the tests:
# they run without a network, so they only use what scripts/test.sh built before them)
# The root filesystem is cached outside the checkout, in $OCS_ROOTFS_CACHE (default
# /var/cache/orthanc-cloud-storage/rootfs), under a name made of the suite and a hash of everything that
# shapes it (packages, mirror, options): change any of them and a new one is built beside the old one.
# Several runs at once wait for each other (flock) and build it once. Needs root and mmdebstrap.
set -euo pipefail

cached_only=false
if [ "${1:-}" = "--cached" ]; then
  cached_only=true
  shift
fi
suite=${1:?usage: scripts/rootfs.sh [--cached] <suite> (bookworm, trixie or sid)}
# Orthanc from the suite; no Node: the package tests need a system without one. libatomic1 is the one
# dependency of our .deb (the Node runtime's) that Orthanc does not bring: apt would download it, but the
# tests run without a network. dcmtk's tools run on the host (they only talk DICOM over 127.0.0.1), and the
# plugin is built on the host.
packages="orthanc libatomic1"
# sid's also has orthanc-postgresql, for several Orthanc 1.13.0 nodes on one index (test/e2e/orthanc-multinode).
[ "$suite" = sid ] && packages+=" orthanc-postgresql"
cache=${OCS_ROOTFS_CACHE:-/var/cache/orthanc-cloud-storage/rootfs}

# The Debian mirror this machine's apt uses (deb822 or one-line sources), else Debian's own.
mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
  awk '$1 == "URIs:" && $2 ~ /\/debian\/?$/ { print $2; exit }')
if [ -z "$mirror" ]; then
  mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    awk '$1 == "deb" && $2 ~ /\/debian\/?$/ { print $2; exit }')
fi
mirror=${mirror:-http://deb.debian.org/debian}

# A suite's Release file carries a Valid-Until date; sid's on a mirror that is a dated snapshot (as here)
# is soon past it, and apt then refuses the whole suite. Our tests want that snapshot's packages anyway.
aptopts=('Acquire::Check-Valid-Until "false"')

key=$(printf '%s\n' "v1" "$suite" "$packages" "$mirror" "${aptopts[@]}" | sha256sum | cut -c1-12)
target="$cache/$suite-$key"
if [ -f "$target/.complete" ]; then
  echo "$target"
  exit 0
fi

if $cached_only; then
  echo "rootfs: no root filesystem for Debian $suite yet ($target): run scripts/rootfs.sh $suite (or scripts/test.sh) with a network first" >&2
  exit 1
fi
if ! command -v mmdebstrap >/dev/null; then
  echo "rootfs: mmdebstrap is missing: apt-get install mmdebstrap" >&2
  exit 1
fi
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if [ ! -f "$target/.complete" ]; then
  echo "rootfs: building $target (Debian $suite with $packages from $mirror); once per machine, about 75 s" >&2
  partial="$target.partial"
  rm -rf "$partial"
  started=$SECONDS
  mmdebstrap --quiet --variant=apt --include="${packages// /,}" \
    --aptopt="${aptopts[0]}" \
    "$suite" "$partial" "deb $mirror $suite main" >&2 ||
    {
      rm -rf "$partial"
      echo "rootfs: mmdebstrap failed for Debian $suite from $mirror (its output is above)" >&2
      exit 1
    }
  touch "$partial/.complete"
  rm -rf "$target"
  mv "$partial" "$target"
  # Older builds of this suite (other packages or options) are not used any more.
  for old in "$cache/$suite"-*; do
    [ "$old" = "$target" ] || rm -rf "$old"
  done
  echo "rootfs: built $target in $((SECONDS - started)) s" >&2
fi
echo "$target"
