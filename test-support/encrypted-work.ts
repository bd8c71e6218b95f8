// What an end-to-end scenario on an encrypted backend starts from: a work folder of its own, holding the
// master key, and the Orthanc configuration that reaches one bucket of a test server (bucket-fixture.ts)
// with encryption on. cleanup() removes the bucket and the folder.

import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { onceCleanup, type BucketFixture } from "./bucket-fixture.js";

export interface EncryptedWork extends AsyncDisposable {
  /** The work folder: Orthanc's work folder goes below it (`join(workDir, "orthanc")`). */
  workDir: string;
  /** The master key file, id 1. */
  keyFile: string;
  /** `{ <Section>: { ...the bucket, ...section, StorageEncryption: { MasterKey: [1, keyFile] } } }` */
  config: Record<string, unknown>;
  /** Remove the bucket and the work folder. Safe to call more than once. */
  cleanup(): Promise<void>;
}

export interface EncryptedWorkOptions {
  /** The work folder's name starts with this ("ocs-faults-s3-"). */
  prefix: string;
  /** The key is 32 bytes of this value: each scenario has its own key. */
  keyByte: number;
  /** More options of the backend section (timeouts, retries...). */
  section?: Record<string, unknown>;
}

export async function encryptedWork(
  bucket: Pick<BucketFixture<unknown, unknown>, "orthancConfig" | "cleanup">,
  options: EncryptedWorkOptions,
): Promise<EncryptedWork> {
  const workDir = await mkdtemp(join(tmpdir(), options.prefix));
  const keyFile = join(workDir, "master.key");
  await writeFile(keyFile, Buffer.alloc(32, options.keyByte).toString("base64"), { mode: 0o600 });
  const config = bucket.orthancConfig({ ...options.section, StorageEncryption: { MasterKey: [1, keyFile] } });
  return {
    workDir,
    keyFile,
    config,
    ...onceCleanup(async () => {
      await bucket.cleanup();
      await rm(workDir, { recursive: true, force: true });
    }),
  };
}
