#!/usr/bin/env bash
# Runs the whole test suite: installs and builds what it needs, checks lint and formatting, then runs
# every test file with Node's test runner. Servers that tests need are started by the tests themselves.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh orthanc dcmtk iproute2 procps radosgw ceph-mon ceph-osd ceph-common \
  postgresql orthanc-postgresql mmdebstrap lintian
# Debian root filesystems with Orthanc 1.12.7 (trixie) and 1.13.0 (sid), for the e2e tests on those versions
# (test-support/orthanc-releases.ts), and bookworm's for the package tests; built once per machine, here
# because the tests run without a network. Then the .deb and the tarball the package tests install.
for suite in trixie sid bookworm; do bash scripts/rootfs.sh "$suite" >/dev/null; done
bash scripts/package.sh >/dev/null
npx --no-install eslint .
bash scripts/npm-audit.sh
npx --no-install prettier --check . >/dev/null || { npx --no-install prettier --list-different .; exit 1; }
mapfile -t tests < <(find dist/test -name '*.test.js' | sort)
# In a private network namespace with loopback only: servers the tests start (Orthanc binds every
# interface) are reachable from this machine's tests and from nowhere else. In a private mount namespace
# too: the small disk a fault test mounts (test/helpers/small-disk.ts) is invisible outside, and gone
# with the suite even if the test was killed before unmounting it.
exec unshare --net --mount -- bash -c 'ip link set lo up && exec node --test --test-reporter=spec "$@"' tests "${tests[@]}"
