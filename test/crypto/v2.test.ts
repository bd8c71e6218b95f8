// The v2 format (docs/encryption-format-v2.md): the frozen vectors whole, streamed and byte by byte, by our
// code and by the independent WebCrypto reader; round trips at the segment boundaries; every header field
// and every kind of segment tampering refused with an error naming the object.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import { describe, it } from "node:test";

import { KeyRing } from "../../src/crypto/key-ring.js";
import { describeStoredObject } from "../../src/crypto/a1-format.js";
import { EncryptedCodec } from "../../src/crypto/encrypted-codec.js";
import { MemoryBudget } from "../../src/crypto/memory-budget.js";
import {
  createV2EncryptStream,
  decryptV2,
  decryptV2Stream,
  encryptV2,
  encryptV2WithSecrets,
  v2WrappingKey,
} from "../../src/crypto/v2-cipher.js";
import {
  V2_DEFAULT_SEGMENT_SHIFT,
  V2_HEADER_LENGTH,
  v2PlaintextSize,
  v2Span,
  v2StoredSize,
} from "../../src/crypto/v2-format.js";
import { fixturesDir } from "../../test-support/paths.js";
import {
  assertSameBytes,
  chunked,
  collect,
  fromHex,
  hex,
  patternBytes,
  rejectsWith,
  testRing,
} from "./support.js";
import { decryptRange, decryptWhole } from "./v2-webcrypto.js";

const VECTORS = join(fixturesDir, "v2-vectors");
interface V2Case {
  id: string;
  content_type: number;
  segment_shift: number;
  plaintext: string;
  stored: string;
  stored_size: number;
  segment_key_hex: string;
  commitment_hex: string;
  header_hex: string;
}
const manifest = JSON.parse(readFileSync(join(VECTORS, "manifest.json"), "utf8")) as {
  master_key: { id: number; key_hex: string };
  wrapping_key_hex: string;
  dek_hex: string;
  salt_hex: string;
  uuid: string;
  cases: V2Case[];
};
const file = (name: string): Uint8Array => new Uint8Array(readFileSync(join(VECTORS, name)));
const vectorRing = new KeyRing({ id: manifest.master_key.id, key: fromHex(manifest.master_key.key_hex) });
const vectorKeys = new Map([[manifest.master_key.id, fromHex(manifest.master_key.key_hex)]]);

const UUID = "0a1b2c3d-1111-2222-3333-444455556666";
const OTHER_UUID = "ffeeddcc-bbaa-4999-8888-777766665555";
const SUBJECT = "s3://bucket/0a1b2c3d-1111-2222-3333-444455556666.dcm.enc";
const DICOM = { uuid: UUID, contentType: 1 };
/** The segment size new objects are written with. */
const SEGMENT = 2 ** V2_DEFAULT_SEGMENT_SHIFT;

describe("v2 vectors", () => {
  it("derive the wrapping key of the manifest", () => {
    assert.equal(hex(v2WrappingKey(vectorRing.current)), manifest.wrapping_key_hex);
  });
  for (const kase of manifest.cases) {
    const stored = file(kase.stored);
    const plaintext = file(kase.plaintext);
    const identity = { uuid: manifest.uuid, contentType: kase.content_type };
    it(`${kase.id}: re-encrypts to the same bytes with the same secrets`, () => {
      const secrets = { dek: fromHex(manifest.dek_hex), salt: fromHex(manifest.salt_hex) };
      const again = encryptV2WithSecrets(plaintext, {
        key: vectorRing.current,
        attachment: identity,
        secrets,
        segmentShift: kase.segment_shift,
      });
      assertSameBytes(again, stored);
      assert.equal(hex(stored.subarray(0, V2_HEADER_LENGTH)), kase.header_hex);
      assert.equal(hex(stored.subarray(92, 124)), kase.commitment_hex);
    });
    it(`${kase.id}: decrypts whole, streamed in 4 KiB chunks and byte by byte`, async () => {
      assertSameBytes(decryptV2(stored, vectorRing, identity, SUBJECT), plaintext);
      for (const size of [4096, 1]) {
        assertSameBytes(
          await decryptV2Stream(chunked(stored, size), stored.length, vectorRing, identity, SUBJECT),
          plaintext,
        );
      }
    });
    it(`${kase.id}: the independent WebCrypto reader decrypts it`, async () => {
      const { plaintext: theirs, header } = await decryptWhole(stored, vectorKeys, manifest.uuid);
      assertSameBytes(theirs, plaintext);
      assert.equal(header.contentType, kase.content_type);
    });
    it(`${kase.id}: inspect's description shows format, key id and segments`, () => {
      const described = describeStoredObject(stored.subarray(0, 132), stored.length);
      assert.equal(described.format, "v2");
      assert.ok(described.format === "v2");
      assert.equal(described.keyId, 1);
      assert.equal(described.keyIdHex, "01000000");
      assert.equal(described.plaintextSize, plaintext.length);
      assert.equal(described.segmentSize, 2 ** kase.segment_shift);
    });
  }
});

