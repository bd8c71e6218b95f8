// The v2 byte layout (docs/encryption-format-v2.md): the 124-byte header, the segment arithmetic, and
// recognising a v2 object by its first bytes. No cryptography and no keys here: bytes in, fields or errors
// out.

import { StorageError } from "../errors.js";

// docs/encryption-format-v2.md, "Layout". Offsets and lengths in bytes; big-endian but the key id.
//
// | offset | length | field                                        |
// |      0 |      4 | magic 89 4F 43 53                            |
// |      4 |      1 | version 02                                   |
// |      5 |      1 | segment shift (log2 of the segment size)     |
// |      6 |      2 | content type                                 |
// |      8 |      4 | master key id, uint32 LITTLE-endian (as A1)  |
// |     12 |      8 | plaintext size, uint64                       |
// |     20 |     32 | salt                                         |
// |     52 |     40 | wrapped DEK (AES-KW)                         |
// |     92 |     32 | commitment                                   |
export const V2_MAGIC = Uint8Array.of(0x89, 0x4f, 0x43, 0x53);
export const V2_VERSION = 2;
const VERSION_OFFSET = 4;
const SHIFT_OFFSET = 5;
const CONTENT_TYPE_OFFSET = 6;
const KEY_ID_OFFSET = 8;
const PLAINTEXT_SIZE_OFFSET = 12;
export const V2_SALT_OFFSET = 20;
export const V2_SALT_LENGTH = 32;
export const V2_WRAPPED_KEY_OFFSET = 52;
/** AES-KW output for a 32-byte key: the key plus its 8-byte integrity value. */
export const V2_WRAPPED_KEY_LENGTH = 40;
/** Every header byte before the commitment goes into the key derivation. */
export const V2_COMMITMENT_OFFSET = 92;
export const V2_COMMITMENT_LENGTH = 32;
export const V2_HEADER_LENGTH = 124;
export const V2_TAG_LENGTH = 16;
/**
 * 1 MiB, what new objects are written with: below it, a GCM context per segment and the join of each tag
 * to the ciphertext kept v2 below A1's throughput (docs/encryption-format-v2.md, "Segment size"). Objects
 * written with 64 KiB segments (the first default) are read as any other: the header says their size.
 */
export const V2_DEFAULT_SEGMENT_SHIFT = 20;
/** 4 KiB to 16 MiB: a reader refuses other sizes as a damaged header. */
export const V2_MIN_SEGMENT_SHIFT = 12;
export const V2_MAX_SEGMENT_SHIFT = 24;

/** The fields of a v2 header, as found in a stored object or about to be written. */
export interface V2Header {
  segmentShift: number;
  contentType: number;
  keyId: number;
  plaintextSize: number;
  salt: Uint8Array;
  wrappedKey: Uint8Array;
  commitment: Uint8Array;
}

/** The stored bytes [storedStart, storedEnd) holding segments first..last. */
export interface V2Span {
  firstSegment: number;
  lastSegment: number;
  storedStart: number;
  storedEnd: number;
}

/** Whether the first bytes are v2's magic (at least 4 bytes are needed to say yes). */
export function hasV2Magic(bytes: Uint8Array): boolean {
  return V2_MAGIC.every((b, i) => bytes[i] === b);
}

export function encodeV2Header(header: V2Header): Uint8Array {
  const bytes = new Uint8Array(V2_HEADER_LENGTH);
  const view = viewOf(bytes);
  bytes.set(V2_MAGIC, 0);
  view.setUint8(VERSION_OFFSET, V2_VERSION);
  view.setUint8(SHIFT_OFFSET, header.segmentShift);
  view.setUint16(CONTENT_TYPE_OFFSET, header.contentType);
  view.setUint32(KEY_ID_OFFSET, header.keyId, true);
  view.setBigUint64(PLAINTEXT_SIZE_OFFSET, BigInt(header.plaintextSize));
  setField(bytes, "salt", header.salt, V2_SALT_OFFSET, V2_SALT_LENGTH);
  setField(bytes, "wrapped key", header.wrappedKey, V2_WRAPPED_KEY_OFFSET, V2_WRAPPED_KEY_LENGTH);
  setField(bytes, "commitment", header.commitment, V2_COMMITMENT_OFFSET, V2_COMMITMENT_LENGTH);
  return bytes;
}

/**
 * Reads the header from the first bytes of a stored object (steps 1 to 3 of the doc's order of checks).
 * Returns null when fewer than 124 bytes are at hand yet; throws UNSUPPORTED_FORMAT when the bytes are
 * not a v2 object of this version, INTEGRITY when the header cannot be a sound one.
 */
