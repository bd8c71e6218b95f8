// The Azure Blob driver against Azurite's Blob service, started by the test (it checks Shared Key
// signatures for real). Requests are counted by a recording proxy in front of Azurite; failures that
// Azurite cannot produce (busy, silent servers) come from scripted local servers.

import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { describe, it } from "node:test";

import {
  AccountSASPermissions,
  AccountSASResourceTypes,
  AccountSASServices,
  generateAccountSASQueryParameters,
  StorageSharedKeyCredential,
} from "@azure/storage-blob";

import type { AzureOptions } from "../../src/config/types.js";
import { isStorageError } from "../../src/errors.js";
import { azureAccount, parseConnectionString } from "../../src/config/sections/azure-connection-string.js";
import { createAzureStore } from "../../src/stores/azure.js";
import {
  AZURITE_ACCOUNT,
  AZURITE_KEY,
  azuriteClient,
  azuriteConnectionString,
  deleteContainer,
  startAzurite,
  testAzureOptions,
} from "../../test-support/azurite.js";
import { startScriptedServer } from "../../test-support/http-recorder.js";
import { MemoryLogger } from "../helpers/memory-logger.js";
import { proxiedBucket } from "../helpers/proxied-bucket.js";
import { serverForFile } from "../helpers/server-for-file.js";
import { freePort } from "../../test-support/free-port.js";
import { objectStoreConformance, readBody } from "./conformance.js";
import { roundTripSuite } from "./round-trips.js";

const WRONG_KEY = Buffer.alloc(64, 7).toString("base64");

const started = serverForFile(async () => {
  const azurite = await startAzurite();
  process.stderr.write(`# Azurite answered ${azurite.startMs} ms after spawn (pid ${azurite.pid})\n`);
  return azurite;
});

objectStoreConformance("azure on Azurite", async () => {
  // Not created here: the driver creates it (CreateContainerIfNotExists).
  const container = await (await started).container("conformance", { create: false });
  return {
    store: await createAzureStore(container.storeOptions(), new MemoryLogger()),
    cleanup: () => container.cleanup(),
  };
});

roundTripSuite(
  "azure on Azurite",
  async () => new URL((await started).endpoint).origin,
  async (proxyUrl) => {
    const container = await (await started).container("round-trips");
    const connectionString = azuriteConnectionString(`${proxyUrl}/${AZURITE_ACCOUNT}`);
    return {
      store: await createAzureStore(testAzureOptions(connectionString, container.name), new MemoryLogger()),
      cleanup: () => container.cleanup(),
    };
  },
);

