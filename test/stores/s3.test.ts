// The S3 driver against a real S3 server: Ceph RGW, started by the test (it checks signatures for real).

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";

import { GetObjectTaggingCommand, ListMultipartUploadsCommand, S3Client } from "@aws-sdk/client-s3";

import type { S3Options } from "../../src/config/types.js";
import { isStorageError } from "../../src/errors.js";
import { clientConfig, normalizeEndpoint } from "../../src/stores/s3-client.js";
import { createS3Store } from "../../src/stores/s3.js";
import { MemoryLogger } from "../helpers/memory-logger.js";
import { freePort } from "../../test-support/free-port.js";
import { startLatencyProxy } from "../../test-support/latency-proxy.js";
import { startRgw, testS3Options, type RgwBucket, type RgwServer } from "../../test-support/rgw.js";
import { recordRequests } from "../helpers/s3-requests.js";
import { serverForFile } from "../helpers/server-for-file.js";
import { objectStoreConformance, readBody } from "./conformance.js";
import { roundTripSuite } from "./round-trips.js";

const MIB = 1024 * 1024;
const rgw = serverForFile(startRgw);

async function bucketTarget(overrides: Partial<S3Options> = {}) {
  const bucket = await (await rgw).bucket("conformance");
  return {
    store: createS3Store(bucket.storeOptions(overrides), new MemoryLogger()),
    cleanup: () => bucket.cleanup(),
  };
}

objectStoreConformance("s3 on Ceph RGW", () => bucketTarget());
// Multipart uploads and parallel ranged reads: the conformance suite's 8 MiB object spans 2 parts.
objectStoreConformance("s3 on Ceph RGW, UseTransferManager", () =>
  bucketTarget({ useTransferManager: true }),
);

roundTripSuite(
  "s3 on Ceph RGW",
  async () => (await rgw).endpoint,
  async (proxyUrl) => {
    const bucket = await (await rgw).bucket("round-trips");
    return {
      store: createS3Store(bucket.storeOptions({ endpoint: proxyUrl }), new MemoryLogger()),
      cleanup: () => bucket.cleanup(),
    };
  },
);

// Why s3-client.ts hands the SDK agent instances, not agent options: with an agent of its own making, the
// SDK sends each body of 2 MiB or more on a new connection without keep-alive, after waiting for
// `100 Continue`: a handshake and a round trip wasted per write. Counted at the latency proxy.
it("s3: the SDK's own agent would cost a new connection and a 100 Continue wait per large write; ours does not", async () => {
  const server = await rgw;
  const bucket = await server.bucket("expect-continue");
  await using proxy = await startLatencyProxy({ target: server.endpoint, delayMs: 5 });
  const options = bucket.storeOptions({ endpoint: proxy.url });
  const config = clientConfig(options, new MemoryLogger());
  const sdkAgents = new S3Client({
    ...config,
    requestHandler: {
      ...config.requestHandler,
      httpAgent: { keepAlive: true },
      httpsAgent: { keepAlive: true },
    },
  });
  const stores = {
    ours: createS3Store(options, new MemoryLogger()),
    sdk: createS3Store(options, new MemoryLogger(), sdkAgents),
  };
  try {
    const data = randomBytes(3 * MIB);
    const counted: Record<string, unknown> = {};
    for (const [name, store] of Object.entries(stores)) {
      await store.put(`warm-${name}.dcm`, data.subarray(0, 1000));
      const since = proxy.counts();
      await store.put(`${name}.dcm`, data);
      counted[name] = proxy.countsSince(since);
    }
    assert.deepEqual(counted, {
      ours: { connections: 0, requests: 1, turns: 1 },
      sdk: { connections: 1, requests: 1, turns: 2 },
    });
  } finally {
    for (const store of Object.values(stores)) await store.close();
    await bucket.cleanup();
  }
});

