// The daemon's Unix-socket server: one request at a time per connection (one connection per Orthanc
// thread), each answered from the StorageArea with an Orthanc error code, for REST by the router, and for
// JOB_STEP by the job runner and JOB_RESTORE from the job's serialization (protocol.ts, job-restore.ts); the last two may call back into Orthanc on the same connection
// (bridge-callbacks.ts). An observer (metrics.ts) sees every storage request answered.

import { chmod } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import type { Readable } from "node:stream";

import type { AttachmentRead, CreateOptions, StorageArea } from "../area/storage-area.js";
import { piecesLength, type BytePieces } from "../byte-pieces.js";
import { describeCause, isStorageError, StorageError } from "../errors.js";
import { freeMemory, freePieces } from "../free-memory.js";
import type { Logger } from "../log.js";
import { bridgeClosed, ConnectionCallbacks, type OrthancCallbacks } from "./bridge-callbacks.js";
import { orthancCodeOf } from "./error-codes.js";
import { FrameReader, type Frame } from "./frame-reader.js";
import { LentFile } from "./lent-file.js";
import {
  CreateFlag,
  Op,
  OrthancCode,
  decodeJobRequest,
  decodeRestRequest,
  encodeFileAnswer,
  encodeResponseHeader,
  encodeRestAnswer,
  RequestFlag,
  type JobStepAnswer,
  type OpCode,
} from "./protocol.js";
import { jobRestoreAnswer, jobStepAnswer } from "./job-restore.js";
import { RestRouter } from "./rest-router.js";

const OP_NAMES: Readonly<Record<number, string>> = {
  [Op.CREATE]: "create",
  [Op.READ_WHOLE]: "read",
  [Op.READ_RANGE]: "read range of",
  [Op.REMOVE]: "remove",
};

/** One request answered (or failed), as the observer sees it. */
export interface RequestEvent {
  op: OpCode;
  /** From the whole frame's arrival to the last byte of the answer written. */
  seconds: number;
  /** Attachment bytes received (CREATE). */
  bytesIn: number;
  /** Attachment bytes sent (READ_WHOLE, READ_RANGE), once the whole body went out. */
  bytesOut: number;
  /** Why the request failed; undefined on success. */
  error?: unknown;
}

export interface DispatchObserver {
  connectionOpened(): void;
  connectionClosed(): void;
  requestAnswered(event: RequestEvent): void;
}

/** Runs one step of a job from its state (op JOB_STEP); throws when the state is not one of its jobs'. */
export type JobStepper = (state: string, orthanc: OrthancCallbacks) => Promise<JobStepAnswer>;

export interface BridgeServerOptions {
  /** Serves op REST; without it every REST request is a 404. */
  router?: RestRouter;
  /** Serves op JOB_STEP; without it every step fails. */
  jobStep?: JobStepper;
  observer?: DispatchObserver;
  /** CREATEs larger than this are streamed to the store as they arrive (default: the frame reader's). */
  streamCreatesAbove?: number;
}

/** What one connection's requests are answered with. */
interface Services {
  area: StorageArea;
  logger: Logger;
  router: RestRouter;
  jobStep: JobStepper | undefined;
  observer: DispatchObserver | undefined;
  streamCreatesAbove: number | undefined;
  /** Each connection's requests being answered: close() lets them end. */
  answering: Set<Promise<void>>;
  /** Set by close(): no further request is taken up. */
  closing: boolean;
}

export interface BridgeServer {
  /**
   * Stop accepting connections and requests, let the requests being answered end (for up to `graceMs`: a
   * create then lands in the storage before the spool's drain and the area's close), end every connection,
   * and wait until they are closed.
   */
  close(graceMs?: number): Promise<void>;
  /** Connections currently open (for tests and metrics). */
  readonly connections: number;
}

