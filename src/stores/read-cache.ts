// The read cache (issue 17, part 2): an ObjectStore in front of another that keeps copies of the stored
// bytes (ciphertext when encrypted) on this node's disk, under `<LocalDisk.Path>/cache/`. What it does, in
// the order of docs/configuration.md#the-read-cache:
// - Filled by whole reads (the backend's stream is teed into the cache file as the caller reads it: one
//   request, no wait) and by puts. A range read of an object not cached goes to the backend and fills
//   nothing (one /tags read should not fetch a whole 1 GB object); a range of a cached object is served
//   from the cache.
// - Concurrent whole reads of an object not cached send one request: the others wait for its fill.
// - Bounded by ReadCacheSize, evicted by a segmented LRU (segmented-lru.ts says why).
// - Every entry carries SHA-256 digests of its blocks (cache-entry.ts), checked before a byte is served; a
//   file that fails is dropped, logged, and the read goes to the backend.
// - Dropped before a put or a delete reaches the backend, so no read after them sees old bytes; a fill
//   that started before them is cancelled.
// - Kept across restarts: the index is rebuilt from the folder (temporary files removed); emptied when
//   what the stored bytes depend on (backend, encryption keys) changed, see `identity`.
// Files are named by the SHA-256 of their key, in 256 sub-folders: any key maps to a safe name, and the
// index needs no key to be rebuilt.

import { createHash } from "node:crypto";
import { closeSync } from "node:fs";
import { mkdir, open, readFile, readdir, rename, rm, stat, unlink, type FileHandle } from "node:fs/promises";
import { dirname, join } from "node:path";
import { Transform, pipeline, type Readable } from "node:stream";

import { isTemporaryName, temporaryPath, writeFileAtomically } from "../atomic-file.js";
import type { BytePieces } from "../byte-pieces.js";
import { StorageError, describeCause } from "../errors.js";
import type { Logger } from "../log.js";
import {
  BLOCK_BYTES,
  BlockDigests,
  CorruptEntry,
  FOOTER_BYTES,
  checkBlocks,
  digestSpan,
  entryBytes,
  sizeFromFooter,
} from "./cache-entry.js";
import {
  ReadBuffers,
  SYNC_FILE_LIMIT,
  bufferedBody,
  fileRangeStream,
  isMissing,
  openToRead,
  readRange,
} from "./local-file-io.js";
import {
  storePieces,
  type ByteRange,
  type GetOptions,
  type ObjectBody,
  type ObjectInfo,
  type ObjectStore,
} from "./object-store.js";
import { rangeWithin } from "./range-errors.js";
import { SegmentedLru } from "./segmented-lru.js";

export interface ReadCacheOptions {
  /** The cache's own folder (`<LocalDisk.Path>/cache`), created when missing. */
  folder: string;
  capacityBytes: number;
  /**
   * What the bytes stored under a key depend on besides the key: the backend and the encryption keys. Kept
   * in the folder; a cache found with another identity is emptied (a new bucket, or keys rotated and the
   * old ones removed after a reencrypt that ran beside the daemon: its cached old ciphertext would no
   * longer decrypt).
   */
  identity: string;
  logger: Logger;
}

/** Counters since start, and the current size: the daemon's metrics and health read them. */
export interface ReadCacheStats {
  capacityBytes: number;
  /** Bytes of the cache files (objects and their digests). */
  bytes: number;
  objects: number;
  /** Reads (whole or range) served from the cache. */
  hits: number;
  /** Reads served by the backend (of objects that exist). */
  misses: number;
  /** Object bytes served from the cache. */
  hitBytes: number;
  /** Entries written, and their bytes. */
  fills: number;
  filledBytes: number;
  /** Entries evicted to make room, and their bytes. */
  evictions: number;
  evictedBytes: number;
  /** Cache files that failed their check (then dropped and read from the backend). */
  integrityFailures: number;
  /** Entries that could not be written or removed (the reads themselves went on). */
  diskErrors: number;
}

