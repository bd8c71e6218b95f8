import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { closeSync, readSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile, mkdir, readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Readable } from "node:stream";
import { after, describe, it } from "node:test";

import { openStorageArea } from "../../src/area/open-storage-area.js";
import type { AttachmentRead, StorageArea, StorageTier } from "../../src/area/storage-area.js";
import type { HybridMode, ResolvedConfig, StorageStructure } from "../../src/config/types.js";
import { encodeRecord } from "../../src/area/attachment-record.js";
import { joinPieces } from "../../src/byte-pieces.js";
import { A1Codec, ENCRYPT_WINDOW_BYTES } from "../../src/crypto/a1-codec.js";
import { EncryptedCodec } from "../../src/crypto/encrypted-codec.js";
import { SYNC_FILE_LIMIT } from "../../src/stores/local-file-io.js";
import { isStorageError, type ErrorCode } from "../../src/errors.js";
import { freesAtOnce } from "../../src/free-memory.js";
import { MemoryLogger } from "../helpers/memory-logger.js";

const UUID = "0a1b2c3d-1111-2222-3333-444455556666";
const OTHER = "ffeeddcc-bbaa-4999-8888-777766665555";
const KEY_1 = Buffer.alloc(32, 1).toString("base64");
const KEY_2 = Buffer.alloc(32, 2).toString("base64");

const roots: string[] = [];
after(() => Promise.all(roots.map((root) => rm(root, { recursive: true, force: true }))));

interface Setup {
  hybridMode?: HybridMode;
  encrypted?: boolean;
  structure?: StorageStructure;
  rootPath?: string;
  legacyUnknown?: boolean;
  masterKeyId?: number;
  previousKeyIds?: number[];
  maxConcurrentInputBytes?: number;
}

interface Fixture {
  area: StorageArea;
  logger: MemoryLogger;
  /** Folder of the object storage (LocalObjectStorage.Path) and of Orthanc's StorageDirectory. */
  objects: string;
  files: string;
  root: string;
}

async function makeArea(setup: Setup = {}, root?: string): Promise<Fixture> {
  if (root === undefined) {
    root = await mkdtemp(join(tmpdir(), "ocs-area-"));
    roots.push(root);
    await writeFile(join(root, "key1.b64"), KEY_1 + "\n");
    await writeFile(join(root, "key2.b64"), KEY_2 + "\n");
  }
  const keyPath = (id: number): string => join(root, `key${id}.b64`);
  const config: ResolvedConfig = {
    backend: { section: "LocalObjectStorage", local: { path: join(root, "objects"), fsync: false } },
    common: {
      rootPath: setup.rootPath ?? "",
      storageStructure: setup.structure ?? "flat",
      enableLegacyUnknownFiles: setup.legacyUnknown ?? false,
      hybridMode: setup.hybridMode ?? "Disabled",
      encryption: {
        enabled: setup.encrypted ?? false,
        masterKey: { id: setup.masterKeyId ?? 1, path: keyPath(setup.masterKeyId ?? 1) },
        previousMasterKeys: (setup.previousKeyIds ?? []).map((id) => ({ id, path: keyPath(id) })),
        maxConcurrentInputBytes: setup.maxConcurrentInputBytes ?? 64 * 1024 * 1024,
      },
    },
    orthanc: { storageDirectory: join(root, "OrthancStorage"), syncStorageArea: false },
    bridge: { startupTimeoutS: 60, requestTimeoutS: 1200, connectTimeoutS: 5 },
    warnings: [],
  };
  const logger = new MemoryLogger();
  const area = await openStorageArea(config, logger);
  return { area, logger, objects: join(root, "objects"), files: join(root, "OrthancStorage"), root };
}

async function bytesOf(read: AttachmentRead): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of read.body) chunks.push(Buffer.from(chunk as Uint8Array));
  const data = Buffer.concat(chunks);
  assert.equal(data.length, read.size, "the announced size matches the body");
  return data;
}

async function place(path: string, data: Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, data);
}

function rejectsWith(code: ErrorCode, pattern?: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(isStorageError(error, code), `expected ${code}, got ${String(error)}`);
    if (pattern) assert.match(error.message, pattern);
    return true;
  };
}

