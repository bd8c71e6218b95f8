// Changing an object's storage class in place (ObjectStore.setStorageClass, used by tier rules:
// docs/backends.md), against the emulators the project runs: what each supports is documented there.
// The class is read back with each server's own client, never through our driver.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";

import { HeadObjectCommand } from "@aws-sdk/client-s3";

import { isStorageError } from "../../src/errors.js";
import { createAzureStore } from "../../src/stores/azure.js";
import { createGcsStore } from "../../src/stores/gcs.js";
import { createS3Store } from "../../src/stores/s3.js";
import { createFolderStore } from "../../src/stores/folder.js";
import type { ObjectStore } from "../../src/stores/object-store.js";
import type { Logger } from "../../src/log.js";
import { startAzurite } from "../../test-support/azurite.js";
import type { TestServer } from "../../test-support/bucket-fixture.js";
import { folderBucket } from "../../test-support/folder.js";
import { startGcsEmulator } from "../../test-support/gcs-emulator.js";
import { startRgw } from "../../test-support/rgw.js";
import { MemoryLogger } from "../helpers/memory-logger.js";
import { readBody } from "./conformance.js";

const KEY = "root/0a1b2c3d-1111-2222-3333-444455556666.dcm";
const MISSING = "root/ffffffff-1111-2222-3333-444455556666.dcm";

async function unchanged(store: ObjectStore, data: Buffer): Promise<void> {
  const object = await store.get(KEY);
  assert.ok(object !== null);
  assert.deepEqual(await readBody(object), data);
}

/** What each describe below works on: a server's bucket holding KEY (`data`), and our driver's store on it. */
interface ClassScene<Bucket> {
  bucket: Bucket;
  store: ObjectStore;
  data: Buffer;
}

/** How a describe below gets its scene: a server, a bucket of it, our driver on the bucket. */
interface ClassServer<Server extends TestServer, Bucket, Options> {
  start(): Promise<Server>;
  bucket(server: Server): Bucket | Promise<Bucket>;
  createStore(options: Options, logger: Logger): ObjectStore | Promise<ObjectStore>;
}

/**
 * A describe whose `before` starts a server, makes a bucket on it and puts KEY through our driver's store on
 * it; `after` closes the store, removes the bucket and stops the server by its pid, also on failure.
 */
function describeClasses<
  Server extends TestServer,
  Bucket extends { storeOptions(): Options; cleanup(): Promise<void> },
  Options,
>(
  title: string,
  open: ClassServer<Server, Bucket, Options>,
  tests: (scene: () => ClassScene<Bucket>) => void,
): void {
  describe(title, () => {
    let server: Server | undefined;
    let scene: ClassScene<Bucket> | undefined;
    before(async () => {
      server = await open.start();
      const bucket = await open.bucket(server);
      const store = await open.createStore(bucket.storeOptions(), new MemoryLogger());
      scene = { bucket, store, data: randomBytes(2000) };
      await scene.store.put(KEY, scene.data);
    });
    after(async () => {
      await scene?.store.close();
      await scene?.bucket.cleanup();
      await server?.stop();
    });
    tests(() => scene as ClassScene<Bucket>);
  });
}

describeClasses(
  "storage class on Ceph RGW (S3)",
  { start: startRgw, bucket: (rgw) => rgw.bucket("class"), createStore: createS3Store },
  (scene) => {
    it("asks first: an object already in the class asked for (STANDARD, the one RGW knows) is left as it is", async () => {
      const { store, bucket, data } = scene();
      assert.equal(await store.setStorageClass?.(KEY, "STANDARD"), "STANDARD");
      const head = await bucket.client.send(new HeadObjectCommand({ Bucket: bucket.name, Key: KEY }));
      assert.equal(head.StorageClass ?? "STANDARD", "STANDARD");
      await unchanged(store, data);
    });

    it("refuses a class this RGW zone has no placement for, naming it; the object stays as it was", async () => {
      const { store, data } = scene();
      await assert.rejects(store.setStorageClass?.(KEY, "GLACIER") as Promise<string>, (error: unknown) => {
        assert.ok(isStorageError(error, "STORE_FAILED"));
        assert.match(
          error.message,
          /change the storage class of s3:\/\/.*root\/0a1b2c3d.*: InvalidArgument \(HTTP 400\)/,
        );
        return true;
      });
      await unchanged(store, data);
    });

    it("a missing object is NOT_FOUND", async () => {
      const { store } = scene();
      await assert.rejects(
        store.setStorageClass?.(MISSING, "STANDARD") as Promise<string>,
        (error: unknown) => isStorageError(error, "NOT_FOUND"),
      );
    });
  },
);

describeClasses(
  "access tier on Azurite (Azure Blob)",
  { start: startAzurite, bucket: (azurite) => azurite.container("tier"), createStore: createAzureStore },
  (scene) => {
    it("sets Cool, then Hot, in place; the blob's properties say so", async () => {
      const { store, bucket, data } = scene();
      assert.equal(await store.setStorageClass?.(KEY, "Cool"), "Cool");
      assert.equal((await bucket.client.getBlobClient(KEY).getProperties()).accessTier, "Cool");
      await unchanged(store, data);
      assert.equal(await store.setStorageClass?.(KEY, "Hot"), "Hot");
    });

    it("refuses an unknown tier, naming it", async () => {
      const { store } = scene();
      await assert.rejects(store.setStorageClass?.(KEY, "Frozen") as Promise<string>, (error: unknown) => {
        assert.ok(isStorageError(error, "STORE_FAILED"));
        assert.match(error.message, /change the access tier of .*0a1b2c3d/);
        return true;
      });
    });

    it("a missing blob is NOT_FOUND", async () => {
      const { store } = scene();
      await assert.rejects(store.setStorageClass?.(MISSING, "Cool") as Promise<string>, (error: unknown) =>
        isStorageError(error, "NOT_FOUND"),
      );
    });
  },
);

describeClasses(
  "storage class on the Firebase Storage emulator (GCS)",
  { start: startGcsEmulator, bucket: (emulator) => emulator.bucket("class"), createStore: createGcsStore },
  (scene) => {
    it("the emulator does not implement the rewrite: refused with its answer, the object unchanged", async () => {
      const { store, data } = scene();
      await assert.rejects(store.setStorageClass?.(KEY, "NEARLINE") as Promise<string>, (error: unknown) => {
        assert.ok(isStorageError(error, "STORE_FAILED"));
        assert.match(
          error.message,
          /change the storage class of gs:\/\/.*0a1b2c3d.*HTTP 501: Not Implemented/,
        );
        return true;
      });
      await unchanged(store, data);
    });
  },
);

describe("storage class on a folder", () => {
  it("a folder has none: the driver offers no setStorageClass", async () => {
    await using folder = await folderBucket();
    const store = await createFolderStore(folder.storeOptions());
    assert.equal("setStorageClass" in store, false);
  });
});
