// The key ring (spec §1.8): lookup by id, duplicates, loading from a StorageEncryption section, rotation.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { decryptA1, encryptA1 } from "../../src/crypto/a1-cipher.js";
import { KeyRing, a1Keystream } from "../../src/crypto/key-ring.js";
import type { EncryptionOptions } from "../../src/config/types.js";
import { assertSameBytes, hex, patternBytes, rejectsWith, tempDir } from "./support.js";

const key = (fill: number) => new Uint8Array(32).fill(fill);

describe("KeyRing lookup (spec §1.8)", () => {
  it("finds the current key, then previous keys, and nothing else", () => {
    const ring = new KeyRing({ id: 1, key: key(1) }, [{ id: 2, key: key(2) }]);
    assert.equal(ring.find(1)?.key[0], 1);
    assert.equal(ring.find(2)?.key[0], 2);
    assert.equal(ring.find(3), undefined);
    assert.deepEqual(ring.ids, [1, 2]);
  });

  it("the current key wins over a previous key with the same id, with a warning", () => {
    const ring = new KeyRing({ id: 1, key: key(1) }, [{ id: 1, key: key(9) }]);
    assert.equal(ring.find(1)?.key[0], 1);
    assert.deepEqual(ring.ids, [1]);
    assert.match(ring.warnings.join("\n"), /id 1 is both the MasterKey and a PreviousMasterKeys entry/);
  });

  it("among previous keys with the same id the last wins, with a warning", () => {
    const ring = new KeyRing({ id: 1, key: key(1) }, [
      { id: 2, key: key(2) },
      { id: 2, key: key(3) },
    ]);
    assert.equal(ring.find(2)?.key[0], 3);
    assert.match(ring.warnings.join("\n"), /lists id 2 twice/);
  });

  it("the same key listed twice is not worth a warning", () => {
    const ring = new KeyRing({ id: 1, key: key(1) }, [{ id: 1, key: key(1) }]);
    assert.deepEqual(ring.warnings, []);
  });

  it("accepts the whole uint32 range of ids and nothing outside it", () => {
    const ring = new KeyRing({ id: 4294967295, key: key(1) }, [{ id: 0, key: key(2) }]);
    assert.equal(ring.find(4294967295)?.id, 4294967295);
    assert.equal(ring.find(0)?.id, 0);
    assert.throws(() => new KeyRing({ id: 4294967296, key: key(1) }), RangeError);
    assert.throws(() => new KeyRing({ id: -1, key: key(1) }), RangeError);
    assert.throws(() => new KeyRing({ id: 1, key: new Uint8Array(31) }), RangeError);
  });

  it("precomputes each key's keystream (spec §1.4) and copies the key", () => {
    const bytes = key(5);
    const ring = new KeyRing({ id: 1, key: bytes });
    bytes.fill(0);
    assert.equal(ring.current.key[0], 5);
    assertSameBytes(ring.current.keystream, a1Keystream(key(5)));
    assert.equal(ring.current.keystream.length, 32);
  });
});

describe("KeyRing.load and key rotation", () => {
  let files: Awaited<ReturnType<typeof tempDir>>;
  let key1: string;
  let key2: string;
  before(async () => {
    files = await tempDir();
    key1 = await files.write("key1.b64", `${Buffer.from(key(1)).toString("base64")}\n`);
    key2 = await files.write("key2.b64", `${Buffer.from(key(2)).toString("base64")}\n`);
  });
  after(() => files.remove());

  const options = (masterKey: [number, string], previous: [number, string][] = []): EncryptionOptions => ({
    enabled: true,
    masterKey: { id: masterKey[0], path: masterKey[1] },
    previousMasterKeys: previous.map(([id, path]) => ({ id, path })),
    maxConcurrentInputBytes: 1024 * 1024,
  });

  it("reads the files", async () => {
    const ring = await KeyRing.load(options([2, key2], [[1, key1]]));
    assert.equal(hex(ring.current.key), hex(key(2)));
    assert.equal(hex(ring.find(1)?.key ?? new Uint8Array()), hex(key(1)));
  });

  it("rotation: written under key 1, readable under key 2 with 1 as a previous key, not without it", async () => {
    const plaintext = patternBytes(1000);
    const original = await KeyRing.load(options([1, key1]));
    const stored = encryptA1(plaintext, original, "obj");
    assert.deepEqual([...stored.subarray(2, 6)], [1, 0, 0, 0]);

    const rotated = await KeyRing.load(options([2, key2], [[1, key1]]));
    assertSameBytes(decryptA1(stored, rotated, "obj"), plaintext);
    assert.deepEqual(
      [...encryptA1(plaintext, rotated, "obj").subarray(2, 6)],
      [2, 0, 0, 0],
      "new writes carry id 2",
    );

    const forgotten = await KeyRing.load(options([2, key2]));
    await rejectsWith(
      () => decryptA1(stored, forgotten, "obj"),
      "UNKNOWN_KEY_ID",
      /master key id 1\b/,
      /01000000/,
    );
  });

  it("a missing key file is named", async () => {
    await rejectsWith(
      () => KeyRing.load(options([2, key2], [[1, `${files.dir}/gone.b64`]])),
      "KEY_FILE_INVALID",
      /gone\.b64/,
      /ENOENT/,
    );
  });

  it("every bad key file is reported at once", async () => {
    const bad = await files.write("bad.b64", "not-a-key\n");
    await rejectsWith(
      () => KeyRing.load(options([2, bad], [[1, `${files.dir}/gone.b64`]])),
      "KEY_FILE_INVALID",
      /2 of 2 key files are invalid/,
      /bad\.b64/,
      /gone\.b64/,
    );
  });

  it("refuses a missing MasterKey and ids outside uint32", async () => {
    await rejectsWith(
      () => KeyRing.load({ enabled: true, previousMasterKeys: [], maxConcurrentInputBytes: 1 }),
      "CONFIG_INVALID",
      /StorageEncryption\.MasterKey/,
    );
    await rejectsWith(
      () => KeyRing.load(options([1, key1], [[2 ** 32, key2]])),
      "CONFIG_INVALID",
      /PreviousMasterKeys\[0\]/,
      /4294967296/,
    );
  });
});
