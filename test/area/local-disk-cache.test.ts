// The read cache as the daemon opens it (openStorageArea with LocalDisk.ReadCacheSize): in front of the
// object storage, under the daemon's request counting, holding the stored bytes (ciphertext when
// encrypted), emptied when the keys change; its metrics and its line in the health report.

import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";

import { spoolOf } from "../../src/area/local-disk-tier.js";
import { openStorageArea } from "../../src/area/open-storage-area.js";
import type { AttachmentRead, StorageArea } from "../../src/area/storage-area.js";
import type { ResolvedConfig } from "../../src/config/types.js";
import { HealthCheck } from "../../src/daemon/health.js";
import { DaemonMetrics } from "../../src/daemon/metrics.js";
import type { ReadCache } from "../../src/stores/read-cache.js";
import { localConfig } from "../helpers/local-config.js";
import { MemoryLogger } from "../helpers/memory-logger.js";
import { metricValue, parseMetrics } from "../helpers/prometheus.js";

const MB = 1024 * 1024;
const roots: string[] = [];
after(async () => {
  for (const root of roots) await rm(root, { recursive: true, force: true });
});

interface Opened {
  area: StorageArea;
  metrics: DaemonMetrics;
  cache: ReadCache | undefined;
}

async function setUp(encrypted: boolean): Promise<{ root: string; config: ResolvedConfig }> {
  const root = await mkdtemp(join(tmpdir(), "ocs-area-cache-"));
  roots.push(root);
  await writeFile(join(root, "key"), randomBytes(32).toString("base64"));
  const config = localConfig(root, { encrypted, keyId: 2 });
  config.bridge.localDisk = {
    path: join(root, "tier"),
    writeBehind: false,
    maxPendingBytes: 10 * MB,
    uploadConcurrency: 2,
    shutdownDrainTimeoutMs: 1000,
    pendingReadWaitMs: 0,
    backlogAlertAgeMs: 60_000,
    readCacheBytes: 16 * MB,
  };
  return { root, config };
}

async function open(config: ResolvedConfig, daemon = true): Promise<Opened> {
  const metrics = new DaemonMetrics({
    section: "LocalObjectStorage",
    versions: { plugin: "p", daemon: "d" },
    format: "x",
  });
  let cache: ReadCache | undefined;
  const area = await openStorageArea(config, new MemoryLogger(), {
    wrapStore: (store, tier) => metrics.observeStore(store, tier),
    localDisk: daemon,
    readCacheOpened: (opened: ReadCache) => void metrics.watchReadCache((cache = opened)),
  });
  return { area, metrics, cache };
}

async function backendGets(metrics: DaemonMetrics): Promise<number> {
  const samples = parseMetrics(await metrics.text());
  return ["ok", "not_found"].reduce(
    (sum, outcome) =>
      sum +
      metricValue(samples, "orthanc_cloud_storage_store_requests_total", {
        tier: "object-storage",
        method: "get",
        outcome,
      }),
    0,
  );
}

/** The bytes a read holds in memory: a plaintext object's, or a decrypted one's pieces; none is empty. */
function inHand(read: AttachmentRead): Buffer {
  return Buffer.concat(read.bytes !== undefined ? [read.bytes] : (read.pieces ?? []));
}

