// Target 6 (issue 8): how time and memory grow with object size (1 KB to 1 GB) and with concurrency (1 to
// 64). Creates through the bridge protocol into a daemon started alone (as for target 5), A1 encryption on
// the folder backend; a fresh daemon per cell, so each cell's peak RSS is its own. Prints the table, writes
// it as docs/performance-scaling.tsv and plots it into docs/performance-scaling.png with gnuplot.

import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

import { repoRoot } from "../../test-support/paths.js";
import { LoadedDaemon, MIB, megabytes, randomPayload } from "../daemon-load.js";
import { median } from "../measure.js";
import type { BenchTarget, TargetResult } from "../target.js";

const KIB = 1024;
const SIZES = [KIB, 64 * KIB, MIB, 16 * MIB, 256 * MIB, 1024 * MIB];
const CONCURRENCIES = [1, 4, 16, 64];
/** Above this many bytes in one round a cell is skipped: 256 MB x 64 would write 16 GB per round here. */
const MAX_ROUND_BYTES = 4 * 1024 * MIB;
/** Small objects: each connection creates several in a row, so that a round moves about this much. */
const ROUND_BYTES = 64 * MIB;
/** ... but no more than this many creates per round (a small create takes 10 to 25 ms on the shared VM). */
const MAX_CREATES_PER_ROUND = 128;
/** The whole grid must stay within about 5 minutes: at most this many rounds per cell. */
const MAX_ROUNDS = 3;
/** Rounds of big cells take seconds each: fewer of them. */
const BIG_ROUND_BYTES = 256 * MIB;
const BIG_ROUNDS = 1;
/** The target's goals: the daemon's peak over the whole grid, and how well throughput holds with size. */
const PEAK_GOAL_MB = 600;
const THROUGHPUT_HOLD_GOAL = 0.5;

export const TSV_FILE = join(repoRoot, "docs", "performance-scaling.tsv");
export const PNG_FILE = join(repoRoot, "docs", "performance-scaling.png");
const GNUPLOT_SCRIPT = join(repoRoot, "bench", "performance-scaling.gnuplot");

interface Cell {
  size: number;
  concurrency: number;
  /** Creates per connection per round. */
  perConnection: number;
  medianMs: number;
  peakMb: number;
}

