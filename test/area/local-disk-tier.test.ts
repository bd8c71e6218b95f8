// The local disk tier as the daemon opens it (openStorageArea with localDisk): the write-behind spool in
// front of the object storage, the CLI without it, and a read of an object pending on another node's spool.

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";

import { spoolOf } from "../../src/area/local-disk-tier.js";
import { openStorageArea } from "../../src/area/open-storage-area.js";
import type { LocalDiskOptions } from "../../src/config/local-disk-section.js";
import type { ResolvedConfig } from "../../src/config/types.js";
import { isStorageError } from "../../src/errors.js";
import { filesUnder } from "../../test-support/folder.js";
import { localConfig } from "../helpers/local-config.js";
import { MemoryLogger } from "../helpers/memory-logger.js";

const roots: string[] = [];
after(() => Promise.all(roots.map((root) => rm(root, { recursive: true, force: true }))));

/** A plaintext folder backend at `root/objects`, with the local disk tier at `tier`. */
function config(root: string, localDisk: Partial<LocalDiskOptions> & { path: string }): ResolvedConfig {
  return localConfig(root, { encrypted: false, localDisk });
}

async function tempRoot(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), "ocs-tier-"));
  roots.push(root);
  return root;
}

describe("the local disk tier of the daemon's storage area", () => {
  it("puts the write-behind spool under LocalDisk.Path/spool in front of the object storage", async () => {
    const root = await tempRoot();
    const objects = join(root, "objects");
    const area = await openStorageArea(config(root, { path: join(root, "tier") }), new MemoryLogger(), {
      localDisk: true,
    });
    const spool = spoolOf(area);
    assert.ok(spool !== undefined);
    const uuid = randomUUID();
    await area.create(uuid, 1, Buffer.from("DICOM bytes"));
    assert.equal(await spool.drain(5000), true);
    assert.deepEqual(await filesUnder(objects), [`${uuid}.dcm`]);
    assert.deepEqual(await readdir(join(root, "tier", "spool")), ["lock"]);
    await area.close();
  });

  it("is left out for the CLI's tools, which work on the backend alone", async () => {
    const root = await tempRoot();
    const area = await openStorageArea(config(root, { path: join(root, "tier") }), new MemoryLogger());
    assert.equal(spoolOf(area), undefined);
    await assert.rejects(readdir(join(root, "tier")), /ENOENT/);
    await area.close();
  });

  it("waits PendingReadWait for an object another node has not uploaded yet, then says it may be pending there", async () => {
    const root = await tempRoot();
    const objects = join(root, "objects");
    const area = await openStorageArea(
      config(root, { path: join(root, "tier"), writeBehind: false, pendingReadWaitMs: 1200 }),
      new MemoryLogger(),
      { localDisk: true },
    );
    // Uploaded by "the other node" while this one waits: served.
    const late = randomUUID();
    setTimeout(() => void writeFile(join(objects, `${late}.dcm`), "late bytes"), 400);
    const started = performance.now();
    const read = await area.readWhole(late, 1);
    assert.equal(read.bytes?.toString() ?? "", "late bytes");
    assert.ok(performance.now() - started >= 350);
    read.body.destroy();

    const missing = randomUUID();
    const t0 = performance.now();
    await assert.rejects(area.readWhole(missing, 1), (error) => {
      assert.ok(isStorageError(error, "PENDING_ELSEWHERE"));
      assert.match(
        error.message,
        /still not found after 1\.2 s .*LocalDisk\.PendingReadWait.*write-behind spool of the node/,
      );
      return true;
    });
    assert.ok(performance.now() - t0 >= 1100);
    await area.close();
  });
});
