// The wire protocol between the native bridge (native/) and the daemon. This file is the single source of
// truth: the bridge's build generates its build/protocol.h from these constants (protocol-header.ts), so
// the C side has no number of its own. All integers are little-endian.
//
// One request in flight per connection. Each Orthanc thread owns one connection.
//
// Request: an 80-byte header, then `size` payload bytes for CREATE, REST, JOB_STEP and JOB_RESTORE only.
//   offset size field
//        0    4 magic        "OCS1" (0x3153434f as u32 LE): catches a desynchronised stream at once
//        4    4 op           Op below
//        8    4 contentType  Orthanc's OrthancPluginContentType (0..3 as the core passes them); REST: 0
//       12    2 flags        RequestFlag bits below, and on a CREATE the CreateFlag bits (distinct ones)
//       14    2 record       READ_RANGE, READ_WHOLE, REMOVE: the length of the attachment's record (its custom
//                            data, Orthanc >= 1.12.8, at most MAX_RECORD_SIZE), whose bytes follow the header
//                            as the payload (0: none); else 0
//       16    8 size         CREATE, REST: payload length; READ_RANGE: length asked for; else 0
//       24    8 start        READ_RANGE: first byte; else 0
//       32   48 uuid         the attachment uuid, ASCII, NUL-padded (36 characters in practice); REST: empty
//
// Custom data (Orthanc >= 1.12.8, when the READY line says custom-data=1: the bridge then registers
// OrthancPluginRegisterStorageArea3). A CREATE with CreateFlag.RECORD is answered with the attachment's
// record (src/area/attachment-record.ts) as the success response's `size` bytes, which the bridge hands to
// Orthanc as the custom data; Orthanc gives it back on every READ_RANGE (there is no READ_WHOLE then: a
// whole read is a range of the whole size) and REMOVE, where the bridge sends it after the header. The
// bridge never reads it.
//
// Response: a 16-byte header, then `size` bytes.
//        0    4 magic        "OCS1"
//        4    4 code         an OrthancPluginErrorCode (i32); 0 = success
//        8    8 size         success: bytes of data that follow (READ_WHOLE, READ_RANGE, REST); error:
//                            bytes of a UTF-8 message that follows (logged by the daemon; the bridge does not
//                            read it, and opens a new connection for its next request); else 0
//
// File answers: a READ_WHOLE or READ_RANGE with the flag FILE_ANSWER may be answered, instead of a success
// response and its bytes, with a 32-byte file answer saying where the daemon holds the bytes: an open file
// of its own, which the bridge opens as /proc/<pid>/fd/<fd> and reads `size` bytes of from `offset` straight
// into Orthanc's buffer (one copy, as Orthanc's own storage makes, instead of three through the socket).
//        0    4 magic        "OCSF" (0x4653434f as u32 LE)
//        4    4 fd           the daemon's descriptor (i32)
//        8    8 size         bytes of the answer
//       16    8 offset       where they start in the file
//       24    4 pid          the daemon's process id
//       28    4 reserved     0
// The daemon keeps the file open until the next request on the connection (or for FILE_HOLD_MS at most, or
// until the connection closes). A bridge that cannot open it (no /proc, a hardened ptrace policy) sends the
// same request again without the flag, and stops setting it.
//
// Jobs: the bridge keeps, for each job the daemon submitted (SUBMIT_JOB below) or Orthanc restored, the
// daemon's last job answer as it came, and reads nothing in it but its fixed fields. A job answer is:
//        0    4 status        JobStepStatus below (Orthanc's OrthancPluginJobStepStatus)
//        4    4 progress      millionths (0..1000000)
//        8      content       string: the job's public content (JSON)
//               serialized    string: the job's serialization (serializeJob: {"Format":SERIALIZED_JOB_FORMAT,
//                             "Content":…,"State":…}), which the bridge hands to Orthanc to store the job,
//                             and sends back with each request about the job
// A job request (JOB_STEP, JOB_RESTORE) has the payload: string type (Orthanc's job type), then the job's
// serialization up to the end (at most MAX_REST_PAYLOAD bytes in all). The daemon keeps nothing between two
// requests: a restarted daemon goes on with the next step.
//   JOB_STEP (op 6): runs one step; the answer is a success response whose `size` bytes are the job answer
//     after the step.
//   JOB_RESTORE (op 7): Orthanc found a job it had stored (at start-up) and asks whether it is one of ours;
//     the answer's `size` bytes are empty when it is not, else its job answer (older bridges' serializations
//     come back too). With RequestFlag START_OVER, Orthanc reset the job (to resubmit it): the daemon, which
//     knows how a job starts, answers a serialization whose state is wrapped as {"StartOver":<state>}
//     (JOB_START_OVER_KEY), and starts the job over from there at its next step.
//
// A READ_WHOLE whose body fails after its header was sent cannot change its answer: the daemon closes
// the connection and the bridge, short of bytes, reports a storage error.
//
// REST (op 5): an HTTP request Orthanc routed to the bridge (one of REST_ROUTES), forwarded as is. Its
// payload, at most MAX_REST_PAYLOAD bytes; a "string" is its UTF-8 bytes, then a NUL (strings hold no NUL:
// they are paths, header values, JSON texts, so the bridge uses them in place):
//   offset size field
//        0    4 method        HttpMethod below (Orthanc's OrthancPluginHttpMethod)
//        4    4 groupCount    values of the route's regular-expression groups
//        8    4 argumentCount GET arguments (key, value pairs)
//       12    4 headerCount   HTTP headers (key, value pairs; keys in lower case, as Orthanc gives them):
//                             the bridge forwards none (0), since no route reads them: the client's
//                             credentials stay in Orthanc, which has checked them
//       16    4 bodySize      bytes of the request body (POST, PUT)
//       20    4 reserved      0
//       24      url           string: the path, without the query string
//                groups        groupCount strings
//                arguments     2 × argumentCount strings
//                headers       2 × headerCount strings
//                body          bodySize bytes, up to the end of the payload
// Its answer is a success response (code 0) whose `size` bytes are, at fixed offsets:
//        0    4 status        HTTP status: 200 → OrthancPluginAnswerBuffer, 405 → SendMethodNotAllowed,
//                             any other → SendHttpStatus (the body then reaches the client only when
//                             Orthanc's HttpDescribeErrors is true, its default)
//        4    4 reserved      0
//        8  120 text          NUL-terminated and NUL-padded ASCII: the content type ("application/json"),
//                             or for a 405 the allowed methods ("GET")
//      128      body          the rest
// An error response (code ≠ 0) means the daemon could not serve the request at all: Orthanc answers 500.
// When the daemon cannot be reached, the bridge itself answers 503, so a load balancer's probe fails.
// A broken connection is retried on a new one for GET only (other methods may not be idempotent).
//
// Callbacks: while the bridge waits for the answer to a REST or JOB_STEP request, the daemon may first ask
// it to call into Orthanc, as many times as it needs, on the same connection. A callback is a 16-byte
// header, then `size` payload bytes (at most MAX_REST_PAYLOAD):
//        0    4 magic         "OCSC" (0x4353434f as u32 LE): not a response
//        4    4 kind          CallbackKind below
//        8    8 size
//   ORTHANC_REST: u32 method (HttpMethod: GET or POST), string uri (path and query), then the body up to the
//                 end; the bridge calls Orthanc's built-in REST API (OrthancPluginRestApiGet/Post)
//   SUBMIT_JOB:   u32 priority (i32), string type, then the job's first job answer (above) up to the end;
//                 the bridge creates the job (OrthancPluginCreateJob) and submits it
//   ATTACHMENT_RECORD: u32 0, string uuid; the bridge answers the attachment's custom data as is
//                 (OrthancPluginGetAttachmentCustomData, Orthanc >= 1.12.8). Or u32 1, string uuid, then the
//                 new custom data up to the end: the bridge sets it (OrthancPluginSetAttachmentCustomData; a
//                 move between backends), and answers no bytes
//   ADOPT:        u32 n, n bytes of record, then a DICOM file up to the end (at most MAX_CREATE_SIZE bytes
//                 in all, the one callback allowed more than MAX_REST_PAYLOAD): the bridge has Orthanc index
//                 the file with the record as custom data, without storing it (OrthancPluginAdoptDicomInstance,
//                 Orthanc >= 1.12.8), and answers u32 store status (Orthanc's OrthancPluginStoreStatus)
// The bridge answers each callback with a 16-byte header ("OCSC", i32 code: an OrthancPluginErrorCode,
// u64 size), then `size` bytes: ORTHANC_REST: Orthanc's answer body; SUBMIT_JOB: the job's id;
// ATTACHMENT_RECORD: the custom data; ADOPT: as above.
//
// The bridge starts one process, once: the supervisor (supervisor.ts), as `node <script> --supervise
// --bridge-version=<version>` (SUPERVISE_FLAG, BridgeFlag), with the runtime and the script beside the
// plugin's library. The version is the one the bridge reports to Orthanc (which /cloud-storage/health
// reports). The bridge writes Orthanc's merged configuration to its stdin, then a NUL byte, and keeps stdin
// open: end-of-file there means Orthanc is gone or stopping. The supervisor starts the daemon the same way
// (OrthancCloudStorage's Node and Daemon, the same flags but --supervise, the configuration on stdin), in
// Orthanc's environment plus DAEMON_ENVIRONMENT below (each variable only when Orthanc's does not set it),
// waits StartupTimeout for its handshake, and restarts it when it dies.
//
// Start-up handshake, on the daemon's stdout, one line each:
//   "OCS READY range=<0|1> custom-data=<0|1> type-status=<0|1> request-timeout=<s> connect-timeout=<s>
//        stop-grace=<s> socket=<path>"   serving (encodeReadyLine): range=1 when READ_RANGE may be registered
//        (the stored format allows it); custom-data=1 on Orthanc >= 1.12.8 (above); type-status=1 when the
//        bridge gives a REST answer with a status other than 200 its Content-Type, 0 when Orthanc gives it its
//        own (>= 1.12.2: orthanc-features.ts), so that the client gets one Content-Type header; the
//        timeouts are OrthancCloudStorage's RequestTimeout and ConnectTimeout; stop-grace is how long the
//        daemon may take to exit once its stdin closes (the write-behind spool's drain): the supervisor and
//        the bridge wait that long, never less than their own grace; the path is the rest of the line
//   "OCS DISABLED <reason>"                  no backend section: the plugin stays disabled
//   "OCS FAILED <reason>"                    Orthanc must refuse to start; the reason is for its log
// The daemon's log lines go to stderr as "I <text>", "W <text>" or "E <text>" (LogPrefix, src/log.ts).
//
// The supervisor's stdout and stderr are one pipe to the bridge, which reads lines (SupervisorLine):
//   first "OCS STARTING startup-timeout=<s>" (StartupTimeout: the bridge waits that long and a margin for
//   the handshake); the first daemon's handshake line as it is (after anything but READY, the supervisor exits); then
//   the READY line of each daemon started after one died;
//   log lines: a level letter (LogPrefix), then what follows "orthanc-cloud-storage" in Orthanc's log:
//   ": <text>" for the supervisor's own messages, " daemon: <text>" for the daemon's lines.
// Any other line (Node's own output, should the supervisor crash) is logged as an error.

