// A1 encryption and decryption (spec §1.4 to §1.6), whole or streamed. OpenSSL through node:crypto does
// the work: AES-256-GCM with the 32-byte IV and the prefix as additional data, the tag checked by OpenSSL
// in constant time. Plaintext is only returned once the tag has verified.

import { createCipheriv, createDecipheriv, randomBytes, type CipherGCM, type DecipherGCM } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";
import { StorageError } from "../errors.js";
import {
  A1_CIPHERTEXT_OFFSET,
  A1_IV_LENGTH,
  A1_KEY_LENGTH,
  A1_PREFIX_LENGTH,
  A1_TAG_LENGTH,
  decodeA1Header,
  encodeA1Prefix,
  type A1Header,
} from "./a1-format.js";
import { joinPieces, PieceList, type BytePieces } from "../byte-pieces.js";
import { Coalescer, updatePieces } from "./cipher-output.js";
import { abandon, bytesOf, lengthMismatch, type ByteSource } from "./exact-length.js";
import type { KeyRing, MasterKey } from "./key-ring.js";

/** NIST SP 800-38D: GCM encrypts at most 2^39 - 256 bits under one key and IV. */
export const A1_MAX_PLAINTEXT = 2 ** 36 - 32;

/** Encrypts a whole plaintext under the ring's current key, with a fresh random IV and DEK (spec §1.2). */
export function encryptA1(plaintext: Uint8Array, ring: KeyRing, subject: string): Uint8Array {
  return joinPieces(encryptA1Pieces(plaintext, ring, subject));
}

/**
 * As encryptA1, the stored object as the list of its pieces (prefix, the cipher's outputs, tag), not joined:
 * what the storage area hands a store.
 */
export function encryptA1Pieces(plaintext: Uint8Array, ring: KeyRing, subject: string): BytePieces {
  assertEncryptable(plaintext.length, subject);
  const { iv, dek } = freshSecrets();
  try {
    return sealA1(plaintext, ring.current, iv, dek);
  } finally {
    iv.fill(0);
    dek.fill(0);
  }
}

/**
 * @internal Encryption with a chosen IV and DEK, only to reproduce published test vectors (spec §1.12).
 * Reusing an IV and DEK pair destroys GCM's security: production code calls `encryptA1`.
 */
export function encryptA1WithSecrets(
  plaintext: Uint8Array,
  key: MasterKey,
  iv: Uint8Array,
  dek: Uint8Array,
): Uint8Array {
  return joinPieces(sealA1(plaintext, key, iv, dek));
}

/** The prefix, the ciphertext and the tag of an A1 object (spec §1.1), as pieces. */
function sealA1(plaintext: Uint8Array, key: MasterKey, iv: Uint8Array, dek: Uint8Array): BytePieces {
  const { prefix, cipher } = startEncryption(key, iv, dek);
  const stored = new PieceList();
  stored.push(prefix);
  updatePieces(cipher, plaintext, stored);
  cipher.final();
  stored.push(cipher.getAuthTag());
  return stored.pieces;
}

/** Decrypts a whole stored object (spec §1.6). */
export function decryptA1(stored: Uint8Array, ring: KeyRing, subject: string): Uint8Array {
  return joinPieces(decryptA1Pieces(stored, ring, subject));
}

/** As decryptA1, the plaintext as the list of the cipher's outputs, not joined. */
export function decryptA1Pieces(stored: Uint8Array, ring: KeyRing, subject: string): BytePieces {
  const header = decodeA1Header(stored, stored.length, subject);
  // Unreachable: with the whole object at hand the header either decodes or throws.
  if (header === null)
    throw new StorageError("INTEGRITY", { operation: "decrypt", subject }, "incomplete header");
  const key = keyFor(header, ring, subject);
  const decipher = startDecryption(header, key);
  const tagOffset = stored.length - A1_TAG_LENGTH;
  decipher.setAuthTag(stored.subarray(tagOffset));
  const plaintext = new PieceList();
  updatePieces(decipher, stored.subarray(A1_CIPHERTEXT_OFFSET, tagOffset), plaintext);
  verify(decipher, plaintext, key, subject);
  return plaintext.pieces;
}

