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
import { WHOLE_DECRYPT_LIMIT } from "./a1-cipher.js";
import { pooledBuffers } from "./gather-buffers.js";
import { Coalescer, uninitialisedBytes, updateInto } from "./cipher-output.js";
import { abandon, chunksOf, lengthMismatch, type ByteSource } from "./exact-length.js";
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
  const contentType = writableContentType(attachment, subject);
  const secrets = freshSecrets();
  try {
    return encryptV2WithSecrets(plaintext, ring.current, { uuid: attachment.uuid, contentType }, secrets);
  } finally {
    secrets.dek.fill(0);
  }
}

/**
 * @internal Encryption with a chosen DEK and salt, only to reproduce the test vectors. Reusing a DEK and salt
 * pair for two plaintexts destroys GCM's security: production code calls `encryptV2`.
 */
export function encryptV2WithSecrets(
  plaintext: Uint8Array,
  key: MasterKey,
  attachment: Required<AttachmentIdentity>,
  secrets: { dek: Uint8Array; salt: Uint8Array },
  segmentShift = V2_DEFAULT_SEGMENT_SHIFT,
): Uint8Array {
  const { headerBytes, segmentKey } = sealHeader(
    key,
    attachment.uuid,
    attachment.contentType,
    plaintext.length,
    secrets,
    segmentShift,
  );
  // Not zero-filled: the header and every segment below write every byte.
  const stored = uninitialisedBytes(v2StoredSize(plaintext.length, segmentShift));
  stored.set(headerBytes, 0);
  const size = 2 ** segmentShift;
  const count = v2SegmentCount(plaintext.length, segmentShift);
  let offset = V2_HEADER_LENGTH;
  for (let index = 0; index < count; index++) {
    const cipher = startSealing(segmentKey, index, index === count - 1);
    offset = updateInto(cipher, plaintext.subarray(index * size, (index + 1) * size), stored, offset);
    offset = finishSealing(cipher, stored, offset);
  }
  return stored;
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
    ring.current,
    attachment.uuid,
    contentType,
    plaintextSize,
    secrets,
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
 * the end of a segment), into `output` from `offset`; returns the end offset. INTEGRITY on any failure.
 */
export function openSegments(
  opened: OpenedV2,
  firstSegment: number,
  stored: Uint8Array,
  output: Uint8Array,
  offset: number,
  subject: string,
): number {
  const stride = opened.segmentSize + V2_TAG_LENGTH;
  let end = offset;
  for (let at = 0, index = firstSegment; at < stored.length; at += stride, index++) {
    end = openSegment(opened, index, stored.subarray(at, at + stride), output, end, subject);
  }
  return end;
}

/** Decrypts a whole stored object. */
export function decryptV2(
  stored: Uint8Array,
  ring: KeyRing,
  attachment: AttachmentIdentity,
  subject: string,
): Uint8Array {
  const opened = openV2(stored.subarray(0, V2_HEADER_LENGTH), stored.length, ring, attachment, subject);
  return openPayload(opened, stored.subarray(V2_HEADER_LENGTH), subject);
}

/** Every segment of an opened object (`payload`: the stored bytes after the header), into its plaintext. */
function openPayload(opened: OpenedV2, payload: Uint8Array, subject: string): Uint8Array {
  if (opened.segmentCount === 1 && opened.header.plaintextSize <= WHOLE_DECRYPT_LIMIT) {
    return openOnlySegment(opened, payload, subject);
  }
  // Not zero-filled: every byte is written before it is returned, and it is wiped on failure.
  const plaintext = uninitialisedBytes(opened.header.plaintextSize);
  try {
    openSegments(opened, 0, payload, plaintext, 0, subject);
  } catch (error) {
    plaintext.fill(0);
    throw error;
  }
  return plaintext;
}

/**
 * An object of one segment in hand, as A1's whole decryption (a1-cipher.ts, WHOLE_DECRYPT_LIMIT): one update,
 * whose output is the plaintext, instead of pieces copied into a buffer of our own. Wiped if the tag fails.
 */
function openOnlySegment(opened: OpenedV2, stored: Uint8Array, subject: string): Uint8Array {
  const size = opened.header.plaintextSize;
  if (stored.length !== size + V2_TAG_LENGTH) {
    throw integrity(
      subject,
      `segment 0 is ${stored.length} bytes, where ${size + V2_TAG_LENGTH} were expected`,
    );
  }
  const decipher = startOpening(opened.segmentKey, 0, true);
  const output = decipher.update(stored.subarray(0, size));
  const plaintext = new Uint8Array(output.buffer, output.byteOffset, output.length);
  try {
    finishOpening(decipher, stored.subarray(size), opened, 0, subject);
  } catch (error) {
    plaintext.fill(0);
    throw error;
  }
  return plaintext;
}

/**
 * Decrypts a stream announced as `storedSize` bytes into one buffer of the plaintext size allocated once
 * the header verified. The chunks go through each segment's context as they come (no copy into a segment
 * buffer), the tag bytes aside. Resolves only after every segment authenticated.
 *
 * `gather`: as for A1 (decryptA1Stream), the payload is collected into one buffer once the header verified,
 * then decrypted as an object in hand when the stream ended: one update per segment instead of one per
 * chunk, for a second buffer of the payload's size while it lasts, which the caller counts in its budget.
 */
