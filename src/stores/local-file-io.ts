// Small local files read in one unit of work on the daemon's own thread: open, size, read and close as
// consecutive system calls, instead of one trip through libuv's thread pool for each (writes: the same
// in writeBytesAtomicallyNow, src/atomic-file.ts).
//
// Why (issue 15, measured in docs/performance.md, "History" of issue 15): a 270 KB DICOM file comes from the page cache in
// 20 to 50 µs, but each pool trip costs a wake-up of a pool thread and one of the event loop, and on 2 busy
// cores those waits made a read through the plugin 2 to 4 times slower than Orthanc's own storage. A pool
// of worker threads doing the same unit was measured too: one message each way cost more than the unit.
// Above SYNC_FILE_LIMIT the caller streams instead, so the event loop never stalls for long on a large one.

import { closeSync, constants, createReadStream, fstatSync, openSync, read, readSync } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { Readable } from "node:stream";

import type { OpenFileBody } from "./object-store.js";

/** Largest file (or range) read, or written, in one unit on the event loop; larger ones are streamed. */
export const SYNC_FILE_LIMIT = 4 * 1024 * 1024;

/** A file opened for reading and its size, read from the descriptor (no race with a rename). */
export interface OpenedFile {
  fd: number;
  size: number;
}

/** Opens `path` for reading; null when it (or a folder of its path) does not exist. Other errors are thrown. */
export function openToRead(path: string): OpenedFile | null {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY);
  } catch (error) {
    if (isMissing(error)) return null;
    throw error;
  }
  try {
    return { fd, size: fstatSync(fd).size };
  } catch (error) {
    closeSync(fd);
    throw error;
  }
}

/**
 * Bytes [start, end) of an open file, read whole into a buffer from `buffers` (or a new one); throws when the
 * file is shorter than that now.
 */
export function readRange(fd: number, start: number, end: number, buffers?: ReadBuffers): Buffer {
  // Not zero-filled: every byte is overwritten, or the buffer is dropped with an error.
  const bytes = buffers?.take(end - start) ?? Buffer.allocUnsafe(end - start);
  let filled = 0;
  while (filled < bytes.length) {
    const read = readSync(fd, bytes, filled, bytes.length - filled, start + filled);
    if (read === 0) {
      // A cause: the folder store wraps it in a STORE_FAILED StorageError naming the file.
      throw new Error(`the file ended after ${start + filled} bytes (it was truncated while read)`);
    }
    filled += read;
  }
  return bytes;
}

/** Reads smaller than this take a fresh buffer: small allocations are cheap, and Node pools the smallest. */
const MIN_POOLED = 16 * 1024;

/**
 * Buffers for whole-file reads, reused once their bytes were sent. Without them every read allocated a
 * buffer of its file's size, and the garbage collector's work on them took more of the daemon's CPU than the
 * reads themselves (about 120 µs of a 270 KB read, in a CPU profile). A buffer comes back only through
 * `give`, which its one consumer calls once done with it; one never given back is collected as usual.
 * Buffers are sized in powers of two, and at most `capacity` bytes of them wait for reuse.
 */
export class ReadBuffers {
  private readonly free = new Map<number, ArrayBuffer[]>();
  /** Memory lent out, so that a buffer given back twice (or one never lent) is never pooled. */
  private readonly lent = new WeakSet<ArrayBuffer>();
  private freeBytes = 0;

  constructor(private readonly capacity = 32 * 1024 * 1024) {}

  /** A buffer of `size` bytes, whose contents are not cleared. */
  take(size: number): Buffer {
    if (size < MIN_POOLED || size > SYNC_FILE_LIMIT) return Buffer.allocUnsafe(size);
    const capacity = 2 ** Math.ceil(Math.log2(size));
    let memory = this.free.get(capacity)?.pop();
    if (memory === undefined) memory = new ArrayBuffer(capacity);
    else this.freeBytes -= capacity;
    this.lent.add(memory);
    return Buffer.from(memory, 0, size);
  }

