// The latency proxy of the tests and benches (test-support/latency-proxy.ts): it delays each direction by
// its delay (and a new connection by a handshake), forwards bytes exactly, in order, with back-pressure and
// half-close, and counts connections, HTTP requests and client turns.

import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { Agent, createServer as createHttpServer, request, type Server as HttpServer } from "node:http";
import { connect, createServer, type Server, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";

import { startLatencyProxy, type LatencyProxy } from "../../test-support/latency-proxy.js";

const MIB = 1024 * 1024;
/** Each way: a 60 ms round trip, long enough to stand out of a busy machine's scheduling noise. */
const DELAY_MS = 30;
/** Generous: the machine is shared; the point is that the delay is added, not doubled or lost. */
const SLACK_MS = 400;
/** The proxy's window in the raw TCP tests: small, so that back-pressure shows early. */
const WINDOW = MIB;

async function listen<T extends Server | HttpServer>(server: T): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const address = server.address();
  if (typeof address !== "object" || address === null) throw new Error("no address");
  return address.port;
}

function close(server: Server | HttpServer): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

function connectTo(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port, allowHalfOpen: true, noDelay: true });
    socket.once("connect", () => resolve(socket));
    socket.once("error", reject);
  });
}

/** Send `message` and resolve with the ms until the first byte of the answer. */
function timeEcho(socket: Socket, message: string): Promise<number> {
  return new Promise((resolve) => {
    const started = performance.now();
    socket.once("data", () => resolve(performance.now() - started));
    socket.write(message);
  });
}

/** Everything `socket` receives until the far side ends, with a digest. */
function receiveAll(socket: Socket): Promise<{ bytes: number; sha256: string }> {
  return new Promise((resolve, reject) => {
    const hash = createHash("sha256");
    let bytes = 0;
    socket.on("data", (chunk: Buffer) => {
      hash.update(chunk);
      bytes += chunk.length;
    });
    socket.once("end", () => resolve({ bytes, sha256: hash.digest("hex") }));
    socket.once("error", reject);
  });
}

