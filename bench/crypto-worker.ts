// Child process of the crypto target: measures the daemon's A1 codec in a process started like the daemon
// (with DAEMON_ENVIRONMENT), and prints one JSON line: for each direction and size, MB/s by CPU time (user +
// system, every thread of the process) and by wall-clock time. CPU time is what `openssl speed` reports
// too; on a shared machine wall-clock time mostly measures the neighbours.
// Usage: node dist/bench/crypto-worker.js SIZE...   (plaintext sizes in bytes)

import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";

import { A1Codec } from "../src/crypto/a1-codec.js";
import { STREAM_CREATES_ABOVE } from "../src/daemon/frame-reader.js";
import { KeyRing } from "../src/crypto/key-ring.js";
import { MemoryBudget } from "../src/crypto/memory-budget.js";
import { SYNC_FILE_LIMIT } from "../src/stores/local-file-io.js";

/** What a stored object's stream delivers per chunk (fs.createReadStream's default highWaterMark). */
const READ_CHUNK = 64 * 1024;
/** Each measurement repeats its operation until at least this long has passed, to average out timer noise. */
const MIN_MEASURE_MS = 400;
/**
 * Repeated first, untimed: a fresh process spends its first few hundred ms growing its heap (every page
 * faulted in once); the daemon is a long-running process, so its steady state is what counts.
 */
const WARM_UP_MS = 300;

export interface CryptoSpeed {
  direction: "encrypt" | "decrypt";
  /** A decryption's input: streamed in 64 KiB chunks (a cloud store), or whole (the folder store, ≤ 4 MiB). */
  input?: "whole";
  size: number;
  cpuMegabytesPerSecond: number;
  wallMegabytesPerSecond: number;
}

async function measure(size: number, operation: () => Promise<unknown>): Promise<[number, number]> {
  for (const warmUp = performance.now(); performance.now() - warmUp < WARM_UP_MS;) await operation();
  let count = 0;
  const cpu = process.cpuUsage();
  const started = performance.now();
  let elapsed = 0;
  while (elapsed < MIN_MEASURE_MS || count < 3) {
    await operation();
    count++;
    elapsed = performance.now() - started;
  }
  const { user, system } = process.cpuUsage(cpu);
  const bytes = size * count;
  return [bytes / (user + system), bytes / 1000 / elapsed];
}

function* chunks(bytes: Uint8Array, size: number): Generator<Uint8Array> {
  for (let offset = 0; offset < bytes.length; offset += size) yield bytes.subarray(offset, offset + size);
}

/** A store that takes every byte of a stream and keeps none. */
async function drain(stored: Readable): Promise<void> {
  for await (const chunk of stored as AsyncIterable<Uint8Array>) void chunk;
}

const sizes = process.argv.slice(2).map(Number);
const codec = new A1Codec(
  new KeyRing({ id: 1, key: randomBytes(32) }),
  new MemoryBudget(Math.max(...sizes) * 2),
);
const speeds: CryptoSpeed[] = [];
for (const size of sizes) {
  const plaintext = randomBytes(size);
  const stored = await codec.encode(plaintext, "bench");
  // As the daemon encrypts a create: whole up to STREAM_CREATES_ABOVE, above it streamed from the socket's
  // chunks through the cipher to the store (here a store that only reads the stream).
  const encrypt =
    size > STREAM_CREATES_ABOVE
      ? () => codec.encodeStream(Readable.from(chunks(plaintext, READ_CHUNK)), size, "bench", drain)
      : () => codec.encode(plaintext, "bench");
  const [encryptCpu, encryptWall] = await measure(size, encrypt);
  speeds.push({
    direction: "encrypt",
    size,
    cpuMegabytesPerSecond: encryptCpu,
    wallMegabytesPerSecond: encryptWall,
  });
  // As the storage area decrypts a read: the stored object streamed in, the plaintext out once verified.
  const [decryptCpu, decryptWall] = await measure(size, () =>
    codec.decode(Readable.from(chunks(stored, READ_CHUNK)), stored.length, "bench"),
  );
  speeds.push({
    direction: "decrypt",
    size,
    cpuMegabytesPerSecond: decryptCpu,
    wallMegabytesPerSecond: decryptWall,
  });
  if (size <= SYNC_FILE_LIMIT) {
    // As the storage area decrypts a read from the folder store, which hands over a small file whole.
    const [wholeCpu, wholeWall] = await measure(size, () => codec.decode(stored, stored.length, "bench"));
    speeds.push({
      direction: "decrypt",
      input: "whole",
      size,
      cpuMegabytesPerSecond: wholeCpu,
      wallMegabytesPerSecond: wholeWall,
    });
  }
}
process.stdout.write(`${JSON.stringify(speeds)}\n`);
