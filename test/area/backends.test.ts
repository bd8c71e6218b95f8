// Several named backends in one area (docs/backends.md), on three folders: writes go to WriteTo only,
// reads probe in ReadOrder (each look counted), deletes reach every backend, each backend decodes with its
// own codec, `backend(name)` reaches one directly, and a verified move goes from one backend to another.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";

import { decodeRecord } from "../../src/area/attachment-record.js";
import { openStorageArea } from "../../src/area/open-storage-area.js";
import type { AttachmentRead, ProbeOutcome, StorageArea } from "../../src/area/storage-area.js";
import type { ResolvedConfig } from "../../src/config/types.js";
import { isStorageError } from "../../src/errors.js";
import { moveAttachment, type AttachmentRecords } from "../../src/ops/move-attachment.js";
import type { ObjectStore } from "../../src/stores/object-store.js";
import { filesUnder } from "../../test-support/folder.js";
import { dicomDir } from "../../test-support/paths.js";
import { resolveOk } from "../config/helpers.js";
import { MemoryLogger } from "../helpers/memory-logger.js";

const UUIDS = [
  "0a1b2c3d-1111-2222-3333-444455556666",
  "1a1b2c3d-1111-2222-3333-444455556666",
  "2a1b2c3d-1111-2222-3333-444455556666",
];

const roots: string[] = [];
after(() => Promise.all(roots.map((root) => rm(root, { recursive: true, force: true }))));

interface Fixture {
  root: string;
  area: StorageArea;
  probes: Array<[string, ProbeOutcome]>;
  /** Store requests by tier and method: "a get". */
  requests: string[];
  /** Tiers whose deletes fail, as a crash would stop the move there. */
  failDeletes: Set<string>;
}

/** Three folder backends a (plaintext), b (plaintext, RootPath "b"), c (encrypted with key 7). */
async function open(options: Record<string, unknown>, root?: string): Promise<Fixture> {
  if (root === undefined) {
    root = await mkdtemp(join(tmpdir(), "ocs-backends-"));
    roots.push(root);
    await writeFile(join(root, "key7.b64"), randomBytes(32).toString("base64"));
  }
  const config: ResolvedConfig = resolveOk({
    OrthancCloudStorage: {
      Backends: {
        a: { LocalObjectStorage: { Path: join(root, "a"), Fsync: false } },
        b: { LocalObjectStorage: { Path: join(root, "b"), Fsync: false, RootPath: "b" } },
        c: {
          LocalObjectStorage: {
            Path: join(root, "c"),
            Fsync: false,
            StorageEncryption: { MasterKey: [7, join(root, "key7.b64")] },
          },
        },
      },
      ...options,
    },
  });
  const probes: Array<[string, ProbeOutcome]> = [];
  const requests: string[] = [];
  const failDeletes = new Set<string>();
  const area = await openStorageArea(config, new MemoryLogger(), {
    onProbe: (tier, outcome) => probes.push([tier, outcome]),
    wrapStore: (store, tier) => counted(store, tier, requests, failDeletes),
  });
  return { root, area, probes, requests, failDeletes };
}

function counted(
  store: ObjectStore,
  tier: string,
  requests: string[],
  failDeletes = new Set<string>(),
): ObjectStore {
  return {
    ...store,
    driver: store.driver,
    location: store.location,
    get: (key, range, options) => (requests.push(`${tier} get`), store.get(key, range, options)),
    head: (key) => (requests.push(`${tier} head`), store.head(key)),
    delete: (key) => {
      requests.push(`${tier} delete`);
      if (failDeletes.has(tier)) return Promise.reject(new Error(`${tier}: the daemon died here`));
      return store.delete(key);
    },
    put: (key, data) => (requests.push(`${tier} put`), store.put(key, data)),
    putStream: (key, body, size) => (requests.push(`${tier} put`), store.putStream(key, body, size)),
    list: (prefix) => store.list(prefix),
    close: () => store.close(),
  };
}

async function bytesOf(read: AttachmentRead): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of read.body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const md5 = (data: Uint8Array): string => createHash("md5").update(data).digest("hex");

/** Orthanc's custom data, as the bridge reads and sets it; `failSets`: setting it fails (a crash there). */
function recordStore(): AttachmentRecords & { kept: Map<string, Uint8Array>; failSets: boolean } {
  const kept = new Map<string, Uint8Array>();
  const records = {
    kept,
    failSets: false,
    get: (uuid: string) => Promise.resolve(kept.get(uuid) ?? new Uint8Array(0)),
    set: (uuid: string, record: Uint8Array) => {
      if (records.failSets) return Promise.reject(new Error("the daemon died before the record was set"));
      kept.set(uuid, record);
      return Promise.resolve();
    },
  };
  return records;
}

