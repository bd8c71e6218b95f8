// Faults of the Azure Blob backend under a real Orthanc (AzureBlobStorage on Azurite, encrypted): Azurite
// stopped in the middle of a stream of uploads and started again on the same port and data. After it, the
// shared check of test/helpers/consistency.ts; docs/reliability.md lists the figures.

import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";

import { startAzurite } from "../../test-support/azurite.js";
import { checkAfterFault, ingestAcrossOutage, OperationLedger } from "../helpers/consistency.js";
import { uniqueCopies } from "../../test-support/dicom-copies.js";
import { OrthancInstance } from "../../test-support/orthanc.js";
import { serverForFile } from "../helpers/server-for-file.js";

/** Small fixtures: the scenario is about the fault, not about volume. */
const SMALL = [
  "PR-gsps-utf8.dcm",
  "SR-basic-text-latin2.dcm",
  "encapsulated-pdf.dcm",
  "ts-1.2.4.50-jpeg-baseline-US.dcm",
];

const azurite = serverForFile(startAzurite);

describe("faults of the Azure Blob backend on a real Orthanc (Azurite)", () => {
  it("loses no acknowledged upload when Azurite is stopped mid-ingest and started again", async (t) => {
    const server = await azurite;
    // Created by the driver at start-up (CreateContainerIfNotExists).
    const container = await server.container("faults", { create: false });
    const workDir = await mkdtemp(join(tmpdir(), "ocs-faults-azure-"));
    await writeFile(join(workDir, "master.key"), Buffer.alloc(32, 5).toString("base64"), { mode: 0o600 });
    const config = container.orthancConfig({
      MaxRetries: 1,
      ConnectionTimeout: 5,
      RequestTimeout: 30,
      StorageEncryption: { MasterKey: [1, join(workDir, "master.key")] },
    });
    const orthanc = await OrthancInstance.start({ workDir: join(workDir, "orthanc"), config });
    try {
      const pool = await uniqueCopies(SMALL, 8);
      const ledger = new OperationLedger();
      await ingestAcrossOutage(t, orthanc, pool, ledger, {
        name: "Azurite",
        stop: () => server.stopServer(),
        start: () => server.startServer(),
      });
      assert.match(await orthanc.log(), /the connection was refused/);
      await checkAfterFault(t, {
        scenario: "Azurite stopped mid-ingest, started again (Azure Blob on Azurite)",
        orthanc,
        storage: config,
        acknowledged: ledger.acknowledged,
        counts: ledger.counts,
        refusals: ledger.refused,
      });
    } finally {
      await orthanc.stop();
      await container.cleanup().catch(() => undefined);
      await rm(workDir, { recursive: true, force: true });
    }
  });
});