/** The flag that makes the daemon's script the supervisor. */
export const SUPERVISE_FLAG = "--supervise";

/** What the supervisor writes to the bridge besides the daemon's handshake lines. */
export const SupervisorLine = {
  STARTING: "OCS STARTING startup-timeout=",
  PLUGIN: ": ",
  DAEMON: " daemon: ",
} as const;

/**
 * Variables the supervisor adds to the daemon's environment: glibc malloc settings. By default glibc serves every allocation above 128 KiB (an attachment, a
 * decrypted object) with a fresh mmap and returns freed memory to the kernel at once, so each request
 * faults its buffers in again page by page, which on a VM costs more than the AES-GCM work on them
 * (docs/performance.md). With these, large buffers come from the heap, and up to 128 MiB of freed memory
 * stays in the process for the next requests (more is given back). And V8's young generation capped at
 * two semi-spaces of 16 MiB, as on Node 20: Node 24 and 26 let it grow to 64 MiB, which under load put
 * the daemon's resident memory 30 to 60 MB higher for no gain (test/e2e/orthanc-load.test.ts). An
 * administrator can override any of them by setting it in Orthanc's environment.
 */
export const DAEMON_ENVIRONMENT: Readonly<Record<string, string>> = {
  MALLOC_MMAP_MAX_: "0",
  MALLOC_TRIM_THRESHOLD_: String(128 * 1024 * 1024),
  NODE_OPTIONS: "--max-semi-space-size=16",
};

