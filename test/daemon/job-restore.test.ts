// JOB_RESTORE: the daemon tells the bridge whether a job Orthanc stored is ours, and hands its texts back.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { restoreJob } from "../../src/daemon/job-restore.js";
import {
  SERIALIZED_JOB_FORMAT,
  decodeJobRestoreAnswer,
  decodeJobRestoreRequest,
  encodeJobRestoreAnswer,
  encodeJobRestoreRequest,
} from "../../src/daemon/protocol.js";

describe("restoreJob", () => {
  it("reads back the bridge's serialization, as Orthanc re-wrote it", () => {
    const serialized = `{\n   "Content" : {"Instances" : ["a"]},\n   "Format" : "${SERIALIZED_JOB_FORMAT}",\n   "InitialState" : {"Next" : 0},\n   "State" : {"Next" : 3}\n}`;
    assert.deepEqual(restoreJob({ type: "MoveStorage", serialized }), {
      content: '{"Instances":["a"]}',
      state: '{"Next":3}',
      initialState: '{"Next":0}',
    });
  });

  it("says another plugin's job, or text that is not JSON, is not ours", () => {
    assert.equal(restoreJob({ type: "MoveStorage", serialized: '{"Format":"other"}' }), undefined);
    assert.equal(restoreJob({ type: "MoveStorage", serialized: "[1]" }), undefined);
    assert.equal(restoreJob({ type: "MoveStorage", serialized: "not json" }), undefined);
  });

  it("refuses one of ours that lacks its state", () => {
    const serialized = JSON.stringify({ Format: SERIALIZED_JOB_FORMAT, Content: {} });
    assert.throws(() => restoreJob({ type: "MoveStorage", serialized }), /incomplete/);
  });

  it("frames the request and the answer as the bridge reads them", () => {
    const request = { type: "MoveStorage", serialized: '{"Format":"x"}' };
    assert.deepEqual(decodeJobRestoreRequest(encodeJobRestoreRequest(request)), request);
    const job = { content: "{}", state: '{"a":1}', initialState: '{"a":0}' };
    assert.deepEqual(decodeJobRestoreAnswer(encodeJobRestoreAnswer(job)), job);
    assert.equal(encodeJobRestoreAnswer(undefined).length, 0, "not ours: an empty answer");
  });
});
