/*
 * Where a cipher's output goes, shared by the A1 and v2 formats: the input is fed to OpenSSL in pieces of
 * UPDATE_CHUNK bytes, each written into one output buffer allocated once and not zero-filled.
 */
import { Buffer } from "node:buffer";
import type { CipherGCM, DecipherGCM } from "node:crypto";
import { pooledBuffers } from "./gather-buffers.js";

/**
 * Bytes given to OpenSSL per update call. Each call has a fixed cost besides AES-GCM on its bytes (about
 * 5 µs here: Node allocates an output of the input's size plus one byte, then, GCM's output being one byte
 * shorter, a second one it copies the first into, and the garbage collector finalises it later), so larger
 * pieces are cheaper, up to where the piece and its output stop fitting in the CPU's cache together: 256 KiB
 * measured 10 to 25 % faster than 64 KiB for 1 MiB to 64 MiB objects, and at or near the best of 64 KiB to
 * 1 MiB and whole (docs/performance.md, "Crypto"). The outputs come from malloc's free lists, already
 * mapped, where one buffer of a whole large object would be fresh memory faulted in page by page.
 */
export const UPDATE_CHUNK = 256 * 1024;

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

/**
 * Joins a stream's small chunks into pieces of at least UPDATE_CHUNK bytes before they go through a cipher,
 * so that a stream of 64 KiB chunks (a socket's reads) costs one update per UPDATE_CHUNK instead of one per
 * chunk; a chunk that holds a whole piece or more passes without a copy (its multiple of UPDATE_CHUNK in one
 * piece). One staging buffer per stream, from the process's pool and given back by `flush`: a piece is
 * only valid during the call it is given to.
 */
export class Coalescer {
  #staging: Uint8Array | undefined;
  #filled = 0;

  /** Gives `use` each complete piece, in order; keeps the rest for the next chunk or `flush`. */
  push(chunk: Uint8Array, use: (piece: Uint8Array) => void): void {
    let rest = chunk;
    if (this.#filled > 0) {
      const staging = this.#staging as Uint8Array;
      const taken = Math.min(UPDATE_CHUNK - this.#filled, rest.length);
      staging.set(rest.subarray(0, taken), this.#filled);
      this.#filled += taken;
      rest = rest.subarray(taken);
      if (this.#filled < UPDATE_CHUNK) return;
      this.#filled = 0;
      use(staging);
    }
    const whole = rest.length - (rest.length % UPDATE_CHUNK);
    if (whole > 0) use(rest.subarray(0, whole));
    if (whole < rest.length) {
      // Not zero-filled: only the bytes copied in are ever given out.
      this.#staging ??= pooledBuffers.take(UPDATE_CHUNK);
      this.#staging.set(rest.subarray(whole), 0);
      this.#filled = rest.length - whole;
    }
  }

  /** Gives `use` what is held, if anything, then the staging buffer back to the pool. */
  flush(use: (piece: Uint8Array) => void): void {
    const staging = this.#staging;
    if (staging === undefined) return;
    const held = staging.subarray(0, this.#filled);
    this.#filled = 0;
    this.#staging = undefined;
    try {
      if (held.length > 0) use(held);
    } finally {
      pooledBuffers.give(staging);
    }
  }
}