describe("azure driver on Azurite", () => {
  const driver = proxiedBucket(
    started,
    (server) => server.container("driver"),
    (server) => new URL(server.endpoint).origin,
  );

  /** A store whose requests go through the recording proxy. */
  async function counted(overrides: Partial<AzureOptions> = {}) {
    const connectionString = azuriteConnectionString(`${driver.proxy.url}/${AZURITE_ACCOUNT}`);
    const store = await createAzureStore(
      testAzureOptions(connectionString, driver.bucket.name, overrides),
      new MemoryLogger(),
    );
    // The container's creation (CreateContainerIfNotExists) precedes the first request: made here, uncounted.
    await store.head("warm-up.dcm");
    driver.proxy.requests.length = 0;
    return store;
  }

  const path = (key: string): string => `/${AZURITE_ACCOUNT}/${driver.bucket.name}/${key}`;

  it("reads a whole blob in one request: the size comes from the GET itself", async () => {
    const store = await counted();
    const data = randomBytes(300_000);
    await store.put("one-request.dcm", data);
    driver.proxy.requests.length = 0;
    const object = await store.get("one-request.dcm");
    assert.ok(object);
    assert.equal(object.size, data.length);
    assert.deepEqual(await readBody(object), data);
    assert.deepEqual(
      driver.proxy.requests.map((r) => `${r.method} ${r.url}`),
      [`GET ${path("one-request.dcm")}`],
    );
    assert.equal(driver.proxy.requests[0]?.headers["x-ms-range"], undefined);
    await store.close();
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
    assert.equal(driver.proxy.requests[0]?.method, "GET");
    assert.equal(driver.proxy.requests[0]?.headers["x-ms-range"], "bytes=100-755");
    await store.close();
  });

  it("writes in one request, with the AccessTier", async () => {
    const store = await counted({ accessTier: "Cool" });
    await store.put("tiered.dcm", randomBytes(1000));
    assert.deepEqual(
      driver.proxy.requests.map((r) => `${r.method} ${r.url} ${String(r.headers["x-ms-access-tier"])}`),
      [`PUT ${path("tiered.dcm")} Cool`],
    );
    const properties = await azuriteClient(driver.server)
      .getContainerClient(driver.bucket.name)
      .getBlobClient("tiered.dcm")
      .getProperties();
    assert.equal(properties.accessTier, "Cool");
    await store.close();
  });

  it("deletes a missing blob in one request, without error (the official plugin logs one)", async () => {
    const store = await counted();
    await store.delete("never-written.dcm");
    assert.deepEqual(
      driver.proxy.requests.map((r) => `${r.method} ${r.url}`),
      [`DELETE ${path("never-written.dcm")}`],
    );
    await store.close();
  });

  it("creates a missing container before its first request and warns to check that it is private, once", async () => {
    const created = `created-${randomUUID()}`;
    const logger = new MemoryLogger();
    const store = await createAzureStore(testAzureOptions(driver.server.connectionString, created), logger);
    try {
      assert.equal(
        await azuriteClient(driver.server).getContainerClient(created).exists(),
        false,
        "no request yet",
      );
      assert.equal(await store.get("first-request.dcm"), null);
      const warnings = logger.lines.filter((l) => l.level === "warn").map((l) => l.message);
      assert.equal(warnings.length, 1);
      assert.match(
        warnings[0] ?? "",
        new RegExp(`created the container "${created}".*check .* that it is private`),
      );
      const access = await azuriteClient(driver.server).getContainerClient(created).getAccessPolicy();
      assert.equal(access.blobPublicAccess, undefined, "no public access");
      assert.equal(await store.head("second-request.dcm"), null);
      assert.equal(logger.lines.filter((l) => l.level === "warn").length, 1, "created once");
      const again = new MemoryLogger();
      const existing = await createAzureStore(
        testAzureOptions(driver.server.connectionString, created),
        again,
      );
      assert.equal(await existing.get("first-request.dcm"), null);
      await existing.close();
      assert.deepEqual(again.lines, []);
    } finally {
      await store.close();
      await deleteContainer(driver.server, created);
    }
  });

  it("says when the container does not exist and CreateContainerIfNotExists is false", async () => {
    const missing = `missing-${randomUUID()}`;
    const options = testAzureOptions(driver.server.connectionString, missing, {
      createContainerIfNotExists: false,
    });
    const store = await createAzureStore(options, new MemoryLogger());
    const expected = new RegExp(
      `the container "${missing}" does not exist in storage account "${AZURITE_ACCOUNT}" \\(ContainerNotFound\\)`,
    );
    await assert.rejects(store.get("x.dcm"), expected);
    await assert.rejects(store.head("x.dcm"), expected);
    await assert.rejects(store.put("x.dcm", Buffer.from("x")), expected);
    await assert.rejects(store.delete("x.dcm"), expected);
    await store.close();
    assert.equal(await azuriteClient(driver.server).getContainerClient(missing).exists(), false);
  });

  it("names the account, never the key, when the account key is wrong (Azurite checks it)", async () => {
    const check = (error: unknown): boolean => {
      assert.ok(isStorageError(error, "STORE_FAILED"));
      assert.match(error.message, /the account key was refused \(AuthorizationFailure\)/);
      assert.match(
        error.message,
        new RegExp(`AccountKey of storage account "${AZURITE_ACCOUNT}" .* is wrong`),
      );
      assert.doesNotMatch(error.message, new RegExp(WRONG_KEY.slice(0, 20)));
      assert.doesNotMatch(error.message, new RegExp(AZURITE_KEY.slice(0, 20)));
      return true;
    };
    const wrong = azuriteConnectionString(driver.server.endpoint, WRONG_KEY);
    // With CreateContainerIfNotExists, the container's creation is the first request: refused the same way.
    const creating = await createAzureStore(testAzureOptions(wrong, driver.bucket.name), new MemoryLogger());
    await assert.rejects(creating.get("anything.dcm"), (error: unknown) => {
      assert.ok(isStorageError(error, "STORE_FAILED"));
      assert.match(error.message, /create container/);
      return check(error);
    });
    await creating.close();
    const store = await createAzureStore(
      testAzureOptions(wrong, driver.bucket.name, { createContainerIfNotExists: false }),
      new MemoryLogger(),
    );
    await assert.rejects(store.get("anything.dcm"), check);
    await assert.rejects(store.head("anything.dcm"), check);
    await store.close();
  });

  it("works with a shared access signature, and says when one is refused", async () => {
    const credential = new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY);
    const sas = generateAccountSASQueryParameters(
      {
        expiresOn: new Date(Date.now() + 3_600_000),
        permissions: AccountSASPermissions.parse("racwdl"),
        resourceTypes: AccountSASResourceTypes.parse("sco").toString(),
        services: AccountSASServices.parse("b").toString(),
      },
      credential,
    ).toString();
    const connectionString = `BlobEndpoint=${driver.server.endpoint};SharedAccessSignature=${sas}`;
    const store = await createAzureStore(
      testAzureOptions(connectionString, driver.bucket.name),
      new MemoryLogger(),
    );
    assert.doesNotMatch(store.location, /sig=/);
    await store.put("sas.dcm", Buffer.from("through a SAS"));
    const object = await store.get("sas.dcm");
    assert.ok(object);
    assert.equal((await readBody(object)).toString(), "through a SAS");
    await store.close();

    const tampered = connectionString.replace(/sig=[^&]+/, `sig=${encodeURIComponent(WRONG_KEY)}`);
    const refused = await createAzureStore(
      testAzureOptions(tampered, driver.bucket.name, { createContainerIfNotExists: false }),
      new MemoryLogger(),
    );
    await assert.rejects(refused.get("sas.dcm"), (error: unknown) => {
      assert.ok(isStorageError(error, "STORE_FAILED"));
      assert.match(error.message, /the shared access signature was refused/);
      assert.doesNotMatch(error.message, /sig=/);
      return true;
    });
    await refused.close();
  });

  it("refuses bad connection strings before any request, naming the problem and never the secret", async () => {
    const secret = "U0VDUkVULUtFWS1WQUxVRQ==";
    const cases: Array<[string, RegExp]> = [
      [
        `AccountName=${AZURITE_ACCOUNT};BlobEndpoint=${driver.server.endpoint}`,
        /neither AccountKey nor SharedAccessSignature/,
      ],
      [`AccountKey=${secret};BlobEndpoint=${driver.server.endpoint}`, /AccountKey needs AccountName/],
      [
        `AccountName=a;AccountKey=${secret}!!;BlobEndpoint=${driver.server.endpoint}`,
        /AccountKey is not base64/,
      ],
      [`DefaultEndpointsProtocol=ftp;AccountName=a;AccountKey=${secret}`, /DefaultEndpointsProtocol must be/],
      [`AccountKey=${secret}`, /it needs AccountName, or BlobEndpoint/],
      [`BlobEndpoint=not a url;AccountName=a;AccountKey=${secret}`, /BlobEndpoint must be an http/],
      [
        `AccountName=a;AccountKey=${secret};SharedAccessSignature=sv=1&sig=${secret}`,
        /both AccountKey and Shared/,
      ],
    ];
    for (const [connectionString, expected] of cases) {
      await assert.rejects(
        createAzureStore(testAzureOptions(connectionString, driver.bucket.name), new MemoryLogger()),
        (error: unknown) => {
          assert.ok(isStorageError(error, "CONFIG_INVALID"), String(error));
          assert.match(error.message, /^open backend AzureBlobStorage\.ConnectionString: /);
          assert.match(error.message, expected);
          assert.doesNotMatch(error.message, /U0VDUkVU/);
          return true;
        },
        connectionString.replace(secret, "<secret>"),
      );
    }
  });

  it("reads connection strings as the Azure SDKs do: any case, https and core.windows.net by default", () => {
    assert.deepEqual(parseConnectionString(`accountname=acct;ACCOUNTKEY=${AZURITE_KEY}`), {
      endpoint: "https://acct.blob.core.windows.net",
      account: "acct",
      credential: { kind: "account key", accountName: "acct", accountKey: AZURITE_KEY },
    });
    assert.equal(
      parseConnectionString("AccountName=a;AccountKey=Zm9v;EndpointSuffix=core.chinacloudapi.cn").endpoint,
      "https://a.blob.core.chinacloudapi.cn",
    );
    assert.deepEqual(
      parseConnectionString("UseDevelopmentStorage=true").endpoint,
      "http://127.0.0.1:10000/devstoreaccount1",
    );
    assert.deepEqual(azureAccount({ accountUrl: "https://acct.blob.core.windows.net/" }), {
      endpoint: "https://acct.blob.core.windows.net",
      account: "acct",
      credential: { kind: "default Azure credential" },
    });
  });

  it("says when the endpoint is unreachable", async () => {
    const port = await freePort();
    const endpoint = `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`;
    const options = testAzureOptions(azuriteConnectionString(endpoint), driver.bucket.name, {
      maxRetries: 0,
      createContainerIfNotExists: false,
    });
    const store = await createAzureStore(options, new MemoryLogger());
    await assert.rejects(
      store.get("x.dcm"),
      new RegExp(`cannot reach ${endpoint}: the connection was refused .*check the BlobEndpoint`),
    );
    await store.close();
  });

  it("retries a busy server MaxRetries times, then says so", async () => {
    await using busy = await startScriptedServer((_req, res) => {
      res.writeHead(503, { "x-ms-error-code": "ServerBusy", "content-type": "application/xml" });
      res.end('<?xml version="1.0"?><Error><Code>ServerBusy</Code><Message>busy</Message></Error>');
    });
    const options = testAzureOptions(
      azuriteConnectionString(`${busy.url}/${AZURITE_ACCOUNT}`),
      driver.bucket.name,
      {
        maxRetries: 2,
        createContainerIfNotExists: false,
      },
    );
    const store = await createAzureStore(options, new MemoryLogger());
    await assert.rejects(
      store.head("x.dcm"),
      /busy or failing \(ServerBusy\) and still was after 3 attempts/,
    );
    assert.equal(busy.requests.length, 3, "1 try + MaxRetries");
    await store.close();
  });

  it("gives up on a silent server after RequestTimeout", async () => {
    await using silent = await startScriptedServer(() => undefined);
    const options = testAzureOptions(
      azuriteConnectionString(`${silent.url}/${AZURITE_ACCOUNT}`),
      driver.bucket.name,
      {
        maxRetries: 0,
        requestTimeoutMs: 300,
        createContainerIfNotExists: false,
      },
    );
    const store = await createAzureStore(options, new MemoryLogger());
    const begin = Date.now();
    await assert.rejects(store.get("x.dcm"), /no complete answer from .* within RequestTimeout \(0\.3 s\)/);
    assert.ok(Date.now() - begin < 5_000);
    await store.close();
  });

  it("AccountUrl uses the default Azure credential, and says when none gives a token", async () => {
    const saved = { ...process.env };
    for (const name of Object.keys(process.env)) if (name.startsWith("AZURE_")) delete process.env[name];
    try {
      const options: AzureOptions = {
        accountUrl: "https://127.0.0.1:1/devstoreaccount1",
        containerName: driver.bucket.name,
        createContainerIfNotExists: true,
        maxRetries: 0,
        connectTimeoutMs: 2_000,
        requestTimeoutMs: 30_000,
      };
      // The container's creation is the store's first request.
      const store = await createAzureStore(options, new MemoryLogger());
      await assert.rejects(store.get("x.dcm"), (error: unknown) => {
        assert.ok(isStorageError(error, "STORE_FAILED"));
        assert.match(error.message, /the default Azure credential got no token/);
        assert.match(error.message, /managed identity/);
        return true;
      });
      await store.close();
    } finally {
      Object.assign(process.env, saved);
    }
  });
});
