// Calls from the daemon into Orthanc, made by the bridge on the daemon's behalf while it waits for the answer
// to a REST or JOB_STEP request (callbacks, protocol.ts): Orthanc's own REST API, and job submission. One
// connection carries one callback at a time; the bridge answers each before anything else.

import type { Socket } from "node:net";

import { StorageError } from "../errors.js";
import {
  CALLBACK_HEADER_SIZE,
  ProtocolError,
  decodeCallbackAnswerHeader,
  decodeAdoptAnswer,
  encodeCallback,
  type AdoptAnswer,
  type AdoptCall,
  type JobSubmission,
  type OrthancRestCall,
} from "./protocol.js";

/** Orthanc's answer to a callback: its error code (0 = success) and the bytes that came with it. */
export interface CallbackAnswer {
  code: number;
  body: Buffer;
}

/** What a REST handler or a job step may ask of Orthanc. */
export interface OrthancCallbacks {
  /** A call to Orthanc's built-in REST API (no authentication: the plugin's own privileges). */
  rest(call: OrthancRestCall): Promise<CallbackAnswer>;
  /** Creates a job in Orthanc's job engine and returns its id. */
  submitJob(job: JobSubmission): Promise<string>;
  /** Orthanc >= 1.12.8: the custom data Orthanc keeps with an attachment (empty when none). */
  attachmentRecord(uuid: string): Promise<Buffer>;
  /** Orthanc >= 1.12.8: replaces an attachment's custom data (a move between backends). */
  setAttachmentRecord(uuid: string, record: Uint8Array): Promise<void>;
  /** Orthanc >= 1.12.8: index a DICOM file already in a backend, with its record. */
  adopt(call: AdoptCall): Promise<AdoptAnswer>;
}

/** Orthanc's OrthancPluginErrorCode_UnknownResource: what a REST call on a missing resource returns. */
export const UNKNOWN_RESOURCE = 17;
/** Orthanc's OrthancPluginErrorCode_InexistentFile. */
const INEXISTENT_FILE = 13;

interface PendingAnswer {
  header: Buffer;
  headerFilled: number;
  body: Buffer | undefined;
  bodyFilled: number;
  code: number;
  resolve(answer: CallbackAnswer): void;
  reject(error: Error): void;
}

/** The callbacks of one connection: writes each callback and reads its answer off the same socket. */
export class ConnectionCallbacks implements OrthancCallbacks {
  private pending: PendingAnswer | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private closed: Error | undefined;

  constructor(private readonly socket: Socket) {}

  /** Whether the bytes arriving now are the answer to a callback (else they are requests). */
  get awaiting(): boolean {
    return this.pending !== undefined;
  }

  rest(call: OrthancRestCall): Promise<CallbackAnswer> {
    return this.serialized(() => this.send(encodeCallback({ kind: "rest", rest: call })));
  }

  async submitJob(job: JobSubmission): Promise<string> {
    const answer = await this.serialized(() => this.send(encodeCallback({ kind: "job", job })));
    if (answer.code !== 0 || answer.body.length === 0) {
      throw new StorageError(
        "BRIDGE_FAILED",
        { operation: "create job", subject: job.type },
        `Orthanc refused to create the ${job.type} job (error code ${answer.code})`,
      );
    }
    return answer.body.toString("utf8");
  }

  async attachmentRecord(uuid: string): Promise<Buffer> {
    const answer = await this.serialized(() => this.send(encodeCallback({ kind: "record", uuid })));
    if (answer.code === 0) return answer.body;
    if (answer.code === UNKNOWN_RESOURCE || answer.code === INEXISTENT_FILE) return Buffer.alloc(0);
    throw new StorageError(
      "BRIDGE_FAILED",
      { operation: "read the custom data of attachment", subject: uuid },
      `Orthanc answered error code ${answer.code}`,
    );
  }

  async setAttachmentRecord(uuid: string, record: Uint8Array): Promise<void> {
    const answer = await this.serialized(() =>
      this.send(encodeCallback({ kind: "record", uuid, set: record })),
    );
    if (answer.code === 0) return;
    throw new StorageError(
      "BRIDGE_FAILED",
      { operation: "update the custom data of attachment", subject: uuid },
      `Orthanc answered error code ${answer.code}${answer.code === UNKNOWN_RESOURCE || answer.code === INEXISTENT_FILE ? " (the attachment is gone: deleted meanwhile?)" : ""}`,
    );
  }

  async adopt(call: AdoptCall): Promise<AdoptAnswer> {
    const answer = await this.serialized(() => this.send(encodeCallback({ kind: "adopt", adopt: call })));
    if (answer.code !== 0) {
      throw new StorageError(
        "BRIDGE_FAILED",
        { operation: "adopt", subject: `a DICOM file of ${call.dicom.length} bytes` },
        `Orthanc refused it (error code ${answer.code}: not a DICOM file it can parse?)`,
      );
    }
    return decodeAdoptAnswer(answer.body);
  }

  /** Feed bytes that arrived while awaiting; throws a ProtocolError when they cannot be the answer. */
  push(chunk: Buffer): void {
    const pending = this.pending;
    if (pending === undefined) throw new ProtocolError("bytes for a callback that was not made");
    let offset = 0;
    if (pending.headerFilled < CALLBACK_HEADER_SIZE) {
      const taken = chunk.copy(
        pending.header,
        pending.headerFilled,
        0,
        CALLBACK_HEADER_SIZE - pending.headerFilled,
      );
      pending.headerFilled += taken;
      offset += taken;
      if (pending.headerFilled < CALLBACK_HEADER_SIZE) return;
      const { code, size } = decodeCallbackAnswerHeader(pending.header);
      pending.code = code;
      pending.body = Buffer.allocUnsafe(size); // every byte is overwritten before use
    }
    const body = pending.body as Buffer;
    const taken = chunk.copy(body, pending.bodyFilled, offset, offset + body.length - pending.bodyFilled);
    pending.bodyFilled += taken;
    offset += taken;
    if (offset < chunk.length) {
      throw new ProtocolError(`${chunk.length - offset} bytes after the answer to a callback`);
    }
    if (pending.bodyFilled < body.length) return;
    this.pending = undefined;
    this.socket.pause(); // back to one request at a time: the handler writes its answer next
    pending.resolve({ code: pending.code, body });
  }

  /** The connection is gone: the callback in flight, and every later one, fails with `error`. */
  fail(error: Error): void {
    this.closed = error;
    const pending = this.pending;
    this.pending = undefined;
    pending?.reject(error);
  }

  private serialized<T>(call: () => Promise<T>): Promise<T> {
    const result = this.queue.then(call);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private send(frame: Buffer): Promise<CallbackAnswer> {
    return new Promise((resolve, reject) => {
      if (this.closed !== undefined || this.socket.destroyed) {
        reject(this.closed ?? bridgeClosed());
        return;
      }
      this.pending = {
        header: Buffer.alloc(CALLBACK_HEADER_SIZE),
        headerFilled: 0,
        body: undefined,
        bodyFilled: 0,
        code: 0,
        resolve,
        reject,
      };
      this.socket.write(frame, (error) => {
        if (error) this.fail(error);
      });
      this.socket.resume();
    });
  }
}

/** The error of every exchange cut by the bridge closing its connection. */
export function bridgeClosed(): StorageError {
  return new StorageError(
    "BRIDGE_FAILED",
    { operation: "talk to Orthanc" },
    "the bridge closed the connection",
  );
}
