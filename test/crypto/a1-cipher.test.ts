// What we write is read by an independent WebCrypto implementation; every tampering of spec §1.6 fails with
// the right code; boundary sizes round-trip through the buffer and stream paths.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  createA1EncryptStream,
  decryptA1,
  decryptA1Pieces,
  decryptA1Stream,
  encryptA1,
  encryptA1Pieces,
} from "../../src/crypto/a1-cipher.js";
import { UPDATE_CHUNK } from "../../src/crypto/cipher-output.js";
import { joinPieces } from "../../src/byte-pieces.js";
import { isStorageError, type ErrorCode } from "../../src/errors.js";
import {
  assertSameBytes,
  chunked,
  collect,
  patternBytes,
  rejectsWith,
  testRing,
  webCryptoDecryptA1,
} from "./support.js";

const ring = testRing(7, [9]);
const keysById = new Map([7, 9].map((id) => [id, new Uint8Array(32).fill(id + 1)]));

async function encryptStreamed(plaintext: Uint8Array, chunkSize: number): Promise<Uint8Array> {
  const encrypt = createA1EncryptStream(ring, "subject");
  const output = collect(encrypt);
  await pipeline(Readable.from(chunked(plaintext, chunkSize)), encrypt);
  return output;
}

describe("A1 output read by an independent WebCrypto implementation", () => {
  const writers: [string, (plaintext: Uint8Array) => Promise<Uint8Array>][] = [
    ["encryptA1", (plaintext) => Promise.resolve(encryptA1(plaintext, ring, "subject"))],
    ["the encrypt stream", (plaintext) => encryptStreamed(plaintext, 1000)],
  ];
  for (const [name, write] of writers) {
    it(`${name}: layout byte by byte and plaintext back`, async () => {
      const plaintext = patternBytes(4321);
      const stored = await write(plaintext);
      assert.equal(stored.length, plaintext.length + 86);
      assert.deepEqual([...stored.subarray(0, 2)], [0x41, 0x31], '"A1"');
      assert.deepEqual([...stored.subarray(2, 6)], [7, 0, 0, 0], "key id 7, little-endian");
      const read = await webCryptoDecryptA1(stored, keysById);
      assert.equal(read.keyId, 7);
      assertSameBytes(read.keystream, ring.current.keystream, "KS");
      assertSameBytes(
        stored.subarray(6, 38).map((b, i) => b ^ read.keystream[i]!),
        read.iv,
        "EIV xor KS == IV",
      );
      assertSameBytes(
        stored.subarray(38, 70).map((b, i) => b ^ read.keystream[i]!),
        read.dek,
        "EDEK xor KS == DEK",
      );
      // spec §1.4: both masked with the same keystream.
      assertSameBytes(
        stored.subarray(6, 38).map((b, i) => b ^ stored[38 + i]!),
        read.iv.map((b, i) => b ^ read.dek[i]!),
        "EIV xor EDEK == IV xor DEK",
      );
      assertSameBytes(read.plaintext, plaintext);
    });

    it(`${name}: a fresh IV and DEK for every object`, async () => {
      const plaintext = patternBytes(100);
      const [a, b] = await Promise.all([write(plaintext), write(plaintext)]);
      assert.notDeepEqual(a.subarray(6, 70), b.subarray(6, 70));
      assert.notDeepEqual(a.subarray(70), b.subarray(70));
    });
  }

  it("the encrypt stream writes the prefix and tag for an empty input", async () => {
    const stored = await encryptStreamed(new Uint8Array(0), 1);
    assert.equal(stored.length, 86);
    assert.equal((await webCryptoDecryptA1(stored, keysById)).plaintext.length, 0);
  });
});

describe("whole encryption and decryption around the update size, as pieces", () => {
  for (const size of [UPDATE_CHUNK - 1, UPDATE_CHUNK, 3 * UPDATE_CHUNK + 1]) {
    it(`${size} bytes: one piece per update, the plaintext back, and a flipped byte refused`, () => {
      const plaintext = patternBytes(size, 7);
      const updates = Math.ceil(size / UPDATE_CHUNK);
      const pieces = encryptA1Pieces(plaintext, ring, "subject");
      assert.equal(pieces.length, 1 + updates + 1, "prefix, one output per update, tag");
      const stored = joinPieces(pieces);
      assert.equal(stored.length, size + 86);
      assert.equal(decryptA1Pieces(stored, ring, "subject").length, updates);
      assertSameBytes(decryptA1(stored, ring, "subject"), plaintext);
      const tampered = Uint8Array.from(stored);
      tampered[stored.length - 100] = (tampered[stored.length - 100] ?? 0) ^ 1;
      assert.throws(
        () => decryptA1(tampered, ring, "subject"),
        (error) => isStorageError(error, "INTEGRITY"),
      );
    });
  }
});