/**
 * A Transform from plaintext to an A1 object: the prefix at once, the ciphertext piece by piece (small
 * chunks joined by a Coalescer first), the tag at the end. Memory stays bounded by the stream's buffers and
 * one staging piece whatever the object size.
 */
export function createA1EncryptStream(ring: KeyRing, subject: string): Transform {
  const { iv, dek } = freshSecrets();
  const { prefix, cipher } = startEncryption(ring.current, iv, dek);
  // OpenSSL holds its own copy of the key schedule from here on.
  iv.fill(0);
  dek.fill(0);
  let plaintextBytes = 0;
  const coalescer = new Coalescer();
  const stream = new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      plaintextBytes += chunk.length;
      try {
        assertEncryptable(plaintextBytes, subject);
        coalescer.push(chunk, (piece) => stream.push(cipher.update(piece)));
        callback();
      } catch (error) {
        callback(error as Error);
      }
    },
    flush(callback: TransformCallback) {
      coalescer.flush((piece) => stream.push(cipher.update(piece)));
      cipher.final();
      callback(null, cipher.getAuthTag());
    },
  });
  stream.push(prefix);
  return stream;
}

/**
 * Decrypts a stream announced as `storedSize` bytes. The last 16 bytes by position are the tag. Resolves
 * only after the tag verified; a stream shorter or longer than announced is an INTEGRITY error.
 */
export async function decryptA1Stream(
  source: ByteSource,
  storedSize: number,
  ring: KeyRing,
  subject: string,
): Promise<Uint8Array> {
  return joinPieces(await decryptA1StreamPieces(source, storedSize, ring, subject));
}

/**
 * As decryptA1Stream, the plaintext as the list of the cipher's outputs: each chunk goes through OpenSSL as
 * it comes (in UPDATE_CHUNK pieces at most) and its output is kept as it is, the one copy of each byte.
 * Gathering the chunks first, or coalescing them into larger updates, costs a copy of the ciphertext that the
 * saved calls do not repay (docs/performance.md, "Crypto").
 */
export async function decryptA1StreamPieces(
  source: ByteSource,
  storedSize: number,
  ring: KeyRing,
  subject: string,
): Promise<BytePieces> {
  const headerBytes = new Uint8Array(A1_PREFIX_LENGTH);
  const tag = new Uint8Array(A1_TAG_LENGTH);
  const tagOffset = storedSize - A1_TAG_LENGTH;
  let position = 0;
  let body: { key: MasterKey; decipher: DecipherGCM } | undefined;
  const plaintext = new PieceList();
  try {
    // Refuses a too-small announced size before reading anything (spec §1.6 step 3).
    decodeA1Header(headerBytes.subarray(0, 0), storedSize, subject);
    for await (const received of source as AsyncIterable<unknown>) {
      const chunk = bytesOf(received);
      let rest = chunk;
      if (body === undefined) {
        // The header is checked before the length, so a plaintext object gets the format error.
        const taken = rest.subarray(0, Math.min(A1_PREFIX_LENGTH, storedSize) - position);
        headerBytes.set(taken, position);
        position += taken.length;
        rest = rest.subarray(taken.length);
        const header = decodeA1Header(headerBytes.subarray(0, position), storedSize, subject);
        if (header === null) continue;
        const key = keyFor(header, ring, subject);
        body = { key, decipher: startDecryption(header, key) };
      }
      if (position + rest.length > storedSize) {
        throw lengthMismatch("decrypt", subject, position + rest.length, storedSize);
      }
      // Bytes before the tag offset are ciphertext; the rest belong to the tag.
      const ciphertext = rest.subarray(0, Math.max(0, tagOffset - position));
      updatePieces(body.decipher, ciphertext, plaintext);
      const tagPart = rest.subarray(ciphertext.length);
      if (tagPart.length > 0) tag.set(tagPart, position + ciphertext.length - tagOffset);
      position += rest.length;
    }
    if (position < storedSize || body === undefined) {
      throw lengthMismatch("decrypt", subject, position, storedSize);
    }
  } catch (error) {
    abandon(source);
    plaintext.wipe();
    throw error;
  }
  body.decipher.setAuthTag(tag);
  verify(body.decipher, plaintext, body.key, subject);
  return plaintext.pieces;
}