/** The file in the cache folder that holds its identity. */
const IDENTITY_FILE = "IDENTITY";
const ENTRY_NAME = /^[0-9a-f]{64}$/;
const FAN_OUT_NAME = /^[0-9a-f]{2}$/;

/**
 * Who may fill the entry of a key now. A put or a delete takes a "write" claim, which cancels any other;
 * a read fills only when nobody claims the key, and then other reads wait for it.
 */
interface Claim {
  kind: "read" | "write";
  cancelled: boolean;
  /** A fill in progress (a read's, or a put's once the backend has the object): true once in place. */
  filled?: Promise<boolean>;
}

export async function openReadCache(backend: ObjectStore, options: ReadCacheOptions): Promise<ReadCache> {
  const cache = new ReadCache(backend, options);
  await cache.rebuild();
  return cache;
}

export class ReadCache implements ObjectStore {
  readonly driver: string;
  readonly location: string;
  readonly #backend: ObjectStore;
  readonly #folder: string;
  readonly #identity: string;
  readonly #logger: Logger;
  readonly #policy: SegmentedLru;
  readonly #claims = new Map<string, Claim>();
  /** Fills and removals in progress, awaited by close(). */
  readonly #background = new Set<Promise<unknown>>();
  readonly #buffers = new ReadBuffers();
  readonly #stats = {
    hits: 0,
    misses: 0,
    hitBytes: 0,
    fills: 0,
    filledBytes: 0,
    evictions: 0,
    evictedBytes: 0,
    integrityFailures: 0,
    diskErrors: 0,
  };

  constructor(backend: ObjectStore, options: ReadCacheOptions) {
    this.#backend = backend;
    this.driver = backend.driver;
    this.location = backend.location;
    this.#folder = options.folder;
    this.#identity = options.identity;
    this.#logger = options.logger;
    this.#policy = new SegmentedLru(options.capacityBytes);
  }

  stats(): ReadCacheStats {
    return {
      capacityBytes: this.#policy.capacityBytes,
      bytes: this.#policy.bytes,
      objects: this.#policy.count,
      ...this.#stats,
    };
  }

  /** Whether the entry of `key` is in the protected segment (tests of the policy through the store). */
  isProtected(key: string): boolean {
    return this.#policy.isProtected(nameOf(key));
  }

  /** Whether `key` is cached now. */
  holds(key: string): boolean {
    return this.#policy.has(nameOf(key));
  }

  /** Resolves once no fill or removal is in progress (close(), and tests). */
  async settled(): Promise<void> {
    while (this.#background.size > 0) await Promise.allSettled([...this.#background]);
  }

  /**
   * The index from the folder: entries as probationary, oldest fill first (the order of eviction);
   * temporary files of fills a crash interrupted are removed, and the whole folder is emptied when its
   * identity differs.
   */
  async rebuild(): Promise<void> {
    const started = performance.now();
    try {
      await mkdir(this.#folder, { recursive: true, mode: 0o700 });
      const found = await readFile(join(this.#folder, IDENTITY_FILE), "utf8").catch((error: unknown) => {
        if (isMissing(error)) return undefined;
        throw error;
      });
      if (found !== this.#identity) {
        await this.#empty(
          found === undefined ? "it has no identity file" : "the backend or the keys changed",
        );
        const identityFile = join(this.#folder, IDENTITY_FILE);
        await writeFileAtomically(identityFile, (file) => file.writeFile(this.#identity), { fsync: true });
      }
      const entries: Array<{ name: string; bytes: number; mtimeMs: number }> = [];
      let temporary = 0;
      for (const fanOut of await readdir(this.#folder)) {
        if (!FAN_OUT_NAME.test(fanOut)) continue;
        // One sub-folder's files at once: a large cache is listed in seconds, not one stat at a time.
        const names = await readdir(join(this.#folder, fanOut));
        await Promise.all(
          names.map(async (name) => {
            const path = join(this.#folder, fanOut, name);
            if (isTemporaryName(name)) {
              await rm(path, { force: true });
              temporary++;
            } else if (ENTRY_NAME.test(name) && name.startsWith(fanOut)) {
              const info = await stat(path);
              if (info.isFile()) entries.push({ name, bytes: info.size, mtimeMs: info.mtimeMs });
            }
          }),
        );
      }
      entries.sort((a, b) => a.mtimeMs - b.mtimeMs);
      for (const { name, bytes } of entries) this.#admit(name, bytes);
      const { objects, bytes } = this.stats();
      this.#logger.info(
        `read cache in ${this.#folder}: ${objects} objects, ${bytes} of ${this.#policy.capacityBytes} bytes ` +
          `(found in ${Math.round(performance.now() - started)} ms` +
          `${temporary > 0 ? `, ${temporary} unfinished fills removed` : ""})`,
      );
    } catch (cause) {
      throw new StorageError(
        "STORE_FAILED",
        { operation: "open read cache", subject: this.#folder, cause },
        `${describeCause(cause)}: check LocalDisk.Path (a folder this user may write, on a local disk)`,
      );
    }
  }

  put(key: string, data: Uint8Array): Promise<void> {
    return this.putPieces(key, [data], data.length);
  }

  /** The pieces go on to the backend as they are (joined only for a backend without putPieces). */
  async putPieces(key: string, pieces: BytePieces, size: number): Promise<void> {
    const claim = this.#claimForWrite(key);
    let handedOver = false;
    try {
      await this.#drop(key);
      await storePieces(this.#backend, key, pieces);
      handedOver = await this.#fillFromBytes(key, pieces, size, claim, () => this.#release(key, claim));
    } finally {
      if (!handedOver) this.#release(key, claim);
    }
  }

  async putStream(key: string, body: Readable, size: number): Promise<void> {
    const claim = this.#claimForWrite(key);
    let handedOver = false;
    try {
      await this.#drop(key);
      const fill = this.#admissible(size) ? this.#newFill(key, size) : undefined;
      const teed = fill === undefined ? body : tee(body, fill);
      try {
        await this.#backend.putStream(key, teed, size);
      } catch (error) {
        this.#track(fill?.abort());
        throw error;
      }
      if (fill !== undefined) {
        this.#commitInBackground(key, fill, claim, () => this.#release(key, claim));
        handedOver = true;
      }
    } finally {
      if (!handedOver) this.#release(key, claim);
    }
  }

  /**
   * A cached entry is served as bytes, once checked; `options` (a local file instead of bytes) go to the backend
   * on the reads that pass through, not to a fetch that fills the cache, which reads the bytes itself.
   */
  async get(key: string, range?: ByteRange, options?: GetOptions): Promise<ObjectBody | null> {
    const cached = await this.#readCached(key, range, options?.cutAtEnd);
    if (cached !== null) return cached;
    const claim = this.#claims.get(key);
    if (range === undefined && claim?.filled !== undefined) {
      // Another read is fetching this object, or a put's bytes are being written: wait for that fill
      // rather than fetching the object again.
      if (await claim.filled) {
        const filled = await this.#readCached(key, range);
        if (filled !== null) return filled;
      }
      return this.#countMiss(this.#backend.get(key, undefined, options));
    }
    if (range !== undefined || claim !== undefined) {
      return this.#countMiss(this.#backend.get(key, range, options));
    }
    return this.#countMiss(this.#fetchAndFill(key));
  }

  /** A read the backend served; one of an object that does not exist (the health probe's) is no miss. */
  async #countMiss(read: Promise<ObjectBody | null>): Promise<ObjectBody | null> {
    const object = await read;
    if (object !== null) this.#stats.misses++;
    return object;
  }

  head(key: string): Promise<ObjectInfo | null> {
    return this.#backend.head(key);
  }

  async delete(key: string): Promise<void> {
    const claim = this.#claimForWrite(key);
    try {
      await this.#drop(key);
      await this.#backend.delete(key);
    } finally {
      this.#release(key, claim);
    }
  }

  list(prefix: string): AsyncIterable<ObjectInfo> {
    return this.#backend.list(prefix);
  }

  /** Waits for the fills in progress (a body handed out must be read or destroyed first). */
  async close(): Promise<void> {
    await this.settled();
    await this.#backend.close();
  }

  // --- reading entries ---

  /** The entry of `key` (or a range of it) once checked; null when not cached or when it failed its check. */
  async #readCached(
    key: string,
    range: ByteRange | undefined,
    cutAtEnd?: boolean,
  ): Promise<ObjectBody | null> {
    const name = nameOf(key);
    if (!this.#policy.has(name)) return null;
    const path = this.#pathOf(key);
    let read: ObjectBody | null;
    try {
      const small = this.#readEntryNow(path, range, cutAtEnd);
      read = small !== undefined ? small : await this.#readLargeEntry(path, range, cutAtEnd);
    } catch (error) {
      if (error instanceof StorageError) throw error; // BAD_RANGE: the backend would say the same
      this.#policy.remove(name);
      if (error instanceof CorruptEntry) {
        this.#stats.integrityFailures++;
        this.#logger.warn(
          `read cache: ${path} (object ${this.#backend.location}/${key}) failed its check, dropped; ` +
            `reading the object from the backend instead: ${error.message}`,
        );
        this.#track(unlink(path).catch(() => undefined)); // a missing file is already what we want
      } else {
        this.#stats.diskErrors++;
        this.#logger.warn(
          `read cache: cannot read ${path} (object ${key}), dropped; reading the backend instead: ` +
            describeCause(error),
        );
      }
      return null;
    }
    if (read === null) {
      this.#policy.remove(name); // removed behind our back: not an error, a miss
      return null;
    }
    this.#policy.touch(name);
    this.#stats.hits++;
    this.#stats.hitBytes += range === undefined ? read.size : Math.min(range.end, read.size) - range.start;
    return read;
  }

  /**
   * A small entry in one unit of work on this thread (local-file-io.ts says why): read whole, checked,
   * served from memory. Undefined for a large one (#readLargeEntry); null when the file is gone.
   */
  #readEntryNow(
    path: string,
    range: ByteRange | undefined,
    cutAtEnd: boolean | undefined,
  ): ObjectBody | null | undefined {
    const file = openToRead(path);
    if (file === null) return null;
    try {
      if (file.size > SYNC_FILE_LIMIT) return undefined;
      if (file.size < FOOTER_BYTES) throw new CorruptEntry(`the file has ${file.size} bytes, no footer`);
      const whole = readRange(file.fd, 0, file.size, this.#buffers);
      try {
        const size = sizeFromFooter(whole.subarray(file.size - FOOTER_BYTES), file.size);
        const { start, end } = checkedRange(range, size, path, cutAtEnd);
        const span = coveringBlocks(start, end, size);
        const digests = digestSpan(size);
        checkBlocks(
          whole.subarray(span.start, span.end),
          span.first,
          whole.subarray(digests.start, digests.end),
        );
        const bytes = whole.subarray(start, end);
        return { size, body: bufferedBody(bytes), bytes, recycle: () => this.#buffers.give(whole) };
      } catch (error) {
        this.#buffers.give(whole);
        throw error;
      }
    } finally {
      closeSync(file.fd);
    }
  }

  /**
   * A large entry: the blocks the read covers are checked first, block by block, then streamed from the
   * same open file (a replaced entry cannot slip in between); null when the file is gone.
   */
  async #readLargeEntry(
    path: string,
    range: ByteRange | undefined,
    cutAtEnd: boolean | undefined,
  ): Promise<ObjectBody | null> {
    let file: FileHandle;
    try {
      file = await open(path, "r");
    } catch (error) {
      if (isMissing(error)) return null;
      throw error;
    }
    let streaming = false;
    try {
      const fileBytes = (await file.stat()).size;
      if (fileBytes < FOOTER_BYTES) throw new CorruptEntry(`the file has ${fileBytes} bytes, no footer`);
      const size = sizeFromFooter(await readAt(file, fileBytes - FOOTER_BYTES, FOOTER_BYTES), fileBytes);
      const { start, end } = checkedRange(range, size, path, cutAtEnd);
      const span = coveringBlocks(start, end, size);
      const digestsAt = digestSpan(size);
      const digests = await readAt(file, digestsAt.start, digestsAt.end - digestsAt.start);
      for (let at = span.start, block = span.first; ; block++) {
        const length = Math.min(BLOCK_BYTES, span.end - at);
        checkBlocks(await readAt(file, at, length), block, digests);
        at += length;
        if (at >= span.end) break;
      }
      if (end === start) return { size, body: bufferedBody(new Uint8Array(0)), bytes: Buffer.alloc(0) };
      const body = fileRangeStream(file, start, end, BLOCK_BYTES);
      streaming = true;
      return { size, body };
    } finally {
      if (!streaming) await file.close();
    }
  }

  // --- filling entries ---

  /** A whole read not cached: the backend's body, teed into a new entry as the caller reads it. */
  async #fetchAndFill(key: string): Promise<ObjectBody | null> {
    let settle: (filled: boolean) => void = () => undefined;
    const claim: Claim = {
      kind: "read",
      cancelled: false,
      filled: new Promise<boolean>((resolve) => (settle = resolve)),
    };
    this.#claims.set(key, claim);
    const done = (filled: boolean): void => {
      this.#release(key, claim);
      settle(filled);
    };
    let object: ObjectBody | null;
    try {
      object = await this.#backend.get(key);
    } catch (error) {
      done(false);
      throw error;
    }
    if (object === null || !this.#admissible(object.size)) {
      done(false);
      return object;
    }
    if (object.bytes !== undefined) {
      // The backend holds them already (a local store): copied before the caller may hand them back.
      const handedOver = await this.#fillFromBytes(key, [object.bytes], object.size, claim, () =>
        done(this.#policy.has(nameOf(key))),
      );
      if (!handedOver) done(this.#policy.has(nameOf(key)));
      return object;
    }
    const fill = this.#newFill(key, object.size);
    // Tracked from now on: settled() and close() wait until the caller has read the body or given up.
    let finished: () => void = () => undefined;
    this.#track(new Promise<void>((resolve) => (finished = resolve)));
    const body = tee(object.body, fill, (complete) => {
      // After the caller has its last byte: the entry is written off its path.
      const work = complete ? this.#commitFill(key, fill, claim) : fill.abort();
      void work
        .catch((error: unknown) => this.#diskError("remove the unfinished fill", fill.path, key, error))
        .finally(() => {
          done(this.#policy.has(nameOf(key)));
          finished();
        });
    });
    return { size: object.size, body };
  }

  /**
   * An entry from bytes in hand; a failure to write it is logged, never the caller's failure. A small one
   * is copied, then written in the background: true when so, and `finished` is called once it is done (the
   * claim stays until then, so a delete meanwhile cancels it). A large one is written from `data` before
   * this returns. `data` are the object's pieces, `size` bytes in all.
   */
  async #fillFromBytes(
    key: string,
    data: BytePieces,
    size: number,
    claim: Claim,
    finished: () => void,
  ): Promise<boolean> {
    if (claim.cancelled || !this.#admissible(size)) return false;
    if (entryBytes(size) <= SYNC_FILE_LIMIT) {
      const fill = this.#newFill(key, size);
      for (const piece of data) fill.add(piece);
      this.#commitInBackground(key, fill, claim, finished);
      return true;
    }
    const path = this.#pathOf(key);
    try {
      const digests = new BlockDigests();
      for (const piece of data) digests.update(piece);
      const trailer = digests.trailer();
      // A write a piece rather than a copy of a large object: writeFile continues at the handle's position.
      await writeFileAtomically(
        path,
        async (file) => {
          for (const piece of data) await file.writeFile(piece);
          await file.writeFile(trailer);
        },
        { createFolders: true },
      );
    } catch (error) {
      this.#diskError("write", path, key, error);
      return false;
    }
    this.#placed(key, path, entryBytes(size), claim);
    return false;
  }

  /**
   * A put's fill, once the backend has the object, written while the put returns; reads of the object
   * meanwhile wait for it (claim.filled). `finished` releases the claim.
   */
  #commitInBackground(key: string, fill: StreamFill, claim: Claim, finished: () => void): void {
    const committed = this.#commitFill(key, fill, claim).finally(finished);
    this.#track(committed);
    claim.filled ??= committed.then(
      () => !claim.cancelled && this.#policy.has(nameOf(key)),
      () => false,
    );
  }

  #newFill(key: string, size: number): StreamFill {
    return new StreamFill(this.#pathOf(key), size, this.#buffers);
  }

  /** A StreamFill whose bytes all came: renamed into place and admitted, unless cancelled meanwhile. */
  async #commitFill(key: string, fill: StreamFill, claim: Claim): Promise<void> {
    // Let the answer that brought the bytes go out first: the entry's digests and writes come after.
    await new Promise((resolve) => setImmediate(resolve));
    if (claim.cancelled || !fill.complete) {
      await fill.abort();
      return;
    }
    try {
      await fill.commit();
    } catch (error) {
      this.#diskError("write", fill.path, key, error);
      return;
    }
    this.#placed(key, fill.path, entryBytes(fill.size), claim);
  }

  /** An entry file just renamed into place: admitted, or removed again when a put or delete came meanwhile. */
  #placed(key: string, path: string, bytes: number, claim: Claim): void {
    if (claim.cancelled) {
      this.#track(unlink(path).catch(() => undefined));
      return;
    }
    this.#stats.fills++;
    this.#stats.filledBytes += bytes;
    this.#admit(nameOf(key), bytes);
  }

  /** Into the index; the entries evicted for it are removed from the disk. */
  #admit(name: string, bytes: number): void {
    for (const evicted of this.#policy.insert(name, bytes)) {
      this.#stats.evictions++;
      this.#stats.evictedBytes += evicted.bytes;
      const path = this.#pathOfName(evicted.name);
      this.#track(
        unlink(path).catch((error: unknown) => {
          if (!isMissing(error)) this.#diskError("evict", path, undefined, error);
        }),
      );
    }
  }

  #admissible(size: number): boolean {
    return entryBytes(size) <= this.#policy.maxEntryBytes;
  }

  // --- claims and removal ---

  #claimForWrite(key: string): Claim {
    const previous = this.#claims.get(key);
    if (previous !== undefined) previous.cancelled = true;
    const claim: Claim = { kind: "write", cancelled: false };
    this.#claims.set(key, claim);
    return claim;
  }

  #release(key: string, claim: Claim): void {
    if (this.#claims.get(key) === claim) this.#claims.delete(key);
  }

  /** Forget the entry of `key` and remove its file, before the backend is told of a put or a delete. */
  async #drop(key: string): Promise<void> {
    const name = nameOf(key);
    if (this.#policy.remove(name) === undefined) return;
    const path = this.#pathOfName(name);
    try {
      await unlink(path);
    } catch (error) {
      if (isMissing(error)) return;
      // Not served again by this process (it left the index); after a restart it would be: say so loudly.
      this.#diskError("remove", path, key, error);
      this.#logger.error(
        `read cache: ${path} holds the old bytes of ${key} and could not be removed; ` +
          `remove it (or the whole cache folder) before the next start`,
      );
    }
  }

  #diskError(operation: string, path: string, key: string | undefined, error: unknown): void {
    this.#stats.diskErrors++;
    const object = key === undefined ? "" : ` (object ${key})`;
    this.#logger.warn(`read cache: cannot ${operation} ${path}${object}: ${describeCause(error)}`);
  }

  /** Work that nobody awaits: counted for settled(), and its failure logged (never thrown at nobody). */
  #track(work: Promise<unknown> | undefined): void {
    if (work === undefined) return;
    const tracked = work.then(
      () => undefined,
      (error: unknown) => this.#diskError("clean up", this.#folder, undefined, error),
    );
    this.#background.add(tracked);
    void tracked.finally(() => this.#background.delete(tracked));
  }

  async #empty(why: string): Promise<void> {
    const names = await readdir(this.#folder);
    if (names.length === 0) return;
    this.#logger.info(`read cache in ${this.#folder}: emptied, ${why}`);
    for (const name of names) await rm(join(this.#folder, name), { recursive: true, force: true });
  }

  #pathOf(key: string): string {
    return this.#pathOfName(nameOf(key));
  }

  #pathOfName(name: string): string {
    return join(this.#folder, name.slice(0, 2), name);
  }
}

