// The A1 codec: what the storage area uses when StorageEncryption is enabled (spec §1). Adds the memory
// budget around the cipher. Our budget rule, the same on both sides unlike the official one (spec §1.10):
// writes and reads both hold the PLAINTEXT size for the crypto work, so whatever can be written can be read.
// A streamed write holds a window of ENCRYPT_WINDOW_BYTES, not the object, but still refuses an object larger
// than the budget: it could not be decrypted afterwards.

import type { EncryptionOptions } from "../config/types.js";
import { pipeline, type Readable } from "node:stream";
import { A1_OVERHEAD, a1PlaintextSize, a1StoredSize } from "./a1-format.js";
import { createA1EncryptStream, decryptA1, decryptA1Stream, encryptA1 } from "./a1-cipher.js";
import { GATHER_LIMIT } from "./gather-buffers.js";
import type { HeldPlaintext, ObjectCodec, StoreStream } from "./codec.js";
import { lengthMismatch } from "./exact-length.js";
import { KeyRing } from "./key-ring.js";
import { MemoryBudget } from "./memory-budget.js";

/**
 * What one streamed encryption is counted for in the budget: the bytes a streamed write holds at once (the
 * daemon's input buffer, the cipher's output, and a driver's part: 8 MiB for S3), rounded up.
 */
export const ENCRYPT_WINDOW_BYTES = 16 * 1024 * 1024;

/**
 * The bytes a streamed read of a `payloadBytes` ciphertext gathers before decrypting it whole (the `gather`
 * of decryptA1Stream and decryptV2Stream), 0 when it is decrypted chunk by chunk: gathered up to
 * GATHER_LIMIT, when the budget could ever hold the plaintext and the ciphertext together. The read counts
 * both until the ciphertext is decrypted, then the plaintext alone.
 */
export function gatheredBytes(budget: MemoryBudget, payloadBytes: number): number {
  return payloadBytes <= GATHER_LIMIT && 2 * payloadBytes <= budget.capacityBytes ? payloadBytes : 0;
}

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
    const release = await this.budget.acquire(plaintext.length, subject, "encrypt");
    try {
      return encryptA1(plaintext, this.ring, subject);
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
    const { plaintext, release } = await this.decodeHeld(stored, storedSize, subject);
    release();
    return plaintext;
  }

  async decodeHeld(
    stored: Uint8Array | Readable,
    storedSize: number,
    subject: string,
  ): Promise<HeldPlaintext> {
    // Objects under 86 bytes reserve nothing and are refused by the format checks that follow.
    const plaintextBytes = Math.max(0, storedSize - A1_OVERHEAD);
    const gathered = stored instanceof Uint8Array ? 0 : gatheredBytes(this.budget, plaintextBytes);
    const release = await this.budget.acquire(plaintextBytes + gathered, subject, "decrypt");
    try {
      if (!(stored instanceof Uint8Array)) {
        const gather = gathered > 0;
        const plaintext = await decryptA1Stream(stored, storedSize, this.ring, subject, { gather });
        release(gathered); // the gathered ciphertext is garbage from here on
        return { plaintext, release };
      }
      if (stored.length !== storedSize) throw lengthMismatch("decrypt", subject, stored.length, storedSize);
      return { plaintext: decryptA1(stored, this.ring, subject), release };
    } catch (error) {
      release();
      throw error;
    }
  }
}
