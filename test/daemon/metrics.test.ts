// The daemon's metrics, counted where it answers the bridge: requests, bytes, errors by code, store
// requests, the memory budget; read back through the REST operation, as Orthanc's clients would.

import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { openStorageArea } from "../../src/area/open-storage-area.js";
import { EncryptedCodec } from "../../src/crypto/encrypted-codec.js";
import { DaemonMetrics } from "../../src/daemon/metrics.js";
import { Op, OrthancCode, RequestFlag } from "../../src/daemon/protocol.js";
import { RestRouter } from "../../src/daemon/rest-router.js";
import { listenForBridge, type BridgeServer } from "../../src/daemon/server.js";
import { BridgeClient } from "../../test-support/bridge-client.js";
import { localConfig } from "../helpers/local-config.js";
import { MemoryLogger } from "../helpers/memory-logger.js";
import { metricValue, parseMetrics, type Sample } from "../helpers/prometheus.js";

const SECTION = "LocalObjectStorage";

async function scrape(client: BridgeClient): Promise<Sample[]> {
  const answer = await client.rest("GET", "/cloud-storage/metrics");
  assert.equal(answer.status, 200);
  assert.match(answer.contentType, /^text\/plain; version=0\.0\.4/);
  return parseMetrics(answer.body.toString());
}

const byOperation = (operation: string) => ({ section: SECTION, operation });

