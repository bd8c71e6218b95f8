// Faults of the S3 backend under a real Orthanc (AwsS3Storage on Ceph RGW, encrypted): radosgw killed -9 in
// the middle of a stream of uploads and started again; radosgw frozen (SIGSTOP: connections are accepted by
// the kernel, nothing answers) so that every request must end by RequestTimeout, then thawed. After each,
// the shared check of test/helpers/consistency.ts; docs/reliability.md lists the figures.

import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";

import { checkLedgerAfterFault, ingestAcrossOutage, OperationLedger } from "../helpers/consistency.js";
import { SMALL_SAMPLES as SMALL, uniqueCopies } from "../../test-support/dicom-copies.js";
import { encryptedWork, type EncryptedWork } from "../../test-support/encrypted-work.js";
import { OrthancInstance } from "../../test-support/orthanc.js";
import { startRgw, type RgwServer } from "../../test-support/rgw.js";
import { serverForFile } from "../helpers/server-for-file.js";
import { isRunning, waitFor } from "../helpers/wait.js";

/** Per try; a frozen radosgw must fail each operation after (MaxRetries + 1) × this, plus backoff. */
const REQUEST_TIMEOUT_S = 2;
const MAX_RETRIES = 1;
/** Far above the (MaxRetries + 1) × RequestTimeout an operation may take against a frozen server. */
const BOUND_MS = 60_000;

const rgw = serverForFile(startRgw);

async function s3Setup(): Promise<EncryptedWork & { server: RgwServer }> {
  const server = await rgw;
  const work = await encryptedWork(await server.bucket("faults"), {
    prefix: "ocs-faults-s3-",
    keyByte: 7,
    section: {
      RequestTimeout: REQUEST_TIMEOUT_S,
      ConnectionTimeout: REQUEST_TIMEOUT_S,
      MaxRetries: MAX_RETRIES,
    },
  });
  return Object.assign(work, { server });
}

describe("faults of the S3 backend on a real Orthanc (Ceph RGW)", () => {
  it("loses no acknowledged upload when radosgw is killed -9 mid-ingest and started again", async (t) => {
    const setup = await s3Setup();
    const { server, config } = setup;
    const orthanc = await OrthancInstance.start({ workDir: join(setup.workDir, "orthanc"), config });
    try {
      const pool = await uniqueCopies(SMALL, 8);
      const ledger = new OperationLedger();
      await ingestAcrossOutage(t, orthanc, pool, ledger, {
        name: "radosgw",
        // Killed while the other uploaders have uploads in flight.
        stop: async () => {
          const pid = await server.gatewayPid();
          process.kill(pid, "SIGKILL");
          await waitFor(async () => !(await isRunning(pid)), 10_000, "radosgw to die");
        },
        start: () => server.startGateway(),
      });
      assert.match(
        await orthanc.logMatching(/cannot reach http:\/\/127\.0\.0\.1:\d+: the connection was refused/),
        /cannot reach http:\/\/127\.0\.0\.1:\d+: the connection was refused/,
      );
      await checkLedgerAfterFault(t, ledger, {
        scenario: "radosgw killed -9 mid-ingest, started again (S3 on Ceph RGW)",
        orthanc,
        storage: config,
      });
    } finally {
      await orthanc.stop();
      await setup.cleanup();
    }
  });

  it("fails uploads and reads in bounded time while radosgw hangs (SIGSTOP), and recovers when it resumes", async (t) => {
    const setup = await s3Setup();
    const { server, config } = setup;
    const orthanc = await OrthancInstance.start({ workDir: join(setup.workDir, "orthanc"), config });
    const pid = await server.gatewayPid();
    let frozen = false;
    try {
      const pool = await uniqueCopies(SMALL, 4);
      const ledger = new OperationLedger();
      for (const [index, data] of pool.slice(0, 8).entries()) {
        assert.ok(await ledger.upload(orthanc, data, `upload ${index} (before)`), ledger.refused.join("; "));
      }
      const stored = [...ledger.acknowledged.keys()];

      process.kill(pid, "SIGSTOP");
      frozen = true;
      const timed = async (operation: () => Promise<boolean>): Promise<{ ok: boolean; ms: number }> => {
        const t0 = Date.now();
        const ok = await operation();
        return { ok, ms: Date.now() - t0 };
      };
      const read = async (id: string): Promise<boolean> => {
        const response = await orthanc.request("GET", `/instances/${id}/file`);
        await response.arrayBuffer();
        return response.status === 200;
      };
      const operations = [
        ...pool
          .slice(8, 11)
          .map((data, i) => timed(() => ledger.upload(orthanc, data, `upload ${8 + i} (frozen)`))),
        ...stored.slice(0, 3).map((id) => timed(() => read(id))),
      ];
      // Orthanc itself keeps answering while its storage hangs.
      const system = await orthanc.request("GET", "/system");
      assert.equal(system.status, 200, "Orthanc answers /system while radosgw hangs");
      const outcomes = await Promise.all(operations);
      const slowest = Math.max(...outcomes.map((outcome) => outcome.ms));
      t.diagnostic(
        `against the frozen radosgw: ${outcomes.map((o) => `${o.ok ? "ok" : "failed"} ${o.ms} ms`).join(", ")}`,
      );
      assert.deepEqual(
        outcomes.map((outcome) => outcome.ok),
        [false, false, false, false, false, false],
        "every upload and read failed: nothing answers",
      );
      assert.ok(slowest < BOUND_MS, `the slowest operation took ${slowest} ms`);
      assert.match(
        await orthanc.logMatching(/no answer from http:\/\/127\.0\.0\.1:\d+ in time .*RequestTimeout/),
        /no answer from http:\/\/127\.0\.0\.1:\d+ in time .*RequestTimeout/,
      );

      process.kill(pid, "SIGCONT");
      frozen = false;
      for (const [i, data] of pool.slice(11).entries()) {
        assert.ok(
          await ledger.upload(orthanc, data, `upload ${11 + i} (resumed)`),
          ledger.refused.join("; "),
        );
      }
      for (const id of stored.slice(0, 3)) assert.ok(await read(id), `${id} reads again`);
      await checkLedgerAfterFault(t, ledger, {
        scenario: `radosgw frozen (SIGSTOP) mid-ingest, RequestTimeout ${REQUEST_TIMEOUT_S} s, MaxRetries ${MAX_RETRIES}, then resumed (S3 on Ceph RGW)`,
        orthanc,
        storage: config,
        counts: {
          operations: ledger.operations + 3,
          acknowledged: ledger.acknowledged.size,
          refused: ledger.refused.length + 3,
        },
      });
    } finally {
      if (frozen) process.kill(pid, "SIGCONT");
      await orthanc.stop();
      await setup.cleanup();
    }
  });
});
