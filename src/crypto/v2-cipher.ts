// v2 encryption and decryption (docs/encryption-format-v2.md), whole, streamed, or a run of segments for a
// range read. OpenSSL through node:crypto does the work: HKDF-SHA256, AES-256 Key Wrap, AES-256-GCM per
// segment. No segment is decrypted before the header's commitment verified; nothing is returned before
// every segment asked for authenticated.

import {
  createCipheriv,
  createDecipheriv,
  createSecretKey,
  hkdfSync,
  randomBytes,
  timingSafeEqual,
  type CipherGCM,
  type DecipherGCM,
  type KeyObject,
} from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";
import { StorageError } from "../errors.js";
import type { AttachmentIdentity } from "./codec.js";
import { joinPieces, PieceList, type BytePieces } from "../byte-pieces.js";
import { Coalescer, updatePieces } from "./cipher-output.js";
import { abandon, bytesOf, lengthMismatch, type ByteSource } from "./exact-length.js";
import type { KeyRing, MasterKey } from "./key-ring.js";
import {
  V2_COMMITMENT_LENGTH,
  V2_COMMITMENT_OFFSET,
  V2_DEFAULT_SEGMENT_SHIFT,
  V2_HEADER_LENGTH,
  V2_SALT_LENGTH,
  V2_TAG_LENGTH,
  decodeV2Header,
  encodeV2Header,
  v2KeyIdHex,
  v2SegmentCount,
  v2StoredSize,
  type V2Header,
} from "./v2-format.js";

/** A DEK and salt: fresh for every object (freshSecrets), chosen only to reproduce the test vectors. */
export interface V2Secrets {
  dek: Uint8Array;
  salt: Uint8Array;
}

/** What sealing one v2 object takes besides its plaintext. */
export interface V2Sealing {
  /** The master key that wraps the DEK. */
  key: MasterKey;
  /** The object's uuid and content type, bound to it by the header's commitment. */
  attachment: Required<AttachmentIdentity>;
  secrets: V2Secrets;
  /** The segment size as a power of two; V2_DEFAULT_SEGMENT_SHIFT when left out. */
  segmentShift?: number;
}

/** A v2 object whose header verified: what reading any of its segments needs. */
export interface OpenedV2 {
  header: V2Header;
  /**
   * The segment key as a KeyObject: OpenSSL's copy, handed to every segment's context without a conversion
   * per segment. Node frees its bytes with OPENSSL_clear_free once it is unreachable.
   */
  segmentKey: KeyObject;
  storedSize: number;
  /** Segment size in bytes, 2^segmentShift. */
  segmentSize: number;
  segmentCount: number;
}

const WRAP_INFO = new TextEncoder().encode("orthanc-cloud-storage v2 wrap");
/** RFC 3394's default initial value: OpenSSL's id-aes256-wrap checks it on unwrap. */
const KEY_WRAP_IV = Buffer.from("A6A6A6A6A6A6A6A6", "hex");
const KEY_LENGTH = 32;
const NONCE_LENGTH = 12;
const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/**
 * The one nonce buffer every segment's context is started with: createCipheriv copies the IV into OpenSSL's
 * context, and everything here is synchronous, so one buffer rewritten per segment is never seen half done.
 */
const scratchNonce = Buffer.alloc(NONCE_LENGTH);

/** Wrapping keys by master key: one HKDF per configured key, not per object. */
const wrappingKeys = new WeakMap<MasterKey, Uint8Array>();

/** Encrypts a whole plaintext under the ring's current key with a fresh DEK and salt. */
export function encryptV2(
  plaintext: Uint8Array,
  ring: KeyRing,
  attachment: AttachmentIdentity,
  subject: string,
): Uint8Array {
  return joinPieces(encryptV2Pieces(plaintext, ring, attachment, subject));
}

/**
 * As encryptV2, the stored object as the list of its pieces (header, the cipher's outputs, the segments'
 * tags), not joined: what the storage area hands a store.
 */
