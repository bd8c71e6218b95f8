// The write-behind spool in front of the folder store (fast, local): acknowledged objects are durable in
// the spool, drain to the backend oldest first, are readable and deletable all along, survive a restart,
// and never reach the backend half-written or after their delete.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { closeSync, readSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, describe, it } from "node:test";

import { isStorageError } from "../../src/errors.js";
import { SYNC_FILE_LIMIT } from "../../src/stores/local-file-io.js";
import { createFolderStore } from "../../src/stores/folder.js";
import type { ObjectStore } from "../../src/stores/object-store.js";
import { SpoolStore, type SpoolOptions } from "../../src/stores/spool/spool-store.js";
import { encodeSpoolHeader } from "../../src/stores/spool/spool-file.js";
import { filesUnder } from "../../test-support/folder.js";
import { MemoryLogger } from "../helpers/memory-logger.js";
import { objectStoreConformance } from "./conformance.js";

const folders: string[] = [];
after(async () => {
  for (const folder of folders) await rm(folder, { recursive: true, force: true });
});

async function tempFolder(prefix: string): Promise<string> {
  const folder = await mkdtemp(join(tmpdir(), prefix));
  folders.push(folder);
  return folder;
}

/** A backend whose requests can be held (the backend "down") and that records the order of its puts. */
class Gate implements ObjectStore {
  readonly driver = "gate";
  readonly location: string;
  readonly puts: string[] = [];
  /** Every delete asked of it, also those refused while down. */
  readonly deletes: string[] = [];
  down = false;
  /** Deletes refused (the backend down for them alone). */
  refuseDeletes = false;
  /** While set, puts wait for it. */
  hold: Promise<void> | undefined;

  constructor(private readonly inner: ObjectStore) {
    this.location = inner.location;
  }
  private check(): void {
    if (this.down) throw new Error("connection refused (test backend down)");
  }
  async put(key: string, data: Uint8Array): Promise<void> {
    await this.hold;
    this.check();
    await this.inner.put(key, data);
    this.puts.push(key);
  }
  async putStream(key: string, body: Readable, size: number): Promise<void> {
    await this.hold;
    this.check();
    await this.inner.putStream(key, body, size);
    this.puts.push(key);
  }
  get: ObjectStore["get"] = async (key, range, options) => (
    this.check(),
    this.inner.get(key, range, options)
  );
  head: ObjectStore["head"] = async (key) => (this.check(), this.inner.head(key));
  delete: ObjectStore["delete"] = async (key) => {
    this.deletes.push(key);
    this.check();
    if (this.refuseDeletes) throw new Error("connection refused (test backend refuses deletes)");
    return this.inner.delete(key);
  };
  list: ObjectStore["list"] = (prefix) => this.inner.list(prefix);
  close = (): Promise<void> => Promise.resolve();
}

interface Setup {
  spool: SpoolStore;
  gate: Gate;
  backendRoot: string;
  spoolFolder: string;
  logger: MemoryLogger;
  reopen(overrides?: Partial<SpoolOptions>, backend?: ObjectStore): Promise<SpoolStore>;
}

async function setup(overrides: Partial<SpoolOptions> = {}): Promise<Setup> {
  const backendRoot = await tempFolder("ocs-spool-backend-");
  const spoolFolder = join(await tempFolder("ocs-spool-"), "spool");
  const gate = new Gate(await createFolderStore({ root: backendRoot, fsync: false }));
  const logger = new MemoryLogger();
  const options = (more: Partial<SpoolOptions> = {}): SpoolOptions => ({
    folder: spoolFolder,
    maxPendingBytes: 64 * 1024 * 1024,
    concurrency: 2,
    logger,
    retryBaseMs: 20,
    retryMaxMs: 100,
    ...overrides,
    ...more,
  });
  const spool = await SpoolStore.open(gate, options());
  return {
    spool,
    gate,
    backendRoot,
    spoolFolder,
    logger,
    reopen: (more, backend = gate) => SpoolStore.open(backend, options(more)),
  };
}

