// Reassembles requests from the bytes of one connection: an 80-byte header, then for CREATE, REST and the job ops a
// payload that is copied once, straight into a buffer of its announced size. A CREATE larger than
// `streamCreatesAbove` is not gathered: its frame comes out as soon as its header is read, with a body stream
// fed by the bytes that follow, and the reader asks its connection to pause while that body is full.

import { Readable } from "node:stream";

import {
  MAX_CREATE_SIZE,
  MAX_REST_PAYLOAD,
  Op,
  ProtocolError,
  REQUEST_HEADER_SIZE,
  decodeRequestHeader,
  carriesRecord,
  hasPayload,
  type Request,
} from "./protocol.js";

/** CREATEs above this size are streamed: the most one connection holds of a gathered attachment. */
export const STREAM_CREATES_ABOVE = 8 * 1024 * 1024;
/** A streamed body's buffer: beyond it the connection is paused until the body is read. */
const BODY_HIGH_WATER_MARK = 1024 * 1024;
const EMPTY = Buffer.alloc(0);

export interface Frame {
  request: Request;
  /**
   * CREATE's attachment, REST's encoded request, or the attachment's record (READ_WHOLE, READ_RANGE, REMOVE on
   * Orthanc >= 1.12.8); empty for the other operations and streamed CREATEs.
   */
  payload: Buffer;
  /** A streamed CREATE: the attachment's bytes as they arrive. Read it, or destroy it to discard them. */
  body?: Readable;
  /** A streamed CREATE: settles once all its bytes were received (read or discarded); rejects if cut short. */
  received?: Promise<void>;
}

export interface FrameReaderOptions {
  /** CREATEs larger than this are streamed (default STREAM_CREATES_ABOVE). */
  streamCreatesAbove?: number;
  /** Stop reading the connection: a streamed body is full. */
  pause?: () => void;
  /** Read the connection again: the body wants more, or was destroyed. */
  resume?: () => void;
}

/** The streamed CREATE being received. */
interface Streaming {
  body: Readable;
  left: number;
  done: () => void;
  fail: (error: Error) => void;
}

export class FrameReader {
  private readonly header = Buffer.alloc(REQUEST_HEADER_SIZE);
  private headerFilled = 0;
  private pending: Frame | undefined;
  private payloadFilled = 0;
  private streaming: Streaming | undefined;
  private pausedForBody = false;
  private keptChunk = false;

  constructor(private readonly options: FrameReaderOptions = {}) {}

  /** Whether the reader asked the connection to pause, and has not asked it to resume yet. */
  get paused(): boolean {
    return this.pausedForBody;
  }

  /**
   * Whether the last chunk pushed is still referenced: part of it went to a streamed body. Else every byte
   * the reader needed of it was copied, and its memory may be freed.
   */
  get keepsLastChunk(): boolean {
    return this.keptChunk;
  }

  /** The connection ended: a streamed body still expecting bytes fails with `error`. */
  abort(error: Error): void {
    const streaming = this.streaming;
    this.streaming = undefined;
    if (streaming === undefined) return;
    streaming.fail(error);
    streaming.body.destroy(error);
  }

  /**
   * Feed bytes as they arrive; returns the frames they complete, in order. Throws ProtocolError on bytes
   * that cannot be a request (the connection must then be closed).
   */
  push(chunk: Buffer): Frame[] {
    const frames: Frame[] = [];
    let offset = 0;
    this.keptChunk = false;
    for (;;) {
      if (this.streaming !== undefined) {
        if (offset === chunk.length) break;
        offset = this.feed(this.streaming, chunk, offset);
        continue;
      }
      if (this.pending === undefined) {
        if (offset === chunk.length) break;
        const taken = chunk.copy(
          this.header,
          this.headerFilled,
          offset,
          offset + REQUEST_HEADER_SIZE - this.headerFilled,
        );
        this.headerFilled += taken;
        offset += taken;
        if (this.headerFilled < REQUEST_HEADER_SIZE) break;
        const request = decodeRequestHeader(this.header);
        const small = request.op === Op.REST || request.op === Op.JOB_STEP || request.op === Op.JOB_RESTORE;
        if (small && request.size > MAX_REST_PAYLOAD) {
          throw new ProtocolError(
            `a ${request.op === Op.REST ? "REST request" : "job state"} of ${request.size} bytes is larger than ${MAX_REST_PAYLOAD}`,
          );
        }
        this.headerFilled = 0;
        // Refused at the header even when it would stream: a body this large would keep the connection
        // busy for gigabytes that Orthanc cannot have sent (it holds each attachment in one buffer).
        if (request.op === Op.CREATE && request.size > MAX_CREATE_SIZE) {
          throw new ProtocolError(
            `an attachment of ${request.size} bytes is larger than ${MAX_CREATE_SIZE} (4 GiB), the most a CREATE may announce`,
          );
        }
        if (
          request.op === Op.CREATE &&
          request.size > (this.options.streamCreatesAbove ?? STREAM_CREATES_ABOVE)
        ) {
          frames.push(this.startStreaming(request));
          continue;
        }
        const size = payloadSize(request);
        if (size === 0) {
          frames.push({ request, payload: EMPTY }); // a read without a record: most requests
          continue;
        }
        // allocUnsafe: every byte is overwritten before the payload is used.
        this.pending = { request, payload: Buffer.allocUnsafe(size) };
        this.payloadFilled = 0;
      }
      const { payload } = this.pending;
      const taken = chunk.copy(
        payload,
        this.payloadFilled,
        offset,
        offset + payload.length - this.payloadFilled,
      );
      this.payloadFilled += taken;
      offset += taken;
      if (this.payloadFilled < payload.length) break;
      frames.push(this.pending);
      this.pending = undefined;
    }
    return frames;
  }

  private startStreaming(request: Request): Frame {
    const body = new Readable({ highWaterMark: BODY_HIGH_WATER_MARK, read: () => this.resumeForBody() });
    // A body destroyed before its end (its consumer failed) discards the rest: the connection must flow.
    body.once("close", () => this.resumeForBody());
    let done = (): void => undefined;
    let fail = (_error: Error): void => undefined;
    const received = new Promise<void>((resolve, reject) => {
      done = resolve;
      fail = reject;
    });
    received.catch(() => undefined); // also awaited by whoever answers the request; never unhandled
    this.streaming = { body, left: request.size, done, fail };
    return { request, payload: EMPTY, body, received };
  }

  /** Gives the body the bytes of `chunk` from `offset` that belong to it; returns the new offset. */
  private feed(streaming: Streaming, chunk: Buffer, offset: number): number {
    const taken = Math.min(streaming.left, chunk.length - offset);
    streaming.left -= taken;
    this.keptChunk = true;
    const { body } = streaming;
    const wantsMore = body.destroyed || body.push(chunk.subarray(offset, offset + taken));
    if (streaming.left === 0) {
      this.streaming = undefined;
      if (!body.destroyed) body.push(null);
      streaming.done();
    } else if (!wantsMore && !this.pausedForBody) {
      this.pausedForBody = true;
      this.options.pause?.();
    }
    return offset + taken;
  }

  private resumeForBody(): void {
    if (!this.pausedForBody) return;
    this.pausedForBody = false;
    this.options.resume?.();
  }
}

/** The bytes that follow a request's header (the table in protocol.ts). */
function payloadSize(request: Request): number {
  if (hasPayload(request.op)) return request.size;
  return carriesRecord(request.op) ? (request.record ?? 0) : 0;
}
