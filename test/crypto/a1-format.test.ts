// The A1 byte layout (spec §1.1): constants, prefix encode/decode, sizes, check order (spec §1.6), and
// recognising stored objects by their first bytes.

import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { deflateSync } from "node:zlib";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
  A1_CIPHERTEXT_OFFSET,
  A1_EDEK_LENGTH,
  A1_EDEK_OFFSET,
  A1_EIV_LENGTH,
  A1_EIV_OFFSET,
  A1_KEY_ID_LENGTH,
  A1_KEY_ID_OFFSET,
  A1_OVERHEAD,
  A1_PREFIX_LENGTH,
  A1_TAG_LENGTH,
  A1_VERSION,
  A1_VERSION_LENGTH,
  DESCRIBE_PREFIX_BYTES,
  a1PlaintextSize,
  a1StoredSize,
  decodeA1Header,
  describeStoredObject,
  encodeA1Prefix,
  isA1InPlaceOfPlaintext,
} from "../../src/crypto/a1-format.js";
import { dicomDir } from "../../test-support/paths.js";
import { hex, manifest, patternBytes, rejectsWith, vectorBytes } from "./support.js";

const eiv = patternBytes(32, 1);
const edek = patternBytes(32, 2);

describe("A1 layout constants (spec §1.1)", () => {
  it("fields follow each other with no gap, and the overhead is prefix + tag", () => {
    assert.equal(A1_VERSION, "A1");
    assert.equal(A1_KEY_ID_OFFSET, A1_VERSION_LENGTH);
    assert.equal(A1_EIV_OFFSET, A1_KEY_ID_OFFSET + A1_KEY_ID_LENGTH);
    assert.equal(A1_EDEK_OFFSET, A1_EIV_OFFSET + A1_EIV_LENGTH);
    assert.equal(A1_PREFIX_LENGTH, A1_EDEK_OFFSET + A1_EDEK_LENGTH);
    assert.equal(A1_CIPHERTEXT_OFFSET, 70);
    assert.equal(A1_OVERHEAD, A1_PREFIX_LENGTH + A1_TAG_LENGTH);
    assert.equal(A1_OVERHEAD, 86);
  });
});

describe("encodeA1Prefix / decodeA1Header", () => {
  it("writes 'A1', the key id little-endian, EIV and EDEK", () => {
    const prefix = encodeA1Prefix(3, eiv, edek);
    assert.equal(hex(prefix.subarray(0, 6)), "413103000000");
    assert.equal(hex(prefix.subarray(6, 38)), hex(eiv));
    assert.equal(hex(prefix.subarray(38, 70)), hex(edek));
  });

  for (const [id, bytes] of [
    [0, "00000000"],
    [42, "2a000000"],
    [0x01020304, "04030201"],
    [4294967295, "ffffffff"],
  ] as const) {
    it(`key id ${id} round-trips as ${bytes}`, () => {
      const prefix = encodeA1Prefix(id, eiv, edek);
      assert.equal(hex(prefix.subarray(2, 6)), bytes);
      const header = decodeA1Header(prefix, A1_OVERHEAD + 5, "obj");
      assert.equal(header?.keyId, id);
      assert.equal(header?.keyIdHex, bytes.toUpperCase());
      assert.equal(header?.plaintextSize, 5);
      assert.equal(hex(header?.prefix ?? new Uint8Array()), hex(prefix));
    });
  }

  it("refuses key ids outside uint32 and fields of the wrong size", () => {
    for (const id of [-1, 4294967296, 1.5, Number.NaN])
      assert.throws(() => encodeA1Prefix(id, eiv, edek), RangeError);
    assert.throws(() => encodeA1Prefix(1, eiv.subarray(1), edek), RangeError);
    assert.throws(() => encodeA1Prefix(1, eiv, new Uint8Array(33)), RangeError);
  });

  it("reads a prefix inside a larger buffer at a non-zero offset (pooled Buffers)", () => {
    const pool = new Uint8Array(300);
    pool.set(encodeA1Prefix(0x0a0b0c0d, eiv, edek), 13);
    const header = decodeA1Header(pool.subarray(13, 13 + 70), 1000, "obj");
    assert.equal(header?.keyId, 0x0a0b0c0d);
    assert.equal(hex(header?.eiv ?? new Uint8Array()), hex(eiv));
  });

  it("returns null while more bytes are needed, and decides as soon as the bytes show a problem", () => {
    const prefix = encodeA1Prefix(1, eiv, edek);
    for (let have = 0; have < 70; have++)
      assert.equal(decodeA1Header(prefix.subarray(0, have), 1000, "o"), null);
    assert.throws(() => decodeA1Header(Uint8Array.of(0, 0), 1000, "o"), /not an A1 object/);
  });

  it("checks in the order of spec §1.6: header, version, key id, then our minimum size", async () => {
    const notA1 = Uint8Array.of(0x42, 0x31);
    await rejectsWith(
      () => decodeA1Header(new Uint8Array(1), 1, "o"),
      "UNSUPPORTED_FORMAT",
      /no header found/,
    );
    await rejectsWith(() => decodeA1Header(notA1, 4, "o"), "UNSUPPORTED_FORMAT", /not an A1 object/);
    await rejectsWith(
      () => decodeA1Header(Uint8Array.of(0x41, 0x31), 5, "o"),
      "UNSUPPORTED_FORMAT",
      /no master key id/,
    );
    await rejectsWith(
      () => decodeA1Header(Uint8Array.of(0x41, 0x31), 6, "o"),
      "UNSUPPORTED_FORMAT",
      /too short/,
    );
    await rejectsWith(
      () => decodeA1Header(Uint8Array.of(0x41, 0x31), 85, "o"),
      "UNSUPPORTED_FORMAT",
      /85 bytes/,
    );
  });
});

