// Target 5 (issue 8): 16 concurrent uploads of 256 MB with encryption on, through the bridge protocol into
// a daemon started alone; its peak RSS (VmHWM) must stay under 600 MB, on the folder backend and on Ceph
// RGW. Then MaxConcurrentInputSize at two values, to show the peak follows the budget as documented.
// On RGW the objects are 32 MB, in one round: its test OSD keeps every byte in memory, slows to a crawl
// holding 4 GB and takes about 25 MB/s here; each streamed upload holds one 8 MiB part at a time whatever
// the object's size, so 32 MB objects (4 parts each) load the daemon the same way.

import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { startRgw, type RgwServer } from "../../test-support/rgw.js";
import { LoadedDaemon, MIB, megabytes, randomPayload } from "../daemon-load.js";
import { median } from "../measure.js";
import type { BenchTarget, TargetResult } from "../target.js";

const UPLOADS = 16;
const OBJECT_BYTES = 256 * MIB;
const RGW_OBJECT_BYTES = 32 * MIB;
const GOAL_MB = 600;
/** A streamed encryption counts 16 MiB and holds about that: 1 MB of RSS per MB of budget, within 25 %. */
const BUDGET_SLOPE_GOAL = 1.25;
/** RGW's OSD keeps objects in memory (memstore): room for 16 objects of 32 MB at once, and some. */
const RGW_MEMSTORE_BYTES = 1536 * MIB;
/** Rounds are long (4 GB on the folder): two give a median time; the peak is the worst of both. */
const MAX_ROUNDS = 2;

interface Run {
  label: string;
  idleMb: number;
  peakMb: number;
  medianMs: number;
}

export const memory: BenchTarget = {
  name: "memory",
  async run({ rounds, log }) {
    const scratch = await mkdtemp(join(tmpdir(), "ocs-bench-memory-"));
    const previousMemstore = process.env.RGW_MEMSTORE_BYTES;
    process.env.RGW_MEMSTORE_BYTES = String(RGW_MEMSTORE_BYTES);
    let rgw: RgwServer | undefined;
    try {
      const key = join(scratch, "master.key");
      await writeFile(key, Buffer.alloc(32, 7).toString("base64"), { mode: 0o600 });
      const encryption = (budgetMb?: number) => ({
        MasterKey: [1, key],
        ...(budgetMb === undefined ? {} : { MaxConcurrentInputSize: budgetMb }),
      });
      const folder = (budgetMb?: number) => ({
        LocalObjectStorage: { Path: join(scratch, "objects"), StorageEncryption: encryption(budgetMb) },
      });
      rgw = await startRgw();
      const bucket = await rgw.bucket("bench-memory");
      const s3 = (budgetMb?: number) => bucket.orthancConfig({ StorageEncryption: encryption(budgetMb) });

      const payload = await randomPayload(OBJECT_BYTES);
      const times = Math.max(1, Math.min(rounds, MAX_ROUNDS));
      log(
        `${UPLOADS} concurrent creates of ${megabytes(OBJECT_BYTES)} MB, A1, ${times} rounds ` +
          `(on RGW: ${megabytes(RGW_OBJECT_BYTES)} MB, 1 round); daemon RSS`,
      );
      log(
        `${"setup".padEnd(44)} ${"idle MB".padStart(8)} ${"peak MB".padStart(8)} ${"median s".padStart(9)}`,
      );
      const measure = async (label: string, configuration: unknown, objectBytes: number): Promise<Run> => {
        const rgwObject = objectBytes === RGW_OBJECT_BYTES;
        const run = await loadDaemon(
          label,
          configuration,
          payload.subarray(0, objectBytes),
          rgwObject ? 1 : times,
        );
        log(
          `${label.padEnd(44)} ${run.idleMb.toFixed(0).padStart(8)} ${run.peakMb.toFixed(0).padStart(8)} ` +
            `${(run.medianMs / 1000).toFixed(1).padStart(9)}`,
        );
        return run;
      };
      const onFolder = await measure("folder, MaxConcurrentInputSize 1024 (default)", folder(), OBJECT_BYTES);
      const onRgw = await measure("RGW, MaxConcurrentInputSize 1024 (default)", s3(), RGW_OBJECT_BYTES);
      const rgwBudgets: Array<[number, Run]> = [];
      for (const budgetMb of [32, 128]) {
        const run = await measure(`RGW, MaxConcurrentInputSize ${budgetMb}`, s3(budgetMb), RGW_OBJECT_BYTES);
        rgwBudgets.push([budgetMb, run]);
      }
      await bucket.cleanup();

      const results: TargetResult[] = [
        peakResult(`peak daemon RSS, ${UPLOADS} x 256 MB A1 uploads, folder`, onFolder),
        peakResult(`peak daemon RSS, ${UPLOADS} x 32 MB A1 uploads, RGW`, onRgw),
      ];
      // The budget bounds what streamed encryptions hold: each counts 16 MiB (ENCRYPT_WINDOW_BYTES), so the
      // RSS each MB of budget adds should be about 1 MB, as docs/configuration.md says.
      const [[lowMb, low], [highMb, high]] = rgwBudgets as [[number, Run], [number, Run]];
      results.push({
        label: `RGW: daemon RSS added per MB of MaxConcurrentInputSize (${lowMb} to ${highMb} MB)`,
        measured: (high.peakMb - low.peakMb) / (highMb - lowMb),
        goal: BUDGET_SLOPE_GOAL,
        higherIsBetter: false,
        unit: "x",
      });
      return results;
    } finally {
      await rgw?.stop();
      if (previousMemstore === undefined) delete process.env.RGW_MEMSTORE_BYTES;
      else process.env.RGW_MEMSTORE_BYTES = previousMemstore;
      await rm(scratch, { recursive: true, force: true });
    }
  },
};

function peakResult(label: string, run: Run): TargetResult {
  return { label, measured: run.peakMb, goal: GOAL_MB, higherIsBetter: false, unit: "MB" };
}

/** A fresh daemon per setup, so its VmHWM is the peak of this setup alone. */
async function loadDaemon(
  label: string,
  configuration: unknown,
  payload: Buffer,
  rounds: number,
): Promise<Run> {
  const daemon = await LoadedDaemon.start(configuration);
  try {
    const idle = await daemon.memory();
    const times: number[] = [];
    for (let round = 0; round < rounds; round++)
      times.push(await daemon.createConcurrently(UPLOADS, payload));
    const { peak } = await daemon.memory();
    return { label, idleMb: megabytes(idle.rss), peakMb: megabytes(peak), medianMs: median(times) };
  } finally {
    await daemon.stop();
  }
}
