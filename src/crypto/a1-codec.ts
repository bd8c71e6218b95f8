// The A1 codec: what the storage area uses when StorageEncryption is enabled (spec §1). Adds the memory
// budget around the cipher. Our budget rule, the same on both sides unlike the official one (spec §1.10):
// writes and reads both hold the PLAINTEXT size for the crypto work, so whatever can be written can be read.
// A streamed write holds a window of ENCRYPT_WINDOW_BYTES, not the object, but still refuses an object larger
// than the budget: it could not be decrypted afterwards.

import type { EncryptionOptions } from "../config/types.js";
import { pipeline, type Readable } from "node:stream";
import { A1_OVERHEAD, a1PlaintextSize, a1StoredSize } from "./a1-format.js";
import {
  createA1EncryptStream,
  decryptA1Pieces,
  decryptA1StreamPieces,
  encryptA1Pieces,
} from "./a1-cipher.js";
import { joinPieces, type BytePieces } from "../byte-pieces.js";
import { holdPieces, holdPiecesOf, type HeldPlaintext, type ObjectCodec, type StoreStream } from "./codec.js";
import { lengthMismatch } from "./exact-length.js";
import { KeyRing } from "./key-ring.js";
import { MemoryBudget } from "./memory-budget.js";

/**
 * What one streamed encryption is counted for in the budget: the bytes a streamed write holds at once (the
 * daemon's input buffer, the cipher's output, and a driver's part: 8 MiB for S3), rounded up.
 */
export const ENCRYPT_WINDOW_BYTES = 16 * 1024 * 1024;

export class A1Codec implements ObjectCodec {
  readonly format = "A1";
  /** spec §5.1: a GCM tag covers the whole object, so no byte of it is trusted before all are read. */
  readonly supportsRangeReads = false;
  /** `decode` authenticates every byte: nothing is served unchecked. */
  readonly headBytes = 0;

  constructor(
    readonly ring: KeyRing,
    readonly budget: MemoryBudget,
  ) {}

  /** Reads the key files and sizes the budget from a resolved `StorageEncryption` section. */
  static async load(options: EncryptionOptions): Promise<A1Codec> {
    return new A1Codec(await KeyRing.load(options), new MemoryBudget(options.maxConcurrentInputBytes));
  }

  checkHead(): void {}

  storedSize(plaintextSize: number): number {
    return a1StoredSize(plaintextSize);
  }

  plaintextSize(storedSize: number, subject: string): number {
    return a1PlaintextSize(storedSize, subject);
  }

  async encode(plaintext: Uint8Array, subject: string): Promise<Uint8Array> {
    return joinPieces(await this.encodePieces(plaintext, subject));
  }

  async encodePieces(plaintext: Uint8Array, subject: string): Promise<BytePieces> {
    const release = await this.budget.acquire(plaintext.length, subject, "encrypt");
    try {
      return encryptA1Pieces(plaintext, this.ring, subject);
    } finally {
      release();
    }
  }

  async encodeStream(
    plaintext: Readable,
    plaintextSize: number,
    subject: string,
    store: StoreStream,
  ): Promise<void> {
    let release: () => void;
    try {
      this.budget.assertFits(plaintextSize, subject, "encrypt");
      release = await this.budget.acquire(Math.min(plaintextSize, ENCRYPT_WINDOW_BYTES), subject, "encrypt");
    } catch (error) {
      plaintext.destroy();
      throw error;
    }
    try {
      // pipeline: a failure on either side destroys both, so the store sees a failed body, never a short one.
      const stored = pipeline(plaintext, createA1EncryptStream(this.ring, subject), () => undefined);
      await store(stored, a1StoredSize(plaintextSize));
    } finally {
      release();
    }
  }

  async decode(stored: Uint8Array | Readable, storedSize: number, subject: string): Promise<Uint8Array> {
    const { pieces, release } = await this.decodeHeld(stored, storedSize, subject);
    try {
      return joinPieces(pieces);
    } finally {
      release();
    }
  }

  decodeHeldNow(stored: Uint8Array, subject: string): HeldPlaintext | undefined {
    const release = this.budget.tryAcquire(Math.max(0, stored.length - A1_OVERHEAD));
    if (release === undefined) return undefined;
    // Its pieces are the cipher's outputs, never views of `stored`.
    return holdPieces(release, () => decryptA1Pieces(stored, this.ring, subject));
  }

  async decodeHeld(
    stored: Uint8Array | Readable,
    storedSize: number,
    subject: string,
  ): Promise<HeldPlaintext> {
    // Objects under 86 bytes reserve nothing and are refused by the format checks that follow.
    const plaintextBytes = Math.max(0, storedSize - A1_OVERHEAD);
    const release = await this.budget.acquire(plaintextBytes, subject, "decrypt");
    return holdPiecesOf(release, async () => {
      if (!(stored instanceof Uint8Array))
        return decryptA1StreamPieces(stored, storedSize, this.ring, subject);
      if (stored.length !== storedSize) throw lengthMismatch("decrypt", subject, stored.length, storedSize);
      return decryptA1Pieces(stored, this.ring, subject);
    });
  }
}
