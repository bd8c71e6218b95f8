// The benchmark's HTTP client for Orthanc's REST API, on node:http so that the connection policy is explicit:
// a new connection per request (`Connection: close`, as many scripts and proxies do) or at most
// `connections` keep-alive connections, reused from request to request. The same client serves every setup,
// so its own cost is the same on both sides of a ratio.

import { Agent, request } from "node:http";
import type { Socket } from "node:net";

export interface HttpAnswer {
  status: number;
  body: Buffer;
}

export class HttpClient {
  private readonly agent: Agent | undefined;
  /** Requests that opened a new connection. */
  connectionsOpened = 0;
  requests = 0;

  /** `connections` > 0: keep-alive connections, at most that many; 0: a new connection per request. */
  constructor(readonly connections: number) {
    this.agent =
      connections > 0
        ? new EagerKeepAliveAgent({ keepAlive: true, maxSockets: connections, maxFreeSockets: connections })
        : undefined;
  }

  /** One request; resolves with the status and the whole body, whatever the status. */
  request(url: string, method: string, body?: Uint8Array, contentType?: string): Promise<HttpAnswer> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string | number> = {};
      if (body !== undefined) headers["Content-Length"] = body.length;
      if (contentType !== undefined) headers["Content-Type"] = contentType;
      // agent false: a fresh connection, closed after the answer (node:http then sends Connection: close).
      const req = request(url, { method, headers, agent: this.agent ?? false }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on("error", reject);
      });
      req.on("socket", () => {
        this.requests++;
        if (!req.reusedSocket) this.connectionsOpened++;
      });
      req.on("error", (error) => reject(new Error(`${method} ${url}: ${error.message}`, { cause: error })));
      req.end(body);
    });
  }

  /**
   * Throws when a keep-alive client opened more connections than it may hold: the server closed them after
   * each request (an Orthanc "Keep-Alive: timeout=1" hint makes Node's agent drop them), so what was timed
   * was not keep-alive.
   */
  assertConnectionsKept(): void {
    if (this.agent !== undefined && this.connectionsOpened > this.connections) {
      throw new Error(
        `${this.requests} keep-alive requests opened ${this.connectionsOpened} connections (at most ${this.connections} expected)`,
      );
    }
  }

  close(): void {
    this.agent?.destroy();
  }
}

/**
 * Orthanc 1.10.1 (CivetWeb) answers "Keep-Alive: timeout=1" and has no option to change it; Node's agent keeps
 * a second of margin on that hint, so it would close every connection after one request. This agent keeps
 * them: a pass sends its next request at once, well within CivetWeb's idle timeout (500 ms), and a
 * connection the server closed anyway fails the request, and the benchmark, instead of being hidden.
 */
class EagerKeepAliveAgent extends Agent {
  override keepSocketAlive(socket: Socket): boolean {
    socket.setKeepAlive(true, 1000);
    socket.unref();
    return true;
  }
}
