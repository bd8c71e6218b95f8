// The S3 driver against a server that hangs: RequestTimeout (per try) and ConnectionTimeout are honoured, so a
// stuck S3 endpoint fails each operation in bounded time, with a message naming the option, instead of
// holding an Orthanc thread forever. No S3 server is needed: a TCP server that never answers is the fault,
// and a frozen process whose listening queue is full one that never completes a connection.

import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { connect, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";

import type { S3Options } from "../../src/config/types.js";
import { isStorageError } from "../../src/errors.js";
import { createS3Store } from "../../src/stores/s3.js";
import type { ObjectStore } from "../../src/stores/object-store.js";
import { testS3Options } from "../../test-support/rgw.js";
import { MemoryLogger } from "../helpers/memory-logger.js";
import { startSilentServer, type SilentServer } from "../helpers/silent-server.js";
import { readBody } from "./conformance.js";

const REQUEST_TIMEOUT_MS = 1000;
/** Far above what one try plus the SDK's backoff takes; only there so that a hang fails instead of blocking. */
const BOUND_MS = 30_000;

function options(endpoint: string, maxRetries: number, connectTimeoutMs = 5_000): S3Options {
  return testS3Options(
    { endpoint, accessKey: "AKIAHANGINGSERVER000", secretKey: "secret", bucketName: "hanging-bucket" },
    { connectTimeoutMs, requestTimeoutMs: REQUEST_TIMEOUT_MS, maxRetries },
  );
}

/** The operation's error, and how long it took to come (never a pass on time alone: the error is checked). */
async function failure(operation: () => Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const started = Date.now();
  try {
    await operation();
  } catch (error) {
    return { error, ms: Date.now() - started };
  }
  throw new Error("the operation succeeded against a server that never answers");
}

function assertTimedOut(error: unknown, ms: number, what: string): void {
  assert.ok(isStorageError(error), `${what}: ${String(error)}`);
  assert.equal(error.code, "STORE_FAILED");
  assert.match(error.message, /no answer from http:\/\/127\.0\.0\.1:\d+ in time/, what);
  assert.match(error.message, /RequestTimeout/, what);
  assert.match(error.message, /hanging-bucket/, `${what} names the object`);
  assert.ok(ms < BOUND_MS, `${what} failed after ${ms} ms`);
}

describe("s3 driver against a server that never answers", { timeout: 60_000 }, () => {
  let server: SilentServer;
  let store: ObjectStore;
  before(async () => {
    server = await startSilentServer();
    store = createS3Store(options(server.endpoint, 0), new MemoryLogger());
  });
  after(async () => {
    await store.close();
    await server.close();
  });

  for (const [name, operation] of [
    ["put", (s: ObjectStore) => s.put("a.dcm", new Uint8Array(1000))],
    ["get", (s: ObjectStore) => s.get("a.dcm")],
    ["get range", (s: ObjectStore) => s.get("a.dcm", { start: 0, end: 10 })],
    ["head", (s: ObjectStore) => s.head("a.dcm")],
    ["delete", (s: ObjectStore) => s.delete("a.dcm")],
    [
      "list",
      async (s: ObjectStore) => {
        for await (const info of s.list("")) void info;
      },
    ],
  ] as const) {
    it(`fails a ${name} once RequestTimeout has passed, naming the option`, async (t) => {
      const { error, ms } = await failure(() => operation(store));
      assertTimedOut(error, ms, name);
      t.diagnostic(`${name}: failed after ${ms} ms (RequestTimeout ${REQUEST_TIMEOUT_MS} ms)`);
    });
  }

  it("gives each retry its own RequestTimeout: MaxRetries 1 makes two tries", async (t) => {
    const retrying = createS3Store(options(server.endpoint, 1), new MemoryLogger());
    try {
      const before = server.connections();
      const { error, ms } = await failure(() => retrying.get("b.dcm"));
      assertTimedOut(error, ms, "get with one retry");
      assert.equal(server.connections() - before, 2, "two tries, each on a fresh connection");
      t.diagnostic(`two tries failed after ${ms} ms`);
    } finally {
      await retrying.close();
    }
  });
});

describe("s3 driver against a server that stalls in the middle of a body", { timeout: 60_000 }, () => {
  let server: SilentServer;
  let store: ObjectStore;
  before(async () => {
    server = await startSilentServer({
      stallAfter:
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\nfirst bytes",
    });
    store = createS3Store(options(server.endpoint, 0), new MemoryLogger());
  });
  after(async () => {
    await store.close();
    await server.close();
  });

  it("ends the body with an error once it has been idle for RequestTimeout", async (t) => {
    const object = await store.get("c.dcm");
    assert.ok(object !== null);
    assert.equal(object.size, 1000);
    const started = Date.now();
    await assert.rejects(readBody(object), /timed out|RequestTimeout|aborted/i);
    const ms = Date.now() - started;
    assert.ok(ms < BOUND_MS, `the stalled body ended after ${ms} ms`);
    t.diagnostic(`stalled body ended after ${ms} ms`);
  });
});

/** Whether a TCP connection to the port completes within `ms`. */
async function connects(port: number, ms: number, held: Socket[]): Promise<boolean> {
  const socket = connect(port, "127.0.0.1");
  socket.on("error", () => undefined);
  held.push(socket);
  const timer = new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), ms).unref());
  return (
    (await Promise.race([once(socket, "connect").then(() => "connected" as const), timer])) === "connected"
  );
}

describe("s3 driver against a server that never completes a connection", { timeout: 60_000 }, () => {
  // A child that listens with a backlog of 1 and is then frozen (SIGSTOP): once its queue holds what it can,
  // the kernel drops every new SYN, so a connection attempt waits until ConnectionTimeout ends it.
  let child: ChildProcess;
  let port: number;
  const held: Socket[] = [];
  before(async () => {
    child = spawn(
      process.execPath,
      [
        "-e",
        `require("node:net").createServer().listen({ port: 0, host: "127.0.0.1", backlog: 1 }, function () {
          console.log(this.address().port);
        });`,
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    const [line] = (await once(child.stdout as NodeJS.ReadableStream, "data")) as [Buffer];
    port = Number(line.toString().trim());
    child.kill("SIGSTOP");
    let filled = false;
    for (let attempt = 0; attempt < 8 && !filled; attempt++) filled = !(await connects(port, 500, held));
    assert.ok(filled, "the frozen listener's queue filled up");
  });
  after(async () => {
    for (const socket of held) socket.destroy();
    child.kill("SIGKILL");
    if (child.exitCode === null && child.signalCode === null) await once(child, "exit");
  });

  it("fails a get once ConnectionTimeout has passed, naming the options", async (t) => {
    const store = createS3Store(options(`http://127.0.0.1:${port}`, 0, 1000), new MemoryLogger());
    try {
      const { error, ms } = await failure(() => store.get("d.dcm"));
      assert.ok(isStorageError(error), String(error));
      assert.match(
        error.message,
        /did not establish a connection .*within the configured timeout of 1000 ms/,
      );
      assert.match(error.message, /ConnectionTimeout/);
      assert.ok(ms < BOUND_MS, `failed after ${ms} ms`);
      t.diagnostic(`get: failed after ${ms} ms (ConnectionTimeout 1000 ms)`);
    } finally {
      await store.close();
    }
  });
});
