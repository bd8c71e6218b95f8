import assert from "node:assert/strict";
import { closeSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, readlink, rm, writeFile, mkdir, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { describe, it } from "node:test";

import { isStorageError } from "../../src/errors.js";
import { createFolderStore } from "../../src/stores/folder.js";
import {
  ReadBuffers,
  SYNC_FILE_LIMIT,
  bufferedBody,
  fileRangeStream,
  openToRead,
  readRange,
} from "../../src/stores/local-file-io.js";
import { folderBucket } from "../../test-support/folder.js";
import { objectStoreConformance } from "./conformance.js";

// Both write paths: with fsync, through the thread pool; without, small objects in one unit on the thread.
for (const fsync of [true, false]) {
  objectStoreConformance(`folder, fsync ${fsync ? "on" : "off"}`, async () => {
    const folder = await folderBucket();
    return {
      store: await createFolderStore(folder.storeOptions({ fsync })),
      cleanup: () => folder.cleanup(),
    };
  });
}

describe("folder driver", () => {
  async function freshStore(fsync = false) {
    const folder = await folderBucket();
    return { root: folder.name, store: await createFolderStore(folder.storeOptions({ fsync })) };
  }

  it("names files exactly by their key, with '/' as sub-folders", async () => {
    const { root, store } = await freshStore();
    await store.put("orthanc/data/0a/1b/0a1b2c3d-1111-2222-3333-444455556666", Buffer.from("x"));
    await store.put("0a1b2c3d-1111-2222-3333-444455556666.dcm.enc", Buffer.from("y"));
    assert.equal((await stat(join(root, "orthanc/data/0a/1b/0a1b2c3d-1111-2222-3333-444455556666"))).size, 1);
    assert.equal((await stat(join(root, "0a1b2c3d-1111-2222-3333-444455556666.dcm.enc"))).size, 1);
    await rm(root, { recursive: true });
  });

  it("leaves no temporary file behind and never lists one left by a crash", async () => {
    const { root, store } = await freshStore(true);
    await store.put("a/b.dcm", Buffer.from("data"));
    assert.deepEqual(await readdir(join(root, "a")), ["b.dcm"]);
    await writeFile(join(root, "a", ".c.dcm.tmp-0123456789ab"), "half-written");
    const keys = [];
    for await (const info of store.list("")) keys.push(info.key);
    assert.deepEqual(keys, ["a/b.dcm"]);
    await rm(root, { recursive: true });
  });

  it("removes folders left empty by a delete, but not the root", async () => {
    const { root, store } = await freshStore();
    await store.put("0a/1b/one", Buffer.from("1"));
    await store.put("0a/2c/two", Buffer.from("2"));
    await store.delete("0a/1b/one");
    assert.deepEqual(await readdir(join(root, "0a")), ["2c"]);
    await store.delete("0a/2c/two");
    assert.deepEqual(await readdir(root), []);
    await rm(root, { recursive: true });
  });

  for (const key of ["../escape", "a/../../escape", "/absolute", "a//b", "a/./b", "", "a\\b", "a/"]) {
    it(`refuses the key ${JSON.stringify(key)} that could leave the folder`, async () => {
      const { root, store } = await freshStore();
      await assert.rejects(store.put(key, Buffer.from("x")), (error) =>
        isStorageError(error, "INVALID_ATTACHMENT"),
      );
      await assert.rejects(store.get(key), (error) => isStorageError(error, "INVALID_ATTACHMENT"));
      await assert.rejects(store.delete(key), (error) => isStorageError(error, "INVALID_ATTACHMENT"));
      await rm(root, { recursive: true });
    });
  }

  for (const fsync of [false, true]) {
    it(`reports a write that cannot succeed with the file and the cause, and leaves no temporary file (fsync ${fsync ? "on" : "off"})`, async () => {
      const { root, store } = await freshStore(fsync);
      await mkdir(join(root, "taken.dcm"));
      await writeFile(join(root, "taken.dcm", "inside"), "a folder stands where the object goes");
      await assert.rejects(store.put("taken.dcm", Buffer.from("x")), (error) => {
        assert.ok(isStorageError(error, "STORE_FAILED"));
        assert.match(error.message, /^write .*taken\.dcm: a folder stands where the object file should be/);
        return true;
      });
      assert.deepEqual(await readdir(root), ["taken.dcm"]);
      await rm(root, { recursive: true });
    });
  }

  it("creates the missing folders of a key on a write without fsync", async () => {
    const { root, store } = await freshStore(false);
    await store.put("0a/1b/new.dcm", Buffer.from("deep"));
    assert.equal(await readFile(join(root, "0a/1b/new.dcm"), "utf8"), "deep");
    await rm(root, { recursive: true });
  });

  it("hands over a small object's bytes whole, and streams a large one", async () => {
    const { root, store } = await freshStore();
    const small = Buffer.alloc(SYNC_FILE_LIMIT, 1);
    const large = Buffer.alloc(SYNC_FILE_LIMIT + 1, 2);
    await store.put("small", small);
    await store.put("large", large);
    const whole = await store.get("small");
    assert.ok(whole?.bytes !== undefined);
    assert.ok(whole.bytes.equals(small));
    assert.ok((await readAll(whole.body)).equals(small), "its body carries the same bytes");
    const range = await store.get("small", { start: 10, end: 20 });
    assert.deepEqual(range?.bytes, small.subarray(10, 20));
    const streamed = await store.get("large");
    assert.ok(streamed !== null);
    assert.equal(streamed.bytes, undefined);
    assert.equal(streamed.size, large.length);
    assert.ok((await readAll(streamed.body)).equals(large));
    const tail = await store.get("large", { start: 1, end: large.length });
    assert.ok(tail?.bytes !== undefined, "a range within the limit is read whole, whatever the file's size");
    assert.ok(tail.bytes.equals(large.subarray(1)));
    tail.body.destroy();
    await rm(root, { recursive: true });
  });

  it("hands over an open file when asked, read only if its body is read, closed when it is destroyed", async () => {
    const { root, store } = await freshStore();
    const data = randomBytes(3 * 1024 * 1024 + 5);
    await store.put("object", data);
    const isOpen = (fd: number) =>
      readlink(`/proc/self/fd/${fd}`).then(
        (path) => path.endsWith("object"),
        () => false,
      );
    const whole = await store.get("object", undefined, { file: true });
    assert.ok(whole?.file !== undefined);
    assert.equal(whole.bytes, undefined, "nothing read yet");
    assert.equal(whole.size, data.length);
    assert.deepEqual(whole.file.peek(4), data.subarray(0, 4));
    assert.ok(await isOpen(whole.file.fd));
    whole.body.destroy();
    assert.equal(await isOpen(whole.file.fd), false, "destroying the body closes the file");
    const range = await store.get("object", { start: 7, end: 2 * 1024 * 1024 + 9 }, { file: true });
    assert.ok(range?.file !== undefined);
    assert.equal(range.file.start, 7);
    assert.deepEqual(
      range.file.peek(100_000_000),
      data.subarray(7, 2 * 1024 * 1024 + 9),
      "a peek stops at the range's end",
    );
    assert.ok(
      (await readAll(range.body)).equals(data.subarray(7, 2 * 1024 * 1024 + 9)),
      "its body reads the range",
    );
    assert.equal(await isOpen(range.file.fd), false, "a body read to its end closes the file");
    assert.equal(await store.get("missing", undefined, { file: true }), null);
    await rm(root, { recursive: true });
  });

  it("reuses a read's memory once it is recycled, and never before", async () => {
    const { root, store } = await freshStore();
    await store.put("one", Buffer.alloc(100_000, 1));
    await store.put("two", Buffer.alloc(100_000, 2));
    const one = await store.get("one");
    const two = await store.get("two");
    assert.ok(one?.bytes !== undefined && two?.bytes !== undefined);
    assert.notEqual(two.bytes.buffer, one.bytes.buffer);
    one.body.destroy();
    one.recycle?.();
    const again = await store.get("two");
    assert.equal(again?.bytes?.buffer, one.bytes.buffer, "the recycled memory serves the next read");
    assert.ok(again.bytes.equals(Buffer.alloc(100_000, 2)));
    assert.ok(two.bytes.equals(Buffer.alloc(100_000, 2)), "a buffer not recycled is left alone");
    await rm(root, { recursive: true });
  });

  it("reports a read that cannot succeed with the file and the cause", async () => {
    const { root, store } = await freshStore();
    await mkdir(join(root, "folder.dcm"));
    await assert.rejects(store.get("folder.dcm"), (error) => {
      assert.ok(isStorageError(error, "STORE_FAILED"));
      assert.match(error.message, /^read .*folder\.dcm: a folder stands where the object file should be/);
      return true;
    });
    await rm(root, { recursive: true });
  });
});

describe("local file I/O in one unit", () => {
  it("refuses to read past the end of a file that was cut short", async () => {
    const root = await mkdtemp(join(tmpdir(), "ocs-local-io-"));
    await writeFile(join(root, "short"), "12345");
    const file = openToRead(join(root, "short"));
    assert.ok(file !== null);
    try {
      assert.equal(file.size, 5);
      assert.equal(readRange(file.fd, 1, 4).toString(), "234");
      assert.throws(() => readRange(file.fd, 0, 8), /the file ended after 5 bytes/);
    } finally {
      closeSync(file.fd);
    }
    assert.equal(openToRead(join(root, "missing")), null);
    assert.equal(openToRead(join(root, "short", "under-a-file")), null, "ENOTDIR is a missing object too");
    await rm(root, { recursive: true });
  });

  it("streams a range of an open file, then closes it; an empty range is refused", async () => {
    const root = await mkdtemp(join(tmpdir(), "ocs-local-io-"));
    await writeFile(join(root, "file"), "0123456789");
    const file = openToRead(join(root, "file"));
    assert.ok(file !== null);
    try {
      assert.throws(() => fileRangeStream(file.fd, 4, 4), /an empty range \[4, 4\)/);
      const body = fileRangeStream(file.fd, 2, 7, 2);
      const chunks: Buffer[] = [];
      for await (const chunk of body) chunks.push(chunk as Buffer);
      assert.equal(Buffer.concat(chunks).toString(), "23456");
      assert.ok(
        chunks.every((chunk) => chunk.length <= 2),
        "in chunks of the size asked",
      );
      if (!body.closed) await new Promise((resolve) => body.once("close", resolve));
      assert.throws(() => closeSync(file.fd), /EBADF/, "the stream closed the file at its end");
    } finally {
      await rm(root, { recursive: true });
    }
  });

  it("reuses a read buffer only once it is given back, once, and keeps at most its capacity", () => {
    const buffers = new ReadBuffers(512 * 1024);
    const first = buffers.take(200_000);
    assert.equal(first.length, 200_000);
    const second = buffers.take(200_000);
    assert.notEqual(second.buffer, first.buffer, "a buffer lent out is not lent again");
    buffers.give(first);
    buffers.give(first);
    assert.equal(buffers.pooledBytes, 256 * 1024, "given back twice, pooled once");
    const third = buffers.take(150_000);
    assert.equal(third.buffer, first.buffer, "the same size class is reused");
    assert.equal(buffers.pooledBytes, 0);
    assert.notEqual(buffers.take(150_000).buffer, first.buffer, "and lent to one reader at a time");
    buffers.give(Buffer.alloc(200_000));
    assert.equal(buffers.pooledBytes, 0, "a buffer it did not lend is never pooled");
    buffers.give(second);
    buffers.give(third);
    buffers.give(buffers.take(300_000));
    assert.equal(buffers.pooledBytes, 512 * 1024, "beyond its capacity, a buffer given back is dropped");
    const room = buffers.take(200_000);
    buffers.give(buffers.take(100));
    assert.equal(buffers.pooledBytes, 256 * 1024, "small reads are not pooled, even with room left");
    buffers.give(room);
  });

  it("gives an empty body for no bytes", async () => {
    assert.equal((await readAll(bufferedBody(Buffer.alloc(0)))).length, 0);
  });
});

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
