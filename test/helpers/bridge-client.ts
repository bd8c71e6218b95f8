// Talks to the daemon exactly as the native bridge does: one connection, one request at a time.

import { connect, type Socket } from "node:net";

import {
  RESPONSE_HEADER_SIZE,
  decodeResponseHeader,
  encodeRequestHeader,
  type Request,
} from "../../src/daemon/protocol.js";

export interface Response {
  code: number;
  data: Buffer;
}

export class BridgeClient {
  private buffered = Buffer.alloc(0);
  private waiter: (() => void) | undefined;
  private ended = false;

  private constructor(private readonly socket: Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, chunk]);
      this.waiter?.();
    });
    const onEnd = (): void => {
      this.ended = true;
      this.waiter?.();
    };
    socket.on("end", onEnd);
    socket.on("close", onEnd);
    socket.on("error", onEnd);
  }

  static connect(path: string): Promise<BridgeClient> {
    return new Promise((resolve, reject) => {
      const socket = connect(path, () => resolve(new BridgeClient(socket)));
      socket.once("error", reject);
    });
  }

  async call(request: Request, payload: Uint8Array = new Uint8Array(0)): Promise<Response> {
    this.socket.write(Buffer.concat([encodeRequestHeader(request), payload]));
    const header = await this.take(RESPONSE_HEADER_SIZE);
    const { code, size } = decodeResponseHeader(header);
    return { code, data: await this.take(size) };
  }

  close(): void {
    this.socket.destroy();
  }

  /** Raw bytes, for tests that play the bridge's side of callbacks or send malformed frames. */
  write(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  /** Whether the daemon closed this connection. */
  get closed(): boolean {
    return this.ended;
  }

  /** The next `size` bytes the daemon sends; rejects when it closes the connection first. */
  async take(size: number): Promise<Buffer> {
    while (this.buffered.length < size) {
      if (this.ended) throw new Error(`connection closed with ${this.buffered.length} of ${size} bytes`);
      await new Promise<void>((resolve) => (this.waiter = resolve));
      this.waiter = undefined;
    }
    const taken = this.buffered.subarray(0, size);
    this.buffered = this.buffered.subarray(size);
    return taken;
  }
}
