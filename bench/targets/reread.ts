// Target `reread` (issue 17): a study of 60 instances (copies of the small samples with new UIDs, one
// patient, one study, one series) read whole (`/instances/{id}/file`) twice by one client, one instance at a
// time, from Orthanc with its built-in disk storage, with our plugin on Ceph RGW behind a 20 ms round trip
// (bench/latency-setups.ts), and with the plugin and its read cache (`LocalDisk.ReadCacheSize`); Orthanc's
// storage cache off. Each round uploads the study anew, restarts every setup's Orthanc (the creates fill the
// read cache, so the cache setup's cache folder is emptied while it is stopped: the first pass is a cold
// cache, every read a miss), times the two passes apart, then deletes the study (neither the upload, the
// restart nor the delete timed). Ratios: setup time / built-in time for each pass, and the first pass with
// the cache / without it; the median of the rounds (lower is better). The requests, round trips and new
// connections each read costs are counted at the setup's latency proxy.

import { randomUUID } from "node:crypto";
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";

import { CACHE_FOLDER } from "../../src/area/local-disk-tier.js";
import {
  ProxyTally,
  deleteAllInstances,
  dicomCopies,
  withSetups,
  type LatencySetup,
  type RunningSetup,
} from "../latency-setups.js";
import { fixed, median, roundOrder } from "../measure.js";
import type { BenchTarget, TargetResult } from "../target.js";

/** Instances in the study (the issue: 50 or more). */
const INSTANCES = 60;
/** The second pass with the read cache: at most this times the built-in disk's. */
const CACHED_GOAL = 1.2;
/** The first pass with the read cache: at most this times the first pass without it. */
const FIRST_PASS_GOAL = 1.05;

const PLUGIN = "plugin on RGW";
const SETUPS: readonly LatencySetup[] = [
  { name: "built-in disk", builtIn: true },
  { name: PLUGIN, builtIn: false },
  // The same without the delay: what a read costs beyond its round trip (RGW's own time, the plugin's path).
  { name: "plugin on RGW, no delay", builtIn: false, delayMs: 0 },
  // The creates fill the read cache too (put fills it): the cache folder is emptied before the first pass.
  { name: "plugin on RGW + read cache", builtIn: false, localDisk: { ReadCacheSize: 1024 } },
];

const PASSES = ["first pass", "second pass"] as const;

/** A DICOM UID under the UUID-derived root (2.25), as dcmodify and Orthanc accept. */
function uuidUid(): string {
  return `2.25.${BigInt(`0x${randomUUID().replaceAll("-", "")}`).toString()}`;
}

export const reread: BenchTarget = {
  name: "reread",
  async run({ rounds, log }) {
    const copies = await dicomCopies(INSTANCES, {
      "(0010,0010)": "OCS^BENCH",
      "(0010,0020)": "OCS-BENCH-REREAD",
      "(0020,000D)": uuidUid(),
      "(0020,000E)": uuidUid(),
    });
    try {
      const files = await Promise.all(copies.paths.map((path) => readFile(path)));
      const megabytes = files.reduce((sum, file) => sum + file.length, 0) / 1e6;
      log(`a study of ${INSTANCES} instances (${fixed(megabytes, 1)} MB), read whole twice per round`);
      return await withSetups(SETUPS, (running) => measure(running, files, rounds, log));
    } finally {
      await copies.remove();
    }
  },
};

async function measure(
  running: RunningSetup[],
  files: Buffer[],
  rounds: number,
  log: (line: string) => void,
): Promise<TargetResult[]> {
  // times[setup][pass]: one value per round.
  const times = running.map(() => [[] as number[], [] as number[]]);
  const counted = running.map(() => [new ProxyTally(), new ProxyTally()]);
  for (let round = 0; round < rounds; round++) {
    for (const s of roundOrder(running.length, round)) {
      const { proxy } = running[s] as RunningSetup;
      const uploader = (running[s] as RunningSetup).orthanc;
      const studies = new Set<string>();
      const ids: string[] = [];
      for (const file of files) {
        const answer = await uploader.upload(file);
        if (answer.Status !== "Success") throw new Error(`upload: Orthanc answered ${answer.Status}`);
        studies.add(answer.ParentStudy);
        ids.push(answer.ID);
      }
      if (studies.size !== 1) throw new Error(`the copies made ${studies.size} studies in Orthanc, not one`);
      // Every setup restarted alike (a new daemon, new connections to RGW); the cache emptied meanwhile.
      const setup = running[s] as RunningSetup;
      await setup.restart(async () => {
        if (setup.localDiskPath !== undefined)
          await rm(join(setup.localDiskPath, CACHE_FOLDER), { recursive: true, force: true });
      });
      const { orthanc } = setup;
      for (const pass of [0, 1]) {
        const counting = (counted[s]?.[pass] as ProxyTally).from(proxy);
        const started = performance.now();
        for (const id of ids) {
          const response = await orthanc.request("GET", `/instances/${id}/file`);
          await response.arrayBuffer();
          if (!response.ok) throw new Error(`GET /instances/${id}/file: HTTP ${response.status}`);
        }
        times[s]?.[pass]?.push(performance.now() - started);
        counting(ids.length);
      }
      await deleteAllInstances(orthanc);
    }
  }

  const results: TargetResult[] = [];
  const ratioTo = (s: number, pass: number, base: number): number =>
    median((times[s]?.[pass] as number[]).map((ms, round) => ms / (times[base]?.[pass]?.[round] as number)));
  const plugin = running.findIndex(({ setup }) => setup.name === PLUGIN);
  for (const [pass, passName] of PASSES.entries()) {
    for (const [s, { setup }] of running.entries()) {
      const own = median(times[s]?.[pass] as number[]);
      log(
        `${passName}, ${setup.name}: ${fixed(own / 1000, 2)} s for ${INSTANCES} reads ` +
          `(${fixed(own / INSTANCES, 1)} ms each)` +
          (setup.builtIn ? "" : `: ${fixed(ratioTo(s, pass, 0), 2)}x the built-in disk's time`),
      );
      const total = counted[s]?.[pass];
      if (!setup.builtIn && total !== undefined && total.operations > 0)
        log(`  at its proxy: ${total.perOperation()}`);
    }
  }
  for (const [s, { setup }] of running.entries()) {
    if (setup.localDisk === undefined) continue;
    const firstVsPlugin = ratioTo(s, 0, plugin);
    log(`first pass, ${setup.name} / ${PLUGIN}: ${fixed(firstVsPlugin, 2)}x`);
    results.push(
      {
        label: `reread: second pass, ${setup.name} / built-in disk`,
        measured: ratioTo(s, 1, 0),
        goal: CACHED_GOAL,
        higherIsBetter: false,
        unit: "x",
      },
      {
        label: `reread: first pass, ${setup.name} / ${PLUGIN}`,
        measured: firstVsPlugin,
        goal: FIRST_PASS_GOAL,
        higherIsBetter: false,
        unit: "x",
      },
    );
  }
  const pluginReads = counted[plugin]?.[0];
  if (pluginReads !== undefined && pluginReads.operations > 0) {
    results.push({
      label: `reread: round trips per read, ${PLUGIN}`,
      measured: pluginReads.turnsPerOperation,
      goal: 1,
      higherIsBetter: false,
      unit: "round trips",
    });
  }
  return results;
}
