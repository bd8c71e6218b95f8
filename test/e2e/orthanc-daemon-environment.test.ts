// The environment the bridge gives the daemon: Orthanc's, plus the malloc settings of DAEMON_ENVIRONMENT
// (protocol.ts) that Orthanc's environment does not set itself.

import assert from "node:assert/strict";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";

import { DAEMON_ENVIRONMENT } from "../../src/daemon/protocol.js";
import { OrthancInstance } from "../../test-support/orthanc.js";

it("starts the daemon with DAEMON_ENVIRONMENT, except for variables Orthanc's environment sets", async () => {
  const [overridden, added] = Object.keys(DAEMON_ENVIRONMENT) as [string, string];
  const workDir = await mkdtemp(join(tmpdir(), "ocs-environment-"));
  const orthanc = await OrthancInstance.start({
    workDir,
    env: { ...process.env, [overridden]: "1234567", [added]: undefined },
    config: { LocalObjectStorage: { Path: join(workDir, "objects"), StorageEncryption: { Enable: false } } },
  });
  try {
    const pids = await orthanc.daemonPids();
    assert.equal(pids.length, 1, `one daemon, found pids ${pids.join(", ")}`);
    const environment = (await readFile(join("/proc", String(pids[0]), "environ"), "latin1")).split("\0");
    assert.ok(environment.includes(`${overridden}=1234567`), `${overridden} kept as Orthanc set it`);
    assert.ok(!environment.includes(`${overridden}=${DAEMON_ENVIRONMENT[overridden]}`));
    assert.ok(environment.includes(`${added}=${DAEMON_ENVIRONMENT[added]}`), `${added} added`);
    assert.ok(environment.includes(`PATH=${process.env.PATH}`), "Orthanc's environment inherited");
  } finally {
    await orthanc.destroy();
  }
});
