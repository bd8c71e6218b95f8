// The A1 byte layout of the official plugins' encrypted objects (spec §1.1), its sizes, and recognising a
// stored object by its first bytes. No cryptography and no keys here: bytes in, fields or errors out.

import { StorageError } from "../errors.js";
import { decodeV2Header, hasV2Magic, v2KeyIdHex, v2SegmentCount, v2StoredSize } from "./v2-format.js";

// spec §1.1 byte table. Offsets and lengths in bytes.
//
// | offset | length | field                                   |
// |      0 |      2 | version "A1" (0x41 0x31)                |
// |      2 |      4 | master key id, uint32 little-endian     |
// |      6 |     32 | EIV = IV xor KS                         |
// |     38 |     32 | EDEK = DEK xor KS                       |
// |     70 |      N | AES-256-GCM ciphertext (N = plaintext)  |
// |   70+N |     16 | GCM tag                                 |
export const A1_VERSION = "A1";
export const A1_VERSION_OFFSET = 0;
export const A1_VERSION_LENGTH = 2;
export const A1_KEY_ID_OFFSET = 2;
export const A1_KEY_ID_LENGTH = 4;
export const A1_EIV_OFFSET = 6;
export const A1_EIV_LENGTH = 32;
export const A1_EDEK_OFFSET = 38;
export const A1_EDEK_LENGTH = 32;
/** The prefix (version, key id, EIV, EDEK) is also the GCM additional data (spec §1.5). */
export const A1_PREFIX_LENGTH = 70;
export const A1_CIPHERTEXT_OFFSET = A1_PREFIX_LENGTH;
export const A1_TAG_LENGTH = 16;
/** Stored size minus plaintext size. */
export const A1_OVERHEAD = 86;
/** AES-256 keys: the master key (KEK) and the per-object data key (DEK). */
export const A1_KEY_LENGTH = 32;
/** spec §1.5: the GCM IV is 32 bytes, not the usual 12. */
export const A1_IV_LENGTH = 32;
/** The key id is a C++ uint32_t (spec §1.1; the vectors' manifest shows 4294967295 accepted). */
export const A1_MAX_KEY_ID = 0xffff_ffff;

/** How many first bytes `describeStoredObject` needs to recognise everything it knows (DICM at 128). */
export const DESCRIBE_PREFIX_BYTES = 132;

const VERSION_BYTE_0 = 0x41; // "A"
const VERSION_BYTE_1 = 0x31; // "1"
const DICOM_MAGIC_OFFSET = 128;
const DICOM_MAGIC = "DICM";
/** Content types whose plaintext is one of Orthanc's own formats: DICOM, DicomAsJson, DicomUntilPixelData. */
const ORTHANC_FORMAT_TYPES: ReadonlySet<number> = new Set([1, 2, 3]);
/** Orthanc's "ZlibWithSize" compression: a uint64 little-endian plaintext size, then a zlib stream. */
const COMPRESSED_SIZE_LENGTH = 8;
/** A tag (4 bytes) and at least a VR or length (4 bytes). */
const RAW_DATASET_MIN_BYTES = 8;

/** The fields of an A1 prefix, as found in a stored object. */
export interface A1Header {
  keyId: number;
  /** The 4 key-id bytes in file order, uppercase hex, as the official messages print them ("2A000000"). */
  keyIdHex: string;
  eiv: Uint8Array;
  edek: Uint8Array;
  /** Bytes 0..70, the GCM additional data. */
  prefix: Uint8Array;
  plaintextSize: number;
}

export type StoredObjectDescription =
  | { format: "A1"; keyId: number; keyIdHex: string; plaintextSize: number }
  | {
      format: "v2";
      keyId: number;
      keyIdHex: string;
      plaintextSize: number;
      contentType: number;
      segmentSize: number;
      segments: number;
    }
  | { format: "plaintext"; looksLike: "DICOM" | "JSON" | "unknown" };

