// The REST operation of the wire protocol: payload and answer layouts, and build/protocol.h (generated) in step.

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  HttpMethod,
  MAX_REST_PAYLOAD,
  ProtocolError,
  REST_ANSWER_FIXED_SIZE,
  REST_REQUEST_FIXED_SIZE,
  SERIALIZED_JOB_FORMAT,
  decodeRestAnswer,
  decodeRestRequest,
  encodeRestAnswer,
  encodeRestRequest,
  CALLBACK_HEADER_SIZE,
  CallbackKind,
  JobStepStatus,
  decodeCallbackAnswerHeader,
  decodeCallbackHeader,
  decodeJobAnswer,
  encodeCallback,
  encodeCallbackAnswerHeader,
  encodeJobAnswer,
  encodeResponseHeader,
  type RestRequest,
} from "../../src/daemon/protocol.js";

const REQUEST: RestRequest = {
  method: "PUT",
  url: "/cloud-storage/héalth",
  groups: ["a", ""],
  getArguments: [
    ["k", "v1"],
    ["k", "v2"],
    ["empty", ""],
  ],
  headers: [
    ["accept", "*/*"],
    ["x-ünïcode", "✓"],
  ],
  body: Buffer.from([0, 1, 2, 255]),
};

describe("REST payload", () => {
  it("round-trips every field, repeated keys and non-ASCII text included", () => {
    assert.deepEqual(decodeRestRequest(encodeRestRequest(REQUEST)), REQUEST);
  });

  it("lays out the fixed part as protocol.ts documents it", () => {
    const bytes = encodeRestRequest(REQUEST);
    assert.equal(bytes.readUInt32LE(0), HttpMethod.PUT);
    assert.equal(bytes.readUInt32LE(4), 2, "groupCount");
    assert.equal(bytes.readUInt32LE(8), 3, "argumentCount");
    assert.equal(bytes.readUInt32LE(12), 2, "headerCount");
    assert.equal(bytes.readUInt32LE(16), 4, "bodySize");
    assert.equal(bytes.readUInt32LE(20), 0, "reserved");
    const url = Buffer.from(REQUEST.url, "utf8");
    assert.deepEqual(bytes.subarray(REST_REQUEST_FIXED_SIZE, REST_REQUEST_FIXED_SIZE + url.length), url);
    assert.equal(bytes[REST_REQUEST_FIXED_SIZE + url.length], 0, "a string ends with a NUL");
    assert.deepEqual(bytes.subarray(bytes.length - 4), REQUEST.body, "the body comes last");
  });

  it("refuses every truncation, naming the field that is short", () => {
    const bytes = encodeRestRequest(REQUEST);
    for (let length = 0; length < bytes.length; length++) {
      assert.throws(() => decodeRestRequest(bytes.subarray(0, length)), ProtocolError, `length ${length}`);
    }
    assert.throws(
      () => decodeRestRequest(bytes.subarray(0, 6)),
      /REST request: groupCount needs 4 bytes at offset 4 of 6/,
    );
  });

  it("refuses bytes after the body and unknown methods", () => {
    const bytes = encodeRestRequest(REQUEST);
    assert.throws(
      () => decodeRestRequest(Buffer.concat([bytes, Buffer.from([0])])),
      /1 bytes after the body/,
    );
    const unknown = Buffer.from(bytes);
    unknown.writeUInt32LE(9, 0);
    assert.throws(() => decodeRestRequest(unknown), /unknown HTTP method 9/);
  });
});

describe("REST answer", () => {
  it("round-trips status, content type or allowed methods, and body, at fixed offsets", () => {
    const answer = { status: 200, contentType: "text/plain", allow: "", body: Buffer.from("ok\n") };
    const bytes = encodeRestAnswer(answer);
    assert.equal(bytes.readUInt32LE(0), 200);
    assert.equal(bytes.subarray(8, 8 + 11).toString("latin1"), "text/plain\0");
    assert.equal(bytes.length, REST_ANSWER_FIXED_SIZE + 3);
    assert.deepEqual(decodeRestAnswer(bytes), answer);
    const refused = { status: 405, contentType: "", allow: "GET,POST", body: Buffer.from("no\n") };
    const refusedBytes = encodeRestAnswer({ ...refused, contentType: "text/plain" });
    assert.equal(
      refusedBytes.subarray(8, 8 + 9).toString("latin1"),
      "GET,POST\0",
      "a 405 carries its methods",
    );
    assert.deepEqual(decodeRestAnswer(refusedBytes), refused);
  });

  it("refuses a content type that does not fit its field", () => {
    const contentType = "x".repeat(REST_ANSWER_FIXED_SIZE - 8);
    assert.throws(
      () => encodeRestAnswer({ status: 200, contentType, allow: "", body: Buffer.alloc(0) }),
      ProtocolError,
    );
  });

  it("refuses an answer larger than MAX_REST_PAYLOAD", () => {
    const body = Buffer.alloc(MAX_REST_PAYLOAD);
    assert.throws(() => encodeRestAnswer({ status: 200, contentType: "x", allow: "", body }), ProtocolError);
  });
});