describe("storage area without hybrid mode", () => {
  for (const encrypted of [false, true]) {
    it(`writes, reads whole, reads ranges and deletes (encryption ${encrypted ? "on" : "off"})`, async () => {
      const { area, objects } = await makeArea({ encrypted });
      const data = randomBytes(10_000);
      await area.create(UUID, 1, data);
      const stored = await readFile(join(objects, `${UUID}.dcm${encrypted ? ".enc" : ""}`));
      assert.equal(stored.length, data.length + (encrypted ? 86 : 0));
      if (encrypted) assert.equal(stored.subarray(0, 2).toString(), "A1");
      else assert.deepEqual(stored, data);
      const whole = await area.readWhole(UUID, 1);
      assert.deepEqual(await bytesOf(whole), data);
      assert.equal(whole.tier, "object-storage");
      assert.deepEqual(await bytesOf(await area.readRange(UUID, 1, 128, 1000)), data.subarray(128, 1128));
      assert.deepEqual(await bytesOf(await area.readRange(UUID, 1, 9_999, 1)), data.subarray(9_999));
      await assert.rejects(area.readRange(UUID, 1, 9_999, 2), rejectsWith("BAD_RANGE"));
      await area.remove(UUID, 1);
      assert.deepEqual(await readdir(objects), []);
      await assert.rejects(area.readWhole(UUID, 1), rejectsWith("NOT_FOUND", new RegExp(UUID)));
    });

    it(`round-trips an empty attachment (encryption ${encrypted ? "on" : "off"}), which the official plugin cannot read back`, async () => {
      const { area } = await makeArea({ encrypted });
      await area.create(UUID, 0, new Uint8Array(0));
      const read = await area.readWhole(UUID, 0);
      assert.equal(read.size, 0);
      assert.equal((await bytesOf(read)).length, 0);
    });
  }

  it("streams a create through A1 encryption, counting a window in the budget, refusing more than the budget", async () => {
    const { area, objects } = await makeArea({ encrypted: true, maxConcurrentInputBytes: 20 * 1024 * 1024 });
    const codec = area.codec as A1Codec;
    const data = randomBytes(18 * 1024 * 1024);
    const held: number[] = [];
    const body = Readable.from(
      (function* () {
        for (let offset = 0; offset < data.length; offset += 1024 * 1024) {
          held.push(codec.budget.capacityBytes - codec.budget.availableBytes);
          yield data.subarray(offset, offset + 1024 * 1024);
        }
      })(),
    );
    await area.createStream(UUID, 1, body, data.length);
    assert.ok(
      held.every((bytes) => bytes === ENCRYPT_WINDOW_BYTES),
      `held ${held.join(", ")}`,
    );
    assert.equal(codec.budget.availableBytes, codec.budget.capacityBytes, "given back");
    assert.equal((await readFile(join(objects, `${UUID}.dcm.enc`))).length, data.length + 86);
    assert.ok((await bytesOf(await area.readWhole(UUID, 1))).equals(data));
    await assert.rejects(
      area.createStream(UUID, 1, Readable.from([randomBytes(21 * 1024 * 1024)]), 21 * 1024 * 1024),
      rejectsWith("TOO_LARGE", /MaxConcurrentInputSize/),
    );
  });

  it("frees an encrypted object's memory once stored, never the caller's plaintext", async () => {
    const { area } = await makeArea({ encrypted: true });
    const { store } = area.tiers[0] as StorageTier;
    const stored: Uint8Array[] = [];
    const put = store.put.bind(store);
    store.put = async (key, data) => {
      stored.push(data);
      await put(key, data);
    };
    const putPieces = store.putPieces?.bind(store);
    if (putPieces !== undefined) {
      store.putPieces = async (key, pieces, size) => {
        stored.push(...pieces);
        await putPieces(key, pieces, size);
      };
    }
    const data = randomBytes(300_000);
    await area.create(UUID, 1, data);
    const large = stored.filter((piece) => piece.length >= 64 * 1024 || piece.buffer.byteLength === 0);
    assert.ok(large.length > 0, "the encrypted object was stored");
    // Node 20 has no ArrayBuffer.prototype.transfer: the collector frees the pieces there.
    for (const piece of large) {
      if (freesAtOnce) assert.equal(piece.buffer.byteLength, 0, "the codec's own memory: detached, freed");
    }
    assert.equal(data.length, 300_000, "the plaintext the caller gave stays its own");
    assert.deepEqual(await bytesOf(await area.readWhole(UUID, 1)), data);
  });

  it("keeps a decrypted read counted in the budget until its body is read, since the plaintext is held till then", async () => {
    const { area } = await makeArea({ encrypted: true });
    const codec = area.codec as A1Codec;
    const data = randomBytes(100_000);
    await area.create(UUID, 1, data);
    const whole = await area.readWhole(UUID, 1);
    assert.equal(codec.budget.capacityBytes - codec.budget.availableBytes, data.length);
    assert.deepEqual(await bytesOf(whole), data);
    assert.equal(codec.budget.availableBytes, codec.budget.capacityBytes);
    const range = await area.readRange(UUID, 1, 10, 10);
    range.body.destroy();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(
      codec.budget.availableBytes,
      codec.budget.capacityBytes,
      "given back when the body is dropped",
    );
  });

  it("names each content type as the spec's flat table, under RootPath", async () => {
    const { area, objects } = await makeArea({ encrypted: true, rootPath: "orthanc/data/" });
    for (const type of [0, 1, 2, 3, 1024]) await area.create(UUID, type, Buffer.from(`type ${type}`));
    const names = await readdir(join(objects, "orthanc", "data"));
    assert.deepEqual(names.sort(), [
      `${UUID}.dcm.enc`,
      `${UUID}.dcm.head.enc`,
      `${UUID}.json.enc`,
      `${UUID}.unk.enc`,
    ]);
    assert.equal((await bytesOf(await area.readWhole(UUID, 1024))).toString(), "type 1024");
  });

  it("stores the legacy structure as aa/bb/uuid without extension, even encrypted", async () => {
    const { area, objects } = await makeArea({ encrypted: true, structure: "legacy" });
    await area.create(UUID, 1, Buffer.from("dicom"));
    assert.equal((await readFile(join(objects, "0a", "1b", UUID))).subarray(0, 2).toString(), "A1");
  });

  it("reads and deletes a DicomUntilPixelData attachment stored as .unk when EnableLegacyUnknownFiles is on", async () => {
    const { area, objects } = await makeArea({ legacyUnknown: true });
    await place(join(objects, `${UUID}.unk`), Buffer.from("header written by plugin 1.2.0"));
    assert.equal((await bytesOf(await area.readWhole(UUID, 3))).toString(), "header written by plugin 1.2.0");
    await area.remove(UUID, 3);
    assert.deepEqual(await readdir(objects), []);
    const strict = await makeArea({ legacyUnknown: false });
    await place(join(strict.objects, `${UUID}.unk`), Buffer.from("x"));
    await assert.rejects(strict.area.readWhole(UUID, 3), rejectsWith("NOT_FOUND"));
  });

  it("refuses attachment uuids that are not canonical, before touching any store", async () => {
    const { area } = await makeArea();
    for (const uuid of [
      "../../etc/passwd",
      UUID.toUpperCase(),
      UUID + "0",
      "",
      "0a1b2c3d/1111-2222-3333-444455556666",
    ]) {
      await assert.rejects(area.create(uuid, 1, Buffer.from("x")), rejectsWith("INVALID_ATTACHMENT"));
      await assert.rejects(area.readWhole(uuid, 1), rejectsWith("INVALID_ATTACHMENT"));
      await assert.rejects(area.remove(uuid, 1), rejectsWith("INVALID_ATTACHMENT"));
    }
  });

  it("reports a tampered object as an integrity error naming it, and a plaintext object as not A1", async () => {
    const { area, objects } = await makeArea({ encrypted: true });
    await area.create(UUID, 1, randomBytes(500));
    const path = join(objects, `${UUID}.dcm.enc`);
    const stored = await readFile(path);
    stored[300] = (stored[300] as number) ^ 0x40;
    await writeFile(path, stored);
    await assert.rejects(
      area.readWhole(UUID, 1),
      rejectsWith("INTEGRITY", new RegExp(`${UUID}\\.dcm\\.enc`)),
    );
    const dicom = Buffer.concat([Buffer.alloc(128), Buffer.from("DICM"), randomBytes(200)]);
    await writeFile(path, dicom);
    await assert.rejects(
      area.readWhole(UUID, 1),
      rejectsWith("UNSUPPORTED_FORMAT", new RegExp(`${UUID}\\.dcm\\.enc`)),
    );
  });

  it("with encryption off, refuses an A1 object in place of a DICOM file (whole, and from byte 0), never serving its bytes", async () => {
    // An encrypted bucket read with encryption off: the legacy structure names objects the same either way.
    const written = await makeArea({ encrypted: true, structure: "legacy" });
    const dicom = Buffer.concat([Buffer.alloc(128), Buffer.from("DICM"), randomBytes(1000)]);
    await written.area.create(UUID, 1, dicom);
    await written.area.create(OTHER, 0, dicom);
    const plain = await makeArea({ encrypted: false, structure: "legacy" }, written.root);
    const refused =
      /objects\/0a\/1b\/0a1b2c3d-[-0-9a-f]+: an A1-encrypted object under master key id '01000000', but StorageEncryption is disabled/;
    await assert.rejects(plain.area.readWhole(UUID, 1), rejectsWith("UNSUPPORTED_FORMAT", refused));
    await assert.rejects(plain.area.readRange(UUID, 1, 0, 656), rejectsWith("UNSUPPORTED_FORMAT", refused));
    // A user attachment is opaque: an A1 file may be what the user attached.
    assert.equal((await bytesOf(await plain.area.readWhole(OTHER, 0))).length, dicom.length + 86);
    // The plaintext DICOM file written with encryption off reads back, whole and from byte 0.
    await plain.area.create(UUID, 1, dicom);
    assert.deepEqual(await bytesOf(await plain.area.readWhole(UUID, 1)), dicom);
    assert.deepEqual(await bytesOf(await plain.area.readRange(UUID, 1, 0, 656)), dicom.subarray(0, 656));
    assert.deepEqual(await bytesOf(await plain.area.readRange(UUID, 1, 0, 3)), dicom.subarray(0, 3));
  });

  it("reads objects of a previous master key after rotation, and writes with the new one", async () => {
    const before = await makeArea({ encrypted: true, masterKeyId: 1 });
    await before.area.create(UUID, 1, Buffer.from("written under key 1"));
    const rotated = await makeArea({ encrypted: true, masterKeyId: 2, previousKeyIds: [1] }, before.root);
    assert.equal((await bytesOf(await rotated.area.readWhole(UUID, 1))).toString(), "written under key 1");
    await rotated.area.create(OTHER, 1, Buffer.from("written under key 2"));
    const header = await readFile(join(rotated.objects, `${OTHER}.dcm.enc`));
    assert.equal(header.readUInt32LE(2), 2);
    const forgotten = await makeArea({ encrypted: true, masterKeyId: 2 }, before.root);
    await assert.rejects(forgotten.area.readWhole(UUID, 1), rejectsWith("UNKNOWN_KEY_ID"));
  });
});