/** "OCS1" read as a little-endian u32: catches a desynchronised stream at once. */
export const MAGIC = 0x3153434f;
/** "OCSC": a callback, or the bridge's answer to one, not a response. */
export const CALLBACK_MAGIC = 0x4353434f;
/** "OCSF": a file answer (above), not a response with its bytes. */
export const FILE_MAGIC = 0x4653434f;
export const REQUEST_HEADER_SIZE = 80;
export const FILE_ANSWER_SIZE = 32;
/** How long the daemon keeps a file it answered with open when no next request comes. */
export const FILE_HOLD_MS = 1000;
export const RESPONSE_HEADER_SIZE = 16;
export const CALLBACK_HEADER_SIZE = 16;
export const UUID_FIELD_SIZE = 48;

/** Where each field of a request header starts (the table above). */
export const RequestOffset = {
  MAGIC: 0,
  OP: 4,
  CONTENT_TYPE: 8,
  FLAGS: 12,
  RECORD: 14,
  SIZE: 16,
  START: 24,
  UUID: 32,
} as const;
/** Bits of a request's flags. */
export const RequestFlag = {
  /** READ_WHOLE, READ_RANGE: the bridge takes a file answer. */
  FILE_ANSWER: 1,
  /** JOB_RESTORE: Orthanc reset the job; the daemon answers it started over. */
  START_OVER: 16,
} as const;

/**
 * The flag bits of a CREATE, set by the bridge on Orthanc >= 1.12.8 (custom data); they share the flags field
 * with RequestFlag, so their bits are distinct from its.
 */
export const CreateFlag = {
  /** Answer with the attachment's record: Orthanc keeps it as the attachment's custom data. */
  RECORD: 2,
  /** The attachment is the DICOM instance being stored (Orthanc passed it to the create callback). */
  DICOM: 4,
  /** Orthanc compressed the content (StorageCompression): its bytes are not the DICOM file as is. */
  COMPRESSED: 8,
} as const;

/** The largest record a request carries (its length is a u16 of the header): ours take a few hundred bytes. */
export const MAX_RECORD_SIZE = 0xffff;
/** Where each field of a file answer starts. */
export const FileAnswerOffset = { MAGIC: 0, FD: 4, SIZE: 8, OFFSET: 16, PID: 24 } as const;
/** Where each field of a 16-byte header starts: responses, callbacks (CODE holds the kind) and their answers. */
export const ResponseOffset = { MAGIC: 0, CODE: 4, SIZE: 8 } as const;
/** Where each fixed field of a REST payload starts, then of a REST answer (its text ends before the body). */
export const RestRequestOffset = {
  METHOD: 0,
  GROUP_COUNT: 4,
  ARGUMENT_COUNT: 8,
  HEADER_COUNT: 12,
  BODY_SIZE: 16,
} as const;
export const RestAnswerOffset = { STATUS: 0, TEXT: 8 } as const;
/** Where the fields of a job answer start: its texts, from CONTENT on. */
export const JobAnswerOffset = { STATUS: 0, PROGRESS: 4, CONTENT: 8 } as const;
/** Progress is sent in millionths. */
export const PROGRESS_SCALE = 1_000_000;

export const Op = {
  CREATE: 1,
  READ_WHOLE: 2,
  READ_RANGE: 3,
  REMOVE: 4,
  /** An HTTP request to one of REST_ROUTES (payload and answer above). */
  REST: 5,
  /** One step of a job (payload and answer above). */
  JOB_STEP: 6,
  /** A job Orthanc stored, to be recognised and read back, or reset (payload and answer above). */
  JOB_RESTORE: 7,
} as const;
export type OpCode = (typeof Op)[keyof typeof Op];
const LAST_OP = Op.JOB_RESTORE;

/** The command line of the supervisor and the daemon, after their script (see above). */
export const BridgeFlag = {
  BRIDGE_VERSION: "--bridge-version=",
  /** Orthanc's version as the running Orthanc reports it (custom data from 1.12.8). */
  ORTHANC_VERSION: "--bridge-orthanc=",
} as const;

/** The handshake: the first word of each line, then the words of a READY line in their order. */
export const Handshake = {
  PREFIX: "OCS ",
  READY: "OCS READY",
  DISABLED: "OCS DISABLED",
  FAILED: "OCS FAILED",
} as const;
const READY_FIELDS = [
  "range",
  "custom-data",
  "type-status",
  "request-timeout",
  "connect-timeout",
  "stop-grace",
  "socket",
] as const;