export const scaling: BenchTarget = {
  name: "scaling",
  async run({ rounds, log }) {
    const scratch = await mkdtemp(join(tmpdir(), "ocs-bench-scaling-"));
    try {
      const key = join(scratch, "master.key");
      await writeFile(key, Buffer.alloc(32, 7).toString("base64"), { mode: 0o600 });
      const configuration = {
        LocalObjectStorage: { Path: join(scratch, "objects"), StorageEncryption: { MasterKey: [1, key] } },
      };
      const largest = await randomPayload(SIZES[SIZES.length - 1] as number);
      log("creates through the bridge protocol, A1, folder backend; a fresh daemon per cell");
      log(
        `${"size".padStart(8)} ${"conc.".padStart(5)} ${"creates".padStart(7)} ${"median ms".padStart(10)} ` +
          `${"ms/create".padStart(10)} ${"MB/s".padStart(8)} ${"peak MB".padStart(8)}`,
      );
      const cells: Cell[] = [];
      for (const size of SIZES) {
        for (const concurrency of CONCURRENCIES) {
          // 1 GB only at concurrency 1 (the brief), and nothing that writes more than MAX_ROUND_BYTES at once.
          if (size * concurrency > MAX_ROUND_BYTES || (size >= 1024 * MIB && concurrency > 1)) continue;
          const perConnection = Math.max(
            1,
            Math.min(
              Math.floor(MAX_CREATES_PER_ROUND / concurrency),
              Math.floor(ROUND_BYTES / (size * concurrency)),
            ),
          );
          const cellRounds =
            size * concurrency >= BIG_ROUND_BYTES ? BIG_ROUNDS : Math.max(1, Math.min(rounds, MAX_ROUNDS));
          const cell = await measureCell(
            configuration,
            largest.subarray(0, size),
            concurrency,
            perConnection,
            cellRounds,
          );
          cells.push(cell);
          log(
            `${formatSize(size).padStart(8)} ${String(concurrency).padStart(5)} ` +
              `${String(concurrency * perConnection).padStart(7)} ${cell.medianMs.toFixed(1).padStart(10)} ` +
              `${(cell.medianMs / perConnection).toFixed(2).padStart(10)} ${throughput(cell).toFixed(0).padStart(8)} ` +
              `${cell.peakMb.toFixed(0).padStart(8)}`,
          );
        }
      }
      await writeFile(TSV_FILE, toTsv(cells));
      await plot();
      log(`table: ${TSV_FILE}; plot: ${PNG_FILE}`);
      return summarize(cells);
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  },
};

async function measureCell(
  configuration: unknown,
  payload: Buffer,
  concurrency: number,
  perConnection: number,
  rounds: number,
): Promise<Cell> {
  const daemon = await LoadedDaemon.start(configuration);
  try {
    const times: number[] = [];
    for (let round = 0; round < rounds; round++) {
      times.push(await daemon.createConcurrently(concurrency, payload, perConnection));
    }
    const { peak } = await daemon.memory();
    return {
      size: payload.length,
      concurrency,
      perConnection,
      medianMs: median(times),
      peakMb: megabytes(peak),
    };
  } finally {
    await daemon.stop();
  }
}

/** MB/s of attachment bytes through the daemon. */
function throughput(cell: Cell): number {
  return megabytes(cell.size * cell.concurrency * cell.perConnection) / (cell.medianMs / 1000);
}

function summarize(cells: Cell[]): TargetResult[] {
  const peak = Math.max(...cells.map((cell) => cell.peakMb));
  const at = (size: number) => cells.find((cell) => cell.size === size && cell.concurrency === 1);
  const gigabyte = at(1024 * MIB);
  const sixteen = at(16 * MIB);
  const results: TargetResult[] = [
    {
      label: "peak daemon RSS over the whole grid",
      measured: peak,
      goal: PEAK_GOAL_MB,
      higherIsBetter: false,
      unit: "MB",
    },
  ];
  if (gigabyte !== undefined && sixteen !== undefined) {
    results.push({
      label: "throughput of one 1 GB create / one 16 MB create (time grows linearly with size)",
      measured: throughput(gigabyte) / throughput(sixteen),
      goal: THROUGHPUT_HOLD_GOAL,
      higherIsBetter: true,
      unit: "x",
    });
  }
  return results;
}

/** One block per concurrency, two blank lines apart, so that gnuplot draws each as one line (`index`). */
function toTsv(cells: Cell[]): string {
  const lines = ["# size_bytes\tconcurrency\tcreates\tmedian_ms\tms_per_create\tmb_per_s\tpeak_rss_mb"];
  for (const [block, concurrency] of CONCURRENCIES.entries()) {
    if (block > 0) lines.push("", "");
    for (const cell of cells.filter((c) => c.concurrency === concurrency)) {
      lines.push(
        [
          cell.size,
          cell.concurrency,
          cell.concurrency * cell.perConnection,
          cell.medianMs.toFixed(1),
          (cell.medianMs / cell.perConnection).toFixed(3),
          throughput(cell).toFixed(1),
          cell.peakMb.toFixed(0),
        ].join("\t"),
      );
    }
  }
  return lines.join("\n") + "\n";
}

/** gnuplot (Debian's gnuplot-nox, pngcairo terminal) draws the table; the bench script installs it. */
async function plot(): Promise<void> {
  try {
    await promisify(execFile)("gnuplot", ["-e", `data='${TSV_FILE}'; out='${PNG_FILE}'`, GNUPLOT_SCRIPT]);
  } catch (cause) {
    const missing = (cause as NodeJS.ErrnoException).code === "ENOENT";
    throw new Error(
      `plot ${PNG_FILE} from ${TSV_FILE}: ` +
        (missing
          ? "gnuplot is not installed: apt-get install gnuplot-nox (the bench script installs it)"
          : `gnuplot failed: ${(cause as Error).message}`),
      { cause },
    );
  }
}

function formatSize(bytes: number): string {
  if (bytes >= MIB) return `${bytes / MIB} MB`;
  return `${bytes / KIB} KB`;
}
