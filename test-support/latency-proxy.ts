// A TCP proxy that adds network latency in front of a test server (this kernel has no netem and no veth):
// it listens on 127.0.0.1 on a free port, forwards every connection to the target, and holds each chunk
// `delayMs` in each direction, so `delayMs: 10` is a 20 ms round trip. A new connection pays the TCP
// handshake's round trip too: its first bytes reach the target one round trip late. Byte order and
// back-pressure are kept (a direction with too much in flight pauses its reader), and a half-close travels
// with the same delay as the bytes before it.
//
// It also counts what a driver's efficiency depends on: connections opened, HTTP requests (a request line at
// the start of a client's turn), and round trips (turns: the client speaking again after the server
// answered, which an `Expect: 100-continue` exchange or a request before the request costs). Plain TCP: an
// HTTPS target is proxied, but its requests are not counted.

import { createServer, connect, type Server, type Socket } from "node:net";

import type { TestServer } from "./bucket-fixture.js";

export interface LatencyProxyOptions {
  /** Where connections go: `http://host:port` (the path, if any, is ignored) or `{ host, port }`. */
  target: string | { host: string; port: number };
  /** Delay added in each direction, in milliseconds: the round trip grows by twice this. */
  delayMs: number;
  /** Bytes held in one direction before its reader is paused (the window of this link). */
  windowBytes?: number;
}

/** One HTTP request seen on its way to the target. */
export interface ProxiedRequest {
  /** Which connection carried it: 1 for the first accepted, 2 for the next... */
  connection: number;
  method: string;
  /** The request target, as sent: path and query. */
  target: string;
}

export interface ProxyCounts {
  /** Connections accepted. */
  connections: number;
  /** HTTP requests forwarded. */
  requests: number;
  /** Client turns: bursts of client bytes each following an answer of the server (or opening a connection). */
  turns: number;
}

export interface LatencyProxy extends TestServer {
  /** `http://127.0.0.1:PORT`: put it where the target's URL went. */
  url: string;
  port: number;
  /** Every request forwarded, in order. */
  readonly requests: readonly ProxiedRequest[];
  /** What was seen since start. */
  counts(): ProxyCounts;
  /** The counts since `since` (an earlier counts()), for one operation. */
  countsSince(since: ProxyCounts): ProxyCounts;
  /** The most bytes one direction of one connection ever held (read, not yet written on): the window's proof. */
  heldHighWater(): number;
  /** Close the listener and every connection through it. Safe to call more than once. */
  stop(): Promise<void>;
}

/** How much one direction may hold before its reader pauses: more than a round trip of a fast disk. */
const DEFAULT_WINDOW_BYTES = 4 * 1024 * 1024;
/** An HTTP/1.x request line, at the start of a client's turn. */
const requestLine = /^([A-Z]+) (\S+) HTTP\/1\.[01]\r\n/;
/** A request line longer than this is not looked for: the turn is counted, not the request. */
const MAX_REQUEST_LINE = 16 * 1024;

/** Start the proxy; resolves once it listens. */
export async function startLatencyProxy(options: LatencyProxyOptions): Promise<LatencyProxy> {
  const target =
    typeof options.target === "string"
      ? { host: new URL(options.target).hostname, port: Number(new URL(options.target).port) }
      : options.target;
  const window = options.windowBytes ?? DEFAULT_WINDOW_BYTES;
  const sockets = new Set<Socket>();
  const requests: ProxiedRequest[] = [];
  const totals: ProxyCounts = { connections: 0, requests: 0, turns: 0 };
  const held = { highWater: 0 };

  const server: Server = createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
    const id = ++totals.connections;
    const accepted = performance.now();
    const upstream = connect({ ...target, allowHalfOpen: true, noDelay: true });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.once("close", () => sockets.delete(socket));
    }
    // Either side failing or closing abruptly resets the other at once (an RST, not a FIN: not a clean end).
    const abort = (): void => {
      for (const socket of [client, upstream]) if (!socket.destroyed) socket.resetAndDestroy();
    };
    client.once("error", abort);
    upstream.once("error", abort);
    const turns = new TurnCounter(id, requests, totals);
    // The handshake: a client's first bytes reach the target a round trip after it connected.
    const handshakeDone = accepted + 2 * options.delayMs;
    delayedPipe(client, upstream, options.delayMs, window, handshakeDone, abort, held, (chunk) =>
      turns.fromClient(chunk),
    );
    delayedPipe(upstream, client, options.delayMs, window, 0, abort, held, () => turns.fromServer());
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const address = server.address();
  if (typeof address !== "object" || address === null) throw new Error("latency proxy: no address");

  let stopping: Promise<void> | undefined;
  const proxy: LatencyProxy = {
    url: `http://127.0.0.1:${address.port}`,
    port: address.port,
    requests,
    counts: () => ({ ...totals }),
    countsSince: (since) => ({
      connections: totals.connections - since.connections,
      requests: totals.requests - since.requests,
      turns: totals.turns - since.turns,
    }),
    heldHighWater: () => held.highWater,
    stop: () =>
      (stopping ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      })),
    [Symbol.asyncDispose]: () => proxy.stop(),
  };
  return proxy;
}

