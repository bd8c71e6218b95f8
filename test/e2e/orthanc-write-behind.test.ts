// Write-behind (OrthancCloudStorage.LocalDisk.WriteBehind, issue 17) under faults, on a real Orthanc with
// AwsS3Storage on Ceph RGW, encrypted: radosgw down for longer than the spool allows, then back; the daemon
// killed -9 in the middle of a drain, with deletes right after; Orthanc killed -9 in the middle of a drain and
// started again; the disk under the spool full. After each: every acknowledged upload reads back
// byte-identical, verify finds every attachment in the bucket and no orphan (nothing Orthanc deleted was
// uploaded), and the spool holds no file. docs/reliability.md#write-behind lists the figures.

import assert from "node:assert/strict";
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it, type TestContext } from "node:test";

import { readSpoolHeader } from "../../src/stores/spool/spool-file.js";
import { filesUnder } from "../../test-support/folder.js";
import { OrthancInstance } from "../../test-support/orthanc.js";
import { startRgw, type RgwServer } from "../../test-support/rgw.js";
import { checkLedgerAfterFault, OperationLedger, type FaultFigures } from "../helpers/consistency.js";
import { SMALL_SAMPLES as SMALL, uniqueCopies } from "../../test-support/dicom-copies.js";
import { encryptedWork } from "../../test-support/encrypted-work.js";
import { serverForFile } from "../helpers/server-for-file.js";
import { metricValue, parseMetrics } from "../helpers/prometheus.js";
import { mountSmallDisk, type SmallDisk } from "../helpers/small-disk.js";
import { isRunning, sleep, waitFor } from "../helpers/wait.js";

const REQUEST_TIMEOUT_S = 2;
/** Far above a drain of a few dozen small objects, and the spool's longest backoff (30 s). */
const DRAIN_MS = 90_000;
const DAEMON_RESTART_MS = 30_000;

const rgw = serverForFile(startRgw);

/**
 * One scenario's world: a bucket of the file's radosgw, encrypted, and Orthanc started on it with the spool
 * at `tier` (LocalDisk.WriteBehind, with `localDisk`); radosgw's gateway stopped and started by the test and
 * always running again at the end.
 */
interface Scenario {
  server: RgwServer;
  workDir: string;
  /** LocalDisk.Path. */
  tier: string;
  config: Record<string, unknown>;
  /** The backend alone, for verify (which never opens the local disk tier). */
  storage: Record<string, unknown>;
  /** The Orthanc running now (a new one after restart()). */
  orthanc: OrthancInstance;
  ledger: OperationLedger;
  /** radosgw killed -9, waited for. */
  stopGateway(): Promise<void>;
  startGateway(): Promise<void>;
  /** Orthanc started again on the same work folder and configuration (after a stop or a kill). */
  restart(): Promise<void>;
  /** Upload every copy of `pool` (numbered from `first`), each of which must be acknowledged. */
  uploadAll(pool: readonly Buffer[], label: string, first?: number): Promise<void>;
  /** The shared check after the fault (every upload of the ledger), then the spool empty. */
  check(t: TestContext, scenario: string): Promise<FaultFigures>;
}

interface ScenarioOptions {
  /** More of OrthancCloudStorage.LocalDisk. */
  localDisk?: Record<string, unknown>;
  /** Run before Orthanc starts (a small disk mounted on the tier); `undo` after it stopped. */
  beforeStart?(tier: string): Promise<{ undo(): Promise<void> }>;
  /** radosgw stopped before Orthanc starts. */
  gatewayDownAtStart?: boolean;
}

