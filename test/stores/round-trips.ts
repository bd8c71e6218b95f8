// No wasted round trips (issue 17 part 3): each operation Orthanc makes costs one request, one round trip
// and no new connection once the driver's connection is warm. Counted at a latency proxy in front of the
// real server (test-support/latency-proxy.ts), so whatever the SDK does (a HEAD or a request before the
// request, an `Expect: 100-continue` wait, a connection not reused, a retry) shows. Each driver's test file
// calls `roundTripSuite` once with a factory of a store whose endpoint is the proxy's URL.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";

import { V2RangeReader } from "../../src/area/v2-range-read.js";
import { EncryptedCodec } from "../../src/crypto/encrypted-codec.js";
import { KeyRing } from "../../src/crypto/key-ring.js";
import { MemoryBudget } from "../../src/crypto/memory-budget.js";
import type { ObjectStore } from "../../src/stores/object-store.js";
import { startLatencyProxy, type LatencyProxy, type ProxyCounts } from "../../test-support/latency-proxy.js";
import { readBody } from "./conformance.js";

export interface RoundTripTarget {
  store: ObjectStore;
  /** Remove what the suite left (bucket, container). */
  cleanup(): Promise<void>;
}

/** A few milliseconds each way: enough for an `Expect: 100-continue` wait to show as a second turn. */
const DELAY_MS = 5;
const MIB = 1024 * 1024;
/** One request, one round trip, on the connection already open. */
const ONE: ProxyCounts = { connections: 0, requests: 1, turns: 1 };

/**
 * `target` (the server's `http://host:port`) behind a latency proxy; `open(proxyUrl)` makes a store whose
 * requests go to `proxyUrl` instead.
 */
export function roundTripSuite(
  name: string,
  target: () => Promise<string>,
  open: (proxyUrl: string) => Promise<RoundTripTarget>,
): void {
  describe(`round trips per operation: ${name}`, () => {
    let proxy: LatencyProxy | undefined;
    let opened: RoundTripTarget | undefined;
    let store: ObjectStore;
    const small = randomBytes(300_000);
    // Above the AWS SDK's 2 MiB threshold for `Expect: 100-continue`, below the drivers' multipart sizes.
    const large = randomBytes(3 * MIB);

    before(async () => {
      proxy = await startLatencyProxy({ target: await target(), delayMs: DELAY_MS });
      opened = await open(proxy.url);
      store = opened.store;
      // Open the connection the operations below must reuse.
      await store.put("warm-up.dcm", small);
    });
    after(async () => {
      await opened?.store.close();
      await opened?.cleanup();
      await proxy?.stop();
    });

    /**
     * What `operation` cost at the proxy, with the request lines for the message. A read just before makes
     * sure a connection is open: a test server closes one idle for 5 s (Node's keep-alive timeout), which
     * a slow machine could reach between two tests. (Not a HEAD: the Azure SDK hands its socket back to the
     * pool a moment after a HEAD's promise resolves, so a request sent at once opens another connection.)
     */
    async function cost(operation: () => Promise<void>): Promise<{ counts: ProxyCounts; seen: string }> {
      const warm = await store.get("warm-up.dcm");
      if (warm !== null) await readBody(warm);
      const since = (proxy as LatencyProxy).counts();
      const first = (proxy as LatencyProxy).requests.length;
      await operation();
      const counts = (proxy as LatencyProxy).countsSince(since);
      const seen = (proxy as LatencyProxy).requests
        .slice(first)
        .map((request) => `${request.method} ${request.target}`)
        .join(", ");
      return { counts, seen };
    }

    async function assertOne(what: string, operation: () => Promise<void>): Promise<void> {
      const { counts, seen } = await cost(operation);
      assert.deepEqual(counts, ONE, `${what}: ${JSON.stringify(counts)} (${seen})`);
    }

    it("writes a small object in one request and one round trip, on the open connection", async () => {
      await assertOne("put 300 KB", () => store.put("small.dcm", small));
    });

    it("writes 3 MiB in one request and one round trip (no Expect: 100-continue wait)", async () => {
      await assertOne("put 3 MiB", () => store.put("large.dcm", large));
    });

    it("writes a stream of 3 MiB in one request and one round trip", async () => {
      await assertOne("putStream 3 MiB", () =>
        store.putStream(
          "streamed.dcm",
          Readable.from([large.subarray(0, MIB), large.subarray(MIB)]),
          large.length,
        ),
      );
    });

    it("reads a whole object in one request and one round trip", async () => {
      await store.put("read.dcm", small);
      let read: Buffer | undefined;
      await assertOne("whole get", async () => {
        const object = await store.get("read.dcm");
        assert.ok(object);
        read = await readBody(object);
      });
      assert.deepEqual(read, small);
    });

    it("reads a range in one request and one round trip", async () => {
      await store.put("range.dcm", small);
      let read: Buffer | undefined;
      await assertOne("range get", async () => {
        const object = await store.get("range.dcm", { start: 1000, end: 5000 });
        assert.ok(object);
        read = await readBody(object);
      });
      assert.deepEqual(read, small.subarray(1000, 5000));
    });

    it("reads a v2 object smaller than a segment cold from byte 0 in one request, whole or a small range", async () => {
      // The reader's first request reaches past the end of an object this small (the header and a full
      // segment): the store cuts it there (GetOptions.cutAtEnd) rather than refuse it and cost a second read.
      const codec = new EncryptedCodec(
        new KeyRing({ id: 1, key: randomBytes(32) }),
        new MemoryBudget(64 * MIB),
        "v2",
      );
      const attachment = { uuid: "8d3e5c1a-6f0b-4c2e-9a7d-1b2c3d4e5f60", contentType: 1 };
      const key = `${attachment.uuid}.dcm.enc`;
      await store.put(key, await codec.encode(small, key, attachment));
      for (const end of [small.length, 1000]) {
        const reader = new V2RangeReader(codec); // a new data key cache: a cold read
        let read: Uint8Array | undefined;
        await assertOne(`cold v2 read of [0, ${end})`, async () => {
          const held = await reader.read(store, key, key, attachment, 0, end);
          assert.ok(
            held !== null && held !== "whole",
            `[0, ${end}) read as ${held === null ? "missing" : "not v2"}`,
          );
          read = Buffer.concat(held.pieces);
          held.release();
        });
        assert.deepEqual(read, small.subarray(0, end));
      }
    });

    it("answers a missing object in one request and one round trip", async () => {
      await assertOne("get of a missing object", async () => {
        assert.equal(await store.get("missing.dcm"), null);
      });
    });

    it("deletes in one request and one round trip", async () => {
      await store.put("deleted.dcm", small);
      await assertOne("delete", () => store.delete("deleted.dcm"));
    });

    it("keeps one connection for a run of uploads and reads, one request and one round trip each", async () => {
      const { counts, seen } = await cost(async () => {
        for (let i = 0; i < 10; i++) {
          await store.put(`run-${i}.dcm`, small);
          const object = await store.get(`run-${i}.dcm`);
          assert.ok(object);
          await readBody(object);
        }
      });
      assert.deepEqual(counts, { connections: 0, requests: 20, turns: 20 }, seen);
    });
  });
}