describe("the direct path of a read (openFileNow, file answers)", () => {
  /** The bytes of a direct read, its descriptor closed. */
  const bytesIn = (file: { fd: number; size: number; start: number } | undefined): Buffer => {
    assert.ok(file, "opened");
    const bytes = Buffer.alloc(file.size);
    try {
      assert.equal(readSync(file.fd, bytes, 0, file.size, file.start), file.size);
    } finally {
      closeSync(file.fd);
    }
    return bytes;
  };

  it("opens a plaintext object's file, whole or a range, and steps aside for anything else", async () => {
    const { area } = await makeArea();
    const dicom = Buffer.concat([Buffer.alloc(128), Buffer.from("DICM"), randomBytes(1000)]);
    await area.create(UUID, 1, dicom);
    assert.deepEqual(bytesIn(area.openFileNow(UUID, 1, undefined, undefined)), dicom);
    assert.deepEqual(
      bytesIn(area.openFileNow(UUID, 1, { start: 0, end: 10 }, undefined)),
      dicom.subarray(0, 10),
    );
    assert.deepEqual(
      bytesIn(area.openFileNow(UUID, 1, { start: 128, end: 132 }, new Uint8Array(0))),
      Buffer.from("DICM"),
    );
    assert.equal(
      area.openFileNow(UUID, 1, { start: 0, end: dicom.length + 1 }, undefined),
      undefined,
      "BAD_RANGE: from the general read",
    );
    assert.equal(
      area.openFileNow(OTHER, 1, undefined, undefined),
      undefined,
      "NOT_FOUND: from the general read",
    );
    assert.equal(area.openFileNow("../../etc/passwd", 1, undefined, undefined), undefined);
    assert.equal(area.openFileNow(UUID, -1, undefined, undefined), undefined);
    const record = await area.create(OTHER, 1, dicom, { record: true });
    assert.deepEqual(bytesIn(area.openFileNow(OTHER, 1, undefined, record)), dicom, "by the record's key");
    assert.equal(area.openFileNow(OTHER, 1, undefined, Buffer.from("not a record")), undefined);
  });

  it("steps aside for an encrypted area, and for an A1 object where encryption is off (the general read refuses it)", async () => {
    const written = await makeArea({ encrypted: true, structure: "legacy" });
    const dicom = Buffer.concat([Buffer.alloc(128), Buffer.from("DICM"), randomBytes(1000)]);
    await written.area.create(UUID, 1, dicom);
    assert.equal(written.area.openFileNow(UUID, 1, undefined, undefined), undefined);
    const plain = await makeArea({ encrypted: false, structure: "legacy" }, written.root);
    assert.equal(plain.area.openFileNow(UUID, 1, undefined, undefined), undefined);
    assert.equal(plain.area.openFileNow(UUID, 1, { start: 0, end: 656 }, undefined), undefined);
    await assert.rejects(plain.area.readWhole(UUID, 1, { file: true }), rejectsWith("UNSUPPORTED_FORMAT"));
  });

  it("steps aside in hybrid mode when the primary lacks the object: the general read then answers with the secondary's file", async () => {
    const fixture = await makeArea({ hybridMode: "WriteToObjectStorage" });
    await place(join(fixture.files, "0a", "1b", UUID), Buffer.from("only on the file system"));
    assert.equal(fixture.area.openFileNow(UUID, 1, undefined, undefined), undefined);
    const read = await fixture.area.readWhole(UUID, 1, { file: true });
    assert.ok(read.file, "a file answer all the same");
    assert.equal(read.tier, "file-system");
    const bytes = Buffer.alloc(read.size);
    readSync(read.file.fd, bytes, 0, read.size, read.file.start);
    read.body.destroy();
    assert.equal(bytes.toString(), "only on the file system");
  });
});