describe("callbacks and job steps", () => {
  it("frames a REST callback as the bridge reads it: magic, kind, size, method, uri, body", () => {
    const frame = encodeCallback({
      kind: "rest",
      rest: { method: "POST", uri: "/tools/find?x=1", body: Buffer.from("{}") },
    });
    assert.deepEqual(decodeCallbackHeader(frame.subarray(0, CALLBACK_HEADER_SIZE)), {
      kind: CallbackKind.ORTHANC_REST,
      size: frame.length - CALLBACK_HEADER_SIZE,
    });
    const payload = frame.subarray(CALLBACK_HEADER_SIZE);
    assert.equal(payload.readUInt32LE(0), 2);
    assert.equal(payload.subarray(4, 4 + 16).toString(), "/tools/find?x=1\0");
    assert.equal(payload.subarray(4 + 16).toString(), "{}");
  });

  it("frames a job submission with a signed priority, the type and the job's first answer", () => {
    const frame = encodeCallback({
      kind: "job",
      job: { type: "MoveStorage", priority: -3, content: "{}", state: '{"a":1}' },
    });
    const payload = frame.subarray(CALLBACK_HEADER_SIZE);
    assert.equal(decodeCallbackHeader(frame).kind, CallbackKind.SUBMIT_JOB);
    assert.equal(payload.readInt32LE(0), -3);
    assert.equal(payload.subarray(4, 16).toString(), "MoveStorage\0");
    assert.deepEqual(decodeJobAnswer(payload.subarray(16)), {
      status: JobStepStatus.Continue,
      progress: 0,
      content: "{}",
      serialized: `{"Format":"${SERIALIZED_JOB_FORMAT}","Content":{},"State":{"a":1}}`,
    });
  });

  it("frames an attachment-record callback: 0 and the uuid to read it, 1, the uuid and the record to set it", () => {
    const uuid = "0a1b2c3d-1111-2222-3333-444455556666";
    const read = encodeCallback({ kind: "record", uuid });
    assert.equal(decodeCallbackHeader(read).kind, CallbackKind.ATTACHMENT_RECORD);
    const readPayload = read.subarray(CALLBACK_HEADER_SIZE);
    assert.equal(readPayload.readUInt32LE(0), 0);
    assert.equal(readPayload.subarray(4).toString(), `${uuid}\0`);
    const set = encodeCallback({ kind: "record", uuid, set: Buffer.from([0x4f, 0x43, 1, 0]) });
    assert.equal(decodeCallbackHeader(set).kind, CallbackKind.ATTACHMENT_RECORD);
    const setPayload = set.subarray(CALLBACK_HEADER_SIZE);
    assert.equal(setPayload.readUInt32LE(0), 1);
    assert.equal(setPayload.subarray(4, 4 + 37).toString(), `${uuid}\0`);
    assert.deepEqual([...setPayload.subarray(4 + 37)], [0x4f, 0x43, 1, 0]);
  });

  it("refuses an answer to a callback with a bad magic or an oversized body", () => {
    assert.throws(() => decodeCallbackAnswerHeader(encodeResponseHeader(0, 0)), /bad magic/);
    assert.throws(
      () => decodeCallbackAnswerHeader(encodeCallbackAnswerHeader(0, MAX_REST_PAYLOAD + 1)),
      /at most/,
    );
    assert.deepEqual(decodeCallbackAnswerHeader(encodeCallbackAnswerHeader(17, 3)), { code: 17, size: 3 });
  });

  it("round-trips a job answer, progress in millionths, clamped to 0..1", () => {
    const answer = {
      status: JobStepStatus.Continue,
      progress: 0.25,
      content: '{"Moved":1}',
      serialized: "{}",
    };
    assert.deepEqual(decodeJobAnswer(encodeJobAnswer(answer)), answer);
    const over = decodeJobAnswer(encodeJobAnswer({ ...answer, progress: 1.5 }));
    assert.equal(over.progress, 1);
  });
});
