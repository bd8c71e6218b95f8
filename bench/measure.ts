// What every target measures with: medians, timed runs of a workload at a given concurrency, ratios and the
// formatting of detail lines. Targets compare a baseline and ours within the same run, round after round,
// so that a machine that slows down for a while (it is shared) slows both.

import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";

import { forEachParallel } from "../src/ops/parallel.js";
import { dicomDir } from "../test-support/paths.js";

/** The middle value (the lower one of the two middle values for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError("the median of no values");
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] as number;
}

/** Milliseconds taken by `work` on every item, with at most `concurrency` items in flight. */
export async function timeParallel<T>(
  items: readonly T[],
  concurrency: number,
  work: (item: T, index: number) => Promise<void>,
): Promise<number> {
  const indexed = items.map((item, index) => ({ item, index }));
  const started = performance.now();
  await forEachParallel(indexed, concurrency, ({ item, index }) => work(item, index));
  return performance.now() - started;
}

/**
 * The order in which to measure `count` setups in round `round`: rotated every round, so that no setup is
 * always the first one measured after a pause (or always the one measured while a neighbour is busy).
 */
export function roundOrder(count: number, round: number): number[] {
  return Array.from({ length: count }, (_, index) => (index + round) % count);
}

/** A sample DICOM file of the test fixtures. */
export interface SampleFile {
  name: string;
  bytes: Buffer;
}

/** The sample DICOM files (test/fixtures/dicom), in name order. */
export async function sampleDicomFiles(): Promise<SampleFile[]> {
  const names = (await readdir(dicomDir)).filter((name) => name.endsWith(".dcm")).sort();
  return Promise.all(names.map(async (name) => ({ name, bytes: await readFile(join(dicomDir, name)) })));
}

export function totalBytes(files: readonly SampleFile[]): number {
  return files.reduce((sum, file) => sum + file.bytes.length, 0);
}

/** Megabytes (10^6 bytes) per second. */
export function megabytesPerSecond(bytes: number, milliseconds: number): number {
  return bytes / 1000 / milliseconds;
}

/** `value` with `digits` decimals, right-aligned in `width` characters. */
export function fixed(value: number, digits: number, width = 0): string {
  return value.toFixed(digits).padStart(width);
}