// --- helpers ---

/** spec §1.2: a new random IV and DEK for every object. */
function freshSecrets(): { iv: Uint8Array; dek: Uint8Array } {
  return { iv: randomBytes(A1_IV_LENGTH), dek: randomBytes(A1_KEY_LENGTH) };
}

function startEncryption(
  key: MasterKey,
  iv: Uint8Array,
  dek: Uint8Array,
): { prefix: Uint8Array; cipher: CipherGCM } {
  const prefix = encodeA1Prefix(key.id, xorKeystream(iv, key), xorKeystream(dek, key));
  // spec §1.5: the IV is 32 bytes; OpenSSL derives J0 from it by GHASH exactly as Crypto++ does.
  const cipher = createCipheriv("aes-256-gcm", dek, iv, { authTagLength: A1_TAG_LENGTH });
  cipher.setAAD(prefix);
  return { prefix, cipher };
}

function startDecryption(header: A1Header, key: MasterKey): DecipherGCM {
  const iv = xorKeystream(header.eiv, key);
  const dek = xorKeystream(header.edek, key);
  const decipher = createDecipheriv("aes-256-gcm", dek, iv, { authTagLength: A1_TAG_LENGTH });
  decipher.setAAD(header.prefix);
  // OpenSSL holds its own copy of the key schedule from here on.
  iv.fill(0);
  dek.fill(0);
  return decipher;
}

/** spec §1.4: IV and DEK are each masked with the same 32-byte keystream, so one XOR both ways. */
function xorKeystream(bytes: Uint8Array, key: MasterKey): Uint8Array {
  if (bytes.length !== key.keystream.length) {
    throw new RangeError(`expected ${key.keystream.length} bytes to mask, got ${bytes.length}`);
  }
  return bytes.map((b, i) => b ^ (key.keystream[i] ?? 0));
}

/** spec §1.6 step 6 and §1.8: the key is chosen by the id in the object only, never by trial. */
function keyFor(header: A1Header, ring: KeyRing, subject: string): MasterKey {
  const key = ring.find(header.keyId);
  if (key !== undefined) return key;
  throw new StorageError(
    "UNKNOWN_KEY_ID",
    { operation: "decrypt", subject },
    `encrypted with master key id ${header.keyId} (hex ${header.keyIdHex} as in the official message), which ` +
      `is not configured (configured ids: ${ring.ids.join(", ")}): add it to StorageEncryption.PreviousMasterKeys`,
  );
}

/** spec §1.6 step 8: the tag check; the plaintext is wiped when it fails. */
function verify(decipher: DecipherGCM, plaintext: PieceList, key: MasterKey, subject: string): void {
  try {
    decipher.final();
  } catch (cause) {
    plaintext.wipe();
    throw new StorageError(
      "INTEGRITY",
      { operation: "decrypt", subject, cause },
      "integrity check failed: the object was corrupted or tampered with, or the key with id " +
        `${key.id} is not the one it was written with`,
    );
  }
}

function assertEncryptable(plaintextSize: number, subject: string): void {
  if (plaintextSize > A1_MAX_PLAINTEXT) {
    throw new StorageError(
      "TOO_LARGE",
      { operation: "encrypt", subject },
      `it is ${plaintextSize} bytes, more than AES-GCM can encrypt under one IV (${A1_MAX_PLAINTEXT} bytes)`,
    );
  }
}
