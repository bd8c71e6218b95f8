// Files that appear whole or not at all, for the folder store's objects and the CLI's output files: the
// bytes go into a hidden temporary sibling, which is then renamed over the target (a rename within one
// folder is atomic). A reader never sees half a file, and a crash leaves at most a temporary file, which
// the folder store never lists.

import { randomBytes } from "node:crypto";
import { closeSync, constants, mkdirSync, openSync, renameSync, rmSync, writevSync } from "node:fs";
import { mkdir, open, rename, unlink, type FileHandle } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { piecesLength, type BytePieces } from "./byte-pieces.js";

/** In every temporary name, `.NAME.tmp-<12 hex digits>`, so that listings can leave them out. */
const TEMP_MARKER = ".tmp-";
/** A new file only, never one that exists (a temporary name taken twice is an error, not an overwrite). */
const NEW_FILE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL;

export interface AtomicWriteOptions {
  /** fsync the file before the rename and its folder after it, so that the file survives a power cut. */
  fsync?: boolean;
  /** Create the target's folder (and its parents) when missing; otherwise a missing folder is an error. */
  createFolders?: boolean;
}

/** True for the name (not the path) of a temporary file of writeFileAtomically. */
export function isTemporaryName(name: string): boolean {
  return name.startsWith(".") && name.includes(TEMP_MARKER);
}

/**
 * Write `path` whole or not at all: `write` fills a new temporary sibling (mode 0600), which is then
 * renamed over `path`. On any failure the temporary file is removed and the error is thrown as it was.
 * `write` may close the handle itself (a write stream made on it does), but then without `fsync`.
 */
export async function writeFileAtomically(
  path: string,
  write: (file: FileHandle) => Promise<void>,
  options: AtomicWriteOptions = {},
): Promise<void> {
  const temp = temporaryPath(path);
  try {
    const file = await openNew(temp, options.createFolders ?? false);
    try {
      await write(file);
      if (options.fsync === true) await file.sync();
    } finally {
      await file.close();
    }
    await rename(temp, path);
    if (options.fsync === true) await syncFolder(dirname(path));
  } catch (error) {
    await unlink(temp).catch(() => undefined); // it may not exist; the original error is the one to report
    throw error;
  }
}

/**
 * writeFileAtomically for bytes in hand, without fsync, as consecutive system calls on the calling thread
 * (open, write, close, rename): for small files, where each trip through Node's thread pool costs more than
 * the work (src/stores/local-file-io.ts). Blocks the thread meanwhile: callers keep it to small files.
 */
export function writeBytesAtomicallyNow(
  path: string,
  data: Uint8Array | BytePieces,
  options: Omit<AtomicWriteOptions, "fsync"> = {},
): void {
  const temp = temporaryPath(path);
  try {
    const fd = openNewNow(temp, options.createFolders ?? false);
    try {
      writePiecesNow(fd, data instanceof Uint8Array ? [data] : data);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, path);
  } catch (error) {
    rmSync(temp, { force: true }); // it may not exist; the original error is the one to report
    throw error;
  }
}

/** Writes every byte of `pieces` at the file's position, by writev, as many calls as a short write needs. */
function writePiecesNow(fd: number, pieces: BytePieces): void {
  let rest = pieces;
  let left = piecesLength(pieces);
  while (left > 0) {
    const written = writevSync(fd, rest);
    left -= written;
    if (left > 0) rest = skipBytes(rest, written);
  }
}

/**
 * Writes every byte of `pieces` to `file` at its position, by writev (FileHandle.writev), as many calls as a
 * short write needs: an object given as pieces (src/byte-pieces.ts) goes to disk without being joined.
 */
export async function writePieces(file: FileHandle, pieces: BytePieces): Promise<void> {
  let rest = pieces;
  let left = piecesLength(pieces);
  while (left > 0) {
    const { bytesWritten } = await file.writev(rest as Uint8Array[]);
    left -= bytesWritten;
    if (left > 0) rest = skipBytes(rest, bytesWritten);
  }
}

/** The pieces after their first `count` bytes. */
function skipBytes(pieces: BytePieces, count: number): BytePieces {
  let skipped = 0;
  for (let index = 0; index < pieces.length; index++) {
    const piece = pieces[index] as Uint8Array;
    if (skipped + piece.length > count) {
      return [piece.subarray(count - skipped), ...pieces.slice(index + 1)];
    }
    skipped += piece.length;
  }
  return [];
}

function openNewNow(path: string, createFolders: boolean): number {
  try {
    return openSync(path, NEW_FILE, 0o600);
  } catch (error) {
    if (!createFolders || (error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    mkdirSync(dirname(path), { recursive: true });
    return openSync(path, NEW_FILE, 0o600);
  }
}

/** A new hidden temporary sibling of `path` (isTemporaryName), for writers that rename it into place themselves. */
export function temporaryPath(path: string): string {
  return join(dirname(path), `.${basename(path)}${TEMP_MARKER}${randomBytes(6).toString("hex")}`);
}

async function openNew(path: string, createFolders: boolean): Promise<FileHandle> {
  try {
    return await open(path, NEW_FILE, 0o600);
  } catch (error) {
    if (!createFolders || (error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    await mkdir(dirname(path), { recursive: true });
    return open(path, NEW_FILE, 0o600);
  }
}

/** fsync a folder, so that a rename or a new name in it is durable. */
export async function syncFolder(folder: string): Promise<void> {
  const handle = await open(folder, constants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
