// JOB_RESTORE: the daemon tells the bridge whether a job Orthanc stored is ours, and hands its texts back.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { restoreJob, startingOver } from "../../src/daemon/job-restore.js";
import {
  SERIALIZED_JOB_FORMAT,
  decodeJobRestoreAnswer,
  decodeJobRestoreRequest,
  encodeJobRestoreAnswer,
  encodeJobRestoreRequest,
} from "../../src/daemon/protocol.js";

describe("restoreJob", () => {
  it("reads back the bridge's serialization, as Orthanc re-wrote it", () => {
    const serialized = `{\n   "Content" : {"Instances" : ["a"]},\n   "Format" : "${SERIALIZED_JOB_FORMAT}",\n   "State" : {"Next" : 3}\n}`;
    const restored = { content: '{"Instances":["a"]}', state: '{"Next":3}' };
    assert.deepEqual(restoreJob({ type: "MoveStorage", serialized }), restored);
    // An older bridge's serialization also held the initial state, for a reset: the job still comes back.
    const older = serialized.replace('"State"', '"InitialState" : {"Next" : 0},\n   "State"');
    assert.deepEqual(restoreJob({ type: "MoveStorage", serialized: older }), restored);
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
    const job = { content: "{}", state: '{"a":1}' };
    assert.deepEqual(decodeJobRestoreAnswer(encodeJobRestoreAnswer(job)), job);
    assert.equal(encodeJobRestoreAnswer(undefined).length, 0, "not ours: an empty answer");
  });
});

describe("startingOver", () => {
  it("unwraps the state of a job Orthanc reset, once or more, and leaves others as they are", () => {
    assert.deepEqual(startingOver('{"Next":3}'), { state: '{"Next":3}', startOver: false });
    assert.deepEqual(startingOver('{"StartOver":{"Next":3}}'), { state: '{"Next":3}', startOver: true });
    assert.deepEqual(startingOver('{"StartOver":{"StartOver":{"Next":3}}}'), {
      state: '{"Next":3}',
      startOver: true,
    });
    assert.deepEqual(startingOver("not json"), { state: "not json", startOver: false });
  });
});