export function encryptV2Pieces(
  plaintext: Uint8Array,
  ring: KeyRing,
  attachment: AttachmentIdentity,
  subject: string,
): BytePieces {
  const contentType = writableContentType(attachment, subject);
  const secrets = freshSecrets();
  try {
    return sealV2(plaintext, {
      key: ring.current,
      attachment: { uuid: attachment.uuid, contentType },
      secrets,
    });
  } finally {
    secrets.dek.fill(0);
  }
}

/**
 * @internal Encryption with a chosen DEK and salt, only to reproduce the test vectors. Reusing a DEK and salt
 * pair for two plaintexts destroys GCM's security: production code calls `encryptV2`.
 */
export function encryptV2WithSecrets(plaintext: Uint8Array, sealing: V2Sealing): Uint8Array {
  return joinPieces(sealV2(plaintext, sealing));
}

/** The header and the segments of a v2 object, as pieces. */
function sealV2(plaintext: Uint8Array, sealing: V2Sealing): BytePieces {
  const { header, headerBytes, segmentKey } = sealHeader(sealing, plaintext.length);
  const stored = new PieceList();
  stored.push(headerBytes);
  const size = 2 ** header.segmentShift;
  const count = v2SegmentCount(plaintext.length, header.segmentShift);
  for (let index = 0; index < count; index++) {
    const cipher = startSealing(segmentKey, index, index === count - 1);
    updatePieces(cipher, plaintext.subarray(index * size, (index + 1) * size), stored);
    cipher.final();
    stored.push(cipher.getAuthTag());
  }
  return stored.pieces;
}

/**
 * A Transform from a plaintext of exactly `plaintextSize` bytes to a v2 object: the header at once, then
 * the ciphertext piece by piece (small chunks joined by a Coalescer first; a segment's context takes the
 * pieces that fall in it) and each segment's tag when its last byte is in. Holds no plaintext but the
 * Coalescer's one staging piece.
 */
export function createV2EncryptStream(
  ring: KeyRing,
  attachment: AttachmentIdentity,
  plaintextSize: number,
  subject: string,
): Transform {
  const contentType = writableContentType(attachment, subject);
  const secrets = freshSecrets();
  const { header, headerBytes, segmentKey } = sealHeader(
    { key: ring.current, attachment: { uuid: attachment.uuid, contentType }, secrets },
    plaintextSize,
  );
  secrets.dek.fill(0); // wrapped in the header; the segment key is derived

  const size = 2 ** header.segmentShift;
  const count = v2SegmentCount(plaintextSize, header.segmentShift);
  let cipher: CipherGCM | undefined;
  /** Plaintext bytes of segment `index` already through `cipher`. */
  let used = 0;
  let index = 0;
  let received = 0;
  /** Plaintext bytes through the segments' contexts (the Coalescer may hold some of those received). */
  let sealed = 0;
  const coalescer = new Coalescer();
  /**
   * Each output (a piece's ciphertext, a segment's tag) is pushed on its own: a flowing reader takes them
   * as they are; one that reads what is buffered at once joins them with one copy, as a join here would.
   */
  const seal = (piece: Uint8Array): void => {
    let rest = piece;
    while (rest.length > 0) {
      const taken = Math.min(size - used, rest.length);
      // Whether a segment is the last one is known from the size, before its first byte.
      const last = index === count - 1;
      cipher ??= startSealing(segmentKey, index, last);
      stream.push(cipher.update(rest.subarray(0, taken)));
      used += taken;
      sealed += taken;
      rest = rest.subarray(taken);
      if (used === size || (last && sealed === plaintextSize)) {
        cipher.final();
        stream.push(cipher.getAuthTag());
        cipher = undefined;
        index++;
        used = 0;
      }
    }
  };
  const stream = new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      received += chunk.length;
      if (received > plaintextSize) {
        callback(lengthMismatch("encrypt", subject, received, plaintextSize));
        return;
      }
      coalescer.push(chunk, seal);
      callback();
    },
    flush(callback: TransformCallback) {
      if (received < plaintextSize) {
        callback(lengthMismatch("encrypt", subject, received, plaintextSize));
        return;
      }
      coalescer.flush(seal);
      // Only an empty plaintext has a segment left here: one empty segment, a tag alone.
      if (index < count) {
        const sealing = startSealing(segmentKey, index, true);
        sealing.final();
        callback(null, sealing.getAuthTag());
        return;
      }
      callback();
    },
  });
  stream.push(headerBytes);
  return stream;
}