/** What a READY line tells the bridge. */
export interface ReadyLine {
  range: boolean;
  /** Register the storage area with custom data (Orthanc >= 1.12.8): records in both directions. */
  customData: boolean;
  /** Set the Content-Type of REST answers with a status other than 200 (Orthanc < 1.12.2 sets none). */
  typeStatusAnswers: boolean;
  requestTimeoutS: number;
  connectTimeoutS: number;
  /**
   * How long the bridge waits for the daemon to exit once Orthanc stops, before SIGTERM (the write-behind
   * spool's drain, LocalDisk.ShutdownDrainTimeout); the bridge never waits less than its own 5 s.
   */
  stopGraceS: number;
  socketPath: string;
}

/** "OCS READY range=1 custom-data=0 type-status=1 request-timeout=1200 connect-timeout=5 stop-grace=5 socket=/tmp/…/bridge.sock" */
export function encodeReadyLine(ready: ReadyLine): string {
  const values = [
    ready.range ? 1 : 0,
    ready.customData ? 1 : 0,
    ready.typeStatusAnswers ? 1 : 0,
    ready.requestTimeoutS,
    ready.connectTimeoutS,
    ready.stopGraceS,
    ready.socketPath,
  ];
  return [Handshake.READY, ...READY_FIELDS.map((field, i) => `${field}=${values[i]}`)].join(" ");
}

/** The bridge's reading of a READY line (used by tests); undefined when the line is not one. */
export function decodeReadyLine(line: string): ReadyLine | undefined {
  const match = new RegExp(
    `^${Handshake.READY} ${READY_FIELDS.map((field) => `${field}=(${field === "socket" ? ".+" : "\\d+"})`).join(" ")}$`,
  ).exec(line);
  if (match === null) return undefined;
  const [range, customData, typeStatus, request, connect, stopGrace, socketPath] = match.slice(1) as [
    string,
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  return {
    range: range === "1",
    customData: customData === "1",
    typeStatusAnswers: typeStatus === "1",
    requestTimeoutS: Number(request),
    connectTimeoutS: Number(connect),
    stopGraceS: Number(stopGrace),
    socketPath,
  };
}

/** The READY line as the bridge reads it with sscanf: "%d" for each number, "%n" where the path starts. */
export const READY_SCANF_FORMAT = [
  Handshake.READY,
  ...READY_FIELDS.map((field) => `${field}=${field === "socket" ? "%n" : "%d"}`),
].join(" ");

/** The level prefixes of the daemon's log lines on stderr ("I text"). */
export const LogPrefix = { INFO: "I", WARNING: "W", ERROR: "E" } as const;

/** Ops whose request carries a payload of `size` bytes. */
export function hasPayload(op: OpCode): boolean {
  return op === Op.CREATE || op === Op.REST || op === Op.JOB_STEP || op === Op.JOB_RESTORE;
}

/** Ops whose request carries the attachment's record (`record` bytes) after the header. */
export function carriesRecord(op: OpCode): boolean {
  return op === Op.READ_WHOLE || op === Op.READ_RANGE || op === Op.REMOVE;
}

/** Orthanc's OrthancPluginHttpMethod. */
export const HttpMethod = { GET: 1, POST: 2, PUT: 3, DELETE: 4 } as const;
export type HttpMethodName = keyof typeof HttpMethod;

/**
 * The routes the bridge registers with OrthancPluginRegisterRestCallbackNoLock (Perl regular expressions
 * matched against the whole path; OCS_REST_ROUTES in the generated header). Under a prefix of our own, so
 * they never clash with Orthanc's routes or another plugin's.
 */
export const REST_ROUTES = [
  "/cloud-storage/health",
  "/cloud-storage/metrics",
  "/cloud-storage/locate/([^/]+)",
  // Orthanc >= 1.12.8: adopting the DICOM files of a bucket prefix (src/daemon/adopt-route.ts).
  "/cloud-storage/adopt",
  // The official plugin's route (spec §4.3), at the same path so that scripts written for it keep working.
  "/move-storage",
  "/cloud-storage/tier-rules",
] as const;

/**
 * The bridge's clock (native/rest.c): every TICK_INTERVAL_S seconds it sends a REST request of its own,
 * POST to this path (never registered with Orthanc, so no HTTP client reaches it), served with callbacks
 * like any REST request. The daemon decides what is due (tier rules' TierSchedule); the bridge only ticks.
 */
export const TIER_TICK_PATH = "/cloud-storage/tier-rules/tick";
export const TICK_INTERVAL_S = 60;

/** Largest REST payload, either way: REST answers are small JSON or text, never attachments. */
export const MAX_REST_PAYLOAD = 16 * 1024 * 1024;

/**
 * Largest attachment a CREATE may announce: 4 GiB, the largest Buffer of Node 20, where the protocol began.
 * A constant of its own since Node 22 allows Buffers of up to 2^53 - 1 bytes: a header announcing more than
 * Orthanc can have sent must still be refused at once rather than keep the connection waiting.
 */
export const MAX_CREATE_SIZE = 2 ** 32;
export const REST_REQUEST_FIXED_SIZE = 24;
export const REST_ANSWER_FIXED_SIZE = 128;

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
  /** RequestFlag bits, and a CREATE's CreateFlag bits (0 when absent). */
  flags?: number;
  /** The length of the record that follows (READ_WHOLE, READ_RANGE, REMOVE; 0 when absent). */
  record?: number;
  size: number;
  start: number;
  uuid: string;
}

