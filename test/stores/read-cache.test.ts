// The read cache (src/stores/read-cache.ts) over the folder driver as its backend: the driver conformance
// suite through it, then what a cache must do — fill, hit, evict under a scan, rebuild after a restart,
// refuse a damaged file, drop on delete, fetch once for concurrent misses. The backend's requests are
// counted by the same observer the daemon uses for its metrics.

import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { readSync } from "node:fs";
import { mkdir, mkdtemp, readFile, readdir, rm, stat, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, describe, it } from "node:test";

import type { BytePieces } from "../../src/byte-pieces.js";
import { BLOCK_BYTES, entryBytes } from "../../src/stores/cache-entry.js";
import { createFolderStore } from "../../src/stores/folder.js";
import { storePieces, type ObjectBody, type ObjectStore } from "../../src/stores/object-store.js";
import { observeStore, type StoreMethod } from "../../src/stores/observed-store.js";
import { openReadCache, type ReadCache } from "../../src/stores/read-cache.js";
import { MemoryLogger } from "../helpers/memory-logger.js";
import { objectStoreConformance, readBody } from "./conformance.js";

const MB = 1024 * 1024;

/**
 * The folder driver as a network driver behaves: bodies as streams only (it hands small objects over as
 * `bytes` too, which takes the cache's other fill path).
 */
function streamsOnly(store: ObjectStore): ObjectStore {
  return {
    ...store,
    driver: store.driver,
    location: store.location,
    put: (key, data) => store.put(key, data),
    putStream: (key, body, size) => store.putStream(key, body, size),
    get: async (key, range, options) => {
      const object = await store.get(key, range, options);
      if (object === null) return null;
      const body = object.bytes === undefined ? object.body : Readable.from([Buffer.from(object.bytes)]);
      if (object.bytes !== undefined) object.body.destroy();
      return { size: object.size, body };
    },
    head: (key) => store.head(key),
    delete: (key) => store.delete(key),
    list: (prefix) => store.list(prefix),
    close: () => store.close(),
  };
}

interface Fixture {
  root: string;
  backend: ObjectStore;
  cache: ReadCache;
  logger: MemoryLogger;
  requests: Record<StoreMethod, number>;
  cacheFolder: string;
  reopen(options?: { capacityBytes?: number; identity?: string }): Promise<ReadCache>;
}

const roots: string[] = [];
after(async () => {
  for (const root of roots) await rm(root, { recursive: true, force: true });
});

async function fixture(
  options: { capacityBytes?: number; streams?: boolean; identity?: string } = {},
): Promise<Fixture> {
  const root = await mkdtemp(join(tmpdir(), "ocs-read-cache-"));
  roots.push(root);
  const folder = await createFolderStore({ root: join(root, "bucket"), fsync: false });
  const requests: Record<StoreMethod, number> = {
    put: 0,
    get: 0,
    head: 0,
    delete: 0,
    list: 0,
    set_storage_class: 0,
  };
  const counted = observeStore(options.streams === false ? folder : streamsOnly(folder), (method) => {
    requests[method]++;
  });
  const logger = new MemoryLogger();
  const cacheFolder = join(root, "tier", "cache");
  const open = (capacityBytes = options.capacityBytes ?? 64 * MB, identity = options.identity ?? "test\n") =>
    openReadCache(counted, { folder: cacheFolder, capacityBytes, identity, logger });
  const result: Fixture = {
    root,
    backend: folder,
    cache: await open(),
    logger,
    requests,
    cacheFolder,
    reopen: async (again = {}) => {
      await result.cache.close();
      result.cache = await open(again.capacityBytes, again.identity);
      return result.cache;
    },
  };
  return result;
}

async function bytesOf(object: ObjectBody | null): Promise<Buffer> {
  assert.ok(object, "the object exists");
  return readBody(object);
}

function entryPath(cacheFolder: string, key: string): string {
  const name = createHash("sha256").update(key).digest("hex");
  return join(cacheFolder, name.slice(0, 2), name);
}

for (const streams of [true, false]) {
  objectStoreConformance(`read cache over folder${streams ? ", bodies as streams" : ""}`, async () => {
    const f = await fixture({ capacityBytes: 128 * MB, streams });
    return { store: f.cache, cleanup: () => rm(f.root, { recursive: true, force: true }) };
  });
}

