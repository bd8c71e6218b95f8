// One file of the write-behind spool: a small header naming the object (its key, size, when it was
// acknowledged and the SHA-256 of its data), then the object's stored bytes exactly as the backend will
// receive them. The header makes each file self-describing, so the spool is rebuilt from its folder alone
// after a crash; the digest lets the spool refuse a file damaged on disk (a bit flipped) instead of uploading
// or serving it.
//
//   offset size
//        0    8 magic "OCSSPL02" ("OCSSPL01": the same without the digest, written before it existed)
//        8    4 key length in bytes (uint32, big-endian)
//       12    8 createdAt: ms since the epoch (float64, big-endian; an integer)
//       20    8 data size in bytes (float64, big-endian; a safe integer)
//       28   32 SHA-256 of the data (OCSSPL02 only; written last, once the data is: see DIGEST_OFFSET)
//   28(+32)   n the key, UTF-8
//        …    … the data
//
// Names: "<seq>.spool" for an object waiting for upload, "<seq>.deleted" once Orthanc deleted it while its
// upload was in flight (the tombstone tells a restarted daemon to delete it from the backend too). <seq> is
// 16 hex digits, increasing: the order of acknowledgement. Temporary files (atomic-file.ts) are never read.

import { Buffer } from "node:buffer";
import { open, readdir } from "node:fs/promises";

import { isTemporaryName } from "../../atomic-file.js";

const MAGIC = Buffer.from("OCSSPL02", "latin1");
/** Files of a version without the digest, still read (and uploaded unchecked) after an upgrade. */
const MAGIC_V1 = Buffer.from("OCSSPL01", "latin1");
/** The fixed part of the header, before the digest (and the key, without the digest). */
const FIXED_HEADER = 28;
/** Where the SHA-256 of the data goes: written once the data is, before the file is synced and renamed. */
export const DIGEST_OFFSET = FIXED_HEADER;
export const DIGEST_BYTES = 32;
/** Keys are object names of a few hundred bytes at most; a larger length is a damaged header. */
const MAX_KEY_BYTES = 4096;
const SEQ_DIGITS = 16;

export type SpoolFileKind = "spool" | "deleted";

export interface SpoolHeader {
  key: string;
  createdAt: number;
  size: number;
  /** Where the data starts in the file. */
  dataOffset: number;
  /** The SHA-256 of the data, recorded when it was written; none in a file of the older format. */
  digest?: Buffer;
}

/**
 * The header of an object of `size` bytes under `key`, its digest zeroed: the writer puts the data's SHA-256
 * at DIGEST_OFFSET once it has written the data (a stream's digest is known only at its end).
 */
export function encodeSpoolHeader(key: string, size: number, createdAt: number): Buffer {
  const keyBytes = Buffer.from(key, "utf8");
  const header = Buffer.alloc(FIXED_HEADER + DIGEST_BYTES + keyBytes.length);
  MAGIC.copy(header, 0);
  const view = new DataView(header.buffer, header.byteOffset, header.byteLength);
  view.setUint32(8, keyBytes.length);
  view.setFloat64(12, createdAt);
  view.setFloat64(20, size);
  keyBytes.copy(header, FIXED_HEADER + DIGEST_BYTES);
  return header;
}

/**
 * Reads the header of the spool file at `path` and checks that the file holds exactly the data it
 * announces. Throws an Error saying what is wrong (a damaged or foreign file).
 */
export async function readSpoolHeader(path: string): Promise<SpoolHeader> {
  const file = await open(path, "r");
  try {
    const fileSize = (await file.stat()).size;
    const fixed = Buffer.alloc(FIXED_HEADER);
    const { bytesRead } = await file.read(fixed, 0, FIXED_HEADER, 0);
    const magic = fixed.subarray(0, 8);
    const withDigest = magic.equals(MAGIC);
    if (bytesRead < FIXED_HEADER || (!withDigest && !magic.equals(MAGIC_V1))) {
      throw new Error("not a spool file (no OCSSPL02 header)");
    }
    const view = new DataView(fixed.buffer, fixed.byteOffset, fixed.byteLength);
    const keyLength = view.getUint32(8);
    const createdAt = view.getFloat64(12);
    const size = view.getFloat64(20);
    if (keyLength === 0 || keyLength > MAX_KEY_BYTES || !Number.isSafeInteger(size) || size < 0) {
      throw new Error("damaged header (impossible key length or size)");
    }
    const keyOffset = FIXED_HEADER + (withDigest ? DIGEST_BYTES : 0);
    const dataOffset = keyOffset + keyLength;
    if (fileSize !== dataOffset + size) {
      throw new Error(
        `the file holds ${fileSize - dataOffset} bytes of data where its header announces ${size}`,
      );
    }
    const keyBytes = Buffer.alloc(keyLength);
    await file.read(keyBytes, 0, keyLength, keyOffset);
    const header: SpoolHeader = { key: keyBytes.toString("utf8"), createdAt, size, dataOffset };
    if (withDigest) {
      header.digest = Buffer.alloc(DIGEST_BYTES);
      await file.read(header.digest, 0, DIGEST_BYTES, DIGEST_OFFSET);
    }
    return header;
  } finally {
    await file.close();
  }
}

export function spoolFileName(seq: number, kind: SpoolFileKind): string {
  return `${seq.toString(16).padStart(SEQ_DIGITS, "0")}.${kind}`;
}

export interface SpoolFolderEntry {
  name: string;
  seq: number;
  kind: SpoolFileKind;
}

export interface SpoolFolderListing {
  files: SpoolFolderEntry[];
  /** Temporary files of writes a crash interrupted: never acknowledged, to be removed. */
  temporary: string[];
  /** Anything else: left alone (and reported). */
  foreign: string[];
}

/** The files of a spool folder, spool and tombstone files in the order of their sequence numbers. */
export async function listSpoolFolder(folder: string): Promise<SpoolFolderListing> {
  const listing: SpoolFolderListing = { files: [], temporary: [], foreign: [] };
  for (const entry of await readdir(folder, { withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const { name } = entry;
    const match = /^([0-9a-f]{16})\.(spool|deleted)$/.exec(name);
    if (match !== null) {
      listing.files.push({ name, seq: parseInt(match[1] as string, 16), kind: match[2] as SpoolFileKind });
    } else if (isTemporaryName(name)) {
      listing.temporary.push(name);
    } else if (name !== LOCK_FILE && name !== HANDOVER_FILE) {
      listing.foreign.push(name);
    }
  }
  listing.files.sort((a, b) => a.seq - b.seq);
  return listing;
}

/** The pid of the daemon using the spool folder. */
export const LOCK_FILE = "lock";
/** The pid of a daemon waiting for the lock, asking the holder to hand the folder over if it is exiting. */
export const HANDOVER_FILE = "handover";
