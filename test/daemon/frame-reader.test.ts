import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { EAGER_PAYLOAD_BYTES, FrameReader, type Frame } from "../../src/daemon/frame-reader.js";
import {
  MAX_REST_PAYLOAD,
  Op,
  ProtocolError,
  REQUEST_HEADER_SIZE,
  decodeRequestHeader,
  decodeRestRequest,
  encodeRequestHeader,
  encodeRestRequest,
  type RestRequest,
} from "../../src/daemon/protocol.js";

const UUID = "0a1b2c3d-1111-2222-3333-444455556666";

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

  it("grows the buffer of a payload larger than EAGER_PAYLOAD_BYTES as its bytes arrive, intact", () => {
    const size = EAGER_PAYLOAD_BYTES + 3;
    const payload = Buffer.allocUnsafe(size);
    for (let i = 0; i + 4 <= size; i += 4096) payload.writeUInt32LE(i, i);
    payload.fill(7, size - 3);
    const header = encodeRequestHeader({ op: Op.CREATE, contentType: 1, size, start: 0, uuid: UUID });
    const bytes = Buffer.concat([header, payload, header.subarray(0, 10)]);
    const reader = new FrameReader();
    const frames: Frame[] = [];
    // Odd chunk sizes, so that growth happens in the middle of a chunk.
    for (let offset = 0; offset < bytes.length; offset += 3_000_017) {
      frames.push(...reader.push(bytes.subarray(offset, offset + 3_000_017)));
    }
    assert.equal(frames.length, 1);
    assert.equal(frames[0]?.payload.length, size);
    assert.ok(frames[0]?.payload.equals(payload), "the payload is intact");
  });

  it("a header announcing 4 GiB commits at most EAGER_PAYLOAD_BYTES before the bytes come", () => {
    const readers = Array.from({ length: 8 }, () => new FrameReader());
    const header = encodeRequestHeader({
      op: Op.CREATE,
      contentType: 1,
      size: 2 ** 32,
      start: 0,
      uuid: UUID,
    });
    const before = process.memoryUsage().arrayBuffers;
    for (const reader of readers)
      assert.deepEqual(reader.push(Buffer.concat([header, Buffer.alloc(1024)])), []);
    const grown = process.memoryUsage().arrayBuffers - before;
    // Allocating as announced would be 8 x 4 GiB.
    assert.ok(grown <= 8 * EAGER_PAYLOAD_BYTES + 1024 * 1024, `${grown} bytes allocated for 8 KiB received`);
  });

  it("decodes every header field", () => {
    const header = encodeRequestHeader({
      op: Op.READ_RANGE,
      contentType: 3,
      size: 656,
      start: 2 ** 40,
      uuid: UUID,
    });
    assert.equal(header.length, REQUEST_HEADER_SIZE);
    assert.deepEqual(decodeRequestHeader(header), {
      op: Op.READ_RANGE,
      contentType: 3,
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
    const hugeRest = encodeRequestHeader({
      op: Op.REST,
      contentType: 0,
      size: MAX_REST_PAYLOAD + 1,
      start: 0,
      uuid: "",
    });
    assert.throws(() => new FrameReader().push(hugeRest), /REST request of 16777217 bytes is larger/);
  });
});
