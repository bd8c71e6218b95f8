// Faults of the Azure Blob backend under a real Orthanc (AzureBlobStorage on Azurite, encrypted): Azurite
// stopped in the middle of a stream of uploads and started again on the same port and data; and, with
// write-behind (LocalDisk.WriteBehind), Azurite down from before Orthanc's start, the container not created
// yet (CreateContainerIfNotExists). After each, the shared check of test/helpers/consistency.ts;
// docs/reliability.md lists the figures.

import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";

import { startAzurite } from "../../test-support/azurite.js";
import { checkLedgerAfterFault, ingestAcrossOutage, OperationLedger } from "../helpers/consistency.js";
import { SMALL_SAMPLES as SMALL, uniqueCopies } from "../../test-support/dicom-copies.js";
import { encryptedWork } from "../../test-support/encrypted-work.js";
import { OrthancInstance } from "../../test-support/orthanc.js";
import { serverForFile } from "../helpers/server-for-file.js";
import { waitFor } from "../helpers/wait.js";

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
      assert.match(await orthanc.logMatching(/the connection was refused/), /the connection was refused/);
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

  it("with write-behind, starts while Azurite is down, says so, spools uploads; creates the container and uploads them once it is back", async (t) => {
    const server = await azurite;
    const container = await server.container("write-behind", { create: false });
    const work = await encryptedWork(container, {
      prefix: "ocs-write-behind-azure-",
      keyByte: 6,
      section: { MaxRetries: 1, ConnectionTimeout: 2, RequestTimeout: 5 },
    });
    const tier = join(work.workDir, "tier");
    await mkdir(tier);
    const config = {
      ...work.config,
      OrthancCloudStorage: { LocalDisk: { Path: tier, WriteBehind: true, PendingReadWait: 0 } },
    };
    await server.stopServer();
    let down = true;
    let orthanc: OrthancInstance | undefined;
    try {
      orthanc = await OrthancInstance.start({ workDir: join(work.workDir, "orthanc"), config });
      const node = orthanc;
      await waitFor(
        async () =>
          /write-behind: the backend http:\/\/.* does not answer at start .*This node starts anyway/.test(
            await node.log(),
          ),
        60_000,
        "the warning that Azurite does not answer",
      );
      const health = await node.request("GET", "/cloud-storage/health");
      const report = (await health.json()) as { backend: { reachable: boolean } };
      assert.equal(health.status, 503, "unhealthy while the backend does not answer");
      assert.equal(report.backend.reachable, false);
      const ledger = new OperationLedger();
      for (const [i, data] of (await uniqueCopies(SMALL, 2)).entries())
        assert.ok(await ledger.upload(node, data, `upload ${i} (Azurite down)`), ledger.refused.join("; "));

      await server.startServer();
      down = false;
      await waitFor(
        async () => {
          const answer = await node.request("GET", "/cloud-storage/health");
          const spool = ((await answer.json()) as { spool?: { objects: number } }).spool;
          return answer.status === 200 && spool?.objects === 0;
        },
        90_000,
        "the spool to drain into the new container and health to answer 200",
      );
      assert.match(
        await node.logMatching(/created the container "write-behind-/),
        /created the container "write-behind-/,
      );
      assert.ok((await container.listKeys()).length >= ledger.acknowledged.size, "every upload in Azure");
      await checkLedgerAfterFault(t, ledger, {
        scenario: "Orthanc started while Azurite is down, then Azurite back (write-behind, Azure Blob)",
        orthanc: node,
        storage: work.config,
      });
    } finally {
      if (down) await server.startServer();
      await orthanc?.stop();
      await work.cleanup();
    }
  });
});