export async function listenForBridge(
  socketPath: string,
  area: StorageArea,
  logger: Logger,
  options: BridgeServerOptions = {},
): Promise<BridgeServer> {
  const services: Services = {
    area,
    logger,
    router: options.router ?? new RestRouter([], logger),
    jobStep: options.jobStep,
    observer: options.observer,
    streamCreatesAbove: options.streamCreatesAbove,
    answering: new Set(),
    closing: false,
  };
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    services.observer?.connectionOpened();
    socket.on("close", () => {
      sockets.delete(socket);
      services.observer?.connectionClosed();
    });
    serveConnection(socket, services);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(socketPath, () => {
      server.off("error", reject);
      resolve();
    });
  });
  // Only the user running Orthanc may talk to the daemon; the folder holding the socket is 0700 too.
  await chmod(socketPath, 0o600);
  server.on("error", (error) => logger.error(`bridge socket ${socketPath}: ${describeCause(error)}`));
  return {
    get connections() {
      return sockets.size;
    },
    close: async (graceMs = 0) => {
      services.closing = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      if (graceMs > 0 && services.answering.size > 0) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          Promise.allSettled([...services.answering]),
          new Promise((resolve) => (timer = setTimeout(resolve, graceMs))),
        ]);
        clearTimeout(timer);
      }
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}

function serveConnection(socket: Socket, services: Services): void {
  const reader = new FrameReader({
    streamCreatesAbove: services.streamCreatesAbove,
    pause: () => socket.pause(),
    resume: () => socket.resume(),
  });
  const callbacks = new ConnectionCallbacks(socket);
  const lent = new LentFile();
  const queue: Frame[] = [];
  let busy = false;

  const drain = async (): Promise<void> => {
    busy = true;
    while (queue.length > 0 && !socket.destroyed && !services.closing) {
      const frame = queue.shift() as Frame;
      // The bridge sends one request at a time: holding further bytes keeps memory bounded. A streamed
      // CREATE's bytes must keep coming while it is answered; the reader pauses them when its body is full.
      if (frame.body === undefined) socket.pause();
      else if (!reader.paused) socket.resume();
      await answer(socket, services, frame, callbacks, lent);
    }
    busy = false;
    if (!socket.destroyed && !reader.paused) socket.resume();
  };

  socket.on("close", () => {
    lent.close();
    const error = bridgeClosed();
    callbacks.fail(error);
    reader.abort(error);
  });
  socket.on("data", (chunk: Buffer) => {
    lent.retire(); // the bridge is done with the file of the last answer: closed once this one is answered
    try {
      if (callbacks.awaiting) {
        callbacks.push(chunk); // the answer to a callback a REST handler or a job step is waiting for
        return;
      }
      for (const frame of reader.push(chunk)) {
        if (busy || queue.length > 0 || !answerNow(socket, services, frame, lent)) queue.push(frame);
      }
      // Copied whole into the frames (a create's payload): its memory goes back now rather than at a full
      // garbage collection, which 64 KiB chunks of uploads otherwise brought about every 20 to 50 creates.
      if (!reader.keepsLastChunk) freeMemory(chunk);
    } catch (error) {
      services.logger.error(`bridge connection: ${describeCause(error)}; closing it`);
      socket.destroy();
      return;
    } finally {
      lent.closeRetired();
    }
    if (!busy && queue.length > 0 && !services.closing) {
      const answering = drain();
      services.answering.add(answering);
      void answering.finally(() => services.answering.delete(answering));
    }
  });
  socket.on("error", () => socket.destroy()); // a peer gone mid-answer: the bridge retries on a new one
}