describe("the direct path of an encrypted read (decodeNow)", () => {
  const dicom = Buffer.concat([Buffer.alloc(128), Buffer.from("DICM"), randomBytes(300_000)]);

  it("decrypts an object's file at once, whole or a range, by its name or its record, and holds its plaintext in the budget until released", async () => {
    const { area } = await makeArea({ encrypted: true });
    const { budget } = area.codec as EncryptedCodec;
    await area.create(UUID, 1, dicom);
    const whole = area.decodeNow(UUID, 1, undefined, undefined);
    assert.ok(whole, "decrypted");
    assert.deepEqual(Buffer.from(joinPieces(whole.pieces)), dicom);
    assert.equal(whole.size, dicom.length);
    assert.equal(whole.decrypted, whole.pieces, "the whole plaintext is the answer");
    assert.equal(budget.availableBytes, budget.capacityBytes - dicom.length, "the plaintext is counted");
    whole.release();
    assert.equal(budget.availableBytes, budget.capacityBytes, "given back");
    const range = area.decodeNow(UUID, 1, { start: 128, end: 132 }, new Uint8Array(0));
    assert.ok(range);
    assert.equal(Buffer.from(joinPieces(range.pieces)).toString(), "DICM");
    assert.equal(range.size, 4);
    assert.equal(Buffer.from(joinPieces(range.decrypted)).length, dicom.length, "what the codec decrypted");
    range.release();
    const record = await area.create(OTHER, 1, dicom, { record: true });
    const recorded = area.decodeNow(OTHER, 1, undefined, record);
    assert.ok(recorded, "by the record's key");
    assert.deepEqual(Buffer.from(joinPieces(recorded.pieces)), dicom);
    recorded.release();
    assert.equal(budget.availableBytes, budget.capacityBytes);
  });

  it("steps aside, holding nothing, for a missing object, a bad range, a plaintext record, a full budget, a large or refused object", async () => {
    const { area, objects } = await makeArea({ encrypted: true, maxConcurrentInputBytes: 8 * 1024 * 1024 });
    const { budget } = area.codec as EncryptedCodec;
    await area.create(UUID, 1, dicom);
    const stepsAside = (why: string, ...args: Parameters<StorageArea["decodeNow"]>) => {
      assert.equal(area.decodeNow(...args), undefined, why);
      assert.equal(budget.availableBytes, budget.capacityBytes, `${why}: nothing held`);
    };
    stepsAside("NOT_FOUND: from the general read", OTHER, 1, undefined, undefined);
    stepsAside("BAD_RANGE: from the general read", UUID, 1, { start: 0, end: dicom.length + 1 }, undefined);
    stepsAside("not an attachment", "../../etc/passwd", 1, undefined, undefined);
    const plainRecord = encodeRecord({
      backend: area.tiers[0]!.backend,
      key: area.tiers[0]!.keysOf(UUID, 1)[0]!,
      format: "plaintext",
      adopted: true,
      keepOnRemove: false,
    });
    stepsAside("an adopted plaintext object: the general read", UUID, 1, undefined, plainRecord);
    // The budget's queue is served in order: a read that would wait takes the general way, which waits.
    const held = await budget.acquire(budget.capacityBytes - 1000, "a test", "hold");
    assert.equal(area.decodeNow(UUID, 1, undefined, undefined), undefined, "the budget is full");
    const waiting = area.readWhole(UUID, 1);
    held();
    const read = await waiting;
    assert.deepEqual(await bytesOf(read), dicom, "the general read answers once the budget allows");
    assert.equal(budget.availableBytes, budget.capacityBytes);

    const large = randomBytes(SYNC_FILE_LIMIT + 1);
    await area.create(OTHER, 1, large);
    stepsAside("a large object is streamed by the general read", OTHER, 1, undefined, undefined);
    const [name] = (await readdir(objects)).filter((file) => file.startsWith(UUID));
    const path = join(objects, name!);
    const stored = await readFile(path);
    stored[stored.length - 20]! ^= 1;
    await writeFile(path, stored);
    stepsAside("a refused object: the general read says why", UUID, 1, undefined, undefined);
    await assert.rejects(area.readWhole(UUID, 1), rejectsWith("INTEGRITY"));
    assert.equal(budget.availableBytes, budget.capacityBytes);
  });

  it("steps aside for a plaintext area: its direct path is openFileNow", async () => {
    const { area } = await makeArea();
    await area.create(UUID, 1, dicom);
    assert.equal(area.decodeNow(UUID, 1, undefined, undefined), undefined);
  });
});

