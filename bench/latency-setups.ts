// What the ingest and reread targets share (issue 17): Orthanc with its built-in disk storage beside Orthanc
// with our plugin on Ceph RGW behind a latency proxy (test-support/latency-proxy.ts, 10 ms each way: a 20 ms
// round trip), one proxy per Orthanc so that each one's requests are counted apart; the local disk tier's
// options (`OrthancCloudStorage.LocalDisk`) per setup; and the DICOM files, copies of the small samples with
// new UIDs so that Orthanc stores every one.

import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { forEachParallel } from "../src/ops/parallel.js";
import { daemonScript } from "../test-support/daemon-process.js";
import { writeUniqueCopies } from "../test-support/dicom-copies.js";
import { startLatencyProxy, type LatencyProxy, type ProxyCounts } from "../test-support/latency-proxy.js";
import { OrthancInstance, type OrthancOptions } from "../test-support/orthanc.js";
import { dicomDir } from "../test-support/paths.js";
import { startRgw, type RgwServer } from "../test-support/rgw.js";

/** Each way: the 20 ms round trip. */
export const DELAY_MS = 10;
/** "Small" DICOM files: the samples up to this size. */
const SMALL_FILE_BYTES = 300 * 1000;
/** Samples left out: storescu proposes no presentation context for their SOP classes (unknown, or newer than it). */
const LEFT_OUT = new Set(["unknown-sop-class-uid.dcm", "encapsulated-stl-M3D.dcm"]);

export interface LatencySetup {
  name: string;
  /** Whether this is Orthanc's built-in storage (the baseline): no proxy, nothing to count. */
  builtIn: boolean;
  /** `OrthancCloudStorage.LocalDisk` without its Path (added in the Orthanc's work folder); none: no tier. */
  localDisk?: Record<string, unknown>;
  /** The proxy's delay each way; DELAY_MS by default, 0 to see what is left once the network is out. */
  delayMs?: number;
}

/** A started setup: its Orthanc, and the proxy its storage requests go through (none for the built-in). */
export interface RunningSetup {
  setup: LatencySetup;
  /** The Orthanc now running: a new instance after each restart(). */
  orthanc: OrthancInstance;
  proxy?: LatencyProxy;
  /** Where `LocalDisk.Path` points (none without the tier). */
  localDiskPath?: string;
  /**
   * Stop Orthanc (and the daemon with it), run `meanwhile` while nothing runs, start it again on the same
   * work folder (index, storage, local disk), configuration and bucket.
   */
  restart(meanwhile?: () => Promise<void>): Promise<void>;
  stop(): Promise<void>;
}

/** A RunningSetup around `first`, restarted with the same options. */
function running(
  setup: LatencySetup,
  first: OrthancInstance,
  options: OrthancOptions,
  extra: { proxy?: LatencyProxy; localDiskPath?: string; cleanup(): Promise<void> },
): RunningSetup {
  const started: RunningSetup = {
    setup,
    orthanc: first,
    ...(extra.proxy === undefined ? {} : { proxy: extra.proxy }),
    ...(extra.localDiskPath === undefined ? {} : { localDiskPath: extra.localDiskPath }),
    async restart(meanwhile) {
      await started.orthanc.stop();
      await meanwhile?.();
      started.orthanc = await OrthancInstance.start(options);
    },
    async stop() {
      await started.orthanc.destroy();
      await extra.cleanup();
    },
  };
  return started;
}

/** Start Orthanc for `setup`: the built-in storage, or our plugin on a new bucket of `rgw` behind a proxy. */
export async function startSetup(setup: LatencySetup, rgw: RgwServer): Promise<RunningSetup> {
  const workDir = await mkdtemp(join(tmpdir(), "ocs-bench-latency-"));
  if (setup.builtIn) {
    // Orthanc's defaults: SyncStorageArea true, as a site's built-in disk storage runs (and as the spool syncs).
    const options: OrthancOptions = { workDir, config: { Plugins: [] } };
    const orthanc = await OrthancInstance.start(options);
    return running(setup, orthanc, options, { cleanup: async () => {} });
  }
  const bucket = await rgw.bucket("bench-latency");
  const proxy = await startLatencyProxy({ target: rgw.endpoint, delayMs: setup.delayMs ?? DELAY_MS });
  try {
    const plugin: Record<string, unknown> = { Node: process.execPath, Daemon: daemonScript };
    const localDiskPath = setup.localDisk === undefined ? undefined : join(workDir, "local-disk");
    if (setup.localDisk !== undefined) plugin.LocalDisk = { Path: localDiskPath, ...setup.localDisk };
    const options: OrthancOptions = {
      workDir,
      config: { ...bucket.orthancConfig({ Endpoint: proxy.url }), OrthancCloudStorage: plugin },
    };
    const orthanc = await OrthancInstance.start(options);
    return running(setup, orthanc, options, {
      proxy,
      ...(localDiskPath === undefined ? {} : { localDiskPath }),
      cleanup: async () => {
        await proxy.stop();
        await bucket.cleanup();
      },
    });
  } catch (error) {
    await proxy.stop();
    await bucket.cleanup();
    throw error;
  }
}