async function readAll(store: ObjectStore, key: string): Promise<Buffer | null> {
  const object = await store.get(key);
  if (object === null) return null;
  const chunks: Buffer[] = [];
  for await (const chunk of object.body as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** A bit flipped on the disk: the last byte of the file's data changed. */
async function flipLastByte(path: string): Promise<void> {
  const bytes = await readFile(path);
  bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 0x01;
  await writeFile(path, bytes);
}

async function spoolFiles(folder: string): Promise<string[]> {
  return (await readdir(folder)).filter((name) => name !== "lock").sort();
}

objectStoreConformance("write-behind spool over the folder store", async () => {
  const { spool } = await setup();
  return { store: spool, cleanup: () => spool.close() };
});

describe("write-behind spool", () => {
  it("acknowledges a put with the bytes in the spool, serves them from there, then uploads them", async () => {
    const { spool, gate, backendRoot, spoolFolder } = await setup();
    let release!: () => void;
    gate.hold = new Promise((resolve) => (release = resolve));
    await spool.put("a/one.dcm", Buffer.from("first object"));
    assert.deepEqual(await filesUnder(backendRoot), [], "not uploaded yet");
    assert.equal((await spoolFiles(spoolFolder)).length, 1);
    assert.equal((await readAll(spool, "a/one.dcm"))?.toString(), "first object");
    const range = await spool.get("a/one.dcm", { start: 6, end: 12 });
    assert.equal(range?.size, 12);
    assert.equal(range?.bytes?.toString(), "object");
    assert.deepEqual(await spool.head("a/one.dcm"), { key: "a/one.dcm", size: 12 });
    assert.deepEqual(spool.backlog().objects, 1);
    release();
    assert.equal(await spool.drain(5000), true);
    assert.deepEqual(await filesUnder(backendRoot), ["a/one.dcm"]);
    assert.equal((await readFile(join(backendRoot, "a/one.dcm"))).toString(), "first object");
    assert.deepEqual(await spoolFiles(spoolFolder), [], "its spool file is gone once uploaded");
    assert.equal((await readAll(spool, "a/one.dcm"))?.toString(), "first object", "now from the backend");
    assert.deepEqual(spool.backlog(), { objects: 0, bytes: 0, oldestAgeS: 0, uploading: 0 });
    await spool.close();
  });

  it("hands out open files when asked (file answers): a spooled object's, past its header, then the backend's", async () => {
    const fixture = await setup();
    const { spool, gate, backendRoot } = fixture;
    let release!: () => void;
    gate.hold = new Promise((resolve) => (release = resolve));
    await spool.put("a/one.dcm", Buffer.from("first object"));
    const bytesAt = (fd: number, start: number, length: number): string => {
      const bytes = Buffer.alloc(length);
      assert.equal(readSync(fd, bytes, 0, length, start), length);
      return bytes.toString();
    };
    const range = await spool.get("a/one.dcm", { start: 6, end: 12 }, { file: true });
    assert.ok(range?.file, "the spool file itself");
    assert.equal(range.size, 12);
    assert.equal(bytesAt(range.file.fd, range.file.start, 6), "object");
    range.body.destroy();
    const direct = spool.openLocalFile("a/one.dcm");
    assert.ok(direct, "opened at once too");
    assert.equal(direct.size, 12);
    assert.equal(bytesAt(direct.fd, direct.start, 12), "first object");
    closeSync(direct.fd);
    assert.equal(
      spool.openLocalFile("a/one.dcm", { start: 0, end: 13 }),
      undefined,
      "a range past its end: get says why",
    );
    release();
    assert.equal(await spool.drain(5000), true);
    const uploaded = await spool.get("a/one.dcm", undefined, { file: true });
    assert.ok(uploaded?.file, "the backend's open file, the request passed on");
    assert.equal(bytesAt(uploaded.file.fd, uploaded.file.start, 12), "first object");
    uploaded.body.destroy();
    assert.equal(spool.openLocalFile("a/one.dcm"), undefined, "this backend opens no local file at once");
    await spool.close();
    const overFolder = await fixture.reopen({}, await createFolderStore({ root: backendRoot, fsync: false }));
    const fromBackend = overFolder.openLocalFile("a/one.dcm");
    assert.ok(fromBackend, "the folder backend's, opened at once");
    assert.equal(bytesAt(fromBackend.fd, fromBackend.start, 12), "first object");
    closeSync(fromBackend.fd);
    await overFolder.close();
  });

  it("uploads in the order of acknowledgement, UploadConcurrency at a time", async () => {
    const { spool, gate } = await setup({ concurrency: 1 });
    gate.down = true;
    const keys = Array.from({ length: 8 }, (_, i) => `k${7 - i}`);
    for (const key of keys) await spool.put(key, Buffer.from(key));
    gate.down = false;
    assert.equal(await spool.drain(10_000), true);
    assert.deepEqual(gate.puts, keys);
    await spool.close();
  });

  it("streams large objects both ways, byte-identical", async () => {
    const { spool, gate, backendRoot } = await setup({ maxPendingBytes: 64 * 1024 * 1024 });
    let release!: () => void;
    gate.hold = new Promise((resolve) => (release = resolve));
    const big = Buffer.alloc(5 * 1024 * 1024 + 7);
    for (let i = 0; i < big.length; i += 4096) big[i] = (i / 4096) & 0xff;
    await spool.putStream("big.bin", Readable.from([big.subarray(0, 1000), big.subarray(1000)]), big.length);
    assert.ok((await readAll(spool, "big.bin"))?.equals(big), "whole, from the spool (streamed)");
    release();
    assert.equal(await spool.drain(10_000), true);
    assert.ok((await readFile(join(backendRoot, "big.bin"))).equals(big));
    await spool.close();
  });

  it("refuses a stream that does not bring its announced size, and keeps nothing of it", async () => {
    const { spool, spoolFolder } = await setup();
    await assert.rejects(spool.putStream("short", Readable.from([Buffer.from("abc")]), 10), (e) =>
      isStorageError(e, "INTEGRITY"),
    );
    assert.deepEqual(await spoolFiles(spoolFolder), []);
    assert.equal(spool.backlog().bytes, 0);
    await spool.close();
  });

  it("refuses creates past MaxPendingSize with SPOOL_FULL naming the backend's failure, then accepts them once drained", async () => {
    const { spool, gate, backendRoot } = await setup({ maxPendingBytes: 100 });
    gate.down = true;
    await spool.put("a", Buffer.alloc(60, 1));
    await spool.put("b", Buffer.alloc(40, 2));
    await new Promise((resolve) => setTimeout(resolve, 50)); // let an upload fail
    await assert.rejects(spool.put("c", Buffer.alloc(1)), (error) => {
      assert.ok(isStorageError(error, "SPOOL_FULL"));
      assert.match(
        error.message,
        /100 bytes wait for upload and 1 more would pass LocalDisk\.MaxPendingSize/,
      );
      assert.match(error.message, /have failed since .*test backend down/);
      return true;
    });
    gate.down = false;
    assert.equal(await spool.drain(5000), true);
    await spool.put("c", Buffer.alloc(1, 3));
    assert.equal(await spool.drain(5000), true);
    assert.deepEqual(await filesUnder(backendRoot), ["a", "b", "c"]);
    await spool.close();
  });

  it("deletes a spooled object before its upload without asking the backend, even while it is down", async () => {
    const { spool, gate, backendRoot, spoolFolder } = await setup();
    gate.down = true;
    await spool.put("gone", Buffer.from("x"));
    await spool.delete("gone");
    assert.deepEqual(gate.deletes, [], "nothing of it ever left the disk: the backend is not asked");
    gate.down = false;
    assert.equal(await spool.get("gone"), null);
    assert.equal(await spool.drain(5000), true);
    assert.deepEqual(await filesUnder(backendRoot), []);
    assert.deepEqual(await spoolFiles(spoolFolder), []);
    await spool.close();
  });

  it("a delete during the upload in flight deletes the object from the backend once the upload lands", async () => {
    const { spool, gate, backendRoot, spoolFolder } = await setup();
    let release!: () => void;
    gate.hold = new Promise((resolve) => (release = resolve));
    await spool.put("racing", Buffer.from("x"));
    await new Promise((resolve) => setTimeout(resolve, 20)); // the upload is now in flight, held
    await spool.delete("racing");
    assert.deepEqual(await spoolFiles(spoolFolder), ["0000000000000001.deleted"], "a tombstone");
    release();
    assert.equal(await spool.drain(5000), true);
    assert.deepEqual(gate.puts, ["racing"], "the upload did land...");
    assert.deepEqual(await filesUnder(backendRoot), [], "...and was deleted after it");
    assert.deepEqual(await spoolFiles(spoolFolder), []);
    await spool.close();
  });

  it("a key deleted during its upload reads as deleted at once, even while the upload landed and its delete waits", async () => {
    const { spool, gate, backendRoot } = await setup();
    let release!: () => void;
    gate.hold = new Promise((resolve) => (release = resolve));
    await spool.put("dir/racing", Buffer.from("x"));
    await new Promise((resolve) => setTimeout(resolve, 20)); // the upload is now in flight, held
    await spool.delete("dir/racing");
    gate.refuseDeletes = true;
    release();
    while (!gate.puts.includes("dir/racing")) await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(await filesUnder(backendRoot), ["dir/racing"], "the upload landed in the backend...");
    assert.equal(await spool.get("dir/racing"), null, "...but the key reads as deleted");
    assert.equal(await spool.head("dir/racing"), null);
    const listed: string[] = [];
    for await (const info of spool.list("dir/")) listed.push(info.key);
    assert.deepEqual(listed, []);
    gate.refuseDeletes = false;
    assert.equal(await spool.drain(5000), true);
    assert.deepEqual(await filesUnder(backendRoot), []);
    await spool.close();
  });

  it("a delete just after an upload landed goes to the backend, and never fails on the vanishing file", async () => {
    const { spool, gate, backendRoot, spoolFolder } = await setup();
    for (let round = 0; round < 20; round++) {
      const key = `landed-${round}`;
      let release!: () => void;
      gate.hold = new Promise((resolve) => (release = resolve));
      await spool.put(key, Buffer.from("x"));
      await new Promise((resolve) => setTimeout(resolve, 5));
      release();
      // Wait for the upload to land, then delete while the spool removes its file.
      while (!gate.puts.includes(key)) await new Promise((resolve) => setImmediate(resolve));
      await spool.delete(key);
    }
    assert.equal(await spool.drain(5000), true);
    assert.deepEqual(await filesUnder(backendRoot), []);
    assert.deepEqual(await spoolFiles(spoolFolder), []);
    await spool.close();
  });

  it("drain retries at once, without waiting out a backoff begun during an outage", async () => {
    const { spool, gate } = await setup({ retryBaseMs: 60_000, retryMaxMs: 60_000 });
    gate.down = true;
    await spool.put("waiting", Buffer.from("x"));
    await new Promise((resolve) => setTimeout(resolve, 30)); // failed once: the next try is a minute away
    gate.down = false;
    assert.equal(await spool.drain(2000), true);
    await spool.close();
  });

  it("after a crash: drains what was acknowledged, never uploads half-written files, honours tombstones", async () => {
    const first = await setup({ concurrency: 4 });
    first.gate.hold = new Promise(() => undefined); // the uploads of the first daemon never end
    await first.spool.put("kept/1", Buffer.from("one"));
    await first.spool.put("kept/2", Buffer.from("two"));
    await first.spool.put("deleted-in-flight", Buffer.from("three"));
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(first.spool.backlog().uploading, 3);
    await first.spool.delete("deleted-in-flight");
    // The crash: the daemon dies with its uploads in flight, one of which had landed; a write was cut short;
    // a file was damaged on the disk.
    await writeFile(join(first.backendRoot, "deleted-in-flight"), "three");
    await writeFile(join(first.spoolFolder, ".00000000000000ff.spool.tmp-0123456789ab"), "half");
    await writeFile(
      join(first.spoolFolder, "00000000000000fe.spool"),
      Buffer.concat([encodeSpoolHeader("damaged", 100, Date.now()), Buffer.from("too short")]),
    );
    const second = await first.reopen(
      {},
      new Gate(await createFolderStore({ root: first.backendRoot, fsync: false })),
    );
    assert.equal(await second.drain(5000), true);
    assert.deepEqual(await filesUnder(first.backendRoot), ["kept/1", "kept/2"]);
    assert.equal((await readFile(join(first.backendRoot, "kept/2"))).toString(), "two");
    assert.deepEqual(await spoolFiles(first.spoolFolder), ["rejected"]);
    assert.ok(first.logger.lines.some((l) => l.level === "info" && /removed 1 half-written/.test(l.message)));
    assert.ok(
      first.logger.lines.some(
        (l) =>
          l.level === "error" && /00000000000000fe\.spool is damaged .*moved to rejected\//.test(l.message),
      ),
    );
    await second.close();
  });

  it("a delete of an object found in the spool at start goes to the backend too (its upload may have landed)", async () => {
    // Retried only by the drain: after its first try, the upload is not in flight when the delete comes.
    const first = await setup({ retryBaseMs: 60_000, retryMaxMs: 60_000 });
    first.gate.down = true;
    await first.spool.put("recovered", Buffer.from("x"));
    await first.spool.close();
    const second = await first.reopen();
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(second.backlog().uploading, 0);
    first.gate.down = false;
    await second.delete("recovered");
    assert.deepEqual(first.gate.deletes, ["recovered"]);
    assert.equal(await second.drain(5000), true);
    assert.deepEqual(first.gate.puts, [], "never uploaded after its delete");
    await second.close();
  });

  it("a file damaged on disk is never served: the read fails naming the object, and the file goes to rejected/", async () => {
    // Retried only by the drain: the uploader's first tries fail now, and leave the files to the reads.
    const { spool, gate, spoolFolder, logger } = await setup({ retryBaseMs: 60_000, retryMaxMs: 60_000 });
    gate.down = true;
    const data = Buffer.alloc(300_000, 7);
    await spool.put("a/damaged.dcm", data);
    await spool.put("a/sound.dcm", data);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const [damaged] = await spoolFiles(spoolFolder);
    await flipLastByte(join(spoolFolder, damaged as string));
    for (const range of [undefined, { start: 0, end: 10 }]) {
      await assert.rejects(
        spool.get("a/damaged.dcm", range),
        (error: unknown) =>
          isStorageError(error) &&
          error.code === "INTEGRITY" &&
          /a\/damaged\.dcm: its spool file 0000000000000001\.spool .* is damaged .*SHA-256.*moved to rejected\//.test(
            error.message,
          ),
      );
    }
    assert.deepEqual(await spoolFiles(spoolFolder), ["0000000000000002.spool", "rejected"]);
    await assert.rejects(spool.head("a/damaged.dcm"), /a\/damaged\.dcm: its spool file .* is damaged/);
    assert.deepEqual(await readdir(join(spoolFolder, "rejected")), [damaged]);
    assert.ok(logger.lines.some((l) => l.level === "error" && /a\/damaged\.dcm/.test(l.message)));
    assert.deepEqual(await readAll(spool, "a/sound.dcm"), data, "the sound one is served");
    gate.down = false;
    assert.equal(await spool.drain(5000), true);
    assert.deepEqual(gate.puts, ["a/sound.dcm"], "the damaged one is never uploaded");
    assert.equal(spool.backlog().bytes, 0);
    await spool.delete("a/damaged.dcm");
    assert.deepEqual(gate.deletes, [], "never uploaded: its delete asks nothing of the backend");
    assert.equal(await spool.get("a/damaged.dcm"), null, "deleted: the key reads as missing again");
    await spool.close();
  });

  it("a file damaged on disk is never handed out as a file either (file answers, the direct path)", async () => {
    const { spool, gate, spoolFolder } = await setup({ retryBaseMs: 60_000, retryMaxMs: 60_000 });
    gate.down = true;
    await spool.put("as-file", Buffer.alloc(1000, 3));
    await new Promise((resolve) => setTimeout(resolve, 50));
    const sound = spool.openLocalFile("as-file");
    assert.ok(sound !== undefined, "a sound file is handed out");
    closeSync(sound.fd);
    const [name] = await spoolFiles(spoolFolder);
    await flipLastByte(join(spoolFolder, name as string));
    assert.equal(spool.openLocalFile("as-file"), undefined, "the direct path steps aside");
    await assert.rejects(
      spool.get("as-file", undefined, { file: true }),
      (error: unknown) => isStorageError(error) && error.code === "INTEGRITY",
    );
    assert.equal(spool.openLocalFile("as-file"), undefined, "and keeps aside once it is rejected");
    await spool.close();
  });

  it("a file damaged on disk is never uploaded, large ones (streamed) too", async () => {
    const { spool, gate, spoolFolder, logger } = await setup();
    gate.down = true;
    const large = randomBytes(SYNC_FILE_LIMIT + 1000);
    await spool.putStream("large", Readable.from([large]), large.length);
    await spool.put("small", Buffer.from("small object"));
    await spool.putStream("large-sound", Readable.from([large]), large.length);
    for (const name of (await spoolFiles(spoolFolder)).slice(0, 2))
      await flipLastByte(join(spoolFolder, name));
    gate.down = false;
    assert.equal(await spool.drain(5000), true);
    assert.deepEqual(gate.puts, ["large-sound"]);
    assert.deepEqual(await readdir(join(spoolFolder, "rejected")), [
      "0000000000000001.spool",
      "0000000000000002.spool",
    ]);
    for (const key of ["large", "small"]) {
      assert.ok(
        logger.lines.some((l) => l.level === "error" && l.message.includes(`${key}: its spool file`)),
        `the log names ${key}`,
      );
    }
    assert.equal(spool.backlog().bytes, 0);
    await spool.close();
  });

  it("checks the whole of a large spooled object before serving a range of it", async () => {
    const { spool, gate, spoolFolder } = await setup();
    gate.down = true;
    const large = randomBytes(SYNC_FILE_LIMIT + 1000);
    await spool.putStream("large", Readable.from([large]), large.length);
    const head = await spool.get("large", { start: 0, end: 100 });
    assert.deepEqual(head?.bytes, large.subarray(0, 100));
    const [name] = await spoolFiles(spoolFolder);
    await flipLastByte(join(spoolFolder, name as string));
    await assert.rejects(spool.get("large", { start: 0, end: 100 }), /large: its spool file .* is damaged/);
    await spool.close();
  });

  it("uploads a file of the format without a digest (written before the upgrade) unchecked", async () => {
    const { spool, gate, spoolFolder, ...setupOf } = await setup();
    await spool.close();
    const v2 = encodeSpoolHeader("old/format", 5, Date.now());
    // The same header without its 32 digest bytes, under the older magic.
    const v1 = Buffer.concat([Buffer.from("OCSSPL01", "latin1"), v2.subarray(8, 28), v2.subarray(60)]);
    await writeFile(join(spoolFolder, "0000000000000009.spool"), Buffer.concat([v1, Buffer.from("hello")]));
    const reopened = await setupOf.reopen();
    assert.equal((await readAll(reopened, "old/format"))?.toString(), "hello");
    assert.equal(await reopened.drain(5000), true);
    assert.deepEqual(gate.puts, ["old/format"]);
    await reopened.close();
  });

  it("keeps retrying with backoff while the backend is down, and reports the backlog meanwhile", async () => {
    const { spool, gate, logger } = await setup();
    gate.down = true;
    await spool.put("x", Buffer.alloc(10));
    await spool.put("y", Buffer.alloc(20));
    await new Promise((resolve) => setTimeout(resolve, 300));
    const backlog = spool.backlog();
    assert.equal(backlog.objects, 2);
    assert.equal(backlog.bytes, 30);
    assert.ok(backlog.oldestAgeS >= 0.25);
    assert.ok((backlog.failing?.attempts ?? 0) >= 2, "retried");
    assert.match(backlog.failing?.error ?? "", /test backend down/);
    assert.equal(
      logger.lines.filter((l) => l.level === "warn").length,
      1,
      "one log line, not one per attempt",
    );
    gate.down = false;
    assert.equal(await spool.drain(5000), true);
    assert.equal(spool.backlog().failing, undefined);
    assert.ok(logger.lines.some((l) => /work again after/.test(l.message)));
    await spool.close();
  });

  it("a newer put of a key replaces the spooled one; only the newer is uploaded last", async () => {
    const { spool, gate, backendRoot } = await setup();
    gate.down = true;
    await spool.put("same", Buffer.from("old"));
    await spool.put("same", Buffer.from("new"));
    assert.equal((await readAll(spool, "same"))?.toString(), "new");
    gate.down = false;
    assert.equal(await spool.drain(5000), true);
    assert.deepEqual(gate.puts, ["same"]);
    assert.equal((await readFile(join(backendRoot, "same"))).toString(), "new");
    await spool.close();
  });

  it("drain gives up after its timeout while the backend is down", async () => {
    const { spool, gate } = await setup();
    gate.down = true;
    await spool.put("stuck", Buffer.from("x"));
    assert.equal(await spool.drain(100), false);
    await spool.close();
  });
});
