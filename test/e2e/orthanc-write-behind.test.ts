// Write-behind (OrthancCloudStorage.LocalDisk.WriteBehind, issue 17) under faults, on a real Orthanc with
// AwsS3Storage on Ceph RGW, encrypted: radosgw down for longer than the spool allows, then back; the daemon
// killed -9 in the middle of a drain, with deletes right after; Orthanc killed -9 in the middle of a drain and
// started again; the disk under the spool full. After each: every acknowledged upload reads back
// byte-identical, verify finds every attachment in the bucket and no orphan (nothing Orthanc deleted was
// uploaded), and the spool holds no file. docs/reliability.md#write-behind lists the figures.

import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it, type TestContext } from "node:test";

import { readSpoolHeader } from "../../src/stores/spool/spool-file.js";
import { filesUnder } from "../../test-support/folder.js";
import { OrthancInstance } from "../../test-support/orthanc.js";
import { startRgw, type RgwServer } from "../../test-support/rgw.js";
import { checkAfterFault, OperationLedger } from "../helpers/consistency.js";
import { uniqueCopies } from "../../test-support/dicom-copies.js";
import { serverForFile } from "../helpers/server-for-file.js";
import { metricValue, parseMetrics } from "../helpers/prometheus.js";
import { mountSmallDisk, type SmallDisk } from "../helpers/small-disk.js";
import { isRunning, sleep, waitFor } from "../helpers/wait.js";

const SMALL = [
  "PR-gsps-utf8.dcm",
  "SR-basic-text-latin2.dcm",
  "encapsulated-pdf.dcm",
  "ts-1.2.4.50-jpeg-baseline-US.dcm",
];
const REQUEST_TIMEOUT_S = 2;
/** Far above a drain of a few dozen small objects, and the spool's longest backoff (30 s). */
const DRAIN_MS = 90_000;
const DAEMON_RESTART_MS = 30_000;

const rgw = serverForFile(startRgw);

interface Setup {
  server: RgwServer;
  workDir: string;
  /** LocalDisk.Path. */
  tier: string;
  config: Record<string, unknown>;
  /** The backend alone, for verify (which never opens the local disk tier). */
  storage: Record<string, unknown>;
  cleanup(): Promise<void>;
}

async function setup(localDisk: Record<string, unknown> = {}): Promise<Setup> {
  const server = await rgw;
  const bucket = await server.bucket("write-behind");
  const workDir = await mkdtemp(join(tmpdir(), "ocs-write-behind-"));
  const tier = join(workDir, "tier");
  await mkdir(tier);
  await writeFile(join(workDir, "master.key"), Buffer.alloc(32, 5).toString("base64"), { mode: 0o600 });
  const storage = bucket.orthancConfig({
    RequestTimeout: REQUEST_TIMEOUT_S,
    ConnectionTimeout: REQUEST_TIMEOUT_S,
    MaxRetries: 1,
    StorageEncryption: { MasterKey: [1, join(workDir, "master.key")] },
  });
  return {
    server,
    workDir,
    tier,
    storage,
    config: {
      ...storage,
      OrthancCloudStorage: { LocalDisk: { Path: tier, WriteBehind: true, PendingReadWait: 0, ...localDisk } },
    },
    cleanup: async () => {
      await bucket.cleanup();
      await rm(workDir, { recursive: true, force: true });
    },
  };
}

interface SpoolReport {
  objects: number;
  bytes: number;
  oldestAgeS: number;
  uploading: number;
  failing?: { error: string; attempts: number };
  alert?: string;
}

async function spoolReport(orthanc: OrthancInstance): Promise<SpoolReport> {
  const response = await orthanc.request("GET", "/cloud-storage/health");
  const report = (await response.json()) as { spool?: SpoolReport };
  assert.ok(report.spool !== undefined, "the health report has a spool section");
  return report.spool;
}

/** Waits until the spool is empty; returns how long that took. */
async function drained(orthanc: OrthancInstance): Promise<number> {
  const t0 = Date.now();
  await waitFor(
    async () => (await spoolReport(orthanc).catch(() => undefined))?.objects === 0,
    DRAIN_MS,
    "the spool to drain",
  );
  return Date.now() - t0;
}

async function killGateway(server: RgwServer): Promise<void> {
  const pid = await server.gatewayPid();
  process.kill(pid, "SIGKILL");
  await waitFor(async () => !(await isRunning(pid)), 10_000, "radosgw to die");
}

/** Waits until the spool has started uploading its backlog of `total` objects (some gone, some left). */
async function midDrain(orthanc: OrthancInstance, total: number): Promise<number> {
  const deadline = Date.now() + DRAIN_MS;
  for (;;) {
    const left = (await spoolReport(orthanc)).objects;
    if (left < total) return left;
    assert.ok(Date.now() < deadline, `the drain did not begin within ${DRAIN_MS} ms`);
    await sleep(10); // a drain of small objects takes a fraction of a second
  }
}

