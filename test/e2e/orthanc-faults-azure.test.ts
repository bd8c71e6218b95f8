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
import { checkAfterFault, OperationLedger } from "../helpers/consistency.js";
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
      const phase = { before: 0, down: 0, after: 0 };
      let state: "up" | "down" | "restarted" = "up";
      let stopping: Promise<void> | undefined;
      let restart: Promise<void> | undefined;
      let next = 0;
      const uploader = async (): Promise<void> => {
        while (next < pool.length) {
          const index = next++;
          if (index >= 10 && state === "up") {
            // Stop Azurite while the other uploaders have uploads in flight.
            stopping ??= server.stopServer().then(() => void (state = "down"));
            await stopping;
          }
          if (index >= 16 && state === "down") {
            // Six uploads were tried against the stopped server: every uploader now waits for its restart.
            restart ??= (async () => {
              const t0 = Date.now();
              await server.startServer();
              t.diagnostic(`Azurite answered again ${Date.now() - t0} ms after its restart began`);
              state = "restarted";
            })();
            await restart;
          }
          const during = state;
          const ok = await ledger.upload(
            orthanc,
            pool[index] as Buffer,
            `upload ${index} (Azurite ${during})`,
          );
          if (ok) phase[during === "up" ? "before" : during === "down" ? "down" : "after"]++;
        }
      };
      await Promise.all([uploader(), uploader(), uploader()]);
      t.diagnostic(
        `acknowledged before the stop ${phase.before}, while down ${phase.down}, after ${phase.after}`,
      );
      assert.equal(state, "restarted");
      assert.ok(ledger.refused.length > 0, "uploads were refused while Azurite was down");
      assert.ok(phase.after > 0, "uploads were acknowledged again once Azurite was back");
      assert.match(await orthanc.log(), /the connection was refused/);
      await checkAfterFault(t, {
        scenario: "Azurite stopped mid-ingest, started again (Azure Blob on Azurite)",
        orthanc,
        storage: config,
        acknowledged: ledger.acknowledged,
        counts: {
          operations: ledger.operations,
          acknowledged: ledger.acknowledged.size,
          refused: ledger.refused.length,
        },
        refusals: ledger.refused,
      });
    } finally {
      await orthanc.stop();
      await deleteContainer(server, container).catch(() => undefined);
      await rm(workDir, { recursive: true, force: true });
    }
  });
});