/** Decode a request header; throws a ProtocolError when the bytes cannot be one. */
export function decodeRequestHeader(header: Uint8Array): Request {
  const view = new DataView(header.buffer, header.byteOffset, header.byteLength);
  const magic = view.getUint32(RequestOffset.MAGIC, true);
  if (magic !== MAGIC)
    throw new ProtocolError(`bad magic 0x${magic.toString(16)}: the stream is out of step`);
  const op = view.getUint32(RequestOffset.OP, true);
  if (op < Op.CREATE || op > LAST_OP) throw new ProtocolError(`unknown operation ${op}`);
  // Each u64 as two u32s: no BigInt per request (this runs for every read; a CPU profile showed it).
  const size = readSafeU64(view, RequestOffset.SIZE);
  const start = readSafeU64(view, RequestOffset.START);
  if (size === undefined || start === undefined) {
    throw new ProtocolError(
      `size ${view.getBigUint64(RequestOffset.SIZE, true)} or start ${view.getBigUint64(RequestOffset.START, true)} is out of range`,
    );
  }
  // Only the padding is cut: a NUL inside the uuid stays in it, so "<uuid>\0../../x" is refused as a whole
  // (object-key.ts) instead of being read as its valid prefix.
  let end = RequestOffset.UUID + UUID_FIELD_SIZE;
  while (end > RequestOffset.UUID && header[end - 1] === 0) end--;
  const bytes = Buffer.isBuffer(header)
    ? header
    : Buffer.from(header.buffer, header.byteOffset, header.byteLength);
  return {
    op: op as OpCode,
    contentType: view.getUint32(RequestOffset.CONTENT_TYPE, true),
    flags: view.getUint16(RequestOffset.FLAGS, true),
    record: view.getUint16(RequestOffset.RECORD, true),
    size,
    start,
    uuid: bytes.toString("latin1", RequestOffset.UUID, end),
  };
}

/** The little-endian u64 at `offset`, or undefined when it is above Number.MAX_SAFE_INTEGER. */
function readSafeU64(view: DataView, offset: number): number | undefined {
  const high = view.getUint32(offset + 4, true);
  if (high > 0x1fffff) return undefined; // 2^53 and above
  return high * 0x1_0000_0000 + view.getUint32(offset, true);
}

/** Encode a request header (used by tests and tools that talk to the daemon like the bridge does). */
export function encodeRequestHeader(request: Request): Buffer {
  const header = Buffer.alloc(REQUEST_HEADER_SIZE);
  header.writeUInt32LE(MAGIC, RequestOffset.MAGIC);
  header.writeUInt32LE(request.op, RequestOffset.OP);
  header.writeUInt32LE(request.contentType, RequestOffset.CONTENT_TYPE);
  const flags = request.flags ?? 0;
  const record = request.record ?? 0;
  if (!Number.isInteger(flags) || flags < 0 || flags > 0xffff) {
    throw new ProtocolError(`flags 0x${flags.toString(16)} do not fit the header's 16 bits`);
  }
  if (!Number.isInteger(record) || record < 0 || record > MAX_RECORD_SIZE) {
    throw new ProtocolError(
      `a record of ${record} bytes is larger than the ${MAX_RECORD_SIZE} a request header can announce`,
    );
  }
  header.writeUInt16LE(flags, RequestOffset.FLAGS);
  header.writeUInt16LE(record, RequestOffset.RECORD);
  header.writeBigUInt64LE(BigInt(request.size), RequestOffset.SIZE);
  header.writeBigUInt64LE(BigInt(request.start), RequestOffset.START);
  const uuid = Buffer.from(request.uuid, "latin1");
  if (uuid.length > UUID_FIELD_SIZE)
    throw new ProtocolError(`uuid of ${uuid.length} bytes does not fit the header`);
  uuid.copy(header, RequestOffset.UUID);
  return header;
}

export function encodeResponseHeader(code: number, size: number): Buffer {
  return encodeShortHeader(MAGIC, code, size);
}

/** A file answer: `size` bytes from `offset` of the daemon's open descriptor `fd` (process `pid`). */
export function encodeFileAnswer(fd: number, size: number, offset: number, pid: number): Buffer {
  const answer = Buffer.allocUnsafe(FILE_ANSWER_SIZE); // every byte written below
  answer.writeUInt32LE(FILE_MAGIC, FileAnswerOffset.MAGIC);
  answer.writeInt32LE(fd, FileAnswerOffset.FD);
  writeU64(answer, size, FileAnswerOffset.SIZE);
  writeU64(answer, offset, FileAnswerOffset.OFFSET);
  answer.writeUInt32LE(pid, FileAnswerOffset.PID);
  answer.writeUInt32LE(0, FileAnswerOffset.PID + 4);
  return answer;
}

/** Decode a file answer (for tests and tools that play the bridge). */
export function decodeFileAnswer(answer: Uint8Array): {
  fd: number;
  size: number;
  offset: number;
  pid: number;
} {
  const view = new DataView(answer.buffer, answer.byteOffset, answer.byteLength);
  if (answer.byteLength !== FILE_ANSWER_SIZE || view.getUint32(FileAnswerOffset.MAGIC, true) !== FILE_MAGIC)
    throw new ProtocolError("not a file answer");
  return {
    fd: view.getInt32(FileAnswerOffset.FD, true),
    size: Number(view.getBigUint64(FileAnswerOffset.SIZE, true)),
    offset: Number(view.getBigUint64(FileAnswerOffset.OFFSET, true)),
    pid: view.getUint32(FileAnswerOffset.PID, true),
  };
}

/** The 16-byte headers of responses and callbacks: a magic, an i32 (code or kind), a u64 size. */
function encodeShortHeader(magic: number, word: number, size: number): Buffer {
  const header = Buffer.allocUnsafe(RESPONSE_HEADER_SIZE); // every byte written below
  header.writeUInt32LE(magic, ResponseOffset.MAGIC);
  header.writeInt32LE(word, ResponseOffset.CODE);
  writeU64(header, size, ResponseOffset.SIZE);
  return header;
}