/**
 * Checks a v2 header (steps 1 to 8 of the doc's order of checks) from the first 124 bytes of an object of
 * `storedSize` bytes, and derives its segment key. Nothing of the payload is needed.
 */
export function openV2(
  headerBytes: Uint8Array,
  storedSize: number,
  ring: KeyRing,
  attachment: AttachmentIdentity,
  subject: string,
): OpenedV2 {
  if (storedSize < V2_HEADER_LENGTH) {
    throw new StorageError(
      "INTEGRITY",
      { operation: "decrypt", subject },
      `truncated: ${storedSize} bytes, shorter than a v2 header (${V2_HEADER_LENGTH})`,
    );
  }
  const header = decodeV2Header(headerBytes, subject);
  if (header === null) throw new RangeError(`openV2 needs the ${V2_HEADER_LENGTH} header bytes`);
  const key = ring.find(header.keyId);
  if (key === undefined) {
    throw new StorageError(
      "UNKNOWN_KEY_ID",
      { operation: "decrypt", subject },
      `encrypted (v2) with master key id ${header.keyId} (hex ${v2KeyIdHex(headerBytes)}), which is not ` +
        `configured (configured ids: ${ring.ids.join(", ")}): add it to StorageEncryption.PreviousMasterKeys`,
    );
  }
  const dek = unwrapKey(key, header.wrappedKey, subject);
  const derived = derive(dek, header.salt, headerBytes.subarray(0, V2_COMMITMENT_OFFSET), attachment.uuid);
  dek.fill(0);
  const matches = timingSafeEqual(derived.subarray(KEY_LENGTH), header.commitment);
  // The key leaves as a KeyObject (OpenSSL's copy); these bytes are wiped whatever follows.
  const segmentKey = segmentKeyOf(derived);
  if (!matches) {
    throw integrity(
      subject,
      "the header does not match its commitment: the header was altered, or the object was copied or " +
        `renamed from another attachment's name (it is read as ${attachment.uuid})`,
    );
  }
  if (attachment.contentType !== undefined && attachment.contentType !== header.contentType) {
    throw integrity(
      subject,
      `written for content type ${header.contentType}, read as content type ${attachment.contentType}`,
    );
  }
  const expected = v2StoredSize(header.plaintextSize, header.segmentShift);
  if (storedSize !== expected) {
    throw integrity(
      subject,
      `${storedSize < expected ? "truncated" : "extended"}: ${storedSize} bytes, where its header says ` +
        `${expected} (${header.plaintextSize} bytes of plaintext)`,
    );
  }
  return {
    header: {
      ...header,
      salt: header.salt.slice(),
      wrappedKey: header.wrappedKey.slice(),
      commitment: header.commitment.slice(),
    },
    segmentKey,
    storedSize,
    segmentSize: 2 ** header.segmentShift,
    segmentCount: v2SegmentCount(header.plaintextSize, header.segmentShift),
  };
}

/**
 * Decrypts consecutive stored segments from `firstSegment` (`stored` starts at its first byte and ends at
 * the end of a segment), adding the plaintext to `output`. INTEGRITY on any failure.
 */
