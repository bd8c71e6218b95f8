// Target 4, crypto: A1 encryption and decryption of 1 MiB and 64 MiB objects by the daemon's codec
// (EncryptedCodec with its memory budget, called as the storage area calls it) in a Node process started
// like the daemon (bench/crypto-worker.ts), against `openssl speed -evp aes-256-gcm` (16 KiB blocks, its
// usual headline figure) run on the same machine within the same round. Both are measured in CPU time.
// Each round's ratio is our MB/s / OpenSSL's MB/s; the target reports the median of the rounds. The v2
// format (issue 18) is measured by the same worker run right after or before A1 (the order alternates from
// round to round), printed beside it, with the goal v2 / A1 >= 1: each round's ratio, then their median.

import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";

import { DAEMON_ENVIRONMENT } from "../../src/daemon/protocol.js";
import { repoRoot } from "../../test-support/paths.js";
import type { CryptoSpeed } from "../crypto-worker.js";
import { fixed, median } from "../measure.js";
import type { BenchTarget, TargetResult } from "../target.js";

const GOAL = 0.7;
/** Issue 18: v2 encrypts and decrypts at least as fast as A1. */
const V2_GOAL = 1;
const MIB = 1024 * 1024;
const SIZES = [1 * MIB, 64 * MIB];
const DIRECTIONS = ["encrypt", "decrypt"] as const;
const OPENSSL_BLOCK = 16384;
const worker = join(repoRoot, "dist", "bench", "crypto-worker.js");

type Direction = (typeof DIRECTIONS)[number];

export const crypto: BenchTarget = {
  name: "crypto",
  async run({ rounds, log }) {
    const openssl: Record<Direction, number[]> = { encrypt: [], decrypt: [] };
    // One list per direction and size, in the order of `cases`.
    const cases = DIRECTIONS.flatMap((direction) => SIZES.map((size) => ({ direction, size })));
    const ours = cases.map((): CryptoSpeed[] => []);
    const ratios = cases.map((): number[] => []);
    const v2Speeds = cases.map((): CryptoSpeed[] => []);
    const v2Ratios = cases.map((): number[] => []);
    /** Decryptions of a stored object in hand whole (the folder store's small files), by format and size. */
    const wholeRatios: Record<string, number[]> = {};
    for (let round = 0; round < rounds; round++) {
      for (const direction of DIRECTIONS) openssl[direction].push(await opensslSpeed(direction));
      const speeds = await measureOurs(round % 2 === 1);
      for (const [c, { direction, size }] of cases.entries()) {
        const streamed = speeds.filter(
          (s) => s.input === undefined && s.direction === direction && s.size === size,
        );
        const speed = streamed.find((s) => s.format === "A1");
        const v2 = streamed.find((s) => s.format === "v2");
        if (speed === undefined || v2 === undefined)
          throw new Error(`the crypto worker measured no A1 or v2 ${direction} of ${size} bytes`);
        v2Speeds[c]?.push(v2);
        v2Ratios[c]?.push(v2.cpuMegabytesPerSecond / speed.cpuMegabytesPerSecond);
        ours[c]?.push(speed);
        ratios[c]?.push(speed.cpuMegabytesPerSecond / (openssl[direction][round] as number));
      }
      for (const speed of speeds.filter((s) => s.input === "whole")) {
        const key = `${speed.format} ${speed.size / MIB}`;
        (wholeRatios[key] ??= []).push(speed.cpuMegabytesPerSecond / (openssl.decrypt[round] as number));
      }
    }
    const results: TargetResult[] = [];
    for (const direction of DIRECTIONS) {
      log(
        `${direction}: openssl speed ${fixed(median(openssl[direction]), 0)} MB/s (${OPENSSL_BLOCK}-byte blocks)`,
      );
      for (const [c, kase] of cases.entries()) {
        if (kase.direction !== direction) continue;
        const ratio = median(ratios[c] as number[]);
        const speeds = ours[c] as CryptoSpeed[];
        log(
          `  ours, ${kase.size / MIB} MiB objects: ${fixed(median(speeds.map((s) => s.cpuMegabytesPerSecond)), 0)} MB/s ` +
            `by CPU time (${fixed(ratio, 2)}x), ${fixed(median(speeds.map((s) => s.wallMegabytesPerSecond)), 0)} MB/s by the clock`,
        );
        results.push({
          label: `crypto: A1 ${direction}, ${kase.size / MIB} MiB, ours / openssl`,
          measured: ratio,
          goal: GOAL,
          higherIsBetter: true,
          unit: "x",
        });
        const v2Ratio = median(v2Ratios[c] as number[]);
        log(
          `  v2,   ${kase.size / MIB} MiB objects: ${fixed(median((v2Speeds[c] as CryptoSpeed[]).map((s) => s.cpuMegabytesPerSecond)), 0)} MB/s ` +
            `by CPU time (${fixed(v2Ratio, 2)}x A1's)`,
        );
        results.push({
          label: `crypto: v2 ${direction}, ${kase.size / MIB} MiB, v2 / A1`,
          measured: v2Ratio,
          goal: V2_GOAL,
          higherIsBetter: true,
          unit: "x",
        });
      }
    }
    for (const [key, values] of Object.entries(wholeRatios)) {
      const [format, mib] = key.split(" ");
      log(
        `decrypt of a ${mib} MiB ${format} object in hand whole (the folder store): ${fixed(median(values), 2)}x openssl`,
      );
    }
    return results;
  },
};

async function measureOurs(v2First: boolean): Promise<CryptoSpeed[]> {
  const args = [worker, ...(v2First ? ["--v2-first"] : []), ...SIZES.map(String)];
  const { stdout } = await promisify(execFile)(process.execPath, args, {
    env: { ...process.env, ...DAEMON_ENVIRONMENT },
    timeout: 300_000,
  });
  return JSON.parse(stdout) as CryptoSpeed[];
}

/** OpenSSL's own AES-256-GCM throughput in MB/s (by user CPU time, its default), for 1 s of 16 KiB blocks. */
async function opensslSpeed(direction: Direction): Promise<number> {
  const args = [
    "speed",
    ...(direction === "decrypt" ? ["-decrypt"] : []),
    ...["-evp", "aes-256-gcm", "-seconds", "1", "-bytes", String(OPENSSL_BLOCK)],
  ];
  let stdout: string;
  try {
    ({ stdout } = await promisify(execFile)("openssl", args, { timeout: 60_000 }));
  } catch (error) {
    throw new Error(
      `openssl ${args.join(" ")} failed (is the openssl command installed?): ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  // "AES-256-GCM    2853328.21k": thousands of bytes per second.
  const match = /^AES-256-GCM\s+([\d.]+)k\s*$/m.exec(stdout);
  if (match === null)
    throw new Error(`openssl ${args.join(" ")}: no AES-256-GCM figure in its output:\n${stdout}`);
  return Number(match[1]) / 1000;
}