/** The 70-byte prefix of an object encrypted under key `keyId`. */
export function encodeA1Prefix(keyId: number, eiv: Uint8Array, edek: Uint8Array): Uint8Array {
  assertKeyId(keyId);
  assertLength("EIV", eiv, A1_EIV_LENGTH);
  assertLength("EDEK", edek, A1_EDEK_LENGTH);
  const prefix = new Uint8Array(A1_PREFIX_LENGTH);
  const view = viewOf(prefix);
  view.setUint8(A1_VERSION_OFFSET, VERSION_BYTE_0);
  view.setUint8(A1_VERSION_OFFSET + 1, VERSION_BYTE_1);
  // spec §1.1: written from memory on little-endian builds; the vectors confirm id 3 -> 03 00 00 00.
  view.setUint32(A1_KEY_ID_OFFSET, keyId, true);
  prefix.set(eiv, A1_EIV_OFFSET);
  prefix.set(edek, A1_EDEK_OFFSET);
  return prefix;
}

/**
 * Reads the A1 prefix from the first bytes of a stored object of `storedSize` bytes.
 * `bytes` may be only the start of the object: returns null when more bytes are needed to decide, and
 * throws UNSUPPORTED_FORMAT as soon as the bytes present show it is not a readable A1 object.
 * Checks run in the order of spec §1.6 (header, version, key id), then ours: at least 86 bytes.
 */
export function decodeA1Header(bytes: Uint8Array, storedSize: number, subject: string): A1Header | null {
  if (!checkA1Framing(bytes, storedSize, subject)) return null;
  if (bytes.length < A1_PREFIX_LENGTH) return null;
  const view = viewOf(bytes);
  return {
    keyId: view.getUint32(A1_KEY_ID_OFFSET, true),
    keyIdHex: keyIdHexOf(bytes),
    eiv: bytes.subarray(A1_EIV_OFFSET, A1_EIV_OFFSET + A1_EIV_LENGTH),
    edek: bytes.subarray(A1_EDEK_OFFSET, A1_EDEK_OFFSET + A1_EDEK_LENGTH),
    prefix: bytes.subarray(0, A1_PREFIX_LENGTH),
    plaintextSize: storedSize - A1_OVERHEAD,
  };
}

/** Stored size of an A1 object holding `plaintextSize` bytes. */
export function a1StoredSize(plaintextSize: number): number {
  assertSize("plaintext size", plaintextSize);
  return plaintextSize + A1_OVERHEAD;
}

/** Plaintext size of an A1 object of `storedSize` bytes; UNSUPPORTED_FORMAT under 86 bytes. */
export function a1PlaintextSize(storedSize: number, subject = "object"): number {
  assertSize("stored size", storedSize);
  if (storedSize < A1_OVERHEAD) throw tooShort(storedSize, subject);
  return storedSize - A1_OVERHEAD;
}

/**
 * What a stored object is, from its first bytes (pass `DESCRIBE_PREFIX_BYTES`, or the whole object if
 * smaller), without any key. DICOM means "DICM" at offset 128, or a raw data set starting with a group
 * 0x0008 tag. An object starting with "A1" is taken as A1, as the official plugin does;
 * one too short to be complete throws the UNSUPPORTED_FORMAT error a read would give.
 */
export function describeStoredObject(firstBytes: Uint8Array, storedSize: number): StoredObjectDescription {
  assertSize("stored size", storedSize);
  const needed = Math.min(storedSize, A1_KEY_ID_OFFSET + A1_KEY_ID_LENGTH);
  if (firstBytes.length < needed) {
    throw new RangeError(`describeStoredObject needs the first ${needed} bytes, got ${firstBytes.length}`);
  }
  if (firstBytes.length >= 4 && hasV2Magic(firstBytes)) return describeV2(firstBytes, storedSize);
  if (storedSize >= A1_VERSION_LENGTH && hasA1Version(firstBytes)) {
    checkA1Framing(firstBytes, storedSize, "object");
    return {
      format: "A1",
      keyId: viewOf(firstBytes).getUint32(A1_KEY_ID_OFFSET, true),
      keyIdHex: keyIdHexOf(firstBytes),
      plaintextSize: storedSize - A1_OVERHEAD,
    };
  }
  return { format: "plaintext", looksLike: guessPlaintext(firstBytes) };
}

