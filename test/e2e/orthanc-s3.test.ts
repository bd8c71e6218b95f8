// The end-to-end suite with AwsS3Storage on Ceph RGW (on the host: Orthanc in another Debian's root
// filesystem reaches it on 127.0.0.1), on every Orthanc version the project tests; object names are checked
// with a separate S3 client.

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, it } from "node:test";

import { GetObjectCommand, paginateListObjectsV2, S3Client } from "@aws-sdk/client-s3";

import { OrthancInstance } from "../helpers/orthanc.js";
import { ORTHANC_RELEASES } from "../helpers/orthanc-releases.js";
import {
  createBucket,
  rgwS3Section,
  deleteBucketWithObjects,
  startRgw,
  type RgwServer,
} from "../helpers/rgw.js";
import { orthancStorageSuite, type TestBackend } from "./storage-suite.js";

let rgw: RgwServer | undefined;
const started = (async () => (rgw = await startRgw()))();
after(async () => {
  await started.catch(() => undefined); // a failed start is reported by the tests that awaited it
  await rgw?.stop();
});

function s3Section(server: RgwServer, bucket: string, extra: Record<string, unknown> = {}) {
  return {
    AwsS3Storage: rgwS3Section(server, bucket, extra),
  };
}

async function rgwBackend(): Promise<TestBackend> {
  const server = await started;
  const bucket = `e2e-${randomUUID()}`;
  await createBucket(server, bucket);
  const client = new S3Client({
    endpoint: server.endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKey, secretAccessKey: server.secretKey },
  });
  return {
    section: (common) => s3Section(server, bucket, common),
    listKeys: async () => {
      const keys: string[] = [];
      for await (const page of paginateListObjectsV2({ client }, { Bucket: bucket })) {
        for (const object of page.Contents ?? []) keys.push(object.Key ?? "");
      }
      return keys.sort();
    },
    read: async (key) => {
      const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return Buffer.from(
        await (response.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
      );
    },
    cleanup: async () => {
      client.destroy();
      await deleteBucketWithObjects(server, bucket);
    },
  };
}

for (const release of ORTHANC_RELEASES) orthancStorageSuite("AwsS3Storage (Ceph RGW)", rgwBackend, release);

it("refuses to start Orthanc when the S3 secret key is wrong, naming the access key", async () => {
  const server = await started;
  const { code, log } = await OrthancInstance.expectStartFailure({
    config: s3Section(server, "any-bucket", { SecretKey: "wrong-secret-key" }),
  });
  assert.notEqual(code, 0);
  assert.match(log, /signature did not match/);
  assert.match(log, new RegExp(`access key "${server.accessKey}"`));
  assert.doesNotMatch(log, /wrong-secret-key/);
});