export function openSegments(
  opened: OpenedV2,
  firstSegment: number,
  stored: Uint8Array,
  output: PieceList,
  subject: string,
): void {
  const stride = opened.segmentSize + V2_TAG_LENGTH;
  for (let at = 0, index = firstSegment; at < stored.length; at += stride, index++) {
    openSegment(opened, index, stored.subarray(at, at + stride), output, subject);
  }
}

/** Decrypts a whole stored object. */
export function decryptV2(
  stored: Uint8Array,
  ring: KeyRing,
  attachment: AttachmentIdentity,
  subject: string,
): Uint8Array {
  return joinPieces(decryptV2Pieces(stored, ring, attachment, subject));
}

/** As decryptV2, the plaintext as the list of the cipher's outputs, not joined. */
export function decryptV2Pieces(
  stored: Uint8Array,
  ring: KeyRing,
  attachment: AttachmentIdentity,
  subject: string,
): BytePieces {
  const opened = openV2(stored.subarray(0, V2_HEADER_LENGTH), stored.length, ring, attachment, subject);
  const plaintext = new PieceList();
  try {
    openSegments(opened, 0, stored.subarray(V2_HEADER_LENGTH), plaintext, subject);
  } catch (error) {
    plaintext.wipe();
    throw error;
  }
  return plaintext.pieces;
}

/** Decrypts a stream announced as `storedSize` bytes. Resolves only after every segment authenticated. */
export async function decryptV2Stream(
  source: ByteSource,
  storedSize: number,
  ring: KeyRing,
  attachment: AttachmentIdentity,
  subject: string,
): Promise<Uint8Array> {
  return joinPieces(await decryptV2StreamPieces(source, storedSize, ring, attachment, subject));
}

/**
 * As decryptV2Stream, the plaintext as the list of the cipher's outputs. The chunks go through each
 * segment's context as they come (no copy into a segment buffer), the tag bytes aside, and each output is
 * kept as it is (as decryptA1StreamPieces).
 */
export async function decryptV2StreamPieces(
  source: ByteSource,
  storedSize: number,
  ring: KeyRing,
  attachment: AttachmentIdentity,
  subject: string,
): Promise<BytePieces> {
  const headerBytes = new Uint8Array(V2_HEADER_LENGTH);
  const tag = Buffer.alloc(V2_TAG_LENGTH);
  let position = 0;
  let opened: OpenedV2 | undefined;
  let decipher: DecipherGCM | undefined;
  /** Stored bytes of segment `index` (ciphertext, then tag) already taken. */
  let used = 0;
  let index = 0;
  const plaintext = new PieceList();
  try {
    for await (const received of source as AsyncIterable<unknown>) {
      const chunk = bytesOf(received);
      if (position + chunk.length > storedSize) {
        throw lengthMismatch("decrypt", subject, position + chunk.length, storedSize);
      }
      let rest = chunk;
      if (opened === undefined) {
        const taken = rest.subarray(0, V2_HEADER_LENGTH - position);
        headerBytes.set(taken, position);
        position += taken.length;
        rest = rest.subarray(taken.length);
        if (position < V2_HEADER_LENGTH) {
          decodeV2Header(headerBytes.subarray(0, position), subject); // a foreign object fails early
          continue;
        }
        opened = openV2(headerBytes, storedSize, ring, attachment, subject);
      }
      position += rest.length;
      while (rest.length > 0) {
        // openV2 checked the stored size, and no chunk goes past it: `index` is a segment of the object.
        const last = index === opened.segmentCount - 1;
        const length = last ? opened.header.plaintextSize - index * opened.segmentSize : opened.segmentSize;
        let taken: number;
        if (used < length) {
          taken = Math.min(length - used, rest.length);
          decipher ??= startOpening(opened.segmentKey, index, last);
          updatePieces(decipher, rest.subarray(0, taken), plaintext);
        } else {
          taken = Math.min(length + V2_TAG_LENGTH - used, rest.length);
          tag.set(rest.subarray(0, taken), used - length);
        }
        used += taken;
        rest = rest.subarray(taken);
        if (used === length + V2_TAG_LENGTH) {
          finishOpening(
            decipher ?? startOpening(opened.segmentKey, index, last),
            tag,
            opened,
            index,
            subject,
          );
          decipher = undefined;
          used = 0;
          index++;
        }
      }
    }
    if (position < storedSize || opened === undefined) {
      throw lengthMismatch("decrypt", subject, position, storedSize);
    }
  } catch (error) {
    abandon(source);
    plaintext.wipe();
    throw error;
  }
  return plaintext.pieces;
}

