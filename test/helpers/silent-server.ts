// A TCP server on 127.0.0.1 that accepts connections and never answers: a backend that hangs (a stopped
// process behind a live socket, a stuck proxy). Optionally it answers the headers of a response and then
// stalls in the middle of its body. Stopped by close(), which also drops the connections it holds.

import { createServer, type Socket } from "node:net";

export interface SilentServer {
  /** `http://127.0.0.1:PORT` */
  endpoint: string;
  /** Connections accepted so far. */
  connections(): number;
  close(): Promise<void>;
}

export interface SilentServerOptions {
  /**
   * Once a request's headers have arrived, send this (the start of an HTTP response) and then nothing more.
   * Absent: send nothing at all.
   */
  stallAfter?: string;
}

export async function startSilentServer(options: SilentServerOptions = {}): Promise<SilentServer> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => undefined); // the client gives up and resets: expected here
    let received = "";
    socket.on("data", (chunk: Buffer) => {
      if (options.stallAfter === undefined || received.includes("\r\n\r\n")) return;
      received += chunk.toString("latin1");
      if (received.includes("\r\n\r\n")) socket.write(options.stallAfter);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const address = server.address();
  if (address === null || typeof address !== "object") throw new Error("the silent server has no port");
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    connections: () => accepted,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
