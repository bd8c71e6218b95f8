// A daemon started alone, as the bridge starts it, loaded with concurrent creates through the bridge
// protocol, and its memory read from /proc: what the memory and scaling targets measure. Orthanc is left
// out on purpose: it holds every upload in its own memory before calling the plugin, so its memory is not
// ours to measure, and 16 uploads of 256 MB through its REST API would cost it gigabytes.

import { randomFill, randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";

import { Op } from "../src/daemon/protocol.js";
import { BridgeClient } from "../test-support/bridge-client.js";
import { startDaemon, type StartedDaemon } from "../test-support/daemon-process.js";

export const MIB = 1024 * 1024;

export class LoadedDaemon {
  private constructor(
    private readonly daemon: StartedDaemon,
    private readonly socket: string,
  ) {}

  /** Starts a daemon on Orthanc's configuration `configuration`; rejects when it does not answer READY. */
  static async start(configuration: unknown): Promise<LoadedDaemon> {
    const daemon = await startDaemon(configuration);
    const socket = /^READY range=\d socket=(.+)$/.exec(daemon.handshake)?.[1];
    if (socket === undefined) {
      daemon.child.kill("SIGKILL");
      throw new Error(`the daemon did not start: ${daemon.handshake}; ${daemon.stderr.join(" | ")}`);
    }
    return new LoadedDaemon(daemon, socket);
  }

  get pid(): number {
    return this.daemon.child.pid as number;
  }

  /** Resident memory now (VmRSS) and its peak since the daemon started (VmHWM), in bytes. */
  async memory(): Promise<{ rss: number; peak: number }> {
    const status = await readFile(`/proc/${this.pid}/status`, "utf8");
    const field = (name: string): number => {
      const kb = new RegExp(`^${name}:\\s+(\\d+) kB$`, "m").exec(status)?.[1];
      if (kb === undefined) throw new Error(`/proc/${this.pid}/status has no ${name} line`);
      return Number(kb) * 1024;
    };
    return { rss: field("VmRSS"), peak: field("VmHWM") };
  }

  /**
   * `count` connections at once (as Orthanc's threads open them), each creating `perConnection` copies of
   * `payload` one after the other; then the objects are removed again. Resolves with the wall time of the
   * creates, in milliseconds.
   */
  async createConcurrently(count: number, payload: Uint8Array, perConnection = 1): Promise<number> {
    const clients = await Promise.all(Array.from({ length: count }, () => BridgeClient.connect(this.socket)));
    try {
      const uuids = clients.map(() => Array.from({ length: perConnection }, () => randomUUID()));
      const started = performance.now();
      await Promise.all(
        clients.map(async (client, i) => {
          for (const uuid of uuids[i] as string[]) {
            const request = { op: Op.CREATE, contentType: 1, size: payload.length, start: 0, uuid };
            const { code, data } = await client.call(request, payload);
            if (code !== 0) {
              throw new Error(`create ${uuid} of ${payload.length} bytes: code ${code} ${data.toString()}`);
            }
          }
        }),
      );
      const elapsed = performance.now() - started;
      await Promise.all(
        clients.map(async (client, i) => {
          for (const uuid of uuids[i] as string[]) {
            const { code } = await client.call({ op: Op.REMOVE, contentType: 1, size: 0, start: 0, uuid });
            if (code !== 0) throw new Error(`remove ${uuid}: code ${code}`);
          }
        }),
      );
      return elapsed;
    } finally {
      for (const client of clients) client.close();
    }
  }

  /** Ends the lifeline, as Orthanc's exit does, and waits for the daemon to exit (SIGKILL after 10 s). */
  async stop(): Promise<void> {
    this.daemon.child.stdin.end();
    const timer = setTimeout(() => this.daemon.child.kill("SIGKILL"), 10_000);
    await this.daemon.exited;
    clearTimeout(timer);
  }
}

/** Random bytes (encryption makes any content cost the same; random defeats any compression on the way). */
export async function randomPayload(size: number): Promise<Buffer> {
  const bytes = Buffer.allocUnsafe(size);
  const step = 64 * MIB;
  for (let offset = 0; offset < size; offset += step) {
    await new Promise<void>((resolve, reject) =>
      randomFill(bytes, offset, Math.min(step, size - offset), (error) =>
        error ? reject(error) : resolve(),
      ),
    );
  }
  return bytes;
}

export function megabytes(bytes: number): number {
  return bytes / MIB;
}