describe("s3 driver on Ceph RGW", () => {
  let server: RgwServer;
  let bucket: RgwBucket;
  before(async () => {
    server = await rgw;
    bucket = await server.bucket("driver");
  });
  after(() => bucket?.cleanup());

  function counted(overrides: Partial<S3Options> = {}) {
    const options = bucket.storeOptions(overrides);
    const client = new S3Client(clientConfig(options, new MemoryLogger()));
    const requests = recordRequests(client);
    return { store: createS3Store(options, new MemoryLogger(), client), requests };
  }

  it("reads a whole object in one request: the size comes from the GET itself", async () => {
    const { store, requests } = counted();
    const data = randomBytes(300_000);
    await store.put("one-request.dcm", data);
    requests.length = 0;
    const object = await store.get("one-request.dcm");
    assert.ok(object);
    assert.equal(object.size, data.length);
    assert.deepEqual(await readBody(object), data);
    assert.deepEqual(
      requests.map((r) => `${r.method} ${r.path}`),
      [`GET /${bucket.name}/one-request.dcm`],
    );
  });

  it("reads a range in one ranged GET", async () => {
    const { store, requests } = counted();
    await store.put("range.dcm", randomBytes(10_000));
    requests.length = 0;
    const object = await store.get("range.dcm", { start: 0, end: 656 });
    assert.ok(object);
    assert.equal((await readBody(object)).length, 656);
    assert.equal(requests.length, 1);
    assert.equal(requests[0]?.headers["range"], "bytes=0-655");
  });

  it("writes in one request with Content-MD5, and sends Tags with it", async () => {
    const { store, requests } = counted({ tags: { site: "liège", retention: "10y" } });
    const data = randomBytes(1000);
    await store.put("tagged.dcm", data);
    assert.equal(requests.length, 1);
    const put = requests[0];
    assert.equal(put?.method, "PUT");
    assert.equal(
      put?.headers["content-md5"],
      (await import("node:crypto")).createHash("md5").update(data).digest("base64"),
    );
    const client = new S3Client(clientConfig(bucket.storeOptions(), new MemoryLogger()));
    const tags = await client.send(new GetObjectTaggingCommand({ Bucket: bucket.name, Key: "tagged.dcm" }));
    client.destroy();
    assert.deepEqual(Object.fromEntries((tags.TagSet ?? []).map((t) => [t.Key, t.Value])), {
      site: "liège",
      retention: "10y",
    });
  });

  it("uploads a large object in parts with UseTransferManager, and reads it back in parallel ranges", async () => {
    const { store, requests } = counted({
      useTransferManager: true,
      transferBufferBytes: 5 * MIB,
      transferPoolSize: 3,
    });
    const data = randomBytes(17 * MIB + 5);
    await store.put("multipart.dcm", data);
    assert.ok(
      requests.filter((r) => r.method === "PUT" && "partNumber" in r.query).length === 4,
      "4 parts of 5 MiB",
    );
    requests.length = 0;
    const object = await store.get("multipart.dcm");
    assert.ok(object);
    assert.equal(object.size, data.length);
    assert.ok((await readBody(object)).equals(data));
    assert.equal(requests.filter((r) => r.method === "GET").length, 4, "4 ranged GETs");
  });

  it("streams a large object up in 8 MiB parts, each with its Content-MD5, and aborts a failed upload", async () => {
    const { store, requests } = counted();
    const data = randomBytes(17 * MIB);
    await store.putStream("streamed.dcm", Readable.from([data]), data.length);
    const parts = requests.filter((r) => r.method === "PUT" && "partNumber" in r.query);
    assert.equal(parts.length, 3, "8 + 8 + 1 MiB");
    assert.ok(parts.every((r) => "content-md5" in r.headers));
    const object = await store.get("streamed.dcm");
    assert.ok(object);
    assert.ok((await readBody(object)).equals(data));
    requests.length = 0;
    const failing = Readable.from(
      (function* () {
        yield data;
        throw new Error("the bridge closed the connection");
      })(),
    );
    await assert.rejects(store.putStream("failed.dcm", failing, 20 * MIB), /closed the connection/);
    assert.equal(requests.filter((r) => r.method === "DELETE" && "uploadId" in r.query).length, 1, "aborted");
    const client = new S3Client(clientConfig(bucket.storeOptions(), new MemoryLogger()));
    const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket.name }));
    client.destroy();
    assert.deepEqual(uploads.Uploads ?? [], [], "no unfinished upload is left in the bucket");
  });

  it("names the access key, never the secret, when the secret key is wrong", async () => {
    const store = createS3Store(bucket.storeOptions({ secretKey: "not-the-secret" }), new MemoryLogger());
    await assert.rejects(store.get("anything.dcm"), (error) => {
      assert.ok(isStorageError(error, "STORE_FAILED"));
      assert.match(error.message, /signature did not match/);
      // Plain substring checks: a random key may hold characters that a RegExp would read as syntax ("+").
      assert.ok(error.message.includes(`access key "${server.accessKey}"`), error.message);
      assert.doesNotMatch(error.message, /not-the-secret/);
      assert.ok(!error.message.includes(server.secretKey), "the secret key is never in a message");
      return true;
    });
  });

  it("says when the access key is unknown", async () => {
    const store = createS3Store(bucket.storeOptions({ accessKey: "NOSUCHKEY123" }), new MemoryLogger());
    await assert.rejects(
      store.put("x.dcm", Buffer.from("x")),
      /"NOSUCHKEY123" is unknown .*InvalidAccessKeyId/,
    );
  });

  it("says when the bucket does not exist", async () => {
    const store = createS3Store(
      testS3Options({ ...server, bucketName: "no-such-bucket-here" }),
      new MemoryLogger(),
    );
    await assert.rejects(store.get("x.dcm"), /bucket "no-such-bucket-here" does not exist .*NoSuchBucket/);
  });

  it("says when the endpoint is unreachable", async () => {
    const port = await freePort();
    const store = createS3Store(
      bucket.storeOptions({ endpoint: `http://127.0.0.1:${port}`, maxRetries: 0 }),
      new MemoryLogger(),
    );
    await assert.rejects(
      store.get("x.dcm"),
      new RegExp(`cannot reach http://127.0.0.1:${port}: the connection was refused`),
    );
  });

  it("accepts Endpoint with or without scheme and trailing slash", () => {
    assert.equal(normalizeEndpoint("http://127.0.0.1:9000/"), "http://127.0.0.1:9000");
    assert.equal(normalizeEndpoint("minio.example.org:9000"), "https://minio.example.org:9000");
    assert.equal(normalizeEndpoint("https://s3.example.org//"), "https://s3.example.org");
  });
});
