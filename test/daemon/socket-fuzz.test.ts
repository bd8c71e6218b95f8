// Property-based fuzzing of the daemon's socket (issue 7, bad input): a real daemon process receives
// random, truncated, oversized and nonsense frames, each on its own connection. Whatever it gets, it
// answers with a well-formed response or closes THAT connection; a connection opened before the fuzzing
// keeps getting correct answers; the process stays up and its memory stays bounded.

import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import fc from "fast-check";

import {
  CALLBACK_MAGIC,
  HttpMethod,
  MAGIC,
  MAX_CREATE_SIZE,
  MAX_REST_PAYLOAD,
  Op,
  OrthancCode,
  REQUEST_HEADER_SIZE,
  REST_ROUTES,
  RESPONSE_HEADER_SIZE,
  UUID_FIELD_SIZE,
  encodeRestRequest,
  type HttpMethodName,
  decodeReadyLine,
} from "../../src/daemon/protocol.js";
import { BridgeClient } from "../../test-support/bridge-client.js";
import { startDaemon, type StartedDaemon } from "../../test-support/daemon-process.js";

/** Runs per property: enough to hit every branch of the reader many times, well under a minute. */
const RUNS = 300;
/** The frame reader refuses a CREATE announcing more. */
const MAX_CREATE = MAX_CREATE_SIZE;
const U64_MAX = 2n ** 64n - 1n;
const ORTHANC_CODES = new Set<number>(Object.values(OrthancCode));
/**
 * A daemon that neither answers nor closes a connection leaves a run waiting for ever: this turns that
 * into a failure. Not a speed requirement: each property takes seconds.
 */
const HANG = { timeout: 120_000 };

interface RawHeader {
  magic: number;
  op: number;
  contentType: number;
  /** RequestFlag bits, and CREATE's CreateFlag bits (u16). */
  flags: number;
  /** READ_*, REMOVE: the length of the record that follows (u16); ignored by the other ops. */
  record: number;
  size: bigint;
  start: bigint;
  uuid: Uint8Array;
}

/** A request header with any value in any field, unlike encodeRequestHeader. */
function rawHeader(h: RawHeader): Buffer {
  const header = Buffer.alloc(REQUEST_HEADER_SIZE);
  header.writeUInt32LE(h.magic, 0);
  header.writeUInt32LE(h.op, 4);
  header.writeUInt32LE(h.contentType, 8);
  header.writeUInt16LE(h.flags, 12);
  header.writeUInt16LE(h.record, 14);
  header.writeBigUInt64LE(h.size, 16);
  header.writeBigUInt64LE(h.start, 24);
  header.set(h.uuid.subarray(0, UUID_FIELD_SIZE), 32);
  return header;
}

/** How the daemon reacted to what one connection sent. */
interface Reaction {
  /** Every byte the daemon sent back. */
  received: Buffer;
  /** "answer": one whole response; "callback": a callback header; "closed": the daemon closed the connection. */
  outcome: "answer" | "callback" | "closed";
}

/**
 * Sends `bytes` on a new connection (then half-closes it when `end`), and resolves at the first whole
 * response, callback header, or close. Never on a timer: a daemon that neither answers nor closes makes
 * the test time out.
 */
function react(socketPath: string, bytes: Uint8Array, end: boolean): Promise<Reaction> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    let received = Buffer.alloc(0);
    const finish = (outcome: Reaction["outcome"]): void => {
      socket.removeAllListeners("data");
      socket.removeAllListeners("close");
      socket.on("error", () => undefined);
      socket.destroy();
      resolve({ received, outcome });
    };
    socket.on("error", () => undefined); // a reset is a close, seen below
    socket.on("close", () => finish("closed"));
    socket.on("data", (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length < RESPONSE_HEADER_SIZE) return;
      const magic = received.readUInt32LE(0);
      if (magic === CALLBACK_MAGIC) finish("callback");
      else if (magic !== MAGIC)
        reject(new Error(`the daemon sent bytes that are no response: ${hex(received)}`));
      else if (received.length >= RESPONSE_HEADER_SIZE + Number(received.readBigUInt64LE(8)))
        finish("answer");
    });
    socket.on("connect", () => {
      socket.write(bytes);
      if (end) socket.end();
    });
  });
}

function hex(bytes: Buffer): string {
  return bytes.subarray(0, 32).toString("hex");
}

