// Faults of the Azure Blob backend under a real Orthanc (AzureBlobStorage on Azurite, encrypted): Azurite
// stopped in the middle of a stream of uploads and started again on the same port and data. After it, the
// shared check of test/helpers/consistency.ts; docs/reliability.md lists the figures.

import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";

import { startAzurite } from "../../test-support/azurite.js";
import { checkLedgerAfterFault, ingestAcrossOutage, OperationLedger } from "../helpers/consistency.js";
import { SMALL_SAMPLES as SMALL, uniqueCopies } from "../../test-support/dicom-copies.js";
import { encryptedWork } from "../../test-support/encrypted-work.js";
import { OrthancInstance } from "../../test-support/orthanc.js";
import { serverForFile } from "../helpers/server-for-file.js";

const azurite = serverForFile(startAzurite);

describe("faults of the Azure Blob backend on a real Orthanc (Azurite)", () => {
  it("loses no acknowledged upload when Azurite is stopped mid-ingest and started again", async (t) => {
    const server = await azurite;
    // Created by the driver at start-up (CreateContainerIfNotExists).
    const work = await encryptedWork(await server.container("faults", { create: false }), {
      prefix: "ocs-faults-azure-",
      keyByte: 5,
      section: { MaxRetries: 1, ConnectionTimeout: 5, RequestTimeout: 30 },
    });
    const { config } = work;
    const orthanc = await OrthancInstance.start({ workDir: join(work.workDir, "orthanc"), config });
    try {
      const pool = await uniqueCopies(SMALL, 8);
      const ledger = new OperationLedger();
      await ingestAcrossOutage(t, orthanc, pool, ledger, {
        name: "Azurite",
        stop: () => server.stopServer(),
        start: () => server.startServer(),
      });
      assert.match(await orthanc.log(), /the connection was refused/);
      await checkLedgerAfterFault(t, ledger, {
        scenario: "Azurite stopped mid-ingest, started again (Azure Blob on Azurite)",
        orthanc,
        storage: config,
      });
    } finally {
      await orthanc.stop();
      await work.cleanup();
    }
  });
});
