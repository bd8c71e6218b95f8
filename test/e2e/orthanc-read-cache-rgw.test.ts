// The read cache (LocalDisk.ReadCacheSize) on a real Orthanc with AwsS3Storage on Ceph RGW, encrypted:
// reads served from the cache send no GET to RGW (the daemon's own count of the requests it sends,
// store_requests_total, which sits under the cache); the cache survives a restart; an empty cache fills
// on the first read and serves the second; a delete drops the entry and the object.

import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";

import type { HealthReport } from "../../src/daemon/health.js";
import { daemonScript } from "../../test-support/daemon-process.js";
import { OrthancInstance } from "../../test-support/orthanc.js";
import { dicomDir } from "../../test-support/paths.js";
import { startRgw } from "../../test-support/rgw.js";
import { metricValue, parseMetrics } from "../helpers/prometheus.js";
import { serverForFile } from "../helpers/server-for-file.js";

const rgw = serverForFile(startRgw);

const FILES = ["ts-1.2.4.50-jpeg-baseline-US.dcm", "PR-gsps-utf8.dcm", "encapsulated-pdf.dcm"];

/** GETs that found an object in RGW, as the daemon counts them (health probes find none). */
async function rgwGets(orthanc: OrthancInstance): Promise<number> {
  const response = await orthanc.request("GET", "/cloud-storage/metrics");
  assert.equal(response.status, 200);
  return metricValue(parseMetrics(await response.text()), "orthanc_cloud_storage_store_requests_total", {
    tier: "object-storage",
    method: "get",
    outcome: "ok",
  });
}

async function cacheStatus(orthanc: OrthancInstance): Promise<NonNullable<HealthReport["readCache"]>> {
  const report = (await (await orthanc.request("GET", "/cloud-storage/health")).json()) as HealthReport;
  assert.ok(report.readCache, "the health report shows the read cache");
  return report.readCache;
}

/** Reads every instance's DICOM file through Orthanc and checks its bytes. */
async function readAll(orthanc: OrthancInstance, ids: Map<string, Buffer>): Promise<void> {
  for (const [id, data] of ids) {
    const response = await orthanc.request("GET", `/instances/${id}/file`);
    assert.equal(response.status, 200);
    assert.ok(Buffer.from(await response.arrayBuffer()).equals(data), `instance ${id} read back intact`);
  }
}

it("serves repeated reads from the local disk, across a restart, without GETs to RGW", async () => {
  const server = await rgw;
  const bucket = await server.bucket("read-cache");
  const workDir = await mkdtemp(join(tmpdir(), "ocs-read-cache-"));
  await writeFile(join(workDir, "master.key"), Buffer.alloc(32, 5).toString("base64"), { mode: 0o600 });
  const cacheFolder = join(workDir, "tier", "cache");
  const start = () =>
    OrthancInstance.start({
      workDir,
      config: {
        ...bucket.orthancConfig({ StorageEncryption: { MasterKey: [1, join(workDir, "master.key")] } }),
        OrthancCloudStorage: {
          Node: process.execPath,
          Daemon: daemonScript,
          LocalDisk: { Path: join(workDir, "tier"), ReadCacheSize: 64 },
        },
      },
    });
  let orthanc = await start();
  try {
    const ids = new Map<string, Buffer>();
    for (const name of FILES) {
      const data = await readFile(join(dicomDir, name));
      ids.set((await orthanc.upload(data)).ID, data);
    }
    // The creates filled the cache: no read reaches RGW.
    const afterUploads = await rgwGets(orthanc);
    await readAll(orthanc, ids);
    await readAll(orthanc, ids);
    assert.equal(await rgwGets(orthanc), afterUploads, "reads after the uploads never reached RGW");
    const filled = await cacheStatus(orthanc);
    assert.ok(filled.objects >= FILES.length, `${filled.objects} objects cached`);
    assert.equal(filled.capacityBytes, 64 * 1024 * 1024);

    // A restart keeps the cache: rebuilt from its folder.
    await orthanc.stop();
    orthanc = await start();
    assert.deepEqual(await cacheStatus(orthanc), filled);
    await readAll(orthanc, ids);
    assert.equal(await rgwGets(orthanc), 0, "after a restart, reads come from the rebuilt cache");

    // An empty cache: the first read of each object goes to RGW (once), the second does not.
    await orthanc.stop();
    await rm(cacheFolder, { recursive: true, force: true });
    orthanc = await start();
    assert.equal((await cacheStatus(orthanc)).objects, 0);
    await readAll(orthanc, ids);
    const firstPass = await rgwGets(orthanc);
    assert.equal(firstPass, FILES.length, "one GET per DICOM file on the first pass");
    await readAll(orthanc, ids);
    assert.equal(await rgwGets(orthanc), firstPass, "the second pass came from the cache");

    // A delete drops the cached copies as well as the objects.
    const [first] = ids.keys();
    assert.ok(first);
    const before = await cacheStatus(orthanc);
    const deleted = await orthanc.request("DELETE", `/instances/${first}`);
    assert.equal(deleted.status, 200);
    assert.ok((await cacheStatus(orthanc)).objects < before.objects);
    ids.delete(first);
    await readAll(orthanc, ids);
    assert.equal(await rgwGets(orthanc), firstPass);
  } finally {
    await orthanc.destroy();
    await bucket.cleanup();
  }
});