/** Runs `body` in a new scenario, then stops everything: Orthanc, the bucket and folder; radosgw runs again. */
async function writeBehind(options: ScenarioOptions, body: (s: Scenario) => Promise<void>): Promise<void> {
  const server = await rgw;
  const work = await encryptedWork(await server.bucket("write-behind"), {
    prefix: "ocs-write-behind-",
    keyByte: 5,
    section: { RequestTimeout: REQUEST_TIMEOUT_S, ConnectionTimeout: REQUEST_TIMEOUT_S, MaxRetries: 1 },
  });
  const tier = join(work.workDir, "tier");
  let down = false;
  let mounted: { undo(): Promise<void> } | undefined;
  let orthanc: OrthancInstance | undefined;
  try {
    await mkdir(tier);
    const config = {
      ...work.config,
      OrthancCloudStorage: {
        LocalDisk: { Path: tier, WriteBehind: true, PendingReadWait: 0, ...options.localDisk },
      },
    };
    const start = (): Promise<OrthancInstance> =>
      OrthancInstance.start({ workDir: join(work.workDir, "orthanc"), config });
    mounted = await options.beforeStart?.(tier);
    if (options.gatewayDownAtStart === true) {
      await killGateway(server);
      down = true;
    }
    orthanc = await start();
    const ledger = new OperationLedger();
    const s: Scenario = {
      server,
      workDir: work.workDir,
      tier,
      config,
      storage: work.config,
      orthanc,
      ledger,
      async stopGateway() {
        await killGateway(server);
        down = true;
      },
      async startGateway() {
        await server.startGateway();
        down = false;
      },
      async restart() {
        orthanc = s.orthanc = await start();
      },
      async uploadAll(pool, label, first = 0) {
        for (const [i, data] of pool.entries()) {
          assert.ok(
            await ledger.upload(s.orthanc, data, `upload ${first + i} (${label})`),
            ledger.refused.join("; "),
          );
        }
      },
      async check(t, scenario) {
        const figures = await checkLedgerAfterFault(t, ledger, {
          scenario: `${scenario} (write-behind, S3 on Ceph RGW)`,
          orthanc: s.orthanc,
          storage: work.config,
        });
        await assertSpoolEmpty(tier);
        return figures;
      },
    };
    await body(s);
  } finally {
    if (down) await server.startGateway();
    await orthanc?.stop();
    await mounted?.undo();
    await work.cleanup();
  }
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
    await writeBehind({ localDisk: { MaxPendingSize: 1 } }, async (s) => {
      const { orthanc, ledger } = s;
      const pool = await uniqueCopies(SMALL, 30);
      await s.uploadAll(pool.slice(0, 4), "up");
      await drained(orthanc);
      await s.stopGateway();
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
      const full =
        /would pass LocalDisk\.MaxPendingSize \(1048576 bytes\): uploads to s3:\/\/.* have failed since/;
      assert.match(await orthanc.logMatching(full), full);
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

      await s.startGateway();
      t.diagnostic(`the spool drained ${await drained(orthanc)} ms after radosgw answered again`);
      await s.uploadAll(pool.slice(next), "back", next);
      await drained(orthanc);
      await s.check(t, "radosgw down past MaxPendingSize (1 MB), then back");
    });
  });

  it("loses nothing and uploads nothing deleted when the daemon is killed -9 in the middle of a drain", async (t) => {
    // One upload at a time, so that the drain lasts long enough to be cut in the middle.
    await writeBehind({ localDisk: { UploadConcurrency: 1 } }, async (s) => {
      const { orthanc, ledger } = s;
      await s.stopGateway();
      await s.uploadAll(await uniqueCopies(SMALL, 12), "radosgw down");
      const backlog = (await spoolReport(orthanc)).objects;
      await s.startGateway();
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
      const figures = await s.check(t, "daemon killed -9 mid-drain, 4 instances deleted after");
      assert.equal(figures.orphans, 0, "nothing deleted was left in the bucket");
    });
  });

  it("loses nothing when Orthanc is killed -9 in the middle of a drain and started again", async (t) => {
    // No drain at exit: the daemon of the killed Orthanc leaves its uploads to the next start.
    await writeBehind({ localDisk: { ShutdownDrainTimeout: 0, UploadConcurrency: 1 } }, async (s) => {
      const { ledger } = s;
      await s.stopGateway();
      await s.uploadAll(await uniqueCopies(SMALL, 12), "radosgw down");
      const backlog = (await spoolReport(s.orthanc)).objects;
      await s.startGateway();
      const left = await midDrain(s.orthanc, backlog);
      const daemons = await s.orthanc.daemonPids();
      await s.orthanc.kill();
      for (const pid of daemons)
        await waitFor(async () => !(await isRunning(pid)), 20_000, "the daemon's exit");
      t.diagnostic(`Orthanc killed -9 with ${left} of ${backlog} objects still in the spool`);
      assert.ok(left > 0, "killed in the middle of the drain");
      await s.restart();
      const deleted = [...ledger.acknowledged.keys()].slice(0, 2);
      await deleteInstances(t, s.orthanc, deleted);
      for (const id of deleted) ledger.acknowledged.delete(id);
      await drained(s.orthanc);
      const figures = await s.check(t, "Orthanc killed -9 mid-drain, restarted, 2 instances deleted");
      assert.equal(figures.orphans, 0, "nothing deleted was left in the bucket");
    });
  });

  it("bounds the wait of Orthanc's shutdown by ShutdownDrainTimeout; the rest drains at the next start", async (t) => {
    await writeBehind({ localDisk: { ShutdownDrainTimeout: 4 } }, async (s) => {
      await s.stopGateway();
      await s.uploadAll(await uniqueCopies(SMALL, 3), "radosgw down");
      const backlog = (await spoolReport(s.orthanc)).objects;
      const t0 = Date.now();
      await s.orthanc.stop();
      const stopMs = Date.now() - t0;
      t.diagnostic(`Orthanc stopped in ${stopMs} ms with ${backlog} objects spooled and radosgw down`);
      assert.ok(stopMs >= 4000, "the shutdown waited for the drain");
      assert.ok(stopMs < 4000 + 20_000, "no longer than ShutdownDrainTimeout, and the time to stop");
      const left = (await filesUnder(join(s.tier, "spool"))).filter((name) => name.endsWith(".spool"));
      assert.equal(left.length, backlog, "what could not be uploaded stays in the spool");

      await s.startGateway();
      await s.restart();
      await drained(s.orthanc);
      const figures = await s.check(
        t,
        "Orthanc stopped while radosgw is down, started again once it is back",
      );
      assert.equal(figures.orphans, 0);
    });
  });

  it("when the supervisor is killed, its orphan daemon hands the spool over at once to the new one; nothing lost", async (t) => {
    // A long drain at exit: without the handover, the new daemon would wait for the orphan's 60 s and more.
    await writeBehind({ localDisk: { ShutdownDrainTimeout: 60 } }, async (s) => {
      const pool = await uniqueCopies(SMALL, 3);
      await s.stopGateway();
      await s.uploadAll(pool.slice(0, 6), "radosgw down");
      const orphans = await s.orthanc.daemonPids();
      for (const pid of await s.orthanc.supervisorPids()) process.kill(pid, "SIGKILL");
      const t0 = Date.now();
      // The bridge starts another supervisor; its daemon serves once it holds the spool's lock.
      await waitFor(
        async () => (await spoolReport(s.orthanc).catch(() => undefined)) !== undefined,
        DAEMON_RESTART_MS,
        "a new daemon serving",
      );
      const ms = Date.now() - t0;
      t.diagnostic(`supervisor killed -9 with radosgw down: a new daemon served ${ms} ms later`);
      assert.ok(ms < 20_000, `the new daemon did not wait out the orphan's drain (${ms} ms)`);
      for (const pid of orphans)
        await waitFor(async () => !(await isRunning(pid)), 10_000, `the orphan daemon ${pid} to exit`);
      await s.uploadAll(pool.slice(6), "new daemon, radosgw down", 6);
      await s.startGateway();
      await drained(s.orthanc);
      await s.check(t, "supervisor killed -9 while radosgw is down, ShutdownDrainTimeout 60 s");
    });
  });

  it("starts while radosgw is down, says so, takes uploads into the spool; uploads them once it is back", async (t) => {
    await writeBehind({ gatewayDownAtStart: true }, async (s) => {
      await waitFor(
        async () =>
          /write-behind: the backend s3:\/\/.* does not answer at start .*This node starts anyway/.test(
            await s.orthanc.log(),
          ),
        DRAIN_MS,
        "the warning that radosgw does not answer",
      );
      const health = await s.orthanc.request("GET", "/cloud-storage/health");
      const report = (await health.json()) as { backend: { reachable: boolean } };
      assert.equal(health.status, 503, "unhealthy while the backend does not answer");
      assert.equal(report.backend.reachable, false);
      await s.uploadAll(await uniqueCopies(SMALL, 2), "radosgw down since the start");
      // One object per instance at least (Orthanc adds the DICOM up to its pixel data for some).
      const spooled = (await spoolReport(s.orthanc)).objects;
      assert.ok(spooled >= s.ledger.acknowledged.size, `${spooled} objects wait in the spool`);
      await s.startGateway();
      t.diagnostic(`the spool drained ${await drained(s.orthanc)} ms after radosgw answered`);
      await s.check(t, "Orthanc started while radosgw is down, then radosgw back");
    });
  });

  it("refuses uploads cleanly when the disk under the spool is full, and takes them again once it drained", async (t) => {
    const smallDisk = async (tier: string): Promise<{ undo(): Promise<void> }> => {
      const disk: SmallDisk = await mountSmallDisk(tier, 512 * 1024);
      return { undo: () => disk.unmount() };
    };
    await writeBehind({ beforeStart: smallDisk }, async (s) => {
      const { orthanc, ledger } = s;
      const pool = await uniqueCopies(SMALL, 20);
      await s.stopGateway();
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
      assert.match(
        await orthanc.logMatching(/write to the write-behind spool .*: the disk is full/),
        /write to the write-behind spool .*: the disk is full/,
      );
      const temporary = (await filesUnder(join(s.tier, "spool"))).filter((name) => name.includes(".tmp-"));
      assert.deepEqual(temporary, [], "no half-written file is left on the full disk");

      await s.startGateway();
      await drained(orthanc);
      // In batches that fit the small disk at once, whatever pace the machine's load gives radosgw.
      for (let from = next; from < pool.length; from += 8) {
        await s.uploadAll(pool.slice(from, from + 8), "drained", from);
        await drained(orthanc);
      }
      await s.check(t, "disk full (512 KiB) under the spool while radosgw is down, then drained");
    });
  });
});
