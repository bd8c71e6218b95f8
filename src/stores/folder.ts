// The folder driver (`LocalObjectStorage`, and Orthanc's own `StorageDirectory` in hybrid mode):
// objects are files named by their key under a root folder, "/" in a key being a sub-folder.

import { closeSync, constants } from "node:fs";
import { access, mkdir, readdir, rmdir, stat, unlink } from "node:fs/promises";
import { dirname, join, resolve, sep } from "node:path";
import { Readable } from "node:stream";

import {
  type AtomicWriteOptions,
  isTemporaryName,
  writeBytesAtomicallyNow,
  writeFileAtomically,
  writePieces,
} from "../atomic-file.js";
import type { BytePieces } from "../byte-pieces.js";
import { StorageError, describeCause } from "../errors.js";
import {
  FileBody,
  ReadBuffers,
  SYNC_FILE_LIMIT,
  bufferedBody,
  fileRangeStream,
  isMissing,
  openToRead,
  readRange,
  type OpenedFile,
} from "./local-file-io.js";
import type {
  ByteRange,
  GetOptions,
  LocalFileObject,
  ObjectBody,
  ObjectInfo,
  ObjectStore,
} from "./object-store.js";
import { rangeWithin } from "./range-errors.js";

export interface FolderStoreOptions {
  /** The folder holding the objects; created when missing. */
  root: string;
  /** fsync each file and its folder before `put` returns, so an acknowledged write survives a power cut. */
  fsync: boolean;
  /** Remove folders left empty by a delete, up to (not including) the root, as Orthanc's own storage does. */
  pruneEmptyFolders?: boolean;
}

/** Names the driver in messages and metrics. */
const DRIVER_NAME = "folder";
/** Largest read at a time of a file streamed (above SYNC_FILE_LIMIT): one thread-pool trip per MiB. */
const MAX_READ_CHUNK = 1024 * 1024;
/**
 * A key that could leave the root or name a folder: empty, an empty, "." or ".." segment, or a backslash or
 * NUL anywhere.
 */
const UNSAFE_KEY = /(?:^|\/)\.{0,2}(?:\/|$)|[\\\0]/;
/** OS error codes an administrator can act on, in words. */
const OS_ERROR_HINTS: Readonly<Record<string, string>> = {
  ENOSPC: "the disk is full",
  EDQUOT: "the disk quota is exhausted",
  EACCES: "permission denied: check the owner and mode of the storage folder",
  EPERM: "operation not permitted: check the owner and mode of the storage folder",
  EROFS: "the file system is read-only",
  EIO: "input/output error from the disk",
  EISDIR: "a folder stands where the object file should be",
  ENOTDIR: "a file stands where a folder of the key should be",
  EMFILE: "too many open files: raise the process's file descriptor limit",
};

export async function createFolderStore(options: FolderStoreOptions): Promise<ObjectStore> {
  const root = resolve(options.root);
  try {
    await mkdir(root, { recursive: true });
    await access(root, constants.R_OK | constants.W_OK | constants.X_OK);
  } catch (cause) {
    throw storeError("open storage folder", root, cause);
  }
  return new FolderStore(root, options.fsync, options.pruneEmptyFolders ?? true);
}

class FolderStore implements ObjectStore {
  readonly driver = DRIVER_NAME;
  /** Objects are written whole or not at all, their folders created on demand. */
  private readonly writeOptions: AtomicWriteOptions;
  private readonly buffers = new ReadBuffers();
  /** The root and a separator: a key's file is this, then the key. */
  private readonly prefix: string;

  constructor(
    readonly location: string,
    fsync: boolean,
    private readonly pruneEmptyFolders: boolean,
  ) {
    this.writeOptions = { fsync, createFolders: true };
    this.prefix = location.endsWith(sep) ? location : location + sep;
  }

  async put(key: string, data: Uint8Array): Promise<void> {
    await this.putPieces(key, [data], data.length);
  }

  /** The pieces in one writev: the file is written without joining them (src/byte-pieces.ts). */
  async putPieces(key: string, pieces: BytePieces, size: number): Promise<void> {
    const path = this.pathOf(key);
    try {
      if (this.writeOptions.fsync !== true && size <= SYNC_FILE_LIMIT) {
        // One unit of work on this thread (local-file-io.ts says why); with fsync on, the disk's wait is the
        // cost, and it must not stall the event loop.
        writeBytesAtomicallyNow(path, pieces, this.writeOptions);
      } else {
        await writeFileAtomically(path, (file) => writePieces(file, pieces), this.writeOptions);
      }
    } catch (cause) {
      throw storeError("write", path, cause);
    }
  }

  /** Chunk by chunk into the temporary file: the driver holds one chunk of the body at a time. */
  async putStream(key: string, body: Readable, size: number): Promise<void> {
    const path = this.pathOf(key);
    try {
      await writeFileAtomically(
        path,
        async (file) => {
          let written = 0;
          for await (const chunk of body as AsyncIterable<Uint8Array>) {
            written += chunk.length;
            if (written > size) throw sizeMismatch(path, written, size);
            await file.write(chunk);
          }
          if (written < size) throw sizeMismatch(path, written, size);
        },
        this.writeOptions,
      );
    } catch (cause) {
      body.destroy();
      throw cause instanceof StorageError ? cause : storeError("write", path, cause);
    }
  }

  get(key: string, range?: ByteRange, options?: GetOptions): Promise<ObjectBody | null> {
    // A throw in the executor rejects: errors still come as a rejection, as from every driver.
    return new Promise((resolve) => resolve(this.openNow(key, range, options ?? {})));
  }

