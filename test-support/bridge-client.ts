// Talks to the daemon exactly as the native bridge does: one connection, one request at a time.

import { closeSync, openSync, readSync } from "node:fs";
import { connect, type Socket } from "node:net";

import {
  FILE_ANSWER_SIZE,
  FILE_MAGIC,
  Op,
  OrthancCode,
  RESPONSE_HEADER_SIZE,
  ResponseOffset,
  decodeFileAnswer,
  decodeResponseHeader,
  decodeRestAnswer,
  encodeRequestHeader,
  encodeRestRequest,
  type HttpMethodName,
  type Request,
  type RestAnswer,
} from "../src/daemon/protocol.js";

export interface Response {
  code: number;
  data: Buffer;
  /** A file answer (protocol.ts): the daemon's descriptor the bytes were read from, as the bridge does. */
  file?: { fd: number; pid: number };
}

export class BridgeClient {
  /** Bytes received and not taken yet, as they came: joined only when taken (reads can be hundreds of MB). */
  private chunks: Buffer[] = [];
  private bufferedBytes = 0;
  private waiter: (() => void) | undefined;
  private ended = false;

  private constructor(private readonly socket: Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.bufferedBytes += chunk.length;
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

  /** The payload is written as given, not copied: benchmarks send one large buffer on many connections. */
  async call(request: Request, payload: Uint8Array = new Uint8Array(0)): Promise<Response> {
    this.socket.write(encodeRequestHeader(request));
    if (payload.length > 0) this.socket.write(payload);
    const header = await this.take(RESPONSE_HEADER_SIZE);
    if (header.readUInt32LE(ResponseOffset.MAGIC) === FILE_MAGIC) {
      const answer = Buffer.concat([header, await this.take(FILE_ANSWER_SIZE - RESPONSE_HEADER_SIZE)]);
      const { fd, size, offset, pid } = decodeFileAnswer(answer);
      return { code: 0, data: readPeerFile(pid, fd, offset, size), file: { fd, pid } };
    }
    const { code, size } = decodeResponseHeader(header);
    return { code, data: await this.take(size) };
  }

  /** A request to the plugin's REST routes as Orthanc forwards one (op REST, no body): the decoded answer. */
  async rest(method: HttpMethodName, url: string): Promise<RestAnswer> {
    const payload = encodeRestRequest({
      method,
      url,
      groups: [],
      getArguments: [],
      headers: [],
      body: Buffer.alloc(0),
    });
    const response = await this.call(
      { op: Op.REST, contentType: 0, size: payload.length, start: 0, uuid: "" },
      payload,
    );
    if (response.code !== OrthancCode.Success)
      throw new Error(`${method} ${url}: the daemon answered code ${response.code}`);
    return decodeRestAnswer(response.data);
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
    while (this.bufferedBytes < size) {
      if (this.ended) throw new Error(`connection closed with ${this.bufferedBytes} of ${size} bytes`);
      await new Promise<void>((resolve) => (this.waiter = resolve));
      this.waiter = undefined;
    }
    const all = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
    const rest = all.subarray(size);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.bufferedBytes = rest.length;
    return all.subarray(0, size);
  }
}

/** `size` bytes from `offset` of another process's open file, opened through /proc as the bridge opens it. */
function readPeerFile(pid: number, fd: number, offset: number, size: number): Buffer {
  const file = openSync(`/proc/${pid}/fd/${fd}`, "r");
  try {
    const data = Buffer.alloc(size);
    let filled = 0;
    while (filled < size) {
      const count = readSync(file, data, filled, size - filled, offset + filled);
      if (count === 0) throw new Error(`the daemon's file ended after ${offset + filled} bytes`);
      filled += count;
    }
    return data;
  } finally {
    closeSync(file);
  }
}
