// Reassembles requests from the bytes of one connection: an 80-byte header, then for CREATE, REST and JOB_STEP a
// payload that is copied once, straight into a buffer of its announced size.

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

export interface Frame {
  request: Request;
  /** CREATE's attachment or REST's encoded request; empty for the other operations. */
  payload: Buffer;
}

export class FrameReader {
  private readonly header = Buffer.alloc(REQUEST_HEADER_SIZE);
  private headerFilled = 0;
  private pending: Frame | undefined;
  private payloadFilled = 0;

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
        // allocUnsafe: every byte is overwritten before the payload is used.
        this.pending = { request, payload: Buffer.allocUnsafe(hasPayload(request.op) ? request.size : 0) };
        this.headerFilled = 0;
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
}
