// The shared driver conformance suite: every ObjectStore driver runs it against a real server (or folder).
// A driver test calls `objectStoreConformance` once, with a factory giving a fresh, empty store.
// The suite fails, rather than skips, when the store cannot be created.

import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";

import { piecesLength } from "../../src/byte-pieces.js";
import { isStorageError } from "../../src/errors.js";
import { storePieces, type ObjectBody, type ObjectStore } from "../../src/stores/object-store.js";

export interface ConformanceTarget {
  store: ObjectStore;
  /** Remove what the suite left (bucket, folder). Called once at the end, also after failures. */
  cleanup(): Promise<void>;
}

export async function readBody(object: ObjectBody): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of object.body) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}

export function objectStoreConformance(name: string, createTarget: () => Promise<ConformanceTarget>): void {
  describe(`ObjectStore conformance: ${name}`, () => {
    let target: ConformanceTarget | undefined;
    let store: ObjectStore;
    // Each test works under its own prefix, so tests cannot see each other's objects.
    let prefixCounter = 0;
    const nextPrefix = (): string => `conformance-${process.pid}-${++prefixCounter}/`;

    before(async () => {
      target = await createTarget();
      store = target.store;
    });
    after(async () => {
      if (target === undefined) return;
      await target.store.close();
      await target.cleanup();
    });

    it("answers null for a missing object on get and head", async () => {
      const key = `${nextPrefix()}missing.dcm`;
      assert.equal(await store.get(key), null);
      assert.equal(await store.head(key), null);
    });

    it("gives back every byte value written, with the size from the get itself", async () => {
      const key = `${nextPrefix()}bytes.dcm`;
      const data = Buffer.alloc(256 * 3);
      for (let i = 0; i < data.length; i++) data[i] = i % 256;
      await store.put(key, data);
      const object = await store.get(key);
      assert.ok(object);
      assert.equal(object.size, data.length);
      assert.deepEqual(await readBody(object), data);
      assert.deepEqual(await store.head(key), { key, size: data.length });
    });

    it("stores and reads back an empty object", async () => {
      const key = `${nextPrefix()}empty.unk`;
      await store.put(key, new Uint8Array(0));
      const object = await store.get(key);
      assert.ok(object);
      assert.equal(object.size, 0);
      assert.equal((await readBody(object)).length, 0);
    });

    it("replaces an object on a second put", async () => {
      const key = `${nextPrefix()}replace.json`;
      await store.put(key, Buffer.from("first version, longer than the second"));
      await store.put(key, Buffer.from("second"));
      const object = await store.get(key);
      assert.ok(object);
      assert.equal(object.size, 6);
      assert.equal((await readBody(object)).toString(), "second");
    });

    it("reads ranges at the start, the middle, the end, and empty ranges, with the whole size", async () => {
      const key = `${nextPrefix()}range.dcm`;
      const data = randomBytes(100_000);
      await store.put(key, data);
      const cases: Array<[number, number]> = [
        [0, 1],
        [0, 132],
        [12_345, 54_321],
        [99_999, 100_000],
        [0, 100_000],
        [50_000, 50_000],
        [100_000, 100_000],
      ];
      for (const [start, end] of cases) {
        const object = await store.get(key, { start, end });
        assert.ok(object, `range [${start}, ${end})`);
        assert.equal(object.size, data.length, `size with range [${start}, ${end})`);
        assert.deepEqual(await readBody(object), data.subarray(start, end), `range [${start}, ${end})`);
      }
    });

    it("refuses ranges outside the object as BAD_RANGE, and answers null for a range of a missing object", async () => {
      const key = `${nextPrefix()}short.dcm`;
      await store.put(key, Buffer.from("0123456789"));
      for (const [start, end] of [
        [5, 11],
        [11, 12],
        [7, 3],
      ] as Array<[number, number]>) {
        await assert.rejects(
          store.get(key, { start, end }),
          (error) => isStorageError(error, "BAD_RANGE"),
          `range [${start}, ${end})`,
        );
      }
      assert.equal(await store.get(`${nextPrefix()}absent.dcm`, { start: 0, end: 1 }), null);
    });

    it("cuts a range passing the end at the end with cutAtEnd, with the whole size; refuses it without", async () => {
      const key = `${nextPrefix()}cut.dcm`;
      const data = randomBytes(10_000);
      await store.put(key, data);
      for (const [start, end] of [
        [0, 1_000_000],
        [9_000, 10_001],
        [9_999, 20_000],
        [0, 10_000],
        [10_000, 10_000],
      ] as Array<[number, number]>) {
        const object = await store.get(key, { start, end }, { cutAtEnd: true });
        assert.ok(object, `range [${start}, ${end})`);
        assert.equal(object.size, data.length, `size with range [${start}, ${end})`);
        const expected = data.subarray(start, Math.min(end, data.length));
        assert.deepEqual(await readBody(object), expected, `range [${start}, ${end}) cut at the end`);
      }
      // Starting at or past the end is refused still (HTTP's 416), and so is a passing range without the flag.
      for (const [start, end, cutAtEnd] of [
        [10_000, 10_001, true],
        [10_001, 20_000, true],
        [10_001, 10_001, true],
        [0, 10_001, false],
      ] as Array<[number, number, boolean]>) {
        await assert.rejects(
          store.get(key, { start, end }, { cutAtEnd }),
          (error) => isStorageError(error, "BAD_RANGE"),
          `range [${start}, ${end}) with cutAtEnd ${cutAtEnd}`,
        );
      }
      assert.equal(
        await store.get(`${nextPrefix()}absent.dcm`, { start: 0, end: 10 }, { cutAtEnd: true }),
        null,
      );
    });

    it("deletes objects, and deleting a missing object is not an error", async () => {
      const key = `${nextPrefix()}aa/bb/deleted`;
      await store.put(key, Buffer.from("x"));
      await store.delete(key);
      assert.equal(await store.get(key), null);
      assert.equal(await store.head(key), null);
      await store.delete(key);
      await store.delete(`${nextPrefix()}never-written.dcm`);
    });

    it("lists exactly the objects under a prefix, nested keys included", async () => {
      const prefix = nextPrefix();
      const keys = [
        `${prefix}a.dcm`,
        `${prefix}a.dcm.enc`,
        `${prefix}0a/1b/0a1b`,
        `${prefix}root/path/x.unk`,
      ];
      for (const [index, key] of keys.entries()) await store.put(key, Buffer.alloc(index + 1, index));
      await store.put(`${nextPrefix()}elsewhere.dcm`, Buffer.from("not listed"));
      const listed = (await collect(store.list(prefix))).sort((a, b) => a.key.localeCompare(b.key));
      const expected = keys
        .map((key, index) => ({ key, size: index + 1 }))
        .sort((a, b) => a.key.localeCompare(b.key));
      assert.deepEqual(listed, expected);
      const narrowed = await collect(store.list(`${prefix}a.dcm`));
      assert.deepEqual(narrowed.map((o) => o.key).sort(), [`${prefix}a.dcm`, `${prefix}a.dcm.enc`]);
    });

    it("keeps 50 concurrent writers and readers apart", async () => {
      const prefix = nextPrefix();
      const payloads = Array.from({ length: 50 }, (_, i) => randomBytes(1000 + i * 37));
      await Promise.all(payloads.map((data, i) => store.put(`${prefix}${i}.dcm`, data)));
      const read = await Promise.all(
        payloads.map(async (_, i) => {
          const object = await store.get(`${prefix}${i}.dcm`);
          assert.ok(object);
          return readBody(object);
        }),
      );
      read.forEach((data, i) => assert.deepEqual(data, payloads[i]));
    });

    it("streams a large object back intact", async () => {
      const key = `${nextPrefix()}large.dcm`;
      const data = randomBytes(8 * 1024 * 1024 + 3);
      await store.put(key, data);
      const object = await store.get(key);
      assert.ok(object);
      assert.equal(object.size, data.length);
      const chunks: number[] = [];
      let received = 0;
      const hash = createHash("sha256");
      for await (const chunk of object.body) {
        const bytes = chunk as Uint8Array;
        chunks.push(bytes.length);
        received += bytes.length;
        hash.update(bytes);
      }
      assert.equal(received, data.length);
      assert.ok(chunks.length > 1, "a large body arrives in several chunks, not as one buffer");
      assert.equal(hash.digest("hex"), createHash("sha256").update(data).digest("hex"));
    });

    it("can abandon a body half-read without breaking later requests", async () => {
      const key = `${nextPrefix()}abandoned.dcm`;
      await store.put(key, randomBytes(2 * 1024 * 1024));
      for (let i = 0; i < 5; i++) {
        const object = await store.get(key);
        assert.ok(object);
        for await (const _chunk of object.body) break; // leaving the loop destroys the stream
      }
      const object = await store.get(key, { start: 0, end: 10 });
      assert.ok(object);
      assert.equal((await readBody(object)).length, 10);
    });

    it("stores a streamed body, small or in several parts, replacing the previous object", async () => {
      const prefix = nextPrefix();
      // 17 MiB + 1: more than two of the S3 driver's 8 MiB parts, in chunks that do not line up with them.
      for (const size of [0, 1000, 17 * 1024 * 1024 + 1]) {
        const key = `${prefix}streamed-${size}.dcm`;
        await store.put(key, Buffer.from("previous"));
        const data = randomBytes(size);
        const chunks = Array.from({ length: Math.ceil(size / 65_537) }, (_, i) =>
          data.subarray(i * 65_537, (i + 1) * 65_537),
        );
        await store.putStream(key, Readable.from(chunks), size);
        const object = await store.get(key);
        assert.ok(object);
        assert.equal(object.size, size);
        assert.ok((await readBody(object)).equals(data), `${size} bytes read back`);
      }
    });

    it("stores an object given as pieces (an encrypted create), replacing the previous object", async () => {
      const prefix = nextPrefix();
      const data = randomBytes(3 * 256 * 1024 + 86);
      // A header, update outputs, a tag: shapes the codecs hand over; none joined, some empty.
      const shapes: Array<[string, Uint8Array[]]> = [
        ["no piece", []],
        ["empty pieces", [new Uint8Array(0), new Uint8Array(0)]],
        ["one piece", [data]],
        [
          "header, outputs and tag",
          [0, 70, 70 + 262_144, 70 + 524_288, 70 + 786_432, data.length].flatMap((start, i, ends) =>
            i + 1 < ends.length ? [data.subarray(start, ends[i + 1])] : [],
          ),
        ],
      ];
      for (const [shape, pieces] of shapes) {
        const key = `${prefix}${shape.replaceAll(" ", "-")}.dcm.enc`;
        await store.put(key, Buffer.from("previous"));
        if (store.putPieces !== undefined) await store.putPieces(key, pieces, piecesLength(pieces));
        else await storePieces(store, key, pieces);
        const object = await store.get(key);
        assert.ok(object, shape);
        const expected = Buffer.concat(pieces);
        assert.equal(object.size, expected.length, shape);
        assert.ok((await readBody(object)).equals(expected), `${shape} read back`);
      }
    });

    it("fails a streamed put whose body fails or comes up short, keeping the previous object", async () => {
      const key = `${nextPrefix()}failed-stream.dcm`;
      await store.put(key, Buffer.from("previous"));
      const size = 9 * 1024 * 1024;
      const failing = Readable.from(
        (function* () {
          yield randomBytes(size - 1024);
          throw new Error("the bridge closed the connection");
        })(),
      );
      await assert.rejects(store.putStream(key, failing, size), /the bridge closed the connection/);
      await assert.rejects(
        store.putStream(key, Readable.from([randomBytes(100)]), 101),
        /ended after 100 of/,
      );
      const object = await store.get(key);
      assert.ok(object);
      assert.equal((await readBody(object)).toString(), "previous");
    });
  });
}
