// The write-behind spool (issue 17): an ObjectStore in front of another. A put is answered once the
// object's stored bytes are synced in a file of the spool folder (written under a temporary name, then
// renamed: spool-file.ts); uploaders copy the files to the backend in the background, oldest first, a
// few at a time, retrying with backoff. Reads and heads of a spooled object are served from its file;
// a delete of an object never uploaded removes its file and nothing else, and one that races an upload in
// flight leaves a tombstone, so the backend's copy is deleted once the upload lands (also after a crash).
// Each file records the SHA-256 of its data: a file damaged on disk is moved to rejected/, never uploaded
// nor served.
//
// The folder is this node's alone (a pid lock file says so); a restart rebuilds the queue from it. A daemon
// draining at exit hands the folder over at once to a new one that asks for it (HANDOVER_FILE), so that a
// restart after a crash of the supervisor does not wait out the old daemon's drain.

import { createHash, type Hash } from "node:crypto";
import { closeSync, read } from "node:fs";
import { mkdir, readFile, rename, unlink, writeFile, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { promisify } from "node:util";

import { syncFolder, writeFileAtomically, writePieces } from "../../atomic-file.js";
import type { BytePieces } from "../../byte-pieces.js";
import { StorageError, describeCause } from "../../errors.js";
import type { Logger } from "../../log.js";
import { storeError } from "../folder.js";
import {
  FileBody,
  SYNC_FILE_LIMIT,
  bufferedBody,
  fileRangeStream,
  isMissing,
  openToRead,
  readRange,
} from "../local-file-io.js";
import type {
  ByteRange,
  GetOptions,
  LocalFileObject,
  ObjectBody,
  ObjectInfo,
  ObjectStore,
} from "../object-store.js";
import { rangeWithin } from "../range-errors.js";
import {
  DIGEST_OFFSET,
  HANDOVER_FILE,
  LOCK_FILE,
  encodeSpoolHeader,
  listSpoolFolder,
  readSpoolHeader,
  spoolFileName,
  type SpoolFileKind,
} from "./spool-file.js";

export interface SpoolOptions {
  /** The spool folder (`<LocalDisk.Path>/spool`); created when missing. */
  folder: string;
  /** LocalDisk.MaxPendingSize: the most bytes of objects waiting for upload. */
  maxPendingBytes: number;
  /** How many uploads run at once. */
  concurrency: number;
  logger: Logger;
  /** The first retry's delay; each further failure doubles it, up to retryMaxMs. */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** How long to wait for another live daemon to release the folder (e.g. one still draining at exit). */
  lockWaitMs?: number;
}

/** How a drain at exit ended: all uploaded, its time out, or the folder handed over to a new daemon. */
export type DrainOutcome = "drained" | "timed out" | "handed over";

/** What waits in the spool, for health and metrics. */
export interface SpoolBacklog {
  /** Objects waiting for upload (or for the backend's delete of a tombstone). */
  objects: number;
  bytes: number;
  /** Age of the oldest waiting object in seconds; 0 when none waits. */
  oldestAgeS: number;
  /** Uploads in progress. */
  uploading: number;
  /** The last upload failure, while failures continue (cleared by a success). */
  failing?: { since: number; error: string; attempts: number };
}

const DEFAULT_RETRY_BASE_MS = 500;
const DEFAULT_RETRY_MAX_MS = 30_000;
const DEFAULT_LOCK_WAIT_MS = 15_000;
/** While uploads keep failing, one log line per this interval at most (the first failure is always logged). */
const FAILURE_LOG_INTERVAL_MS = 60_000;
const REJECTED_FOLDER = "rejected";
/** How often a daemon draining at exit looks for a new daemon asking for the folder. */
const HANDOVER_POLL_MS = 200;
/** Reads at a time when a large spooled object's digest is checked. */
const DIGEST_CHUNK = 1024 * 1024;
const readAt = promisify(read);

interface Entry {
  seq: number;
  key: string;
  /** Bytes of the object (the data, without the header). */
  size: number;
  dataOffset: number;
  createdAt: number;
  /** "deleted": a tombstone; its object must be deleted from the backend (after any upload in flight). */
  kind: SpoolFileKind;
  /** The rename that made it a tombstone, awaited before the tombstone file is used. */
  tombstoned?: Promise<void>;
  uploading: boolean;
  /** A newer put of the key replaced it while it was uploading: its file goes once the upload ends. */
  superseded: boolean;
  attempts: number;
  /** Not retried before this time (ms since the epoch). */
  notBefore: number;
  /** The SHA-256 of the data written; none for a file of the format without it (spool-file.ts). */
  digest: Buffer | undefined;
  /**
   * Whether the backend may hold the key already: a version of it was uploading, or may have been, when
   * this one came; or the file was found at start (a crash may have come between its upload and its
   * file's removal). A delete of an entry without it sends nothing to the backend: nothing of the key ever
   * left this disk (Orthanc's keys are new uuids; see docs/reliability.md#write-behind).
   */
  maybeUploaded: boolean;
  /** Its file was found damaged and moved to rejected/. */
  rejected: boolean;
}

export class SpoolStore implements ObjectStore {
  readonly driver: string;
  readonly location: string;

  /** Every spool file, oldest first (Map order is insertion order, which is sequence order). */
  private readonly queue = new Map<number, Entry>();
  /** The current spooled object of each key, not deleted. */
  private readonly live = new Map<string, Entry>();
  /**
   * Keys whose spooled file was found damaged (and moved to rejected/): their reads fail saying so, until a
   * new put or a delete of the key. Few: a damaged file is rare.
   */
  private readonly rejectedKeys = new Map<string, Entry>();
  /**
   * The latest tombstone of each key whose delete has not reached the backend yet: the key reads as deleted
   * meanwhile (an upload in flight when it was deleted may land in the backend before the tombstone's delete).
   */
  private readonly tombstones = new Map<string, Entry>();
  /** The entry whose upload (or delete) is in flight, per key: at most one per key at a time. */
  private readonly inFlight = new Map<string, Entry>();
  private pendingBytes = 0;
  private nextSeq: number;
  private consecutiveFailures = 0;
  private pauseUntil = 0;
  private failing: { since: number; error: string; attempts: number; loggedAt: number } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private drainWaiters: Array<() => void> = [];
  /** Entries being processed (upload or delete, then the removal of their file). */
  private processing = 0;
  private idleWaiters: Array<() => void> = [];
  /** Handing the folder over: no further upload starts. */
  private yielding = false;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;

  private constructor(
    private readonly backend: ObjectStore,
    private readonly options: SpoolOptions,
    firstSeq: number,
  ) {
    this.driver = backend.driver;
    this.location = backend.location;
    this.nextSeq = firstSeq;
    this.retryBaseMs = options.retryBaseMs ?? DEFAULT_RETRY_BASE_MS;
    this.retryMaxMs = options.retryMaxMs ?? DEFAULT_RETRY_MAX_MS;
  }

  /**
   * Open the spool folder in front of `backend`: take its lock, remove the temporary files of writes a
   * crash interrupted (never acknowledged), set damaged files aside, and queue the rest for upload.
   */
  static async open(backend: ObjectStore, options: SpoolOptions): Promise<SpoolStore> {
    const { folder, logger } = options;
    try {
      await mkdir(folder, { recursive: true, mode: 0o700 });
    } catch (cause) {
      throw storeError("open the write-behind spool folder", folder, cause);
    }
    await takeLock(folder, options.lockWaitMs ?? DEFAULT_LOCK_WAIT_MS);
    const listing = await listSpoolFolder(folder);
    for (const name of listing.temporary) await unlink(join(folder, name));
    if (listing.temporary.length > 0) {
      logger.info(`write-behind spool ${folder}: removed ${listing.temporary.length} half-written file(s)`);
    }
    for (const name of listing.foreign) {
      logger.warn(`write-behind spool ${folder}: ${name} is not a spool file; left alone`);
    }
    const lastSeq = listing.files.at(-1)?.seq ?? 0;
    const spool = new SpoolStore(backend, options, lastSeq + 1);
    for (const file of listing.files) await spool.recover(file.name, file.seq, file.kind);
    const backlog = spool.backlog();
    if (backlog.objects > 0) {
      logger.info(
        `write-behind spool ${folder}: ${backlog.objects} object(s), ${backlog.bytes} bytes to upload to ${backend.location}`,
      );
    }
    spool.kick();
    return spool;
  }

  async put(key: string, data: Uint8Array): Promise<void> {
    await this.putPieces(key, [data], data.length);
  }

  /** The header and the pieces in one writev: the spool file is written without joining them. */
  async putPieces(key: string, pieces: BytePieces, size: number): Promise<void> {
    await this.admit(key, size, async (file, header, _path, hash) => {
      for (const piece of pieces) hash.update(piece);
      await writePieces(file, [header, ...pieces]);
    });
  }

  async putStream(key: string, body: Readable, size: number): Promise<void> {
    try {
      await this.admit(key, size, async (file, header, path, hash) => {
        await writeAll(file, header);
        let written = 0;
        for await (const chunk of body as AsyncIterable<Uint8Array>) {
          written += chunk.length;
          if (written > size) throw sizeMismatch(path, written, size);
          hash.update(chunk);
          await writeAll(file, chunk);
        }
        if (written < size) throw sizeMismatch(path, written, size);
      });
    } catch (error) {
      body.destroy();
      throw error;
    }
  }

  async get(key: string, range?: ByteRange, options?: GetOptions): Promise<ObjectBody | null> {
    const entry = this.live.get(key);
    if (entry !== undefined) {
      const spooled = await this.openSpooled(entry, range, options ?? {});
      if (spooled !== null) return spooled;
      // Uploaded (and its file removed) since the lookup: the backend has it now.
    }
    const rejected = this.rejectedKeys.get(key);
    if (rejected !== undefined) throw this.rejectionError(rejected);
    if (this.tombstones.has(key)) return null;
    return this.backend.get(key, range, options);
  }

  /**
   * A spooled object's bytes in its spool file (after the header), once they matched their digest, else the
   * backend's local file if any. Undefined, for `get` to answer (and say why), when the object is large (its
   * check reads through the thread pool), damaged, deleted, or its file is gone.
   */
  openLocalFile(key: string, range?: ByteRange): LocalFileObject | undefined {
    const entry = this.live.get(key);
    if (entry === undefined) {
      if (this.rejectedKeys.has(key) || this.tombstones.has(key)) return undefined;
      return this.backend.openLocalFile?.(key, range);
    }
    const { start, end } = range ?? { start: 0, end: entry.size };
    if (start < 0 || start > end || end > entry.size) return undefined; // BAD_RANGE, from `get`
    if (entry.digest !== undefined && entry.size > SYNC_FILE_LIMIT) return undefined;
    let opened;
    try {
      opened = openToRead(this.pathOf(entry));
    } catch {
      return undefined; // `get` says why
    }
    // Gone: uploaded since the lookup, `get` reads the backend.
    if (opened === null) return undefined;
    try {
      if (entry.digest !== undefined)
        this.checked(entry, readRange(opened.fd, entry.dataOffset, entry.dataOffset + entry.size));
    } catch {
      closeSync(opened.fd);
      return undefined; // damaged: `get` rejects the file and says so
    }
    return { fd: opened.fd, size: entry.size, start: entry.dataOffset + start };
  }

  async head(key: string): Promise<ObjectInfo | null> {
    const entry = this.live.get(key);
    if (entry !== undefined) return { key, size: entry.size };
    const rejected = this.rejectedKeys.get(key);
    if (rejected !== undefined) throw this.rejectionError(rejected);
    if (this.tombstones.has(key)) return null;
    return this.backend.head(key);
  }

  /**
   * Delete from the spool and the backend. An object never uploaded only loses its file: the backend is not
   * asked (it may be down: that is when objects wait here). A version of the object whose upload is in
   * flight becomes a tombstone instead (renamed, folder synced): the uploader deletes the object from the
   * backend once the upload ends, retrying as for an upload, also after a crash.
   */
  async delete(key: string): Promise<void> {
    const entry = this.live.get(key);
    const rejected = this.rejectedKeys.get(key);
    this.rejectedKeys.delete(key);
    let backendMayHoldIt = rejected?.maybeUploaded ?? true;
    if (entry !== undefined) {
      this.live.delete(key);
      if (!entry.uploading) {
        this.queue.delete(entry.seq);
        await this.removeFile(entry);
        await syncFolder(this.options.folder);
        backendMayHoldIt = entry.maybeUploaded;
      }
    }
    const flying = this.inFlight.get(key);
    if (flying !== undefined && flying.kind === "spool") {
      // Marked first, in this tick: the uploader deletes the object once its upload lands, whatever follows.
      const from = this.pathOf(flying);
      flying.kind = "deleted";
      this.tombstones.set(key, flying);
      const renamed = rename(from, this.pathOf(flying)).then(() => syncFolder(this.options.folder));
      flying.tombstoned = renamed.catch(() => undefined);
      try {
        await renamed;
      } catch (cause) {
        // Without its tombstone on disk, a crash before the upload lands would leave the object behind.
        throw storeError("mark as deleted in the write-behind spool", from, cause);
      }
      return; // the tombstone's delete removes whatever version the backend holds
    }
    if (flying !== undefined) return; // a tombstone of the key is already in flight: it deletes the key
    if (backendMayHoldIt) await this.backend.delete(key);
  }

  /** The backend's objects, and the spooled ones not yet uploaded (each key once). */
  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const spooled = new Map<string, number>();
    for (const [key, entry] of this.live) if (key.startsWith(prefix)) spooled.set(key, entry.size);
    for await (const info of this.backend.list(prefix)) {
      if (!spooled.has(info.key) && !this.tombstones.has(info.key)) yield info;
    }
    for (const [key, size] of spooled) yield { key, size };
  }

  /** Stops the uploaders (uploads in flight are abandoned: their files stay) and releases the lock. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    for (const resolve of this.drainWaiters.splice(0)) resolve();
    await releaseLock(this.options.folder);
    await this.backend.close();
  }

  backlog(): SpoolBacklog {
    const oldest = this.queue.values().next().value;
    const backlog: SpoolBacklog = {
      objects: this.queue.size,
      bytes: this.pendingBytes,
      oldestAgeS: oldest === undefined ? 0 : Math.max(0, (Date.now() - oldest.createdAt) / 1000),
      uploading: this.inFlight.size,
    };
    if (this.failing !== undefined) {
      const { since, error, attempts } = this.failing;
      backlog.failing = { since, error, attempts };
    }
    return backlog;
  }

  /**
   * Resolves true once the spool is empty, or false after `timeoutMs` (uploads then go on). Retries at once:
   * a backoff begun during an outage must not outlast the time given to drain (e.g. at shutdown).
   */
  drain(timeoutMs: number): Promise<boolean> {
    if (this.queue.size === 0) return Promise.resolve(true);
    this.pauseUntil = 0;
    for (const entry of this.queue.values()) entry.notBefore = 0;
    this.kick();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        resolve(this.queue.size === 0);
      };
      const timer = setTimeout(() => {
        this.drainWaiters = this.drainWaiters.filter((w) => w !== done);
        resolve(false);
      }, timeoutMs);
      this.drainWaiters.push(done);
    });
  }

  /**
   * The drain at exit: drain(timeoutMs), except that a daemon starting on this folder meanwhile (it asks for
   * the folder in HANDOVER_FILE while it waits for the lock) takes over at once. This one then starts no
   * further upload and resolves once those under way ended, their files removed; its close() releases the
   * lock. Safe: the new daemon reads the folder only once it holds the lock, and nothing of this one still
   * writes to the backend or the folder by then.
   */
  async drainAtExit(timeoutMs: number): Promise<DrainOutcome> {
    let timer: NodeJS.Timeout | undefined;
    const requested = new Promise<void>((resolve) => {
      timer = setInterval(() => {
        void this.handoverRequested().then((asked) => asked && resolve());
      }, HANDOVER_POLL_MS);
    });
    try {
      const outcome = await Promise.race([
        this.drain(timeoutMs).then((drained): DrainOutcome => (drained ? "drained" : "timed out")),
        requested.then((): DrainOutcome => "handed over"),
      ]);
      if (outcome === "handed over") {
        this.yielding = true;
        clearTimeout(this.timer);
        if (this.processing > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
      }
      return outcome;
    } finally {
      clearInterval(timer);
    }
  }

  /** Whether another live daemon asks for the folder. */
  private async handoverRequested(): Promise<boolean> {
    const text = await readFile(join(this.options.folder, HANDOVER_FILE), "utf8").catch(() => "");
    const pid = Number.parseInt(text, 10);
    return Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid);
  }

  // --- writing into the spool ---

  private async admit(
    key: string,
    size: number,
    write: (file: FileHandle, header: Buffer, path: string, hash: Hash) => Promise<void>,
  ): Promise<void> {
    const { folder, maxPendingBytes } = this.options;
    if (this.closed) {
      throw new StorageError("STORE_FAILED", { operation: "write", subject: key }, "the spool is closed");
    }
    if (this.pendingBytes + size > maxPendingBytes) throw this.spoolFull(key, size);
    this.pendingBytes += size; // reserved now: concurrent creates count each other
    const seq = this.nextSeq++;
    const createdAt = Date.now();
    const header = encodeSpoolHeader(key, size, createdAt);
    const path = join(folder, spoolFileName(seq, "spool"));
    let digest: Buffer | undefined;
    try {
      await writeFileAtomically(
        path,
        async (file) => {
          const hash = createHash("sha256");
          await write(file, header, path, hash);
          digest = hash.digest();
          await file.write(digest, 0, digest.length, DIGEST_OFFSET);
        },
        { fsync: true },
      );
    } catch (cause) {
      this.pendingBytes -= size;
      throw cause instanceof StorageError
        ? cause
        : storeError("write to the write-behind spool", path, cause);
    }
    const entry: Entry = {
      seq,
      key,
      size,
      dataOffset: header.length,
      createdAt,
      kind: "spool",
      uploading: false,
      superseded: false,
      attempts: 0,
      notBefore: 0,
      digest,
      maybeUploaded: this.mayHaveBeenUploaded(key),
      rejected: false,
    };
    await this.supersede(key);
    this.rejectedKeys.delete(key);
    this.live.set(key, entry);
    this.queue.set(seq, entry);
    this.kick();
  }

  /** Whether a version of `key` already in the spool is uploading, or may have reached the backend. */
  private mayHaveBeenUploaded(key: string): boolean {
    const older = this.live.get(key);
    return this.inFlight.has(key) || (older !== undefined && (older.uploading || older.maybeUploaded));
  }

  /** A newer put of `key` replaces the spooled one: dropped now, or once its upload ends. */
  private async supersede(key: string): Promise<void> {
    const older = this.live.get(key);
    if (older === undefined) return;
    this.live.delete(key);
    if (older.uploading) {
      older.superseded = true;
      return;
    }
    this.queue.delete(older.seq);
    await this.removeFile(older).catch((error: unknown) => {
      this.options.logger.warn(`write-behind spool: ${describeCause(error)}`);
    });
  }

  private spoolFull(key: string, size: number): StorageError {
    const { maxPendingBytes } = this.options;
    const why =
      this.failing === undefined
        ? `the uploads to ${this.location} are slower than the objects arrive`
        : `uploads to ${this.location} have failed since ${new Date(this.failing.since).toISOString()} ` +
          `(${this.failing.error})`;
    return new StorageError(
      "SPOOL_FULL",
      { operation: "write to the write-behind spool", subject: key },
      `${this.pendingBytes} bytes wait for upload and ${size} more would pass LocalDisk.MaxPendingSize ` +
        `(${maxPendingBytes} bytes): ${why}. Creates succeed again as the spool drains`,
    );
  }

  // --- reading spooled objects ---

  /**
   * The object (or range) from its spool file, once its data matched the digest recorded at write (the
   * whole data is checked, even for a range); null when the file is gone (uploaded meanwhile). With
   * `options.file`, the open spool file itself and a body that reads it only if it is read (ObjectBody.file).
   */
  private async openSpooled(
    entry: Entry,
    range: ByteRange | undefined,
    options: GetOptions,
  ): Promise<ObjectBody | null> {
    const path = this.pathOf(entry);
    const asked = range ?? { start: 0, end: entry.size };
    const within = rangeWithin(asked, entry.size, options.cutAtEnd);
    if (within === undefined) {
      throw new StorageError(
        "BAD_RANGE",
        { operation: "read range", subject: path },
        `bytes [${asked.start}, ${asked.end}) asked of an object of ${entry.size} bytes`,
      );
    }
    const { start, end } = within;
    const asFile = options.file === true;
    const opened = this.openFile(entry, "read from the write-behind spool");
    if (opened === null) return null;
    const { fd } = opened;
    const from = entry.dataOffset + start;
    let streaming = false;
    try {
      let data: Buffer | undefined;
      if (entry.size <= SYNC_FILE_LIMIT) {
        data = this.checked(entry, readRange(fd, entry.dataOffset, entry.dataOffset + entry.size));
      } else {
        this.checked(entry, undefined, await digestOf(fd, entry.dataOffset, entry.dataOffset + entry.size));
      }
      if (asFile) {
        const body = new FileBody(fd, from, entry.dataOffset + end);
        streaming = true; // the body owns the descriptor
        return { size: entry.size, body, file: body.file };
      }
      if (data !== undefined) {
        const bytes = start === 0 && end === entry.size ? data : data.subarray(start, end);
        return { size: entry.size, body: bufferedBody(bytes), bytes };
      }
      if (end - start <= SYNC_FILE_LIMIT) {
        const bytes = readRange(fd, from, entry.dataOffset + end);
        return { size: entry.size, body: bufferedBody(bytes), bytes };
      }
      streaming = true;
      return { size: entry.size, body: fileRangeStream(fd, from, entry.dataOffset + end) };
    } catch (cause) {
      throw await this.failedRead(entry, path, cause);
    } finally {
      if (!streaming) closeSync(fd);
    }
  }

  /** What a read of an object whose spool file was rejected fails with. */
  private rejectionError(entry: Entry): StorageError {
    return new StorageError(
      "INTEGRITY",
      { operation: "read from the write-behind spool", subject: entry.key },
      `its spool file ${spoolFileName(entry.seq, entry.kind)} in ${this.options.folder} is damaged (its bytes ` +
        `no longer match the SHA-256 recorded when it was written: the disk changed them): moved to ` +
        `${REJECTED_FOLDER}/, neither served nor uploaded. The object was never uploaded to ` +
        `${this.location}: restore it from another copy, or delete it in Orthanc`,
    );
  }

  /** The entry's file opened for reading; null when it is gone. */
  private openFile(entry: Entry, operation: string): { fd: number } | null {
    const path = this.pathOf(entry);
    try {
      return openToRead(path);
    } catch (cause) {
      throw storeError(operation, path, cause);
    }
  }

  /**
   * `data` (or, for a large object, the `digest` of its data) checked against the digest recorded when the
   * entry was written; a mismatch throws a DamagedFile. Files of the older format, without one, pass.
   */
  private checked(entry: Entry, data: Buffer | undefined, digest?: Buffer): Buffer {
    const actual =
      digest ??
      createHash("sha256")
        .update(data as Buffer)
        .digest();
    if (entry.digest !== undefined && !actual.equals(entry.digest)) throw new DamagedFile();
    return data as Buffer;
  }

  /** The error a failed read of a spool file ends with: a damaged file is rejected first. */
  private async failedRead(entry: Entry, path: string, cause: unknown): Promise<StorageError> {
    if (cause instanceof DamagedFile) return this.reject(entry);
    if (cause instanceof StorageError) return cause;
    return storeError("read from the write-behind spool", path, cause);
  }

  /**
   * A spool file whose data no longer matches its digest: moved to rejected/, out of the queue, never
   * uploaded nor served. Returns the error naming the object, for the read or upload that found it.
   */
  private async reject(entry: Entry): Promise<StorageError> {
    const { folder, logger } = this.options;
    const error = this.rejectionError(entry);
    if (entry.rejected) return error;
    entry.rejected = true;
    this.queue.delete(entry.seq);
    if (this.live.get(entry.key) === entry) {
      this.live.delete(entry.key);
      this.rejectedKeys.set(entry.key, entry);
    }
    this.pendingBytes -= entry.size;
    await entry.tombstoned; // a delete's rename of the file, if one is under way
    const path = this.pathOf(entry);
    try {
      await mkdir(join(folder, REJECTED_FOLDER), { recursive: true });
      await rename(path, join(folder, REJECTED_FOLDER, spoolFileName(entry.seq, entry.kind)));
    } catch (cause) {
      logger.error(
        `write-behind spool: could not move ${path} to ${REJECTED_FOLDER}/: ${describeCause(cause)}`,
      );
    }
    logger.error(`write-behind spool: ${error.message}`);
    if (this.queue.size === 0) for (const resolve of this.drainWaiters.splice(0)) resolve();
    return error;
  }

  // --- the uploaders ---

  /** Start uploads while slots are free and entries are due; otherwise wake up when the next one is. */
  private kick(): void {
    if (this.closed || this.yielding) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    while (this.inFlight.size < this.options.concurrency) {
      const now = Date.now();
      if (now < this.pauseUntil) {
        this.wakeAt(this.pauseUntil);
        return;
      }
      const { next, wakeAt } = this.pick(now);
      if (next === undefined) {
        if (wakeAt !== undefined) this.wakeAt(wakeAt);
        return;
      }
      void this.process(next);
    }
  }

  /** The oldest entry due whose key has nothing in flight nor an older entry waiting. */
  private pick(now: number): { next?: Entry; wakeAt?: number } {
    const blocked = new Set(this.inFlight.keys());
    let wakeAt: number | undefined;
    for (const entry of this.queue.values()) {
      if (blocked.has(entry.key)) continue;
      if (entry.notBefore > now) {
        blocked.add(entry.key); // a newer version must not overtake it
        wakeAt = Math.min(wakeAt ?? Infinity, entry.notBefore);
        continue;
      }
      return { next: entry };
    }
    return wakeAt === undefined ? {} : { wakeAt };
  }

  private wakeAt(time: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.kick(), Math.max(0, time - Date.now()));
  }

  /** process(), counted: a handover waits until no entry is being processed. */
  private async process(entry: Entry): Promise<void> {
    this.processing++;
    try {
      await this.processEntry(entry);
    } finally {
      this.processing--;
      if (this.processing === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
  }

  /** Upload one entry (or, for a tombstone, delete its object), then drop its file. */
  private async processEntry(entry: Entry): Promise<void> {
    entry.uploading = true;
    this.inFlight.set(entry.key, entry);
    try {
      if (!isTombstone(entry) && !(await this.upload(entry))) {
        // Damaged: rejected, nothing of it uploaded; the next entries go on.
        this.settle(entry);
        return;
      }
      // A delete may have made it a tombstone while it uploaded: its object must go from the backend now.
      if (isTombstone(entry)) {
        await entry.tombstoned;
        await this.backend.delete(entry.key);
      }
    } catch (error) {
      this.failed(entry, error);
      this.settle(entry);
      return;
    }
    this.succeeded();
    this.queue.delete(entry.seq);
    if (this.live.get(entry.key) === entry) this.live.delete(entry.key);
    if (this.tombstones.get(entry.key) === entry) this.tombstones.delete(entry.key);
    // Done before its file goes: a delete of the key from now on is the backend's alone.
    this.settle(entry);
    // Uploaded from bytes that matched, while a read found the file damaged since: rejected/ holds it.
    if (entry.rejected) return;
    await this.removeFile(entry).catch((error: unknown) => {
      // Uploaded: a file left behind is uploaded again after a restart, which is harmless.
      this.options.logger.warn(`write-behind spool: ${describeCause(error)}`);
    });
  }

  /** The entry's upload is over (done or failed): free its slot, wake drain waiters, start the next. */
  private settle(entry: Entry): void {
    entry.uploading = false;
    this.inFlight.delete(entry.key);
    if (this.queue.size === 0) for (const resolve of this.drainWaiters.splice(0)) resolve();
    this.kick();
  }

  /** Uploads the entry's data once it matched its digest; false when it did not (the file is rejected). */
  private async upload(entry: Entry): Promise<boolean> {
    const path = this.pathOf(entry);
    // Opened in the same tick as the kind was checked: a delete renames the file only after marking it.
    const opened = this.openFile(entry, "read from the write-behind spool");
    if (opened === null) throw storeError("read from the write-behind spool", path, missingFile(path));
    const { fd } = opened;
    const { dataOffset, size } = entry;
    let handedOver = false;
    try {
      if (size <= SYNC_FILE_LIMIT) {
        const bytes = this.checked(entry, readRange(fd, dataOffset, dataOffset + size));
        closeSync(fd);
        handedOver = true;
        await this.backend.put(entry.key, bytes);
        return true;
      }
      this.checked(entry, undefined, await digestOf(fd, dataOffset, dataOffset + size));
      handedOver = true; // the stream closes it
      await this.backend.putStream(entry.key, fileRangeStream(fd, dataOffset, dataOffset + size), size);
      return true;
    } catch (error) {
      if (!(error instanceof DamagedFile)) throw error;
      await this.reject(entry);
      return false;
    } finally {
      if (!handedOver) closeSync(fd);
    }
  }

  private succeeded(): void {
    if (this.failing !== undefined) {
      this.options.logger.info(
        `write-behind spool: uploads to ${this.location} work again after ${this.failing.attempts} failed attempt(s)`,
      );
    }
    this.failing = undefined;
    this.consecutiveFailures = 0;
    this.pauseUntil = 0;
  }

  private failed(entry: Entry, error: unknown): void {
    const now = Date.now();
    entry.attempts += 1;
    this.consecutiveFailures += 1;
    this.pauseUntil = now + this.backoff(this.consecutiveFailures);
    // While everything fails (the backend is down), the oldest objects are retried first, at the end of
    // the pause; an object that fails where others succeed backs off on its own, and does not hold them up.
    entry.notBefore =
      entry.attempts > this.consecutiveFailures ? now + this.backoff(entry.attempts) : this.pauseUntil;
    const what = entry.kind === "deleted" ? "delete" : "upload";
    const message =
      `write-behind spool: ${what} of ${entry.key} to ${this.location} failed (attempt ${entry.attempts}), ` +
      `retried in ${Math.round((entry.notBefore - now) / 100) / 10} s; ${this.queue.size} object(s) wait: ${describeCause(error)}`;
    if (this.failing === undefined) {
      this.failing = { since: now, error: describeCause(error), attempts: 1, loggedAt: now };
      this.options.logger.warn(message);
      return;
    }
    this.failing.attempts += 1;
    this.failing.error = describeCause(error);
    if (now - this.failing.loggedAt >= FAILURE_LOG_INTERVAL_MS) {
      this.failing.loggedAt = now;
      this.options.logger.warn(message);
    }
  }

  /** Exponential, capped, with jitter so that several nodes do not retry in step. */
  private backoff(failures: number): number {
    const delay = Math.min(this.retryBaseMs * 2 ** Math.min(failures - 1, 30), this.retryMaxMs);
    return delay * (0.75 + Math.random() / 4);
  }

  // --- files ---

  private pathOf(entry: Entry): string {
    return join(this.options.folder, spoolFileName(entry.seq, entry.kind));
  }

  private async removeFile(entry: Entry): Promise<void> {
    this.pendingBytes -= entry.size;
    // A tombstone whose rename failed still has its file under the spool name.
    const names = isTombstone(entry) ? (["deleted", "spool"] as const) : (["spool"] as const);
    for (const kind of names) {
      const path = join(this.options.folder, spoolFileName(entry.seq, kind));
      try {
        await unlink(path);
      } catch (cause) {
        if (!isMissing(cause)) throw storeError("remove from the write-behind spool", path, cause);
      }
    }
  }

  /** One file found at start-up: queued, dropped (superseded) or set aside (damaged). */
  private async recover(name: string, seq: number, kind: SpoolFileKind): Promise<void> {
    const { folder, logger } = this.options;
    const path = join(folder, name);
    let header;
    try {
      header = await readSpoolHeader(path);
    } catch (error) {
      await mkdir(join(folder, REJECTED_FOLDER), { recursive: true });
      await rename(path, join(folder, REJECTED_FOLDER, name));
      logger.error(
        `write-behind spool: ${path} is damaged (${describeCause(error)}): moved to ${REJECTED_FOLDER}/ and not ` +
          `uploaded; the object it held may be missing from ${this.location}`,
      );
      return;
    }
    const entry: Entry = {
      seq,
      key: header.key,
      size: header.size,
      dataOffset: header.dataOffset,
      createdAt: header.createdAt,
      kind,
      uploading: false,
      superseded: false,
      attempts: 0,
      notBefore: 0,
      digest: header.digest,
      // A crash may have come after its upload and before its file went: a delete must reach the backend.
      maybeUploaded: true,
      rejected: false,
    };
    this.pendingBytes += entry.size;
    // Files come in sequence order: a later file of the same key replaces a waiting one.
    await this.supersede(entry.key);
    this.queue.set(seq, entry);
    if (kind === "spool") this.live.set(entry.key, entry);
    else this.tombstones.set(entry.key, entry);
  }
}

// --- utils ---

/** A function, not a comparison in place: the kind changes under an await (a delete during an upload). */
function isTombstone(entry: Entry): boolean {
  return entry.kind === "deleted";
}

async function writeAll(file: FileHandle, data: Uint8Array): Promise<void> {
  let written = 0;
  while (written < data.length) {
    const { bytesWritten } = await file.write(data, written, data.length - written);
    written += bytesWritten;
  }
}

function sizeMismatch(path: string, received: number, size: number): StorageError {
  const detail =
    received < size
      ? `the body ended after ${received} of the ${size} announced bytes`
      : `the body went past the ${size} announced bytes`;
  return new StorageError(
    "INTEGRITY",
    { operation: "write to the write-behind spool", subject: path },
    detail,
  );
}

/** A spool file's data does not match its digest; turned into the rejection's error by the spool. */
class DamagedFile extends Error {
  constructor() {
    super("the data does not match its recorded SHA-256");
  }
}

/** The SHA-256 of bytes [start, end) of an open file, read in chunks through the thread pool. */
async function digestOf(fd: number, start: number, end: number): Promise<Buffer> {
  const hash = createHash("sha256");
  const chunk = Buffer.allocUnsafe(Math.min(DIGEST_CHUNK, end - start));
  for (let at = start; at < end;) {
    const { bytesRead } = await readAt(fd, chunk, 0, Math.min(chunk.length, end - at), at);
    if (bytesRead === 0) throw new Error(`the file ended after ${at} bytes (it was truncated while read)`);
    hash.update(chunk.subarray(0, bytesRead));
    at += bytesRead;
  }
  return hash.digest();
}

function missingFile(path: string): Error {
  return Object.assign(new Error(`${path} vanished from the spool`), { code: "ENOENT" });
}

/**
 * Waits for a live daemon holding the folder's lock (another pid) to exit, then takes the lock. Meanwhile it
 * asks for the folder (HANDOVER_FILE): a holder draining at exit hands it over at once (drainAtExit).
 */
async function takeLock(folder: string, waitMs: number): Promise<void> {
  const path = join(folder, LOCK_FILE);
  const handover = join(folder, HANDOVER_FILE);
  const deadline = Date.now() + waitMs;
  let asked = false;
  try {
    for (;;) {
      const holder = await readFile(path, "utf8").then(
        (text) => Number.parseInt(text, 10),
        () => undefined,
      );
      if (holder === undefined || holder === process.pid || !isAlive(holder)) break;
      if (Date.now() >= deadline) {
        throw new StorageError(
          "STORE_FAILED",
          { operation: "open the write-behind spool folder", subject: folder },
          `the daemon of pid ${holder} still uses it after ${waitMs / 1000} s: LocalDisk.Path must be this ` +
            `Orthanc's alone (two Orthanc processes on one node need two folders)`,
        );
      }
      if (!asked) {
        await writeFile(handover, `${process.pid}\n`);
        asked = true;
      }
      await new Promise((resolve) => setTimeout(resolve, HANDOVER_POLL_MS));
    }
    await writeFile(path, `${process.pid}\n`);
  } finally {
    // Withdrawn once the lock is ours, or the wait given up; another daemon's request is left alone.
    if (asked && Number.parseInt(await readFile(handover, "utf8").catch(() => ""), 10) === process.pid) {
      await unlink(handover).catch(() => undefined);
    }
  }
}

async function releaseLock(folder: string): Promise<void> {
  const path = join(folder, LOCK_FILE);
  const holder = await readFile(path, "utf8").catch(() => "");
  if (Number.parseInt(holder, 10) === process.pid) await unlink(path).catch(() => undefined);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