/**
 * With encryption off: whether an attachment of `contentType` whose stored object starts with `head` is in
 * fact an A1 object (an encrypted bucket read with StorageEncryption disabled, or a foreign object), whose
 * bytes must never reach Orthanc as if they were its file. Only Orthanc's own formats are judged: a DICOM
 * file or header (types 1, 3) or a JSON summary (2) never starts with "A1", except a DICOM file whose
 * preamble happens to (it has "DICM" at 128) and one of Orthanc's compressed attachments whose size
 * happens to (8-byte size, then a zlib stream). User attachments (0) are opaque: an A1 file may be one.
 * False when `head` holds fewer than min(storedSize, DESCRIBE_PREFIX_BYTES) bytes: too few to tell.
 */
export function isA1InPlaceOfPlaintext(head: Uint8Array, storedSize: number, contentType: number): boolean {
  if (!ORTHANC_FORMAT_TYPES.has(contentType)) return false;
  // v2's magic is 4 bytes none of Orthanc's formats starts with (docs/encryption-format-v2.md, "Layout").
  if (head.length >= 4 && hasV2Magic(head)) return guessPlaintext(head) !== "DICOM";
  if (storedSize < A1_OVERHEAD || head.length < Math.min(storedSize, DESCRIBE_PREFIX_BYTES)) return false;
  if (!hasA1Version(head)) return false;
  return guessPlaintext(head) !== "DICOM" && !isOrthancCompressed(head);
}

/** `DataView` over exactly these bytes: Node's Buffers are often views into a larger pooled ArrayBuffer. */
export function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

// --- helpers ---

/** A v2 object's header fields (no key needed); "damaged" errors when they cannot describe this object. */
function describeV2(firstBytes: Uint8Array, storedSize: number): StoredObjectDescription {
  const header = decodeV2Header(firstBytes, "object");
  if (header === null) {
    throw formatError("object", `a v2 object too short for its 124-byte header: ${storedSize} bytes`);
  }
  const expected = v2StoredSize(header.plaintextSize, header.segmentShift);
  if (expected !== storedSize) {
    throw new StorageError(
      "INTEGRITY",
      { operation: "decrypt", subject: "object" },
      `a v2 object of ${storedSize} bytes, where its header says ${expected}`,
    );
  }
  return {
    format: "v2",
    keyId: header.keyId,
    keyIdHex: v2KeyIdHex(firstBytes),
    plaintextSize: header.plaintextSize,
    contentType: header.contentType,
    segmentSize: 2 ** header.segmentShift,
    segments: v2SegmentCount(header.plaintextSize, header.segmentShift),
  };
}

/** spec §1.6 steps 3 to 5, plus our minimum size. False: `bytes` is too short to tell yet. */
function checkA1Framing(bytes: Uint8Array, storedSize: number, subject: string): boolean {
  assertSize("stored size", storedSize);
  if (storedSize < A1_VERSION_LENGTH) {
    throw formatError(subject, `no header found: the object is ${storedSize} bytes`);
  }
  if (bytes.length < A1_VERSION_LENGTH) return false;
  if (!hasA1Version(bytes)) throw formatError(subject, notA1Detail(bytes));
  if (storedSize < A1_KEY_ID_OFFSET + A1_KEY_ID_LENGTH) {
    throw formatError(subject, `no master key id found: the object is ${storedSize} bytes`);
  }
  // The official code has no such check and misbehaves below 86 bytes (spec §1.6, edge cases).
  if (storedSize < A1_OVERHEAD) throw tooShort(storedSize, subject);
  return true;
}

function hasA1Version(bytes: Uint8Array): boolean {
  return bytes[A1_VERSION_OFFSET] === VERSION_BYTE_0 && bytes[A1_VERSION_OFFSET + 1] === VERSION_BYTE_1;
}

/** "not an A1 object: it starts with 0x00 0x00 (a plaintext DICOM file?)": the guess helps the admin. */
function notA1Detail(bytes: Uint8Array): string {
  const first = bytes.subarray(0, A1_VERSION_LENGTH);
  const hex = Array.from(first, (b) => `0x${b.toString(16).padStart(2, "0").toUpperCase()}`).join(" ");
  const printable = first.every((b) => b >= 0x20 && b < 0x7f);
  const shown = printable ? `${hex} (${JSON.stringify(String.fromCharCode(...first))})` : hex;
  // Every encrypted read recognises both formats (encrypted-codec.ts): a v2 object whose magic was altered
  // lands here too.
  return (
    `not an A1 object: it starts with ${shown}, not 0x41 0x31 ("A1"), nor a v2 object (0x89 0x4F 0x43 0x53): ` +
    `not a recognised encrypted format${guessCause(bytes)}`
  );
}

