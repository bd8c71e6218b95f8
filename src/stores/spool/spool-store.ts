// The write-behind spool (issue 17): an ObjectStore in front of another. A put is answered once the
// object's stored bytes are synced in a file of the spool folder (written under a temporary name, then
// renamed: spool-file.ts); uploaders copy the files to the backend in the background, oldest first, a
// few at a time, retrying with backoff. Reads and heads of a spooled object are served from its file;
// a delete removes it from the spool and the backend, and one that races an upload in flight leaves a
// tombstone, so the backend's copy is deleted once the upload lands (also after a crash).
//
// The folder is this node's alone (a pid lock file says so); a restart rebuilds the queue from it.

import { createReadStream, closeSync } from "node:fs";
import { mkdir, readFile, rename, unlink, writeFile, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";

import { syncFolder, writeFileAtomically } from "../../atomic-file.js";
import { StorageError, describeCause } from "../../errors.js";
import type { Logger } from "../../log.js";
import { storeError } from "../folder.js";
import {
  FileBody,
  SYNC_FILE_LIMIT,
  bufferedBody,
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
}

export class SpoolStore implements ObjectStore {
  readonly driver: string;
  readonly location: string;

  /** Every spool file, oldest first (Map order is insertion order, which is sequence order). */
  private readonly queue = new Map<number, Entry>();
  /** The current spooled object of each key, not deleted. */
  private readonly live = new Map<string, Entry>();
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
    await this.admit(key, data.length, async (file, header) => {
      await writeAll(file, header);
      await writeAll(file, data);
    });
  }

  async putStream(key: string, body: Readable, size: number): Promise<void> {
    try {
      await this.admit(key, size, async (file, header, path) => {
        await writeAll(file, header);
        let written = 0;
        for await (const chunk of body as AsyncIterable<Uint8Array>) {
          written += chunk.length;
          if (written > size) throw sizeMismatch(path, written, size);
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
      const spooled = this.openSpooled(entry, range, options ?? {});
      if (spooled !== null) return spooled;
      // Uploaded (and its file removed) since the lookup: the backend has it now.
    }
    return this.backend.get(key, range, options);
  }

  /** A spooled object's bytes in its spool file (after the header), else the backend's local file if any. */
  openLocalFile(key: string, range?: ByteRange): LocalFileObject | undefined {
    const entry = this.live.get(key);
    if (entry === undefined) return this.backend.openLocalFile?.(key, range);
    const { start, end } = range ?? { start: 0, end: entry.size };
    if (start < 0 || start > end || end > entry.size) return undefined; // BAD_RANGE, from `get`
    let opened;
    try {
      opened = openToRead(this.pathOf(entry));
    } catch {
      return undefined; // `get` says why
    }
    // Gone: uploaded since the lookup, `get` reads the backend.
    return opened === null ? undefined : { fd: opened.fd, size: entry.size, start: entry.dataOffset + start };
  }

  async head(key: string): Promise<ObjectInfo | null> {
    const entry = this.live.get(key);
    if (entry !== undefined) return { key, size: entry.size };
    return this.backend.head(key);
  }

  /**
   * Delete from the spool and the backend. A version of the object whose upload is in flight becomes a
   * tombstone first (renamed, folder synced), so that its upload is followed by a delete, even after a crash.
   */
  async delete(key: string): Promise<void> {
    const entry = this.live.get(key);
    if (entry !== undefined) {
      this.live.delete(key);
      if (!entry.uploading) {
        this.queue.delete(entry.seq);
        await this.removeFile(entry);
        await syncFolder(this.options.folder);
      }
    }
    const flying = this.inFlight.get(key);
    if (flying !== undefined && flying.kind === "spool") {
      // Marked first, in this tick: the uploader deletes the object once its upload lands, whatever follows.
      const from = this.pathOf(flying);
      flying.kind = "deleted";
      const renamed = rename(from, this.pathOf(flying)).then(() => syncFolder(this.options.folder));
      flying.tombstoned = renamed.catch(() => undefined);
      try {
        await renamed;
      } catch (cause) {
        // Without its tombstone on disk, a crash before the upload lands would leave the object behind.
        throw storeError("mark as deleted in the write-behind spool", from, cause);
      }
    }
    await this.backend.delete(key);
  }

  /** The backend's objects, and the spooled ones not yet uploaded (each key once). */
  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const spooled = new Map<string, number>();
    for (const [key, entry] of this.live) if (key.startsWith(prefix)) spooled.set(key, entry.size);
    for await (const info of this.backend.list(prefix)) {
      if (!spooled.has(info.key)) yield info;
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

  // --- writing into the spool ---

  private async admit(
    key: string,
    size: number,
    write: (file: FileHandle, header: Buffer, path: string) => Promise<void>,
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
    try {
      await writeFileAtomically(path, (file) => write(file, header, path), { fsync: true });
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
    };
    await this.supersede(key);
    this.live.set(key, entry);
    this.queue.set(seq, entry);
    this.kick();
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

  /** The object (or range) from its spool file; null when the file is gone (uploaded meanwhile). */
  /** With `asFile`, the open spool file itself and a body that reads it only if it is read (ObjectBody.file). */
  private openSpooled(entry: Entry, range: ByteRange | undefined, options: GetOptions): ObjectBody | null {
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
    let opened;
    try {
      opened = openToRead(path);
    } catch (cause) {
      throw storeError("read from the write-behind spool", path, cause);
    }
    if (opened === null) return null;
    const { fd } = opened;
    const from = entry.dataOffset + start;
    if (asFile) {
      const body = new FileBody(fd, from, entry.dataOffset + end);
      return { size: entry.size, body, file: body.file };
    }
    try {
      if (end - start <= SYNC_FILE_LIMIT) {
        const bytes = readRange(fd, from, entry.dataOffset + end);
        closeSync(fd);
        return { size: entry.size, body: bufferedBody(bytes), bytes };
      }
    } catch (cause) {
      closeSync(fd);
      throw storeError("read from the write-behind spool", path, cause);
    }
    const body = createReadStream("", { fd, start: from, end: entry.dataOffset + end - 1, autoClose: true });
    return { size: entry.size, body };
  }

  // --- the uploaders ---

  /** Start uploads while slots are free and entries are due; otherwise wake up when the next one is. */
  private kick(): void {
    if (this.closed) return;
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

  /** Upload one entry (or, for a tombstone, delete its object), then drop its file. */
  private async process(entry: Entry): Promise<void> {
    entry.uploading = true;
    this.inFlight.set(entry.key, entry);
    try {
      if (!isTombstone(entry)) await this.upload(entry);
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
    // Done before its file goes: a delete of the key from now on is the backend's alone.
    this.settle(entry);
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

  private async upload(entry: Entry): Promise<void> {
    const path = this.pathOf(entry);
    // Opened in the same tick as the kind was checked: a delete renames the file only after marking it.
    let opened;
    try {
      opened = openToRead(path);
    } catch (cause) {
      throw storeError("read from the write-behind spool", path, cause);
    }
    if (opened === null) throw storeError("read from the write-behind spool", path, missingFile(path));
    const { fd } = opened;
    if (entry.size <= SYNC_FILE_LIMIT) {
      let bytes: Buffer;
      try {
        bytes = readRange(fd, entry.dataOffset, entry.dataOffset + entry.size);
      } finally {
        closeSync(fd);
      }
      await this.backend.put(entry.key, bytes);
      return;
    }
    const body = createReadStream("", {
      fd,
      start: entry.dataOffset,
      end: entry.dataOffset + entry.size - 1,
      autoClose: true,
    });
    await this.backend.putStream(entry.key, body, entry.size);
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
    };
    this.pendingBytes += entry.size;
    // Files come in sequence order: a later file of the same key replaces a waiting one.
    await this.supersede(entry.key);
    this.queue.set(seq, entry);
    if (kind === "spool") this.live.set(entry.key, entry);
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

function missingFile(path: string): Error {
  return Object.assign(new Error(`${path} vanished from the spool`), { code: "ENOENT" });
}

/** Waits for a live daemon holding the folder's lock (another pid) to exit, then takes the lock. */
async function takeLock(folder: string, waitMs: number): Promise<void> {
  const path = join(folder, LOCK_FILE);
  const deadline = Date.now() + waitMs;
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
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  await writeFile(path, `${process.pid}\n`);
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
