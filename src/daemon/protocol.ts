// The wire protocol between the native bridge (native/bridge.c) and the daemon. This file is the
// reference: native/protocol.h mirrors every constant and cites it. All integers are little-endian.
//
// One request in flight per connection. Each Orthanc thread owns one connection.
//
// Request: an 80-byte header, then `size` payload bytes for CREATE only.
//   offset size field
//        0    4 magic        "OCS1" (0x3153434f as u32 LE): catches a desynchronised stream at once
//        4    4 op           Op below
//        8    4 contentType  Orthanc's OrthancPluginContentType (0..3 as the core passes them)
//       12    4 reserved     0
//       16    8 size         CREATE: payload length; READ_RANGE: length asked for; else 0
//       24    8 start        READ_RANGE: first byte; else 0
//       32   48 uuid         the attachment uuid, ASCII, NUL-padded (36 characters in practice)
//
// Response: a 16-byte header, then `size` bytes.
//        0    4 magic        "OCS1"
//        4    4 code         an OrthancPluginErrorCode (i32); 0 = success
//        8    8 size         success: bytes of data that follow (READ_WHOLE, READ_RANGE); error: bytes of
//                            a UTF-8 message that follows (the bridge logs it); else 0
//
// A READ_WHOLE whose body fails after its header was sent cannot change its answer: the daemon closes
// the connection and the bridge, short of bytes, reports a storage error.
//
// Start-up handshake, on the daemon's stdout, one line each (the bridge waits for one of them):
//   "OCS READY range=<0|1> socket=<path>"   serving; range=1 when READ_RANGE may be registered
//   "OCS DISABLED <reason>"                  no backend section: the plugin stays disabled
//   "OCS FAILED <reason>"                    Orthanc must refuse to start; the reason is for its log
// The daemon's log lines go to stderr as "I <text>", "W <text>" or "E <text>" (src/log.ts).
// The bridge writes Orthanc's merged configuration to the daemon's stdin, then a NUL byte, and keeps
// stdin open: end-of-file there means Orthanc is gone, and the daemon exits.

export const MAGIC = 0x3153434f;
export const REQUEST_HEADER_SIZE = 80;
export const RESPONSE_HEADER_SIZE = 16;
export const UUID_FIELD_SIZE = 48;

export const Op = {
  CREATE: 1,
  READ_WHOLE: 2,
  READ_RANGE: 3,
  REMOVE: 4,
} as const;
export type OpCode = (typeof Op)[keyof typeof Op];

/** The OrthancPluginErrorCode values the daemon answers with (OrthancCPlugin.h, Orthanc 1.10.1). */
export const OrthancCode = {
  Success: 0,
  InternalError: -1,
  NotEnoughMemory: 4,
  ParameterOutOfRange: 3,
  InexistentFile: 13,
  CannotWriteFile: 14,
  BadFileFormat: 15,
  FullStorage: 19,
  CorruptedFile: 20,
  StorageAreaPlugin: 32,
  BadRange: 41,
} as const;

export interface Request {
  op: OpCode;
  contentType: number;
  size: number;
  start: number;
  uuid: string;
}

/** Decode a request header; throws a ProtocolError when the bytes cannot be one. */
export function decodeRequestHeader(header: Uint8Array): Request {
  const view = new DataView(header.buffer, header.byteOffset, header.byteLength);
  const magic = view.getUint32(0, true);
  if (magic !== MAGIC)
    throw new ProtocolError(`bad magic 0x${magic.toString(16)}: the stream is out of step`);
  const op = view.getUint32(4, true);
  if (op < Op.CREATE || op > Op.REMOVE) throw new ProtocolError(`unknown operation ${op}`);
  const size = view.getBigUint64(16, true);
  const start = view.getBigUint64(24, true);
  if (size > BigInt(Number.MAX_SAFE_INTEGER) || start > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new ProtocolError(`size ${size} or start ${start} is out of range`);
  }
  const uuidBytes = header.subarray(32, 32 + UUID_FIELD_SIZE);
  const end = uuidBytes.indexOf(0);
  const uuid = Buffer.from(uuidBytes.subarray(0, end === -1 ? UUID_FIELD_SIZE : end)).toString("latin1");
  return {
    op: op as OpCode,
    contentType: view.getUint32(8, true),
    size: Number(size),
    start: Number(start),
    uuid,
  };
}

/** Encode a request header (used by tests and tools that talk to the daemon like the bridge does). */
export function encodeRequestHeader(request: Request): Buffer {
  const header = Buffer.alloc(REQUEST_HEADER_SIZE);
  header.writeUInt32LE(MAGIC, 0);
  header.writeUInt32LE(request.op, 4);
  header.writeUInt32LE(request.contentType, 8);
  header.writeBigUInt64LE(BigInt(request.size), 16);
  header.writeBigUInt64LE(BigInt(request.start), 24);
  const uuid = Buffer.from(request.uuid, "latin1");
  if (uuid.length > UUID_FIELD_SIZE)
    throw new ProtocolError(`uuid of ${uuid.length} bytes does not fit the header`);
  uuid.copy(header, 32);
  return header;
}

export function encodeResponseHeader(code: number, size: number): Buffer {
  const header = Buffer.alloc(RESPONSE_HEADER_SIZE);
  header.writeUInt32LE(MAGIC, 0);
  header.writeInt32LE(code, 4);
  header.writeBigUInt64LE(BigInt(size), 8);
  return header;
}

export function decodeResponseHeader(header: Uint8Array): { code: number; size: number } {
  const view = new DataView(header.buffer, header.byteOffset, header.byteLength);
  if (view.getUint32(0, true) !== MAGIC) throw new ProtocolError("bad magic in a response");
  return { code: view.getInt32(4, true), size: Number(view.getBigUint64(8, true)) };
}

/** Bytes on a connection that cannot be a request: the connection is closed. */
export class ProtocolError extends Error {
  constructor(message: string) {
    super(`protocol error: ${message}`);
    this.name = "ProtocolError";
  }
}