for (const encrypted of [false, true]) {
  describe(`daemon metrics (encryption ${encrypted ? "on" : "off"})`, () => {
    let root: string;
    let server: BridgeServer;
    let socketPath: string;
    let client: BridgeClient;

    before(async () => {
      root = await mkdtemp(join(tmpdir(), "ocs-metrics-"));
      await writeFile(join(root, "key"), randomBytes(32).toString("base64"));
      const config = localConfig(root, { encrypted, keyId: 3 });
      const logger = new MemoryLogger();
      const metrics = new DaemonMetrics({
        section: SECTION,
        versions: { plugin: "p1", daemon: "d1" },
        format: encrypted ? "A1" : "plaintext",
      });
      const area = await openStorageArea(config, logger, {
        wrapStore: (store, tier) => metrics.observeStore(store, tier),
      });
      if (area.codec instanceof EncryptedCodec) metrics.watchMemoryBudget(area.codec.budget);
      const router = new RestRouter([metrics.route()], logger);
      socketPath = join(root, "bridge.sock");
      server = await listenForBridge(socketPath, area, logger, { router, observer: metrics });
      client = await BridgeClient.connect(socketPath);
    });
    after(async () => {
      client.close();
      await server.close();
      await rm(root, { recursive: true, force: true });
    });

    it("starts with every operation at zero, and describes the daemon", async () => {
      const samples = await scrape(client);
      for (const operation of ["create", "read", "read_range", "remove"]) {
        assert.ok(
          samples.some(
            (s) => s.name === "orthanc_cloud_storage_requests_total" && s.labels.operation === operation,
          ),
          operation,
        );
        assert.equal(metricValue(samples, "orthanc_cloud_storage_requests_total", byOperation(operation)), 0);
      }
      assert.equal(
        metricValue(samples, "orthanc_cloud_storage_info", {
          section: SECTION,
          format: encrypted ? "A1" : "plaintext",
          plugin_version: "p1",
          daemon_version: "d1",
        }),
        1,
      );
      assert.ok(metricValue(samples, "process_start_time_seconds") > 1_600_000_000);
      assert.equal(
        samples.some((s) => s.name === "orthanc_cloud_storage_memory_budget_capacity_bytes"),
        encrypted,
        "the budget gauges exist with encryption only",
      );
    });

    it("counts requests, bytes, latencies and errors by code exactly", async () => {
      const sizes = [0, 1, 1000, 70_000];
      const uuids = sizes.map(() => randomUUID());
      for (const [i, size] of sizes.entries()) {
        const data = randomBytes(size);
        const created = await client.call(
          { op: Op.CREATE, contentType: 1, size, start: 0, uuid: uuids[i]! },
          data,
        );
        assert.equal(created.code, 0);
      }
      // Every other read may be a file answer: plaintext ones take the daemon's direct path, counted alike.
      for (const [i, uuid] of uuids.entries()) {
        const flags = i % 2 === 1 ? RequestFlag.FILE_ANSWER : 0;
        assert.equal(
          (await client.call({ op: Op.READ_WHOLE, contentType: 1, size: 0, start: 0, uuid, flags })).code,
          0,
        );
      }
      const range = await client.call({
        op: Op.READ_RANGE,
        contentType: 1,
        size: 10,
        start: 5,
        uuid: uuids[3]!,
        flags: RequestFlag.FILE_ANSWER,
      });
      const missing = { op: Op.READ_WHOLE, contentType: 1, size: 0, start: 0, uuid: randomUUID() } as const;
      assert.equal((await client.call(missing)).code, OrthancCode.InexistentFile);
      const badUuid = { op: Op.REMOVE, contentType: 1, size: 0, start: 0, uuid: "not-a-uuid" } as const;
      assert.equal((await client.call(badUuid)).code, OrthancCode.ParameterOutOfRange);
      for (const uuid of uuids.slice(0, 2)) {
        assert.equal((await client.call({ op: Op.REMOVE, contentType: 1, size: 0, start: 0, uuid })).code, 0);
      }

      const samples = await scrape(client);
      const total = sizes.reduce((a, b) => a + b, 0);
      const value = (name: string, labels: Record<string, string>) =>
        metricValue(samples, `orthanc_cloud_storage_${name}`, labels);
      assert.equal(value("requests_total", byOperation("create")), 4);
      assert.equal(value("received_bytes_total", byOperation("create")), total);
      assert.equal(value("requests_total", byOperation("read")), 5, "4 reads and one miss");
      assert.equal(value("sent_bytes_total", byOperation("read")), total);
      assert.equal(value("errors_total", { ...byOperation("read"), code: "NOT_FOUND" }), 1);
      assert.equal(range.code, 0);
      assert.equal(value("requests_total", byOperation("read_range")), 1);
      assert.equal(value("sent_bytes_total", byOperation("read_range")), 10);
      assert.equal(value("requests_total", byOperation("remove")), 3);
      assert.equal(value("errors_total", { ...byOperation("remove"), code: "INVALID_ATTACHMENT" }), 1);
      assert.equal(value("request_duration_seconds_count", byOperation("create")), 4);
      assert.equal(value("request_duration_seconds_bucket", { ...byOperation("create"), le: "+Inf" }), 4);
      assert.ok(value("request_duration_seconds_sum", byOperation("create")) > 0);
      assert.equal(value("request_duration_seconds_count", byOperation("read")), 5);
      assert.equal(value("request_duration_seconds_count", byOperation("read_range")), 1);

      // What the store sent: one put per create, one get per read or range read, one per miss, one delete
      // per remove (a refused uuid never reaches it).
      const store = (method: string, outcome: string) =>
        value("store_requests_total", { tier: "object-storage", driver: "folder", method, outcome });
      assert.equal(store("put", "ok"), 4);
      assert.equal(store("get", "ok"), 5);
      assert.equal(store("get", "not_found"), 1);
      assert.equal(store("delete", "ok"), 2);
      const getDurations = { tier: "object-storage", driver: "folder", method: "get" };
      assert.equal(
        value("store_request_duration_seconds_count", getDurations),
        6,
        "the 5 found and the miss",
      );
      assert.ok(value("bridge_connections", {}) >= 1);
      if (encrypted) {
        assert.equal(value("memory_budget_capacity_bytes", {}), 64 * 1024 * 1024);
        assert.equal(value("memory_budget_in_use_bytes", {}), 0, "every reservation was given back");
      }
    });

    it("does not count REST requests as storage requests, and answers 405 to other methods", async () => {
      const before = metricValue(
        await scrape(client),
        "orthanc_cloud_storage_requests_total",
        byOperation("read"),
      );
      const answer = await client.rest("POST", "/cloud-storage/metrics");
      assert.equal(answer.status, 405);
      assert.equal(answer.allow, "GET");
      const after = metricValue(
        await scrape(client),
        "orthanc_cloud_storage_requests_total",
        byOperation("read"),
      );
      assert.equal(after, before);
    });

    it("answers a malformed REST payload with an error code and a message", async () => {
      const raw = await BridgeClient.connect(socketPath);
      const payload = Buffer.alloc(3);
      const response = await raw.call({ op: Op.REST, contentType: 0, size: 3, start: 0, uuid: "" }, payload);
      assert.equal(response.code, OrthancCode.InternalError);
      assert.match(response.data.toString(), /REST request: .*method needs 4 bytes/);
      raw.close();
    });
  });
}
