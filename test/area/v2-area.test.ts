// The storage area with StorageEncryption.Format "v2" on a folder store: objects written in v2, read whole
// and by range with only the header and covering segments fetched (requests counted at the store), the
// data-key cache (a hot object costs one request; a rewritten object is read again), A1 objects of a
// mixed store read whole, and reencrypt converting a store either way.

import assert from "node:assert/strict";
import { mkdtemp, readFile, readdir, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";

import { openStorageArea } from "../../src/area/open-storage-area.js";
import { servesRangeReads } from "../../src/area/range-reads.js";
import type { AttachmentRead, StorageArea } from "../../src/area/storage-area.js";
import type { EncryptionFormat, ResolvedConfig } from "../../src/config/types.js";
import { describeStoredObject } from "../../src/crypto/a1-format.js";
import { V2_DEFAULT_SEGMENT_SHIFT, V2_HEADER_LENGTH } from "../../src/crypto/v2-format.js";
import { isStorageError } from "../../src/errors.js";
import { createProgress } from "../../src/ops/progress.js";
import { reencryptStorage } from "../../src/ops/reencrypt.js";
import { RunReport } from "../../src/ops/run-report.js";
import { REENCRYPT_OUTCOMES, REENCRYPT_PROBLEMS } from "../../src/ops/reencrypt.js";
import type { ByteRange, GetOptions, ObjectStore } from "../../src/stores/object-store.js";
import { localConfig } from "../helpers/local-config.js";
import { MemoryLogger } from "../helpers/memory-logger.js";
import { patternBytes } from "../crypto/support.js";
import { decryptRange } from "../crypto/v2-webcrypto.js";

const UUIDS = [
  "0a1b2c3d-1111-2222-3333-444455556666",
  "1a1b2c3d-1111-2222-3333-444455556666",
  "2a1b2c3d-1111-2222-3333-444455556666",
];
const [UUID, SECOND, THIRD] = UUIDS as [string, string, string];
/** The segment size new objects are written with. */
const SEGMENT = 2 ** V2_DEFAULT_SEGMENT_SHIFT;
const STRIDE = SEGMENT + 16;

const roots: string[] = [];
after(() => Promise.all(roots.map((root) => rm(root, { recursive: true, force: true }))));

interface Counted {
  area: StorageArea;
  objects: string;
  /** Every get the area made: its range (undefined: whole) and the bytes asked for. */
  gets: Array<{ range: ByteRange | undefined }>;
}

async function makeRoot(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), "ocs-v2-"));
  roots.push(root);
  await writeFile(join(root, "key1.b64"), Buffer.alloc(32, 1).toString("base64"));
  await writeFile(join(root, "key2.b64"), Buffer.alloc(32, 2).toString("base64"));
  return root;
}

function configOf(
  root: string,
  format: EncryptionFormat,
  keyId = 1,
  previous: number[] = [],
): ResolvedConfig {
  return localConfig(root, {
    encrypted: true,
    format,
    keyId,
    previousKeyIds: previous,
    keyFile: (id) => join(root, `key${id}.b64`),
    maxConcurrentInputBytes: 512 * 1024 * 1024,
  });
}

async function open(
  root: string,
  format: EncryptionFormat,
  keyId = 1,
  previous: number[] = [],
): Promise<Counted> {
  const gets: Counted["gets"] = [];
  const count = (store: ObjectStore): ObjectStore =>
    Object.assign(Object.create(store) as ObjectStore, {
      get: (key: string, range?: ByteRange, options?: GetOptions) => {
        gets.push({ range });
        return store.get(key, range, options);
      },
    });
  const area = await openStorageArea(configOf(root, format, keyId, previous), new MemoryLogger(), {
    wrapStore: count,
  });
  return { area, objects: join(root, "objects"), gets };
}

async function bytesOf(read: AttachmentRead): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of read.body) chunks.push(Buffer.from(chunk as Uint8Array));
  const data = Buffer.concat(chunks);
  assert.equal(data.length, read.size);
  return data;
}

function fetchedBytes(gets: Counted["gets"], storedSize: number): number {
  return gets.reduce((n, { range }) => n + (range === undefined ? storedSize : range.end - range.start), 0);
}

describe("range reads are served", () => {
  it("without encryption and with v2, not with A1 (spec §5.1)", () => {
    assert.equal(servesRangeReads({ enabled: false }), true);
    assert.equal(servesRangeReads({ enabled: true, format: "v2" }), true);
    assert.equal(servesRangeReads({ enabled: true, format: "A1" }), false);
    assert.equal(servesRangeReads({ enabled: true }), false);
  });
});