/** The spool folder holds nothing but its lock: no temporary, spool or tombstone file is left. */
async function assertSpoolEmpty(tier: string): Promise<void> {
  const files = (await filesUnder(join(tier, "spool"))).filter((name) => name !== "lock");
  assert.deepEqual(files, [], "nothing left in the spool");
}

async function deleteInstances(t: TestContext, orthanc: OrthancInstance, ids: string[]): Promise<void> {
  for (const id of ids) {
    const response = await orthanc.request("DELETE", `/instances/${id}`);
    assert.equal(response.status, 200, `DELETE ${id}: ${await response.text()}`);
  }
  t.diagnostic(`deleted ${ids.length} instance(s) while the spool drained`);
}

describe("write-behind on a real Orthanc (S3 on Ceph RGW, encrypted)", () => {
  it("absorbs uploads while radosgw is down up to MaxPendingSize, then refuses them; drains once it is back", async (t) => {
    const s = await setup({ MaxPendingSize: 1 });
    const orthanc = await OrthancInstance.start({ workDir: join(s.workDir, "orthanc"), config: s.config });
    let down = false;
    try {
      const pool = await uniqueCopies(SMALL, 30);
      const ledger = new OperationLedger();
      for (const [i, data] of pool.slice(0, 4).entries()) {
        assert.ok(await ledger.upload(orthanc, data, `upload ${i} (up)`), ledger.refused.join("; "));
      }
      await drained(orthanc);
      await killGateway(s.server);
      down = true;
      const whileDown: string[] = [];
      let next = 4;
      while (next < pool.length && ledger.refused.length < 3) {
        const before = ledger.acknowledged.size;
        await ledger.upload(orthanc, pool[next] as Buffer, `upload ${next} (radosgw down)`);
        if (ledger.acknowledged.size > before)
          whileDown.push([...ledger.acknowledged.keys()].at(-1) as string);
        next++;
      }
      t.diagnostic(
        `radosgw down: ${whileDown.length} uploads acknowledged into the spool, then ${ledger.refused.length} refused`,
      );
      assert.ok(whileDown.length >= 4, "the spool absorbed uploads while the backend was down");
      assert.equal(ledger.refused.length, 3, "then refused them");
      for (const line of ledger.refused) assert.match(line, /HTTP 500 .*The file storage is full/s);
      assert.match(
        await orthanc.log(),
        /would pass LocalDisk\.MaxPendingSize \(1048576 bytes\): uploads to s3:\/\/.* have failed since/,
      );
      const report = await spoolReport(orthanc);
      assert.ok(report.objects > 0 && report.failing !== undefined, JSON.stringify(report));
      assert.match(report.alert ?? "", /% full/);
      const samples = parseMetrics(await (await orthanc.request("GET", "/cloud-storage/metrics")).text());
      assert.equal(metricValue(samples, "orthanc_cloud_storage_spool_objects"), report.objects);
      assert.equal(metricValue(samples, "orthanc_cloud_storage_spool_capacity_bytes"), 1024 * 1024);
      assert.equal(metricValue(samples, "orthanc_cloud_storage_spool_failing"), 1);
      assert.ok(metricValue(samples, "orthanc_cloud_storage_spool_oldest_age_seconds") > 0);
      // Encryption on: only ciphertext (A1 objects) on the local disk.
      const spooled = (await filesUnder(join(s.tier, "spool"))).filter((name) => name.endsWith(".spool"));
      assert.ok(spooled.length > 0);
      for (const name of spooled) {
        const path = join(s.tier, "spool", name);
        const header = await readSpoolHeader(path);
        const data = (await readFile(path)).subarray(header.dataOffset);
        assert.equal(data.subarray(0, 2).toString("latin1"), "A1", `${name} holds an A1 object`);
        assert.ok(!data.includes(Buffer.from("DICM")), `${name} holds no plaintext DICOM`);
      }
      // Acknowledged uploads read back from the spool meanwhile.
      for (const id of whileDown.slice(0, 3)) {
        const response = await orthanc.request("GET", `/instances/${id}/file`);
        assert.equal(response.status, 200);
        assert.ok(Buffer.from(await response.arrayBuffer()).equals(ledger.acknowledged.get(id) as Buffer));
      }

      await s.server.startGateway();
      down = false;
      t.diagnostic(`the spool drained ${await drained(orthanc)} ms after radosgw answered again`);
      for (; next < pool.length; next++) {
        assert.ok(
          await ledger.upload(orthanc, pool[next] as Buffer, `upload ${next} (back)`),
          ledger.refused.join("; "),
        );
      }
      await drained(orthanc);
      await checkAfterFault(t, {
        scenario: "radosgw down past MaxPendingSize (1 MB), then back (write-behind, S3 on Ceph RGW)",
        orthanc,
        storage: s.storage,
        acknowledged: ledger.acknowledged,
        counts: ledger.counts,
        refusals: ledger.refused,
      });
      await assertSpoolEmpty(s.tier);
    } finally {
      if (down) await s.server.startGateway();
      await orthanc.stop();
      await s.cleanup();
    }
  });

  it("loses nothing and uploads nothing deleted when the daemon is killed -9 in the middle of a drain", async (t) => {
    // One upload at a time, so that the drain lasts long enough to be cut in the middle.
    const s = await setup({ UploadConcurrency: 1 });
    const orthanc = await OrthancInstance.start({ workDir: join(s.workDir, "orthanc"), config: s.config });
    let down = false;
    try {
      const pool = await uniqueCopies(SMALL, 12);
      const ledger = new OperationLedger();
      await killGateway(s.server);
      down = true;
      for (const [i, data] of pool.entries()) {
        assert.ok(
          await ledger.upload(orthanc, data, `upload ${i} (radosgw down)`),
          ledger.refused.join("; "),
        );
      }
      const backlog = (await spoolReport(orthanc)).objects;
      await s.server.startGateway();
      down = false;
      const left = await midDrain(orthanc, backlog);
      const pids = await orthanc.daemonPids();
      for (const pid of pids) process.kill(pid, "SIGKILL");
      t.diagnostic(`daemon killed -9 with ${left} of ${backlog} objects still in the spool`);
      assert.ok(left > 0, "killed in the middle of the drain");
      // Deleted while the restarted daemon drains: their objects must not stay in the bucket.
      const deleted = [...ledger.acknowledged.keys()].slice(-4);
      await waitFor(
        async () => (await orthanc.daemonPids()).length > 0,
        DAEMON_RESTART_MS,
        "the daemon's restart",
      );
      await deleteInstances(t, orthanc, deleted);
      for (const id of deleted) ledger.acknowledged.delete(id);
      await drained(orthanc);
      await checkAfterFault(t, {
        scenario: "daemon killed -9 mid-drain, 4 instances deleted after (write-behind, S3 on Ceph RGW)",
        orthanc,
        storage: s.storage,
        acknowledged: ledger.acknowledged,
        counts: ledger.counts,
        refusals: ledger.refused,
      }).then((figures) => assert.equal(figures.orphans, 0, "nothing deleted was left in the bucket"));
      await assertSpoolEmpty(s.tier);
    } finally {
      if (down) await s.server.startGateway();
      await orthanc.stop();
      await s.cleanup();
    }
  });

  it("loses nothing when Orthanc is killed -9 in the middle of a drain and started again", async (t) => {
    // No drain at exit: the daemon of the killed Orthanc leaves its uploads to the next start.
    const s = await setup({ ShutdownDrainTimeout: 0, UploadConcurrency: 1 });
    const workDir = join(s.workDir, "orthanc");
    let orthanc = await OrthancInstance.start({ workDir, config: s.config });
    let down = false;
    try {
      const pool = await uniqueCopies(SMALL, 12);
      const ledger = new OperationLedger();
      await killGateway(s.server);
      down = true;
      for (const [i, data] of pool.entries()) {
        assert.ok(
          await ledger.upload(orthanc, data, `upload ${i} (radosgw down)`),
          ledger.refused.join("; "),
        );
      }
      const backlog = (await spoolReport(orthanc)).objects;
      await s.server.startGateway();
      down = false;
      const left = await midDrain(orthanc, backlog);
      const daemons = await orthanc.daemonPids();
      await orthanc.kill();
      for (const pid of daemons)
        await waitFor(async () => !(await isRunning(pid)), 20_000, "the daemon's exit");
      t.diagnostic(`Orthanc killed -9 with ${left} of ${backlog} objects still in the spool`);
      assert.ok(left > 0, "killed in the middle of the drain");
      orthanc = await OrthancInstance.start({ workDir, config: s.config });
      const deleted = [...ledger.acknowledged.keys()].slice(0, 2);
      await deleteInstances(t, orthanc, deleted);
      for (const id of deleted) ledger.acknowledged.delete(id);
      await drained(orthanc);
      await checkAfterFault(t, {
        scenario:
          "Orthanc killed -9 mid-drain, restarted, 2 instances deleted (write-behind, S3 on Ceph RGW)",
        orthanc,
        storage: s.storage,
        acknowledged: ledger.acknowledged,
        counts: ledger.counts,
        refusals: ledger.refused,
      }).then((figures) => assert.equal(figures.orphans, 0, "nothing deleted was left in the bucket"));
      await assertSpoolEmpty(s.tier);
    } finally {
      if (down) await s.server.startGateway();
      await orthanc.stop();
      await s.cleanup();
    }
  });

  it("bounds the wait of Orthanc's shutdown by ShutdownDrainTimeout; the rest drains at the next start", async (t) => {
    const s = await setup({ ShutdownDrainTimeout: 4 });
    const workDir = join(s.workDir, "orthanc");
    let orthanc = await OrthancInstance.start({ workDir, config: s.config });
    let down = false;
    try {
      const pool = await uniqueCopies(SMALL, 3);
      const ledger = new OperationLedger();
      await killGateway(s.server);
      down = true;
      for (const [i, data] of pool.entries()) {
        assert.ok(
          await ledger.upload(orthanc, data, `upload ${i} (radosgw down)`),
          ledger.refused.join("; "),
        );
      }
      const backlog = (await spoolReport(orthanc)).objects;
      const t0 = Date.now();
      await orthanc.stop();
      const stopMs = Date.now() - t0;
      t.diagnostic(`Orthanc stopped in ${stopMs} ms with ${backlog} objects spooled and radosgw down`);
      assert.ok(stopMs >= 4000, "the shutdown waited for the drain");
      assert.ok(stopMs < 4000 + 20_000, "no longer than ShutdownDrainTimeout, and the time to stop");
      const left = (await filesUnder(join(s.tier, "spool"))).filter((name) => name.endsWith(".spool"));
      assert.equal(left.length, backlog, "what could not be uploaded stays in the spool");

      await s.server.startGateway();
      down = false;
      orthanc = await OrthancInstance.start({ workDir, config: s.config });
      await drained(orthanc);
      await checkAfterFault(t, {
        scenario:
          "Orthanc stopped while radosgw is down, started again once it is back (write-behind, S3 on Ceph RGW)",
        orthanc,
        storage: s.storage,
        acknowledged: ledger.acknowledged,
        counts: ledger.counts,
        refusals: ledger.refused,
      }).then((figures) => assert.equal(figures.orphans, 0));
      await assertSpoolEmpty(s.tier);
    } finally {
      if (down) await s.server.startGateway();
      await orthanc.stop();
      await s.cleanup();
    }
  });

  it("refuses uploads cleanly when the disk under the spool is full, and takes them again once it drained", async (t) => {
    const s = await setup();
    let disk: SmallDisk | undefined;
    let orthanc: OrthancInstance | undefined;
    let down = false;
    try {
      disk = await mountSmallDisk(s.tier, 512 * 1024);
      orthanc = await OrthancInstance.start({ workDir: join(s.workDir, "orthanc"), config: s.config });
      const pool = await uniqueCopies(SMALL, 20);
      const ledger = new OperationLedger();
      await killGateway(s.server);
      down = true;
      let next = 0;
      while (next < pool.length && ledger.refused.length < 3) {
        await ledger.upload(orthanc, pool[next] as Buffer, `upload ${next} (radosgw down)`);
        next++;
      }
      t.diagnostic(
        `disk of 512 KiB under the spool: ${ledger.acknowledged.size} uploads acknowledged, then ${ledger.refused.length} refused`,
      );
      assert.ok(ledger.acknowledged.size > 0 && ledger.refused.length === 3, ledger.refused.join("; "));
      for (const line of ledger.refused) assert.match(line, /HTTP 500 .*The file storage is full/s);
      assert.match(await orthanc.log(), /write to the write-behind spool .*: the disk is full/);
      const temporary = (await filesUnder(join(s.tier, "spool"))).filter((name) => name.includes(".tmp-"));
      assert.deepEqual(temporary, [], "no half-written file is left on the full disk");

      await s.server.startGateway();
      down = false;
      await drained(orthanc);
      for (; next < pool.length; next++) {
        assert.ok(
          await ledger.upload(orthanc, pool[next] as Buffer, `upload ${next} (drained)`),
          ledger.refused.join("; "),
        );
      }
      await drained(orthanc);
      await checkAfterFault(t, {
        scenario:
          "disk full (512 KiB) under the spool while radosgw is down, then drained (write-behind, S3 on Ceph RGW)",
        orthanc,
        storage: s.storage,
        acknowledged: ledger.acknowledged,
        counts: ledger.counts,
        refusals: ledger.refused,
      });
      await assertSpoolEmpty(s.tier);
    } finally {
      if (down) await s.server.startGateway();
      await orthanc?.stop();
      await disk?.unmount();
      await s.cleanup();
    }
  });
});
