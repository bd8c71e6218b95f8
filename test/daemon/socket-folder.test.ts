import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdir, mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";

import { createSocketFolder } from "../../src/daemon/socket-folder.js";

it("makes a private socket folder, and removes those of daemons that are gone", async () => {
  const parent = await mkdtemp(join(tmpdir(), "ocs-sockets-"));
  const gonePid = spawnSync("true").pid; // a process that has exited
  await mkdir(join(parent, `orthanc-cloud-storage-${gonePid}-abc123`));
  await mkdir(join(parent, `orthanc-cloud-storage-${process.pid}-def456`)); // alive: kept
  await mkdir(join(parent, "orthanc-cloud-storage-unrelated")); // not ours by name: kept
  const folder = await createSocketFolder(parent);
  assert.equal((await stat(folder)).mode & 0o777, 0o700);
  const names = (await readdir(parent)).sort();
  assert.ok(!names.includes(`orthanc-cloud-storage-${gonePid}-abc123`));
  assert.ok(names.includes(`orthanc-cloud-storage-${process.pid}-def456`));
  assert.ok(names.includes("orthanc-cloud-storage-unrelated"));
  await rm(parent, { recursive: true });
});
