// Acceptance of issue 18 on a real Orthanc with AwsS3Storage on Ceph RGW and StorageEncryption.Format
// "v2": a 200 MB multiframe instance is one object (no .dcm.head copy); /tags reaches the store as at most
// two ranged requests of at most the header and the covering segments (counted in RGW's access log) and
// answers the tags written; the whole file reads back byte-identical.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, it } from "node:test";

import { V2_DEFAULT_SEGMENT_SHIFT, V2_HEADER_LENGTH, V2_TAG_LENGTH } from "../../src/crypto/v2-format.js";
import { freshBucketName } from "../../test-support/bucket-fixture.js";
import { OrthancInstance } from "../../test-support/orthanc.js";
import {
  markRequestLog,
  readRequestLog,
  rgwBucket,
  startRgw,
  type RgwServer,
} from "../../test-support/rgw.js";
import { multiframeDicom } from "../helpers/multiframe-dicom.js";

/** The segment size new objects are written with. */
const SEGMENT = 2 ** V2_DEFAULT_SEGMENT_SHIFT;
const FRAMES = 800; // 800 frames of 512 x 512 bytes: 200 MiB of pixel data

let rgw: RgwServer | undefined;
const started = (async () => (rgw = await startRgw()))();
after(async () => {
  await started.catch(() => undefined);
  await rgw?.stop();
});

it("a 200 MB instance in v2 on RGW: one object, /tags by at most 2 ranged requests, read back identical", async () => {
  const server = await started;
  const bucket = await rgwBucket(server, freshBucketName("v2"));
  const workDir = await mkdtemp(join(tmpdir(), "ocs-v2-e2e-"));
  const keyFile = join(workDir, "master.key");
  await writeFile(keyFile, Buffer.alloc(32, 7).toString("base64"), { mode: 0o600 });
  let orthanc: OrthancInstance | undefined;
  try {
    orthanc = await OrthancInstance.start({
      workDir,
      config: bucket.orthancConfig({ StorageEncryption: { MasterKey: [1, keyFile], Format: "v2" } }),
    });
    assert.match(await readFile(orthanc.logFile, "utf8"), /range reads on/);
    const { file, pixelDataOffset } = multiframeDicom({
      frames: FRAMES,
      rows: 512,
      columns: 512,
      patientId: "V2-ACCEPT",
    });
    assert.ok(file.length > 200 * 1000 * 1000);
    const { ID } = await orthanc.upload(file);

    const keys = await bucket.listKeys();
    assert.equal(keys.length, 1, `one object, no .dcm.head copy: ${keys.join(", ")}`);
    assert.match(keys[0] ?? "", /\.dcm\.enc$/);

    // /tags: the bytes before the pixel data, by range.
    const mark = await markRequestLog(server);
    const tags = await orthanc.json<Record<string, { Value: unknown }>>(`/instances/${ID}/tags`);
    const requests = (await readRequestLog(server, mark)).filter((r) => r.method === "GET");
    assert.ok(requests.length >= 1 && requests.length <= 2, `${requests.length} requests`);
    for (const request of requests) assert.equal(request.status, 206, "a ranged request");
    const covering = Math.ceil(pixelDataOffset / SEGMENT) + 1;
    const fetched = requests.reduce((n, r) => n + r.bytes, 0);
    assert.ok(fetched <= V2_HEADER_LENGTH + covering * (SEGMENT + V2_TAG_LENGTH), `${fetched} bytes fetched`);
    assert.equal(tags["0010,0020"]?.Value, "V2-ACCEPT");
    assert.equal(tags["0028,0008"]?.Value, String(FRAMES));
    assert.equal(tags["0028,0010"]?.Value, "512");

    const response = await orthanc.request("GET", `/instances/${ID}/file`);
    assert.equal(response.status, 200);
    const back = Buffer.from(await response.arrayBuffer());
    assert.equal(back.length, file.length);
    assert.equal(sha256(back), sha256(file), "byte-identical");
  } finally {
    await orthanc?.destroy();
    await bucket.cleanup();
    await rm(workDir, { recursive: true, force: true });
  }
});

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}
