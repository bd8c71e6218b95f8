// The end-to-end suite with GoogleCloudStorage on firebase-tools' Storage emulator (Endpoint set, plain
// HTTP, so no credentials); object names are checked with a separate SDK client. Plus: an unreadable
// ServiceAccountFile stops Orthanc at start-up with a message naming it.

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { after, it } from "node:test";

import { emptyBucket, emulatorClient, startGcsEmulator, type GcsEmulator } from "../helpers/gcs-emulator.js";
import { OrthancInstance } from "../helpers/orthanc.js";
import { orthancStorageSuite } from "./storage-suite.js";

let emulator: GcsEmulator | undefined;
const started = (async () => (emulator = await startGcsEmulator()))();
after(async () => {
  await started.catch(() => undefined); // a failed start is reported by the tests that awaited it
  await emulator?.stop();
});

orthancStorageSuite("GoogleCloudStorage (Firebase Storage emulator)", async () => {
  const server = await started;
  // The emulator makes buckets on first use: a fresh name is an empty bucket.
  const bucket = `e2e-${randomUUID()}`;
  const client = emulatorClient(server).bucket(bucket);
  return {
    section: (common) => ({
      GoogleCloudStorage: { BucketName: bucket, Endpoint: server.endpoint, ...common },
    }),
    listKeys: async () => {
      const [files] = await client.getFiles();
      return files.map((file) => file.name).sort();
    },
    read: async (key) => (await client.file(key).download())[0],
    cleanup: () => emptyBucket(server, bucket),
  };
});

it("refuses to start Orthanc when the ServiceAccountFile cannot be read, naming it", async () => {
  const missing = join("/nonexistent", `${randomUUID()}.json`);
  const { code, log } = await OrthancInstance.expectStartFailure({
    config: { GoogleCloudStorage: { BucketName: "any-bucket", ServiceAccountFile: missing } },
  });
  assert.notEqual(code, 0);
  assert.match(log, new RegExp(`GoogleCloudStorage\\.ServiceAccountFile: cannot read ${missing}: ENOENT`));
});