/** The file name of a key's entry. */
function nameOf(key: string): string {
  return createHash("sha256").update(key).digest("hex");
}

/** The range asked of an entry of `size` bytes, cut at its end with `cutAtEnd` (GetOptions), or BAD_RANGE. */
function checkedRange(
  range: ByteRange | undefined,
  size: number,
  path: string,
  cutAtEnd: boolean | undefined,
): ByteRange {
  const asked = range ?? { start: 0, end: size };
  const within = rangeWithin(asked, size, cutAtEnd);
  if (within === undefined) {
    throw new StorageError(
      "BAD_RANGE",
      { operation: "read range", subject: path },
      `bytes [${asked.start}, ${asked.end}) asked of an object of ${size} bytes`,
    );
  }
  return within;
}

/** The bytes of the blocks that hold [start, end) (at least one block, also for an empty range). */
function coveringBlocks(
  start: number,
  end: number,
  size: number,
): { first: number; start: number; end: number } {
  const first = Math.min(Math.floor(start / BLOCK_BYTES), Math.max(0, Math.ceil(size / BLOCK_BYTES) - 1));
  const last = Math.max(first + 1, Math.ceil(end / BLOCK_BYTES));
  return { first, start: first * BLOCK_BYTES, end: Math.min(last * BLOCK_BYTES, size) };
}