/** The response a reaction holds: Orthanc code and the bytes after the header. */
function responseOf({ received }: Reaction): { code: number; body: Buffer } {
  return {
    code: received.readInt32LE(4),
    body: received.subarray(RESPONSE_HEADER_SIZE, RESPONSE_HEADER_SIZE + Number(received.readBigUInt64LE(8))),
  };
}

/** Resident and virtual memory of a process, in bytes (/proc/<pid>/status). */
async function memoryOf(pid: number): Promise<{ rss: number; virtual: number }> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = (field: string): number =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1]) * 1024;
  return { rss: kb("VmRSS"), virtual: kb("VmSize") };
}

// --- arbitraries ---

const uuidField = fc.oneof(
  fc.uuid().map((u) => Buffer.from(u, "latin1")),
  fc.uint8Array({ maxLength: UUID_FIELD_SIZE }),
  fc.constant(Buffer.from("../../etc/passwd", "latin1")),
);
const anyU64 = fc.oneof(
  { arbitrary: fc.bigInt({ min: 0n, max: 100_000n }), weight: 4 },
  fc.bigInt({ min: 0n, max: U64_MAX }),
  fc.constantFrom(0n, 1n, BigInt(Number.MAX_SAFE_INTEGER), BigInt(Number.MAX_SAFE_INTEGER) + 1n, U64_MAX),
);
const methods = Object.keys(HttpMethod) as HttpMethodName[];
/** A REST payload: random bytes, or a well-formed request for a random or real route. */
const restPayload = fc.oneof(
  fc.uint8Array({ maxLength: 512 }).map((b) => Buffer.from(b)),
  fc
    .record({
      method: fc.constantFrom(...methods),
      url: fc.oneof(
        fc.string(),
        fc.constantFrom("/cloud-storage/health", "/cloud-storage/metrics", ...REST_ROUTES),
      ),
      groups: fc.array(fc.string(), { maxLength: 3 }),
      getArguments: fc.array(fc.tuple(fc.string(), fc.string()), { maxLength: 3 }),
      headers: fc.array(fc.tuple(fc.string(), fc.string()), { maxLength: 3 }),
      body: fc.uint8Array({ maxLength: 256 }).map((b) => Buffer.from(b)),
    })
    .map((request) => encodeRestRequest(request)),
);
/** A job state: random bytes, or random JSON. */
const jobState = fc.oneof(
  fc.uint8Array({ maxLength: 512 }).map((b) => Buffer.from(b)),
  fc.json().map((text) => Buffer.from(text, "utf8")),
);

/** A complete frame: valid magic, any op (known or not), any fields, and for payload ops its whole payload. */
const completeFrame = fc
  .record({
    op: fc.oneof(
      { arbitrary: fc.integer({ min: Op.CREATE, max: Op.JOB_RESTORE }), weight: 7 },
      fc.integer({ min: 0, max: 8 }),
      fc.integer({ min: 0, max: 0xffff_ffff }),
    ),
    contentType: fc.oneof(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 0xffff_ffff })),
    flags: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff })),
    record: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff })),
    // Orthanc >= 1.12.8: reads and removes carry the attachment's record (any bytes: refused, or a miss).
    recordBytes: fc.uint8Array({ maxLength: 300 }),
    size: anyU64,
    start: anyU64,
    uuid: uuidField,
    create: fc.uint8Array({ maxLength: 4096 }),
    rest: restPayload,
    job: jobState,
  })
  .map((f) => {
    const payload =
      f.op === Op.CREATE
        ? Buffer.from(f.create)
        : f.op === Op.REST
          ? f.rest
          : f.op === Op.JOB_STEP || f.op === Op.JOB_RESTORE
            ? f.job
            : null;
    const size = payload === null ? f.size : BigInt(payload.length);
    // A record as long as announced for the ops that carry one; any length field, with nothing after it, for
    // the others (they ignore it).
    const withRecord = f.op === Op.READ_WHOLE || f.op === Op.READ_RANGE || f.op === Op.REMOVE;
    const record = withRecord ? Buffer.from(f.recordBytes) : Buffer.alloc(0);
    const field = withRecord ? record.length : f.record;
    return {
      ...f,
      size,
      bytes: Buffer.concat([
        rawHeader({ ...f, record: field, magic: MAGIC, size }),
        payload ?? Buffer.alloc(0),
        record,
      ]),
    };
  });

