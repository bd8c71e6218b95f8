import assert from "node:assert/strict";
import { describe, it } from "node:test";

import type { HttpMethodName, RestRequest } from "../../src/daemon/protocol.js";
import { RestRouter, type RestRoute } from "../../src/daemon/rest-router.js";
import { noCallbacks } from "../helpers/no-callbacks.js";
import { MemoryLogger } from "../helpers/memory-logger.js";

function request(method: HttpMethodName, url: string): RestRequest {
  return { method, url, groups: [], getArguments: [], headers: [], body: Buffer.alloc(0) };
}

const health: RestRoute = {
  pattern: "/cloud-storage/health",
  methods: { GET: () => Promise.resolve({ status: 200, contentType: "application/json", body: "{}" }) },
};

describe("REST router", () => {
  it("answers a route's method with its handler's status, content type and body", async () => {
    const router = new RestRouter([health], new MemoryLogger());
    assert.deepEqual(await router.handle(request("GET", "/cloud-storage/health"), noCallbacks), {
      status: 200,
      contentType: "application/json",
      allow: "",
      body: Buffer.from("{}"),
    });
  });

  it("answers 405 with the allowed methods to any other method", async () => {
    const router = new RestRouter([health], new MemoryLogger());
    for (const method of ["POST", "PUT", "DELETE"] as const) {
      const answer = await router.handle(request(method, "/cloud-storage/health"), noCallbacks);
      assert.equal(answer.status, 405, method);
      assert.equal(answer.allow, "GET");
    }
  });

  it("matches the whole path, as Orthanc does", async () => {
    const router = new RestRouter([health], new MemoryLogger());
    for (const url of ["/cloud-storage/health/", "/x/cloud-storage/health", "/cloud-storage/metrics"]) {
      const answer = await router.handle(request("GET", url), noCallbacks);
      assert.equal(answer.status, 404, url);
      assert.match(answer.body.toString(), /no route/);
    }
  });

  it("turns a failing handler into a 500 that says why, and logs it", async () => {
    const logger = new MemoryLogger();
    const failing: RestRoute = {
      pattern: "/cloud-storage/metrics",
      methods: { GET: () => Promise.reject(new Error("collector broke")) },
    };
    const answer = await new RestRouter([failing], logger).handle(
      request("GET", "/cloud-storage/metrics"),
      noCallbacks,
    );
    assert.equal(answer.status, 500);
    assert.match(answer.body.toString(), /GET \/cloud-storage\/metrics: collector broke/);
    assert.ok(logger.lines.some((l) => l.level === "error" && l.message.includes("collector broke")));
  });

  it("refuses a route the bridge does not register", () => {
    const stray = { pattern: "/elsewhere", methods: {} } as unknown as RestRoute;
    assert.throws(() => new RestRouter([stray], new MemoryLogger()), /not in REST_ROUTES/);
  });
});
