// Target 2, cloud path: uploads of the sample DICOM files through Orthanc with our plugin to each cloud
// server (Ceph RGW, Azurite, the GCS emulator), against the same bytes written directly with the cloud's
// SDK from this one Node process, at the same concurrency, measured in turn within each round. Each round's
// ratio is direct time / through-Orthanc time; the target reports the median of the rounds. Orthanc with
// its built-in filesystem storage is timed alongside, to show how much of the gap is Orthanc's own work
// (parsing the DICOM file, its index), which no storage plugin can remove.

import { OrthancInstance } from "../../test-support/orthanc.js";
import { CLOUD_BACKENDS, type CloudBackend } from "../cloud-backends.js";
import {
  fixed,
  median,
  megabytesPerSecond,
  sampleDicomFiles,
  timeParallel,
  totalBytes,
  type SampleFile,
} from "../measure.js";
import type { BenchTarget, TargetResult } from "../target.js";

const GOAL = 0.8;
const CONCURRENCIES = [1, 8];

export const cloud: BenchTarget = {
  name: "cloud",
  async run({ rounds, log }) {
    const files = await sampleDicomFiles();
    const bytes = totalBytes(files);
    log(`${files.length} sample DICOM files, ${fixed(bytes / 1e6, 1)} MB uploaded per round and setup`);
    const results: TargetResult[] = [];
    // Orthanc's own work on an upload: its built-in storage, without fsync (the cloud path has none).
    const builtIn = await OrthancInstance.start({ config: { Plugins: [], SyncStorageArea: false } });
    try {
      for (const starter of CLOUD_BACKENDS) {
        const backend = await starter.start({ counted: false });
        try {
          const orthanc = await OrthancInstance.start({ config: backend.orthancConfig() });
          try {
            for (const concurrency of CONCURRENCIES) {
              const timings = {
                orthanc: [] as number[],
                direct: [] as number[],
                builtIn: [] as number[],
                ratio: [] as number[],
              };
              for (let round = 0; round < rounds; round++) {
                // Alternate which goes first, so that neither always runs on a server just warmed by the other.
                const direct = (): Promise<number> =>
                  uploadDirect(backend, files, concurrency, `direct/${concurrency}/${round}`);
                const viaOrthanc = (): Promise<number> => uploadThroughOrthanc(orthanc, files, concurrency);
                const [first, second] = round % 2 === 0 ? [direct, viaOrthanc] : [viaOrthanc, direct];
                const a = await first();
                const b = await second();
                const [directMs, orthancMs] = round % 2 === 0 ? [a, b] : [b, a];
                timings.direct.push(directMs);
                timings.orthanc.push(orthancMs);
                timings.ratio.push(directMs / orthancMs);
                timings.builtIn.push(await uploadThroughOrthanc(builtIn, files, concurrency));
              }
              const ratio = median(timings.ratio);
              const line = (what: string, ms: number): string =>
                `${what} ${fixed(ms, 0)} ms (${fixed(megabytesPerSecond(bytes, ms), 1)} MB/s)`;
              log(
                `${backend.name}, ${concurrency} client(s): ${line("SDK direct", median(timings.direct))}, ` +
                  `${line("through Orthanc", median(timings.orthanc))}: ${fixed(ratio, 2)}x; ` +
                  `${line("Orthanc with its built-in storage", median(timings.builtIn))}`,
              );
              // What is left once Orthanc's own work is taken out: the storage path through the bridge,
              // the daemon and the driver, next to the SDK alone. An estimate (a difference of medians).
              const ours = median(timings.orthanc) - median(timings.builtIn);
              log(
                ours > 0
                  ? `  without Orthanc's own work: ~${fixed(ours, 0)} ms through the plugin vs ${fixed(median(timings.direct), 0)} ms ` +
                      `with the SDK (~${fixed(median(timings.direct) / ours, 2)}x)`
                  : "  without Orthanc's own work: nothing measurable left (Orthanc's own time covers the whole difference)",
              );
              results.push({
                label: `cloud: uploads to ${backend.name}, ${concurrency} client(s), Orthanc / SDK`,
                measured: ratio,
                goal: GOAL,
                higherIsBetter: true,
                unit: "x",
              });
            }
          } finally {
            await orthanc.destroy();
          }
        } finally {
          await backend.stop();
        }
      }
    } finally {
      await builtIn.destroy();
    }
    return results;
  },
};

/** Milliseconds to put every file with the SDK, `concurrency` at a time. */
function uploadDirect(
  backend: CloudBackend,
  files: SampleFile[],
  concurrency: number,
  prefix: string,
): Promise<number> {
  return timeParallel(files, concurrency, (file) => backend.put(`${prefix}/${file.name}`, file.bytes));
}

/** Milliseconds to upload every file through Orthanc's REST API; the instances are then deleted (not timed). */
async function uploadThroughOrthanc(
  orthanc: OrthancInstance,
  files: SampleFile[],
  concurrency: number,
): Promise<number> {
  const ids: string[] = [];
  const ms = await timeParallel(files, concurrency, async (file) => {
    const answer = await orthanc.upload(file.bytes);
    if (answer.Status !== "Success")
      throw new Error(`upload ${file.name}: Orthanc answered ${answer.Status}`);
    ids.push(answer.ID);
  });
  await timeParallel(ids, concurrency, async (id) => {
    const response = await orthanc.request("DELETE", `/instances/${id}`);
    await response.arrayBuffer();
    if (!response.ok) throw new Error(`delete instance ${id}: HTTP ${response.status}`);
  });
  return ms;
}
