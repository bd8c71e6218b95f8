// Target 1, bridge overhead (issue 15's mix): the sample DICOM files uploaded through a real Orthanc, each
// read whole twice, then deleted, with the three phases timed apart; at 1, 4 and 8 concurrent clients,
// each either opening a new connection per request (as many scripts and proxies do) or keeping its
// connection alive. Then one client on one keep-alive connection reads the files one at a time, and each
// read's latency is recorded (median and 90th percentile).
//
// Orthanc runs with its built-in filesystem storage (the baseline), with our plugin on the folder backend
// (plaintext), and with A1 encryption; its storage cache off and SyncStorageArea false for all three, so
// that neither side's fsync is timed. The Orthancs run side by side and are measured in turn within each
// round, in a rotating order; each round's ratio is baseline time / our time (1.0: as fast, above: faster),
// and the target reports the median of the rounds. A phase of one pass lasts 30 to 300 ms, short enough
// for a neighbour's burst to move a cell by 0.3x: each round runs PASSES_PER_ROUND passes of every setup in
// turn and sums each phase over them, and each pass reads each file READS_PER_FILE times (twice, twice
// over), so that each round's figure rests on a few hundred operations; each line says how many. One
// untimed pass of every setup comes first (warm-up).

import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { forEachParallel } from "../../src/ops/parallel.js";
import { OrthancInstance } from "../../test-support/orthanc.js";
import { HttpClient } from "../http-client.js";
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

const CONCURRENCIES = [1, 4, 8];
const KEEP_ALIVE = [false, true];
/** Whole reads of each file per pass (the mix, each read twice, run twice: a longer read phase). */
const READS_PER_FILE = 4;
/** Passes (upload, read, delete) of every setup per round and mix, each phase's time summed over them. */
const PASSES_PER_ROUND = 3;
/** Reads of each file, one at a time on one connection, for the latency figures. */
const LATENCY_READS_PER_FILE = 8;
/** Latency ratio (ours / built-in) not to exceed: lower is better. */
const LATENCY_GOAL = 1.2;

const PHASES = ["upload", "read", "delete"] as const;
type Phase = (typeof PHASES)[number];

interface Setup {
  name: string;
  /** Goal for its throughput ratios against the built-in storage (none for the baseline itself). */
  goal?: number;
  /** Top-level configuration options for this Orthanc (its work folder given). */
  config(workDir: string): Promise<Record<string, unknown>>;
}

/** Options of every Orthanc measured. */
const COMMON = { SyncStorageArea: false };

/**
 * Our plugin on the folder backend, plaintext or A1, with the daemon script and the plugin library given
 * (this build's by default).
 */
function oursSetups(
  label: string,
  build: { daemon?: string; library?: string } = {},
  goals: { plain?: number; a1?: number } = {},
): Setup[] {
  const plugin = {
    ...(build.daemon === undefined
      ? {}
      : { OrthancCloudStorage: { Node: process.execPath, Daemon: build.daemon } }),
    ...(build.library === undefined ? {} : { Plugins: [build.library] }),
  };
  return [
    {
      name: `${label}, folder`,
      goal: goals.plain,
      config: (workDir) =>
        Promise.resolve({
          ...COMMON,
          ...plugin,
          LocalObjectStorage: { Path: join(workDir, "objects"), StorageEncryption: { Enable: false } },
        }),
    },
    {
      name: `${label}, folder, A1`,
      goal: goals.a1,
      config: async (workDir) => {
        const keyFile = join(workDir, "master.key");
        await writeFile(keyFile, Buffer.alloc(32, 7).toString("base64"), { mode: 0o600 });
        return {
          ...COMMON,
          ...plugin,
          LocalObjectStorage: {
            Path: join(workDir, "objects"),
            StorageEncryption: { MasterKey: [1, keyFile] },
          },
        };
      },
    },
  ];
}

/**
 * OCS_BENCH_BEFORE_DAEMON: the daemon script (dist/src/daemon/main.js) of another build, measured in the same
 * run as "before", for a before and after measured side by side; OCS_BENCH_BEFORE_PLUGIN: that build's plugin
 * library (build/libOrthancCloudStorage.so), else this build's.
 */
const BEFORE_DAEMON = process.env.OCS_BENCH_BEFORE_DAEMON;
const BEFORE_PLUGIN = process.env.OCS_BENCH_BEFORE_PLUGIN;

const SETUPS: readonly Setup[] = [
  { name: "built-in filesystem", config: () => Promise.resolve({ ...COMMON, Plugins: [] }) },
  ...oursSetups("ours", {}, { plain: 0.9, a1: 0.8 }),
  ...(BEFORE_DAEMON === undefined
    ? []
    : oursSetups("before", { daemon: BEFORE_DAEMON, library: BEFORE_PLUGIN })),
];

