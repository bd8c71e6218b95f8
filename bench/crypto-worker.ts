// Child process of the crypto target: measures the daemon's codec (EncryptedCodec, as the storage area
// holds it) writing A1 and writing v2, in a process started like the daemon (with DAEMON_ENVIRONMENT), and
// prints one JSON line: for each format, direction and size, MB/s by CPU time (user + system, every thread
// of the process) and by wall-clock time. CPU time is what `openssl speed` reports too; on a shared machine
// wall-clock time mostly measures the neighbours. A1 and v2 are measured one after the other for each size
// and direction, in the order given (the target alternates it from round to round), so that a neighbour's
// burst weighs on both.
// Usage: node dist/bench/crypto-worker.js [--v2-first] SIZE...   (plaintext sizes in bytes)

import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";

import type { ObjectCodec } from "../src/crypto/codec.js";
import { EncryptedCodec } from "../src/crypto/encrypted-codec.js";
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
  format: "A1" | "v2";
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

const args = process.argv.slice(2);
const v2First = args.includes("--v2-first");
const sizes = args.filter((arg) => arg !== "--v2-first").map(Number);
const ring = new KeyRing({ id: 1, key: randomBytes(32) });
const budget = new MemoryBudget(Math.max(...sizes) * 2);
const codecs: Array<["A1" | "v2", ObjectCodec]> = [
  ["A1", new EncryptedCodec(ring, budget, "A1")],
  ["v2", new EncryptedCodec(ring, budget, "v2")],
];
if (v2First) codecs.reverse();
/** v2 binds objects to their attachment; A1 ignores it. */
const attachment = { uuid: "0a1b2c3d-1111-2222-3333-444455556666", contentType: 1 };
const speeds: CryptoSpeed[] = [];
for (const size of sizes) {
  const plaintext = randomBytes(size);
  const cases = [];
  for (const [format, codec] of codecs) {
    const stored = await codec.encode(plaintext, "bench", attachment);
    // As the daemon encrypts a create: whole up to STREAM_CREATES_ABOVE, above it streamed from the socket's
    // chunks through the cipher to the store (here a store that only reads the stream).
    const encrypt =
      size > STREAM_CREATES_ABOVE
        ? () =>
            codec.encodeStream(Readable.from(chunks(plaintext, READ_CHUNK)), size, "bench", drain, attachment)
        : () => codec.encode(plaintext, "bench", attachment);
    // As the storage area decrypts a read: the stored object streamed in, the plaintext out once verified.
    const decrypt = () =>
      codec.decode(Readable.from(chunks(stored, READ_CHUNK)), stored.length, "bench", attachment);
    cases.push({ format, encrypt, decrypt });
    if (size <= SYNC_FILE_LIMIT) {
      // As the storage area decrypts a read from the folder store, which hands over a small file whole.
      const [cpu, wall] = await measure(size, () => codec.decode(stored, stored.length, "bench", attachment));
      speeds.push({
        format,
        direction: "decrypt",
        input: "whole",
        size,
        cpuMegabytesPerSecond: cpu,
        wallMegabytesPerSecond: wall,
      });
    }
  }
  for (const direction of ["encrypt", "decrypt"] as const) {
    for (const kase of cases) {
      const [cpu, wall] = await measure(size, kase[direction]);
      speeds.push({
        format: kase.format,
        direction,
        size,
        cpuMegabytesPerSecond: cpu,
        wallMegabytesPerSecond: wall,
      });
    }
  }
}
process.stdout.write(`${JSON.stringify(speeds)}\n`);