export async function decryptV2Stream(
  source: ByteSource,
  storedSize: number,
  ring: KeyRing,
  attachment: AttachmentIdentity,
  subject: string,
  { gather = false }: { gather?: boolean } = {},
): Promise<Uint8Array> {
  const headerBytes = new Uint8Array(V2_HEADER_LENGTH);
  const tag = Buffer.alloc(V2_TAG_LENGTH);
  let position = 0;
  /** `output`: the plaintext being written, or with `gather` the payload being collected. */
  let body: { opened: OpenedV2; output: Uint8Array } | undefined;
  let decipher: DecipherGCM | undefined;
  /** Stored bytes of segment `index` (ciphertext, then tag) already taken. */
  let used = 0;
  let index = 0;
  let written = 0;
  try {
    for await (const chunk of chunksOf(source)) {
      if (position + chunk.length > storedSize) {
        throw lengthMismatch("decrypt", subject, position + chunk.length, storedSize);
      }
      let rest = chunk;
      if (body === undefined) {
        const taken = rest.subarray(0, V2_HEADER_LENGTH - position);
        headerBytes.set(taken, position);
        position += taken.length;
        rest = rest.subarray(taken.length);
        if (position < V2_HEADER_LENGTH) {
          decodeV2Header(headerBytes.subarray(0, position), subject); // a foreign object fails early
          continue;
        }
        const opened = openV2(headerBytes, storedSize, ring, attachment, subject);
        // Not zero-filled: every byte is written before it is read or returned; wiped on failure.
        const output = gather
          ? pooledBuffers.take(storedSize - V2_HEADER_LENGTH)
          : uninitialisedBytes(opened.header.plaintextSize);
        body = { opened, output };
      }
      const { opened, output } = body;
      if (gather) {
        output.set(rest, position - V2_HEADER_LENGTH);
        position += rest.length;
        continue;
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
          written = updateInto(decipher, rest.subarray(0, taken), output, written);
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
    if (position < storedSize || body === undefined) {
      throw lengthMismatch("decrypt", subject, position, storedSize);
    }
  } catch (error) {
    abandon(source);
    if (gather) {
      if (body !== undefined) pooledBuffers.give(body.output);
    } else body?.output.fill(0);
    throw error;
  }
  if (!gather) return body.output;
  try {
    // openPayload's output is a buffer of its own: the gathered payload can go back once it returns.
    return openPayload(body.opened, body.output, subject);
  } finally {
    pooledBuffers.give(body.output);
  }
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
function freshSecrets(): { dek: Uint8Array; salt: Uint8Array } {
  const bytes = randomBytes(KEY_LENGTH + V2_SALT_LENGTH);
  return { dek: bytes.subarray(0, KEY_LENGTH), salt: bytes.subarray(KEY_LENGTH) };
}

/** The header of a new object, encoded with its commitment, and the segment key. */
function sealHeader(
  key: MasterKey,
  uuid: string,
  contentType: number,
  plaintextSize: number,
  secrets: { dek: Uint8Array; salt: Uint8Array },
  segmentShift = V2_DEFAULT_SEGMENT_SHIFT,
): { header: V2Header; headerBytes: Uint8Array; segmentKey: KeyObject } {
  const header: V2Header = {
    segmentShift,
    contentType,
    keyId: key.id,
    plaintextSize,
    salt: secrets.salt,
    wrappedKey: wrapKey(key, secrets.dek),
    commitment: new Uint8Array(V2_COMMITMENT_LENGTH),
  };
  // Encoded once: the commitment is derived from the bytes before it, then written after them.
  const headerBytes = encodeV2Header(header);
  const derived = derive(secrets.dek, secrets.salt, headerBytes.subarray(0, V2_COMMITMENT_OFFSET), uuid);
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

/** Ends a segment's encryption: its tag into `output` at `offset`. Returns the end. */
function finishSealing(cipher: CipherGCM, output: Uint8Array, offset: number): number {
  cipher.final();
  output.set(cipher.getAuthTag(), offset);
  return offset + V2_TAG_LENGTH;
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

/** Decrypts segment `index` (ciphertext ‖ tag) into `output` at `offset`; returns the end. */
function openSegment(
  opened: OpenedV2,
  index: number,
  stored: Uint8Array,
  output: Uint8Array,
  offset: number,
  subject: string,
): number {
  const last = index === opened.segmentCount - 1;
  const expected = last ? opened.header.plaintextSize - index * opened.segmentSize : opened.segmentSize;
  if (index >= opened.segmentCount || stored.length !== expected + V2_TAG_LENGTH) {
    throw integrity(
      subject,
      `segment ${index} is ${stored.length} bytes, where ${expected + V2_TAG_LENGTH} were expected`,
    );
  }
  const decipher = startOpening(opened.segmentKey, index, last);
  const end = updateInto(decipher, stored.subarray(0, expected), output, offset);
  finishOpening(decipher, stored.subarray(expected), opened, index, subject);
  return end;
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