/** The wrapping key of a master key (docs: "Keys"), derived once. */
export function v2WrappingKey(key: MasterKey): Uint8Array {
  let wrapping = wrappingKeys.get(key);
  if (wrapping === undefined) {
    wrapping = new Uint8Array(hkdfSync("sha256", key.key, new Uint8Array(0), WRAP_INFO, KEY_LENGTH));
    wrappingKeys.set(key, wrapping);
  }
  return wrapping;
}

// --- helpers ---

/** A new DEK and salt, from one call to the CSPRNG. */
function freshSecrets(): V2Secrets {
  const bytes = randomBytes(KEY_LENGTH + V2_SALT_LENGTH);
  return { dek: bytes.subarray(0, KEY_LENGTH), salt: bytes.subarray(KEY_LENGTH) };
}

/** The header of a new object, encoded with its commitment, and the segment key. */
function sealHeader(
  { key, attachment, secrets, segmentShift = V2_DEFAULT_SEGMENT_SHIFT }: V2Sealing,
  plaintextSize: number,
): { header: V2Header; headerBytes: Uint8Array; segmentKey: KeyObject } {
  const header: V2Header = {
    segmentShift,
    contentType: attachment.contentType,
    keyId: key.id,
    plaintextSize,
    salt: secrets.salt,
    wrappedKey: wrapKey(key, secrets.dek),
    commitment: new Uint8Array(V2_COMMITMENT_LENGTH),
  };
  // Encoded once: the commitment is derived from the bytes before it, then written after them.
  const headerBytes = encodeV2Header(header);
  const derived = derive(
    secrets.dek,
    secrets.salt,
    headerBytes.subarray(0, V2_COMMITMENT_OFFSET),
    attachment.uuid,
  );
  header.commitment = derived.slice(KEY_LENGTH);
  headerBytes.set(header.commitment, V2_COMMITMENT_OFFSET);
  return { header, headerBytes, segmentKey: segmentKeyOf(derived) };
}

/** HKDF-SHA256(DEK, salt, header[0..92) ‖ uuid): segment key ‖ commitment. */
function derive(dek: Uint8Array, salt: Uint8Array, headerPrefix: Uint8Array, uuid: string): Uint8Array {
  if (!UUID_PATTERN.test(uuid)) throw new RangeError(`${JSON.stringify(uuid)} is not a canonical uuid`);
  const info = Buffer.concat([headerPrefix, Buffer.from(uuid, "ascii")]);
  return new Uint8Array(hkdfSync("sha256", dek, salt, info, KEY_LENGTH + V2_COMMITMENT_LENGTH));
}

function wrapKey(key: MasterKey, dek: Uint8Array): Uint8Array {
  const cipher = createCipheriv("id-aes256-wrap", v2WrappingKey(key), KEY_WRAP_IV);
  return new Uint8Array(Buffer.concat([cipher.update(dek), cipher.final()]));
}

function unwrapKey(key: MasterKey, wrapped: Uint8Array, subject: string): Uint8Array {
  try {
    const decipher = createDecipheriv("id-aes256-wrap", v2WrappingKey(key), KEY_WRAP_IV);
    return new Uint8Array(Buffer.concat([decipher.update(wrapped), decipher.final()]));
  } catch (cause) {
    throw new StorageError(
      "INTEGRITY",
      { operation: "decrypt", subject, cause },
      "integrity check failed: the data key does not unwrap: the header was altered, or the key with id " +
        `${key.id} is not the one it was written with`,
    );
  }
}

