// Write-behind across nodes (issue 17): two Orthanc 1.10.1 nodes on one PostgreSQL index and one RGW bucket.
// Node A writes behind, and reaches RGW through a gate that refuses its uploads while closed; node B reads
// through the index right after A acknowledged. B must not report a lost file: it waits PendingReadWait for
// the object, serves it as soon as A uploads it, and otherwise fails saying the object may be pending in
// another node's spool (docs/reliability.md#several-nodes).

import assert from "node:assert/strict";
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { startRecordingProxy, type RecordingServer } from "../../test-support/http-recorder.js";
import { OrthancInstance, pluginPath } from "../../test-support/orthanc.js";
import { postgresIndexPlugin, startPostgres, type PostgresServer } from "../../test-support/postgres.js";
import { startRgw, type RgwServer } from "../../test-support/rgw.js";
import { uniqueCopies } from "../../test-support/dicom-copies.js";
import { waitFor } from "../helpers/wait.js";

/** B's LocalDisk.PendingReadWait, in seconds. */
const PENDING_WAIT_S = 3;

interface Gate extends RecordingServer {
  /** While true, every PUT is answered 503 (an S3 "SlowDown"): A's uploads fail, its reads still work. */
  closed: boolean;
}

/** A recording proxy to `target` whose PUTs can be refused. */
async function startGate(target: string): Promise<Gate> {
  const server = await startRecordingProxy(target, (req, res) => {
    if (!gate.closed || req.method !== "PUT") return false;
    req.resume();
    res.writeHead(503, { "Content-Type": "application/xml" });
    res.end(
      '<?xml version="1.0"?><Error><Code>SlowDown</Code><Message>gate closed by the test</Message></Error>',
    );
    return true;
  });
  // Requests come only once it is returned: the handler never sees `gate` before this line.
  const gate: Gate = Object.assign(server, { closed: false });
  return gate;
}

describe("write-behind on two Orthanc nodes sharing a PostgreSQL index and an RGW bucket", () => {
  let rgw: RgwServer | undefined;
  let postgres: PostgresServer | undefined;
  let gate: Gate | undefined;
  let workDir: string | undefined;
  const nodes: OrthancInstance[] = [];
  let a: OrthancInstance;
  let b: OrthancInstance;

  before(async () => {
    const [startedRgw, startedPostgres] = await Promise.allSettled([startRgw(), startPostgres()]);
    if (startedRgw.status === "fulfilled") rgw = startedRgw.value;
    if (startedPostgres.status === "fulfilled") postgres = startedPostgres.value;
    for (const result of [startedRgw, startedPostgres]) if (result.status === "rejected") throw result.reason;
    const [server, database] = [rgw as RgwServer, postgres as PostgresServer];
    const bucket = await server.bucket("write-behind-nodes");
    gate = await startGate(server.endpoint);
    workDir = await mkdtemp(join(tmpdir(), "ocs-write-behind-nodes-"));
    await writeFile(join(workDir, "master.key"), Buffer.alloc(32, 0x2a).toString("base64"), { mode: 0o600 });
    const storage = bucket.orthancConfig({
      MaxRetries: 0,
      StorageEncryption: { MasterKey: [1, join(workDir, "master.key")] },
    });
    const section = storage["AwsS3Storage"] as Record<string, unknown>;
    const config = (name: string, localDisk: Record<string, unknown>, endpoint?: string) => ({
      Plugins: [pluginPath, postgresIndexPlugin],
      PostgreSQL: database.orthancSection(),
      AwsS3Storage: { ...section, ...(endpoint === undefined ? {} : { Endpoint: endpoint }) },
      OrthancCloudStorage: { LocalDisk: { Path: join(workDir as string, name, "tier"), ...localDisk } },
    });
    for (const name of ["a", "b"]) await mkdir(join(workDir, name), { recursive: true });
    // A first: it creates the database schema.
    a = await OrthancInstance.start({
      workDir: join(workDir, "a"),
      config: config("a", { WriteBehind: true, PendingReadWait: 0 }, gate.url),
    });
    nodes.push(a);
    b = await OrthancInstance.start({
      workDir: join(workDir, "b"),
      config: config("b", { WriteBehind: false, PendingReadWait: PENDING_WAIT_S }),
    });
    nodes.push(b);
  });

  after(async () => {
    await Promise.all(nodes.map((node) => node.destroy()));
    await gate?.close();
    await Promise.all([rgw?.stop(), postgres?.stop()]);
    if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
  });

  async function fileFrom(
    node: OrthancInstance,
    id: string,
  ): Promise<{ status: number; data: Buffer; ms: number }> {
    const t0 = Date.now();
    const response = await node.request("GET", `/instances/${id}/file`);
    return { status: response.status, data: Buffer.from(await response.arrayBuffer()), ms: Date.now() - t0 };
  }

  async function spoolObjects(node: OrthancInstance): Promise<number> {
    const response = await node.request("GET", "/cloud-storage/health");
    return ((await response.json()) as { spool: { objects: number } }).spool.objects;
  }

  it("B waits for an object still in A's spool and serves it once A uploads it", async (t) => {
    const [data] = await uniqueCopies(["ts-1.2.4.50-jpeg-baseline-US.dcm"], 1);
    assert.ok(data !== undefined);
    (gate as Gate).closed = true;
    const answer = await a.upload(data);
    assert.equal(answer.Status, "Success");
    assert.ok((await spoolObjects(a)) > 0, "the upload waits in A's spool");
    setTimeout(() => void ((gate as Gate).closed = false), 1000);
    const read = await fileFrom(b, answer.ID);
    t.diagnostic(`B served the file ${read.ms} ms after it asked, A's uploads resumed after 1000 ms`);
    assert.equal(read.status, 200);
    assert.ok(read.data.equals(data), "byte-identical");
    assert.ok(read.ms >= 900, `B waited for the upload (${read.ms} ms)`);
  });

  it("B fails a read after PendingReadWait with an error saying the object may be pending on another node", async (t) => {
    const [copy] = await uniqueCopies(["PR-gsps-utf8.dcm"], 1);
    assert.ok(copy !== undefined);
    (gate as Gate).closed = true;
    try {
      const answer = await a.upload(copy);
      const read = await fileFrom(b, answer.ID);
      t.diagnostic(`B answered HTTP ${read.status} after ${read.ms} ms`);
      assert.equal(read.status, 404, "Orthanc's answer for a missing file");
      assert.ok(read.ms >= PENDING_WAIT_S * 1000, `after PendingReadWait (${read.ms} ms)`);
      // The daemon's log lines reach Orthanc's log through the bridge's supervisor thread, not with the
      // answer: the line may be written just after Orthanc answered.
      const pending =
        /still not found after 3 s .*LocalDisk\.PendingReadWait.*may still wait in the write-behind spool of the node that stored it/;
      await waitFor(
        async () => pending.test(await b.log()),
        5_000,
        "B's log to say the object may be pending",
      );
      assert.equal((await fileFrom(a, answer.ID)).status, 200, "A serves it from its spool meanwhile");
      (gate as Gate).closed = false;
      await waitFor(async () => (await spoolObjects(a)) === 0, 60_000, "A's spool to drain");
      const again = await fileFrom(b, answer.ID);
      assert.equal(again.status, 200);
      assert.ok(again.data.equals(copy));
    } finally {
      (gate as Gate).closed = false;
    }
  });
});
