import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  RECORD_VERSION,
  decodeRecord,
  encodeRecord,
  type AttachmentRecord,
} from "../../src/area/attachment-record.js";
import { isStorageError } from "../../src/errors.js";

const UUID = "0a1b2c3d-1111-2222-3333-444455556666";
const RECORD: AttachmentRecord = {
  backend: "AwsS3Storage",
  key: "site/1.2.3/4.5.6/7.8.9.dcm",
  format: "A1",
  adopted: false,
  keepOnRemove: false,
};

describe("attachment record", () => {
  it("reads back every field, in every combination of format and flags", () => {
    for (const format of ["plaintext", "A1", "v2"] as const) {
      for (const adopted of [false, true]) {
        for (const keepOnRemove of [false, true]) {
          const record = { ...RECORD, format, adopted, keepOnRemove };
          assert.deepEqual(decodeRecord(encodeRecord(record), UUID), record);
        }
      }
    }
  });

  it("is laid out as docs/backends.md draws it", () => {
    const bytes = encodeRecord({
      backend: "disk",
      key: "é/k",
      format: "v2",
      adopted: true,
      keepOnRemove: true,
    });
    assert.deepEqual(
      [...bytes],
      [0x4f, 0x43, RECORD_VERSION, 2, 3, 4, ...Buffer.from("disk"), 4, 0, ...Buffer.from("é/k")],
    );
  });

  it("keeps names and keys in UTF-8, up to a key of 65535 bytes", () => {
    const record = { ...RECORD, backend: "archivé", key: "x".repeat(65535) };
    assert.deepEqual(decodeRecord(encodeRecord(record), UUID), record);
    assert.throws(() => encodeRecord({ ...RECORD, key: "x".repeat(65536) }), /key of 1 to 65535 bytes/);
    assert.throws(() => encodeRecord({ ...RECORD, backend: "" }), /backend name of 1 to 255 bytes/);
  });

  // Every row must be refused, naming the attachment, as UNSUPPORTED_FORMAT: never read as some other object.
  const good = encodeRecord(RECORD);
  const refused: Array<[string, Uint8Array, RegExp]> = [
    ["empty bytes of another plugin", Buffer.from("{}"), /no record magic/],
    ["JSON custom data of another plugin", Buffer.from('{"v":1,"b":"disk","p":"x"}'), /no record magic/],
    ["a newer version", Buffer.from([0x4f, 0x43, 2, ...good.subarray(3)]), /record version 2/],
    ["an unknown format", Buffer.from([0x4f, 0x43, 1, 9, ...good.subarray(4)]), /unknown format 9/],
    ["a byte appended", Buffer.concat([good, Buffer.from([0])]), /a key of/],
    ["a byte cut", good.subarray(0, good.length - 1), /a key of/],
    ["a name longer than the bytes", Buffer.from([0x4f, 0x43, 1, 0, 0, 200, 1, 2, 3]), /cut short/],
  ];
  for (const [what, bytes, message] of refused) {
    it(`Precondition: refuses ${what}`, () => {
      assert.throws(
        () => decodeRecord(bytes, UUID),
        (error: unknown) =>
          isStorageError(error, "UNSUPPORTED_FORMAT") &&
          message.test(error.message) &&
          error.message.includes(UUID),
      );
    });
  }
});