/** The segment nonce in `scratchNonce`: the index on 11 bytes big-endian, then the last-segment flag. */
function nonceOf(index: number, last: boolean): Buffer {
  // An index is below 2^53 (a safe integer), so bytes 0 to 2 stay zero; bytes 3 to 10 are two uint32.
  scratchNonce.writeUInt32BE(Math.floor(index / 2 ** 32), 3);
  scratchNonce.writeUInt32BE(index % 2 ** 32, 7);
  scratchNonce[NONCE_LENGTH - 1] = last ? 1 : 0;
  return scratchNonce;
}

/** A GCM context encrypting segment `index` (a new one per segment: Node cannot give a context a new IV). */
function startSealing(segmentKey: KeyObject, index: number, last: boolean): CipherGCM {
  return createCipheriv("aes-256-gcm", segmentKey, nonceOf(index, last), { authTagLength: V2_TAG_LENGTH });
}

function startOpening(segmentKey: KeyObject, index: number, last: boolean): DecipherGCM {
  return createDecipheriv("aes-256-gcm", segmentKey, nonceOf(index, last), { authTagLength: V2_TAG_LENGTH });
}

/** Checks segment `index`'s tag once all its ciphertext went through `decipher`: INTEGRITY when it fails. */
function finishOpening(
  decipher: DecipherGCM,
  tag: Uint8Array,
  opened: OpenedV2,
  index: number,
  subject: string,
): void {
  try {
    decipher.setAuthTag(tag);
    decipher.final();
  } catch (cause) {
    throw new StorageError(
      "INTEGRITY",
      { operation: "decrypt", subject, cause },
      `integrity check failed in segment ${index} of ${opened.segmentCount}: the object was corrupted, ` +
        "truncated or tampered with (segments reordered or taken from another object)",
    );
  }
}

/** Decrypts segment `index` (ciphertext ‖ tag), adding its plaintext to `output`. */
function openSegment(
  opened: OpenedV2,
  index: number,
  stored: Uint8Array,
  output: PieceList,
  subject: string,
): void {
  const last = index === opened.segmentCount - 1;
  const expected = last ? opened.header.plaintextSize - index * opened.segmentSize : opened.segmentSize;
  if (index >= opened.segmentCount || stored.length !== expected + V2_TAG_LENGTH) {
    throw integrity(
      subject,
      `segment ${index} is ${stored.length} bytes, where ${expected + V2_TAG_LENGTH} were expected`,
    );
  }
  const decipher = startOpening(opened.segmentKey, index, last);
  updatePieces(decipher, stored.subarray(0, expected), output);
  finishOpening(decipher, stored.subarray(expected), opened, index, subject);
}

/** The segment key, the first 32 bytes of the derivation, as a KeyObject; wipes `derived`. */
function segmentKeyOf(derived: Uint8Array): KeyObject {
  const key = createSecretKey(derived.subarray(0, KEY_LENGTH));
  derived.fill(0);
  return key;
}

function writableContentType(attachment: AttachmentIdentity, subject: string): number {
  const { contentType } = attachment;
  if (
    contentType === undefined ||
    !Number.isInteger(contentType) ||
    contentType < 0 ||
    contentType > 0xffff
  ) {
    throw new StorageError(
      "INVALID_ATTACHMENT",
      { operation: "encrypt", subject },
      `a v2 object needs the attachment's content type (0 to 65535), got ${String(contentType)}`,
    );
  }
  return contentType;
}

function integrity(subject: string, detail: string): StorageError {
  return new StorageError(
    "INTEGRITY",
    { operation: "decrypt", subject },
    `integrity check failed: ${detail}`,
  );
}