  /** Gives back a buffer from `take` whose bytes are no longer used by anyone. */
  give(bytes: Uint8Array): void {
    const memory = bytes.buffer;
    if (!(memory instanceof ArrayBuffer) || !this.lent.delete(memory)) return;
    if (this.freeBytes + memory.byteLength > this.capacity) return;
    const list = this.free.get(memory.byteLength) ?? [];
    list.push(memory);
    this.free.set(memory.byteLength, list);
    this.freeBytes += memory.byteLength;
  }

  /** Bytes waiting for reuse (for tests). */
  get pooledBytes(): number {
    return this.freeBytes;
  }
}

/** A stream of bytes already in memory (not object mode: a reader may ask for any count of bytes). */
export function bufferedBody(bytes: Uint8Array): Readable {
  const body = new Readable({ read: () => undefined });
  if (bytes.length > 0) body.push(bytes);
  body.push(null);
  return body;
}

/**
 * Bytes [start, end) of an open file (a descriptor or a FileHandle), streamed through the thread pool in
 * chunks of `chunk` bytes (Node's default when absent), for the reads above SYNC_FILE_LIMIT. The stream owns
 * the file from now on: it closes it at its end, on an error, or when destroyed.
 */
export function fileRangeStream(
  file: number | FileHandle,
  start: number,
  end: number,
  chunk?: number,
): Readable {
  // An empty range would be start..start-1, which createReadStream refuses.
  if (end <= start) throw new RangeError(`an empty range [${start}, ${end}) is read without a stream`);
  return createReadStream("", {
    fd: file,
    start,
    end: end - 1,
    autoClose: true,
    ...(chunk === undefined ? {} : { highWaterMark: chunk }),
  });
}

/** Largest read at a time of a FileBody read in this process. */
const FILE_BODY_CHUNK = 1024 * 1024;

/**
 * Bytes [start, end) of an open file as a stream that reads nothing until it is read, and the file itself
 * (ObjectBody.file) for a caller that hands the descriptor on instead: the daemon answering the bridge with a
 * file (protocol.ts, file answers), which copies the bytes once, straight into Orthanc's buffer. Destroying
 * the stream (or reading it to its end) closes the descriptor, once.
 */
export class FileBody extends Readable {
  readonly file: OpenFileBody;
  private position: number;
  /** A read in the thread pool: the descriptor is closed once it is back, never under it. */
  private reading = false;
  private open = true;

  constructor(
    private readonly fd: number,
    start: number,
    private readonly end: number,
  ) {
    super({ highWaterMark: FILE_BODY_CHUNK });
    this.position = start;
    this.file = { fd, start, peek: (count) => readRange(fd, start, start + Math.min(count, end - start)) };
  }

  override _read(): void {
    const length = Math.min(FILE_BODY_CHUNK, this.end - this.position);
    if (length <= 0) {
      this.push(null);
      return;
    }
    const bytes = Buffer.allocUnsafe(length);
    this.reading = true;
    read(this.fd, bytes, 0, length, this.position, (error, count) => {
      this.reading = false;
      if (this.destroyed) this.close();
      else if (error) this.destroy(error);
      else if (count === 0)
        this.destroy(new Error(`the file ended after ${this.position} bytes (it was truncated while read)`));
      else {
        this.position += count;
        this.push(count === length ? bytes : bytes.subarray(0, count));
      }
    });
  }

  override _destroy(error: Error | null, done: (error?: Error | null) => void): void {
    try {
      if (!this.reading) this.close();
      done(error);
    } catch (closeError) {
      done(error ?? (closeError as Error));
    }
  }

  private close(): void {
    if (!this.open) return;
    this.open = false;
    closeSync(this.fd); // no thread-pool trip for a close
  }
}

export function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === "ENOENT" || code === "ENOTDIR";
}
