// The direct path of a read (issue 15): a plaintext attachment in a local file is answered with the open file
// itself (the daemon's file answers, src/daemon/protocol.ts), found, opened and checked in one unit of work
// on the daemon's thread. The storage area's general read (hybrid probing, records that point nowhere, the
// pending-read wait, decryption, streams) adds nothing to that common case but promises, a stream per read
// and their garbage, which CPU profiles showed as about half of the daemon's work per read
// (docs/performance.md, "Issue 15: latest"). Whenever the case is not that simple, or anything fails, this
// path steps aside (undefined) and the general read answers, with its errors and logs.

import { closeSync, readSync } from "node:fs";

import type { ObjectCodec } from "../crypto/codec.js";
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
