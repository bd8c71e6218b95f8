// Compatibility: the vectors made by the official C++ code (test/fixtures/a1-vectors) decrypt whole,
// streamed in chunks and byte by byte; the negative ones fail every way; the spec §1.12 vector is rebuilt.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Readable } from "node:stream";
import { decryptA1, decryptA1Stream, encryptA1, encryptA1WithSecrets } from "../../src/crypto/a1-cipher.js";
import { KeyRing, a1Keystream } from "../../src/crypto/key-ring.js";
import type { ErrorCode } from "../../src/errors.js";
import {
  assertSameBytes,
  chunked,
  fromHex,
  hex,
  manifest,
  rejectsWith,
  ringFromConfig,
  vectorBytes,
} from "./support.js";

type Mode = { name: string; decrypt: (stored: Uint8Array, ring: KeyRing) => Promise<Uint8Array> };

const MODES: Mode[] = [
  { name: "whole", decrypt: (stored, ring) => Promise.resolve(decryptA1(stored, ring, "vector")) },
  {
    name: "in chunks of 1000 bytes",
    decrypt: (stored, ring) => decryptA1Stream(chunked(stored, 1000), stored.length, ring, "vector"),
  },
  {
    name: "as a Readable of 7-byte chunks",
    decrypt: (stored, ring) =>
      decryptA1Stream(Readable.from(chunked(stored, 7)), stored.length, ring, "vector"),
  },
  {
    name: "byte by byte",
    decrypt: (stored, ring) => decryptA1Stream(chunked(stored, 1), stored.length, ring, "vector"),
  },
];

/** Official message → our code and the information our message must carry too. */
const NEGATIVE_EXPECTATIONS: Record<string, { code: ErrorCode; patterns: RegExp[] }> = {
  "HashVerificationFilter: message hash or MAC not valid": {
    code: "INTEGRITY",
    patterns: [/integrity check failed/, /key with id 3\b/],
  },
  "The master key whose id is '2A000000' could not be found.  Unable to decrypt file": {
    code: "UNKNOWN_KEY_ID",
    patterns: [/master key id 42\b/, /2A000000/, /configured ids: 1, 3/, /PreviousMasterKeys/],
  },
};

describe("official A1 vectors", () => {
  it("the manifest has the cases this file expects", () => {
    assert.equal(manifest.cases.filter((c) => c.kind === "positive").length, 3);
    assert.equal(manifest.cases.filter((c) => c.kind === "negative").length, 2);
  });

  for (const vector of manifest.cases.filter((c) => c.kind === "positive")) {
    describe(vector.id, () => {
      const stored = vectorBytes(vector.encrypted);
      const expected = vectorBytes(vector.expected.plaintext ?? "");
      const ring = ringFromConfig(vector.decrypt_config);

      it("has the size of the manifest", () => assert.equal(stored.length, vector.encrypted_size));

      for (const mode of MODES) {
        it(`decrypts ${mode.name}`, async () => {
          const plaintext = await mode.decrypt(stored, ring);
          assert.equal(plaintext.length, expected.length);
          assert.ok(Buffer.from(plaintext).equals(expected));
        });
      }

      it("gives the derived keystream of the manifest", () => {
        assert.equal(hex(ring.current.keystream), vector.derived?.ctr_keystream_hex);
      });

      it("encrypting its plaintext again gives the same size and first 6 bytes, and decrypts back", () => {
        const withRing = ringFromConfig(vector.encrypted_with ?? vector.decrypt_config);
        const again = encryptA1(expected, withRing, "vector");
        assert.equal(again.length, vector.encrypted_size);
        assert.deepEqual(again.subarray(0, 6), stored.subarray(0, 6));
        assert.ok(Buffer.from(decryptA1(again, ring, "vector")).equals(expected));
      });
    });
  }

  for (const vector of manifest.cases.filter((c) => c.kind === "negative")) {
    describe(vector.id, () => {
      const stored = vectorBytes(vector.encrypted);
      const ring = ringFromConfig(vector.decrypt_config);
      const expectation = NEGATIVE_EXPECTATIONS[vector.expected.message ?? ""];

      it("has an official message this file knows", () =>
        assert.ok(expectation, vector.expected.message ?? ""));

      for (const mode of MODES) {
        it(`is refused ${mode.name}`, async () => {
          if (expectation === undefined) return;
          await rejectsWith(() => mode.decrypt(stored, ring), expectation.code, ...expectation.patterns);
        });
      }
    });
  }
});

describe("spec §1.12 published vector", () => {
  const ring = new KeyRing({ id: 1, key: fromHex(range(0x00, 0x20)) });
  const iv = fromHex(range(0x20, 0x40));
  const dek = fromHex(range(0x40, 0x60));
  const plaintext = new TextEncoder().encode("Plain text message");
  const EIV = "d2b122950e6cb9f781dab041f10359afc06c449d7e8ca9d29ecfa10a74ff0802";
  const EDEK = "b2d142f56e0cd997e1bad021916339cfa00c24fd1eecc9b2feafc16a149f6862";
  const CT = "da681c3e57ea4768db29b277a84184eec325";
  const TAG = "b7b98d106763c5e150848db41ac13437";

  it("KS", () => {
    assert.equal(
      hex(a1Keystream(ring.current.key)),
      "f29000b62a499fd0a9f39a6add2e7780f05d76ae4ab99fe5a6f69b3148c2363d",
    );
  });

  it("the whole 104-byte file: 413101000000 ‖ EIV ‖ EDEK ‖ CT ‖ TAG", () => {
    const stored = encryptA1WithSecrets(plaintext, ring.current, iv, dek);
    assert.equal(stored.length, 104);
    assert.equal(hex(stored.subarray(0, 6)), "413101000000");
    assert.equal(hex(stored.subarray(6, 38)), EIV);
    assert.equal(hex(stored.subarray(38, 70)), EDEK);
    assert.equal(hex(stored.subarray(70, 88)), CT);
    assert.equal(hex(stored.subarray(88)), TAG);
    assertSameBytes(decryptA1(stored, ring, "vector"), plaintext);
  });

  it("the empty plaintext: same prefix, tag 875a5fd6b041ff6ac137f027badd10c3", () => {
    const stored = encryptA1WithSecrets(new Uint8Array(0), ring.current, iv, dek);
    assert.equal(hex(stored), `413101000000${EIV}${EDEK}875a5fd6b041ff6ac137f027badd10c3`);
    assert.equal(decryptA1(stored, ring, "vector").length, 0);
  });
});

/** Hex of the bytes from..to-1. */
function range(from: number, to: number): string {
  return Array.from({ length: to - from }, (_, i) => (from + i).toString(16).padStart(2, "0")).join("");
}
