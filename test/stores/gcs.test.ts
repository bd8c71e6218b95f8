// The Google Cloud Storage driver against firebase-tools' Storage emulator, started by the test. The
// emulator checks no credentials and has no missing buckets, so those failures come from scripted local
// servers answering as GCS does; requests are counted by a recording proxy in front of the emulator.

import assert from "node:assert/strict";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import type { GcsOptions } from "../../src/config/types.js";
import { isStorageError } from "../../src/errors.js";
import { createGcsStore } from "../../src/stores/gcs.js";
import { startGcsEmulator, testGcsOptions } from "../../test-support/gcs-emulator.js";
import { startScriptedServer } from "../../test-support/http-recorder.js";
import { MemoryLogger } from "../helpers/memory-logger.js";
import { proxiedBucket } from "../helpers/proxied-bucket.js";
import { serverForFile } from "../helpers/server-for-file.js";
import { freePort } from "../../test-support/free-port.js";
import { objectStoreConformance, readBody } from "./conformance.js";
import { roundTripSuite } from "./round-trips.js";

const started = serverForFile(async () => {
  const emulator = await startGcsEmulator();
  process.stderr.write(`# GCS emulator answered ${emulator.startMs} ms after spawn (pid ${emulator.pid})\n`);
  return emulator;
});

/** GCS's JSON error body. */
function gcsError(code: number, message: string, reason: string): string {
  return JSON.stringify({ error: { code, message, errors: [{ message, domain: "global", reason }] } });
}

objectStoreConformance("gcs on the Firebase Storage emulator", async () => {
  const bucket = (await started).bucket("conformance");
  return {
    store: await createGcsStore(bucket.storeOptions(), new MemoryLogger()),
    cleanup: () => bucket.cleanup(),
  };
});

roundTripSuite(
  "gcs on the Firebase Storage emulator",
  async () => (await started).endpoint,
  async (proxyUrl) => {
    const bucket = (await started).bucket("round-trips");
    return {
      store: await createGcsStore(testGcsOptions(proxyUrl, bucket.name), new MemoryLogger()),
      cleanup: () => bucket.cleanup(),
    };
  },
);