describe("storage area in hybrid mode (spec §4.2)", () => {
  const cases: Array<{ mode: HybridMode; primary: "objects" | "files" }> = [
    { mode: "WriteToObjectStorage", primary: "objects" },
    { mode: "WriteToFileSystem", primary: "files" },
  ];
  for (const { mode, primary } of cases) {
    const secondary = primary === "objects" ? "files" : "objects";
    const pathIn = (fixture: Fixture, tier: "objects" | "files", encrypted = false): string =>
      tier === "objects"
        ? join(fixture.objects, `${UUID}.dcm${encrypted ? ".enc" : ""}`)
        : join(fixture.files, "0a", "1b", UUID);

    it(`${mode}: create writes to the primary only`, async () => {
      const fixture = await makeArea({ hybridMode: mode });
      await fixture.area.create(UUID, 1, Buffer.from("new"));
      assert.equal((await readFile(pathIn(fixture, primary))).toString(), "new");
      await assert.rejects(readFile(pathIn(fixture, secondary)), { code: "ENOENT" });
    });

    it(`${mode}: a read is served by the primary when it has the object`, async () => {
      const fixture = await makeArea({ hybridMode: mode });
      await place(pathIn(fixture, primary), Buffer.from("primary copy"));
      await place(pathIn(fixture, secondary), Buffer.from("secondary copy"));
      const read = await fixture.area.readWhole(UUID, 1);
      assert.equal((await bytesOf(read)).toString(), "primary copy");
      assert.equal(read.tier, primary === "objects" ? "object-storage" : "file-system");
    });

    it(`${mode}: a read falls back to the secondary when the primary lacks the object (whole and range)`, async () => {
      const fixture = await makeArea({ hybridMode: mode });
      await place(pathIn(fixture, secondary), Buffer.from("only on the secondary"));
      const read = await fixture.area.readWhole(UUID, 1);
      assert.equal((await bytesOf(read)).toString(), "only on the secondary");
      assert.equal(read.tier, secondary === "objects" ? "object-storage" : "file-system");
      assert.equal((await bytesOf(await fixture.area.readRange(UUID, 1, 5, 2))).toString(), "on");
    });

    it(`${mode}: a read falls back to the secondary when the primary's object is broken, and logs why`, async () => {
      const fixture = await makeArea({ hybridMode: mode, encrypted: true });
      await fixture.area.create(UUID, 1, Buffer.from("good copy"));
      const good = await readFile(pathIn(fixture, primary, true));
      await place(pathIn(fixture, secondary, true), good);
      const broken = Buffer.from(good);
      broken[broken.length - 1] = (broken[broken.length - 1] as number) ^ 1;
      await writeFile(pathIn(fixture, primary, true), broken);
      assert.equal((await bytesOf(await fixture.area.readWhole(UUID, 1))).toString(), "good copy");
      assert.ok(
        fixture.logger.lines.some((line) => line.level === "warn" && /integrity/i.test(line.message)),
      );
    });

    it(`${mode}: NOT_FOUND names both storages when neither has the object`, async () => {
      const fixture = await makeArea({ hybridMode: mode });
      await assert.rejects(
        fixture.area.readWhole(UUID, 1),
        rejectsWith("NOT_FOUND", /object-storage.*file-system|file-system.*object-storage/),
      );
    });

    it(`${mode}: a broken primary with no secondary copy reports the real failure, not NOT_FOUND`, async () => {
      const fixture = await makeArea({ hybridMode: mode, encrypted: true });
      await place(pathIn(fixture, primary, true), Buffer.from("A1 but far too short"));
      await assert.rejects(
        fixture.area.readWhole(UUID, 1),
        (error) => isStorageError(error) && error.code !== "NOT_FOUND",
      );
    });

    it(`${mode}: remove deletes the attachment from both storages`, async () => {
      const fixture = await makeArea({ hybridMode: mode });
      await place(pathIn(fixture, primary), Buffer.from("a"));
      await place(pathIn(fixture, secondary), Buffer.from("b"));
      await fixture.area.remove(UUID, 1);
      await assert.rejects(readFile(pathIn(fixture, primary)), { code: "ENOENT" });
      await assert.rejects(readFile(pathIn(fixture, secondary)), { code: "ENOENT" });
      await fixture.area.remove(UUID, 1); // nothing left: still not an error
    });

    it(`${mode}: with encryption on, the file-system copy is encrypted too, at aa/bb/uuid without suffix`, async () => {
      const fixture = await makeArea({ hybridMode: mode, encrypted: true });
      await fixture.area.create(UUID, 1, Buffer.from("secret"));
      const path =
        primary === "files"
          ? join(fixture.files, "0a", "1b", UUID)
          : join(fixture.objects, `${UUID}.dcm.enc`);
      assert.equal((await readFile(path)).subarray(0, 2).toString(), "A1");
      assert.equal((await bytesOf(await fixture.area.readWhole(UUID, 1))).toString(), "secret");
    });
  }

  it("WriteToObjectStorage with encryption: an unencrypted Orthanc file on disk is refused, never served as is", async () => {
    const fixture = await makeArea({ hybridMode: "WriteToObjectStorage", encrypted: true });
    await place(
      join(fixture.files, "0a", "1b", UUID),
      Buffer.concat([Buffer.alloc(128), Buffer.from("DICM"), randomBytes(64)]),
    );
    await assert.rejects(fixture.area.readWhole(UUID, 1), rejectsWith("UNSUPPORTED_FORMAT"));
  });
});