async function answer(
  socket: Socket,
  services: Services,
  frame: Frame,
  callbacks: OrthancCallbacks,
  lent: LentFile,
): Promise<void> {
  if (frame.request.op === Op.REST) {
    await answerRest(socket, services, frame, callbacks);
    return;
  }
  if (frame.request.op === Op.JOB_STEP) {
    await answerJobStep(socket, services, frame, callbacks);
    return;
  }
  if (frame.request.op === Op.JOB_RESTORE) {
    const startOver = ((frame.request.flags ?? 0) & RequestFlag.START_OVER) !== 0;
    await answerPayload(socket, services.logger, "job restore", () =>
      Promise.resolve(jobRestoreAnswer(decodeJobRequest(frame.payload), startOver)),
    );
    return;
  }
  const started = performance.now();
  const event: RequestEvent = {
    op: frame.request.op,
    seconds: 0,
    bytesIn: frame.body === undefined ? frame.payload.length : frame.request.size,
    bytesOut: 0,
  };
  try {
    event.bytesOut = await answerStorage(socket, services.area, frame, lent);
  } catch (error) {
    event.error = error;
    if (frame.body !== undefined && frame.received !== undefined) {
      // The bridge reads the answer only once it has sent the whole attachment: discard what is left of it.
      frame.body.destroy();
      const whole = await frame.received.then(
        () => true,
        () => false,
      );
      if (!whole) {
        services.logger.error(`${describeRequest(frame)}: ${describeCause(error)}; the connection closed`);
        return;
      }
    }
    const code = orthancCodeOf(error);
    const line = `${describeRequest(frame)}: ${describeCause(error)}`;
    if (code === OrthancCode.InexistentFile) services.logger.warn(line);
    else services.logger.error(line);
    if (!socket.destroyed) await write(socket, encodeResponseHeader(code, 0)).catch(() => socket.destroy());
  } finally {
    event.seconds = (performance.now() - started) / 1000;
    services.observer?.requestAnswered(event);
  }
}

/**
 * The direct path of a read (src/area/direct-file-read.ts), in the tick its request arrived: no promise, no
 * stream. A plaintext object the area opens at once is answered with its file, when the bridge lets it; an
 * encrypted one the area decrypts at once, with its plaintext's pieces after the header, corked (one writev),
 * their memory freed and the budget given back once written. False when the area steps aside, or for any
 * other request: it then takes the general way (answer).
 */
function answerNow(socket: Socket, services: Services, frame: Frame, lent: LentFile): boolean {
  const { request, payload } = frame;
  const { op } = request;
  if ((op !== Op.READ_WHOLE && op !== Op.READ_RANGE) || socket.destroyed) return false;
  const started = performance.now();
  const range =
    op === Op.READ_RANGE ? { start: request.start, end: request.start + request.size } : undefined;
  const { area, observer } = services;
  const event: RequestEvent = { op, seconds: 0, bytesIn: payload.length, bytesOut: 0 };
  if (((request.flags ?? 0) & RequestFlag.FILE_ANSWER) !== 0) {
    const file = area.openFileNow(request.uuid, request.contentType, range, payload);
    if (file !== undefined) {
      lent.lendDescriptor(file.fd);
      // A failed write fails the socket, whose error handler closes it, and its close the file lent.
      socket.write(encodeFileAnswer(file.fd, file.size, file.start, process.pid));
      event.bytesOut = file.size;
      event.seconds = (performance.now() - started) / 1000;
      observer?.requestAnswered(event);
      return true;
    }
  }
  const plain = area.decodeNow(request.uuid, request.contentType, range, payload);
  if (plain === undefined) return false;
  const { pieces, size, decrypted, release } = plain;
  const done = (error: Error | null | undefined): void => {
    release();
    if (error) {
      // As sendBytes: the bridge sees the connection close; the pieces are left to the collector.
      socket.destroy();
      event.error = sendingFailed(size, error);
      services.logger.error(`${describeRequest(frame)}: ${describeCause(event.error)}`);
    } else {
      freePieces(decrypted); // sent: nothing else holds them
      event.bytesOut = size;
    }
    event.seconds = (performance.now() - started) / 1000;
    observer?.requestAnswered(event);
  };
  const last = pieces.length - 1;
  socket.cork();
  socket.write(encodeResponseHeader(OrthancCode.Success, size), last < 0 ? done : undefined);
  pieces.forEach((piece, index) => socket.write(piece, index === last ? done : undefined));
  socket.uncork();
  return true;
}