/** A safe non-negative integer as a little-endian u64, as two u32s (no BigInt per answer). */
function writeU64(bytes: Buffer, value: number, offset: number): void {
  if (!Number.isSafeInteger(value) || value < 0)
    throw new ProtocolError(`${value} is not a size or an offset`);
  bytes.writeUInt32LE(value % 0x1_0000_0000, offset);
  bytes.writeUInt32LE(Math.floor(value / 0x1_0000_0000), offset + 4);
}

export function decodeResponseHeader(header: Uint8Array): { code: number; size: number } {
  const view = new DataView(header.buffer, header.byteOffset, header.byteLength);
  if (view.getUint32(ResponseOffset.MAGIC, true) !== MAGIC)
    throw new ProtocolError("bad magic in a response");
  return {
    code: view.getInt32(ResponseOffset.CODE, true),
    size: Number(view.getBigUint64(ResponseOffset.SIZE, true)),
  };
}

/** An HTTP request as the bridge forwards it (op REST). */
export interface RestRequest {
  method: HttpMethodName;
  /** The path, without the query string. */
  url: string;
  /** Values of the route's regular-expression groups. */
  groups: string[];
  /** GET arguments, in order (a key may repeat). */
  getArguments: Array<[string, string]>;
  /** Header names in lower case. */
  headers: Array<[string, string]>;
  body: Buffer;
}

/** The daemon's answer to a REST request. */
export interface RestAnswer {
  status: number;
  contentType: string;
  /** For a 405: the methods the route allows ("GET"); else empty. */
  allow: string;
  body: Buffer;
}

/** Decode a REST payload; throws a ProtocolError naming the field that does not fit. */
export function decodeRestRequest(payload: Buffer): RestRequest {
  const cursor = new Cursor(payload, "REST request");
  const methodCode = cursor.u32("method");
  const method = (Object.keys(HttpMethod) as HttpMethodName[]).find((m) => HttpMethod[m] === methodCode);
  if (method === undefined) throw new ProtocolError(`REST request: unknown HTTP method ${methodCode}`);
  const groupCount = cursor.u32("groupCount");
  const argumentCount = cursor.u32("argumentCount");
  const headerCount = cursor.u32("headerCount");
  const bodySize = cursor.u32("bodySize");
  cursor.u32("reserved");
  const url = cursor.string("url");
  const groups = Array.from({ length: groupCount }, (_, i) => cursor.string(`group ${i}`));
  const pairs = (count: number, what: string): Array<[string, string]> =>
    Array.from({ length: count }, (_, i) => [
      cursor.string(`${what} ${i} key`),
      cursor.string(`${what} ${i} value`),
    ]);
  const getArguments = pairs(argumentCount, "argument");
  const headers = pairs(headerCount, "header");
  const body = cursor.bytes(bodySize, "body");
  cursor.end();
  return { method, url, groups, getArguments, headers, body };
}

/** Encode a REST payload, as the bridge does (used by tests and tools). */
export function encodeRestRequest(request: RestRequest): Buffer {
  const fixed = Buffer.alloc(REST_REQUEST_FIXED_SIZE);
  fixed.writeUInt32LE(HttpMethod[request.method], RestRequestOffset.METHOD);
  fixed.writeUInt32LE(request.groups.length, RestRequestOffset.GROUP_COUNT);
  fixed.writeUInt32LE(request.getArguments.length, RestRequestOffset.ARGUMENT_COUNT);
  fixed.writeUInt32LE(request.headers.length, RestRequestOffset.HEADER_COUNT);
  fixed.writeUInt32LE(request.body.length, RestRequestOffset.BODY_SIZE);
  const strings = [request.url, ...request.groups, ...request.getArguments.flat(), ...request.headers.flat()];
  return Buffer.concat([fixed, ...strings.map(encodeString), request.body]);
}

/**
 * Encode the payload of a REST answer (a 405 carries its allowed methods, no content type); throws a
 * ProtocolError when its text does not fit or the answer is larger than MAX_REST_PAYLOAD.
 */
export function encodeRestAnswer(answer: RestAnswer): Buffer {
  const text = Buffer.from(answer.status === 405 ? answer.allow : answer.contentType, "latin1");
  if (text.length >= REST_ANSWER_FIXED_SIZE - RestAnswerOffset.TEXT || text.includes(0)) {
    throw new ProtocolError(
      `a REST answer's content type or allowed methods of ${text.length} bytes does not fit`,
    );
  }
  const fixed = Buffer.alloc(REST_ANSWER_FIXED_SIZE);
  fixed.writeUInt32LE(answer.status, RestAnswerOffset.STATUS);
  text.copy(fixed, RestAnswerOffset.TEXT);
  const size = fixed.length + answer.body.length;
  if (size > MAX_REST_PAYLOAD) {
    throw new ProtocolError(`a REST answer of ${size} bytes is larger than ${MAX_REST_PAYLOAD} bytes`);
  }
  return Buffer.concat([fixed, answer.body]);
}

/** Decode the payload of a REST answer, as the bridge does (used by tests). */
export function decodeRestAnswer(payload: Buffer): RestAnswer {
  const cursor = new Cursor(payload, "REST answer");
  const status = cursor.u32("status");
  const fixed = cursor.bytes(REST_ANSWER_FIXED_SIZE - RestAnswerOffset.STATUS - 4, "text");
  const text = fixed.subarray(RestAnswerOffset.TEXT - 4, fixed.indexOf(0, RestAnswerOffset.TEXT - 4));
  if (fixed.at(-1) !== 0) throw new ProtocolError("REST answer: its text has no NUL");
  const [contentType, allow] = status === 405 ? ["", text.toString("latin1")] : [text.toString("latin1"), ""];
  return { status, contentType, allow, body: cursor.rest() };
}

