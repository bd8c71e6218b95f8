// Child process of the crypto target: measures the daemon's codec (EncryptedCodec, as the storage area
// holds it) writing A1 and writing v2, in a process started like the daemon (with DAEMON_ENVIRONMENT), and
// prints one JSON line: for each case, format, direction and input, MB/s by CPU time (user + system, every
// thread of the process) and by wall-clock time. CPU time is what `openssl speed` reports too; on a shared
// machine wall-clock time mostly measures the neighbours. A1 and v2 are measured one after the other for
// each case, direction and input, in the order given (the target alternates it from round to round), so
// that a neighbour's burst weighs on both.
//
// A case is one object size, or a list of sizes handled one after the other as one operation (the sample
// DICOM files). Each is encrypted and decrypted both ways the storage area can:
// - encrypt "whole": the plaintext in hand (a create up to STREAM_CREATES_ABOVE), `encodePieces`, whose list
//   the storage area hands the store as it is;
// - encrypt "streamed": from the socket's chunks through the cipher to the store (a larger create),
//   `encodeStream` into a store that reads the stream as the drivers do (for await) and keeps nothing;
// - decrypt "whole": the stored object in hand (the folder store hands over its files up to SYNC_FILE_LIMIT);
// - decrypt "streamed": the stored object from a stream of 64 KiB chunks (a cloud store's body);
// both by `decodeHeld`, whose plaintext pieces the daemon sends as they are, then released.
//
// Usage: node dist/bench/crypto-worker.js [--v2-first] CASE...
//   CASE: a plaintext size in bytes ("1048576"), or LABEL=SIZE,SIZE,... ("dicom=954,1742,...")

import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";

import type { HeldPlaintext, ObjectCodec } from "../src/crypto/codec.js";
import { EncryptedCodec } from "../src/crypto/encrypted-codec.js";
import { KeyRing } from "../src/crypto/key-ring.js";
import { MemoryBudget } from "../src/crypto/memory-budget.js";

/** What a stored object's stream delivers per chunk (fs.createReadStream's default highWaterMark). */
const READ_CHUNK = 64 * 1024;
/** Each measurement repeats its operation until at least this long has passed, to average out timer noise. */
const MIN_MEASURE_MS = 400;
/**
 * Repeated first, untimed: a fresh process spends its first few hundred ms growing its heap (every page
 * faulted in once); the daemon is a long-running process, so its steady state is what counts.
 */
const WARM_UP_MS = 300;

export type CryptoInput = "whole" | "streamed";

export interface CryptoSpeed {
  /** The case: its size in bytes ("1048576"), or its label ("dicom"). */
  label: string;
  format: "A1" | "v2";
  direction: "encrypt" | "decrypt";
  input: CryptoInput;
  /** Plaintext bytes per operation (the sum of the sizes of a list). */
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

/** A read's plaintext once sent: its reservation given back. */
async function held(decoding: Promise<HeldPlaintext>): Promise<void> {
  (await decoding).release();
}

/** "1048576" or "dicom=954,1742": the label and the sizes. */
function parseCase(arg: string): { label: string; sizes: number[] } {
  const [label, list] = arg.includes("=") ? (arg.split("=", 2) as [string, string]) : [arg, arg];
  const sizes = list.split(",").map(Number);
  if (sizes.some((size) => !Number.isSafeInteger(size) || size < 0)) throw new Error(`bad case ${arg}`);
  return { label, sizes };
}

const args = process.argv.slice(2);
const v2First = args.includes("--v2-first");
const cases = args.filter((arg) => arg !== "--v2-first").map(parseCase);
const ring = new KeyRing({ id: 1, key: randomBytes(32) });
const largest = Math.max(...cases.flatMap((c) => c.sizes));
const budget = new MemoryBudget(Math.max(largest * 2, 1));
const codecs: Array<["A1" | "v2", ObjectCodec]> = [
  ["A1", new EncryptedCodec(ring, budget, "A1")],
  ["v2", new EncryptedCodec(ring, budget, "v2")],
];
if (v2First) codecs.reverse();
/** v2 binds objects to their attachment; A1 ignores it. */
const attachment = { uuid: "0a1b2c3d-1111-2222-3333-444455556666", contentType: 1 };
const speeds: CryptoSpeed[] = [];
for (const { label, sizes } of cases) {
  const plaintexts = sizes.map((size) => randomBytes(size));
  const total = sizes.reduce((sum, size) => sum + size, 0);
  const operations = [];
  for (const [format, codec] of codecs) {
    const stored = await Promise.all(plaintexts.map((p) => codec.encode(p, "bench", attachment)));
    const each = (run: (i: number) => Promise<unknown>) => async () => {
      for (let i = 0; i < plaintexts.length; i++) await run(i);
    };
    const plaintext = (i: number): Uint8Array => plaintexts[i] as Uint8Array;
    const object = (i: number): Uint8Array => stored[i] as Uint8Array;
    operations.push({
      format,
      encrypt: {
        whole: each((i) => codec.encodePieces(plaintext(i), "bench", attachment)),
        streamed: each((i) =>
          codec.encodeStream(
            Readable.from(chunks(plaintext(i), READ_CHUNK)),
            plaintext(i).length,
            "bench",
            drain,
            attachment,
          ),
        ),
      },
      decrypt: {
        whole: each((i) => held(codec.decodeHeld(object(i), object(i).length, "bench", attachment))),
        streamed: each((i) =>
          held(
            codec.decodeHeld(
              Readable.from(chunks(object(i), READ_CHUNK)),
              object(i).length,
              "bench",
              attachment,
            ),
          ),
        ),
      },
    });
  }
  for (const direction of ["encrypt", "decrypt"] as const) {
    for (const input of ["whole", "streamed"] as const) {
      for (const operation of operations) {
        const [cpu, wall] = await measure(total, operation[direction][input]);
        speeds.push({
          label,
          format: operation.format,
          direction,
          input,
          size: total,
          cpuMegabytesPerSecond: cpu,
          wallMegabytesPerSecond: wall,
        });
      }
    }
  }
}
process.stdout.write(`${JSON.stringify(speeds)}\n`);
