// The GCS fixture: the Cloud Storage emulator of firebase-tools (a devDependency) in a child process
// (gcs-emulator-main.js), on 127.0.0.1, a free port, its own TMPDIR, stopped by its pid; and its buckets
// (bucket-fixture.ts). It speaks the GCS
// JSON API but checks no credentials, has no createBucket (buckets appear on first use), no copy, and no
// chunked resumable uploads (the driver uses single-request uploads).

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { Storage, type Bucket } from "@google-cloud/storage";

import type { GcsOptions } from "../src/config/types.js";
import { freshBucketName, onceCleanup, type BucketFixture, type TestServer } from "./bucket-fixture.js";
import { freePort } from "./free-port.js";
import { startServerProcess } from "./server-process.js";

const launcher = join(dirname(fileURLToPath(import.meta.url)), "gcs-emulator-main.js");

export interface GcsEmulator extends TestServer {
  /** `http://127.0.0.1:PORT`: the GoogleCloudStorage Endpoint (plain HTTP: no credentials sent). */
  endpoint: string;
  pid: number;
  /** Milliseconds from spawn to the first HTTP answer. */
  startMs: number;
  /** Stop the emulator by its pid and remove its folder. Safe to call more than once. */
  stop(): Promise<void>;
  /** A bucket named `prefix-<uuid>`: the emulator makes buckets on first use, so it is empty. */
  bucket(prefix?: string): GcsBucket;
}

export type GcsBucket = BucketFixture<GcsOptions, Bucket>;

/** Start the emulator; rejects (never skips) with its output when it cannot start. */
export async function startGcsEmulator(): Promise<GcsEmulator> {
  const dir = await mkdtemp(join(tmpdir(), "ocs-gcs-"));
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  try {
    const server = await startServerProcess({
      name: "the GCS emulator",
      args: [launcher, String(port)],
      cwd: dir,
      // Two emulators sharing a TMPDIR would delete each other's blobs when one stops.
      env: { ...process.env, TMPDIR: dir },
      readyUrl: `${endpoint}/b`,
    });
    let stopping: Promise<void> | undefined;
    const emulator: GcsEmulator = {
      endpoint,
      pid: server.pid,
      startMs: server.startMs,
      stop: () =>
        (stopping ??= (async () => {
          await server.stop();
          await rm(dir, { recursive: true, force: true });
        })()),
      bucket: (prefix = "test") => gcsBucket(emulator, freshBucketName(prefix)),
      [Symbol.asyncDispose]: () => emulator.stop(),
    };
    return emulator;
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

/** An SDK client of the emulator, independent of the driver under test (no credentials, no retries). */
export function emulatorClient(emulator: GcsEmulator): Storage {
  return new Storage({
    apiEndpoint: emulator.endpoint,
    projectId: "demo-orthanc-cloud-storage",
    retryOptions: { autoRetry: false, maxRetries: 0 },
  });
}

/**
 * The driver's options for `bucket` at `endpoint` (none: Google's own, for the tests of credentials),
 * with the tests' settings.
 */
export function testGcsOptions(
  endpoint: string | undefined,
  bucket: string,
  overrides: Partial<GcsOptions> = {},
): GcsOptions {
  const options: GcsOptions = {
    bucketName: bucket,
    maxRetries: 1,
    connectTimeoutMs: 5_000,
    requestTimeoutMs: 60_000,
    ...overrides,
  };
  if (endpoint !== undefined) options.endpoint = endpoint;
  return options;
}

/** The fixture of the bucket `name` on the emulator. */
export function gcsBucket(emulator: GcsEmulator, name: string): GcsBucket {
  const client = emulatorClient(emulator).bucket(name);
  return {
    sectionName: "GoogleCloudStorage",
    name,
    client,
    orthancConfig: (extra = {}) => ({
      GoogleCloudStorage: { BucketName: name, Endpoint: emulator.endpoint, ...extra },
    }),
    storeOptions: (overrides = {}) => testGcsOptions(emulator.endpoint, name, overrides),
    listKeys: async () => {
      const [files] = await client.getFiles();
      return files.map((file) => file.name).sort();
    },
    read: async (key) => (await client.file(key).download())[0],
    write: async (key, data) => {
      await client
        .file(key)
        .save(Buffer.from(data.buffer, data.byteOffset, data.length), { resumable: false });
    },
    ...onceCleanup(() => emptyBucket(emulator, name)),
  };
}

/** Delete every object of a bucket (the emulator has no bucket deletion to speak of). */
export async function emptyBucket(emulator: GcsEmulator, bucket: string): Promise<void> {
  await emulatorClient(emulator).bucket(bucket).deleteFiles({ force: true });
}
