// Bad objects planted in an S3 bucket on Ceph RGW, read through a real Orthanc (bad-objects-suite.ts); the
// bucket is written with a separate S3 client, never through our driver.

import { randomUUID } from "node:crypto";
import { after } from "node:test";

import { GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";

import {
  createBucket,
  rgwS3Section,
  deleteBucketWithObjects,
  startRgw,
  type RgwServer,
} from "../helpers/rgw.js";
import { badObjectSuite } from "./bad-objects-suite.js";

let rgw: RgwServer | undefined;
const started = (async () => (rgw = await startRgw()))();
after(async () => {
  await started.catch(() => undefined); // a failed start is reported by the tests that awaited it
  await rgw?.stop();
});

badObjectSuite("AwsS3Storage (Ceph RGW)", async () => {
  const server = await started;
  const bucket = `bad-objects-${randomUUID()}`;
  await createBucket(server, bucket);
  const client = new S3Client({
    endpoint: server.endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKey, secretAccessKey: server.secretKey },
  });
  return {
    section: (common) => ({
      AwsS3Storage: rgwS3Section(server, bucket, {
        ...common,
      }),
    }),
    read: async (key) => {
      const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return Buffer.from(
        await (response.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
      );
    },
    write: async (key, data) => {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: data }));
    },
    cleanup: async () => {
      client.destroy();
      await deleteBucketWithObjects(server, bucket);
    },
  };
});