/** A frame cut short: a payload op announcing more bytes (up to what the reader accepts) than are sent. */
const truncatedFrame = fc
  .record({
    op: fc.constantFrom(Op.CREATE, Op.REST, Op.JOB_STEP, Op.JOB_RESTORE),
    announced: fc.oneof(fc.integer({ min: 1, max: 10_000 }), fc.integer({ min: 1, max: MAX_CREATE })),
    sent: fc.nat({ max: 9_999 }),
    uuid: uuidField,
  })
  .filter((f) => f.op === Op.CREATE || f.announced <= MAX_REST_PAYLOAD)
  .map((f) => {
    const sent = Math.min(f.sent, f.announced - 1);
    const header = rawHeader({
      ...f,
      magic: MAGIC,
      contentType: 1,
      flags: 0,
      record: 0,
      size: BigInt(f.announced),
      start: 0n,
    });
    // A header can itself be cut: keep between 0 and all of its bytes when no payload is sent.
    return sent === 0
      ? header.subarray(0, f.sent % (REQUEST_HEADER_SIZE + 1))
      : Buffer.concat([header, randomBytes(sent)]);
  });

/** A header announcing more than the reader ever allocates: CREATE past Node's largest Buffer, REST past its cap. */
const oversizedFrame = fc.oneof(
  fc.bigInt({ min: BigInt(MAX_CREATE) + 1n, max: U64_MAX }).map((size) => ({ op: Op.CREATE, size })),
  fc.bigInt({ min: BigInt(MAX_REST_PAYLOAD) + 1n, max: U64_MAX }).map((size) => ({ op: Op.REST, size })),
  fc.bigInt({ min: BigInt(MAX_REST_PAYLOAD) + 1n, max: U64_MAX }).map((size) => ({ op: Op.JOB_STEP, size })),
  fc
    .bigInt({ min: BigInt(MAX_REST_PAYLOAD) + 1n, max: U64_MAX })
    .map((size) => ({ op: Op.JOB_RESTORE, size })),
);

