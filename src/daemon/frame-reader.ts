// Reassembles requests from the bytes of one connection: an 80-byte header, then for CREATE, REST and JOB_STEP a
// payload that is copied once, straight into a buffer of its announced size. Only the first
// EAGER_PAYLOAD_BYTES are allocated on the header's word: a larger payload's buffer grows as its bytes
// arrive, so a header announcing gigabytes (a bug, or a fuzzer) commits nothing it did not receive.

import { constants } from "node:buffer";

import {
  MAX_REST_PAYLOAD,
  Op,
  ProtocolError,
  REQUEST_HEADER_SIZE,
  decodeRequestHeader,
  hasPayload,
  type Request,
} from "./protocol.js";

const MAX_LENGTH = constants.MAX_LENGTH;
/** Payloads up to this size (nearly every DICOM file) get their whole buffer at once: one copy, no growth. */
export const EAGER_PAYLOAD_BYTES = 64 * 1024 * 1024;

export interface Frame {
  request: Request;
  /** CREATE's attachment or REST's encoded request; empty for the other operations. */
  payload: Buffer;
}

export class FrameReader {
  private readonly header = Buffer.alloc(REQUEST_HEADER_SIZE);
  private headerFilled = 0;
  private pending: { request: Request; payload: GrowingPayload } | undefined;

  /**
   * Feed bytes as they arrive; returns the frames they complete, in order. Throws ProtocolError on bytes
   * that cannot be a request (the connection must then be closed).
   */
  push(chunk: Buffer): Frame[] {
    const frames: Frame[] = [];
    let offset = 0;
    for (;;) {
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
        if (request.op === Op.CREATE && request.size > MAX_LENGTH) {
          throw new ProtocolError(
            `an attachment of ${request.size} bytes is larger than Node's buffers (${MAX_LENGTH})`,
          );
        }
        if ((request.op === Op.REST || request.op === Op.JOB_STEP) && request.size > MAX_REST_PAYLOAD) {
          throw new ProtocolError(
            `a ${request.op === Op.REST ? "REST request" : "job state"} of ${request.size} bytes is larger than ${MAX_REST_PAYLOAD}`,
          );
        }
        this.pending = { request, payload: new GrowingPayload(hasPayload(request.op) ? request.size : 0) };
        this.headerFilled = 0;
      }
      const { request, payload } = this.pending;
      offset += payload.fill(chunk, offset);
      if (!payload.complete) break;
      frames.push({ request, payload: payload.take() });
      this.pending = undefined;
    }
    return frames;
  }
}

/** A payload of a known size, filled as bytes arrive; its buffer never outgrows twice the bytes received. */
class GrowingPayload {
  private buffer: Buffer;
  private filled = 0;

  constructor(private readonly size: number) {
    // allocUnsafe: every byte is overwritten before the payload is used.
    this.buffer = Buffer.allocUnsafe(Math.min(size, EAGER_PAYLOAD_BYTES));
  }

  get complete(): boolean {
    return this.filled === this.size;
  }

  /** Copies what it still needs from `chunk` (from `offset`); returns the number of bytes taken. */
  fill(chunk: Buffer, offset: number): number {
    let taken = 0;
    while (this.filled < this.size && offset + taken < chunk.length) {
      if (this.filled === this.buffer.length) this.grow();
      const room = this.buffer.length - this.filled;
      const copied = chunk.copy(this.buffer, this.filled, offset + taken, offset + taken + room);
      this.filled += copied;
      taken += copied;
    }
    return taken;
  }

  /** The whole payload, once complete. */
  take(): Buffer {
    return this.buffer;
  }

  private grow(): void {
    const larger = Buffer.allocUnsafe(Math.min(this.size, this.buffer.length * 2));
    this.buffer.copy(larger, 0, 0, this.filled);
    this.buffer = larger;
  }
}
