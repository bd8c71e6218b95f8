// The measurement behind v2's segment size (docs/encryption-format-v2.md, "Segment size"): encryption and
// decryption throughput of a 64 MiB object, by CPU time, for segments of 16 KiB to 1 MiB, and the bytes a
// range read of 1 KiB at a random offset fetches with each. Prints one line per size.
// Usage: node dist/bench/v2-segments.js

import { randomBytes } from "node:crypto";

import { KeyRing } from "../src/crypto/key-ring.js";
import { decryptV2, encryptV2WithSecrets } from "../src/crypto/v2-cipher.js";
import { V2_HEADER_LENGTH, V2_TAG_LENGTH } from "../src/crypto/v2-format.js";

const SIZE = 64 * 1024 * 1024;
const SHIFTS = [14, 15, 16, 17, 18, 20];
const RANGE = 1024;
const ROUNDS = 3;

const ring = new KeyRing({ id: 1, key: randomBytes(32) });
const attachment = { uuid: "0a1b2c3d-1111-2222-3333-444455556666", contentType: 1 };
const plaintext = randomBytes(SIZE);

function cpuSeconds(run: () => void): number {
  const before = process.cpuUsage();
  run();
  const { user, system } = process.cpuUsage(before);
  return (user + system) / 1e6;
}

for (const shift of SHIFTS) {
  const segment = 2 ** shift;
  let stored: Uint8Array = new Uint8Array();
  const secrets = { dek: randomBytes(32), salt: randomBytes(32) };
  const encrypt: number[] = [];
  const decrypt: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    encrypt.push(
      cpuSeconds(() => (stored = encryptV2WithSecrets(plaintext, ring.current, attachment, secrets, shift))),
    );
    decrypt.push(cpuSeconds(() => decryptV2(stored, ring, attachment, "bench")));
  }
  const mbps = (seconds: number[]): string => (SIZE / 1e6 / Math.min(...seconds)).toFixed(0);
  // A 1 KiB range at a uniform offset covers one segment, or two when it straddles a boundary.
  const straddles = (RANGE - 1) / segment;
  const fetched = V2_HEADER_LENGTH + (1 + straddles) * (segment + V2_TAG_LENGTH);
  process.stdout.write(
    `segment ${segment / 1024} KiB: encrypt ${mbps(encrypt)} MB/s, decrypt ${mbps(decrypt)} MB/s (CPU time), ` +
      `overhead ${((stored.length / SIZE - 1) * 100).toFixed(3)} %, a cold 1 KiB range fetches ${(fetched / 1024).toFixed(1)} KiB\n`,
  );
}