/** A CREATE's CreateFlag bits, as the area takes them. */
function createOptions(flags: number): CreateOptions {
  return {
    record: (flags & CreateFlag.RECORD) !== 0,
    dicom: (flags & CreateFlag.DICOM) !== 0,
    compressed: (flags & CreateFlag.COMPRESSED) !== 0,
  };
}

function describeRequest({ request }: Frame): string {
  return `${OP_NAMES[request.op]} attachment ${request.uuid} (content type ${request.contentType})`;
}

/** Answers a storage request; returns the attachment bytes sent. */
async function answerStorage(
  socket: Socket,
  area: StorageArea,
  { request, payload, body }: Frame,
  lent: LentFile,
): Promise<number> {
  const { op, uuid, contentType } = request;
  // The bridge can take a local file instead of its bytes (protocol.ts, file answers); a read's payload is the
  // attachment's record (its custom data, Orthanc >= 1.12.8), empty without one.
  const options = { file: ((request.flags ?? 0) & RequestFlag.FILE_ANSWER) !== 0, record: payload };
  switch (op) {
    case Op.CREATE: {
      // On Orthanc >= 1.12.8 the answer carries the attachment's record, which Orthanc keeps as its custom data.
      const create = createOptions(request.flags ?? 0);
      let record: Buffer | undefined;
      if (body !== undefined) {
        record = await area.createStream(uuid, contentType, body, request.size, create);
      } else {
        record = await area.create(uuid, contentType, payload, create);
        freeMemory(payload); // stored: nothing keeps it (ObjectStore.put), as the collector would find later
      }
      const answer = record ?? Buffer.alloc(0);
      await write(socket, Buffer.concat([encodeResponseHeader(OrthancCode.Success, answer.length), answer]));
      return 0;
    }
    case Op.READ_WHOLE: {
      const read = await area.readWhole(uuid, contentType, options);
      await sendBody(socket, read, lent);
      return read.size;
    }
    case Op.READ_RANGE: {
      const read = await area.readRange(uuid, contentType, request.start, request.size, options);
      await sendBody(socket, read, lent);
      return read.size;
    }
    case Op.REMOVE:
      await area.remove(uuid, contentType, payload);
      await write(socket, encodeResponseHeader(OrthancCode.Success, 0));
      return 0;
    case Op.REST:
    case Op.JOB_STEP:
    case Op.JOB_RESTORE:
      throw new StorageError(
        "BRIDGE_FAILED",
        { operation: "answer", subject: `operation ${op}` },
        "it is not a storage request",
      );
  }
}

/**
 * Answers a REST request with the router's status, content type and body. A payload that cannot be a
 * REST request gets an error code and a message, logged here (Orthanc then answers 500).
 */
async function answerRest(
  socket: Socket,
  { router, logger }: Services,
  { payload }: Frame,
  callbacks: OrthancCallbacks,
): Promise<void> {
  await answerPayload(socket, logger, "REST request", async () =>
    encodeRestAnswer(await router.handle(decodeRestRequest(payload), callbacks)),
  );
}

/** A job step: its answer, or an error code and a message, logged here (the job then fails). */
async function answerJobStep(
  socket: Socket,
  { jobStep, logger }: Services,
  { payload }: Frame,
  callbacks: OrthancCallbacks,
): Promise<void> {
  await answerPayload(socket, logger, "job step", async () => {
    if (jobStep === undefined) {
      throw new StorageError("BRIDGE_FAILED", { operation: "job step" }, "this daemon runs no jobs");
    }
    return jobStepAnswer(decodeJobRequest(payload), (state) => jobStep(state, callbacks));
  });
}

/** Answers with the payload `make` returns, or with an error code and a message when it throws. */
async function answerPayload(
  socket: Socket,
  logger: Logger,
  what: string,
  make: () => Promise<Buffer>,
): Promise<void> {
  let answer: Buffer;
  try {
    answer = await make();
  } catch (error) {
    const message = `${what}: ${describeCause(error)}`;
    logger.error(message);
    const text = Buffer.from(message, "utf8");
    await write(
      socket,
      Buffer.concat([encodeResponseHeader(OrthancCode.InternalError, text.length), text]),
    ).catch(() => socket.destroy());
    return;
  }
  await write(
    socket,
    Buffer.concat([encodeResponseHeader(OrthancCode.Success, answer.length), answer]),
  ).catch(() => socket.destroy());
}

