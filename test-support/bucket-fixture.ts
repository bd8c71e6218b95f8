// What every user of a test server needs of one bucket (an S3 bucket, an Azure container, a GCS bucket,
// a folder): the Orthanc section that reaches it, the driver's options for it, a raw client that checks it
// independently of our driver, and its removal. Each server's module (rgw.ts, azurite.ts,
// gcs-emulator.ts, folder.ts) makes them; test/stores, test/e2e, test/cli and bench/ use them.

import { randomUUID } from "node:crypto";

export interface BucketFixture<StoreOptions, Client> {
  /** The backend's section in Orthanc's configuration: "AwsS3Storage", "AzureBlobStorage"... */
  readonly sectionName: string;
  /** The bucket's (container's, folder's) name. */
  readonly name: string;
  /** The SDK client (or folder path) the raw methods use: never our driver. */
  readonly client: Client;
  /**
   * The top-level Orthanc configuration that reaches this bucket, `{ AwsS3Storage: {...} }`; `extra` adds
   * or overrides options of the section (RootPath, StorageEncryption...).
   */
  orthancConfig(extra?: Record<string, unknown>): Record<string, unknown>;
  /** The driver's options for this bucket, with the tests' settings (short timeouts, few retries). */
  storeOptions(overrides?: Partial<StoreOptions>): StoreOptions;
  /** Every object key, sorted, as the server itself lists them. */
  listKeys(): Promise<string[]>;
  /** An object's bytes, read with the raw client. */
  read(key: string): Promise<Buffer>;
  /** Write an object with the raw client (bad objects planted, baselines of the benches). */
  write(key: string, data: Uint8Array): Promise<void>;
  /** Remove the bucket and everything in it (a missing one is fine). Safe to call more than once. */
  cleanup(): Promise<void>;
  /** cleanup(), for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** A test server: stopped by its pid, also through `await using`. */
export interface TestServer extends AsyncDisposable {
  /** Stop the server by its pid and remove its folder. Safe to call more than once. */
  stop(): Promise<void>;
}

/** `cleanup` run at most once, however often it is called; `[Symbol.asyncDispose]` runs it too. */
export function onceCleanup(cleanup: () => Promise<void>): {
  cleanup(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
} {
  let done: Promise<void> | undefined;
  const run = (): Promise<void> => (done ??= cleanup());
  return { cleanup: run, [Symbol.asyncDispose]: run };
}

/** A fresh name for a bucket: `prefix-` and a random uuid (S3's rules: lowercase, digits, dashes). */
export function freshBucketName(prefix: string): string {
  return `${prefix}-${randomUUID()}`;
}