describe("v2 sizes", () => {
  for (const size of [0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 2 * SEGMENT, 3 * SEGMENT + 5]) {
    it(`stored size and plaintext size invert each other at ${size} bytes`, () => {
      assert.equal(v2PlaintextSize(v2StoredSize(size), SUBJECT), size);
    });
  }
  it("refuses a stored size no plaintext gives (an A1-sized or cut object)", () => {
    assert.throws(() => v2PlaintextSize(V2_HEADER_LENGTH + SEGMENT + 16 + 8, SUBJECT), /no size a v2 object/);
  });
  it("spans only the covering segments", () => {
    const span = v2Span(5 * SEGMENT, V2_DEFAULT_SEGMENT_SHIFT, SEGMENT + 10, 2 * SEGMENT + 1);
    assert.deepEqual(span, {
      firstSegment: 1,
      lastSegment: 2,
      storedStart: V2_HEADER_LENGTH + SEGMENT + 16,
      storedEnd: V2_HEADER_LENGTH + 3 * (SEGMENT + 16),
    });
    assert.equal(v2Span(100, V2_DEFAULT_SEGMENT_SHIFT, 0, 100).storedEnd, v2StoredSize(100));
  });
});

describe("v2 round trips", () => {
  const ring = testRing(1);
  for (const size of [0, 1, 15, SEGMENT - 1, SEGMENT, SEGMENT + 1, 2 * SEGMENT, 3 * SEGMENT + 17]) {
    it(`${size} bytes: whole and streamed encryption agree with both readers`, async () => {
      const plaintext = patternBytes(size, size + 1);
      const whole = encryptV2(plaintext, ring, DICOM, SUBJECT);
      // Chunks inside a segment, one segment each, and several segments (and a part) in one chunk.
      const streamed: Uint8Array[] = [];
      for (const chunkSize of [10_000, SEGMENT, 3 * SEGMENT + 5]) {
        const encrypt = createV2EncryptStream(ring, DICOM, size, SUBJECT);
        streamed.push(await collect(Readable.from(chunked(plaintext, chunkSize)).pipe(encrypt)));
      }
      assert.equal(whole.length, v2StoredSize(size));
      for (const stored of streamed) assert.equal(stored.length, v2StoredSize(size));
      for (const stored of [whole, ...streamed]) {
        assertSameBytes(decryptV2(stored, ring, DICOM, SUBJECT), plaintext);
        const theirs = await decryptWhole(stored, new Map([[1, ring.current.key]]), UUID);
        assertSameBytes(theirs.plaintext, plaintext);
      }
    });
  }
  it("the independent reader reads a range from the header and the covering segments only", async () => {
    const plaintext = patternBytes(5 * SEGMENT + 123, 9);
    const stored = encryptV2(plaintext, ring, DICOM, SUBJECT);
    const fetch = (from: number, to: number): Promise<Uint8Array> => Promise.resolve(stored.slice(from, to));
    const keys = new Map([[1, ring.current.key]]);
    for (const [start, end] of [
      [0, 1],
      [SEGMENT - 1, SEGMENT + 1],
      [3 * SEGMENT + 7, 5 * SEGMENT + 123],
    ] as const) {
      const { bytes, fetched } = await decryptRange(fetch, stored.length, keys, UUID, start, end);
      assertSameBytes(bytes, plaintext.subarray(start, end));
      const segments = Math.floor((end - 1) / SEGMENT) - Math.floor(start / SEGMENT) + 1;
      assert.ok(fetched <= V2_HEADER_LENGTH + segments * (SEGMENT + 16), `fetched ${fetched}`);
    }
  });
  it("a stream that brings fewer or more bytes than announced fails the encryption", async () => {
    const short = Readable.from(chunked(patternBytes(100), 30)).pipe(
      createV2EncryptStream(ring, DICOM, 101, SUBJECT),
    );
    await rejectsWith(() => collect(short), "INTEGRITY", /truncated/);
    const long = Readable.from(chunked(patternBytes(100), 30)).pipe(
      createV2EncryptStream(ring, DICOM, 99, SUBJECT),
    );
    await rejectsWith(() => collect(long), "INTEGRITY", /longer than announced/);
  });
  it("two encryptions of the same plaintext differ (fresh data key and salt)", () => {
    const plaintext = patternBytes(100);
    assert.notEqual(
      hex(encryptV2(plaintext, ring, DICOM, SUBJECT)),
      hex(encryptV2(plaintext, ring, DICOM, SUBJECT)),
    );
  });
  it("key rotation: an object under a previous key reads with it, and not without it", async () => {
    const stored = encryptV2(patternBytes(1000), testRing(1), DICOM, SUBJECT);
    assertSameBytes(decryptV2(stored, testRing(2, [1]), DICOM, SUBJECT), patternBytes(1000));
    await rejectsWith(
      () => decryptV2(stored, testRing(2), DICOM, SUBJECT),
      "UNKNOWN_KEY_ID",
      /key id 1\b/,
      /PreviousMasterKeys/,
    );
  });
});