describe("storage area writing v2", () => {
  it("writes one v2 object, reads it whole and by range from the covering segments only", async () => {
    const root = await makeRoot();
    const { area, objects, gets } = await open(root, "v2");
    assert.equal(area.codec.supportsRangeReads, true);
    const data = patternBytes(10 * SEGMENT + 333, 5);
    await area.create(UUID, 1, data);
    const files = await readdir(objects);
    assert.deepEqual(files, [`${UUID}.dcm.enc`]);
    const stored = await readFile(join(objects, files[0] as string));
    const described = describeStoredObject(stored.subarray(0, 132), stored.length);
    assert.equal(described.format, "v2");

    assert.deepEqual(await bytesOf(await area.readWhole(UUID, 1)), Buffer.from(data));

    // Cold, from 0 (what /tags asks): one request for the header and the covering segments.
    gets.length = 0;
    assert.deepEqual(
      await bytesOf(await area.readRange(UUID, 1, 0, 3000)),
      Buffer.from(data.subarray(0, 3000)),
    );
    assert.equal(gets.length, 1);
    assert.ok(fetchedBytes(gets, stored.length) <= V2_HEADER_LENGTH + STRIDE);

    // Hot: the data key is cached, one request for the covering segments alone.
    gets.length = 0;
    const [start, end] = [3 * SEGMENT - 10, 4 * SEGMENT + 10];
    assert.deepEqual(
      await bytesOf(await area.readRange(UUID, 1, start, end - start)),
      Buffer.from(data.subarray(start, end)),
    );
    assert.equal(gets.length, 1);
    assert.equal(fetchedBytes(gets, stored.length), 3 * STRIDE);

    // The last, partial segment.
    assert.deepEqual(
      await bytesOf(await area.readRange(UUID, 1, data.length - 5, 5)),
      Buffer.from(data.subarray(data.length - 5)),
    );
    await assert.rejects(area.readRange(UUID, 1, data.length - 5, 6), (e) => isStorageError(e, "BAD_RANGE"));
    await area.close();
  });

  it("cold from 0 of an object smaller than a segment: one request, whole or a small range", async () => {
    const root = await makeRoot();
    const { area } = await open(root, "v2");
    const data = patternBytes(300_000, 11);
    assert.ok(data.length < SEGMENT);
    await area.create(UUID, 1, data);
    for (const length of [data.length, 1000]) {
      const fresh = await open(root, "v2");
      const read = await fresh.area.readRange(UUID, 1, 0, length);
      assert.deepEqual(await bytesOf(read), Buffer.from(data.subarray(0, length)), `[0, ${length})`);
      assert.equal(fresh.gets.length, 1, `requests for [0, ${length})`);
      await fresh.area.close();
    }
    await area.close();
  });

  it("cold and further in: the header, then the covering segments (two requests)", async () => {
    const root = await makeRoot();
    const { area, gets } = await open(root, "v2");
    const data = patternBytes(4 * SEGMENT, 6);
    await area.create(SECOND, 1, data);
    const fresh = await open(root, "v2");
    const read = await fresh.area.readRange(SECOND, 1, 2 * SEGMENT + 1, 100);
    assert.deepEqual(await bytesOf(read), Buffer.from(data.subarray(2 * SEGMENT + 1, 2 * SEGMENT + 101)));
    assert.equal(fresh.gets.length, 2);
    assert.ok(fetchedBytes(fresh.gets, 0) <= V2_HEADER_LENGTH + STRIDE);
    await area.close();
    await fresh.area.close();
    void gets;
  });

  it("an object renamed to another attachment is refused by range and whole, naming the object", async () => {
    const root = await makeRoot();
    const { area, objects } = await open(root, "v2");
    await area.create(UUID, 1, patternBytes(1000));
    await rename(join(objects, `${UUID}.dcm.enc`), join(objects, `${THIRD}.dcm.enc`));
    for (const read of [() => area.readWhole(THIRD, 1), () => area.readRange(THIRD, 1, 0, 10)]) {
      await assert.rejects(read(), (e) => {
        assert.ok(isStorageError(e, "INTEGRITY"), String(e));
        assert.match(e.message, new RegExp(`${THIRD}\\.dcm\\.enc`));
        assert.match(e.message, /renamed/);
        return true;
      });
    }
    await area.close();
  });

  it("a mixed store reads back entirely; a range of an A1 object is read whole and sliced", async () => {
    const root = await makeRoot();
    const a1 = await open(root, "A1");
    const a1Data = patternBytes(3 * SEGMENT, 7);
    await a1.area.create(UUID, 1, a1Data);
    await a1.area.create(SECOND, 2, patternBytes(500, 8));
    const v2 = await open(root, "v2");
    const v2Data = patternBytes(2 * SEGMENT + 1, 9);
    await v2.area.create(THIRD, 1, v2Data);
    for (const area of [a1.area, v2.area]) {
      assert.deepEqual(await bytesOf(await area.readWhole(UUID, 1)), Buffer.from(a1Data));
      assert.deepEqual(await bytesOf(await area.readWhole(SECOND, 2)), Buffer.from(patternBytes(500, 8)));
      assert.deepEqual(await bytesOf(await area.readWhole(THIRD, 1)), Buffer.from(v2Data));
    }
    v2.gets.length = 0;
    assert.deepEqual(
      await bytesOf(await v2.area.readRange(UUID, 1, 10, 20)),
      Buffer.from(a1Data.subarray(10, 30)),
    );
    assert.equal(v2.gets.at(-1)?.range, undefined, "the A1 object was read whole");
    await a1.area.close();
    await v2.area.close();
  });

  it("the independent reader reads a range of what the area wrote", async () => {
    const root = await makeRoot();
    const { area, objects } = await open(root, "v2");
    const data = patternBytes(3 * SEGMENT + 7, 10);
    await area.create(UUID, 1, data);
    const stored = await readFile(join(objects, `${UUID}.dcm.enc`));
    const fetch = (from: number, to: number): Promise<Uint8Array> =>
      Promise.resolve(stored.subarray(from, to));
    const keys = new Map([[1, new Uint8Array(32).fill(1)]]);
    const { bytes } = await decryptRange(fetch, stored.length, keys, UUID, SEGMENT - 3, 2 * SEGMENT + 3);
    assert.deepEqual(Buffer.from(bytes), Buffer.from(data.subarray(SEGMENT - 3, 2 * SEGMENT + 3)));
    await area.close();
  });
});