for (const encrypted of [false, true]) {
  describe(`the read cache in the storage area (encryption ${encrypted ? "on" : "off"})`, () => {
    it("serves repeated reads without a backend request, counted by the metrics and shown by health", async () => {
      const { config } = await setUp(encrypted);
      const { area, metrics, cache } = await open(config);
      assert.ok(cache, "the daemon's area opens the cache");
      const uuid = randomUUID();
      const data = randomBytes(200_000);
      await area.create(uuid, 1, data);
      for (let i = 0; i < 3; i++) {
        const read = await area.readWhole(uuid, 1);
        assert.ok(inHand(read).equals(data));
        read.body.destroy();
      }
      const range = await area.readRange(uuid, 1, 100, 50);
      assert.ok(inHand(range).equals(data.subarray(100, 150)));
      range.body.destroy();
      assert.equal(await backendGets(metrics), 0, "every read came from the cache, filled by the create");

      const samples = parseMetrics(await metrics.text());
      assert.equal(metricValue(samples, "orthanc_cloud_storage_read_cache_hits_total"), 4);
      assert.equal(metricValue(samples, "orthanc_cloud_storage_read_cache_misses_total"), 0);
      assert.equal(metricValue(samples, "orthanc_cloud_storage_read_cache_objects"), 1);
      assert.equal(metricValue(samples, "orthanc_cloud_storage_read_cache_capacity_bytes"), 16 * MB);
      assert.ok(metricValue(samples, "orthanc_cloud_storage_read_cache_bytes") > data.length);

      const health = await new HealthCheck({
        area,
        section: "LocalObjectStorage",
        versions: { plugin: "p", daemon: "d" },
        readCache: cache,
      }).report();
      assert.deepEqual(health.readCache, { bytes: cache.stats().bytes, capacityBytes: 16 * MB, objects: 1 });

      await area.remove(uuid, 1);
      assert.equal(cache.stats().objects, 0);
      await assert.rejects(area.readWhole(uuid, 1), { code: "NOT_FOUND" });
      await area.close();
    });

    it("holds the stored bytes: the object's own, ciphertext when encrypted", async () => {
      const { root, config } = await setUp(encrypted);
      const { area } = await open(config);
      const uuid = randomUUID();
      const data = Buffer.from("a plaintext that must not reach the local disk when encrypted ".repeat(100));
      await area.create(uuid, 1, data);
      await area.close();
      const cacheFolder = join(root, "tier", "cache");
      const files = (await readdir(cacheFolder, { recursive: true, withFileTypes: true })).filter(
        (entry) => entry.isFile() && entry.name !== "IDENTITY",
      );
      assert.equal(files.length, 1);
      const [file] = files;
      assert.ok(file);
      const cached = await readFile(join(file.parentPath, file.name));
      const stored = await readFile(join(root, "objects", `${uuid}.dcm${encrypted ? ".enc" : ""}`));
      assert.ok(
        cached.subarray(0, stored.length).equals(stored),
        "the cache file starts with the stored bytes",
      );
      assert.equal(cached.includes(data.subarray(0, 40)), !encrypted);
    });
  });
}

describe("the read cache's scope", () => {
  it("is emptied at start when the master key changed", async () => {
    const { root, config } = await setUp(true);
    let { area, cache } = await open(config);
    await area.create(randomUUID(), 1, randomBytes(1000));
    await cache?.settled(); // a create's entry is written while the create returns
    assert.equal(cache?.stats().objects, 1);
    await area.close();
    ({ area, cache } = await open(config));
    assert.equal(cache?.stats().objects, 1, "kept across a restart with the same keys");
    await area.close();
    await writeFile(join(root, "key"), randomBytes(32).toString("base64"));
    ({ area, cache } = await open(config));
    assert.equal(cache?.stats().objects, 0, "emptied for another key");
    await area.close();
  });

  it("is not opened for the CLI's tools (openStorageArea without localDisk)", async () => {
    const { root, config } = await setUp(false);
    const { area, cache } = await open(config, false);
    await area.create(randomUUID(), 1, randomBytes(1000));
    assert.equal(cache, undefined);
    await assert.rejects(readdir(join(root, "tier")), { code: "ENOENT" });
    await area.close();
  });
});

describe("the read cache under the write-behind spool", () => {
  it("is filled by the spool's uploads: a read after the drain needs no request to the backend", async () => {
    const { config } = await setUp(true);
    const localDisk = config.bridge.localDisk;
    assert.ok(localDisk);
    localDisk.writeBehind = true;
    const { area, metrics, cache } = await open(config);
    assert.ok(cache);
    const spool = spoolOf(area);
    assert.ok(spool, "spool(cache(backend))");
    const uuid = randomUUID();
    const data = randomBytes(150_000);
    await area.create(uuid, 1, data);
    assert.equal(await spool.drain(10_000), true, "the spool drained");
    await cache.settled();
    assert.equal(cache.stats().objects, 1, "the upload filled the cache");
    const read = await area.readWhole(uuid, 1);
    assert.ok(inHand(read).equals(data));
    read.body.destroy();
    assert.equal(await backendGets(metrics), 0);
    assert.equal(cache.stats().hits, 1);
    await area.close();
  });
});