describe("v2 tampering: every change is refused, naming the object", () => {
  const ring = testRing(1, [2]);
  const plaintext = patternBytes(3 * SEGMENT + 100, 3);
  const stored = encryptV2(plaintext, ring, DICOM, SUBJECT);
  const other = encryptV2(
    patternBytes(3 * SEGMENT + 100, 4),
    ring,
    { uuid: OTHER_UUID, contentType: 1 },
    SUBJECT,
  );
  const stride = SEGMENT + 16;
  const segmentAt = (bytes: Uint8Array, i: number): Uint8Array =>
    bytes.slice(V2_HEADER_LENGTH + i * stride, V2_HEADER_LENGTH + (i + 1) * stride);
  const flip = (offset: number, mask = 0x01): Uint8Array => {
    const copy = stored.slice();
    copy[offset] = (copy[offset] ?? 0) ^ mask;
    return copy;
  };
  const rows: Array<[string, () => Uint8Array, "INTEGRITY" | "UNSUPPORTED_FORMAT", RegExp]> = [
    ["magic", () => flip(1), "UNSUPPORTED_FORMAT", /not a v2 object/],
    ["version", () => flip(4, 0x07), "UNSUPPORTED_FORMAT", /version 5/],
    ["segment shift, out of range", () => flip(5, 0x40), "INTEGRITY", /segment size/],
    ["segment shift, another valid size", () => flip(5, 0x01), "INTEGRITY", /commitment|extended|truncated/],
    ["content type", () => flip(7), "INTEGRITY", /commitment/],
    ["master key id (to the other configured key)", () => flip(8, 0x03), "INTEGRITY", /does not unwrap/],
    ["plaintext size", () => flip(19), "INTEGRITY", /commitment/],
    ["salt", () => flip(30), "INTEGRITY", /commitment/],
    ["wrapped data key", () => flip(60), "INTEGRITY", /does not unwrap/],
    ["commitment", () => flip(100), "INTEGRITY", /commitment/],
    [
      "a ciphertext byte of segment 1",
      () => flip(V2_HEADER_LENGTH + stride + 5),
      "INTEGRITY",
      /segment 1 of 4/,
    ],
    ["a tag byte of the last segment", () => flip(stored.length - 1), "INTEGRITY", /segment 3 of 4/],
    [
      "truncated at a segment boundary",
      () => stored.slice(0, V2_HEADER_LENGTH + 3 * stride),
      "INTEGRITY",
      /truncated/,
    ],
    ["truncated inside a segment", () => stored.slice(0, stored.length - 50), "INTEGRITY", /truncated/],
    ["bytes appended", () => new Uint8Array([...stored, 0]), "INTEGRITY", /extended/],
    [
      "segments 0 and 1 reordered",
      () => {
        const copy = stored.slice();
        copy.set(segmentAt(stored, 1), V2_HEADER_LENGTH);
        copy.set(segmentAt(stored, 0), V2_HEADER_LENGTH + stride);
        return copy;
      },
      "INTEGRITY",
      /segment 0 of 4/,
    ],
    [
      "segment 1 swapped for another object's segment 1",
      () => {
        const copy = stored.slice();
        copy.set(segmentAt(other, 1), V2_HEADER_LENGTH + stride);
        return copy;
      },
      "INTEGRITY",
      /segment 1 of 4/,
    ],
    [
      "the other object's header on these segments",
      () => {
        const copy = stored.slice();
        copy.set(other.subarray(0, V2_HEADER_LENGTH), 0);
        return copy;
      },
      "INTEGRITY",
      /commitment/,
    ],
  ];
  for (const [name, make, code, pattern] of rows) {
    it(`${name}: ${code}, whole and streamed`, async () => {
      const bytes = make();
      const escaped = new RegExp(SUBJECT.replace(/[.]/g, "\\."));
      await rejectsWith(() => decryptV2(bytes, ring, DICOM, SUBJECT), code, pattern, escaped);
      await rejectsWith(
        () => decryptV2Stream(chunked(bytes, 7000), bytes.length, ring, DICOM, SUBJECT),
        code,
        pattern,
        escaped,
      );
      await assert.rejects(
        decryptWhole(
          bytes,
          new Map([
            [1, ring.current.key],
            [2, ring.find(2)?.key ?? new Uint8Array()],
          ]),
          UUID,
        ),
      );
    });
  }
  it("an object of one segment (decrypted whole by one update): a flipped ciphertext or tag byte, refused", async () => {
    const single = encryptV2(patternBytes(SEGMENT - 5, 6), ring, DICOM, SUBJECT);
    for (const offset of [V2_HEADER_LENGTH + 3, single.length - 1]) {
      const bytes = single.slice();
      bytes[offset] = (bytes[offset] ?? 0) ^ 0x80;
      await rejectsWith(
        () => decryptV2(bytes, ring, DICOM, SUBJECT),
        "INTEGRITY",
        /segment 0 of 1/,
        /bucket/,
      );
    }
  });

  it("magic or version altered, read as the storage area reads: not a recognised format, naming the object", async () => {
    const codec = new EncryptedCodec(ring, new MemoryBudget(1024 * 1024 * 1024), "v2");
    const altered: Array<[string, Uint8Array, RegExp]> = [
      ["first magic byte", flip(0, 0x80), /not a recognised encrypted format/],
      ["last magic byte", flip(3), /not a recognised encrypted format/],
      ["version", flip(4, 0x07), /not a recognised format: .*version 5/],
    ];
    for (const [, bytes, pattern] of altered) {
      for (const source of [() => bytes, () => Readable.from(chunked(bytes, 7000))]) {
        await rejectsWith(
          () => codec.decode(source(), bytes.length, SUBJECT, DICOM),
          "UNSUPPORTED_FORMAT",
          pattern,
          new RegExp(`decrypt ${SUBJECT.replace(/[.]/g, "\\.")}`),
        );
      }
    }
  });

  it("decodeHeldNow, as the daemon's direct read calls it: decrypts at once, refuses a renamed object, holds nothing after", () => {
    const budget = new MemoryBudget(1024 * 1024 * 1024);
    const codec = new EncryptedCodec(ring, budget, "v2");
    const held = codec.decodeHeldNow(stored, SUBJECT, DICOM);
    assert.ok(held);
    assertSameBytes(Buffer.concat(held.pieces), plaintext);
    held.release();
    assert.throws(() => codec.decodeHeldNow(stored, SUBJECT, { ...DICOM, uuid: OTHER_UUID }), /commitment/);
    assert.equal(budget.availableBytes, budget.capacityBytes);
  });

  it("renamed: the object read under another attachment's uuid fails its commitment", async () => {
    await rejectsWith(
      () => decryptV2(stored, ring, { uuid: OTHER_UUID, contentType: 1 }, SUBJECT),
      "INTEGRITY",
      /commitment/,
      /renamed/,
    );
  });
  it("read as another content type: refused", async () => {
    await rejectsWith(
      () => decryptV2(stored, ring, { uuid: UUID, contentType: 3 }, SUBJECT),
      "INTEGRITY",
      /content type 1, read as content type 3/,
    );
  });
  it("another key under the same id: the data key does not unwrap", async () => {
    const impostor = new KeyRing({ id: 1, key: new Uint8Array(32).fill(9) });
    await rejectsWith(() => decryptV2(stored, impostor, DICOM, SUBJECT), "INTEGRITY", /does not unwrap/);
  });
});
