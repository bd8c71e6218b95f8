// The driver interface: tiny and cloud-neutral. A driver moves bytes under keys; it knows nothing of
// Orthanc, uuids or encryption. Every driver passes test/stores/conformance.ts against a real server.

import type { Readable } from "node:stream";
import { joinPieces, piecesLength, type BytePieces } from "../byte-pieces.js";

/** Bytes [start, end) of an object; end is exclusive. */
export interface ByteRange {
  start: number;
  end: number;
}

export interface ObjectBody {
  /** Size of the whole stored object, from the same request that opened the body (no extra round trip). */
  size: number;
  /** The bytes asked for: the whole object, or just the range. Must be consumed or destroyed. */
  body: Readable;
  /**
   * The same bytes, when the driver already holds them all (a small local file, read in one go): a caller
   * may take them instead of reading `body`, and then destroys `body`.
   */
  bytes?: Buffer;
  /**
   * With `bytes`: hands their memory back to the driver for its next reads. Call it once done with them
   * (sent, or decoded into other memory), then never touch them again; not calling it is fine.
   */
  recycle?: () => void;
  /**
   * When asked for (GetOptions.file) and the driver can: the bytes lie in an open local file, from
   * `file.start`, and `body` reads them from it lazily. A caller may hand the descriptor to another process
   * instead of reading `body` (the bridge then reads the file itself); destroying `body` closes it.
   */
  file?: OpenFileBody;
}

/** The open file behind an ObjectBody (its `file`). */
export interface OpenFileBody {
  fd: number;
  /** Where the body's bytes start in the file. */
  start: number;
  /** The first `count` bytes of the body (fewer when it is shorter), read at once. */
  peek(count: number): Buffer;
}

/**
 * An object's bytes in a local file, opened at once on the caller's thread (ObjectStore.openLocalFile). The
 * caller owns the descriptor and closes it (closeSync) once done, also when it hands it on.
 */
export interface LocalFileObject {
  fd: number;
  /** Size of the whole stored object. */
  size: number;
  /** Where the bytes asked for start in the file. */
  start: number;
}

export interface GetOptions {
  /** Prefer an open file (ObjectBody.file) to reading the bytes, when the driver is a local one. */
  file?: boolean;
  /**
   * A range whose end passes the object's end is answered up to the end, as HTTP does, instead of refused:
   * the body brings min(end, size) - start bytes, `size` stays the whole object's. A range that starts at or
   * past the end (but is not empty) is still BAD_RANGE, as HTTP's 416. For a reader that does not know the
   * size yet and wants one request (src/area/v2-range-read.ts).
   */
  cutAtEnd?: boolean;
}

export interface ObjectInfo {
  key: string;
  size: number;
}

export interface ObjectStore {
  /** Short driver name for messages and metrics: "folder", "s3", ... */
  readonly driver: string;
  /** Where the objects go, for messages: a folder, "s3://bucket", ... */
  readonly location: string;
  /**
   * Store an object, replacing any previous one atomically: a reader sees the old or the new bytes. Once it
   * resolved, nothing of the store refers to `data` any more: the caller may free its memory (free-memory.ts).
   */
  put(key: string, data: Uint8Array): Promise<void>;
  /**
   * As put, the object given as the list of its pieces (an encrypted object as the cipher produced it, not
   * joined: src/byte-pieces.ts), `size` bytes in all, sent without a copy into one buffer (a writev, a request
   * body of several buffers). Optional: storePieces joins the pieces for a driver without it. Once it
   * resolved, nothing of the store refers to the pieces any more, as with put.
   */
  putPieces?(key: string, pieces: BytePieces, size: number): Promise<void>;
  /**
   * Store an object of exactly `size` bytes read from `body` as they come, replacing any previous one
   * atomically; `body` is consumed, or destroyed on failure. A body that fails or does not bring exactly
   * `size` bytes fails the put and leaves the previous object (or none) in place. How much of the object
   * the driver holds at once: docs/performance.md#memory.
   */
  putStream(key: string, body: Readable, size: number): Promise<void>;
  /**
   * Open an object, or a range of it; null when it does not exist. A range that does not lie within the
   * object (start > end, or end > size) is a BAD_RANGE StorageError; an empty range within it is fine.
   * With `options.cutAtEnd`, a range passing the end is cut there instead (GetOptions).
   */
  get(key: string, range?: ByteRange, options?: GetOptions): Promise<ObjectBody | null>;
  /**
   * Drivers of local files only, for the daemon's direct path of a read (src/area/direct-file-read.ts): the
   * object (or a range of it) as an open file, opened in one unit of work on this thread, with no stream and
   * no promise. Undefined when this cannot be done at once (no such file, a range outside it, an error, an
   * object held elsewhere): the caller then uses `get`, which says why. Never fails.
   */
  openLocalFile?(key: string, range?: ByteRange): LocalFileObject | undefined;
  /** Size of an object, or null when it does not exist. */
  head(key: string): Promise<ObjectInfo | null>;
  /** Delete an object. Deleting a missing object is not an error. */
  delete(key: string): Promise<void>;
  /** Every object whose key starts with `prefix`, in no particular order. */
  list(prefix: string): AsyncIterable<ObjectInfo>;
  /** Release connections and handles. */
  close(): Promise<void>;
  /**
   * Change an object's storage class in place (S3 `StorageClass`, Azure access tier, GCS storage class:
   * docs/backends.md, "Tier rules"), then read it back: resolves with the class the backend now reports.
   * NOT_FOUND when the object does not exist. Absent on backends without storage classes (a folder).
   */
  setStorageClass?(key: string, storageClass: string): Promise<string>;
}

/**
 * Stores an object given as pieces: one piece as it is (put), several by the driver's putPieces, or joined
 * into one buffer for a driver without it.
 */
export function storePieces(store: ObjectStore, key: string, pieces: BytePieces): Promise<void> {
  if (pieces.length === 1) return store.put(key, pieces[0] as Uint8Array);
  if (store.putPieces !== undefined) return store.putPieces(key, pieces, piecesLength(pieces));
  return store.put(key, joinPieces(pieces));
}
