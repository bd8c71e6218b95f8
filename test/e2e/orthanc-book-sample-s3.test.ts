// The Orthanc Book's AwsS3Storage sample (test/fixtures/book-samples/aws-s3.jsonc, with its empty
// StorageEncryption) starts a real Orthanc once pointed at Ceph RGW: only the bucket, the endpoint, the
// credentials and path-style addressing are changed, as a site would change them (issue 19).

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, it } from "node:test";

import { ListObjectsV2Command } from "@aws-sdk/client-s3";
import { applyEdits, modify } from "jsonc-parser";

import { EMPTY_ENCRYPTION_WARNING } from "../../src/config/parse-config.js";
import { parseOrthancConfigText } from "../../src/config/read-config.js";
import { OrthancInstance } from "../helpers/orthanc.js";
import { dicomDir, fixturesDir } from "../helpers/paths.js";
import {
  createBucket,
  deleteBucketWithObjects,
  rgwClient,
  startRgw,
  type RgwServer,
} from "../helpers/rgw.js";

let rgw: RgwServer | undefined;
const started = (async () => (rgw = await startRgw()))();
after(async () => {
  await started.catch(() => undefined); // a failed start is reported by the test that awaited it
  await rgw?.stop();
});

/** The sample's text with `changes` applied to its AwsS3Storage section, comments kept. */
function edited(sample: string, changes: Record<string, unknown>): string {
  let text = `{\n${sample}}\n`;
  for (const [option, value] of Object.entries(changes)) {
    text = applyEdits(text, modify(text, ["AwsS3Storage", option], value, {}));
  }
  return text;
}

it("Orthanc starts with the Book's S3 sample on Ceph RGW, stores plaintext and warns that encryption is off", async () => {
  const server = await started;
  const bucket = `book-sample-${randomUUID()}`;
  await createBucket(server, bucket);
  const sample = await readFile(join(fixturesDir, "book-samples", "aws-s3.jsonc"), "utf8");
  const text = edited(sample, {
    BucketName: bucket,
    Endpoint: server.endpoint,
    AccessKey: server.accessKey,
    SecretKey: server.secretKey,
    // Path-style, as the Book's MinIO section says S3-compatible servers need.
    VirtualAddressing: false,
  });
  assert.match(text, /"StorageEncryption" : \{\},\s+\/\/ optional: see the section related to encryption/);
  const config = parseOrthancConfigText(text, "aws-s3.jsonc") as Record<string, unknown>;

  const orthanc = await OrthancInstance.start({ config });
  const client = rgwClient(server);
  try {
    const dicom = await readFile(join(dicomDir, "ts-1.2-implicit-le-MR.dcm"));
    const { ID } = await orthanc.upload(dicom);
    const read = await orthanc.request("GET", `/instances/${ID}/file`);
    assert.equal(read.status, 200);
    assert.deepEqual(Buffer.from(await read.arrayBuffer()), dicom);

    const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
    const keys = (listed.Contents ?? []).map((object) => object.Key ?? "");
    assert.ok(
      keys.some((key) => key.endsWith(".dcm")),
      `no plaintext .dcm object in ${keys.join(", ")}`,
    );
    assert.ok(!keys.some((key) => key.endsWith(".enc")), `encrypted objects in ${keys.join(", ")}`);

    const log = await orthanc.log();
    assert.ok(log.includes(`AwsS3Storage.StorageEncryption: ${EMPTY_ENCRYPTION_WARNING}`), log);
  } finally {
    client.destroy();
    await orthanc.destroy();
    await deleteBucketWithObjects(server, bucket);
  }
});