/** Milliseconds of each phase of one pass. */
type PassTiming = Record<Phase, number>;

/** One cell of the grid: a concurrency and a connection policy. */
interface Mix {
  concurrency: number;
  keepAlive: boolean;
}

const MIXES: readonly Mix[] = CONCURRENCIES.flatMap((concurrency) =>
  KEEP_ALIVE.map((keepAlive) => ({ concurrency, keepAlive })),
);

function describeMix({ concurrency, keepAlive }: Mix): string {
  return `${concurrency} client(s), ${keepAlive ? "keep-alive" : "a connection per request"}`;
}

export const bridge: BenchTarget = {
  name: "bridge",
  async run({ rounds, log }) {
    const files = await sampleDicomFiles();
    const bytes = totalBytes(files);
    log(
      `${files.length} sample DICOM files (${fixed(bytes / 1e6, 1)} MB) uploaded, each read whole (/file) ` +
        `${READS_PER_FILE} times, then deleted, ${PASSES_PER_ROUND} passes per round; storage cache off, ` +
        "SyncStorageArea false",
    );
    const orthancs: OrthancInstance[] = [];
    try {
      for (const setup of SETUPS) {
        const workDir = await mkdtemp(join(tmpdir(), "ocs-bench-bridge-"));
        orthancs.push(await OrthancInstance.start({ workDir, config: await setup.config(workDir) }));
      }
      // passes[mix][setup][round]; latencies[setup][round][read]
      const passes = MIXES.map(() => SETUPS.map((): PassTiming[] => []));
      const latencies = SETUPS.map((): number[][] => []);
      // One untimed pass of each setup first: the first round's cells would otherwise time the daemons'
      // and Orthancs' warm-up (a JIT compiling, caches filling) for some setups and not others.
      for (const orthanc of orthancs) await measurePass(orthanc, files, MIXES[0] as Mix);
      for (let round = 0; round < rounds; round++) {
        for (const [m, mix] of MIXES.entries()) {
          const sums = SETUPS.map((): PassTiming => ({ upload: 0, read: 0, delete: 0 }));
          for (let pass = 0; pass < PASSES_PER_ROUND; pass++) {
            for (const s of roundOrder(SETUPS.length, round * PASSES_PER_ROUND + pass)) {
              const timing = await measurePass(orthancs[s] as OrthancInstance, files, mix);
              for (const phase of PHASES) (sums[s] as PassTiming)[phase] += timing[phase];
            }
          }
          for (const [s, sum] of sums.entries()) passes[m]?.[s]?.push(sum);
        }
        for (const s of roundOrder(SETUPS.length, round)) {
          latencies[s]?.push(await measureLatencies(orthancs[s] as OrthancInstance, files));
        }
      }
      const results: TargetResult[] = [];
      for (const [m, mix] of MIXES.entries()) {
        log(
          `${describeMix(mix)}, median of ${rounds} rounds, each of ${PASSES_PER_ROUND} passes: ` +
            `${PASSES_PER_ROUND * files.length} uploads, ${PASSES_PER_ROUND * files.length * READS_PER_FILE} reads ` +
            `and ${PASSES_PER_ROUND * files.length} deletes per round and setup:`,
        );
        const bySetup = passes[m] as PassTiming[][];
        const baseline = bySetup[0] as PassTiming[];
        for (const [s, setup] of SETUPS.entries()) {
          const own = bySetup[s] as PassTiming[];
          const cells = PHASES.map((phase) => {
            const ms = median(own.map((t) => t[phase]));
            const ratio = median(own.map((t, r) => (baseline[r] as PassTiming)[phase] / t[phase]));
            const moved = PASSES_PER_ROUND * (phase === "read" ? bytes * READS_PER_FILE : bytes);
            if (setup.goal !== undefined) {
              results.push({
                label: `bridge: ${phase}s, ${describeMix(mix)}, ${setup.name} / built-in`,
                measured: ratio,
                goal: setup.goal,
                higherIsBetter: true,
                unit: "x",
              });
            }
            const rate = phase === "delete" ? "" : ` ${fixed(megabytesPerSecond(moved, ms), 1, 5)} MB/s`;
            return `${phase} ${fixed(ms, 0, 5)} ms (${fixed(ratio, 2)}x${rate})`;
          });
          log(`  ${setup.name.padEnd(22)} ${cells.join("   ")}`);
        }
      }
      log(
        `one client, one keep-alive connection, each file read whole ${LATENCY_READS_PER_FILE} times, one read at a ` +
          `time (${files.length * LATENCY_READS_PER_FILE} reads per round and setup; all rounds):`,
      );
      const baseline = latencies[0] as number[][];
      for (const [s, setup] of SETUPS.entries()) {
        const own = latencies[s] as number[][];
        const all = own.flat();
        // Paired by round: this round's median against the built-in's median of the same round.
        const ratio = median(own.map((reads, r) => median(reads) / median(baseline[r] as number[])));
        log(
          `  ${setup.name.padEnd(22)} per read: median ${fixed(median(all), 2, 5)} ms, ` +
            `90th percentile ${fixed(percentile(all, 0.9), 2, 5)} ms (${fixed(ratio, 2)}x the built-in's median)`,
        );
        if (setup.goal !== undefined) {
          results.push({
            label: `bridge: median read latency, 1 client, keep-alive, ${setup.name} / built-in`,
            measured: ratio,
            goal: LATENCY_GOAL,
            higherIsBetter: false,
            unit: "x",
          });
        }
      }
      return results;
    } finally {
      for (const orthanc of orthancs) await orthanc.destroy();
    }
  },
};