/**
 * Forwards `from` to `to`, each chunk `delayMs` after it arrived (and not before `notBefore`, a
 * performance.now() time), then the end of `from` as `to.end()`. Pauses `from` while more than `window`
 * bytes are held or unwritten.
 */
function delayedPipe(
  from: Socket,
  to: Socket,
  delayMs: number,
  window: number,
  notBefore: number,
  abort: () => void,
  stats: { highWater: number },
  observe: (chunk: Buffer) => void,
): void {
  // Chunks (or null: the end) in arrival order, each with the time it is due; the delay is constant, so the
  // due times only grow and one timer for the head keeps the order.
  const queue: { due: number; chunk: Buffer | null }[] = [];
  let held = 0;
  let timer: NodeJS.Timeout | undefined;

  const flush = (): void => {
    timer = undefined;
    const now = performance.now();
    while (queue.length > 0 && (queue[0] as { due: number }).due <= now + 0.5) {
      const { chunk } = queue.shift() as { chunk: Buffer | null };
      if (to.destroyed) return;
      if (chunk === null) {
        to.end();
        return;
      }
      held -= chunk.length;
      to.write(chunk);
    }
    schedule();
    resumeIfRoom();
  };
  const schedule = (): void => {
    if (timer !== undefined || queue.length === 0) return;
    timer = setTimeout(flush, Math.max(0, (queue[0] as { due: number }).due - performance.now()));
  };
  const resumeIfRoom = (): void => {
    if (from.isPaused() && held + to.writableLength <= window) from.resume();
  };

  from.on("data", (chunk: Buffer) => {
    observe(chunk);
    const now = performance.now();
    queue.push({ due: Math.max(now, notBefore) + delayMs, chunk });
    held += chunk.length;
    stats.highWater = Math.max(stats.highWater, held + to.writableLength);
    schedule();
    if (held + to.writableLength > window) from.pause();
  });
  to.on("drain", resumeIfRoom);
  from.once("end", () => {
    queue.push({ due: Math.max(performance.now(), notBefore) + delayMs, chunk: null });
    schedule();
  });
  // Closed without an end: a reset or a destroy; the other side is reset too.
  from.once("close", () => {
    if (!from.readableEnded) abort();
  });
  to.once("close", () => {
    if (timer !== undefined) clearTimeout(timer);
    queue.length = 0;
  });
}

/** Counts the client's turns and the HTTP requests that start them, on one connection. */
class TurnCounter {
  /** Whether the server spoke since the client last did: the next client bytes start a turn. */
  private serverSpoke = true;
  /** The start of the current turn, until its request line (or that there is none) is known. */
  private head: Buffer | undefined;

  constructor(
    private readonly connection: number,
    private readonly requests: ProxiedRequest[],
    private readonly totals: ProxyCounts,
  ) {}

  fromClient(chunk: Buffer): void {
    if (this.serverSpoke) {
      this.serverSpoke = false;
      this.totals.turns++;
      this.head = Buffer.alloc(0);
    }
    if (this.head === undefined) return;
    this.head = Buffer.concat([this.head, chunk]);
    const end = this.head.indexOf("\r\n");
    if (end === -1 && this.head.length < MAX_REQUEST_LINE) return;
    const match = requestLine.exec(this.head.subarray(0, end + 2).toString("latin1"));
    if (match !== null) {
      this.totals.requests++;
      this.requests.push({ connection: this.connection, method: match[1] ?? "", target: match[2] ?? "" });
    }
    this.head = undefined;
  }

  fromServer(): void {
    this.serverSpoke = true;
  }
}