describe("a1StoredSize / a1PlaintextSize", () => {
  for (const size of [0, 1, 15, 16, 17, 65535, 65536, 65537, 2 ** 40]) {
    it(`are inverse at ${size}`, () => {
      assert.equal(a1StoredSize(size), size + 86);
      assert.equal(a1PlaintextSize(a1StoredSize(size)), size);
    });
  }

  it("refuse impossible sizes", async () => {
    await rejectsWith(() => a1PlaintextSize(85, "obj"), "UNSUPPORTED_FORMAT", /obj: too short/);
    assert.throws(() => a1StoredSize(-1), RangeError);
    assert.throws(() => a1PlaintextSize(1.5), RangeError);
  });
});

describe("describeStoredObject (no key needed)", () => {
  it("reads the key id and plaintext size of every vector", () => {
    for (const vector of manifest.cases) {
      const stored = vectorBytes(vector.encrypted);
      const description = describeStoredObject(stored.subarray(0, DESCRIBE_PREFIX_BYTES), stored.length);
      assert.equal(description.format, "A1");
      if (description.format !== "A1") continue;
      assert.equal(description.plaintextSize, stored.length - 86);
      assert.equal(description.keyIdHex, hex(stored.subarray(2, 6)).toUpperCase());
    }
    const unknown = manifest.cases.find((c) => c.id === "neg-unknown-key-id-42");
    const stored = vectorBytes(unknown?.encrypted ?? "");
    assert.deepEqual(describeStoredObject(stored, stored.length), {
      format: "A1",
      keyId: 42,
      keyIdHex: "2A000000",
      plaintextSize: 1,
    });
  });

  it("recognises the real DICOM fixtures as plaintext DICOM", () => {
    const files = readdirSync(dicomDir).filter((f) => f.endsWith(".dcm"));
    assert.ok(files.length > 0);
    for (const file of files) {
      const bytes = new Uint8Array(readFileSync(join(dicomDir, file)));
      const description = describeStoredObject(bytes.subarray(0, DESCRIBE_PREFIX_BYTES), bytes.length);
      assert.deepEqual(description, { format: "plaintext", looksLike: "DICOM" }, file);
    }
  });

  it("recognises JSON, and calls anything else unknown", () => {
    const text = (s: string) => new TextEncoder().encode(s);
    assert.deepEqual(describeStoredObject(text('{"0008,0005": {}}'), 17), {
      format: "plaintext",
      looksLike: "JSON",
    });
    assert.deepEqual(describeStoredObject(text(" \r\n\t[1]"), 7), { format: "plaintext", looksLike: "JSON" });
    assert.deepEqual(describeStoredObject(text("hello"), 5), { format: "plaintext", looksLike: "unknown" });
    assert.deepEqual(describeStoredObject(new Uint8Array(0), 0), {
      format: "plaintext",
      looksLike: "unknown",
    });
    assert.deepEqual(describeStoredObject(text("A"), 1), { format: "plaintext", looksLike: "unknown" });
  });

  it("refuses an object that starts with 'A1' but is too short to be one", async () => {
    const start = encodeA1Prefix(1, eiv, edek);
    await rejectsWith(
      () => describeStoredObject(start.subarray(0, 5), 5),
      "UNSUPPORTED_FORMAT",
      /no master key id/,
    );
    await rejectsWith(() => describeStoredObject(start, 70), "UNSUPPORTED_FORMAT", /too short/);
  });

  it("needs the first 6 bytes of a longer object", () => {
    assert.throws(() => describeStoredObject(Uint8Array.of(0x41, 0x31), 1000), RangeError);
  });
});