/** Orthanc's OrthancPluginJobStepStatus. */
export const JobStepStatus = { Success: 1, Failure: 2, Continue: 3 } as const;
export type JobStepStatusCode = (typeof JobStepStatus)[keyof typeof JobStepStatus];

/** What a job step decides: the daemon's job runners answer it (server.ts makes the job answer). */
export interface JobStepAnswer {
  status: JobStepStatusCode;
  /** 0..1 */
  progress: number;
  /** The job's new public content (JSON), or "" to keep it. */
  content: string;
  /** The job's new state, or "" to keep it. */
  state: string;
}

/** A job answer (above), as the bridge keeps it. */
export interface JobAnswer {
  status: JobStepStatusCode;
  /** 0..1 */
  progress: number;
  /** The job's public content (JSON). */
  content: string;
  /** The job's serialization (serializeJob). */
  serialized: string;
}

export function encodeJobAnswer(answer: JobAnswer): Buffer {
  const fixed = Buffer.alloc(JobAnswerOffset.CONTENT);
  fixed.writeUInt32LE(answer.status, JobAnswerOffset.STATUS);
  const progress = Math.round(Math.min(1, Math.max(0, answer.progress)) * PROGRESS_SCALE);
  fixed.writeUInt32LE(progress, JobAnswerOffset.PROGRESS);
  const size = fixed.length + 2 + Buffer.byteLength(answer.content) + Buffer.byteLength(answer.serialized);
  if (size > MAX_REST_PAYLOAD) {
    throw new ProtocolError(`a job answer of ${size} bytes is larger than ${MAX_REST_PAYLOAD} bytes`);
  }
  return Buffer.concat([fixed, encodeString(answer.content), encodeString(answer.serialized)]);
}

/** Decode a job answer, as the bridge reads it (used by tests). */
export function decodeJobAnswer(payload: Buffer): JobAnswer {
  const cursor = new Cursor(payload, "job answer");
  const status = cursor.u32("status") as JobStepStatusCode;
  const progress = cursor.u32("progress") / PROGRESS_SCALE;
  const content = cursor.string("content");
  const serialized = cursor.string("serialized");
  cursor.end();
  return { status, progress, content, serialized };
}

/** What the daemon asks the bridge to do inside Orthanc (callbacks, above). */
export const CallbackKind = {
  ORTHANC_REST: 1,
  SUBMIT_JOB: 2,
  /** Orthanc >= 1.12.8: the custom data (record) Orthanc keeps with an attachment: read, or set. */
  ATTACHMENT_RECORD: 3,
  /** Orthanc >= 1.12.8: index a DICOM file already in a backend (OrthancPluginAdoptDicomInstance). */
  ADOPT: 4,
} as const;
export type CallbackKindCode = (typeof CallbackKind)[keyof typeof CallbackKind];

/** The "Format" of the bridge's serialized jobs, so that ours are told from the official plugin's. */
export const SERIALIZED_JOB_FORMAT = "orthanc-cloud-storage/1";

/** The key under which the bridge wraps the state of a job Orthanc reset: {"StartOver":<state>}. */
export const JOB_START_OVER_KEY = "StartOver";

/** A job as the bridge sends it (JOB_STEP, JOB_RESTORE). */
export interface JobRequest {
  /** Orthanc's job type ("MoveStorage"). */
  type: string;
  /** Its serialization, as the daemon last answered it or as Orthanc stored it (JSON). */
  serialized: string;
}

/** A job read back from its serialization. */
export interface RestoredJob {
  content: string;
  state: string;
}

/** The serialization of a job of ours: content and state are JSON texts, written in as they are. */
export function serializeJob({ content, state }: RestoredJob): string {
  return `{"Format":"${SERIALIZED_JOB_FORMAT}","Content":${content},"State":${state}}`;
}

export function decodeJobRequest(payload: Buffer): JobRequest {
  const cursor = new Cursor(payload, "job request");
  const type = cursor.string("type");
  return { type, serialized: cursor.rest().toString("utf8") };
}

/** Encode a job request's payload, as the bridge does (used by tests). */
export function encodeJobRequest(request: JobRequest): Buffer {
  return Buffer.concat([encodeString(request.type), Buffer.from(request.serialized, "utf8")]);
}

/** A call to Orthanc's own REST API, made by the bridge. */
export interface OrthancRestCall {
  method: HttpMethodName;
  /** Path and query string, e.g. "/instances/ID/attachments?full". */
  uri: string;
  body?: Buffer;
}

/** A job for Orthanc's job engine, whose steps the bridge forwards as JOB_STEP (its serialization: serializeJob). */
export interface JobSubmission {
  type: string;
  priority: number;
  content: string;
  state: string;
}

/** A DICOM file to adopt, with the record Orthanc keeps as its custom data (callback ADOPT). */
export interface AdoptCall {
  record: Uint8Array;
  dicom: Uint8Array;
}

/** What Orthanc answered to an adoption. */
export interface AdoptAnswer {
  /** Orthanc's OrthancPluginStoreStatus (AdoptStatus). */
  status: number;
}

/** Orthanc's OrthancPluginStoreStatus. */
export const AdoptStatus = {
  Success: 0,
  AlreadyStored: 1,
  Failure: 2,
  FilteredOut: 3,
  StorageFull: 4,
} as const;

