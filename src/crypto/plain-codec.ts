// The identity codec, for storage without encryption: objects are stored as Orthanc hands them over, so any
// byte range can be read directly (spec §5.1). One check before bytes are served: an A1 object (an
// encrypted bucket read with encryption off) is refused, not handed to Orthanc as if it were its file.

import type { Readable } from "node:stream";
import { StorageError } from "../errors.js";
import {
  DESCRIBE_PREFIX_BYTES,
  describeStoredObject,
  isA1InPlaceOfPlaintext,
  type StoredObjectDescription,
} from "./a1-format.js";
import type { BytePieces } from "../byte-pieces.js";
import type { HeldPlaintext, ObjectCodec, StoreStream } from "./codec.js";
import { lengthMismatch, readExactly } from "./exact-length.js";

export class PlainCodec implements ObjectCodec {
  readonly format = "plaintext";
  readonly supportsRangeReads = true;
  readonly headBytes = DESCRIBE_PREFIX_BYTES;

  checkHead(head: Uint8Array, storedSize: number, contentType: number, subject: string): void {
    if (!isA1InPlaceOfPlaintext(head, storedSize, contentType)) return;
    const described = describeOrDamaged(head, storedSize);
    const format = described?.format === "v2" ? "v2" : "A1";
    const keyId =
      described?.format === "A1" || described?.format === "v2"
        ? ` under master key id '${described.keyIdHex}'`
        : "";
    throw new StorageError(
      "UNSUPPORTED_FORMAT",
      { operation: "read", subject },
      `an ${format}-encrypted object${keyId}, but StorageEncryption is disabled: its bytes are not the attachment ` +
        "and are not served. Enable StorageEncryption with that master key, or restore the plaintext object",
    );
  }

  storedSize(plaintextSize: number): number {
    assertSize(plaintextSize);
    return plaintextSize;
  }

  plaintextSize(storedSize: number, _subject: string): number {
    assertSize(storedSize);
    return storedSize;
  }

  encode(plaintext: Uint8Array, _subject: string): Promise<Uint8Array> {
    return Promise.resolve(plaintext);
  }

  encodePieces(plaintext: Uint8Array, _subject: string): Promise<BytePieces> {
    return Promise.resolve([plaintext]);
  }

  encodeStream(
    plaintext: Readable,
    plaintextSize: number,
    _subject: string,
    store: StoreStream,
  ): Promise<void> {
    assertSize(plaintextSize);
    return store(plaintext, plaintextSize);
  }

  /** Nothing is reserved for plaintext storage. */
  async decodeHeld(
    stored: Uint8Array | Readable,
    storedSize: number,
    subject: string,
  ): Promise<HeldPlaintext> {
    const plaintext = await this.decode(stored, storedSize, subject);
    return { pieces: [plaintext], size: plaintext.length, release: () => undefined };
  }

  async decode(stored: Uint8Array | Readable, storedSize: number, subject: string): Promise<Uint8Array> {
    assertSize(storedSize);
    if (!(stored instanceof Uint8Array)) return await readExactly(stored, storedSize, "read", subject);
    if (stored.length !== storedSize) throw lengthMismatch("read", subject, stored.length, storedSize);
    return stored;
  }
}

/** What the first bytes say, or undefined when they start like an encrypted object but are damaged. */
function describeOrDamaged(head: Uint8Array, storedSize: number): StoredObjectDescription | undefined {
  try {
    return describeStoredObject(head, storedSize);
  } catch {
    return undefined; // the refusal below names the object either way; a damaged one has no key id to show
  }
}

function assertSize(size: number): void {
  if (!Number.isSafeInteger(size) || size < 0)
    throw new RangeError(`size ${size} is not a non-negative integer`);
}
