// The end-to-end suite with AzureBlobStorage on Azurite; object names are checked with a separate SDK
// client. Plus: a wrong account key stops Orthanc at start-up with a message naming the account.

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, it } from "node:test";

import {
  AZURITE_ACCOUNT,
  azuriteClient,
  azuriteConnectionString,
  startAzurite,
  type AzuriteServer,
} from "../helpers/azurite.js";
import { OrthancInstance } from "../helpers/orthanc.js";
import { orthancStorageSuite } from "./storage-suite.js";

let azurite: AzuriteServer | undefined;
const started = (async () => (azurite = await startAzurite()))();
after(async () => {
  await started.catch(() => undefined); // a failed start is reported by the tests that awaited it
  await azurite?.stop();
});

orthancStorageSuite("AzureBlobStorage (Azurite)", async () => {
  const server = await started;
  const container = `e2e-${randomUUID()}`;
  const client = azuriteClient(server).getContainerClient(container);
  return {
    // CreateContainerIfNotExists (default true) creates the container when Orthanc starts.
    section: (common) => ({
      AzureBlobStorage: { ConnectionString: server.connectionString, ContainerName: container, ...common },
    }),
    listKeys: async () => {
      const keys: string[] = [];
      for await (const blob of client.listBlobsFlat()) keys.push(blob.name);
      return keys.sort();
    },
    read: (key) => client.getBlobClient(key).downloadToBuffer(),
    cleanup: async () => {
      await client.deleteIfExists();
    },
  };
});

it("refuses to start Orthanc when the Azure account key is wrong, naming the account", async () => {
  const server = await started;
  const wrongKey = Buffer.alloc(64, 0x2a).toString("base64");
  const { code, log } = await OrthancInstance.expectStartFailure({
    config: {
      AzureBlobStorage: {
        ConnectionString: azuriteConnectionString(server.endpoint, wrongKey),
        ContainerName: "any-container",
      },
    },
  });
  assert.notEqual(code, 0);
  assert.match(log, /the account key was refused/);
  assert.match(
    log,
    new RegExp(
      `AccountKey of storage account "${AZURITE_ACCOUNT}" in AzureBlobStorage\\.ConnectionString is wrong`,
    ),
  );
  assert.doesNotMatch(log, new RegExp(wrongKey.slice(0, 16)));
});