/** A callback frame: header and payload. */
export function encodeCallback(
  call:
    | { kind: "rest"; rest: OrthancRestCall }
    | { kind: "job"; job: JobSubmission }
    | { kind: "record"; uuid: string; set?: Uint8Array }
    | { kind: "adopt"; adopt: AdoptCall },
): Buffer {
  let payload: Buffer;
  let kind: CallbackKindCode;
  let most = MAX_REST_PAYLOAD;
  if (call.kind === "record") {
    const set = Buffer.alloc(4);
    set.writeUInt32LE(call.set === undefined ? 0 : 1, 0);
    payload = Buffer.concat([set, encodeString(call.uuid), call.set ?? Buffer.alloc(0)]);
    kind = CallbackKind.ATTACHMENT_RECORD;
  } else if (call.kind === "adopt") {
    const size = Buffer.alloc(4);
    size.writeUInt32LE(call.adopt.record.length, 0);
    payload = Buffer.concat([size, call.adopt.record, call.adopt.dicom]);
    kind = CallbackKind.ADOPT;
    most = MAX_CREATE_SIZE; // a whole DICOM file
  } else if (call.kind === "rest") {
    const method = Buffer.alloc(4);
    method.writeUInt32LE(HttpMethod[call.rest.method], 0);
    payload = Buffer.concat([method, encodeString(call.rest.uri), call.rest.body ?? Buffer.alloc(0)]);
    kind = CallbackKind.ORTHANC_REST;
  } else {
    const priority = Buffer.alloc(4);
    priority.writeInt32LE(call.job.priority, 0);
    const { type, content } = call.job;
    const first = {
      status: JobStepStatus.Continue,
      progress: 0,
      content,
      serialized: serializeJob(call.job),
    };
    payload = Buffer.concat([priority, encodeString(type), encodeJobAnswer(first)]);
    kind = CallbackKind.SUBMIT_JOB;
  }
  if (payload.length > most) {
    throw new ProtocolError(`a callback of ${payload.length} bytes is larger than ${most} bytes`);
  }
  return Buffer.concat([encodeShortHeader(CALLBACK_MAGIC, kind, payload.length), payload]);
}

/** Decode a callback frame's header, as the bridge does (used by tests). */
export function decodeCallbackHeader(header: Uint8Array): { kind: number; size: number } {
  const view = new DataView(header.buffer, header.byteOffset, header.byteLength);
  if (view.getUint32(ResponseOffset.MAGIC, true) !== CALLBACK_MAGIC) {
    throw new ProtocolError("bad magic in a callback");
  }
  return {
    kind: view.getUint32(ResponseOffset.CODE, true),
    size: Number(view.getBigUint64(ResponseOffset.SIZE, true)),
  };
}

/** Encode the header of the bridge's answer to a callback (used by tests standing in for the bridge). */
export function encodeCallbackAnswerHeader(code: number, size: number): Buffer {
  return encodeShortHeader(CALLBACK_MAGIC, code, size);
}

/** Decode the header of the bridge's answer to a callback. */
export function decodeCallbackAnswerHeader(header: Uint8Array): { code: number; size: number } {
  const view = new DataView(header.buffer, header.byteOffset, header.byteLength);
  const magic = view.getUint32(ResponseOffset.MAGIC, true);
  if (magic !== CALLBACK_MAGIC) {
    throw new ProtocolError(`bad magic 0x${magic.toString(16)} in the answer to a callback`);
  }
  const size = view.getBigUint64(ResponseOffset.SIZE, true);
  if (size > BigInt(MAX_REST_PAYLOAD)) {
    throw new ProtocolError(`an answer to a callback of ${size} bytes (at most ${MAX_REST_PAYLOAD})`);
  }
  return { code: view.getInt32(ResponseOffset.CODE, true), size: Number(size) };
}

/** Decode the bridge's answer to an ADOPT callback. */
export function decodeAdoptAnswer(payload: Buffer): AdoptAnswer {
  const cursor = new Cursor(payload, "adopt answer");
  const answer = { status: cursor.u32("status") };
  cursor.end();
  return answer;
}

/** A string as the protocol writes it: UTF-8, then a NUL; one that holds a NUL cannot be sent. */
function encodeString(text: string): Buffer {
  if (text.includes("\0")) throw new ProtocolError(`a string holds a NUL character: ${JSON.stringify(text)}`);
  return Buffer.concat([Buffer.from(text, "utf8"), Buffer.alloc(1)]);
}

/** Reads the fields of a REST payload in order; every read checks that the bytes are there. */
class Cursor {
  private offset = 0;

  constructor(
    private readonly data: Buffer,
    private readonly what: string,
  ) {}

  u32(field: string): number {
    this.need(4, field);
    const value = this.data.readUInt32LE(this.offset);
    this.offset += 4;
    return value;
  }

  string(field: string): string {
    const nul = this.data.indexOf(0, this.offset);
    if (nul === -1) {
      throw new ProtocolError(
        `${this.what}: ${field} at offset ${this.offset} of ${this.data.length} has no NUL`,
      );
    }
    const text = this.bytes(nul - this.offset, field).toString("utf8");
    this.offset++;
    return text;
  }

  bytes(length: number, field: string): Buffer {
    this.need(length, field);
    const taken = this.data.subarray(this.offset, this.offset + length);
    this.offset += length;
    return taken;
  }

  rest(): Buffer {
    return this.bytes(this.data.length - this.offset, "rest");
  }

  end(): void {
    const left = this.data.length - this.offset;
    if (left !== 0) throw new ProtocolError(`${this.what}: ${left} bytes after the body`);
  }

  private need(length: number, field: string): void {
    if (this.data.length - this.offset < length) {
      throw new ProtocolError(
        `${this.what}: ${field} needs ${length} bytes at offset ${this.offset} of ${this.data.length}`,
      );
    }
  }
}

/** Bytes on a connection that cannot be a request: the connection is closed. */
export class ProtocolError extends Error {
  constructor(message: string) {
    super(`protocol error: ${message}`);
    this.name = "ProtocolError";
  }
}
