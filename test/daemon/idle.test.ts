// An idle daemon sleeps: the compiled daemon, started as the bridge starts it, wakes its threads only a few
// times while no request arrives (prom-client's event-loop monitor had woken it every 10 ms), and still
// reports the event loop's delay (nodejs_eventloop_lag_*, docs/deployment.md) measured while it was busy.

import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import { Op, decodeReadyLine } from "../../src/daemon/protocol.js";
import { BridgeClient } from "../../test-support/bridge-client.js";
import { startDaemon, type StartedDaemon } from "../../test-support/daemon-process.js";
import { metricValue, parseMetrics, type Sample } from "../helpers/prometheus.js";

/** Wake-ups allowed in IDLE_MS: a few for V8's and libuv's housekeeping; the 10 ms timer made ~300. */
const MAX_WAKE_UPS = 30;
const IDLE_MS = 3000;
/** Longer than the quiet spell after which sampling stops (event-loop-delay.ts: QUIET_MS). */
const QUIET_WAIT_MS = 2500;

const LAG_METRICS = ["min", "max", "mean", "stddev", "p50", "p90", "p99"].map(
  (statistic) => `nodejs_eventloop_lag_${statistic}_seconds`,
);

/** The voluntary context switches of every thread of `pid` so far: each one a wake-up after a sleep. */
async function wakeUps(pid: number): Promise<number> {
  let total = 0;
  for (const task of await readdir(`/proc/${pid}/task`)) {
    const status = await readFile(`/proc/${pid}/task/${task}/status`, "utf8").catch(() => "");
    total += Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
  }
  return total;
}

async function idleWakeUps(pid: number): Promise<number> {
  const before = await wakeUps(pid);
  await sleep(IDLE_MS);
  return (await wakeUps(pid)) - before;
}

async function scrape(client: BridgeClient): Promise<Sample[]> {
  return parseMetrics((await client.rest("GET", "/cloud-storage/metrics")).body.toString());
}

describe("an idle daemon", () => {
  let root: string;
  let daemon: StartedDaemon;
  let client: BridgeClient;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "ocs-idle-"));
    daemon = await startDaemon({
      StorageDirectory: join(root, "OrthancStorage"),
      LocalObjectStorage: { Path: join(root, "objects") },
    });
    const ready = decodeReadyLine(`OCS ${daemon.handshake}`);
    assert.ok(ready, daemon.handshake);
    client = await BridgeClient.connect(ready.socketPath);
  });
  after(async () => {
    client?.close();
    daemon?.child.stdin.end();
    if (daemon !== undefined && (await Promise.race([daemon.exited, sleep(10_000, "late")])) === "late")
      daemon.child.kill("SIGKILL");
    await rm(root, { recursive: true, force: true });
  });

  it(`sleeps once started: fewer than ${MAX_WAKE_UPS} wake-ups in ${IDLE_MS} ms`, async () => {
    await sleep(500);
    const count = await idleWakeUps(daemon.child.pid as number);
    assert.ok(count < MAX_WAKE_UPS, `${count} wake-ups in ${IDLE_MS} ms`);
  });

  it("reports the event loop's delay sampled while requests arrive, then sleeps again once they stop", async () => {
    const data = randomBytes(100_000);
    const started = performance.now();
    while (performance.now() - started < 300) {
      const uuid = randomUUID();
      const created = await client.call(
        { op: Op.CREATE, contentType: 1, size: data.length, start: 0, uuid },
        data,
      );
      assert.equal(created.code, 0);
      const read = await client.call({ op: Op.READ_WHOLE, contentType: 1, size: 0, start: 0, uuid });
      assert.equal(read.code, 0);
    }
    const busy = await scrape(client);
    for (const name of ["nodejs_eventloop_lag_seconds", ...LAG_METRICS])
      assert.ok(
        busy.some((sample) => sample.name === name),
        `${name} is exposed`,
      );
    assert.ok(metricValue(busy, "nodejs_eventloop_lag_max_seconds") > 0, "delays sampled while busy");
    assert.ok(metricValue(busy, "nodejs_eventloop_lag_p99_seconds") > 0);

    await sleep(QUIET_WAIT_MS);
    // A scrape is a request too: it starts a sampling spell of its own, which ends QUIET_MS later.
    const quiet = await scrape(client);
    assert.ok(metricValue(quiet, "nodejs_eventloop_lag_seconds") >= 0);
    await sleep(QUIET_WAIT_MS);
    const count = await idleWakeUps(daemon.child.pid as number);
    assert.ok(count < MAX_WAKE_UPS, `${count} wake-ups in ${IDLE_MS} ms after the requests stopped`);
  });
});
