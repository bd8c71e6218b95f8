// Starts the Cloud Storage emulator of firebase-tools (a devDependency) for the tests: in a child process
// (gcs-emulator-main.js), on 127.0.0.1, a free port, its own TMPDIR; stopped by its pid. It speaks the GCS
// JSON API but checks no credentials, has no createBucket (buckets appear on first use), no copy, and no
// chunked resumable uploads (the driver uses single-request uploads).

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { Storage } from "@google-cloud/storage";

import { freePort } from "./orthanc.js";
import { startServerProcess } from "./server-process.js";

const launcher = join(dirname(fileURLToPath(import.meta.url)), "gcs-emulator-main.js");

export interface GcsEmulator {
  /** `http://127.0.0.1:PORT`: the GoogleCloudStorage Endpoint (plain HTTP: no credentials sent). */
  endpoint: string;
  pid: number;
  /** Milliseconds from spawn to the first HTTP answer. */
  startMs: number;
  /** Stop the emulator by its pid and remove its folder. Safe to call more than once. */
  stop(): Promise<void>;
}

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
    return {
      endpoint,
      pid: server.pid,
      startMs: server.startMs,
      stop: () =>
        (stopping ??= (async () => {
          await server.stop();
          await rm(dir, { recursive: true, force: true });
        })()),
    };
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

/** Delete every object of a bucket (the emulator has no bucket deletion to speak of). */
export async function emptyBucket(emulator: GcsEmulator, bucket: string): Promise<void> {
  await emulatorClient(emulator).bucket(bucket).deleteFiles({ force: true });
}
