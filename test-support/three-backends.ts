// The three backends of the several-backends e2e tests (docs/backends.md): a bucket on Ceph RGW, a container
// on Azurite and a folder, made at once on servers the test file started, with a work dir for Orthanc that
// holds two master keys (one for the RGW backend, one for the folder). One cleanup removes them all.

import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

import type { AzuriteContainer, AzuriteServer } from "./azurite.js";
import { onceCleanup } from "./bucket-fixture.js";
import { folderBucket, type FolderBucket } from "./folder.js";
import type { RgwBucket, RgwServer } from "./rgw.js";

export interface ThreeBackends {
  bucket: RgwBucket;
  container: AzuriteContainer;
  folder: FolderBucket;
  /** Orthanc's work dir (OrthancInstance.start's `workDir`); the key files are in it. */
  workDir: string;
  /** A master key file (32 bytes of 1s, base64) for the RGW backend's StorageEncryption. */
  rgwKey: string;
  /** A master key file (32 bytes of 2s, base64) for the folder backend's StorageEncryption. */
  diskKey: string;
  /** Remove the bucket, the container, the folder and the work dir. Safe to call more than once. */
  cleanup(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** A bucket and a container named `name` (made unique by each server) and a fresh folder and work dir. */
export async function threeBackends(
  rgw: RgwServer,
  azurite: AzuriteServer,
  name: string,
): Promise<ThreeBackends> {
  const [bucket, container, folder] = await Promise.all([
    rgw.bucket(name),
    azurite.container(name),
    folderBucket(),
  ]);
  const workDir = await mkdtemp(join(tmpdir(), `ocs-${name}-`));
  const rgwKey = join(workDir, "rgw.key");
  const diskKey = join(workDir, "disk.key");
  await writeFile(rgwKey, Buffer.alloc(32, 1).toString("base64"), { mode: 0o600 });
  await writeFile(diskKey, Buffer.alloc(32, 2).toString("base64"), { mode: 0o600 });
  return {
    bucket,
    container,
    folder,
    workDir,
    rgwKey,
    diskKey,
    ...onceCleanup(async () => {
      await Promise.all([bucket.cleanup(), container.cleanup(), folder.cleanup()]);
      await rm(workDir, { recursive: true, force: true });
    }),
  };
}