describe("latency proxy over a raw TCP echo server", () => {
  let echo: Server;
  let proxy: LatencyProxy;
  /** Each connection the echo server accepted: to hold the reading of one back. */
  const accepted: Socket[] = [];
  before(async () => {
    // Echoes every byte; ends its half once the client has ended its own and everything went back.
    echo = createServer({ allowHalfOpen: true }, (socket) => {
      accepted.push(socket);
      socket.pipe(socket);
    });
    const port = await listen(echo);
    proxy = await startLatencyProxy({
      target: { host: "127.0.0.1", port },
      delayMs: DELAY_MS,
      windowBytes: WINDOW,
    });
  });
  after(async () => {
    await proxy?.stop();
    for (const socket of accepted) socket.destroy();
    if (echo !== undefined) await close(echo);
  });

  it("delays a round trip by twice the delay, and a new connection's first one by a handshake more", async () => {
    const socket = await connectTo(proxy.port);
    try {
      const first = await timeEcho(socket, "first");
      const warm = await timeEcho(socket, "second");
      assert.ok(warm >= 2 * DELAY_MS - 1, `a warm round trip took ${warm.toFixed(1)} ms`);
      assert.ok(warm < 2 * DELAY_MS + SLACK_MS, `a warm round trip took ${warm.toFixed(1)} ms`);
      // The handshake is counted from the proxy's accept, which this process may see a little after its
      // connect: a margin of a few ms, still far above a round trip without the handshake (2 * DELAY_MS).
      assert.ok(first >= 4 * DELAY_MS - 15, `the first round trip took ${first.toFixed(1)} ms`);
    } finally {
      socket.destroy();
    }
  });

  it("forwards 48 MiB both ways byte for byte, then the client's half-close, then the server's", async () => {
    const socket = await connectTo(proxy.port);
    const data = randomBytes(48 * MIB);
    const received = receiveAll(socket);
    // In uneven pieces, then the client's FIN: the echo server answers the FIN with its own.
    for (let offset = 0; offset < data.length;) {
      const size = Math.min(data.length - offset, 1 + ((offset * 7919) % (3 * MIB)));
      socket.write(data.subarray(offset, offset + size));
      offset += size;
    }
    socket.end();
    const answer = await received;
    assert.equal(answer.bytes, data.length);
    assert.equal(answer.sha256, createHash("sha256").update(data).digest("hex"));
    await new Promise((resolve) => socket.once("close", resolve));
  });

  it("applies back-pressure: with the server not reading, the client's writes stay in its own buffer", async () => {
    const before = accepted.length;
    const socket = await connectTo(proxy.port);
    try {
      socket.write("hello");
      // Wait until the echo server holds this connection, then stop it reading.
      const deadline = Date.now() + 5000;
      while (accepted.length === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      const server = accepted[before];
      assert.ok(server, "the echo server never saw the connection");
      server.unpipe(server);
      server.pause();
      const data = randomBytes(96 * MIB);
      socket.write(data);
      await new Promise((resolve) => setTimeout(resolve, 10 * DELAY_MS + 300));
      // The proxy held at most its window and the chunk that crossed it (Node reads 64 KiB at a time);
      // kernel buffers on the way (their size depends on the machine) held more, and the client the rest.
      const highWater = proxy.heldHighWater();
      assert.ok(highWater <= WINDOW + 64 * 1024, `the proxy held ${(highWater / MIB).toFixed(1)} MiB`);
      assert.ok(socket.writableLength > 0, "the client could write everything: nothing pushed back");
      // And once the server reads again, everything goes through.
      const echoed = new Promise<number>((resolve) => {
        let bytes = 0;
        socket.on("data", (chunk: Buffer) => {
          bytes += chunk.length;
          if (bytes === data.length + 5) resolve(bytes);
        });
      });
      server.pipe(server);
      assert.equal(await echoed, data.length + 5);
    } finally {
      socket.destroy();
    }
  });

  it("forwards the target's close as a half-close, after the delay", async () => {
    const socket = await connectTo(proxy.port);
    const closed = new Promise((resolve) => socket.once("close", resolve));
    socket.write("x");
    await new Promise((resolve) => socket.once("data", resolve));
    const started = performance.now();
    const ended = new Promise((resolve) => socket.once("end", resolve));
    accepted.at(-1)?.end();
    await ended;
    assert.ok(performance.now() - started >= DELAY_MS - 1, "the end came before the delay");
    socket.end();
    await closed;
  });

  it("resets the client when the target resets the connection", async () => {
    const socket = await connectTo(proxy.port);
    const closed = new Promise((resolve) => socket.once("close", resolve));
    socket.on("error", () => undefined);
    socket.write("x");
    await new Promise((resolve) => socket.once("data", resolve));
    accepted.at(-1)?.resetAndDestroy();
    await closed;
    assert.equal(socket.readableEnded, false, "a reset is not a clean end");
  });
});

describe("latency proxy: counts of HTTP requests, connections and round trips", () => {
  let http: HttpServer;
  let proxy: LatencyProxy;
  before(async () => {
    http = createHttpServer((req, res) => {
      req.resume();
      req.once("end", () => res.end("ok"));
    });
    proxy = await startLatencyProxy({ target: `http://127.0.0.1:${await listen(http)}`, delayMs: 5 });
  });
  after(async () => {
    await proxy?.stop();
    if (http !== undefined) {
      http.closeAllConnections();
      await close(http);
    }
  });

  function send(agent: Agent, method: string, path: string, headers: Record<string, string> = {}) {
    return new Promise<void>((resolve, reject) => {
      const req = request({ host: "127.0.0.1", port: proxy.port, method, path, agent, headers }, (res) => {
        res.resume();
        res.once("end", resolve);
      });
      req.once("error", reject);
      if (headers.Expect === "100-continue") {
        req.once("continue", () => req.end("body"));
        req.flushHeaders();
      } else {
        req.end(method === "PUT" ? "body" : undefined);
      }
    });
  }

  it("one connection, one request and one turn per request on a keep-alive agent", async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const start = proxy.counts();
      await send(agent, "PUT", "/bucket/a?x-id=PutObject");
      await send(agent, "GET", "/bucket/a");
      assert.deepEqual(proxy.countsSince(start), { connections: 1, requests: 2, turns: 2 });
      assert.deepEqual(
        proxy.requests.slice(-2).map((r) => `${r.method} ${r.target}`),
        ["PUT /bucket/a?x-id=PutObject", "GET /bucket/a"],
      );
    } finally {
      agent.destroy();
    }
  });

  it("an Expect: 100-continue request is one request but two turns; a new agent, a new connection", async () => {
    const agent = new Agent({ keepAlive: true });
    try {
      const start = proxy.counts();
      await send(agent, "PUT", "/bucket/b", { Expect: "100-continue", "Content-Length": "4" });
      assert.deepEqual(proxy.countsSince(start), { connections: 1, requests: 1, turns: 2 });
    } finally {
      agent.destroy();
    }
  });
});
