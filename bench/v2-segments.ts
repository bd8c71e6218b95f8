// The measurement behind v2's segment size (docs/encryption-format-v2.md, "Segment size"): whole-buffer
// encryption and decryption by CPU time of one object (1 MiB by default) in A1 and in v2 with segments of
// 16 KiB to 1 MiB, all measured one after the other in each round, round after round, so that a busy
// neighbour weighs on all of them; prints the medians, each v2 size's median ratio to A1 within the same
// rounds, and the bytes a cold range read of 1 KiB at a random offset fetches with each size.
// Usage: node dist/bench/v2-segments.js [SIZE [ROUNDS]]   (run it with DAEMON_ENVIRONMENT set, as the daemon)

import { randomBytes } from "node:crypto";

import { decryptA1, encryptA1 } from "../src/crypto/a1-cipher.js";
import { KeyRing } from "../src/crypto/key-ring.js";
import { decryptV2, encryptV2WithSecrets } from "../src/crypto/v2-cipher.js";
import { V2_HEADER_LENGTH, V2_TAG_LENGTH } from "../src/crypto/v2-format.js";
import { fixed, median } from "./measure.js";

const SIZE = Number(process.argv[2] ?? 1024 * 1024);
const ROUNDS = Number(process.argv[3] ?? 15);
const SHIFTS = [14, 15, 16, 17, 18, 20];
const RANGE = 1024;
/** Each measurement repeats its operation for at least this long. */
const MEASURE_MS = 120;

const ring = new KeyRing({ id: 1, key: randomBytes(32) });
const attachment = { uuid: "0a1b2c3d-1111-2222-3333-444455556666", contentType: 1 };
const plaintext = randomBytes(SIZE);

/** MB/s by CPU time of `run`, repeated for MEASURE_MS. */
function speed(run: () => void): number {
  const before = process.cpuUsage();
  const started = performance.now();
  let count = 0;
  while (performance.now() - started < MEASURE_MS || count < 2) {
    run();
    count++;
  }
  const { user, system } = process.cpuUsage(before);
  return (SIZE * count) / (user + system);
}

interface Case {
  name: string;
  shift?: number;
  encrypt: () => void;
  decrypt: () => void;
}
const a1Stored = encryptA1(plaintext, ring, "bench");
const cases: Case[] = [
  {
    name: "A1",
    encrypt: () => encryptA1(plaintext, ring, "bench"),
    decrypt: () => decryptA1(a1Stored, ring, "bench"),
  },
  ...SHIFTS.map((shift) => {
    // Fresh secrets per object, as encryptV2 draws them.
    const encrypt = (): Uint8Array =>
      encryptV2WithSecrets(plaintext, {
        key: ring.current,
        attachment,
        secrets: { dek: randomBytes(32), salt: randomBytes(32) },
        segmentShift: shift,
      });
    const stored = encrypt();
    return {
      name: `v2, ${2 ** shift / 1024} KiB`,
      shift,
      encrypt,
      decrypt: () => decryptV2(stored, ring, attachment, "bench"),
    };
  }),
];

const results = cases.map(() => ({ encrypt: [] as number[], decrypt: [] as number[] }));
for (const kase of cases) speed(kase.encrypt); // warm-up: the heap grows to its steady state
for (let round = 0; round < ROUNDS; round++) {
  for (const direction of ["encrypt", "decrypt"] as const) {
    for (const [i, kase] of cases.entries()) results[i]?.[direction].push(speed(kase[direction]));
  }
}
const a1 = results[0] as { encrypt: number[]; decrypt: number[] };
process.stdout.write(
  `${SIZE} bytes, ${ROUNDS} rounds, medians by CPU time (ratio: v2 / A1 within a round)\n`,
);
for (const [i, kase] of cases.entries()) {
  const result = results[i] as { encrypt: number[]; decrypt: number[] };
  const ratio = (direction: "encrypt" | "decrypt"): string =>
    kase.shift === undefined
      ? ""
      : ` (${fixed(median(result[direction].map((v, r) => v / (a1[direction][r] as number))), 2)}x)`;
  let line = `${kase.name}: encrypt ${fixed(median(result.encrypt), 0)} MB/s${ratio("encrypt")}, decrypt ${fixed(median(result.decrypt), 0)} MB/s${ratio("decrypt")}`;
  if (kase.shift !== undefined) {
    // A 1 KiB range at a uniform offset covers one segment, or two when it straddles a boundary.
    const segment = 2 ** kase.shift;
    const fetched = V2_HEADER_LENGTH + (1 + (RANGE - 1) / segment) * (segment + V2_TAG_LENGTH);
    line += `, a cold 1 KiB range fetches ${fixed(fetched / 1024, 1)} KiB`;
  }
  process.stdout.write(`${line}\n`);
}
