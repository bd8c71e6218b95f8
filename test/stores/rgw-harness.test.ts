// The RGW test harness itself: the server starts, checks signatures for real, its access log counts
// requests, and stop() leaves no daemon behind. The S3 store tests rely on all of these.

import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3ServiceException,
} from "@aws-sdk/client-s3";

import {
  countRequests,
  createBucket,
  deleteBucketWithObjects,
  markRequestLog,
  readRequestLog,
  rgwClient,
  startRgw,
  type RgwServer,
} from "../../test-support/rgw.js";

/** True while the pid is a live process (a zombie waiting to be reaped counts as gone). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

describe("RGW test harness", { timeout: 240_000 }, () => {
  let server: RgwServer;
  const bucket = `harness-${randomUUID()}`;
  const key = "folder/some object é.bin";
  const body = randomBytes(256 * 1024);

  before(async () => {
    server = await startRgw();
    await createBucket(server, bucket);
  });
  // Runs also when a test failed; the bucket goes with the cluster. server is unset when the start
  // itself failed (before reports that failure).
  after(() => server?.stop());

  it("starts on loopback with random keys", () => {
    assert.match(server.endpoint, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.match(server.accessKey, /^[A-Z0-9]{20}$/);
    assert.equal(server.secretKey.length, 40);
  });

  it("stores and returns an object through the SDK", async () => {
    const client = rgwClient(server);
    try {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
      const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      assert.equal(head.ContentLength, body.length);
      const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      assert.ok(got.Body !== undefined);
      assert.deepEqual(Buffer.from(await got.Body.transformToByteArray()), body);
    } finally {
      client.destroy();
    }
  });

  it("refuses a wrong secret key with 403 SignatureDoesNotMatch", async () => {
    // The last character changed (a random key may already end in "x").
    const last = server.secretKey.endsWith("x") ? "y" : "x";
    const client = rgwClient(server, { secretAccessKey: `${server.secretKey.slice(0, -1)}${last}` });
    try {
      await assert.rejects(client.send(new ListObjectsV2Command({ Bucket: bucket })), (error: unknown) => {
        assert.ok(error instanceof S3ServiceException, String(error));
        assert.equal(error.name, "SignatureDoesNotMatch");
        assert.equal(error.$metadata.httpStatusCode, 403);
        return true;
      });
    } finally {
      client.destroy();
    }
  });

  it("refuses an unknown access key with 403 InvalidAccessKeyId", async () => {
    const client = rgwClient(server, { accessKeyId: "AKIANOTAREALKEY00000" });
    try {
      await assert.rejects(client.send(new ListObjectsV2Command({ Bucket: bucket })), (error: unknown) => {
        assert.ok(error instanceof S3ServiceException, String(error));
        assert.equal(error.name, "InvalidAccessKeyId");
        assert.equal(error.$metadata.httpStatusCode, 403);
        return true;
      });
    } finally {
      client.destroy();
    }
  });

  it("counts the requests the server saw: exactly one GET for one GetObject", async () => {
    const client = rgwClient(server);
    const encodedPath = `/${bucket}/${key.split("/").map(encodeURIComponent).join("/")}`;
    try {
      const mark = await markRequestLog(server);
      assert.deepEqual(await readRequestLog(server, mark), [], "nothing happened since the mark");

      const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      assert.ok(got.Body !== undefined);
      assert.equal((await got.Body.transformToByteArray()).length, body.length);
      const seen = await readRequestLog(server, mark);
      assert.deepEqual(
        seen.map(({ method, path, status, user }) => ({ method, path, status, user })),
        [{ method: "GET", path: encodedPath, status: 200, user: "test" }],
      );

      // PUT and HEAD show up too, and a count can be narrowed to one method.
      const second = await markRequestLog(server);
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: "other", Body: "x" }));
      await client.send(new HeadObjectCommand({ Bucket: bucket, Key: "other" }));
      await client.send(new HeadObjectCommand({ Bucket: bucket, Key: "other" }));
      const methods = (await readRequestLog(server, second)).map((request) => request.method);
      assert.deepEqual(methods, ["PUT", "HEAD", "HEAD"]);
      assert.equal(await countRequests(server, second, (request) => request.method === "HEAD"), 2);
      assert.equal(await countRequests(server, mark), 4);
    } finally {
      client.destroy();
    }
  });

  it("stop() ends every daemon, removes the folder and can be called again", async () => {
    const pids = ["mon", "osd", "rgw"].map((name) =>
      Number(readFileSync(join(server.dir, `${name}.pid`), "utf8")),
    );
    assert.ok(pids.every(alive), "all daemons run before stop");
    await deleteBucketWithObjects(server, bucket);
    await deleteBucketWithObjects(server, bucket); // already gone: no error
    await server.stop();
    assert.deepEqual(pids.filter(alive), [], "no daemon left after stop");
    assert.equal(existsSync(server.dir), false);
    await server.stop();
  });
});
