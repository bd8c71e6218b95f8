// The small parts of the storage tools, without Orthanc: bounded concurrency, plain progress lines, the run
// report and its table, and the REST client against a scripted server.

import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, it } from "node:test";

import { OrthancApiError, OrthancClient } from "../../src/ops/orthanc-api.js";
import { forEachParallel } from "../../src/ops/parallel.js";
import { createProgress } from "../../src/ops/progress.js";
import { formatTable, RunReport } from "../../src/ops/run-report.js";
import { startScriptedServer } from "../../test-support/http-recorder.js";

describe("forEachParallel", () => {
  it("never runs more than N at once, and handles every item of an async stream once", async () => {
    let running = 0;
    let peak = 0;
    const seen: number[] = [];
    async function* items(): AsyncIterable<number> {
      for (let i = 0; i < 50; i++) {
        if (i % 10 === 0) await sleep(0); // a stream that sometimes waits, as a paged listing does
        yield i;
      }
    }
    await forEachParallel(items(), 4, async (item) => {
      running++;
      peak = Math.max(peak, running);
      await sleep(item % 3);
      seen.push(item);
      running--;
    });
    assert.equal(peak, 4);
    assert.deepEqual(
      seen.sort((a, b) => a - b),
      Array.from({ length: 50 }, (_, i) => i),
    );
  });

  it("stops pulling after the first error, lets calls in flight finish, and throws it", async () => {
    const started: number[] = [];
    await assert.rejects(
      forEachParallel([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 2, async (item) => {
        started.push(item);
        await sleep(1);
        if (item === 2) throw new Error("boom");
      }),
      /boom/,
    );
    assert.ok(started.length <= 4, `started ${started.join()}`);
  });
});

describe("plain progress", () => {
  it("prints the start, a line per tenth, and the end once", () => {
    const lines: string[] = [];
    const progress = createProgress({ tty: false, print: (line) => lines.push(line) });
    progress.start("verify", 20, "resources");
    for (let i = 0; i < 20; i++) progress.tick(`${i + 1} ok`);
    progress.log("a problem");
    progress.stop();
    progress.stop();
    assert.equal(lines[0], "verify: 0/20 resources");
    assert.equal(lines[1], "verify: 2/20 resources (2 ok)");
    assert.equal(lines.filter((line) => line.startsWith("verify:")).length, 11);
    assert.deepEqual(lines.slice(-2), ["a problem", "verify: 20/20 resources (20 ok) done"]);
  });
});

describe("RunReport", () => {
  it("counts outcomes, tells problems, and writes one JSON line per record", async () => {
    const folder = await mkdtemp(join(tmpdir(), "ocs-report-"));
    try {
      const file = join(folder, "report.ndjson");
      const report = new RunReport(["ok", "missing"], ["missing"], file);
      report.add({ outcome: "ok", key: "a" });
      report.add({ outcome: "missing", key: "b" });
      report.add({ outcome: "ok", key: "c" });
      await report.close();
      assert.equal(report.problems, 1);
      assert.equal(report.summary(), "ok 2, missing 1");
      assert.deepEqual(
        (await readFile(file, "utf8"))
          .trim()
          .split("\n")
          .map((line) => JSON.parse(line) as unknown),
        [
          { outcome: "ok", key: "a" },
          { outcome: "missing", key: "b" },
          { outcome: "ok", key: "c" },
        ],
      );
      assert.deepEqual(formatTable(report.rows()), ["  ok       2", "  missing  1  problem"]);
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });
});

describe("OrthancClient", () => {
  it("sends basic auth, pages resource lists, maps 404 to null and 401 to a hint", async () => {
    const server = await startScriptedServer((req, res) => {
      const url = new URL(req.url ?? "/", "http://x");
      if (req.headers.authorization !== `Basic ${Buffer.from("admin:pw").toString("base64")}`) {
        res.writeHead(401).end();
      } else if (url.pathname === "/instances") {
        const since = Number(url.searchParams.get("since"));
        const limit = Number(url.searchParams.get("limit"));
        const all = Array.from({ length: 2500 }, (_, i) => `i${i}`);
        res
          .writeHead(200, { "Content-Type": "application/json" })
          .end(JSON.stringify(all.slice(since, since + limit)));
      } else {
        res.writeHead(404).end();
      }
    });
    try {
      const client = new OrthancClient({ url: `${server.url}/`, user: "admin", password: "pw" });
      const ids: string[] = [];
      for await (const id of client.resourceIds("instances")) ids.push(id);
      assert.equal(ids.length, 2500);
      assert.equal(new Set(ids).size, 2500);
      assert.equal(await client.attachments("instances", "gone"), null);

      const refused = new OrthancClient({ url: server.url, user: "admin", password: "wrong" });
      await assert.rejects(refused.system(), (error: unknown) => {
        assert.ok(error instanceof OrthancApiError);
        assert.equal(error.status, 401);
        assert.match(error.message, /check --user and --password/);
        return true;
      });
      assert.throws(() => new OrthancClient({ url: "localhost:8042" }), /expected http:\/\/ or https:\/\//);
    } finally {
      await server.close();
    }
  });
});
