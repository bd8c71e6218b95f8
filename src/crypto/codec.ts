// How an attachment's bytes are stored: plaintext, or encrypted in a format recognised by its first bytes.
// The area talks to this interface only, so a second format (v2, segmented) can join A1 later.

import type { Readable } from "node:stream";
import { piecesLength, type BytePieces } from "../byte-pieces.js";

/**
 * The attachment an object belongs to. v2 binds the uuid into the object's keys (an object copied under
 * another name fails) and records the content type; A1 and plaintext ignore it.
 */
export interface AttachmentIdentity {
  uuid: string;
  /** Known to every reader but tools walking a legacy-structure store (whose keys carry none). */
  contentType?: number;
}

export interface HeldPlaintext {
  /**
   * The plaintext as the list of pieces the codec produced it in (a decryption's outputs), not joined: the
   * daemon sends them with one writev (src/byte-pieces.ts says why).
   */
  pieces: BytePieces;
  /** Bytes in `pieces`. */
  size: number;
  /** Gives the reservation back; more calls have no effect. */
  release: () => void;
}

/** The pieces `decrypt` gives, held under the budget reservation `release` gives back; released if it throws. */
export function holdPieces(release: () => void, decrypt: () => BytePieces): HeldPlaintext {
  try {
    const pieces = decrypt();
    return { pieces, size: piecesLength(pieces), release };
  } catch (error) {
    release();
    throw error;
  }
}

/** As holdPieces, for a decryption that waits for its bytes (a stream). */
export async function holdPiecesOf(
  release: () => void,
  decrypt: () => Promise<BytePieces>,
): Promise<HeldPlaintext> {
  try {
    const pieces = await decrypt();
    return { pieces, size: piecesLength(pieces), release };
  } catch (error) {
    release();
    throw error;
  }
}

/** Consumes the stored bytes (a store's putStream). */
export type StoreStream = (stored: Readable, storedSize: number) => Promise<void>;

export interface ObjectCodec {
  /** The stored format this codec writes: "plaintext", "A1" or "v2". */
  readonly format: string;
  /** Whether a byte range of the plaintext can be read without fetching the whole object. */
  readonly supportsRangeReads: boolean;
  /** How many first bytes of a stored object `checkHead` wants to see before it is served as is (0: none). */
  readonly headBytes: number;
  /**
   * For codecs whose objects are served without decoding (plaintext): throws UNSUPPORTED_FORMAT when the
   * first bytes of an attachment of `contentType` show an object of another format. `head` may be shorter
   * than `headBytes` (a short object or range); the check then only refuses what those bytes prove.
   */
  checkHead(head: Uint8Array, storedSize: number, contentType: number, subject: string): void;
  /** Stored size for a plaintext of `plaintextSize` bytes. */
  storedSize(plaintextSize: number): number;
  /** Plaintext size for a stored object of `storedSize` bytes; throws UNSUPPORTED_FORMAT when impossible. */
  plaintextSize(storedSize: number, subject: string): number;
  /** Turn a whole plaintext into the bytes to store. `subject` names the object in errors. */
  encode(plaintext: Uint8Array, subject: string, attachment?: AttachmentIdentity): Promise<Uint8Array>;
  /**
   * As encode, the bytes to store as the list of their pieces (header, a cipher's outputs, tags), not joined:
   * what the storage area hands a store that takes a list (ObjectStore.putPieces). `encode` is its join.
   */
  encodePieces(plaintext: Uint8Array, subject: string, attachment?: AttachmentIdentity): Promise<BytePieces>;
  /**
   * Turn a plaintext stream of `plaintextSize` bytes into the bytes to store, as a stream of
   * `storedSize(plaintextSize)` bytes handed to `store`, which must consume it; settles when `store` does.
   * The codec holds a bounded window of the object, never all of it.
   */
  encodeStream(
    plaintext: Readable,
    plaintextSize: number,
    subject: string,
    store: StoreStream,
    attachment?: AttachmentIdentity,
  ): Promise<void>;
  /**
   * Turn a stored object (whole buffer or stream of `storedSize` bytes) back into its plaintext.
   * Nothing is returned before the object is authenticated: a failure never yields partial plaintext.
   */
  decode(
    stored: Uint8Array | Readable,
    storedSize: number,
    subject: string,
    attachment?: AttachmentIdentity,
  ): Promise<Uint8Array>;
  /**
   * As decode, but the memory the plaintext is counted for stays reserved until `release` is called: for a
   * caller that keeps the plaintext a while (the daemon, until it is sent to Orthanc).
   */
  decodeHeld(
    stored: Uint8Array | Readable,
    storedSize: number,
    subject: string,
    attachment?: AttachmentIdentity,
  ): Promise<HeldPlaintext>;
  /**
   * As decodeHeld of a whole stored object in hand, done at once on the caller's thread (the daemon's direct
   * read, src/area/direct-file-read.ts): undefined, with nothing held, when the memory budget cannot reserve
   * the plaintext now (decodeHeld then waits its turn). The plaintext never refers to `stored`, which the
   * caller may reuse once this returns. Throws as decodeHeld. Absent on codecs that store plaintext.
   */
  decodeHeldNow?(
    stored: Uint8Array,
    subject: string,
    attachment?: AttachmentIdentity,
  ): HeldPlaintext | undefined;
}
