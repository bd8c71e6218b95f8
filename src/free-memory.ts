// The memory of an attachment's bytes, freed as soon as they are done with: a decrypted plaintext once its
// answer was sent, a create's payload and the socket's chunks it was copied from, an encrypted object once
// stored. V8 frees an ArrayBuffer's memory only when a garbage collection finds it unreachable, and counts it
// meanwhile toward the external memory that triggers full collections: behind Orthanc, A1 reads of the
// sample files (a new plaintext of about 270 KB each) cost the daemon a full collection every 30 reads or so,
// about 170 µs per read, and uploads one every 20 to 50 creates (docs/performance.md, "Issue 15: latest").
// ArrayBuffer.prototype.transfer(0) detaches the memory and frees it at once, with no collection.

import type { BytePieces } from "./byte-pieces.js";

/** Smaller buffers may share memory (Node's pool for small ones): they are left to the collector. */
const MIN_FREED_BYTES = 64 * 1024;

type Detach = (this: ArrayBuffer, length: number) => ArrayBuffer;
/**
 * ES2024's ArrayBuffer.prototype.transfer: in Node 21 and newer (the bundled runtime), not in Node 20,
 * which the daemon also runs on (OrthancCloudStorage.Node, or `node` from PATH): there the collector frees
 * the memory, as before. The project's TypeScript lib is ES2023.
 */
const detach = (ArrayBuffer.prototype as { transfer?: Detach }).transfer;

/** Whether this Node frees memory at once; false on Node 20, where freeMemory leaves it to the collector. */
export const freesAtOnce = typeof detach === "function";

/**
 * Free the memory of `bytes` now. Only memory they own whole is freed, never a view into a larger buffer;
 * the caller must hold the only reference to them (no store, stream or pending write keeps one) and never
 * touch them again.
 */
export function freeMemory(bytes: Uint8Array): void {
  const memory = bytes.buffer;
  if (
    !(memory instanceof ArrayBuffer) ||
    bytes.byteOffset !== 0 ||
    bytes.byteLength !== memory.byteLength ||
    memory.byteLength < MIN_FREED_BYTES
  ) {
    return;
  }
  detach?.call(memory, 0);
}

/**
 * Free the memory of every piece, as `freeMemory` does, except the pieces that are views into the memory of
 * `except`: bytes the caller was given, which someone else may still hold (a plaintext codec's one piece is
 * the caller's payload).
 */
export function freePieces(pieces: BytePieces, except?: Uint8Array): void {
  for (const piece of pieces) if (except === undefined || piece.buffer !== except.buffer) freeMemory(piece);
}
