import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { describe, it } from "node:test";

import { StorageArea } from "../../src/area/storage-area.js";
import { A1Codec } from "../../src/crypto/a1-codec.js";
import type { ObjectCodec } from "../../src/crypto/codec.js";
import { KeyRing } from "../../src/crypto/key-ring.js";
import { MemoryBudget } from "../../src/crypto/memory-budget.js";
import { PlainCodec } from "../../src/crypto/plain-codec.js";
import { HealthCheck, type HealthReport } from "../../src/daemon/health.js";
import type { RestRequest } from "../../src/daemon/protocol.js";
import type { ObjectBody, ObjectStore } from "../../src/stores/object-store.js";
import { SpoolStore } from "../../src/stores/spool/spool-store.js";
import { noCallbacks } from "../helpers/no-callbacks.js";
import { MemoryLogger } from "../helpers/memory-logger.js";

const VERSIONS = { plugin: "1.2.3", daemon: "4.5.6" };
const GET: RestRequest = {
  method: "GET",
  url: "/cloud-storage/health",
  groups: [],
  getArguments: [],
  headers: [],
  body: Buffer.alloc(0),
};

/** A store whose get does what the test says; counts the calls. */
function probeStore(get: () => Promise<ObjectBody | null>): ObjectStore & { gets: number } {
  const store = {
    driver: "fake",
    location: "fake://bucket",
    gets: 0,
    get: () => {
      store.gets++;
      return get();
    },
    put: () => Promise.resolve(),
    putStream: () => Promise.resolve(),
    head: () => Promise.resolve(null),
    delete: () => Promise.resolve(),
    list: () => Readable.from([]),
    close: () => Promise.resolve(),
  };
  return store;
}

function areaOf(store: ObjectStore, codec: ObjectCodec = new PlainCodec()): StorageArea {
  return new StorageArea({
    tiers: [
      {
        name: "object-storage",
        backend: "AwsS3Storage",
        store,
        codec,
        keysOf: (uuid) => [`${uuid}.dcm`],
        parseKey: () => null,
        listPrefix: "",
      },
    ],
    writeTo: "object-storage",
    logger: new MemoryLogger(),
  });
}

function check(store: ObjectStore, codec: ObjectCodec = new PlainCodec(), timeoutMs = 3000): HealthCheck {
  return new HealthCheck({
    area: areaOf(store, codec),
    section: "AwsS3Storage",
    versions: VERSIONS,
    timeoutMs,
  });
}

async function answer(health: HealthCheck): Promise<{ status: number; report: HealthReport }> {
  const handler = health.route().methods.GET;
  assert.ok(handler);
  const reply = await handler(GET, noCallbacks);
  assert.equal(reply.contentType, "application/json");
  return { status: reply.status, report: JSON.parse(reply.body.toString()) as HealthReport };
}

describe("health check", () => {
  it("is 200 and healthy when the probe of a missing object answers", async () => {
    const { status, report } = await answer(check(probeStore(() => Promise.resolve(null))));
    assert.equal(status, 200);
    assert.equal(report.healthy, true);
    assert.deepEqual(
      { ...report.backend, latencyMs: 0 },
      {
        section: "AwsS3Storage",
        location: "fake://bucket",
        reachable: true,
        latencyMs: 0,
      },
    );
    assert.ok(report.backend.latencyMs >= 0);
    assert.deepEqual(report.keys, { loaded: false });
    assert.deepEqual(report.versions, VERSIONS);
  });

  it("reports the current master key id when encryption is on", async () => {
    const codec = new A1Codec(
      new KeyRing({ id: 42, key: new Uint8Array(32).fill(3) }),
      new MemoryBudget(1024),
    );
    const { report } = await answer(
      check(
        probeStore(() => Promise.resolve(null)),
        codec,
      ),
    );
    assert.deepEqual(report.keys, { loaded: true, currentKeyId: 42 });
  });

  it("is 503 with the backend's error when the probe fails", async () => {
    const store = probeStore(() => Promise.reject(new Error("getaddrinfo ENOTFOUND bucket.example")));
    const { status, report } = await answer(check(store));
    assert.equal(status, 503);
    assert.equal(report.healthy, false);
    assert.equal(report.backend.reachable, false);
    assert.match(report.backend.error ?? "", /ENOTFOUND bucket\.example/);
  });

  it("answers 503 within its timeout when the backend hangs, and probes again once it settles", async () => {
    let settle: (value: null) => void = () => undefined;
    const store = probeStore(() => new Promise((resolve) => (settle = resolve)));
    const health = check(store, new PlainCodec(), 200);

    const started = performance.now();
    const first = await answer(health);
    const took = performance.now() - started;
    assert.equal(first.status, 503);
    assert.match(first.report.backend.error ?? "", /no answer from the backend within 200 ms/);
    assert.ok(took >= 190 && took < 1500, `answered after ${took} ms`);

    // Still hung: no second probe is started, and the answer comes at once.
    const again = performance.now();
    const second = await answer(health);
    assert.equal(second.status, 503);
    assert.ok(performance.now() - again < 100);
    assert.ok(second.report.backend.latencyMs >= first.report.backend.latencyMs);
    assert.equal(store.gets, 1);

    settle(null);
    await new Promise((resolve) => setImmediate(resolve));
    // The hung probe settled: the next report starts a new one, which answers.
    store.get = () => {
      store.gets++;
      return Promise.resolve(null);
    };
    const third = await answer(health);
    assert.equal(third.status, 200);
    assert.equal(store.gets, 2);
  });

  it("shares one probe between concurrent reports", async () => {
    const store = probeStore(() => new Promise((resolve) => setTimeout(() => resolve(null), 50)));
    const health = check(store);
    const answers = await Promise.all([answer(health), answer(health), answer(health)]);
    assert.deepEqual(
      answers.map((a) => a.status),
      [200, 200, 200],
    );
    assert.equal(store.gets, 1);
  });

  it("reports the write-behind backlog, and turns 503 once it is older than BacklogAlertAge or 90% full", async () => {
    const folder = await mkdtemp(join(tmpdir(), "ocs-health-spool-"));
    const backend = probeStore(() => Promise.resolve(null));
    backend.put = () => Promise.reject(new Error("connection refused"));
    const spool = await SpoolStore.open(backend, {
      folder,
      maxPendingBytes: 100,
      concurrency: 1,
      logger: new MemoryLogger(),
      retryBaseMs: 10_000,
    });
    try {
      const health = (alertAgeMs: number): HealthCheck => {
        return new HealthCheck({
          area: areaOf(backend),
          section: "AwsS3Storage",
          versions: VERSIONS,
          spool: { store: spool, capacityBytes: 100, alertAgeMs },
        });
      };
      await spool.put("a", Buffer.alloc(50));
      await new Promise((resolve) => setTimeout(resolve, 30));
      const young = await answer(health(60_000));
      assert.equal(young.status, 200);
      assert.equal(young.report.spool?.objects, 1);
      assert.equal(young.report.spool?.bytes, 50);
      assert.equal(young.report.spool?.capacityBytes, 100);
      assert.match(young.report.spool?.failing?.error ?? "", /connection refused/);
      const old = await answer(health(10));
      assert.equal(old.status, 503);
      assert.match(
        old.report.spool?.alert ?? "",
        /oldest object in the write-behind spool waits .*BacklogAlertAge/,
      );
      await spool.put("b", Buffer.alloc(45));
      const full = await answer(health(60_000));
      assert.equal(full.status, 503);
      assert.match(full.report.spool?.alert ?? "", /95% full/);
    } finally {
      await spool.close();
      await rm(folder, { recursive: true, force: true });
    }
  });
});