describe("gcs driver on the Firebase Storage emulator", () => {
  const driver = proxiedBucket(
    started,
    (server) => server.bucket("driver"),
    (server) => server.endpoint,
  );
  let workDir: string;
  before(async () => {
    workDir = await mkdtemp(join(tmpdir(), "ocs-gcs-test-"));
  });
  after(() => rm(workDir, { recursive: true, force: true }));

  /** A store whose requests go through the recording proxy. */
  async function counted(overrides: Partial<GcsOptions> = {}) {
    const store = await createGcsStore(
      testGcsOptions(driver.proxy.url, driver.bucket.name, overrides),
      new MemoryLogger(),
    );
    driver.proxy.requests.length = 0;
    return store;
  }

  const objectPath = (key: string): string =>
    `/storage/v1/b/${driver.bucket.name}/o/${encodeURIComponent(key)}`;

  it("reads a whole object in one request: the size comes from the GET itself", async () => {
    const store = await counted();
    const data = randomBytes(300_000);
    await store.put("aa/one-request.dcm", data);
    driver.proxy.requests.length = 0;
    const object = await store.get("aa/one-request.dcm");
    assert.ok(object);
    assert.equal(object.size, data.length);
    assert.deepEqual(await readBody(object), data);
    assert.deepEqual(
      driver.proxy.requests.map((r) => `${r.method} ${r.url.split("?")[0]}`),
      [`GET ${objectPath("aa/one-request.dcm")}`],
    );
    assert.match(driver.proxy.requests[0]?.url ?? "", /[?&]alt=media/);
    assert.equal(driver.proxy.requests[0]?.headers.range, undefined);
  });

  it("reads a range in one ranged GET, with the whole size", async () => {
    const store = await counted();
    await store.put("range.dcm", randomBytes(10_000));
    driver.proxy.requests.length = 0;
    const object = await store.get("range.dcm", { start: 100, end: 756 });
    assert.ok(object);
    assert.equal(object.size, 10_000);
    assert.equal((await readBody(object)).length, 656);
    assert.equal(driver.proxy.requests.length, 1);
    assert.equal(driver.proxy.requests[0]?.headers.range, "bytes=100-755");
  });

  it("writes in one single-request upload", async () => {
    const store = await counted();
    await store.put("single.dcm", randomBytes(3 * 1024 * 1024));
    assert.equal(driver.proxy.requests.length, 1);
    assert.equal(driver.proxy.requests[0]?.method, "POST");
    assert.match(
      driver.proxy.requests[0]?.url ?? "",
      new RegExp(`^/upload/storage/v1/b/${driver.bucket.name}/o\\?.*uploadType=multipart`),
    );
    const [metadata] = await driver.bucket.client.file("single.dcm").getMetadata();
    assert.equal(Number(metadata.size), 3 * 1024 * 1024);
  });

  it("deletes a missing object in one request, without error (the official plugin logs one)", async () => {
    const store = await counted();
    await store.delete("never-written.dcm");
    assert.deepEqual(
      driver.proxy.requests.map((r) => `${r.method} ${r.url.split("?")[0]}`),
      [`DELETE ${objectPath("never-written.dcm")}`],
    );
  });

  it("sends no credentials to a plain-HTTP endpoint, and says so", async () => {
    const keyFile = join(workDir, "unused.json");
    await writeFile(
      keyFile,
      JSON.stringify({ type: "service_account", client_email: "a@b", private_key: "k" }),
    );
    const logger = new MemoryLogger();
    const store = await createGcsStore(
      testGcsOptions(driver.proxy.url, driver.bucket.name, { serviceAccountFile: keyFile }),
      logger,
    );
    driver.proxy.requests.length = 0;
    await store.head("x.dcm");
    assert.equal(driver.proxy.requests[0]?.headers.authorization, undefined);
    assert.ok(
      logger.lines.some((l) =>
        /requests carry no credentials; ServiceAccountFile is not used/.test(l.message),
      ),
    );
  });

  it("says when the bucket does not exist (answered as GCS does; the emulator has no missing buckets)", async () => {
    await using missing = await startScriptedServer((_req, res) => {
      res.writeHead(404, { "content-type": "application/json" });
      res.end(gcsError(404, "The specified bucket does not exist.", "notFound"));
    });
    const store = await createGcsStore(testGcsOptions(missing.url, "no-such-bucket"), new MemoryLogger());
    const expected = new RegExp(
      `the bucket "no-such-bucket" does not exist at ${missing.url} \\(HTTP 404\\)`,
    );
    await assert.rejects(store.get("x.dcm"), expected);
    await assert.rejects(store.get("x.dcm", { start: 0, end: 1 }), expected);
    await assert.rejects(store.head("x.dcm"), expected);
    await assert.rejects(store.delete("x.dcm"), expected);
    await assert.rejects(store.put("x.dcm", Buffer.from("x")), expected);
    await assert.rejects(async () => {
      for await (const _ of store.list("")) break;
    }, expected);
  });

  it("says when the credentials are refused or lack a permission (answered as GCS does)", async () => {
    for (const [status, message, expected] of [
      [401, "Invalid Credentials", /the credentials were refused \(HTTP 401: Invalid Credentials\)/],
      [
        403,
        "orthanc@p.iam.gserviceaccount.com does not have storage.objects.get access",
        /lacks a permission on the bucket "b" \(HTTP 403: orthanc@p.* does not have storage\.objects\.get access\); grant it the Storage Object User role/,
      ],
    ] as const) {
      await using refusing = await startScriptedServer((_req, res) => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(gcsError(status, message, status === 401 ? "authError" : "forbidden"));
      });
      const store = await createGcsStore(testGcsOptions(refusing.url, "b"), new MemoryLogger());
      await assert.rejects(store.head("x.dcm"), expected);
    }
  });

  it("says when the endpoint is unreachable", async () => {
    const port = await freePort();
    const store = await createGcsStore(
      testGcsOptions(`http://127.0.0.1:${port}`, driver.bucket.name, { maxRetries: 0 }),
      new MemoryLogger(),
    );
    const expected = new RegExp(`cannot reach http://127.0.0.1:${port}: the connection was refused`);
    await assert.rejects(store.get("x.dcm"), expected);
    await assert.rejects(store.put("x.dcm", Buffer.from("x")), expected);
  });

  it("retries a failing server MaxRetries times, then says so", async () => {
    await using busy = await startScriptedServer((_req, res) => {
      res.writeHead(503, { "content-type": "application/json" });
      res.end(gcsError(503, "Service Unavailable", "backendError"));
    });
    const store = await createGcsStore(testGcsOptions(busy.url, "b", { maxRetries: 1 }), new MemoryLogger());
    await assert.rejects(
      store.head("x.dcm"),
      /busy or failing \(HTTP 503: Service Unavailable\) and still was after 2 attempts/,
    );
    assert.equal(busy.requests.length, 2, "1 try + MaxRetries");
  });

  it("gives up on a silent server after ConnectionTimeout (reads) and RequestTimeout (uploads)", async () => {
    await using silent = await startScriptedServer(() => undefined);
    const options = testGcsOptions(silent.url, "b", {
      maxRetries: 0,
      connectTimeoutMs: 300,
      requestTimeoutMs: 400,
    });
    const store = await createGcsStore(options, new MemoryLogger());
    const begin = Date.now();
    await assert.rejects(store.get("x.dcm"), /no answer from .* in time/);
    await assert.rejects(store.put("x.dcm", Buffer.from("x")), /no answer from .* in time/);
    assert.ok(Date.now() - begin < 5_000);
  });

  it("signs in with ServiceAccountFile: a token is asked for before the first request", async () => {
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const keyFile = join(workDir, "key.json");
    const email = "orthanc@demo-project.iam.gserviceaccount.com";
    await writeFile(
      keyFile,
      JSON.stringify({
        type: "service_account",
        project_id: "demo-project",
        private_key_id: "0123",
        private_key: privateKey.export({ type: "pkcs8", format: "pem" }),
        client_email: email,
      }),
    );
    // No Endpoint: Google's, over HTTPS, so credentials are used. Tests have no network: Google's token
    // service is out of reach, which shows that the key file's account asked it for a token.
    const store = await createGcsStore(
      testGcsOptions(undefined, "b", { serviceAccountFile: keyFile, maxRetries: 0 }),
      new MemoryLogger(),
    );
    await assert.rejects(store.head("x.dcm"), (error: unknown) => {
      assert.ok(isStorageError(error, "STORE_FAILED"));
      assert.match(
        error.message,
        new RegExp(`cannot reach https://\\S+/token for a token for service account "${email}"`),
      );
      assert.doesNotMatch(error.message, /PRIVATE KEY/);
      return true;
    });
  });

  it("refuses a ServiceAccountFile it cannot use before any request, never showing its content", async () => {
    const notJson = join(workDir, "not-json.json");
    await writeFile(notJson, "-----BEGIN PRIVATE KEY-----\nU0VDUkVU\n-----END PRIVATE KEY-----\n");
    const noType = join(workDir, "no-type.json");
    await writeFile(noType, JSON.stringify({ private_key: "U0VDUkVU" }));
    const badPem = join(workDir, "bad-pem.json");
    await writeFile(
      badPem,
      JSON.stringify({
        type: "service_account",
        client_email: "a@b",
        private_key: "-----BEGIN PRIVATE KEY-----\nU0VDUkVU\n-----END PRIVATE KEY-----\n",
      }),
    );
    for (const [file, expected] of [
      [join(workDir, "missing.json"), /cannot read .*missing\.json: ENOENT/],
      [notJson, /not-json\.json is not valid JSON/],
      [noType, /no-type\.json is not a Google credentials file/],
      [
        badPem,
        /the private_key of .*bad-pem\.json is not a PEM private key: expected "-----BEGIN PRIVATE KEY-----"/,
      ],
    ] as const) {
      await assert.rejects(
        createGcsStore(testGcsOptions(undefined, "b", { serviceAccountFile: file }), new MemoryLogger()),
        (error: unknown) => {
          assert.ok(isStorageError(error, "CONFIG_INVALID"));
          assert.match(error.message, /^open backend GoogleCloudStorage\.ServiceAccountFile: /);
          assert.match(error.message, expected);
          assert.doesNotMatch(error.message, /U0VDUkVU/);
          return true;
        },
      );
    }
  });

  it("without ServiceAccountFile, uses application default credentials, and stops at start-up when there are none", async () => {
    const saved = { ...process.env };
    delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
    process.env.CLOUDSDK_CONFIG = workDir; // no gcloud login to find
    process.env.HOME = workDir;
    try {
      const begin = Date.now();
      await assert.rejects(
        createGcsStore(testGcsOptions(undefined, "b", { maxRetries: 0 }), new MemoryLogger()),
        (error: unknown) => {
          assert.ok(isStorageError(error, "STORE_FAILED"));
          assert.match(
            error.message,
            /^find credentials GoogleCloudStorage: no application default credentials were found; set GoogleCloudStorage\.ServiceAccountFile/,
          );
          return true;
        },
      );
      process.stderr.write(`# looking for application default credentials took ${Date.now() - begin} ms\n`);
    } finally {
      for (const name of ["CLOUDSDK_CONFIG", "HOME", "GOOGLE_APPLICATION_CREDENTIALS"]) {
        if (saved[name] === undefined) delete process.env[name];
        else process.env[name] = saved[name];
      }
    }
  });
});