/** Start every setup; on a failure, stop those already started. */
export async function startSetups(setups: readonly LatencySetup[], rgw: RgwServer): Promise<RunningSetup[]> {
  const running: RunningSetup[] = [];
  try {
    for (const setup of setups) running.push(await startSetup(setup, rgw));
    return running;
  } catch (error) {
    for (const started of running) await started.stop();
    throw error;
  }
}

/** Ceph RGW started, every setup on it, `measure` run on them, then all stopped, also on a failure. */
export async function withSetups<T>(
  setups: readonly LatencySetup[],
  measure: (running: RunningSetup[]) => Promise<T>,
): Promise<T> {
  const rgw = await startRgw();
  try {
    const running = await startSetups(setups, rgw);
    try {
      return await measure(running);
    } finally {
      for (const setup of running) await setup.stop();
    }
  } finally {
    await rgw.stop();
  }
}

/** The small samples, in name order. */
export async function smallSampleNames(): Promise<string[]> {
  const names = (await readdir(dicomDir)).filter((name) => name.endsWith(".dcm") && !LEFT_OUT.has(name));
  const sizes = await Promise.all(names.map(async (name) => (await stat(join(dicomDir, name))).size));
  return names.filter((_, i) => (sizes[i] as number) <= SMALL_FILE_BYTES).sort();
}

/**
 * `count` copies of the small samples (or of `names`) with new UIDs (and `tags`), in a new folder;
 * `remove()` deletes it.
 */
export async function dicomCopies(
  count: number,
  tags: Record<string, string> = {},
  names?: string[],
): Promise<{ paths: string[]; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), "ocs-bench-dicom-"));
  try {
    const paths = await writeUniqueCopies(dir, names ?? (await smallSampleNames()), count, tags);
    return { paths, remove: () => rm(dir, { recursive: true, force: true }) };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

/** Delete every instance of `orthanc` (not timed: between passes), 4 at a time. */
export async function deleteAllInstances(orthanc: OrthancInstance): Promise<void> {
  const ids = await orthanc.json<string[]>("/instances");
  await forEachParallel(ids, 4, async (id) => {
    const response = await orthanc.request("DELETE", `/instances/${id}`);
    await response.arrayBuffer();
    if (!response.ok) throw new Error(`delete instance ${id}: HTTP ${response.status}`);
  });
}

/** What a setup's proxy counted over a number of operations, summed over the rounds. */
export class ProxyTally implements ProxyCounts {
  requests = 0;
  turns = 0;
  connections = 0;
  operations = 0;

  /**
   * Starts counting at `proxy` (none: the built-in storage, nothing to count); the function returned adds
   * what it counted since, as the cost of `operations` operations.
   */
  from(proxy: LatencyProxy | undefined): (operations: number) => void {
    if (proxy === undefined) return () => undefined;
    const since = proxy.counts();
    return (operations) => {
      const counts = proxy.countsSince(since);
      this.requests += counts.requests;
      this.turns += counts.turns;
      this.connections += counts.connections;
      this.operations += operations;
    };
  }

  /** Round trips per operation. */
  get turnsPerOperation(): number {
    return this.turns / this.operations;
  }

  /** The counts per operation: requests, round trips (client turns), new connections. */
  perOperation(): string {
    const each = (value: number): string => (value / this.operations).toFixed(2);
    return (
      `${each(this.requests)} requests, ${each(this.turns)} round trips per operation, ` +
      `${this.connections} new connection(s)`
    );
  }
}
