/*
 * Where a cipher's output goes, shared by the A1 and v2 formats: the input is fed to OpenSSL in pieces of
 * UPDATE_CHUNK bytes, each written into one output buffer allocated once and not zero-filled.
 */
import { Buffer } from "node:buffer";
import type { CipherGCM, DecipherGCM } from "node:crypto";

/**
 * Bytes given to OpenSSL per update call. Each call returns a new buffer of its input's size: 64 KiB ones
 * come from malloc's free lists, warm in cache and already mapped, where one buffer of a whole large object
 * is fresh memory the kernel must fault in page by page (the dominant cost on a VM; docs/performance.md).
 */
const UPDATE_CHUNK = 64 * 1024;

/** Runs `input` through the cipher UPDATE_CHUNK bytes at a time into `output` from `offset`; returns the end. */
export function updateInto(
  cipher: CipherGCM | DecipherGCM,
  input: Uint8Array,
  output: Uint8Array,
  offset: number,
): number {
  let end = offset;
  for (let start = 0; start < input.length; start += UPDATE_CHUNK) {
    const part = cipher.update(input.subarray(start, start + UPDATE_CHUNK));
    output.set(part, end);
    end += part.length;
  }
  return end;
}

/**
 * A buffer whose bytes the caller overwrites, all of them, before anyone reads it: not zero-filled. A plain
 * Uint8Array (not a Buffer, whose slice() is a view), like the results callers had before.
 */
export function uninitialisedBytes(size: number): Uint8Array {
  const bytes = Buffer.allocUnsafeSlow(size);
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
}
