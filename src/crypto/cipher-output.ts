/*
 * Where a cipher's output goes, shared by the A1 and v2 formats: the input is fed to OpenSSL in pieces of
 * UPDATE_CHUNK bytes, and each output `update` returns is kept as it is, one piece of a list (src/byte-pieces.ts).
 */
import type { CipherGCM, DecipherGCM } from "node:crypto";
import type { PieceList } from "../byte-pieces.js";
import { pooledBuffers } from "./gather-buffers.js";

/**
 * Bytes given to OpenSSL per update call. Each call has a fixed cost besides AES-GCM on its bytes (Node
 * allocates an output of the input's size plus one byte, then, GCM's output being one byte shorter, a second
 * one it copies the first into, and the garbage collector finalises both later), so larger pieces are
 * cheaper, up to where the piece and its output stop fitting in the CPU's cache together: on Node 26 here,
 * 1 MiB decrypted in 256 KiB updates ran at 4,200 MB/s of CPU, in 64 KiB ones 3,550, in 16 KiB ones 2,850,
 * in one of 1 MiB 3,700 (docs/performance.md, "Crypto"). The outputs come from malloc's free lists, already
 * mapped, where one buffer of a whole large object would be fresh memory faulted in page by page.
 */
export const UPDATE_CHUNK = 256 * 1024;

/** Runs `input` through the cipher UPDATE_CHUNK bytes at a time, each output added to `output` as it is. */
export function updatePieces(cipher: CipherGCM | DecipherGCM, input: Uint8Array, output: PieceList): void {
  for (let start = 0; start < input.length; start += UPDATE_CHUNK) {
    output.push(cipher.update(input.subarray(start, start + UPDATE_CHUNK)));
  }
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
