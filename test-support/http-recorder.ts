// Local HTTP servers for driver tests and benches: a recording reverse proxy in front of a test server
// (to count the requests a driver really sends, retries included, whatever the SDK), and scripted servers
// that answer as a failing or silent cloud would. Both listen on 127.0.0.1 on a port of their own.

import {
  createServer,
  request,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse,
} from "node:http";

export interface RecordedRequest {
  method: string;
  /** Path and query, as received. */
  url: string;
  headers: IncomingHttpHeaders;
}

export interface RecordingServer extends AsyncDisposable {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** Every request received, in order; empty it to start counting afresh. */
  requests: RecordedRequest[];
  /** Close the listener and every connection. Safe to call more than once; `await using` calls it too. */
  close(): Promise<void>;
}

/**
 * Answers a request instead of the proxy's target (a fault a test injects): true when it did, and the request
 * then goes no further.
 */
export type Interception = (req: IncomingMessage, res: ServerResponse) => boolean;

/** A server that records each request, then answers it with `handler`. */
export async function startScriptedServer(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<RecordingServer> {
  const requests: RecordedRequest[] = [];
  const server = createServer((req, res) => {
    requests.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers });
    handler(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const address = server.address();
  if (typeof address !== "object" || address === null) throw new Error("no address");
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closed ??= new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }));
  return { url: `http://127.0.0.1:${address.port}`, requests, close, [Symbol.asyncDispose]: close };
}

/**
 * A reverse proxy to `target` (`http://host:port`) that records each request it receives and forwards it, unless
 * `intercept` answers it.
 */
export function startRecordingProxy(target: string, intercept?: Interception): Promise<RecordingServer> {
  const upstream = new URL(target);
  return startScriptedServer((req, res) => {
    if (intercept?.(req, res) === true) return;
    const forwarded = request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
        answer.once("error", () => res.destroy());
      },
    );
    forwarded.once("error", () => res.destroy());
    req.pipe(forwarded);
    // A client that leaves early (an abandoned body) ends the upstream request too.
    res.once("close", () => forwarded.destroy());
  });
}