export function decodeV2Header(bytes: Uint8Array, subject: string): V2Header | null {
  if (bytes.length >= V2_MAGIC.length && !hasV2Magic(bytes)) {
    throw new StorageError(
      "UNSUPPORTED_FORMAT",
      { operation: "decrypt", subject },
      `not a v2 object: it starts with ${hexBytes(bytes.subarray(0, V2_MAGIC.length))}, not the v2 magic ` +
        `${hexBytes(V2_MAGIC)}: not a recognised format`,
    );
  }
  if (bytes.length < V2_HEADER_LENGTH) return null;
  const view = viewOf(bytes);
  const version = view.getUint8(VERSION_OFFSET);
  if (version !== V2_VERSION) {
    throw new StorageError(
      "UNSUPPORTED_FORMAT",
      { operation: "decrypt", subject },
      `not a recognised format: a v2 object's magic, then version ${version} where this version reads ` +
        `version ${V2_VERSION}: written by a later orthanc-cloud-storage, or its first bytes were altered ` +
        "(then restore it from a backup or a replica)",
    );
  }
  const segmentShift = view.getUint8(SHIFT_OFFSET);
  if (segmentShift < V2_MIN_SEGMENT_SHIFT || segmentShift > V2_MAX_SEGMENT_SHIFT) {
    throw damaged(subject, `segment size 2^${segmentShift} is outside 2^12 to 2^24`);
  }
  const plaintextSize = view.getBigUint64(PLAINTEXT_SIZE_OFFSET);
  if (plaintextSize > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw damaged(subject, `plaintext size ${plaintextSize} is beyond 2^53 - 1`);
  }
  return {
    segmentShift,
    contentType: view.getUint16(CONTENT_TYPE_OFFSET),
    keyId: view.getUint32(KEY_ID_OFFSET, true),
    plaintextSize: Number(plaintextSize),
    salt: bytes.subarray(V2_SALT_OFFSET, V2_SALT_OFFSET + V2_SALT_LENGTH),
    wrappedKey: bytes.subarray(V2_WRAPPED_KEY_OFFSET, V2_WRAPPED_KEY_OFFSET + V2_WRAPPED_KEY_LENGTH),
    commitment: bytes.subarray(V2_COMMITMENT_OFFSET, V2_COMMITMENT_OFFSET + V2_COMMITMENT_LENGTH),
  };
}

/** The 4 key-id bytes of a header in file order, uppercase hex, as for A1 ("02000000"). */
export function v2KeyIdHex(headerBytes: Uint8Array): string {
  return Buffer.from(headerBytes.subarray(KEY_ID_OFFSET, KEY_ID_OFFSET + 4))
    .toString("hex")
    .toUpperCase();
}

/** Number of segments of a plaintext: an empty one is one empty segment. */
export function v2SegmentCount(plaintextSize: number, segmentShift: number): number {
  return plaintextSize === 0 ? 1 : Math.ceil(plaintextSize / 2 ** segmentShift);
}

/** Stored size of a v2 object holding `plaintextSize` bytes. */
export function v2StoredSize(plaintextSize: number, segmentShift = V2_DEFAULT_SEGMENT_SHIFT): number {
  if (!Number.isSafeInteger(plaintextSize) || plaintextSize < 0) {
    throw new RangeError(`plaintext size ${plaintextSize} is not a non-negative integer`);
  }
  return V2_HEADER_LENGTH + plaintextSize + V2_TAG_LENGTH * v2SegmentCount(plaintextSize, segmentShift);
}

/**
 * Plaintext size of a v2 object of `storedSize` bytes written with segments of 2^`segmentShift` bytes;
 * INTEGRITY when no plaintext size gives that stored size.
 */
export function v2PlaintextSize(
  storedSize: number,
  subject: string,
  segmentShift = V2_DEFAULT_SEGMENT_SHIFT,
): number {
  const payload = storedSize - V2_HEADER_LENGTH;
  const stride = 2 ** segmentShift + V2_TAG_LENGTH;
  const segments = Math.max(1, Math.ceil(payload / stride));
  const plaintextSize = payload - V2_TAG_LENGTH * segments;
  if (plaintextSize < 0 || v2StoredSize(plaintextSize, segmentShift) !== storedSize) {
    throw damaged(subject, `${storedSize} bytes is no size a v2 object can have`);
  }
  return plaintextSize;
}

/** The segments covering plaintext bytes [start, end), and where they are stored (end > start). */
export function v2Span(plaintextSize: number, segmentShift: number, start: number, end: number): V2Span {
  const size = 2 ** segmentShift;
  const stride = size + V2_TAG_LENGTH;
  const firstSegment = Math.floor(start / size);
  const lastSegment = Math.floor((Math.max(end, start + 1) - 1) / size);
  const storedEnd = Math.min(
    v2StoredSize(plaintextSize, segmentShift),
    V2_HEADER_LENGTH + (lastSegment + 1) * stride,
  );
  return { firstSegment, lastSegment, storedStart: V2_HEADER_LENGTH + firstSegment * stride, storedEnd };
}

// --- helpers ---

/** "0x89 0x4F 0x43 0x53" */
function hexBytes(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => `0x${b.toString(16).padStart(2, "0").toUpperCase()}`).join(" ");
}

/** `DataView` over exactly these bytes: Node's Buffers are often views into a larger pooled ArrayBuffer. */
function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function setField(bytes: Uint8Array, name: string, value: Uint8Array, offset: number, length: number): void {
  if (value.length !== length) throw new RangeError(`${name} is ${value.length} bytes, expected ${length}`);
  bytes.set(value, offset);
}

function damaged(subject: string, detail: string): StorageError {
  return new StorageError(
    "INTEGRITY",
    { operation: "decrypt", subject },
    `damaged v2 header: ${detail}; restore the object from a backup or a replica`,
  );
}