describe("reencrypt between formats", () => {
  async function run(area: StorageArea, currentKeyId: number, format: EncryptionFormat) {
    const report = new RunReport(REENCRYPT_OUTCOMES, REENCRYPT_PROBLEMS);
    const summary = await reencryptStorage(area, {
      currentKeyId,
      format,
      parallel: 2,
      dryRun: false,
      progress: createProgress({ tty: false, print: () => undefined }),
      report,
    });
    await report.close();
    return { summary, report };
  }

  it("converts A1 to v2 under a new key, then back to A1; a cached key of a rewritten object is dropped", async () => {
    const root = await makeRoot();
    const a1 = await open(root, "A1");
    const data = UUIDS.map((_, i) => patternBytes(SEGMENT + 100 * i, 20 + i));
    for (const [i, uuid] of UUIDS.entries()) await a1.area.create(uuid, 1, data[i] as Uint8Array);
    await a1.area.close();

    const v2 = await open(root, "v2", 2, [1]);
    const first = await run(v2.area, 2, "v2");
    assert.equal(first.report.count("rewritten"), 3);
    assert.equal(first.report.problems, 0);
    assert.deepEqual(
      first.summary.after.map((l) => [l.under, l.format, l.objects]),
      [[2, "v2", 3]],
    );
    for (const [i, uuid] of UUIDS.entries()) {
      const stored = await readFile(join(v2.objects, `${uuid}.dcm.enc`));
      const described = describeStoredObject(stored.subarray(0, 132), stored.length);
      assert.equal(described.format, "v2");
      assert.deepEqual(
        await bytesOf(await v2.area.readRange(uuid, 1, 0, 50)),
        Buffer.from((data[i] as Uint8Array).subarray(0, 50)),
      );
    }
    // Again: nothing to do (restartable).
    assert.equal((await run(v2.area, 2, "v2")).report.count("current"), 3);

    // Rewritten while its key is cached (v2 under key 2 again, same size): read again from its header.
    const other = await open(root, "v2", 1, [2]);
    await run(other.area, 1, "v2");
    assert.deepEqual(
      await bytesOf(await v2.area.readRange(UUID, 1, 10, 50)),
      Buffer.from((data[0] as Uint8Array).subarray(10, 60)),
    );

    const back = await open(root, "A1", 1, [2]);
    const last = await run(back.area, 1, "A1");
    assert.equal(last.report.count("rewritten"), 3);
    const stored = await readFile(join(back.objects, `${UUID}.dcm.enc`));
    assert.equal(stored.subarray(0, 2).toString(), "A1");
    assert.equal(stored.length, (data[0] as Uint8Array).length + 86);
    for (const area of [v2.area, other.area, back.area]) await area.close();
  });
});