describe("isA1InPlaceOfPlaintext (encryption off: an A1 object must not be served as Orthanc's file)", () => {
  const a1 = vectorBytes(
    manifest.cases.find((c) => c.encrypted_size >= DESCRIBE_PREFIX_BYTES)?.encrypted ?? "",
  );
  const head = (bytes: Uint8Array) => bytes.subarray(0, DESCRIBE_PREFIX_BYTES);

  it("an A1 object in place of a DICOM file, header or JSON summary (types 1, 3, 2)", () => {
    for (const type of [1, 2, 3])
      assert.equal(isA1InPlaceOfPlaintext(head(a1), a1.length, type), true, `${type}`);
  });

  it("not for user attachments (type 0): their bytes are opaque, an A1 file may be one", () => {
    assert.equal(isA1InPlaceOfPlaintext(head(a1), a1.length, 0), false);
  });

  it("never for the real DICOM fixtures", () => {
    for (const file of readdirSync(dicomDir).filter((f) => f.endsWith(".dcm"))) {
      const bytes = new Uint8Array(readFileSync(join(dicomDir, file)));
      assert.equal(isA1InPlaceOfPlaintext(head(bytes), bytes.length, 1), false, file);
    }
  });

  it("not for a DICOM file whose preamble starts with 'A1' (it has DICM at 128)", () => {
    const dicom = Buffer.concat([
      Buffer.from("A1"),
      patternBytes(126, 3),
      Buffer.from("DICM"),
      patternBytes(300),
    ]);
    assert.equal(isA1InPlaceOfPlaintext(head(dicom), dicom.length, 1), false);
    dicom.write("DICX", 128);
    assert.equal(isA1InPlaceOfPlaintext(head(dicom), dicom.length, 1), true, "without DICM it is not DICOM");
  });

  it("not for an Orthanc-compressed attachment whose 8-byte size starts with 'A1' (0x3141 + k * 65536)", () => {
    const plaintext = patternBytes(0x3141 + 65536, 5);
    const size = Buffer.alloc(8);
    size.writeBigUInt64LE(BigInt(plaintext.length));
    const compressed = Buffer.concat([size, deflateSync(plaintext)]);
    assert.equal(compressed.subarray(0, 2).toString("latin1"), "A1");
    assert.equal(isA1InPlaceOfPlaintext(head(compressed), compressed.length, 1), false);
    assert.equal(isA1InPlaceOfPlaintext(head(compressed), compressed.length, 2), false);
  });

  it("not when the bytes cannot tell: too few of them, or an object too short to be A1", () => {
    assert.equal(isA1InPlaceOfPlaintext(a1.subarray(0, 100), a1.length, 1), false);
    const short = a1.subarray(0, A1_OVERHEAD - 1);
    assert.equal(isA1InPlaceOfPlaintext(short, short.length, 1), false);
    const json = new TextEncoder().encode(`{"A1": ${"1".repeat(200)}}`);
    assert.equal(isA1InPlaceOfPlaintext(head(json), json.length, 2), false);
  });
});