async function readAt(file: FileHandle, position: number, length: number): Promise<Buffer> {
  const bytes = Buffer.allocUnsafe(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await file.read(bytes, filled, length - filled, position + filled);
    if (bytesRead === 0) throw new CorruptEntry(`the file ended after ${position + filled} bytes`);
    filled += bytesRead;
  }
  return bytes;
}

/**
 * `body` as it goes to the caller, each chunk also handed to `fill`. `settled(complete)` is called once,
 * when the caller has read the last byte or gave up; complete means every announced byte came.
 */
function tee(body: Readable, fill: StreamFill, settled?: (complete: boolean) => void): Readable {
  const through = new Transform({
    transform(chunk: Uint8Array, _encoding, callback) {
      fill.add(chunk);
      callback(null, chunk);
    },
  });
  // pipeline: an error of either side destroys the other (a caller that gives up releases the backend's
  // connection). A caller may stop reading once it has the announced bytes: that fill is complete too.
  pipeline(body, through, () => settled?.(fill.complete));
  return through;
}

/** Largest write to a StreamFill's file at a time. */
const FILL_BATCH = 1024 * 1024;

/**
 * A new entry written as its bytes come. A small one is gathered in a pooled buffer (a copy per chunk is
 * all a miss pays on its way), digested and written once the caller has everything; a large one is
 * digested as it comes and written in batches into a temporary file. Either way it appears under its
 * name only through a rename, with its trailer.
 */
