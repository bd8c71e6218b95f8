// The direct path of a read (issue 15): a plaintext attachment in a local file is answered with the open file
// itself (the daemon's file answers, src/daemon/protocol.ts), found, opened and checked in one unit of work
// on the daemon's thread; an encrypted one is read whole, decrypted and handed back as its plaintext's
// pieces, in one unit of work too. The storage area's general read (hybrid probing, records that point
// nowhere, the pending-read wait, the memory budget's queue, streams) adds nothing to these common cases but
// promises, a stream per read and their garbage, which CPU profiles showed as about half of the daemon's work
// per read (docs/performance.md, "Issue 15: latest"). Whenever the case is not that simple, or anything
// fails, this path steps aside (undefined) and the general read answers, with its errors and logs.

import { closeSync, readSync } from "node:fs";

import { slicePieces, type BytePieces } from "../byte-pieces.js";
import type { AttachmentIdentity, ObjectCodec } from "../crypto/codec.js";
import { SYNC_FILE_LIMIT } from "../stores/local-file-io.js";
import type { ByteRange, ObjectStore } from "../stores/object-store.js";

/** The bytes of a read in an open file: the caller owns `fd` and closes it once done. */
export interface DirectFile {
  fd: number;
  /** Bytes of the answer: the whole attachment, or the range asked for. */
  size: number;
  /** Where they start in the file. */
  start: number;
}

/** The first bytes of each file checked, read here: one buffer for every read (the check is synchronous). */
let headScratch = Buffer.alloc(0);

/**
 * `key` of `store` (or a range of it) as an open file, once `codec` (plaintext) accepted its first bytes as
 * the general read checks them; undefined when the store has no local file for it or anything is amiss.
 */
export function openCheckedFile(
  store: ObjectStore,
  key: string,
  range: ByteRange | undefined,
  codec: ObjectCodec,
  contentType: number,
): DirectFile | undefined {
  const file = store.openLocalFile?.(key, range);
  if (file === undefined) return undefined;
  const end = range === undefined ? file.size : range.end;
  try {
    codec.plaintextSize(file.size, key);
    // As the general read: a range from further in shows no first bytes to check.
    if (codec.headBytes > 0 && (range === undefined || range.start === 0)) {
      const count = Math.min(codec.headBytes, end);
      if (headScratch.length < count) headScratch = Buffer.alloc(codec.headBytes);
      const head = headScratch.subarray(0, count);
      for (let filled = 0; filled < count;) {
        const read = readSync(file.fd, head, filled, count - filled, file.start + filled);
        if (read === 0) throw new Error("truncated while read"); // the general read says so, in words
        filled += read;
      }
      codec.checkHead(head, file.size, contentType, key);
    }
  } catch {
    closeSync(file.fd);
    return undefined;
  }
  return { fd: file.fd, size: end - (range?.start ?? 0), start: file.start };
}

/** A decrypted read in memory: the answer's bytes, and what to do with its memory once they are sent. */
export interface DirectPlaintext {
  /** The bytes of the answer (the whole plaintext, or the range asked for), as views into `decrypted`. */
  pieces: BytePieces;
  /** Bytes in `pieces`. */
  size: number;
  /** The whole plaintext, in memory the codec decrypted into and nobody else holds: freed once sent. */
  decrypted: BytePieces;
  /** Gives the plaintext's memory budget back (MaxConcurrentInputSize). */
  release: () => void;
}

/**
 * The stored bytes of each object decrypted here: one buffer for every read, the decryption being synchronous
 * and its output memory of its own (ObjectCodec.decodeHeldNow). At most SYNC_FILE_LIMIT bytes.
 */
let storedScratch = Buffer.alloc(0);

/**
 * `key` of `store` read whole from its local file and decrypted by `codec` at once (its tag verified), or
 * bytes [start, end) of its plaintext; undefined when the store has no local file for it, the file is large
 * (the general read streams it), the memory budget cannot reserve its plaintext now, or anything is amiss.
 */
export function decodeFileNow(
  store: ObjectStore,
  key: string,
  range: ByteRange | undefined,
  codec: ObjectCodec,
  attachment: AttachmentIdentity,
): DirectPlaintext | undefined {
  if (codec.decodeHeldNow === undefined) return undefined;
  const file = store.openLocalFile?.(key);
  if (file === undefined) return undefined;
  let stored: Buffer;
  try {
    if (file.size > SYNC_FILE_LIMIT) return undefined;
    if (storedScratch.length < file.size) storedScratch = Buffer.allocUnsafeSlow(file.size); // all overwritten
    stored = storedScratch.subarray(0, file.size);
    for (let filled = 0; filled < file.size;) {
      const read = readSync(file.fd, stored, filled, file.size - filled, filled);
      if (read === 0) return undefined; // truncated while read: the general read says so, in words
      filled += read;
    }
  } catch {
    return undefined;
  } finally {
    closeSync(file.fd);
  }
  let held;
  try {
    held = codec.decodeHeldNow(stored, `${store.location}/${key}`, attachment);
  } catch {
    return undefined; // refused (a wrong tag, an unknown key...): the general read fails with the reason
  }
  if (held === undefined) return undefined;
  if (range === undefined) return { ...held, decrypted: held.pieces };
  if (range.start < 0 || range.start > range.end || range.end > held.size) {
    held.release();
    return undefined; // BAD_RANGE, from the general read
  }
  const pieces = slicePieces(held.pieces, range.start, range.end);
  return { pieces, size: range.end - range.start, decrypted: held.pieces, release: held.release };
}
