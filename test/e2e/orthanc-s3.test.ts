// The end-to-end suite with AwsS3Storage on Ceph RGW (on the host: Orthanc in another Debian's root
// filesystem reaches it on 127.0.0.1), on every Orthanc version the project tests; object names are checked
// with a separate S3 client.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { it } from "node:test";
import { promisify } from "node:util";

import { startLatencyProxy } from "../../test-support/latency-proxy.js";
import { OrthancInstance } from "../../test-support/orthanc.js";
import { ORTHANC_RELEASES } from "../../test-support/orthanc-releases.js";
import { dicomDir } from "../../test-support/paths.js";
import { rgwS3Section, startRgw } from "../../test-support/rgw.js";
import { serverForFile } from "../helpers/server-for-file.js";
import { orthancStorageSuite } from "./storage-suite.js";

const rgw = serverForFile(startRgw);
const run = promisify(execFile);

for (const release of ORTHANC_RELEASES) {
  orthancStorageSuite("AwsS3Storage (Ceph RGW)", async () => (await rgw).bucket("e2e"), release);
}

it("refuses to start Orthanc when the S3 secret key is wrong, naming the access key", async () => {
  const server = await rgw;
  const { code, log } = await OrthancInstance.expectStartFailure({
    config: { AwsS3Storage: rgwS3Section(server, "any-bucket", { SecretKey: "wrong-secret-key" }) },
  });
  assert.notEqual(code, 0);
  assert.match(log, /signature did not match/);
  assert.match(log, new RegExp(`access key "${server.accessKey}"`));
  assert.doesNotMatch(log, /wrong-secret-key/);
});

// Issue 17 part 3: no wasted round trips through the whole stack (bridge, daemon, driver). Counted at a
// latency proxy between the daemon and RGW: every upload (REST and C-STORE), whole read and delete of an
// instance is one request and one round trip, on the connection the daemon already holds.
it("costs one request and one round trip per upload, read and delete, on an open connection", async () => {
  const server = await rgw;
  const bucket = await server.bucket("round-trips");
  await using proxy = await startLatencyProxy({ target: server.endpoint, delayMs: 5 });
  await using orthanc = await OrthancInstance.start({
    config: bucket.orthancConfig({ Endpoint: proxy.url }),
  });
  try {
    const names = [
      "PT-private-tags-implicit-le.dcm",
      "ts-1.2-implicit-le-MR.dcm",
      "SR-basic-text-latin2.dcm",
    ];
    const seen: string[] = [];
    /** What `operation` cost at the proxy, as "connections/requests/round trips", with what was sent. */
    async function cost(what: string, operation: () => Promise<void>): Promise<void> {
      const since = proxy.counts();
      const first = proxy.requests.length;
      await operation();
      const { connections, requests, turns } = proxy.countsSince(since);
      const sent = proxy.requests.slice(first).map((request) => request.method);
      seen.push(`${what}: ${connections}/${requests}/${turns} ${sent.join(",")}`);
    }
    const ids: string[] = [];
    for (const name of names) {
      const bytes = await readFile(join(dicomDir, name));
      await cost(`REST upload ${name}`, async () => {
        ids.push((await orthanc.upload(bytes)).ID);
      });
    }
    for (const id of ids) {
      await cost(`read ${id}`, async () => {
        const response = await orthanc.request("GET", `/instances/${id}/file`);
        await response.arrayBuffer();
        assert.equal(response.status, 200);
      });
      await cost(`delete ${id}`, async () => {
        const response = await orthanc.request("DELETE", `/instances/${id}`);
        await response.arrayBuffer();
        assert.equal(response.status, 200);
      });
    }
    for (const name of names) {
      await cost(`C-STORE ${name}`, async () => {
        await run("storescu", [
          "-aec",
          "ORTHANC",
          "127.0.0.1",
          String(orthanc.dicomPort),
          join(dicomDir, name),
        ]);
      });
    }
    const expected = seen.map((line) => line.replace(/: \d+\/\d+\/\d+ .*/, ""));
    assert.deepEqual(
      seen,
      expected.map(
        (what) => `${what}: 0/1/1 ${/read/.test(what) ? "GET" : /delete/.test(what) ? "DELETE" : "PUT"}`,
      ),
    );
  } finally {
    await bucket.cleanup();
  }
});
