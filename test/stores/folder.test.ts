import assert from "node:assert/strict";
import { readdir, rm, writeFile, mkdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";

import { isStorageError } from "../../src/errors.js";
import { createFolderStore } from "../../src/stores/folder.js";
import { folderBucket } from "../../test-support/folder.js";
import { objectStoreConformance } from "./conformance.js";

objectStoreConformance("folder", async () => {
  const folder = await folderBucket();
  return {
    store: await createFolderStore(folder.storeOptions({ fsync: true })),
    cleanup: () => folder.cleanup(),
  };
});

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

  it("reports a write that cannot succeed with the file and the cause", async () => {
    const { root, store } = await freshStore();
    await mkdir(join(root, "taken.dcm"));
    await writeFile(join(root, "taken.dcm", "inside"), "a folder stands where the object goes");
    await assert.rejects(store.put("taken.dcm", Buffer.from("x")), (error) => {
      assert.ok(isStorageError(error, "STORE_FAILED"));
      assert.match(error.message, /^write .*taken\.dcm: /);
      return true;
    });
    await rm(root, { recursive: true });
  });
});
