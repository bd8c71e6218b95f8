// Benchmark: uploads and reads of the sample DICOM files through a real Orthanc, with its built-in
// filesystem storage (the baseline) and with our plugin on the folder backend (plaintext, then A1),
// measured in the same run. Prints times and ratios (baseline time / ours: 1.0 = as fast, above = faster).
// Run: npm run build && node dist/bench/orthanc-storage.js [rounds]   (target: ours >= 0.9x the built-in)

import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";

import { OrthancInstance } from "../test/helpers/orthanc.js";
import { dicomDir } from "../test/helpers/paths.js";

interface Setup {
  name: string;
  config: (workDir: string) => Promise<Record<string, unknown>>;
}

const SETUPS: Setup[] = [
  { name: "built-in filesystem", config: () => Promise.resolve({ Plugins: [] }) },
  {
    name: "ours, folder, plaintext",
    config: (workDir) =>
      Promise.resolve({
        LocalObjectStorage: { Path: join(workDir, "objects"), StorageEncryption: { Enable: false } },
      }),
  },
  {
    name: "ours, folder, A1 encryption",
    config: async (workDir) => {
      await writeFile(join(workDir, "master.key"), Buffer.alloc(32, 7).toString("base64"), { mode: 0o600 });
      return {
        LocalObjectStorage: {
          Path: join(workDir, "objects"),
          StorageEncryption: { MasterKey: [1, join(workDir, "master.key")] },
        },
      };
    },
  },
];

interface Timing {
  uploadMs: number;
  readMs: number;
}

async function measure(setup: Setup, files: Buffer[], rounds: number): Promise<Timing> {
  const { mkdtemp } = await import("node:fs/promises");
  const { tmpdir } = await import("node:os");
  const workDir = await mkdtemp(join(tmpdir(), "ocs-bench-"));
  const orthanc = await OrthancInstance.start({ workDir, config: await setup.config(workDir) });
  try {
    const uploads: number[] = [];
    const reads: number[] = [];
    for (let round = 0; round < rounds; round++) {
      let start = performance.now();
      const ids: string[] = [];
      for (const file of files) ids.push((await orthanc.upload(file)).ID);
      uploads.push(performance.now() - start);
      start = performance.now();
      for (const id of ids) {
        const response = await orthanc.request("GET", `/instances/${id}/file`);
        if (!response.ok) throw new Error(`${setup.name}: read ${id}: HTTP ${response.status}`);
        await response.arrayBuffer();
      }
      reads.push(performance.now() - start);
      for (const id of ids) await orthanc.request("DELETE", `/instances/${id}`);
    }
    return { uploadMs: median(uploads), readMs: median(reads) };
  } finally {
    await orthanc.destroy();
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

const rounds = Number(process.argv[2] ?? 7);
const names = (await readdir(dicomDir)).filter((name) => name.endsWith(".dcm")).sort();
const files = await Promise.all(names.map((name) => readFile(join(dicomDir, name))));
const megabytes = files.reduce((sum, file) => sum + file.length, 0) / 1e6;
console.log(
  `${files.length} files, ${megabytes.toFixed(1)} MB per round, ${rounds} rounds, median per round`,
);

const results: Array<[string, Timing]> = [];
for (const setup of SETUPS) results.push([setup.name, await measure(setup, files, rounds)]);
const baseline = results[0]?.[1] as Timing;
for (const [name, timing] of results) {
  console.log(
    `${name.padEnd(30)} upload ${timing.uploadMs.toFixed(0).padStart(6)} ms (ratio ${(baseline.uploadMs / timing.uploadMs).toFixed(2)})` +
      `   read ${timing.readMs.toFixed(0).padStart(6)} ms (ratio ${(baseline.readMs / timing.readMs).toFixed(2)})`,
  );
}
