// Faults of the Azure Blob backend under a real Orthanc (AzureBlobStorage on Azurite, encrypted): Azurite
// stopped in the middle of a stream of uploads and started again on the same port and data. After it, the
// shared check of test/helpers/consistency.ts; docs/reliability.md lists the figures.

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";

import { deleteContainer, startAzurite, type AzuriteServer } from "../helpers/azurite.js";
import { checkAfterFault, ingestAcrossOutage, OperationLedger } from "../helpers/consistency.js";
import { uniqueCopies } from "../helpers/dicom-copies.js";
import { OrthancInstance } from "../helpers/orthanc.js";

/** Small fixtures: the scenario is about the fault, not about volume. */
const SMALL = [
  "PR-gsps-utf8.dcm",
  "SR-basic-text-latin2.dcm",
  "encapsulated-pdf.dcm",
  "ts-1.2.4.50-jpeg-baseline-US.dcm",
];

let azurite: AzuriteServer | undefined;
const started = (async () => (azurite = await startAzurite()))();
after(async () => {
  await started.catch(() => undefined); // a failed start is reported by the tests that awaited it
  await azurite?.stop();
});

describe("faults of the Azure Blob backend on a real Orthanc (Azurite)", () => {
  it("loses no acknowledged upload when Azurite is stopped mid-ingest and started again", async (t) => {
    const server = await started;
    const container = `faults-${randomUUID()}`;
    const workDir = await mkdtemp(join(tmpdir(), "ocs-faults-azure-"));
    await writeFile(join(workDir, "master.key"), Buffer.alloc(32, 5).toString("base64"), { mode: 0o600 });
    const config = {
      AzureBlobStorage: {
        ConnectionString: server.connectionString,
        ContainerName: container,
        MaxRetries: 1,
        ConnectionTimeout: 5,
        RequestTimeout: 30,
        StorageEncryption: { MasterKey: [1, join(workDir, "master.key")] },
      },
    };
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
      await deleteContainer(server, container).catch(() => undefined);
      await rm(workDir, { recursive: true, force: true });
    }
  });
});
