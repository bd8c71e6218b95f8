// The end-to-end suite with AzureBlobStorage on Azurite; object names are checked with a separate SDK
// client. Plus: a wrong account key stops Orthanc at start-up with a message naming the account.

import assert from "node:assert/strict";
import { it } from "node:test";

import { AZURITE_ACCOUNT, azuriteConnectionString, startAzurite } from "../../test-support/azurite.js";
import { OrthancInstance } from "../../test-support/orthanc.js";
import { serverForFile } from "../helpers/server-for-file.js";
import { orthancStorageSuite } from "./storage-suite.js";

const azurite = serverForFile(startAzurite);

// Not created here: CreateContainerIfNotExists (default true) creates the container when Orthanc starts.
orthancStorageSuite("AzureBlobStorage (Azurite)", async () =>
  (await azurite).container("e2e", { create: false }),
);

it("refuses to start Orthanc when the Azure account key is wrong, naming the account", async () => {
  const server = await azurite;
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