describe("read cache", () => {
  it("fills on a whole read, then serves the next reads without a request to the backend", async () => {
    const f = await fixture();
    const data = randomBytes(300_000);
    await f.backend.put("a/1.dcm", data); // straight into the bucket, past the cache
    assert.ok((await bytesOf(await f.cache.get("a/1.dcm"))).equals(data));
    await f.cache.settled();
    assert.equal(f.requests.get, 1);
    assert.ok(f.cache.holds("a/1.dcm"));
    for (let i = 0; i < 3; i++) assert.ok((await bytesOf(await f.cache.get("a/1.dcm"))).equals(data));
    assert.equal(f.requests.get, 1, "the later reads never reached the backend");
    const stats = f.cache.stats();
    assert.equal(stats.misses, 1);
    assert.equal(stats.hits, 3);
    assert.equal(stats.hitBytes, 3 * data.length);
    assert.equal(stats.fills, 1);
    assert.equal(stats.bytes, entryBytes(data.length));
    assert.equal((await stat(entryPath(f.cacheFolder, "a/1.dcm"))).size, entryBytes(data.length));
  });

  it("fills on put and putStream, so a read of a new object needs no request", async () => {
    const f = await fixture();
    const small = randomBytes(5000);
    const large = randomBytes(5 * MB + 7);
    await f.cache.put("put.dcm", small);
    await f.cache.putStream(
      "stream.dcm",
      Readable.from([large.subarray(0, MB), large.subarray(MB)]),
      large.length,
    );
    assert.ok((await bytesOf(await f.cache.get("put.dcm"))).equals(small));
    assert.ok((await bytesOf(await f.cache.get("stream.dcm"))).equals(large));
    assert.equal(f.requests.get, 0);
    assert.equal(f.requests.put, 2, "the puts reached the backend");
  });

  it("passes a create's pieces on to the backend unjoined, and fills from them as put does", async () => {
    const f = await fixture({ streams: false });
    const received: BytePieces[] = [];
    const putPieces = f.backend.putPieces?.bind(f.backend);
    assert.ok(putPieces, "the folder driver takes pieces");
    f.backend.putPieces = async (key, pieces, size) => {
      received.push(pieces);
      await putPieces(key, pieces, size);
    };
    // A small object (filled in the background) and one past SYNC_FILE_LIMIT (written from the pieces).
    const objects = new Map([
      ["small.dcm", [randomBytes(100), randomBytes(5000), randomBytes(16)]],
      ["large.dcm", [randomBytes(100), randomBytes(5 * MB), randomBytes(16)]],
    ]);
    for (const [key, pieces] of objects) await storePieces(f.cache, key, pieces);
    assert.equal(received.length, 2, "one putPieces a create reached the backend");
    for (const [index, pieces] of [...objects.values()].entries()) {
      assert.deepEqual(received[index]?.length, pieces.length);
      assert.ok(
        received[index]?.every((piece, at) => piece === pieces[at]),
        "the backend got the pieces themselves",
      );
    }
    await f.cache.settled();
    for (const [key, pieces] of objects) {
      const whole = Buffer.concat(pieces);
      assert.ok((await bytesOf(await f.cache.get(key))).equals(whole));
      assert.ok((await readFile(join(f.root, "bucket", key))).equals(whole), "the backend holds the object");
      assert.equal((await stat(entryPath(f.cacheFolder, key))).size, entryBytes(whole.length));
    }
    assert.equal(f.requests.get, 0, "both served by the cache");
  });

  it("serves ranges of a cached object from the cache, and does not fill on a range read", async () => {
    const f = await fixture();
    const data = randomBytes(3 * BLOCK_BYTES + 1000);
    await f.backend.put("r.dcm", data);
    const range = await f.cache.get("r.dcm", { start: 10, end: 5000 });
    assert.ok(range);
    assert.equal(range.size, data.length);
    assert.ok((await readBody(range)).equals(data.subarray(10, 5000)));
    assert.equal(f.cache.holds("r.dcm"), false, "a range read fills nothing");
    await bytesOf(await f.cache.get("r.dcm"));
    await f.cache.settled();
    assert.equal(f.requests.get, 2);
    // Ranges within a block, across blocks, at the end, empty: all from the cache.
    for (const [start, end] of [
      [0, 100],
      [BLOCK_BYTES - 10, 2 * BLOCK_BYTES + 10],
      [data.length - 5, data.length],
      [BLOCK_BYTES, BLOCK_BYTES],
      [0, data.length],
    ] as const) {
      const object = await f.cache.get("r.dcm", { start, end });
      assert.ok(object);
      assert.ok((await readBody(object)).equals(data.subarray(start, end)), `[${start}, ${end})`);
    }
    assert.equal(f.requests.get, 2);
    await assert.rejects(f.cache.get("r.dcm", { start: 0, end: data.length + 1 }), { code: "BAD_RANGE" });
  });

  it("passes a request for an open file (file answers) to the backend on a read it does not fill from, serves bytes when it holds the object", async () => {
    const f = await fixture({ streams: false });
    const data = randomBytes(5000);
    await f.backend.put("f.dcm", data);
    const range = await f.cache.get("f.dcm", { start: 100, end: 300 }, { file: true });
    assert.ok(range?.file, "the folder backend's open file");
    const bytes = Buffer.alloc(200);
    assert.equal(readSync(range.file.fd, bytes, 0, 200, range.file.start), 200);
    assert.ok(bytes.equals(data.subarray(100, 300)));
    range.body.destroy();
    const filling = await f.cache.get("f.dcm", undefined, { file: true });
    assert.equal(filling?.file, undefined, "a read that fills the cache reads the bytes itself");
    assert.ok((await bytesOf(filling)).equals(data));
    await f.cache.settled();
    assert.ok(f.cache.holds("f.dcm"));
    const hit = await f.cache.get("f.dcm", undefined, { file: true });
    assert.equal(hit?.file, undefined, "a cached entry is checked, then served as bytes");
    assert.ok((await bytesOf(hit)).equals(data));
    assert.equal(f.requests.get, 2);
  });

  it("keeps objects read twice through a scan of many objects read once", async () => {
    // Room for 10 objects; 3 hot ones read twice, then a scan of 40 others read once.
    const size = 100_000;
    const f = await fixture({ capacityBytes: 10 * entryBytes(size) + 100 });
    const hot = ["hot/1", "hot/2", "hot/3"];
    for (const key of hot) await f.backend.put(key, randomBytes(size));
    // Each fill settled before the next read: fills that run together may land in any order.
    const read = async (key: string) => {
      await bytesOf(await f.cache.get(key));
      await f.cache.settled();
    };
    for (let pass = 0; pass < 2; pass++) for (const key of hot) await read(key);
    for (const key of hot) assert.ok(f.cache.isProtected(key), `${key} promoted by its second read`);
    for (let i = 0; i < 40; i++) {
      await f.backend.put(`scan/${i}`, randomBytes(size));
      await read(`scan/${i}`);
    }
    for (const key of hot) assert.ok(f.cache.holds(key), `${key} survived the scan`);
    assert.ok(f.cache.holds("scan/39"), "the latest object of the scan is cached");
    assert.equal(f.cache.holds("scan/0"), false, "the scan's first objects were evicted");
    const stats = f.cache.stats();
    assert.ok(stats.bytes <= stats.capacityBytes);
    assert.equal(stats.evictions, 43 - stats.objects);
    // Evicted files are gone from the disk: the folder holds exactly the index.
    const files = (await readdir(f.cacheFolder, { recursive: true, withFileTypes: true })).filter(
      (entry) => entry.isFile() && entry.name !== "IDENTITY",
    );
    assert.equal(files.length, stats.objects);
    const before = f.requests.get;
    for (const key of hot) await bytesOf(await f.cache.get(key));
    assert.equal(f.requests.get, before);
  });

  it("does not cache an object larger than the room left beside the protected segment", async () => {
    const f = await fixture({ capacityBytes: 1 * MB });
    await f.backend.put("big", randomBytes(300_000));
    await bytesOf(await f.cache.get("big"));
    await f.cache.settled();
    assert.equal(f.cache.holds("big"), false);
    assert.equal(f.cache.stats().fills, 0);
  });

  it("rebuilds its index from the folder after a restart, removing unfinished fills", async () => {
    const f = await fixture();
    const data = randomBytes(70_000);
    await f.cache.put("kept.dcm", data);
    const temp = join(f.cacheFolder, "ab", `.${"ab".padEnd(64, "0")}.tmp-0123456789ab`);
    await mkdir(join(f.cacheFolder, "ab"), { recursive: true });
    await writeFile(temp, "half a fill");
    const cache = await f.reopen();
    assert.ok(cache.holds("kept.dcm"));
    assert.equal(cache.stats().bytes, entryBytes(data.length));
    await assert.rejects(stat(temp), { code: "ENOENT" });
    assert.ok((await bytesOf(await cache.get("kept.dcm"))).equals(data));
    assert.equal(f.requests.get, 0);
    assert.match(f.logger.lines.map((l) => l.message).join("\n"), /1 objects, .*1 unfinished fills removed/);
  });

  it("evicts the oldest entries when reopened with a smaller size, and empties itself for another identity", async () => {
    const f = await fixture();
    for (let i = 0; i < 5; i++) {
      await f.cache.put(`k${i}`, randomBytes(100_000));
      await f.cache.settled(); // one after the other: their files' times give the order at the restart
    }
    let cache = await f.reopen({ capacityBytes: 3 * entryBytes(100_000) });
    assert.equal(cache.stats().objects, 3);
    assert.ok(cache.holds("k4"));
    cache = await f.reopen({ identity: "another bucket\n" });
    assert.equal(cache.stats().objects, 0);
    assert.deepEqual(await readdir(f.cacheFolder), ["IDENTITY"]);
    assert.equal(await readFile(join(f.cacheFolder, "IDENTITY"), "utf8"), "another bucket\n");
  });

  for (const damage of ["a flipped byte", "a truncated file", "a flipped byte in a large object"] as const) {
    it(`never serves a file with ${damage}: drops it, warns, reads the backend`, async () => {
      const f = await fixture();
      const data = randomBytes(damage.includes("large") ? 6 * MB : 50_000);
      await f.cache.put("d.dcm", data);
      await f.cache.settled(); // a put's entry is written while the put returns
      const path = entryPath(f.cacheFolder, "d.dcm");
      if (damage === "a truncated file") {
        await truncate(path, 20_000);
      } else {
        const file = await readFile(path);
        const at = damage.includes("large") ? 5 * MB + 3 : 123;
        file[at] = (file[at] ?? 0) ^ 0x01;
        await writeFile(path, file);
      }
      assert.ok((await bytesOf(await f.cache.get("d.dcm"))).equals(data));
      assert.equal(f.requests.get, 1, "read from the backend");
      assert.equal(f.cache.stats().integrityFailures, 1);
      const warning = f.logger.lines.find((line) => line.level === "warn")?.message ?? "";
      assert.match(
        warning,
        /read cache: .* \(object .*d\.dcm\) failed its check, dropped; reading the object/,
      );
      await f.cache.settled();
      // Filled again from the backend's bytes, and served from the cache from then on.
      assert.ok((await bytesOf(await f.cache.get("d.dcm"))).equals(data));
      assert.equal(f.requests.get, 1);
    });
  }

  it("drops an entry on delete before the backend's delete returns, and on put before the new bytes", async () => {
    const f = await fixture();
    await f.cache.put("x.dcm", Buffer.from("first"));
    await f.cache.settled();
    const path = entryPath(f.cacheFolder, "x.dcm");
    await stat(path);
    await f.cache.put("x.dcm", Buffer.from("second"));
    assert.equal((await bytesOf(await f.cache.get("x.dcm"))).toString(), "second");
    await f.cache.delete("x.dcm");
    assert.equal(f.cache.holds("x.dcm"), false);
    await assert.rejects(stat(path), { code: "ENOENT" });
    assert.equal(await f.cache.get("x.dcm"), null);
    assert.equal(f.cache.stats().objects, 0);
  });

  it("sends one request for concurrent reads of an object not cached", async () => {
    const f = await fixture();
    const data = randomBytes(200_000);
    await f.backend.put("c.dcm", data);
    const reads = await Promise.all(Array.from({ length: 8 }, () => f.cache.get("c.dcm").then(bytesOf)));
    for (const read of reads) assert.ok(read.equals(data));
    assert.equal(f.requests.get, 1);
    assert.equal(f.cache.stats().hits, 7);
  });

  it("does not keep the bytes of a read that a put replaced while it streamed", async () => {
    const f = await fixture();
    await f.backend.put("p.dcm", Buffer.from("old bytes"));
    const reading = await f.cache.get("p.dcm"); // fetched, not read yet
    await f.cache.put("p.dcm", Buffer.from("new bytes"));
    assert.equal((await bytesOf(reading)).toString(), "old bytes");
    await f.cache.settled();
    assert.equal((await bytesOf(await f.cache.get("p.dcm"))).toString(), "new bytes");
  });

  it("fills nothing from a body abandoned half-read, and serves the next read from the backend", async () => {
    const f = await fixture();
    const data = randomBytes(6 * MB); // streamed by the folder driver, in chunks of 1 MiB
    await f.backend.put("h.dcm", data);
    const object = await f.cache.get("h.dcm");
    assert.ok(object);
    for await (const _chunk of object.body) break;
    await f.cache.settled();
    assert.equal(f.cache.holds("h.dcm"), false);
    assert.deepEqual(
      (await readdir(f.cacheFolder, { recursive: true })).filter((name) => name.includes(".tmp-")),
      [],
      "no temporary file left",
    );
    assert.ok((await bytesOf(await f.cache.get("h.dcm"))).equals(data));
  });
});