  openLocalFile(key: string, range?: ByteRange): LocalFileObject | undefined {
    let file: OpenedFile | null;
    try {
      file = openToRead(this.pathOf(key));
    } catch {
      return undefined; // `get` says why
    }
    if (file === null) return undefined;
    const { fd, size } = file;
    if (range !== undefined && (range.start < 0 || range.start > range.end || range.end > size)) {
      closeSync(fd);
      return undefined; // BAD_RANGE, from `get`
    }
    return { fd, size, start: range?.start ?? 0 };
  }

  /**
   * `get`, in one unit of work on this thread up to the stream of a large file (local-file-io.ts); with
   * `asFile`, the open file itself and a body that reads it only if it is read (ObjectBody.file).
   */
  private openNow(key: string, range: ByteRange | undefined, options: GetOptions): ObjectBody | null {
    const path = this.pathOf(key);
    let file: OpenedFile | null;
    try {
      file = openToRead(path);
    } catch (cause) {
      throw storeError("read", path, cause);
    }
    if (file === null) return null;
    const { fd, size } = file;
    let streaming = false;
    try {
      const asked = range ?? { start: 0, end: size };
      const within = rangeWithin(asked, size, options.cutAtEnd);
      if (within === undefined) {
        throw new StorageError(
          "BAD_RANGE",
          { operation: "read range", subject: path },
          `bytes [${asked.start}, ${asked.end}) asked of an object of ${size} bytes`,
        );
      }
      const { start, end } = within;
      if (options.file === true) {
        const body = new FileBody(fd, start, end);
        streaming = true;
        return { size, body, file: body.file };
      }
      if (end - start <= SYNC_FILE_LIMIT) {
        const bytes = readRange(fd, start, end, this.buffers);
        return { size, body: bufferedBody(bytes), bytes, recycle: () => this.buffers.give(bytes) };
      }
      const body = fileRangeStream(fd, start, end, MAX_READ_CHUNK);
      streaming = true;
      return { size, body };
    } catch (error) {
      if (error instanceof StorageError) throw error;
      throw storeError("read", path, error);
    } finally {
      if (!streaming) closeSync(fd);
    }
  }

  async head(key: string): Promise<ObjectInfo | null> {
    const path = this.pathOf(key);
    try {
      const info = await stat(path);
      return { key, size: info.size };
    } catch (cause) {
      if (isMissing(cause)) return null;
      throw storeError("stat", path, cause);
    }
  }

  async delete(key: string): Promise<void> {
    const path = this.pathOf(key);
    try {
      await unlink(path);
    } catch (cause) {
      if (isMissing(cause)) return;
      throw storeError("delete", path, cause);
    }
    if (this.pruneEmptyFolders) await this.pruneFrom(dirname(path));
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    // Start the walk at the deepest folder the prefix names, then filter on the whole prefix.
    const folderPrefix = prefix.includes("/") ? prefix.slice(0, prefix.lastIndexOf("/")) : "";
    const start = folderPrefix === "" ? this.location : this.pathOf(folderPrefix);
    for await (const info of this.walk(start)) {
      if (info.key.startsWith(prefix)) yield info;
    }
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  private async *walk(folder: string): AsyncIterable<ObjectInfo> {
    let entries;
    try {
      entries = await readdir(folder, { withFileTypes: true });
    } catch (cause) {
      if (isMissing(cause)) return;
      throw storeError("list", folder, cause);
    }
    for (const entry of entries) {
      const path = join(folder, entry.name);
      if (entry.isDirectory()) {
        yield* this.walk(path);
      } else if (entry.isFile() && !isTemporaryName(entry.name)) {
        const info = await this.head(this.keyOf(path));
        if (info !== null) yield info;
      }
    }
  }

  private async pruneFrom(folder: string): Promise<void> {
    while (folder !== this.location && folder.startsWith(this.location + sep)) {
      try {
        await rmdir(folder);
      } catch {
        return; // not empty (or already gone): the folder is still in use, which is fine
      }
      folder = dirname(folder);
    }
  }

  /** The file of a key; refuses keys that could leave the root. */
  private pathOf(key: string): string {
    if (UNSAFE_KEY.test(key)) {
      throw new StorageError(
        "INVALID_ATTACHMENT",
        { operation: "map object key to a file", subject: JSON.stringify(key) },
        "a key must be non-empty '/'-separated names without '.', '..', '\\' or empty segments",
      );
    }
    // The key was checked above, so joining it is a concatenation: path.join's normalisation of the whole
    // path, and then splitting the key at every read, showed in CPU profiles of the daemon.
    return this.prefix + (sep === "/" ? key : key.split("/").join(sep));
  }

  private keyOf(path: string): string {
    return path
      .slice(this.location.length + 1)
      .split(sep)
      .join("/");
  }
}

function sizeMismatch(path: string, received: number, size: number): StorageError {
  const detail =
    received < size
      ? `the body ended after ${received} of the ${size} announced bytes`
      : `the body went past the ${size} announced bytes`;
  return new StorageError("INTEGRITY", { operation: "write", subject: path }, detail);
}

/** A STORE_FAILED error for a file, with the OS error in words an administrator can act on. */
export function storeError(operation: string, path: string, cause: unknown): StorageError {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  const hint = code === undefined ? undefined : OS_ERROR_HINTS[code];
  const detail = hint === undefined ? describeCause(cause) : `${hint} (${describeCause(cause)})`;
  return new StorageError("STORE_FAILED", { operation, subject: path, cause }, detail);
}
