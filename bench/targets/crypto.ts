// Target 4, crypto: A1 encryption and decryption of 1 MiB and 64 MiB objects by the daemon's codec (A1Codec,
// with its memory budget, exactly as the storage area calls it: a whole plaintext in, the stored object
// streamed back in 64 KiB chunks as the folder store reads it), against `openssl speed -evp aes-256-gcm`
// (16 KiB blocks, its usual headline figure) run on the same machine within the same round. Each round's
// ratio is our MB/s / OpenSSL's MB/s; the target reports the median of the rounds.

import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { promisify } from "node:util";

import { A1Codec } from "../../src/crypto/a1-codec.js";
import { KeyRing } from "../../src/crypto/key-ring.js";
import { MemoryBudget } from "../../src/crypto/memory-budget.js";
import { fixed, median } from "../measure.js";
import type { BenchTarget, TargetResult } from "../target.js";

const GOAL = 0.7;
const MIB = 1024 * 1024;
const SIZES = [1 * MIB, 64 * MIB];
/** What a stored object's stream delivers per chunk (fs.createReadStream's default highWaterMark). */
const READ_CHUNK = 64 * 1024;
/** Each measurement repeats its operation until at least this long has passed, to average out timer noise. */
const MIN_MEASURE_MS = 400;
const OPENSSL_BLOCK = 16384;

type Direction = "encrypt" | "decrypt";

export const cryptoTarget: BenchTarget = {
  name: "crypto",
  async run({ rounds, log }) {
    const codec = new A1Codec(new KeyRing({ id: 1, key: randomBytes(32) }), new MemoryBudget(256 * MIB));
    const plaintexts = SIZES.map((size) => randomBytes(size));
    const storedObjects = await Promise.all(plaintexts.map((plaintext) => codec.encode(plaintext, "bench")));
    // ratios[direction][size][round]; throughputs likewise, in MB/s
    const ratios: Record<Direction, number[][]> = {
      encrypt: SIZES.map(() => []),
      decrypt: SIZES.map(() => []),
    };
    const ours: Record<Direction, number[][]> = {
      encrypt: SIZES.map(() => []),
      decrypt: SIZES.map(() => []),
    };
    const openssl: Record<Direction, number[]> = { encrypt: [], decrypt: [] };
    for (let round = 0; round < rounds; round++) {
      for (const direction of ["encrypt", "decrypt"] as const) {
        const reference = await opensslSpeed(direction);
        openssl[direction].push(reference);
        for (const [s, size] of SIZES.entries()) {
          const stored = storedObjects[s] as Uint8Array;
          const plaintext = plaintexts[s] as Buffer;
          const operation =
            direction === "encrypt"
              ? () => codec.encode(plaintext, "bench")
              : () => codec.decode(Readable.from(chunks(stored, READ_CHUNK)), stored.length, "bench");
          const speed = await throughput(size, operation);
          ours[direction][s]?.push(speed);
          ratios[direction][s]?.push(speed / reference);
        }
      }
    }
    const results: TargetResult[] = [];
    for (const direction of ["encrypt", "decrypt"] as const) {
      log(
        `${direction}: openssl speed ${fixed(median(openssl[direction]), 0)} MB/s (${OPENSSL_BLOCK}-byte blocks)`,
      );
      for (const [s, size] of SIZES.entries()) {
        const ratio = median(ratios[direction][s] as number[]);
        log(
          `  ours, ${size / MIB} MiB objects: ${fixed(median(ours[direction][s] as number[]), 0, 5)} MB/s (${fixed(ratio, 2)}x)`,
        );
        results.push({
          label: `crypto: A1 ${direction}, ${size / MIB} MiB, ours / openssl`,
          measured: ratio,
          goal: GOAL,
          higherIsBetter: true,
          unit: "x",
        });
      }
    }
    return results;
  },
};

/** MB/s of `operation` on objects of `size` plaintext bytes: one warm-up, then repeated for MIN_MEASURE_MS. */
async function throughput(size: number, operation: () => Promise<unknown>): Promise<number> {
  await operation();
  let count = 0;
  const started = performance.now();
  let elapsed = 0;
  while (elapsed < MIN_MEASURE_MS || count < 3) {
    await operation();
    count++;
    elapsed = performance.now() - started;
  }
  return (size * count) / 1000 / elapsed;
}

function* chunks(bytes: Uint8Array, size: number): Generator<Uint8Array> {
  for (let offset = 0; offset < bytes.length; offset += size) yield bytes.subarray(offset, offset + size);
}

/** OpenSSL's own AES-256-GCM throughput in MB/s, for one second of 16 KiB blocks. */
async function opensslSpeed(direction: Direction): Promise<number> {
  const args = [
    "speed",
    ...(direction === "decrypt" ? ["-decrypt"] : []),
    "-evp",
    "aes-256-gcm",
    "-seconds",
    "1",
    "-bytes",
    String(OPENSSL_BLOCK),
  ];
  let stdout: string;
  try {
    ({ stdout } = await promisify(execFile)("openssl", args, { timeout: 60_000 }));
  } catch (error) {
    throw new Error(
      `openssl ${args.join(" ")} failed (is the openssl command installed?): ${(error as Error).message}`,
      { cause: error },
    );
  }
  // "AES-256-GCM    2853328.21k": thousands of bytes per second.
  const match = /^AES-256-GCM\s+([\d.]+)k\s*$/m.exec(stdout);
  if (match === null)
    throw new Error(`openssl ${args.join(" ")}: no AES-256-GCM figure in its output:\n${stdout}`);
  return Number(match[1]) / 1000;
}