class StreamFill {
  readonly #digests = new BlockDigests();
  readonly #temp: string;
  /** Small: the whole entry, its trailer written at the end. */
  readonly #whole: Buffer | undefined;
  /** Large: the batch being gathered, and the writes queued before it. */
  #batch: Buffer | undefined;
  #batchFill = 0;
  #file: Promise<FileHandle> | undefined;
  #writes: Promise<void> = Promise.resolve();
  #failure: unknown;
  #received = 0;

  readonly #buffers: ReadBuffers;

  constructor(
    readonly path: string,
    readonly size: number,
    buffers: ReadBuffers,
  ) {
    this.#temp = temporaryPath(path);
    this.#buffers = buffers;
    if (entryBytes(size) <= SYNC_FILE_LIMIT) this.#whole = buffers.take(entryBytes(size));
  }

  /** Every announced byte came, and no more. */
  get complete(): boolean {
    return this.#received === this.size && this.#failure === undefined;
  }

  add(chunk: Uint8Array): void {
    if (this.#received + chunk.length > this.size) {
      this.#failure ??= new Error(`the object brought more than its announced ${this.size} bytes`);
    }
    if (this.#failure !== undefined) return;
    if (this.#whole !== undefined) {
      this.#whole.set(chunk, this.#received);
    } else {
      this.#digests.update(chunk);
      for (let offset = 0; offset < chunk.length;) {
        this.#batch ??= Buffer.allocUnsafe(FILL_BATCH);
        const take = Math.min(FILL_BATCH - this.#batchFill, chunk.length - offset);
        this.#batch.set(chunk.subarray(offset, offset + take), this.#batchFill);
        this.#batchFill += take;
        offset += take;
        if (this.#batchFill === FILL_BATCH) this.#flush();
      }
    }
    this.#received += chunk.length;
  }

  /** Write what is left and the trailer, then rename the file into place. */
  async commit(): Promise<void> {
    const whole = this.#whole;
    if (whole !== undefined) {
      try {
        this.#digests.update(whole.subarray(0, this.size));
        this.#digests.trailer().copy(whole, this.size);
        await writeFileAtomically(this.path, (file) => file.writeFile(whole), { createFolders: true });
      } finally {
        this.#releaseWhole();
      }
      return;
    }
    const trailer = this.#digests.trailer();
    this.#flush();
    this.#queue(trailer);
    await this.#writes;
    const failure = this.#failure;
    if (failure !== undefined) {
      await this.abort();
      throw failure instanceof Error ? failure : new Error(describeCause(failure));
    }
    await (await (this.#file as Promise<FileHandle>)).close();
    this.#file = undefined;
    await rename(this.#temp, this.path);
  }

  /** Drop what was written. */
  async abort(): Promise<void> {
    this.#failure ??= new Error("abandoned");
    this.#releaseWhole();
    await this.#writes;
    const file = this.#file;
    this.#file = undefined;
    if (file === undefined) return;
    await (await file.catch(() => undefined))?.close().catch(() => undefined);
    await rm(this.#temp, { force: true });
  }

  #released = false;

  /** The small entry's buffer back to the pool, once. */
  #releaseWhole(): void {
    if (this.#whole === undefined || this.#released) return;
    this.#released = true;
    this.#buffers.give(this.#whole);
  }

  #flush(): void {
    if (this.#batch === undefined || this.#batchFill === 0) return;
    this.#queue(this.#batch.subarray(0, this.#batchFill));
    this.#batch = undefined;
    this.#batchFill = 0;
  }

  #queue(bytes: Uint8Array): void {
    if (this.#file === undefined) {
      this.#file = mkdir(dirname(this.path), { recursive: true }).then(() => open(this.#temp, "wx", 0o600));
      void this.#file.catch(() => undefined); // its failure is handled by the write that awaits it
    }
    const file = this.#file;
    this.#writes = this.#writes
      .then(async () => {
        if (this.#failure !== undefined) return;
        const handle = await file;
        for (let written = 0; written < bytes.length;) {
          written += (await handle.write(bytes, written, bytes.length - written)).bytesWritten;
        }
      })
      .catch((error: unknown) => {
        this.#failure ??= error;
      });
  }
}
