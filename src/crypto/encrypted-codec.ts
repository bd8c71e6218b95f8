// What the storage area uses when StorageEncryption is enabled: new objects are written in the configured
// format (`StorageEncryption.Format`, A1 by default), and every object is read in the format its first
// bytes show, A1 or v2, so a store holding both reads back entirely. The memory budget rule is A1's
// (a1-codec.ts): writes and reads hold the plaintext size, a streamed write a window.

import { pipeline, type Readable, type Transform } from "node:stream";
import type { EncryptionFormat } from "../config/types.js";
import { StorageError } from "../errors.js";
import { A1Codec, ENCRYPT_WINDOW_BYTES } from "./a1-codec.js";
import { joinPieces, type BytePieces } from "../byte-pieces.js";
import {
  holdPieces,
  holdPiecesOf,
  type AttachmentIdentity,
  type HeldPlaintext,
  type ObjectCodec,
  type StoreStream,
} from "./codec.js";
import { lengthMismatch } from "./exact-length.js";
import { peekHead } from "./peek-head.js";
import type { KeyRing } from "./key-ring.js";
import type { MemoryBudget } from "./memory-budget.js";
import {
  createV2EncryptStream,
  decryptV2Pieces,
  decryptV2StreamPieces,
  encryptV2Pieces,
} from "./v2-cipher.js";
import { V2_HEADER_LENGTH, V2_MAGIC, hasV2Magic, v2PlaintextSize, v2StoredSize } from "./v2-format.js";

export class EncryptedCodec implements ObjectCodec {
  /** Reads and writes A1 objects, and holds the ring and the budget both formats share. */
  readonly a1: A1Codec;
  /** spec §1.6: a GCM tag over the whole object, A1 cannot be read in part; v2 can (segments). */
  readonly supportsRangeReads: boolean;
  /** `decode` authenticates every byte: nothing is served unchecked. */
  readonly headBytes = 0;

  constructor(
    readonly ring: KeyRing,
    readonly budget: MemoryBudget,
    /** The format new objects are written in. */
    readonly format: EncryptionFormat = "A1",
  ) {
    this.a1 = new A1Codec(ring, budget);
    this.supportsRangeReads = format === "v2";
  }

  checkHead(): void {}

  storedSize(plaintextSize: number): number {
    return this.format === "v2" ? v2StoredSize(plaintextSize) : this.a1.storedSize(plaintextSize);
  }

  /** For objects written by this configuration (their format is this codec's). */
  plaintextSize(storedSize: number, subject: string): number {
    return this.format === "v2"
      ? v2PlaintextSize(storedSize, subject)
      : this.a1.plaintextSize(storedSize, subject);
  }

  async encode(plaintext: Uint8Array, subject: string, attachment?: AttachmentIdentity): Promise<Uint8Array> {
    return joinPieces(await this.encodePieces(plaintext, subject, attachment));
  }

  async encodePieces(
    plaintext: Uint8Array,
    subject: string,
    attachment?: AttachmentIdentity,
  ): Promise<BytePieces> {
    if (this.format === "A1") return this.a1.encodePieces(plaintext, subject);
    const identity = requireIdentity(attachment, subject, "encrypt");
    const release = await this.budget.acquire(plaintext.length, subject, "encrypt");
    try {
      return encryptV2Pieces(plaintext, this.ring, identity, subject);
    } finally {
      release();
    }
  }

  async encodeStream(
    plaintext: Readable,
    plaintextSize: number,
    subject: string,
    store: StoreStream,
    attachment?: AttachmentIdentity,
  ): Promise<void> {
    if (this.format === "A1") return this.a1.encodeStream(plaintext, plaintextSize, subject, store);
    let release: () => void;
    let cipher: Transform;
    try {
      const identity = requireIdentity(attachment, subject, "encrypt");
      this.budget.assertFits(plaintextSize, subject, "encrypt");
      cipher = createV2EncryptStream(this.ring, identity, plaintextSize, subject);
      release = await this.budget.acquire(Math.min(plaintextSize, ENCRYPT_WINDOW_BYTES), subject, "encrypt");
    } catch (error) {
      plaintext.destroy();
      throw error;
    }
    try {
      // pipeline: a failure on either side destroys both, so the store sees a failed body, never a short one.
      const stored = pipeline(plaintext, cipher, () => undefined);
      await store(stored, v2StoredSize(plaintextSize));
    } finally {
      release();
    }
  }

  async decode(
    stored: Uint8Array | Readable,
    storedSize: number,
    subject: string,
    attachment?: AttachmentIdentity,
  ): Promise<Uint8Array> {
    const { pieces, release } = await this.decodeHeld(stored, storedSize, subject, attachment);
    try {
      return joinPieces(pieces);
    } finally {
      release();
    }
  }

  decodeHeldNow(
    stored: Uint8Array,
    subject: string,
    attachment?: AttachmentIdentity,
  ): HeldPlaintext | undefined {
    if (!hasV2Magic(stored.subarray(0, V2_MAGIC.length))) return this.a1.decodeHeldNow(stored, subject);
    const identity = requireIdentity(attachment, subject, "decrypt");
    // As decodeHeld: an upper bound of the plaintext size.
    const release = this.budget.tryAcquire(Math.max(0, stored.length - V2_HEADER_LENGTH));
    if (release === undefined) return undefined;
    return holdPieces(release, () => decryptV2Pieces(stored, this.ring, identity, subject));
  }

  async decodeHeld(
    stored: Uint8Array | Readable,
    storedSize: number,
    subject: string,
    attachment?: AttachmentIdentity,
  ): Promise<HeldPlaintext> {
    const { head, rest } = await firstBytes(stored, V2_MAGIC.length);
    if (!hasV2Magic(head)) return this.a1.decodeHeld(rest, storedSize, subject);
    const identity = requireIdentity(attachment, subject, "decrypt");
    // An upper bound of the plaintext size before the header is read: the segment tags are not counted.
    const payloadBytes = Math.max(0, storedSize - V2_HEADER_LENGTH);
    const release = await this.budget.acquire(payloadBytes, subject, "decrypt");
    return holdPiecesOf(release, async () => {
      if (!(rest instanceof Uint8Array)) {
        return decryptV2StreamPieces(rest, storedSize, this.ring, identity, subject);
      }
      if (rest.length !== storedSize) throw lengthMismatch("decrypt", subject, rest.length, storedSize);
      return decryptV2Pieces(rest, this.ring, identity, subject);
    });
  }
}

/**
 * The first `count` bytes of a stored object (fewer if it is shorter), and the object again, whole: a
 * stream's bytes are looked at in its buffer and put back (peekHead), no copy and no wrapper stream.
 */
async function firstBytes(
  stored: Uint8Array | Readable,
  count: number,
): Promise<{ head: Uint8Array; rest: Uint8Array | Readable }> {
  if (stored instanceof Uint8Array) return { head: stored.subarray(0, count), rest: stored };
  return { head: await peekHead(stored, count), rest: stored };
}

function requireIdentity(
  attachment: AttachmentIdentity | undefined,
  subject: string,
  operation: string,
): AttachmentIdentity {
  if (attachment !== undefined) return attachment;
  throw new StorageError(
    "INVALID_ATTACHMENT",
    { operation, subject },
    "a v2 object is bound to its attachment's uuid, and none was given (a file outside the store: pass " +
      "--uuid and --content-type)",
  );
}