/**
 * The header, then the body as it streams from the store. Once the header is out the answer cannot
 * change: a body that fails or comes up short closes the connection, and the bridge sees it.
 */
async function sendBody(
  socket: Socket,
  { size, body, bytes, pieces, recycle, file }: AttachmentRead,
  lent: LentFile,
): Promise<void> {
  if (file !== undefined) {
    // Held open until the bridge has opened it too (lent-file.ts); a failed write closes it at once.
    lent.lend(body);
    await write(socket, encodeFileAnswer(file.fd, size, file.start, process.pid)).catch((error: unknown) => {
      lent.release();
      socket.destroy();
      throw new StorageError(
        "BRIDGE_FAILED",
        { operation: "sending", subject: `a file answer of ${size} bytes to Orthanc`, cause: error },
        describeCause(error),
      );
    });
    return;
  }
  const inHand = bytes !== undefined ? [bytes] : pieces;
  if (inHand !== undefined) {
    await sendBytes(socket, size, body, inHand);
    recycle?.(); // only once the socket is done with them: a failed send drops them instead
    return;
  }
  await write(socket, encodeResponseHeader(OrthancCode.Success, size));
  let sent = 0;
  try {
    for await (const chunk of body) {
      const bytes = chunk as Buffer;
      sent += bytes.length;
      if (sent > size) throw bodyMismatch(size, `the body is longer than the ${size} bytes announced`);
      await write(socket, bytes);
    }
    if (sent !== size) throw bodyMismatch(size, `the body ended after ${sent} of ${size} bytes`);
  } catch (error) {
    body.destroy();
    socket.destroy();
    throw sendingFailed(size, error, `failed after ${sent}: ${describeCause(error)}`);
  }
}

/**
 * An answer whose bytes are all in memory, in one or more pieces (a decrypted plaintext as the cipher
 * produced it): the header and the pieces leave corked, in one writev (one system call and one wake-up of
 * the bridge for a small answer), then `body`, unread, is destroyed.
 */
async function sendBytes(socket: Socket, size: number, body: Readable, pieces: BytePieces): Promise<void> {
  try {
    const inHand = piecesLength(pieces);
    if (inHand !== size) throw bodyMismatch(size, `${inHand} bytes in hand for ${size} announced`);
    socket.cork();
    const sent = [write(socket, encodeResponseHeader(OrthancCode.Success, size))];
    for (const piece of pieces) sent.push(write(socket, piece));
    socket.uncork();
    await Promise.all(sent);
  } catch (error) {
    socket.destroy();
    throw sendingFailed(size, error);
  } finally {
    body.destroy();
  }
}

/**
 * An answer of `size` bytes that could not be sent whole. A store's own failure keeps its code (INTEGRITY,
 * STORE_FAILED...); anything else is the connection's.
 */
function sendingFailed(size: number, error: unknown, detail = describeCause(error)): StorageError {
  return new StorageError(
    isStorageError(error) ? error.code : "BRIDGE_FAILED",
    { operation: "sending", subject: `${size} bytes to Orthanc`, cause: error },
    detail,
  );
}

/** A body of another size than the store announced: the object changed while it was read. */
function bodyMismatch(size: number, detail: string): StorageError {
  return new StorageError("STORE_FAILED", { operation: "read", subject: `a body of ${size} bytes` }, detail);
}

/** Write with back-pressure: resolves once the socket took the bytes. */
function write(socket: Socket, bytes: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    if (socket.destroyed) {
      reject(bridgeClosed());
      return;
    }
    socket.write(bytes, (error) => (error ? reject(error) : resolve()));
  });
}
