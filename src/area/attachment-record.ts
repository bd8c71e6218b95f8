// The record the daemon keeps with each attachment on Orthanc >= 1.12.8, as the attachment's custom data
// (OrthancPluginRegisterStorageArea3): which backend holds the object and under which key, and how it is
// stored. Orthanc gives it back with every read and remove, which then go straight to that object with one
// request: no probing of candidate keys or backends. docs/backends.md draws the same table.
//
//   offset size field
//        0    2 magic     "OC" (0x4f 0x43): tells our records from another plugin's custom data
//        2    1 version   1; a reader refuses versions it does not know rather than guess
//        3    1 format    RecordFormat: how the object is stored (0 plaintext, 1 A1, 2 v2)
//        4    1 flags     RecordFlag bits
//        5    1 n         bytes of the backend's name, 1..255
//        6    n backend   the backend's name, UTF-8 (StorageTier.backend)
//      6+n    2 m         bytes of the object key, u16 little-endian, 1..65535
//      8+n    m key       the object key in that backend, UTF-8, RootPath and extension included
// Nothing may follow. The record holds no secret: the key and the backend's name only.

import { StorageError } from "../errors.js";

export const RECORD_MAGIC = [0x4f, 0x43] as const;
export const RECORD_VERSION = 1;

/** How the object is stored: the codec's format (ObjectCodec.format) as one byte. */
export const RecordFormat = { plaintext: 0, A1: 1, v2: 2 } as const;
export type RecordFormatName = keyof typeof RecordFormat;

export const RecordFlag = {
  /** An object adopted from a bucket (issue 16): Orthanc did not write it. */
  ADOPTED: 1,
  /** Removing the attachment in Orthanc leaves the object in place (an adopted object kept by choice). */
  KEEP_ON_REMOVE: 2,
} as const;

export interface AttachmentRecord {
  /** The name of the backend holding the object (StorageTier.backend). */
  backend: string;
  /** The object's key in that backend. */
  key: string;
  format: RecordFormatName;
  adopted: boolean;
  keepOnRemove: boolean;
}

const FIXED_SIZE = 8; // magic, version, format, flags, n, m
const MAX_NAME_BYTES = 255;
const MAX_KEY_BYTES = 65535;

export function encodeRecord(record: AttachmentRecord): Buffer {
  const name = Buffer.from(record.backend, "utf8");
  const key = Buffer.from(record.key, "utf8");
  if (name.length < 1 || name.length > MAX_NAME_BYTES || key.length < 1 || key.length > MAX_KEY_BYTES) {
    throw new StorageError(
      "INVALID_ATTACHMENT",
      { operation: "record object", subject: `${record.backend}/${record.key}` },
      `a backend name of 1 to ${MAX_NAME_BYTES} bytes and a key of 1 to ${MAX_KEY_BYTES} bytes are needed ` +
        `(got ${name.length} and ${key.length})`,
    );
  }
  const bytes = Buffer.alloc(FIXED_SIZE + name.length + key.length);
  bytes[0] = RECORD_MAGIC[0];
  bytes[1] = RECORD_MAGIC[1];
  bytes[2] = RECORD_VERSION;
  bytes[3] = RecordFormat[record.format];
  bytes[4] =
    (record.adopted ? RecordFlag.ADOPTED : 0) | (record.keepOnRemove ? RecordFlag.KEEP_ON_REMOVE : 0);
  bytes[5] = name.length;
  name.copy(bytes, 6);
  bytes.writeUInt16LE(key.length, 6 + name.length);
  key.copy(bytes, FIXED_SIZE + name.length);
  return bytes;
}

/**
 * The record in `bytes` (the custom data of attachment `uuid`); throws a StorageError saying what is wrong
 * when they are not a record of ours this version can read.
 */
export function decodeRecord(bytes: Uint8Array, uuid: string): AttachmentRecord {
  const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const refuse = (detail: string): never => {
    throw new StorageError(
      "UNSUPPORTED_FORMAT",
      { operation: "read the custom data of attachment", subject: uuid },
      `${detail}: Orthanc keeps ${data.length} bytes of custom data with it that are not a record of this ` +
        "plugin (another storage plugin wrote them?); see docs/backends.md",
    );
  };
  if (data.length < FIXED_SIZE || data[0] !== RECORD_MAGIC[0] || data[1] !== RECORD_MAGIC[1]) {
    return refuse("no record magic");
  }
  if (data[2] !== RECORD_VERSION) {
    return refuse(
      `record version ${data[2]}, this daemon reads version ${RECORD_VERSION} (a newer plugin wrote it?)`,
    );
  }
  const format = (Object.keys(RecordFormat) as RecordFormatName[]).find(
    (name) => RecordFormat[name] === data[3],
  );
  if (format === undefined) return refuse(`unknown format ${data[3]}`);
  const flags = data[4] as number;
  const nameLength = data[5] as number;
  if (nameLength < 1 || data.length < FIXED_SIZE + nameLength) return refuse("a backend name cut short");
  const keyLength = data.readUInt16LE(6 + nameLength);
  if (keyLength < 1 || data.length !== FIXED_SIZE + nameLength + keyLength) {
    return refuse(`a key of ${keyLength} bytes where ${data.length - FIXED_SIZE - nameLength} remain`);
  }
  return {
    backend: data.toString("utf8", 6, 6 + nameLength),
    key: data.toString("utf8", FIXED_SIZE + nameLength),
    format,
    adopted: (flags & RecordFlag.ADOPTED) !== 0,
    keepOnRemove: (flags & RecordFlag.KEEP_ON_REMOVE) !== 0,
  };
}

/** The record format of a codec's `format` ("plaintext", "A1", "v2"). */
export function recordFormatOf(codecFormat: string): RecordFormatName {
  if (codecFormat in RecordFormat) return codecFormat as RecordFormatName;
  throw new StorageError(
    "UNSUPPORTED_FORMAT",
    { operation: "record format", subject: codecFormat },
    "unknown",
  );
}