const RT_NAME = "LCTSC-Test-S1-101/1.3.6.1.4.1.14519.5.2.1.7014.4598.929007819506323387215669464914";

describe("several backends in one area", () => {
  it("writes to WriteTo only; after WriteTo changes, old and new attachments read back the same", async () => {
    const first = await open({ WriteTo: "a" });
    const old = randomBytes(5000);
    assert.equal(await first.area.create(UUIDS[0] as string, 1, old), undefined);
    assert.deepEqual(await filesUnder(join(first.root, "a")), [`${UUIDS[0]}.dcm`]);
    assert.deepEqual(await filesUnder(join(first.root, "b")), []);
    await first.area.close();

    const second = await open({ WriteTo: "c" }, first.root);
    const fresh = randomBytes(7000);
    assert.equal(await second.area.create(UUIDS[1] as string, 1, fresh), undefined);
    const stored = await filesUnder(join(first.root, "c"));
    assert.deepEqual(stored, [`${UUIDS[1]}.dcm.enc`]);
    // Both read back byte for byte, each decoded by its own backend's codec.
    const readOld = await second.area.readWhole(UUIDS[0] as string, 1);
    assert.equal(readOld.tier, "a");
    assert.deepEqual(await bytesOf(readOld), old);
    const readNew = await second.area.readWhole(UUIDS[1] as string, 1);
    assert.equal(readNew.tier, "c");
    assert.deepEqual(await bytesOf(readNew), fresh);
    const range = await second.area.readRange(UUIDS[1] as string, 1, 100, 50);
    assert.deepEqual(await bytesOf(range), fresh.subarray(100, 150));
    await second.area.close();
  });

  it("with records (Orthanc >= 1.12.8): named by the backend's key, read and removed there alone, no probe", async () => {
    const { root, area, probes, requests } = await open({ WriteTo: "c", ReadOrder: ["a", "b", "c"] });
    const data = randomBytes(2000);
    const record = (await area.create(UUIDS[0] as string, 1, data, { record: true })) as Buffer;
    assert.deepEqual(decodeRecord(record, UUIDS[0] as string), {
      backend: "c",
      key: `${UUIDS[0]}.dcm.enc`,
      format: "A1",
      adopted: false,
      keepOnRemove: false,
    });
    requests.length = 0;
    const read = await area.readWhole(UUIDS[0] as string, 1, { record });
    assert.equal(read.tier, "c");
    assert.deepEqual(await bytesOf(read), data);
    assert.deepEqual(
      await bytesOf(await area.readRange(UUIDS[0] as string, 1, 10, 20, { record })),
      data.subarray(10, 30),
    );
    assert.deepEqual(requests, ["c get", "c get"]);
    assert.deepEqual(probes, []);
    // The record names the backend by its key: renamed in the configuration, the read says so.
    const renamed = await open(
      {
        Backends: {
          a: { LocalObjectStorage: { Path: join(root, "a") } },
          fast: { LocalObjectStorage: { Path: join(root, "c") } },
        },
        WriteTo: "a",
      },
      root,
    );
    await assert.rejects(renamed.area.readWhole(UUIDS[0] as string, 1, { record }), (error: unknown) => {
      assert.ok(isStorageError(error, "NOT_FOUND"));
      assert.match(
        error.message,
        /in the backend "c", which this configuration does not have \(it has "a", "fast"\)/,
      );
      return true;
    });
    await renamed.area.close();
    requests.length = 0;
    await area.remove(UUIDS[0] as string, 1, record);
    // The recorded object, then the uuid names an interrupted move may have left in the others.
    assert.deepEqual(requests, ["c delete", "a delete", "b delete"]);
    assert.deepEqual(await filesUnder(join(root, "c")), []);
    await area.close();
  });

  it("reads probe in ReadOrder: one get per backend looked at, each look counted", async () => {
    const { area, probes, requests } = await open({ WriteTo: "a", ReadOrder: ["a", "b", "c"] });
    const data = randomBytes(100);
    await area.backend("c").create(UUIDS[2] as string, 1, data);
    requests.length = 0;
    assert.deepEqual(await bytesOf(await area.readWhole(UUIDS[2] as string, 1)), data);
    assert.deepEqual(requests, ["a get", "b get", "c get"]);
    assert.deepEqual(probes, [
      ["a", "missed"],
      ["b", "missed"],
      ["c", "found"],
    ]);
    // Reached by name: one request, no probe.
    requests.length = 0;
    probes.length = 0;
    const direct = await area.backend("c").readWhole(UUIDS[2] as string, 1, `${UUIDS[2]}.dcm.enc`);
    assert.deepEqual(await bytesOf(direct), data);
    assert.deepEqual(requests, ["c get"]);
    assert.deepEqual(probes, []);
    await area.close();
  });

  it("a missing attachment is NOT_FOUND naming every backend; a delete reaches every backend", async () => {
    const { root, area, requests } = await open({ WriteTo: "b" });
    await assert.rejects(area.readWhole(UUIDS[0] as string, 1), (error: unknown) => {
      assert.ok(isStorageError(error, "NOT_FOUND"));
      assert.match(error.message, /the b storage .* nor in the a storage .* nor in the c storage/);
      return true;
    });
    await area.backend("a").create(UUIDS[0] as string, 1, randomBytes(10));
    await area.backend("c").create(UUIDS[0] as string, 1, randomBytes(10));
    requests.length = 0;
    await area.remove(UUIDS[0] as string, 1);
    assert.deepEqual(requests, ["b delete", "a delete", "c delete"]);
    for (const name of ["a", "b", "c"]) assert.deepEqual(await filesUnder(join(root, name)), []);
    await area.close();
  });

  it("an unknown backend name is refused naming the known ones", async () => {
    const { area } = await open({ WriteTo: "a" });
    assert.throws(
      () => area.backend("archive"),
      /find backend "archive": .*no backend of that name; it has "a", "b", "c"/,
    );
    await area.close();
  });

  it("two backends in the same place with overlapping RootPaths are refused at open", async () => {
    const root = await mkdtemp(join(tmpdir(), "ocs-backends-"));
    roots.push(root);
    const config = resolveOk({
      OrthancCloudStorage: {
        Backends: {
          x: { LocalObjectStorage: { Path: join(root, "x") } },
          y: { LocalObjectStorage: { Path: join(root, "y") } },
        },
        WriteTo: "x",
      },
    });
    // The same folder cannot pass the configuration check; the same bucket (compared when opened) can.
    const [x, y] = config.backends?.named ?? [];
    assert.ok(x && y && y.backend.section === "LocalObjectStorage");
    y.backend = { ...y.backend, local: { ...y.backend.local, path: join(root, "x") } };
    await assert.rejects(
      openStorageArea(config, new MemoryLogger()),
      /open backends x and y: both store their objects in/,
    );
  });

  it("moves an attachment from one backend to another, re-encoded for the target and verified", async () => {
    const { root, area } = await open({ WriteTo: "a" });
    const data = randomBytes(3000);
    await area.create(UUIDS[0] as string, 1, data);
    const attachment = {
      uuid: UUIDS[0] as string,
      contentType: 1,
      storedSize: data.length,
      storedMd5: md5(data),
    };

    const moved = await moveAttachment(area, attachment, "c");
    assert.equal(moved.outcome, "moved");
    assert.deepEqual([moved.backend, moved.key], ["c", `${UUIDS[0]}.dcm.enc`]);
    assert.deepEqual(await filesUnder(join(root, "a")), []);
    assert.deepEqual(await filesUnder(join(root, "c")), [`${UUIDS[0]}.dcm.enc`]);
    const read = await area.readWhole(UUIDS[0] as string, 1);
    assert.equal(read.tier, "c");
    assert.deepEqual(await bytesOf(read), data);

    // Again: already there, checked against the index, nothing written.
    assert.deepEqual(await moveAttachment(area, attachment, "c"), {
      outcome: "already-there",
      bytes: 0,
      backend: "c",
      key: `${UUIDS[0]}.dcm.enc`,
    });
    // Back to a plaintext backend with a RootPath: decrypted on the way.
    await moveAttachment(area, attachment, "b");
    assert.deepEqual(await filesUnder(join(root, "b")), [`b/${UUIDS[0]}.dcm`]);
    assert.deepEqual(await bytesOf(await area.readWhole(UUIDS[0] as string, 1)), data);
    await area.close();
  });

  it("a source that does not match Orthanc's index is not moved, and stays", async () => {
    const { root, area } = await open({ WriteTo: "a" });
    const data = randomBytes(300);
    await area.create(UUIDS[1] as string, 1, data);
    const wrong = {
      uuid: UUIDS[1] as string,
      contentType: 1,
      storedSize: data.length,
      storedMd5: md5(Buffer.from("x")),
    };
    await assert.rejects(moveAttachment(area, wrong, "b"), (error: unknown) => {
      assert.ok(isStorageError(error, "INTEGRITY"));
      assert.match(error.message, /does not match Orthanc's index.*it is not moved/);
      return true;
    });
    assert.deepEqual(await filesUnder(join(root, "a")), [`${UUIDS[1]}.dcm`]);
    assert.deepEqual(await filesUnder(join(root, "b")), []);
    await area.close();
  });
  it("with records, a move points the record at the verified copy, keeps a tag-based name, then deletes the source", async () => {
    const { root, area, probes, requests } = await open({
      WriteTo: "a",
      ObjectNames: "{PatientID}/{SOPInstanceUID}",
    });
    const dicom = await readFile(join(dicomDir, "RTSTRUCT-implicit-le.dcm"));
    const uuid = UUIDS[0] as string;
    const records = recordStore();
    records.kept.set(uuid, (await area.create(uuid, 1, dicom, { record: true, dicom: true })) as Buffer);
    assert.deepEqual(await filesUnder(join(root, "a")), [`${RT_NAME}.dcm`]);
    const attachment = { uuid, contentType: 1, storedSize: dicom.length, storedMd5: md5(dicom) };

    const moved = await moveAttachment(area, attachment, "c", records);
    assert.deepEqual([moved.outcome, moved.backend, moved.key], ["moved", "c", `${RT_NAME}.dcm.enc`]);
    const record = records.kept.get(uuid) as Uint8Array;
    assert.deepEqual(decodeRecord(record, uuid), {
      backend: "c",
      key: `${RT_NAME}.dcm.enc`,
      format: "A1",
      adopted: false,
      keepOnRemove: false,
    });
    assert.deepEqual(await filesUnder(join(root, "a")), []);
    assert.deepEqual(await filesUnder(join(root, "c")), [`${RT_NAME}.dcm.enc`]);
    // The next read: one request, at the new place, no probe.
    requests.length = 0;
    probes.length = 0;
    assert.deepEqual(await bytesOf(await area.readWhole(uuid, 1, { record })), dicom);
    assert.deepEqual(requests, ["c get"]);
    assert.deepEqual(probes, []);
    // Again: the record says it is there already; checked against the index, nothing written.
    assert.equal((await moveAttachment(area, attachment, "c", records)).outcome, "already-there");
    await area.close();
  });

  it("a move stopped before its record is set keeps the source and the record; stopped after, the copy and the record agree", async () => {
    const { root, area, requests, failDeletes } = await open({ WriteTo: "a" });
    const data = randomBytes(4000);
    const uuid = UUIDS[1] as string;
    const records = recordStore();
    records.kept.set(uuid, (await area.create(uuid, 1, data, { record: true })) as Buffer);
    const attachment = { uuid, contentType: 1, storedSize: data.length, storedMd5: md5(data) };
    const before = records.kept.get(uuid);

    // Stopped between the verified copy and the record: the record still names the source, which is whole.
    records.failSets = true;
    await assert.rejects(moveAttachment(area, attachment, "b", records), /before the record was set/);
    assert.equal(records.kept.get(uuid), before);
    assert.deepEqual(await filesUnder(join(root, "a")), [`${uuid}.dcm`]);
    assert.deepEqual(await bytesOf(await area.readWhole(uuid, 1, { record: before })), data);

    // Stopped between the record and the source's delete: the record names the copy; the source is left over.
    records.failSets = false;
    failDeletes.add("a");
    await assert.rejects(moveAttachment(area, attachment, "b", records), /the daemon died here/);
    const record = records.kept.get(uuid) as Uint8Array;
    assert.equal(decodeRecord(record, uuid).backend, "b");
    assert.deepEqual(await filesUnder(join(root, "a")), [`${uuid}.dcm`]);
    requests.length = 0;
    assert.deepEqual(await bytesOf(await area.readWhole(uuid, 1, { record })), data);
    assert.deepEqual(requests, ["b get"]);

    // The job's next run finds it moved, and deletes what was left over.
    failDeletes.clear();
    assert.equal((await moveAttachment(area, attachment, "b", records)).outcome, "already-there");
    assert.deepEqual(await filesUnder(join(root, "a")), []);
    assert.deepEqual(await filesUnder(join(root, "b")), [`b/${uuid}.dcm`]);
    await area.close();
  });
});