describe("daemon socket under fuzzing (fast-check)", () => {
  let root: string;
  let daemon: StartedDaemon;
  let socketPath: string;
  let witness: BridgeClient;
  const witnessUuid = randomUUID();
  const witnessData = randomBytes(3000);
  let memoryBefore: { rss: number; virtual: number };

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "ocs-fuzz-"));
    await writeFile(join(root, "master.key"), randomBytes(32).toString("base64"));
    daemon = await startDaemon({
      StorageDirectory: join(root, "OrthancStorage"),
      LocalObjectStorage: {
        Path: join(root, "objects"),
        StorageEncryption: { MasterKey: [1, join(root, "master.key")] },
      },
    });
    const ready = decodeReadyLine(`OCS ${daemon.handshake}`);
    assert.ok(ready, daemon.handshake);
    socketPath = ready.socketPath;
    // Opened before any fuzzing, and kept open throughout.
    witness = await BridgeClient.connect(socketPath);
    const created = await witness.call(
      { op: Op.CREATE, contentType: 1, size: witnessData.length, start: 0, uuid: witnessUuid },
      witnessData,
    );
    assert.equal(created.code, 0);
    memoryBefore = await memoryOf(daemon.child.pid as number);
  });

  after(async () => {
    witness?.close();
    if (daemon !== undefined && daemon.child.exitCode === null) {
      daemon.child.stdin.end();
      await daemon.exited;
    }
    await rm(root, { recursive: true, force: true });
  });

  /** The witness connection still reads its attachment back, and the daemon process is still there. */
  async function assertStillServing(): Promise<void> {
    assert.equal(
      daemon.child.exitCode,
      null,
      `the daemon exited; stderr: ${daemon.stderr.slice(-5).join(" | ")}`,
    );
    const read = await witness.call({
      op: Op.READ_WHOLE,
      contentType: 1,
      size: 0,
      start: 0,
      uuid: witnessUuid,
    });
    assert.equal(read.code, 0);
    assert.ok(read.data.equals(witnessData), "the witness connection gets its attachment back intact");
  }

  it("random bytes: the connection is closed, nothing is answered", HANG, async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 400 }), async (bytes) => {
        // 2^-32 chance of starting with the magic: such a run is a complete frame, covered below.
        fc.pre(bytes.length < 4 || Buffer.from(bytes).readUInt32LE(0) !== MAGIC);
        const reaction = await react(socketPath, bytes, true);
        assert.equal(reaction.outcome, "closed");
        assert.equal(reaction.received.length, 0, `answered garbage with ${hex(reaction.received)}`);
        await assertStillServing();
      }),
      { numRuns: RUNS },
    );
  });

  it(
    "complete frames with any op and fields: an answer with an Orthanc code, or a close for what cannot be a request",
    HANG,
    async () => {
      const seen = new Map<string, number>();
      await fc.assert(
        fc.asyncProperty(completeFrame, async (frame) => {
          const reaction = await react(socketPath, frame.bytes, false);
          const kind = reaction.outcome === "answer" ? `code ${responseOf(reaction).code}` : reaction.outcome;
          seen.set(kind, (seen.get(kind) ?? 0) + 1);
          const malformed =
            frame.op < Op.CREATE ||
            frame.op > Op.JOB_RESTORE ||
            frame.size > BigInt(Number.MAX_SAFE_INTEGER) ||
            frame.start > BigInt(Number.MAX_SAFE_INTEGER);
          if (malformed) {
            assert.equal(
              reaction.outcome,
              "closed",
              `op ${frame.op} size ${frame.size} start ${frame.start}`,
            );
            assert.equal(reaction.received.length, 0);
          } else if (reaction.outcome !== "callback") {
            // A REST request for a real route may call back into Orthanc (there is none here): also a reaction.
            assert.equal(reaction.outcome, "answer", `op ${frame.op} got no answer`);
            const { code, body } = responseOf(reaction);
            assert.ok(ORTHANC_CODES.has(code), `code ${code} is one the bridge knows`);
            const saysWhy = frame.op === Op.REST || frame.op === Op.JOB_STEP || frame.op === Op.JOB_RESTORE;
            if (code !== 0 && !saysWhy) assert.equal(body.length, 0);
            if (code !== 0 && saysWhy) {
              assert.ok(body.length > 0, "a failed REST request, job step or job restore says why");
            }
          }
          await assertStillServing();
        }),
        { numRuns: RUNS * 2 },
      );
      console.log(`complete frames: ${JSON.stringify(Object.fromEntries(seen))}`);
      // The property is not vacuous: the runs met successes, refusals and closes.
      for (const kind of ["code 0", `code ${OrthancCode.ParameterOutOfRange}`, "closed"]) {
        assert.ok((seen.get(kind) ?? 0) > 0, `no run ended with ${kind}`);
      }
    },
  );

  it(
    "truncated frames (cut header or payload, then end of stream): closed without an answer",
    HANG,
    async () => {
      await fc.assert(
        fc.asyncProperty(truncatedFrame, async (bytes) => {
          const reaction = await react(socketPath, bytes, true);
          assert.equal(reaction.outcome, "closed");
          assert.equal(
            reaction.received.length,
            0,
            `answered an incomplete frame: ${hex(reaction.received)}`,
          );
          await assertStillServing();
        }),
        { numRuns: RUNS },
      );
    },
  );

  it("oversized length fields: closed at the header, before any payload is awaited", HANG, async () => {
    await fc.assert(
      fc.asyncProperty(oversizedFrame, uuidField, async ({ op, size }, uuid) => {
        const header = rawHeader({
          magic: MAGIC,
          op,
          contentType: 1,
          flags: 0,
          record: 0,
          size,
          start: 0n,
          uuid,
        });
        // Not half-closed: the daemon must close by itself, as soon as it reads the header.
        const reaction = await react(socketPath, header, false);
        assert.equal(reaction.outcome, "closed");
        assert.equal(reaction.received.length, 0);
        await assertStillServing();
      }),
      { numRuns: RUNS },
    );
  });

  it("did not crash, said why it closed connections, and its memory stayed bounded", async () => {
    await assertStillServing();
    const memoryAfter = await memoryOf(daemon.child.pid as number);
    const grown = memoryAfter.rss - memoryBefore.rss;
    // Hundreds of frames announced up to 4 GiB each: allocating as announced would show here.
    assert.ok(grown < 256 * 1024 * 1024, `resident memory grew by ${grown} bytes`);
    assert.ok(
      daemon.stderr.some((line) => /^E bridge connection: protocol error: .*; closing it$/.test(line)),
      daemon.stderr.slice(-5).join("\n"),
    );
    console.log(
      `daemon memory: resident ${memoryBefore.rss >> 20} -> ${memoryAfter.rss >> 20} MiB, ` +
        `virtual ${memoryBefore.virtual >> 20} -> ${memoryAfter.virtual >> 20} MiB`,
    );
  });
});