function guessCause(bytes: Uint8Array): string {
  const looksLike = guessPlaintext(bytes);
  if (looksLike === "DICOM") return " (a plaintext DICOM file: was it written with encryption off?)";
  if (looksLike === "JSON") return " (a plaintext JSON attachment?)";
  // A DICOM preamble is 128 bytes that are usually zero.
  if (bytes[0] === 0 && bytes[1] === 0) return " (a plaintext DICOM file?)";
  if (bytes[0] === 0x08 && bytes[1] === 0x00) return " (a plaintext DICOM data set?)";
  // base64 of "A1" starts with "QT".
  if (bytes[0] === 0x51 && bytes[1] === 0x54) return " (a base64-encoded A1 object?)";
  return "";
}

function guessPlaintext(bytes: Uint8Array): "DICOM" | "JSON" | "unknown" {
  const magic = bytes.subarray(DICOM_MAGIC_OFFSET, DICOM_MAGIC_OFFSET + DICOM_MAGIC.length);
  if (magic.length === DICOM_MAGIC.length && String.fromCharCode(...magic) === DICOM_MAGIC) return "DICOM";
  // Orthanc also accepts and stores raw data sets (no preamble, no "DICM", no meta header): they start with a
  // little-endian tag of group 0x0008, e.g. test/fixtures/dicom/ts-1.2-implicit-le-MR.dcm.
  if (bytes.length >= RAW_DATASET_MIN_BYTES && bytes[0] === 0x08 && bytes[1] === 0x00) return "DICOM";
  const first = bytes.find((b) => !isJsonSpace(b));
  if (first === 0x7b || first === 0x5b) return "JSON"; // "{" or "["
  return "unknown";
}

/**
 * Orthanc's compressed attachments: a size under 2^48 (bytes 6 and 7 zero), then a zlib header (RFC 1950:
 * deflate method 8, window at most 32 KiB, CMF*256+FLG a multiple of 31). Random A1 bytes fit by chance
 * once in about 2^25 objects, which are then served as today, never a plaintext refused.
 */
function isOrthancCompressed(bytes: Uint8Array): boolean {
  const cmf = bytes[COMPRESSED_SIZE_LENGTH];
  const flg = bytes[COMPRESSED_SIZE_LENGTH + 1];
  if (cmf === undefined || flg === undefined) return false;
  return (
    bytes[6] === 0 && bytes[7] === 0 && (cmf & 0x0f) === 8 && cmf >> 4 <= 7 && ((cmf << 8) | flg) % 31 === 0
  );
}

function isJsonSpace(b: number): boolean {
  return b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d;
}

function keyIdHexOf(bytes: Uint8Array): string {
  const raw = bytes.subarray(A1_KEY_ID_OFFSET, A1_KEY_ID_OFFSET + A1_KEY_ID_LENGTH);
  return Array.from(raw, (b) => b.toString(16).padStart(2, "0"))
    .join("")
    .toUpperCase();
}

function tooShort(storedSize: number, subject: string): StorageError {
  return formatError(
    subject,
    `too short to be an A1 object: ${storedSize} bytes, when a complete one has at least ${A1_OVERHEAD}`,
  );
}

function formatError(subject: string, detail: string): StorageError {
  return new StorageError("UNSUPPORTED_FORMAT", { operation: "decrypt", subject }, detail);
}

function assertKeyId(keyId: number): void {
  if (!Number.isInteger(keyId) || keyId < 0 || keyId > A1_MAX_KEY_ID) {
    throw new RangeError(`master key id ${keyId} is not an integer between 0 and ${A1_MAX_KEY_ID}`);
  }
}

function assertLength(name: string, bytes: Uint8Array, length: number): void {
  if (bytes.length !== length) throw new RangeError(`${name} is ${bytes.length} bytes, expected ${length}`);
}

function assertSize(name: string, size: number): void {
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new RangeError(`${name} ${size} is not a non-negative integer`);
  }
}
