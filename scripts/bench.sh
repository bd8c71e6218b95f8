#!/usr/bin/env bash
# Runs the benchmark suite (bench/): installs and builds what it needs, then measures every target (or
# those named) side by side with its baseline and prints a table of ratios. A report: a missed goal still
# exits 0. Usage: scripts/bench.sh [target...] [--rounds N]   (targets: see bench/targets/index.ts)
set -euo pipefail
cd "$(dirname "$0")/.."
# Orthanc and Ceph's S3 gateway are the servers measured; DCMTK's storescu sends the ingest target's C-STOREs; openssl is the crypto target's baseline; gnuplot
# draws the scaling target's plot.
bash scripts/setup.sh orthanc dcmtk iproute2 procps radosgw ceph-mon ceph-osd ceph-common openssl gnuplot-nox
source scripts/runtime.sh
# In a private network namespace with loopback only, like the tests: the servers started (Orthanc binds
# every interface) are reachable from here and from nowhere else.
exec unshare --net -- bash -c 'ip link set lo up && exec node dist/bench/run.js "$@"' bench "$@"
