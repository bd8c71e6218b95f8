import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { FrameReader, type Frame } from "../../src/daemon/frame-reader.js";
import {
  MAX_CREATE_SIZE,
  MAX_RECORD_SIZE,
  MAX_REST_PAYLOAD,
  Op,
  RequestFlag,
  ProtocolError,
  REQUEST_HEADER_SIZE,
  decodeRequestHeader,
  decodeRestRequest,
  encodeRequestHeader,
  encodeRestRequest,
  type RestRequest,
} from "../../src/daemon/protocol.js";

const UUID = "0a1b2c3d-1111-2222-3333-444455556666";
/** Stands for an attachment's record: the reader passes its bytes on unread. */
const RECORD = Buffer.from("OC record bytes");

const HEALTH: RestRequest = {
  method: "GET",
  url: "/cloud-storage/health",
  groups: [],
  getArguments: [["verbose", "1"]],
  headers: [["accept", "application/json"]],
  body: Buffer.alloc(0),
};
const POSTED: RestRequest = {
  method: "POST",
  url: "/cloud-storage/metrics",
  groups: ["g1"],
  getArguments: [],
  headers: [["content-type", "application/json"]],
  body: Buffer.from('{"a":1}'),
};

function restFrame(request: RestRequest): Buffer[] {
  const payload = encodeRestRequest(request);
  return [
    encodeRequestHeader({ op: Op.REST, contentType: 0, size: payload.length, start: 0, uuid: "" }),
    payload,
  ];
}

function stream(): { bytes: Buffer; expected: Array<{ op: number; payload: string }> } {
  const create = Buffer.from("payload of the create");
  const parts = [
    ...restFrame(HEALTH),
    encodeRequestHeader({ op: Op.CREATE, contentType: 1, size: create.length, start: 0, uuid: UUID }),
    create,
    encodeRequestHeader({ op: Op.READ_WHOLE, contentType: 1, size: 0, start: 0, uuid: UUID }),
    encodeRequestHeader({ op: Op.CREATE, contentType: 0, size: 0, start: 0, uuid: UUID }),
    encodeRequestHeader({ op: Op.READ_RANGE, contentType: 1, size: 100, start: 7, uuid: UUID }),
    encodeRequestHeader({ op: Op.REMOVE, contentType: 3, size: 0, start: 0, uuid: UUID }),
    // Orthanc >= 1.12.8: a create asking for a record, then a range read (that may be a file answer) and a
    // remove carrying one: flags and the record's length share the header's word at offset 12.
    encodeRequestHeader({
      op: Op.CREATE,
      contentType: 1,
      flags: 0b1110, // CreateFlag: RECORD | DICOM | COMPRESSED
      size: create.length,
      start: 0,
      uuid: UUID,
    }),
    create,
    encodeRequestHeader({
      op: Op.READ_RANGE,
      contentType: 1,
      flags: RequestFlag.FILE_ANSWER,
      record: RECORD.length,
      size: 9,
      start: 0,
      uuid: UUID,
    }),
    RECORD,
    encodeRequestHeader({
      op: Op.REMOVE,
      contentType: 1,
      record: RECORD.length,
      size: 0,
      start: 0,
      uuid: UUID,
    }),
    RECORD,
    ...restFrame(POSTED),
  ];
  return {
    bytes: Buffer.concat(parts),
    expected: [
      { op: Op.REST, payload: encodeRestRequest(HEALTH).toString() },
      { op: Op.CREATE, payload: create.toString() },
      { op: Op.READ_WHOLE, payload: "" },
      { op: Op.CREATE, payload: "" },
      { op: Op.READ_RANGE, payload: "" },
      { op: Op.REMOVE, payload: "" },
      { op: Op.CREATE, payload: create.toString() },
      { op: Op.READ_RANGE, payload: RECORD.toString() },
      { op: Op.REMOVE, payload: RECORD.toString() },
      { op: Op.REST, payload: encodeRestRequest(POSTED).toString() },
    ],
  };
}

const summary = (frames: Frame[]) => frames.map((f) => ({ op: f.request.op, payload: f.payload.toString() }));