/** Upload every file, read each whole READS_PER_FILE times, then delete them, `concurrency` at a time. */
async function measurePass(orthanc: OrthancInstance, files: SampleFile[], mix: Mix): Promise<PassTiming> {
  const client = new HttpClient(mix.keepAlive ? mix.concurrency : 0);
  try {
    const ids: string[] = new Array<string>(files.length);
    const upload = await timeParallel(files, mix.concurrency, async (file, index) => {
      ids[index] = await uploadFile(orthanc, client, file);
    });
    const reads = Array.from({ length: READS_PER_FILE }, () => files.map((_, index) => index)).flat();
    const read = await timeParallel(reads, mix.concurrency, (index) =>
      readFile(orthanc, client, files[index] as SampleFile, ids[index] as string),
    );
    const remove = await timeParallel(ids, mix.concurrency, (id) => deleteInstance(orthanc, client, id));
    client.assertConnectionsKept();
    return { upload, read, delete: remove };
  } finally {
    client.close();
  }
}

/** Milliseconds of each read of the files, one read at a time on one keep-alive connection. */
async function measureLatencies(orthanc: OrthancInstance, files: SampleFile[]): Promise<number[]> {
  const setUp = new HttpClient(4);
  const client = new HttpClient(1);
  try {
    const ids: string[] = new Array<string>(files.length);
    await forEachParallel(
      files.map((file, index) => ({ file, index })),
      4,
      async ({ file, index }) => {
        ids[index] = await uploadFile(orthanc, setUp, file);
      },
    );
    const times: number[] = [];
    for (let pass = 0; pass < LATENCY_READS_PER_FILE; pass++) {
      for (const [index, file] of files.entries()) {
        const started = performance.now();
        await readFile(orthanc, client, file, ids[index] as string);
        times.push(performance.now() - started);
      }
    }
    client.assertConnectionsKept();
    await forEachParallel(ids, 4, (id) => deleteInstance(orthanc, setUp, id));
    return times;
  } finally {
    client.close();
    setUp.close();
  }
}

async function uploadFile(orthanc: OrthancInstance, client: HttpClient, file: SampleFile): Promise<string> {
  const answer = await client.request(`${orthanc.url}/instances`, "POST", file.bytes, "application/dicom");
  const text = answer.body.toString("utf8");
  if (answer.status !== 200) throw new Error(`upload ${file.name}: HTTP ${answer.status} ${text}`);
  const { ID, Status } = JSON.parse(text) as { ID: string; Status: string };
  if (Status !== "Success") throw new Error(`upload ${file.name}: Orthanc answered ${Status}`);
  return ID;
}

async function readFile(
  orthanc: OrthancInstance,
  client: HttpClient,
  file: SampleFile,
  id: string,
): Promise<void> {
  const answer = await client.request(`${orthanc.url}/instances/${id}/file`, "GET");
  if (answer.status !== 200) throw new Error(`read ${file.name}: HTTP ${answer.status}`);
  if (!answer.body.equals(file.bytes)) {
    throw new Error(`read ${file.name}: ${answer.body.length} bytes that are not the file uploaded`);
  }
}

async function deleteInstance(orthanc: OrthancInstance, client: HttpClient, id: string): Promise<void> {
  const answer = await client.request(`${orthanc.url}/instances/${id}`, "DELETE");
  if (answer.status !== 200) throw new Error(`delete instance ${id}: HTTP ${answer.status}`);
}

/** The value below which a fraction `p` of the values lie (nearest rank). */
function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] as number;
}
