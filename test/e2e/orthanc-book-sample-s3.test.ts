// The Orthanc Book's AwsS3Storage sample (test/fixtures/book-samples/aws-s3.jsonc, with its empty
// StorageEncryption) starts a real Orthanc once pointed at Ceph RGW: only the bucket, the endpoint, the
// credentials and path-style addressing are changed, as a site would change them (issue 19).

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { it } from "node:test";

import { applyEdits, modify } from "jsonc-parser";

import { EMPTY_ENCRYPTION_WARNING } from "../../src/config/parse-config.js";
import { parseOrthancConfigText } from "../../src/config/read-config.js";
import { OrthancInstance } from "../../test-support/orthanc.js";
import { dicomDir, fixturesDir } from "../../test-support/paths.js";
import { startRgw } from "../../test-support/rgw.js";
import { serverForFile } from "../helpers/server-for-file.js";

const rgw = serverForFile(startRgw);

/** The sample's text with `changes` applied to its AwsS3Storage section, comments kept. */
function edited(sample: string, changes: Record<string, unknown>): string {
  let text = `{\n${sample}}\n`;
  for (const [option, value] of Object.entries(changes)) {
    text = applyEdits(text, modify(text, ["AwsS3Storage", option], value, {}));
  }
  return text;
}

it("Orthanc starts with the Book's S3 sample on Ceph RGW, stores plaintext and warns that encryption is off", async () => {
  const server = await rgw;
  const bucket = await server.bucket("book-sample");
  const sample = await readFile(join(fixturesDir, "book-samples", "aws-s3.jsonc"), "utf8");
  const text = edited(sample, {
    BucketName: bucket.name,
    Endpoint: server.endpoint,
    AccessKey: server.accessKey,
    SecretKey: server.secretKey,
    // Path-style, as the Book's MinIO section says S3-compatible servers need.
    VirtualAddressing: false,
  });
  assert.match(text, /"StorageEncryption" : \{\},\s+\/\/ optional: see the section related to encryption/);
  const config = parseOrthancConfigText(text, "aws-s3.jsonc") as Record<string, unknown>;

  const orthanc = await OrthancInstance.start({ config });
  try {
    const dicom = await readFile(join(dicomDir, "ts-1.2-implicit-le-MR.dcm"));
    const { ID } = await orthanc.upload(dicom);
    const read = await orthanc.request("GET", `/instances/${ID}/file`);
    assert.equal(read.status, 200);
    assert.deepEqual(Buffer.from(await read.arrayBuffer()), dicom);

    const keys = await bucket.listKeys();
    assert.ok(
      keys.some((key) => key.endsWith(".dcm")),
      `no plaintext .dcm object in ${keys.join(", ")}`,
    );
    assert.ok(!keys.some((key) => key.endsWith(".enc")), `encrypted objects in ${keys.join(", ")}`);

    const log = await orthanc.log();
    assert.ok(log.includes(`AwsS3Storage.StorageEncryption: ${EMPTY_ENCRYPTION_WARNING}`), log);
  } finally {
    await orthanc.destroy();
    await bucket.cleanup();
  }
});