describe("frame reader", () => {
  it("reassembles the same frames whatever the split point of a stream", () => {
    const { bytes, expected } = stream();
    for (let split = 0; split <= bytes.length; split++) {
      const reader = new FrameReader();
      const frames = [...reader.push(bytes.subarray(0, split)), ...reader.push(bytes.subarray(split))];
      assert.deepEqual(summary(frames), expected, `split at ${split}`);
    }
  });

  it("reassembles a stream fed one byte at a time", () => {
    const { bytes, expected } = stream();
    const reader = new FrameReader();
    const frames: Frame[] = [];
    for (const byte of bytes) frames.push(...reader.push(Buffer.from([byte])));
    assert.deepEqual(summary(frames), expected);
  });

  it("hands over REST payloads that decode to the requests sent, whatever the split point", () => {
    const { bytes } = stream();
    for (let split = 0; split <= bytes.length; split++) {
      const reader = new FrameReader();
      const frames = [...reader.push(bytes.subarray(0, split)), ...reader.push(bytes.subarray(split))];
      const rest = frames.filter((f) => f.request.op === Op.REST).map((f) => decodeRestRequest(f.payload));
      assert.deepEqual(rest, [HEALTH, POSTED], `split at ${split}`);
    }
  });

  it("a header announcing 4 GiB commits no buffer of that size: its body streams as bytes arrive", () => {
    const readers = Array.from({ length: 8 }, () => new FrameReader());
    const header = encodeRequestHeader({
      op: Op.CREATE,
      contentType: 1,
      size: 2 ** 32,
      start: 0,
      uuid: UUID,
    });
    const before = process.memoryUsage().arrayBuffers;
    for (const reader of readers) {
      const frames = reader.push(Buffer.concat([header, Buffer.alloc(1024)]));
      assert.equal(frames.length, 1);
      assert.ok(frames[0]?.body !== undefined, "a CREATE of 4 GiB is streamed, not gathered");
      frames[0]?.body?.destroy();
    }
    const grown = process.memoryUsage().arrayBuffers - before;
    // Allocating as announced would be 8 x 4 GiB.
    assert.ok(grown <= 1024 * 1024, `${grown} bytes allocated for 8 KiB received`);
  });

  it("decodes every header field", () => {
    const header = encodeRequestHeader({
      op: Op.READ_RANGE,
      contentType: 3,
      flags: RequestFlag.FILE_ANSWER,
      size: 656,
      start: 2 ** 40,
      uuid: UUID,
    });
    assert.equal(header.length, REQUEST_HEADER_SIZE);
    assert.deepEqual(decodeRequestHeader(header), {
      op: Op.READ_RANGE,
      contentType: 3,
      flags: RequestFlag.FILE_ANSWER,
      record: 0,
      size: 656,
      start: 2 ** 40,
      uuid: UUID,
    });
  });

  it("refuses bytes that cannot be a request", () => {
    const bad = encodeRequestHeader({ op: Op.REMOVE, contentType: 0, size: 0, start: 0, uuid: UUID });
    bad.writeUInt32LE(0xdeadbeef, 0);
    assert.throws(() => new FrameReader().push(bad), ProtocolError);
    const unknownOp = encodeRequestHeader({ op: Op.REMOVE, contentType: 0, size: 0, start: 0, uuid: UUID });
    unknownOp.writeUInt32LE(9, 4);
    assert.throws(() => new FrameReader().push(unknownOp), /unknown operation 9/);
    const huge = encodeRequestHeader({ op: Op.CREATE, contentType: 0, size: 0, start: 0, uuid: UUID });
    huge.writeBigUInt64LE(2n ** 60n, 16);
    assert.throws(() => new FrameReader().push(huge), ProtocolError);
    // One byte past 4 GiB: refused on every runtime, though Node 22 and later have Buffers up to 2^53 - 1.
    const overLimit = encodeRequestHeader({
      op: Op.CREATE,
      contentType: 0,
      size: MAX_CREATE_SIZE + 1,
      start: 0,
      uuid: UUID,
    });
    assert.throws(() => new FrameReader().push(overLimit), /4294967297 bytes is larger than 4294967296/);
    const hugeRest = encodeRequestHeader({
      op: Op.REST,
      contentType: 0,
      size: MAX_REST_PAYLOAD + 1,
      start: 0,
      uuid: "",
    });
    assert.throws(() => new FrameReader().push(hugeRest), /REST request of 16777217 bytes is larger/);
    // A record's length is a u16 of the header: a longer one cannot be announced, and is refused when encoded.
    assert.throws(
      () =>
        encodeRequestHeader({
          op: Op.READ_RANGE,
          contentType: 1,
          record: MAX_RECORD_SIZE + 1,
          size: 10,
          start: 0,
          uuid: UUID,
        }),
      /record of 65536 bytes is larger than the 65535 a request header can announce/,
    );
  });

  it("streams a CREATE above the threshold: the frame at its header, the body split at every byte", async () => {
    const data = Buffer.from(Array.from({ length: 100 }, (_, i) => i));
    const request = { op: Op.CREATE, contentType: 1, size: data.length, start: 0, uuid: UUID };
    const after = encodeRequestHeader({ op: Op.REMOVE, contentType: 1, size: 0, start: 0, uuid: UUID });
    const bytes = Buffer.concat([encodeRequestHeader(request), data, after]);
    for (let split = 0; split <= bytes.length; split++) {
      const reader = new FrameReader({ streamCreatesAbove: 99 });
      const frames = [...reader.push(bytes.subarray(0, split)), ...reader.push(bytes.subarray(split))];
      assert.deepEqual(
        frames.map((f) => f.request.op),
        [Op.CREATE, Op.REMOVE],
        `split at ${split}`,
      );
      const [create] = frames as [Frame];
      assert.ok(create.body && create.received);
      assert.equal(create.payload.length, 0);
      const chunks: Buffer[] = [];
      for await (const chunk of create.body) chunks.push(chunk as Buffer);
      assert.deepEqual(Buffer.concat(chunks), data, `split at ${split}`);
      await create.received;
    }
  });

  it("tells whether the last chunk is still referenced: only when part of it went to a streamed body", () => {
    const data = Buffer.from(Array.from({ length: 100 }, (_, i) => i));
    const frame = (): Buffer =>
      Buffer.concat([
        encodeRequestHeader({ op: Op.CREATE, contentType: 1, size: data.length, start: 0, uuid: UUID }),
        data,
      ]);
    const gathered = frame();
    const reader = new FrameReader({ streamCreatesAbove: 1000 });
    const [create] = reader.push(gathered);
    assert.equal(reader.keepsLastChunk, false, "a gathered create's payload is a copy");
    gathered.fill(0);
    assert.deepEqual(create?.payload, data, "the frame holds nothing of the chunk");

    const streamed = frame();
    const streaming = new FrameReader({ streamCreatesAbove: 99 });
    streaming.push(streamed.subarray(0, REQUEST_HEADER_SIZE + 10));
    assert.equal(streaming.keepsLastChunk, true, "its body holds part of the chunk");
    streaming.push(streamed.subarray(REQUEST_HEADER_SIZE + 10));
    assert.equal(streaming.keepsLastChunk, true, "the rest of the body too");
    streaming.push(encodeRequestHeader({ op: Op.REMOVE, contentType: 1, size: 0, start: 0, uuid: UUID }));
    assert.equal(streaming.keepsLastChunk, false, "the next request's header is copied");
  });

  it("pauses the connection while a streamed body is full, resumes once it is read or destroyed", async () => {
    const events: string[] = [];
    const options = {
      streamCreatesAbove: 0,
      pause: () => events.push("pause"),
      resume: () => events.push("resume"),
    };
    const size = 4 * 1024 * 1024;
    const header = encodeRequestHeader({ op: Op.CREATE, contentType: 1, size, start: 0, uuid: UUID });
    const reader = new FrameReader(options);
    const [frame] = reader.push(header) as [Frame];
    reader.push(Buffer.alloc(2 * 1024 * 1024, 1));
    assert.deepEqual(events, ["pause"], "more than the body's buffer and nobody reading");
    assert.equal(reader.paused, true);
    frame.body?.read();
    assert.deepEqual(events, ["pause", "resume"]);
    reader.push(Buffer.alloc(1024 * 1024, 2));
    // A consumer that failed destroys the body: the rest of the attachment is discarded, not held.
    frame.body?.destroy();
    await new Promise((resolve) => setImmediate(resolve));
    reader.push(Buffer.alloc(1024 * 1024, 3));
    assert.equal(reader.paused, false);
    await frame.received;
    assert.equal(reader.push(Buffer.alloc(0)).length, 0);
  });

  it("fails a streamed body cut short by the connection's end", async () => {
    const reader = new FrameReader({ streamCreatesAbove: 0 });
    const header = encodeRequestHeader({ op: Op.CREATE, contentType: 1, size: 10, start: 0, uuid: UUID });
    const [frame] = reader.push(Buffer.concat([header, Buffer.alloc(4)])) as [Frame];
    reader.abort(new Error("the bridge closed the connection"));
    await assert.rejects(frame.received as Promise<void>, /closed the connection/);
    await assert.rejects(async () => {
      for await (const _ of frame.body as AsyncIterable<unknown>) {
        // reading until the error
      }
    }, /closed the connection/);
  });
});
