// Target 1, bridge overhead: uploads and reads of the sample DICOM files through a real Orthanc, with its
// built-in filesystem storage (the baseline) and with our plugin on the folder backend, at 1 and 8
// concurrent clients. The Orthancs run side by side and are measured in turn within each round; each
// round's ratio is baseline time / our time (1.0: as fast, above: faster), and the target reports the
// median of the rounds. Ours with A1 encryption is measured too, for the detail lines only.

import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { OrthancInstance } from "../../test-support/orthanc.js";
import {
  fixed,
  median,
  megabytesPerSecond,
  roundOrder,
  sampleDicomFiles,
  timeParallel,
  totalBytes,
  type SampleFile,
} from "../measure.js";
import type { BenchTarget, TargetResult } from "../target.js";

const GOAL = 0.9;
const CONCURRENCIES = [1, 8];
/** Passes over the files per measurement: one pass at 8 clients takes a few hundred ms, too short to time alone. */
const PASSES = 2;

interface Setup {
  name: string;
  /** Top-level configuration options for this Orthanc (its work folder given). */
  config(workDir: string): Promise<Record<string, unknown>>;
}

const SETUPS: readonly Setup[] = [
  // Orthanc's own storage; SyncStorageArea keeps its default (true), as ours does through Fsync.
  { name: "built-in filesystem", config: () => Promise.resolve({ Plugins: [] }) },
  {
    name: "ours, folder",
    config: (workDir) =>
      Promise.resolve({
        LocalObjectStorage: { Path: join(workDir, "objects"), StorageEncryption: { Enable: false } },
      }),
  },
  {
    name: "ours, folder, A1",
    config: async (workDir) => {
      const keyFile = join(workDir, "master.key");
      await writeFile(keyFile, Buffer.alloc(32, 7).toString("base64"), { mode: 0o600 });
      return {
        LocalObjectStorage: {
          Path: join(workDir, "objects"),
          StorageEncryption: { MasterKey: [1, keyFile] },
        },
      };
    },
  },
];

/** Milliseconds of one round for one Orthanc and one concurrency. */
interface RoundTiming {
  uploadMs: number;
  readMs: number;
}

export const bridge: BenchTarget = {
  name: "bridge",
  async run({ rounds, log }) {
    const files = await sampleDicomFiles();
    const megabytes = (totalBytes(files) * PASSES) / 1e6;
    log(
      `${files.length} sample DICOM files uploaded then read whole (/file), ${PASSES} passes (${fixed(megabytes, 1)} MB) per round`,
    );
    const orthancs: OrthancInstance[] = [];
    try {
      for (const setup of SETUPS) {
        const workDir = await mkdtemp(join(tmpdir(), "ocs-bench-bridge-"));
        orthancs.push(await OrthancInstance.start({ workDir, config: await setup.config(workDir) }));
      }
      // timings[concurrency][setup][round]
      const timings = CONCURRENCIES.map(() => SETUPS.map((): RoundTiming[] => []));
      for (let round = 0; round < rounds; round++) {
        for (const [c, concurrency] of CONCURRENCIES.entries()) {
          for (const s of roundOrder(SETUPS.length, round)) {
            timings[c]?.[s]?.push(await measureRound(orthancs[s] as OrthancInstance, files, concurrency));
          }
        }
      }
      const results: TargetResult[] = [];
      for (const [c, concurrency] of CONCURRENCIES.entries()) {
        const bySetup = timings[c] as RoundTiming[][];
        const baseline = bySetup[0] as RoundTiming[];
        log(`${concurrency} client(s), median of ${rounds} rounds:`);
        for (const [s, setup] of SETUPS.entries()) {
          const own = bySetup[s] as RoundTiming[];
          const upload = median(own.map((t) => t.uploadMs));
          const read = median(own.map((t) => t.readMs));
          const uploadRatio = median(own.map((t, r) => (baseline[r] as RoundTiming).uploadMs / t.uploadMs));
          const readRatio = median(own.map((t, r) => (baseline[r] as RoundTiming).readMs / t.readMs));
          log(
            `  ${setup.name.padEnd(20)} upload ${fixed(upload, 0, 5)} ms (${fixed(megabytesPerSecond(megabytes * 1e6, upload), 1, 5)} MB/s, ${fixed(uploadRatio, 2)}x)` +
              `   read ${fixed(read, 0, 5)} ms (${fixed(megabytesPerSecond(megabytes * 1e6, read), 1, 5)} MB/s, ${fixed(readRatio, 2)}x)`,
          );
          if (setup.name === "ours, folder") {
            results.push(
              {
                label: `bridge: uploads, ${concurrency} client(s), ours / built-in`,
                measured: uploadRatio,
                goal: GOAL,
                higherIsBetter: true,
                unit: "x",
              },
              {
                label: `bridge: reads, ${concurrency} client(s), ours / built-in`,
                measured: readRatio,
                goal: GOAL,
                higherIsBetter: true,
                unit: "x",
              },
            );
          }
        }
      }
      return results;
    } finally {
      for (const orthanc of orthancs) await orthanc.destroy();
    }
  },
};

/** PASSES times: upload every file, read each back whole, then delete them (not timed), `concurrency` at a time. */
async function measureRound(
  orthanc: OrthancInstance,
  files: SampleFile[],
  concurrency: number,
): Promise<RoundTiming> {
  const total: RoundTiming = { uploadMs: 0, readMs: 0 };
  for (let pass = 0; pass < PASSES; pass++) {
    const { uploadMs, readMs } = await measurePass(orthanc, files, concurrency);
    total.uploadMs += uploadMs;
    total.readMs += readMs;
  }
  return total;
}

async function measurePass(
  orthanc: OrthancInstance,
  files: SampleFile[],
  concurrency: number,
): Promise<RoundTiming> {
  const ids: string[] = new Array<string>(files.length);
  const uploadMs = await timeParallel(files, concurrency, async (file, index) => {
    const answer = await orthanc.upload(file.bytes);
    if (answer.Status !== "Success")
      throw new Error(`upload ${file.name}: Orthanc answered ${answer.Status}`);
    ids[index] = answer.ID;
  });
  const readMs = await timeParallel(ids, concurrency, async (id, index) => {
    const response = await orthanc.request("GET", `/instances/${id}/file`);
    const body = await response.arrayBuffer();
    if (!response.ok) throw new Error(`read ${files[index]?.name}: HTTP ${response.status}`);
    if (body.byteLength !== files[index]?.bytes.length)
      throw new Error(
        `read ${files[index]?.name}: ${body.byteLength} bytes, expected ${files[index]?.bytes.length}`,
      );
  });
  await timeParallel(ids, concurrency, async (id) => {
    const response = await orthanc.request("DELETE", `/instances/${id}`);
    await response.arrayBuffer();
    if (!response.ok) throw new Error(`delete instance ${id}: HTTP ${response.status}`);
  });
  return { uploadMs, readMs };
}
