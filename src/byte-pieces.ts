// A byte sequence held as the list of pieces it was produced in (a cipher's outputs, a header, a tag), not
// joined into one buffer of ours: node:crypto's `update` already copies every byte once into the buffer it
// returns, and a second copy into one plaintext or stored object cost as much as the AES-GCM itself
// (docs/performance.md, "Crypto"). Whoever sends the bytes sends the list (writev, a request body); whoever
// needs one contiguous buffer (a tool, a test) joins it.

import { Buffer } from "node:buffer";

/** The pieces of one byte sequence, in order. */
export type BytePieces = readonly Uint8Array[];

/** Builds a BytePieces, counting its bytes. Empty pieces are left out. */
export class PieceList {
  readonly pieces: Uint8Array[] = [];
  length = 0;

  push(piece: Uint8Array): void {
    if (piece.length === 0) return;
    this.pieces.push(piece);
    this.length += piece.length;
  }

  /** Overwrites every byte with zeros: a plaintext that failed its check must not linger in memory. */
  wipe(): void {
    for (const piece of this.pieces) piece.fill(0);
  }
}

/** How many bytes the pieces hold. */
export function piecesLength(pieces: BytePieces): number {
  let length = 0;
  for (const piece of pieces) length += piece.length;
  return length;
}

/**
 * The pieces as one Uint8Array (not a Buffer, whose slice() is a view): the piece itself when there is only
 * one, else one copy into a buffer not zero-filled, every byte of which is written.
 */
export function joinPieces(pieces: BytePieces): Uint8Array {
  if (pieces.length === 1) {
    const only = pieces[0] as Uint8Array;
    return new Uint8Array(only.buffer, only.byteOffset, only.length);
  }
  const joined = uninitialisedBytes(piecesLength(pieces));
  let offset = 0;
  for (const piece of pieces) {
    joined.set(piece, offset);
    offset += piece.length;
  }
  return joined;
}

/** Bytes [start, end) of the sequence, as views into its pieces (no copy). */
export function slicePieces(pieces: BytePieces, start: number, end: number): Uint8Array[] {
  const slice: Uint8Array[] = [];
  let offset = 0;
  for (const piece of pieces) {
    const from = Math.max(start - offset, 0);
    const to = Math.min(end - offset, piece.length);
    if (from < to) slice.push(piece.subarray(from, to));
    offset += piece.length;
    if (offset >= end) break;
  }
  return slice;
}

/**
 * A buffer whose bytes the caller overwrites, all of them, before anyone reads it: not zero-filled. A plain
 * Uint8Array (not a Buffer, whose slice() is a view), like the results callers had before.
 */
function uninitialisedBytes(size: number): Uint8Array {
  const bytes = Buffer.allocUnsafeSlow(size);
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
}