describe("round trips at boundary sizes", () => {
  for (const size of [0, 1, 15, 16, 17, 65535, 65536, 65537, 1024 * 1024 + 3]) {
    it(`${size} bytes`, async () => {
      const plaintext = patternBytes(size, size + 1);
      const whole = encryptA1(plaintext, ring, "subject");
      const streamed = await encryptStreamed(plaintext, 16 * 1024);
      assert.equal(whole.length, size + 86);
      assert.equal(streamed.length, size + 86);
      for (const stored of [whole, streamed]) {
        assertSameBytes(decryptA1(stored, ring, "subject"), plaintext);
        assertSameBytes(
          await decryptA1Stream(chunked(stored, 65536), stored.length, ring, "subject"),
          plaintext,
        );
        assertSameBytes(
          await decryptA1Stream(chunked(stored, 17), stored.length, ring, "subject"),
          plaintext,
        );
      }
    });
  }

  it("an empty plaintext is an 86-byte object that reads back as empty", async () => {
    const stored = encryptA1(new Uint8Array(0), ring, "subject");
    assert.equal(stored.length, 86);
    assert.equal(decryptA1(stored, ring, "subject").length, 0);
    assert.equal((await decryptA1Stream(chunked(stored, 1), 86, ring, "subject")).length, 0);
  });
});

describe("tampering (spec §1.6): every row fails with its code, never with plaintext", () => {
  const plaintext = patternBytes(300);
  const original = encryptA1(plaintext, ring, "obj");

  const flip = (offset: number, mask = 0x01) => {
    const copy = original.slice();
    copy[offset]! ^= mask;
    return copy;
  };
  const withKeyId = (id: number) => {
    const copy = original.slice();
    new DataView(copy.buffer).setUint32(2, id, true);
    return copy;
  };

  const rows: { name: string; stored: Uint8Array; code: ErrorCode; patterns: RegExp[] }[] = [
    {
      name: "version byte 0",
      stored: flip(0),
      code: "UNSUPPORTED_FORMAT",
      patterns: [/not an A1 object/, /0x40 0x31/],
    },
    { name: "version byte 1", stored: flip(1), code: "UNSUPPORTED_FORMAT", patterns: [/not an A1 object/] },
    {
      name: "key id → an unknown id",
      stored: withKeyId(42),
      code: "UNKNOWN_KEY_ID",
      patterns: [/master key id 42\b/, /2A000000/],
    },
    {
      name: "key id, high byte → an unknown id",
      stored: flip(5, 0x80),
      code: "UNKNOWN_KEY_ID",
      patterns: [/master key id 2147483655\b/, /07000080/],
    },
    {
      name: "key id → another configured id",
      stored: withKeyId(9),
      code: "INTEGRITY",
      patterns: [/integrity check failed/, /key with id 9\b/],
    },
    { name: "EIV first byte", stored: flip(6), code: "INTEGRITY", patterns: [/integrity check failed/] },
    { name: "EIV last byte", stored: flip(37), code: "INTEGRITY", patterns: [/integrity check failed/] },
    { name: "EDEK first byte", stored: flip(38), code: "INTEGRITY", patterns: [/integrity check failed/] },
    { name: "EDEK last byte", stored: flip(69), code: "INTEGRITY", patterns: [/integrity check failed/] },
    { name: "ciphertext first byte", stored: flip(70), code: "INTEGRITY", patterns: [] },
    { name: "ciphertext last byte", stored: flip(original.length - 17), code: "INTEGRITY", patterns: [] },
    { name: "tag first byte", stored: flip(original.length - 16), code: "INTEGRITY", patterns: [] },
    { name: "tag last byte", stored: flip(original.length - 1), code: "INTEGRITY", patterns: [] },
    {
      name: "one byte appended",
      stored: Uint8Array.of(...original, 0),
      code: "INTEGRITY",
      patterns: [/integrity check failed/],
    },
    { name: "last byte removed", stored: original.subarray(0, -1), code: "INTEGRITY", patterns: [] },
    {
      name: "plaintext DICOM",
      stored: fakeDicom(),
      code: "UNSUPPORTED_FORMAT",
      patterns: [/0x00 0x00/, /DICOM/],
    },
    {
      name: "plaintext raw DICOM data set",
      stored: Uint8Array.of(8, 0, 0, 0, 4, 0, 0, 0, ...new Uint8Array(100)),
      code: "UNSUPPORTED_FORMAT",
      patterns: [/0x08 0x00/, /DICOM/],
    },
    { name: "plaintext JSON", stored: json('{"a": 1}'), code: "UNSUPPORTED_FORMAT", patterns: [/JSON/] },
  ];
  for (let size = 0; size < 86; size++) {
    const patterns =
      size < 2
        ? [/no header found/]
        : size < 6
          ? [/no master key id found/]
          : [/too short to be an A1 object/];
    rows.push({
      name: `truncated to ${size} bytes`,
      stored: original.subarray(0, size),
      code: "UNSUPPORTED_FORMAT",
      patterns,
    });
  }

  for (const row of rows) {
    it(`${row.name}: ${row.code}, whole and streamed`, async () => {
      await rejectsWith(
        () => decryptA1(row.stored, ring, "obj"),
        row.code,
        /^decrypt obj: /,
        ...row.patterns,
      );
      await rejectsWith(
        () => decryptA1Stream(chunked(row.stored, 5), row.stored.length, ring, "obj"),
        row.code,
        ...row.patterns,
      );
    });
  }
});

