// The end-to-end suite with GoogleCloudStorage on firebase-tools' Storage emulator (Endpoint set, plain
// HTTP, so no credentials); object names are checked with a separate SDK client. Plus: an unreadable
// ServiceAccountFile stops Orthanc at start-up with a message naming it.

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { it } from "node:test";

import { startGcsEmulator } from "../../test-support/gcs-emulator.js";
import { OrthancInstance } from "../../test-support/orthanc.js";
import { serverForFile } from "../helpers/server-for-file.js";
import { orthancStorageSuite } from "./storage-suite.js";

const emulator = serverForFile(startGcsEmulator);

orthancStorageSuite("GoogleCloudStorage (Firebase Storage emulator)", async () =>
  (await emulator).bucket("e2e"),
);

it("refuses to start Orthanc when the ServiceAccountFile cannot be read, naming it", async () => {
  const missing = join("/nonexistent", `${randomUUID()}.json`);
  const { code, log } = await OrthancInstance.expectStartFailure({
    config: { GoogleCloudStorage: { BucketName: "any-bucket", ServiceAccountFile: missing } },
  });
  assert.notEqual(code, 0);
  assert.match(log, new RegExp(`GoogleCloudStorage\\.ServiceAccountFile: cannot read ${missing}: ENOENT`));
});