{
  describe("decryptA1Stream against the announced size", () => {
    const stored = encryptA1(patternBytes(1000), ring, "obj");

    it("a stream that ends early is truncated", async () => {
      await rejectsWith(
        () => decryptA1Stream(chunked(stored.subarray(0, 500), 64), stored.length, ring, "obj"),
        "INTEGRITY",
        new RegExp(`truncated: the stream ended after 500 of the ${stored.length} announced bytes`),
      );
    });

    it("a stream that goes on is longer than announced", async () => {
      const longer = Uint8Array.of(...stored, 1, 2, 3);
      await rejectsWith(
        () => decryptA1Stream(chunked(longer, 64), stored.length, ring, "obj"),
        "INTEGRITY",
        /longer than announced/,
      );
    });

    it("a size announced too small is longer than announced", async () => {
      await rejectsWith(
        () => decryptA1Stream(chunked(stored, 64), stored.length - 10, ring, "obj"),
        "INTEGRITY",
        /longer than announced/,
      );
    });

    it("an empty stream is truncated", async () => {
      await rejectsWith(
        () => decryptA1Stream(chunked(new Uint8Array(0), 1), 86, ring, "obj"),
        "INTEGRITY",
        /truncated/,
      );
    });

    it("reads the object back, and refuses it tampered", async () => {
      assertSameBytes(
        await decryptA1Stream(chunked(stored, 4096), stored.length, ring, "obj"),
        decryptA1(stored, ring, "obj"),
      );
      const tampered = stored.slice();
      tampered[stored.length - 20]! ^= 1;
      await rejectsWith(
        () => decryptA1Stream(chunked(tampered, 64), stored.length, ring, "obj"),
        "INTEGRITY",
      );
    });
  });
}

describe("decryptA1Stream, other sources", () => {
  it("a Readable abandoned after a bad header is destroyed", async () => {
    const source = Readable.from(chunked(fakeDicom(), 10));
    await rejectsWith(() => decryptA1Stream(source, 200, ring, "obj"), "UNSUPPORTED_FORMAT");
    assert.equal(source.destroyed, true);
  });

  it("a stream of strings is refused", async () => {
    const strings = Readable.from(["A1", "xxxx"], { objectMode: true });
    await assert.rejects(decryptA1Stream(strings, 100, ring, "obj"), TypeError);
  });
});

function fakeDicom(): Uint8Array {
  const bytes = new Uint8Array(200);
  bytes.set(new TextEncoder().encode("DICM"), 128);
  return bytes;
}

function json(text: string): Uint8Array {
  return new TextEncoder().encode(`\n  ${text}`.padEnd(120, " "));
}
